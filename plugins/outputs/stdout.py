"""Stdout output: JSON Lines of records or alerts on standard output, for pipelines that read our stdout.

Under systemd stdout goes to the journal and the daemon's own log goes to stderr, so the two never mix.
Stdout is not a durable place: a record written here counts as handled, as with Fluent Bit's stdout.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from agent.plugin import Delivery, PluginContext, Retry, Sent
from agent.schema import opt
from agent.types import Alert, Record
from plugins.outputs.jsonl import alerts_to_jsonl, records_to_jsonl


@dataclass(frozen=True, slots=True, kw_only=True)
class StdoutConfig:
    flush: bool = opt(True, doc="Flush standard output after every batch so a reader sees lines at once.")


class StdoutOutput:
    name: ClassVar[str] = "stdout"
    config_class: ClassVar[type[StdoutConfig]] = StdoutConfig
    supports_resolve: ClassVar[bool] = True
    max_batch: ClassVar[int] = 500

    def __init__(self, config: StdoutConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def _write(self, text: str) -> None:
        # Looked up per call: a test's capture or a daemon that re-opened stdout gets the current stream.
        out = sys.stdout
        with self._lock:
            out.write(text)
            if self.config.flush:
                out.flush()

    def deliver(self, alerts: Sequence[Alert]) -> Delivery:
        try:
            self._write(alerts_to_jsonl(alerts))
        except OSError as exc:  # a closed pipe: the reader may come back (systemd restarts it)
            return Retry(f"stdout write failed: {exc.strerror or type(exc).__name__}")
        return Sent()

    def write_records(self, records: Sequence[Record]) -> None:
        if records:
            self._write(records_to_jsonl(records))

    def stop(self) -> None:
        try:
            sys.stdout.flush()
        except OSError:
            pass
