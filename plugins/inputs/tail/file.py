"""One followed file: its descriptor, identity, read position, and the split of its bytes into lines.

Only complete lines leave this object. The bytes of an unfinished last line wait in `buf` (bounded by
`max_line_size`), so a record is never emitted half-written; the offset a record carries is the byte just
past its newline, which is what a restart resumes from. Reading uses `pread` at our own position, so a
writer, a truncation or a rename can never move it behind our back.
"""

from __future__ import annotations

import itertools
import operator
import os
import re
import threading
from dataclasses import dataclass
from typing import Literal

from plugins.inputs.tail.identity import MARKER_SIZE, FileId, digest, read_fingerprint
from plugins.inputs.tail.multiline import MultilineBuffer
from plugins.inputs.tail.stats import TailStats

_NON_NUL = re.compile(rb"[^\x00]")

HISTORY_CAP = 16 * 1024 * 1024
"""Uncommitted bytes kept for offset markers; past it, old commits are saved without a marker."""


@dataclass(frozen=True, slots=True)
class LineRules:
    max_line_size: int
    long_lines: Literal["skip", "truncate"]
    encoding: str


def safe_cut(data: bytes, limit: int, encoding: str) -> bytes:
    """The first `limit` bytes, shortened so that no character is cut in half (UTF-8 or any multibyte)."""
    cut = data[:limit]
    try:
        cut.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start >= len(cut) - 4 and exc.reason.startswith("unexpected end"):
            return cut[: exc.start]
    return cut


class Cursor:
    """The bytes between the last committed offset and the read position of one file generation.

    A commit arrives on the pipeline's thread, possibly after the file was truncated, renamed or closed;
    the marker of the committed offset is computed from these bytes, not from the file as it is by then.
    """

    __slots__ = ("_hist", "_lock", "_start", "closed_at", "committed", "emitted", "file_id", "path")

    def __init__(self, file_id: FileId, path: str, start: int) -> None:
        self.file_id = file_id
        self.path = path
        self._hist = bytearray()
        self._start = start
        self._lock = threading.Lock()
        self.emitted = start
        self.committed = start
        self.closed_at: float | None = None

    def append(self, offset: int, data: bytes) -> None:
        with self._lock:
            if offset != self._start + len(self._hist):
                self._hist.clear()
                self._start = offset
            self._hist += data
            excess = len(self._hist) - HISTORY_CAP
            if excess > 0:
                del self._hist[:excess]
                self._start += excess

    def seed(self, offset: int, data: bytes) -> None:
        """Start the history with `data`, read from the file at `offset`."""
        with self._lock:
            self._hist = bytearray(data)
            self._start = offset

    def marker_for(self, offset: int) -> str | None:
        """Marker of the bytes before `offset`; drops history before it (commits come in order)."""
        with self._lock:
            self.committed = max(self.committed, offset)
            lo = max(0, offset - MARKER_SIZE)
            end = self._start + len(self._hist)
            if lo < self._start or offset > end:
                return None
            marker = digest(memoryview(self._hist)[lo - self._start : offset - self._start])
            del self._hist[: lo - self._start]
            self._start = lo
            return marker


