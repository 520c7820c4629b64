"""Multiline records: a line matching `start` opens a record, the lines after it (a stack trace) join it.

A record is complete when the next start line arrives, when no line came for `flush` seconds, or when it
reaches `max_lines`/`max_bytes`. Its offset is the end of its last line, so a record held here at a crash
is simply read again after the restart: nothing held in memory is ever committed.
"""

from __future__ import annotations

import itertools
import operator
import re

from agent.linestart import StartTest
from plugins.inputs.tail.config import MultilineConfig


class MultilineRules:
    __slots__ = ("flush_s", "max_bytes", "max_lines", "start")

    def __init__(self, config: MultilineConfig) -> None:
        self.start = StartTest(re.compile(config.start))
        self.flush_s = config.flush.seconds
        self.max_lines = config.max_lines
        self.max_bytes = config.max_bytes.bytes


class MultilineBuffer:
    """The record being assembled for one file."""

    __slots__ = ("_bytes", "_end", "_lines", "_rules", "last_at")

    def __init__(self, rules: MultilineRules) -> None:
        self._rules = rules
        self._lines: list[str] = []
        self._bytes = 0
        self._end = 0
        self.last_at = 0.0

    def __bool__(self) -> bool:
        return bool(self._lines)

    def push(self, text: str, end: int, now: float) -> tuple[list[tuple[str, int]], int]:
        """Add a line; returns the records it completed and how many of them a size limit forced out."""
        out: list[tuple[str, int]] = []
        forced = 0
        if self._lines and self._rules.start.one(text):
            out.append(self._take())
        self._lines.append(text)
        self._bytes += len(text) + 1
        self._end = end
        self.last_at = now
        if len(self._lines) >= self._rules.max_lines or self._bytes >= self._rules.max_bytes:
            out.append(self._take())
            forced += 1
        return out, forced

    def push_many(self, lines: list[str], ends: list[int], now: float) -> tuple[list[str], list[int], int]:
        """`push` for each line in turn, in bulk: the texts and end offsets of the records completed, and
        how many of them a size limit forced out.

        The start pattern runs over all lines in one C-level `map`; records are then cut between start
        lines. When a record could reach `max_lines` or `max_bytes`, the lines go through `push` one by one,
        so the limits behave exactly as there.
        """
        n = len(lines)
        if not n:
            return [], [], 0
        rules = self._rules
        starts = list(itertools.compress(range(n), rules.start.many(lines)))
        held = self._lines
        bounds = [*starts, n]
        longest = max(itertools.starmap(operator.sub, zip(bounds[1:], bounds, strict=False)), default=0)
        if (
            max(longest, len(held) + bounds[0]) >= rules.max_lines
            or self._bytes + sum(map(len, lines)) + n >= rules.max_bytes
        ):
            return self._push_each(lines, ends, now)
        texts: list[str] = []
        tends: list[int] = []
        if starts:
            first = starts[0]
            if held or first:  # lines before the first start continue the held record (or make their own)
                texts.append("\n".join(held + lines[:first]))
                tends.append(ends[first - 1] if first else self._end)
            if len(starts) == n:  # every line starts a record: the usual log, nothing to join
                texts += lines[: n - 1]
                tends += ends[: n - 1]
            else:
                for a, b in itertools.pairwise(starts):
                    texts.append(lines[a] if b - a == 1 else "\n".join(lines[a:b]))
                    tends.append(ends[b - 1])
            self._lines = lines[starts[-1] :]
            self._bytes = sum(map(len, self._lines)) + len(self._lines)
        else:
            self._lines = held + lines
            self._bytes += sum(map(len, lines)) + n
        self._end = ends[-1]
        self.last_at = now
        return texts, tends, 0

    def _push_each(self, lines: list[str], ends: list[int], now: float) -> tuple[list[str], list[int], int]:
        texts: list[str] = []
        tends: list[int] = []
        forced = 0
        for text, end in zip(lines, ends, strict=True):
            done, f = self.push(text, end, now)
            forced += f
            for joined, jend in done:
                texts.append(joined)
                tends.append(jend)
        return texts, tends, forced

    def due(self, now: float) -> bool:
        return bool(self._lines) and now - self.last_at >= self._rules.flush_s

    def deadline(self) -> float | None:
        return self.last_at + self._rules.flush_s if self._lines else None

    def take(self) -> tuple[str, int] | None:
        return self._take() if self._lines else None

    def _take(self) -> tuple[str, int]:
        record = ("\n".join(self._lines), self._end)
        self._lines = []
        self._bytes = 0
        return record
