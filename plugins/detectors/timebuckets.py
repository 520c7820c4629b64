"""Event-time buckets shared by the volume and params detectors: aligned, closed in order, empty ones too.

A bucket `[i*size, (i+1)*size)` closes when a record of a later bucket arrives or when `tick(now)` passes its
end plus a lateness allowance — so a source that stops writing still gets its empty buckets closed and
scored (silence is the signal). A jump longer than `max_gap` (a daemon that was down, a replayed file with a
hole) closes only `max_gap` worth of empty buckets and skips the rest: the detector was not watching then,
and scoring hours of "silence" it did not witness would only bury the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.clock import Clock


@dataclass(slots=True)
class BucketStats:
    closed: int = 0
    skipped: int = 0
    late_records: int = 0


class BucketClock:
    def __init__(self, size_s: float, delay_s: float, max_gap_s: float, close: Callable[[int], None]) -> None:
        self.size_s = size_s
        self.delay_s = delay_s
        self.max_gap = max(1, int(max_gap_s // size_s))
        self.current: int | None = None
        """Index of the open bucket; None until the first record (or restored state) sets it."""
        self.counters = BucketStats()
        self._close = close

    def index(self, t: float) -> int:
        return int(t // self.size_s)

    def start_of(self, index: int) -> float:
        return index * self.size_s

    def place(self, t: float) -> bool:
        """Move the open bucket to the one holding `t` (closing earlier ones); False for a late record,
        which the caller counts into the open bucket."""
        b = self.index(t)
        if self.current is None:
            self.current = b
            return True
        if b > self.current:
            self._advance(b)
            return True
        if b < self.current:
            self.counters.late_records += 1
            return False
        return True

    def tick(self, now: float, start: bool = False) -> None:
        """Close the buckets whose time is up; with `start`, a clock that has no open bucket opens one at
        `now` (a restarted detector with a baseline must notice silence even if no record ever comes)."""
        b = self.index(now - self.delay_s)
        if self.current is None:
            if start:
                self.current = b
            return
        if b > self.current:
            self._advance(b)

    def _advance(self, b: int) -> None:
        assert self.current is not None
        first = self.current
        last = b - 1
        if last - first + 1 > self.max_gap:
            self.counters.skipped += last - first + 1 - self.max_gap
            ids = [first, *range(last - self.max_gap + 2, last + 1)]
        else:
            ids = list(range(first, last + 1))
        for i in ids:
            self._close(i)
            self.counters.closed += 1
        self.current = b


class SaveThrottle:
    """Writes a detector's baseline when it changed, at most every `interval_s`, and always on `flush`.

    Baselines change with every closed bucket; writing them that often would put an fsync on the worker
    several times a minute for no gain, while losing more than `interval_s` of learning to a crash is cheap.
    """

    __slots__ = ("_clock", "_dirty", "_interval_s", "_last", "_write")

    def __init__(self, clock: Clock, interval_s: float, write: Callable[[], None]) -> None:
        self._clock = clock
        self._interval_s = interval_s
        self._write = write
        self._dirty = False
        self._last = clock.monotonic()

    def changed(self) -> None:
        self._dirty = True

    def maybe_save(self) -> None:
        if self._dirty and self._clock.monotonic() - self._last >= self._interval_s:
            self.flush()

    def flush(self) -> None:
        if self._dirty:
            self._write()
            self._dirty = False
            self._last = self._clock.monotonic()