class TailFile:
    """A file we hold open. `path` is the name it was found under (the stream's name in records)."""

    __slots__ = (
        "buf",
        "cursor",
        "denied_logged",
        "dev",
        "discarding",
        "fd",
        "fp",
        "gen",
        "ino",
        "keep",
        "last_seen",
        "line_start",
        "multiline",
        "path",
        "read_pos",
        "read_wall",
        "recovered",
        "rotated_at",
        "tail",
    )

    def __init__(self, path: str, fd: int, dev: int, ino: int, start: int) -> None:
        self.path = path
        self.fd = fd
        self.dev = dev
        self.ino = ino
        self.read_pos = start
        self.read_wall = 0.0
        """Wall time of the last look at this file (cut-off for finding copies we never saw)."""
        self.line_start = start
        self.buf = bytearray()
        self.discarding = False
        self.keep: bytes | None = None
        self.fp: str | None = None
        self.gen = 0
        self.cursor: Cursor | None = None
        self.rotated_at: float | None = None
        self.recovered = False
        self.tail = b""
        self.last_seen: tuple[int, int] = (-1, -1)
        self.multiline: MultilineBuffer | None = None
        self.denied_logged = False

    @property
    def key(self) -> tuple[int, int]:
        return (self.dev, self.ino)

    def identify(self, since: int, rules: LineRules) -> Cursor | None:
        """Fix the fingerprint once the first line is complete; records need a stable file id.

        `since` is where the lines just split began; the cursor is seeded with the bytes from just before
        it up to the read position, so their offsets get markers too.
        """
        if self.cursor is not None:
            return self.cursor
        self.fp = read_fingerprint(self.fd, min(1024, rules.max_line_size))
        if self.fp is None:
            return None
        self.cursor = Cursor(FileId(self.dev, self.ino, self.fp, self.gen), self.path, since)
        lo = max(0, since - MARKER_SIZE)
        try:
            seen = os.pread(self.fd, self.read_pos - lo, lo)
        except OSError:
            seen = b""
        self.cursor.seed(lo, seen)
        return self.cursor

    def seek(self, offset: int) -> None:
        """Continue at `offset` (a saved or recovered position), remembering the bytes just before it."""
        self.read_pos = self.line_start = offset
        lo = max(0, offset - MARKER_SIZE)
        try:
            self.tail = os.pread(self.fd, offset - lo, lo)
        except OSError:
            self.tail = b""

    def tail_intact(self) -> bool:
        """Are the last bytes we read still in the file? False after a truncate-and-rewrite we missed."""
        if not self.tail:
            return True
        try:
            now = os.pread(self.fd, len(self.tail), self.read_pos - len(self.tail))
        except OSError:
            return True
        return now == self.tail

    def reset(self) -> None:
        """Start over at byte 0 as a new content generation (after a truncation)."""
        self.read_pos = 0
        self.line_start = 0
        self.buf.clear()
        self.discarding = False
        self.keep = None
        self.fp = None
        self.gen += 1
        self.cursor = None
        self.tail = b""
        self.last_seen = (-1, -1)
        self.multiline = None

    def feed(self, data: bytes, rules: LineRules, stats: TailStats) -> tuple[bytes, list[int]]:
        """Split freshly read bytes (which start at `read_pos`) into complete lines.

        Returns the lines joined by b"\\n" (one buffer, so the caller decodes them with one call) and the end
        offset of each. The usual chunk (no NUL byte, no over-long line) is split with a few C-level calls;
        anything unusual takes the line-by-line path, which handles every case.
        """
        base = self.read_pos
        self.read_pos += len(data)
        self.tail = (self.tail + data[-MARKER_SIZE:])[-MARKER_SIZE:]
        if self.cursor is not None:
            self.cursor.append(base, data)
        if not self.discarding and self.keep is None and b"\x00" not in data:
            got = self._split_fast(data, base, rules, stats)
            if got is not None:
                return got
        lines = self._split(data, base, rules, stats)
        return b"\n".join([line for line, _ in lines]), [end for _, end in lines]

    def _split_fast(self, data: bytes, base: int, rules: LineRules, stats: TailStats) -> tuple[bytes, list[int]] | None:
        """The common case in bulk; None (and nothing changed) when a line is too long or none is complete."""
        last = data.rfind(b"\n")
        if last < 0:
            return None
        held = len(self.buf)
        head = bytes(self.buf) + data[:last] if held else data[:last]
        lines = head.split(b"\n")
        if max(map(len, lines)) > rules.max_line_size:
            return None
        begin = base - held + 1  # line i ends at begin + (its length and those before it) + i
        ends = list(map(operator.add, itertools.accumulate(map(len, lines)), range(begin, begin + len(lines))))
        self.buf.clear()
        self.line_start = base + last + 1
        if last + 1 < len(data):
            self._hold(data[last + 1 :], rules, stats)
        return head, ends

    def _split(self, data: bytes, base: int, rules: LineRules, stats: TailStats) -> list[tuple[bytes, int]]:
        """Line by line: NUL padding, held partial lines, lines over `max_line_size`."""
        out: list[tuple[bytes, int]] = []
        start = 0
        n = len(data)
        find = data.find
        while start < n:
            if not self.buf and not self.discarding and self.keep is None and data[start] == 0:
                m = _NON_NUL.search(data, start)
                skip_to = m.start() if m else n
                stats.nul_bytes_skipped += skip_to - start
                start = skip_to
                self.line_start = base + start
                if start >= n:
                    break
            nl = find(b"\n", start)
            if nl < 0:
                self._hold(data[start:], rules, stats)
                break
            end = base + nl + 1
            if self.discarding:
                if self.keep is not None:
                    out.append((self.keep, end))
                self.discarding = False
                self.keep = None
            elif self.buf:
                self.buf += data[start:nl]
                line = bytes(self.buf)
                self.buf.clear()
                self._line(line, end, rules, stats, out)
            else:
                self._line(data[start:nl], end, rules, stats, out)
            start = nl + 1
            self.line_start = end
        return out

    def _line(self, line: bytes, end: int, rules: LineRules, stats: TailStats, out: list[tuple[bytes, int]]) -> None:
        if len(line) > rules.max_line_size:
            if rules.long_lines == "skip":
                stats.long_lines_skipped += 1
                return
            stats.long_lines_truncated += 1
            line = safe_cut(line, rules.max_line_size, rules.encoding)
        out.append((line, end))

    def _hold(self, rest: bytes, rules: LineRules, stats: TailStats) -> None:
        """Keep an unfinished line; once it outgrows the limit, keep only what `long_lines` needs."""
        if self.discarding:
            return
        self.buf += rest
        if len(self.buf) > rules.max_line_size:
            self.discarding = True
            if rules.long_lines == "skip":
                stats.long_lines_skipped += 1
                self.keep = None
            else:
                stats.long_lines_truncated += 1
                self.keep = safe_cut(bytes(self.buf), rules.max_line_size, rules.encoding)
            self.buf.clear()

    def take_partial(self) -> tuple[bytes, int] | None:
        """The unfinished last line, for a file that is gone and will never complete it."""
        self.line_start = self.read_pos
        if self.keep is not None:
            line, self.keep, self.discarding = self.keep, None, False
            return (line, self.read_pos)
        self.discarding = False
        if not self.buf:
            return None
        line = bytes(self.buf)
        self.buf.clear()
        return (line, self.read_pos)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.fd = -1
