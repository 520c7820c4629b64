"""Reading whole files as an input, for `replay` and `demo`: as fast as the pipeline takes them.

It implements the same `Input` protocol as `tail` (its thread emits batches into the pipeline's queue), and
`replay` also takes its `batches()` on one thread into `Pipeline.process_inline`: either way the stages
run exactly the code `run` runs; only where the lines come from differs. Lines are decoded with
replacement and over-long lines truncated, like the tail input; records starting with whitespace are
joined to the previous record (stack traces) when the input section configures a multiline start pattern.
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


_BLOCK = 1 << 14
"""Bytes read and decoded at a time: one decode and one split per block instead of per line. 16 KiB is
about a hundred lines, so a replay's batch is made just before the stages read it and stays in the
CPU's cache through all of them. Cachegrind (100k-line replay, all detectors, a 1 MiB last level like
this host's L2) counted 108 last-level misses a line with 1 MiB blocks, 82 with 64 KiB, 40 with 16 KiB
for about the same instructions; timed in alternation on one thread, 16 KiB ran ~10% faster than 64 KiB."""


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

    A block's complete lines are decoded straight out of the read buffer (a memoryview, no copy) and split
    once; a newline is ASCII, so no invalid sequence spans one and this equals the per-line decode. The
    line cut across the previous block ends is the only one assembled by concatenation, and of a line
    longer than `max_line_bytes` only what is kept is held, whatever its length."""
    counts = counts if counts is not None else _Counts()
    joiner = _Joiner(tag, str(path), start_re)
    offset = 0
    rest, rest_len = b"", 0  # the open line's first bytes (at most max_line_bytes) and its full length
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:  # no line end yet: a line longer than a block
                if len(rest) < max_line_bytes:
                    rest = (rest + chunk)[:max_line_bytes]
                rest_len += len(chunk)
                continue
            first = chunk.find(b"\n") + 1 if rest_len else 0  # the open line ends in this chunk
            lines, lens = _decode_lines(memoryview(chunk)[first:cut], max_line_bytes)
            if rest_len:
                if len(rest) < max_line_bytes:
                    rest += chunk[:first - 1]
                lines.insert(0, _decode_line(rest, max_line_bytes))
                lens.insert(0, rest_len + first - 1)
            # offset + the lengths so far + one newline per line, all in C-level maps
            ends = list(map(add, accumulate(lens), count(offset + 1)))
            consumed = rest_len + cut
            counts.bytes += consumed
            counts.lines += len(lines)
            offset += consumed
            rest, rest_len = chunk[cut:cut + max_line_bytes], len(chunk) - cut
            yield joiner.add(lines, ends)
    if rest_len:  # the last line has no newline
        counts.bytes += rest_len
        counts.lines += 1
        yield joiner.add([_decode_line(rest, max_line_bytes)], [offset + rest_len])
    last = joiner.flush()
    if last:
        yield last


def _decode_line(data: bytes, max_line_bytes: int) -> str:
    return data[:max_line_bytes].rstrip(b"\r").decode("utf-8", "replace")


def _decode_lines(body: memoryview, max_line_bytes: int) -> tuple[list[str], list[int]]:
    """The lines of `body` (whole lines, each ending with a newline) and their lengths in bytes. An ASCII
    block (the usual log) takes its byte lengths from the decoded text; any other is split as bytes too."""
    text = str(body, "utf-8", "replace")
    lines = text.split("\n")
    lines.pop()  # the empty piece after the last newline
    if text.isascii():
        lens = list(map(len, lines))
        if lens and max(lens) > max_line_bytes:
            return [line[:max_line_bytes].rstrip("\r") for line in lines], lens
    else:
        pieces = bytes(body).split(b"\n")
        pieces.pop()
        lens = list(map(len, pieces))
        if max(lens) > max_line_bytes:
            return [_decode_line(p, max_line_bytes) for p in pieces], lens
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    return lines, lens


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
        batch_size: int = 256,
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
            for batch in self.batches():
                emit(batch)
        except QueueClosed:
            pass
        finally:
            self.done.set()

    def batches(self) -> Iterator[list[Record]]:
        """The files' records in batches of at most `batch_size`, counting lines and bytes as it goes; what
        the input thread emits, or what `replay` hands the pipeline on its own thread."""
        size = self.batch_size
        for path in self.paths:
            for block in read_batches(path, self.tag, self.start_re, self.max_line_bytes, self):
                for i in range(0, len(block), size):
                    if self._stop.is_set():
                        return
                    yield block if len(block) <= size else block[i:i + size]

    def commit(self, records: Sequence[Record]) -> None:
        """Replays keep no offsets."""

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def stats(self) -> dict[str, float]:
        return {"lines_total": float(self.lines), "bytes_total": float(self.bytes)}
