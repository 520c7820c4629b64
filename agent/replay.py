"""Reading whole files as an input, for `replay` and `demo`: as fast as the pipeline takes them.

It implements the same `Input` protocol as `tail`, so a replay runs exactly the code `run` runs; only where
the lines come from differs. Lines are decoded with replacement and over-long lines truncated, like the
tail input; records starting with whitespace are joined to the previous record (stack traces) when the
input section configures a multiline start pattern.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from agent.plugin import Emit
from agent.stages import QueueClosed
from agent.types import Record


class _Counts:
    lines = 0
    bytes = 0


def read_records(
    path: Path, tag: str, start_re: re.Pattern[str] | None = None, max_line_bytes: int = 1 << 20,
    counts: Any = None,
) -> Iterator[Record]:
    """Records of a whole file: lines decoded with replacement, over-long ones truncated, continuation
    lines joined to their record when `start_re` marks where records start. The one reader of files for
    replay, demo, `train --input` and `score --input`, so offline and live see the same records."""
    counts = counts if counts is not None else _Counts()
    held: Record | None = None
    source = str(path)
    offset = 0
    with open(path, "rb") as fh:
        for raw_line in fh:
            offset += len(raw_line)
            counts.bytes += len(raw_line)
            counts.lines += 1
            line = raw_line[:max_line_bytes].rstrip(b"\r\n").decode("utf-8", "replace")
            if start_re is not None:
                if held is not None and not start_re.search(line):
                    held.raw += "\n" + line
                    held.offset = offset
                    continue
                if held is not None:
                    yield held
                held = Record(tag=tag, source=source, raw=line, offset=offset)
            else:
                yield Record(tag=tag, source=source, raw=line, offset=offset)
    if held is not None:
        yield held


class FileReplayInput:
    name: ClassVar[str] = "replay"
    config_class: ClassVar[type[Any]] = object

    def __init__(
        self,
        paths: Sequence[Path],
        tag: str,
        *,
        batch_size: int = 512,
        multiline_start: str | None = None,
        max_line_bytes: int = 1 << 20,
    ) -> None:
        self.paths = list(paths)
        self.tag = tag
        self.batch_size = batch_size
        self.start_re = re.compile(multiline_start) if multiline_start else None
        self.max_line_bytes = max_line_bytes
        self.done = threading.Event()
        self.lines = 0
        self.bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, emit: Emit) -> None:
        self._thread = threading.Thread(target=self._read_all, args=(emit,), name="logwarden-replay", daemon=True)
        self._thread.start()

    def _read_all(self, emit: Emit) -> None:
        try:
            for path in self.paths:
                if self._stop.is_set():
                    break
                self._read(path, emit)
        except QueueClosed:
            pass
        finally:
            self.done.set()

    def _read(self, path: Path, emit: Emit) -> None:
        batch: list[Record] = []
        for record in read_records(path, self.tag, self.start_re, self.max_line_bytes, self):
            if self._stop.is_set():
                return
            batch.append(record)
            if len(batch) >= self.batch_size:
                emit(batch)
                batch = []
        if batch:
            emit(batch)

    def commit(self, records: Sequence[Record]) -> None:
        """Replays keep no offsets."""

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def stats(self) -> dict[str, float]:
        return {"lines_total": float(self.lines), "bytes_total": float(self.bytes)}
