"""Helpers shared by the tail tests: a sink that commits like a durable pipeline, and an input factory."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.clock import Clock, SystemClock
from agent.plugin import PluginContext
from agent.schema import Duration
from agent.types import Record
from plugins.inputs.tail import TailConfig, TailInput


class Sink:
    """Records every batch; commits it at once unless `auto_commit` is off (a pipeline that never finishes)."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.input: TailInput | None = None
        self.auto_commit = True

    def __call__(self, records: Sequence[Record]) -> None:
        with self.lock:
            self.records.extend(records)
        if self.auto_commit and self.input is not None:
            self.input.commit(records)

    def lines(self) -> list[str]:
        with self.lock:
            return [r.raw for r in self.records]


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "logs"
        self.dir.mkdir()
        self.state = tmp_path / "state"
        self.running: list[TailInput] = []

    def make(
        self, sink: Sink | None = None, *, background: bool = False, clock: Clock | None = None,
        pattern: str = "*.log", **options: Any,
    ) -> tuple[TailInput, Sink]:
        options.setdefault("read_from", "beginning")
        options.setdefault("refresh_interval", _d(0.2))
        options.setdefault("rotate_wait", _d(5.0))
        paths = options.pop("path", [str(self.dir / pattern)])
        config = TailConfig(path=paths, **options)
        ctx = PluginContext(instance="input.tail.0", state_dir=self.state, host="test", tag="app",
                            clock=clock or SystemClock())
        inp = TailInput(config, ctx)
        sink = sink or Sink()
        sink.input = inp
        inp.start(sink, background=background)
        self.running.append(inp)
        return inp, sink

    def stop(self, inp: TailInput) -> None:
        inp.stop()
        self.running.remove(inp)


def _d(seconds: float) -> Duration:
    return Duration(seconds)


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
