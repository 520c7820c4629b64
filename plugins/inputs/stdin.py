"""The `stdin` input: lines piped into the daemon (`journalctl -f | logwarden run`, replays, tests).

A pipe has no offsets to resume from, so `commit` is a no-op and a restart starts with whatever comes next.
Reads take what the pipe has (up to 64 KiB) and emit its complete lines at once, in batches of at most
`service.batch_size`, so a burst becomes a few full batches and a slow trickle still goes out line by line
without waiting.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, ClassVar

import structlog

from agent.plugin import Emit, PluginContext
from agent.schema import ByteSize, opt
from agent.types import Record

log = structlog.get_logger("logwarden.input.stdin")

_READ = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class StdinConfig:
    encoding: str = opt("utf-8", doc="Character encoding of the input; bytes that do not decode are replaced.")
    max_line_size: ByteSize = opt(ByteSize(64 * 1024), doc="Lines longer than this are cut to this many bytes.")


class StdinInput:
    name: ClassVar[str] = "stdin"
    config_class: ClassVar[type[StdinConfig]] = StdinConfig

    def __init__(self, config: StdinConfig, ctx: PluginContext, *, stream: BinaryIO | None = None) -> None:
        """`stream` replaces sys.stdin (tests, or a replay reading a file through the same code)."""
        self.config = config
        self.ctx = ctx
        self._stream = stream
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.finished = threading.Event()
        """Set when the input reached end of file and emitted everything."""
        self.lines_read = 0
        self.bytes_read = 0
        self.decode_errors = 0
        self.long_lines_truncated = 0

    def start(self, emit: Emit) -> None:
        self._thread = threading.Thread(target=self._run, args=(emit,), name="stdin-reader", daemon=True)
        self._thread.start()

    def commit(self, records: Sequence[Record]) -> None:
        """Nothing to checkpoint: a pipe cannot be re-read."""

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(0.5)  # a read blocked on an idle pipe cannot be interrupted; the thread is a daemon

    def stats(self) -> dict[str, float]:
        return {
            "lines_read": float(self.lines_read),
            "bytes_read": float(self.bytes_read),
            "decode_errors": float(self.decode_errors),
            "long_lines_truncated": float(self.long_lines_truncated),
        }

    def _run(self, emit: Emit) -> None:
        stream = self._stream if self._stream is not None else sys.stdin.buffer
        try:
            fd: int | None = stream.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None
        pending = b""
        offset = 0
        try:
            while not self._stopping.is_set():
                chunk = os.read(fd, _READ) if fd is not None else stream.read(_READ)
                if not chunk:
                    break
                self.bytes_read += len(chunk)
                data = pending + chunk
                cut = data.rfind(b"\n") + 1
                pending = data[cut:]
                if cut:
                    offset = self._emit_lines(emit, data[: cut - 1].split(b"\n"), offset)
            if pending and not self._stopping.is_set():
                self._emit_lines(emit, [pending], offset)
        except OSError as exc:
            log.error("stdin_read_failed", error=str(exc))
        finally:
            self.finished.set()

    def _emit_lines(self, emit: Emit, lines: list[bytes], offset: int) -> int:
        enc = self.config.encoding
        limit = self.config.max_line_size.bytes
        now = self.ctx.clock.time()
        out: list[Record] = []
        for raw in lines:
            offset += len(raw) + 1
            if raw[-1:] == b"\r":
                raw = raw[:-1]
            if len(raw) > limit:
                raw = raw[:limit]
                self.long_lines_truncated += 1
            try:
                text = raw.decode(enc)
            except UnicodeDecodeError:
                self.decode_errors += 1
                text = raw.decode(enc, "replace")
            out.append(Record(tag=self.ctx.tag, source="-", raw=text, offset=offset, read_time=now))
        self.lines_read += len(out)
        size = self.ctx.batch_size  # a 64 KiB read can be ~600 lines: see the tail's CHUNK for why to cut it
        for i in range(0, len(out), size):
            emit(out[i : i + size])
        return offset
