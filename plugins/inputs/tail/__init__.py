"""The `tail` input: follows log files through rotation, truncation and restarts without losing lines.

Split by concern like Fluent Bit's in_tail: `config` (options), `file` (one open file and its line
splitting), `identity` (fingerprints and offset markers), `store` (saved offsets), `discovery` (globs and
rotated siblings), `resume` (where reading starts), `watcher` (watchdog wiring), `multiline`, and
`tailer` (the reconcile-and-read loop). Delivery is at-least-once: an offset is saved only after the
pipeline says the records before it were handled durably.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from agent.plugin import Emit, PluginContext
from agent.types import Record
from plugins.inputs.tail.config import MultilineConfig, TailConfig, preflight
from plugins.inputs.tail.tailer import Tailer
from plugins.inputs.tail.watcher import ObserverFactory

__all__ = ["MultilineConfig", "TailConfig", "TailInput"]


class TailInput:
    name: ClassVar[str] = "tail"
    config_class: ClassVar[type[TailConfig]] = TailConfig

    def __init__(self, config: TailConfig, ctx: PluginContext, *, make_observer: ObserverFactory | None = None) -> None:
        """`make_observer` replaces watchdog's inotify observer (tests use it to simulate a watch limit)."""
        self.config = config
        self.ctx = ctx
        self._tailer = Tailer(config, ctx, make_observer)

    @staticmethod
    def preflight(config: TailConfig) -> list[tuple[str, str]]:
        return preflight(config)

    def start(self, emit: Emit, *, background: bool = True) -> None:
        """Start the observer, reader and offset-saver threads; `background=False` leaves passes to
        `poll_once()` (deterministic tests and one-shot reads)."""
        self._tailer.open(emit)
        if background:
            self._tailer.start_threads()

    def poll_once(self) -> bool:
        """One reconcile-and-read pass on the caller's thread; True if a file had more than one pass reads."""
        return self._tailer.poll_once()

    def commit(self, records: Sequence[Record]) -> None:
        self._tailer.commit(records)

    def stop(self) -> None:
        self._tailer.stop()

    def stats(self) -> dict[str, float]:
        return self._tailer.stats.as_dict()
