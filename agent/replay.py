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
from itertools import accumulate, compress, count, pairwise, repeat
from operator import add
from pathlib import Path
from typing import Any, ClassVar

from agent.linestart import StartTest
from agent.plugin import Emit
from agent.stages import QueueClosed
from agent.types import Record


class _Counts:
    lines = 0
    bytes = 0


_BLOCK = 1 << 20
"""Bytes read and decoded at a time: one decode and one split per block instead of per line."""


def read_records(
    path: Path, tag: str, start_re: re.Pattern[str] | None = None, max_line_bytes: int = 1 << 20,
    counts: Any = None,
) -> Iterator[Record]:
    """Records of a whole file: lines decoded with replacement, over-long ones truncated, continuation
    lines joined to their record when `start_re` marks where records start. The one reader of files for
    replay, demo, `train --input` and `score --input`, so offline and live see the same records."""
    for batch in read_batches(path, tag, start_re, max_line_bytes, counts):
        yield from batch


def read_batches(
    path: Path, tag: str, start_re: re.Pattern[str] | None = None, max_line_bytes: int = 1 << 20,
    counts: Any = None, block: int = _BLOCK,
) -> Iterator[list[Record]]:
    """`read_records` a block at a time (a list of records per block read, possibly empty).

    Splitting at newlines and decoding a whole block with replacement gives exactly the per-line decode
    (a newline is ASCII, so no invalid sequence spans one), at a fraction of the per-line cost; a block
    with an over-long line takes the per-line path that truncates it."""
    counts = counts if counts is not None else _Counts()
    joiner = _Joiner(tag, str(path), start_re)
    offset = 0
    with open(path, "rb") as fh:
        rest = b""
        while True:
            chunk = fh.read(block)
            if chunk:
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # no line end yet: a line longer than a block
                    rest = data
                    continue
                data, rest = data[:cut], data[cut:]
                pieces = data.split(b"\n")
                pieces.pop()  # the empty piece after the last newline
                # offset + the lengths so far + one newline per line, all in C-level maps
                ends = list(map(add, accumulate(map(len, pieces)), count(offset + 1)))
            elif rest:
                data, rest = rest, b""
                pieces = [data]
                ends = [offset + len(data)]
            else:
                break
            offset += len(data)
            counts.bytes += len(data)
            counts.lines += len(pieces)
            if max(map(len, pieces)) > max_line_bytes:
                lines = [p[:max_line_bytes].rstrip(b"\r").decode("utf-8", "replace") for p in pieces]
            else:
                text = data.decode("utf-8", "replace")
                lines = text.split("\n")
                if len(lines) > len(pieces):
                    lines.pop()
                if "\r" in text:
                    lines = [line.rstrip("\r") for line in lines]
            yield joiner.add(lines, ends)
    last = joiner.flush()
    if last:
        yield last


class _Joiner:
    """Turns decoded lines into records, holding the last record open for its continuation lines.

    Whole lists at a time, like the tail input: the start test runs over the block in C-level maps and
    records are cut between start lines, so a log where every line starts a record costs no Python loop."""

    __slots__ = ("held", "source", "start", "tag")

    def __init__(self, tag: str, source: str, start_re: re.Pattern[str] | None) -> None:
        self.tag = tag
        self.source = source
        self.start = StartTest(start_re) if start_re is not None else None
        self.held: Record | None = None

    def add(self, lines: list[str], ends: list[int]) -> list[Record]:
        tag, source, n = self.tag, self.source, len(lines)
        if self.start is None:
            return list(map(Record, repeat(tag, n), repeat(source, n), lines, ends))
        if not n:
            return []
        starts = list(compress(range(n), self.start.many(lines)))
        held = self.held
        out: list[Record] = []
        if held is None:
            if not starts or starts[0]:
                starts.insert(0, 0)  # nothing to continue: the first line opens a record anyway
        else:
            first = starts[0] if starts else n
            if first:
                held.raw = "\n".join([held.raw, *lines[:first]])
                held.offset = ends[first - 1]
            if not starts:
                return out
            out.append(held)
        last = starts[-1]
        if len(starts) == n:  # every line starts a record: the usual log
            out += map(Record, repeat(tag, n - 1), repeat(source, n - 1), lines[:last], ends[:last])
        else:
            for a, b in pairwise(starts):
                out.append(Record(tag, source, lines[a] if b - a == 1 else "\n".join(lines[a:b]), ends[b - 1]))
        self.held = Record(tag, source, "\n".join(lines[last:]) if last < n - 1 else lines[last], ends[-1])
        return out

    def flush(self) -> list[Record]:
        held, self.held = self.held, None
        return [held] if held is not None else []


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
        size = self.batch_size
        for block in read_batches(path, self.tag, self.start_re, self.max_line_bytes, self):
            for i in range(0, len(block), size):
                if self._stop.is_set():
                    return
                emit(block[i:i + size])

    def commit(self, records: Sequence[Record]) -> None:
        """Replays keep no offsets."""

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def stats(self) -> dict[str, float]:
        return {"lines_total": float(self.lines), "bytes_total": float(self.bytes)}
