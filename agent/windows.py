"""Windows: group parsed records into the units detectors score — count, sliding-time and session windows.

One `Windower` per detector instance and stream. It is driven the same way online and offline: `add()`
for every record (returns the windows that record closed), `tick(now)` from a timer (closes windows whose
time is up), `flush()` at the end of a file or at shutdown. Sliding windows are closed by time alone, so
an interval with no records is still emitted as an EMPTY window: silence is a signal the volume detector
relies on. Session windows (a block id, a request id) close after `idle` seconds without a record or when
they reach `max_length` events; a longer session is split into several windows with the same key, so no
window grows without bound. Memory is bounded too: at most `max_open` sessions are held, the least
recently active one is closed first.

Sliding windows are built from panes (tumbling slices of the largest length that divides both size and
step): a record costs one append to one pane instead of one to each of the size/step windows overlapping
it, and each window is concatenated from its panes once, when it closes. `add_many` feeds a batch. A pane
that ended a step before the time that closed a window is sealed (see `agent.panes`): its times are only
kept while records may still reasonably arrive for it.

`now` and record times must be on the same clock: the header's time when the parser found one, else the
time the line was read (`Record.event_time`).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.features import WindowSummary, merge_tallies
from agent.panes import ListPane, Pane, TallyPane, pane_grid
from agent.types import Record, Window, event_times, template_ids
from agent.windowspec import WindowSpec

__all__ = ["CountedWindow", "WindowSpec", "Windower", "WindowerStats", "window_from_dict", "window_to_dict"]

_FAR = 1e15
"""Event times beyond ±this (or NaN) are refused: they name no window (and would overflow the index)."""
_MAX_EMPTY_PER_GAP = 10_000
"""Empty sliding windows emitted for one silent gap at most (a replay that jumps a year must not OOM)."""
_BULK_MIN = 32
"""Runs shorter than this go record by record: halving them further costs more than it saves."""


@dataclass(slots=True)
class WindowerStats:
    records: int = 0
    windows: int = 0
    empty_windows: int = 0
    unkeyed_records: int = 0
    late_records: int = 0
    leading_records: int = 0
    """Records before the first complete sliding window (the stream began mid-window)."""
    split_sessions: int = 0
    evicted_sessions: int = 0
    skipped_empty_windows: int = 0
    partial_windows: int = 0
    """Open windows a stop or a replay's end cut short (`finish`): dropped, not scored."""
    bad_time_records: int = 0
    untimed_records: int = 0
    """Records for a pane already sealed (a step or more late): counted, but not in the gap figures."""


@dataclass(slots=True, eq=False)
class CountedWindow(Window):
    """A sliding window that carries its summary, merged from per-pane tallies.

    A 60 s window sliding by 10 s holds every record six times; counting its events, sorting its times and
    classifying its levels per window would do that work six times per record, and so would copying its
    event lists. The features read `summary` (see `agent.features.summarize`) instead of recounting. A
    windower made with `lists=False` leaves `events`, `times` and `levels` empty (its panes never kept
    them): the window is its summary, samples, templates and sources."""

    summary: WindowSummary | None = None

    def __len__(self) -> int:
        if self.events or self.summary is None:
            return len(self.events)
        return sum(self.summary.counts.values())


@dataclass(slots=True)
class _Open:
    window: Window
    last_time: float = 0.0


class Windower:
    """Turns a stream of records into closed windows; one instance per detector and stream."""

    def __init__(self, spec: WindowSpec, stream: str, *, lists: bool = True) -> None:
        """`lists=False`: sliding windows carry their summary but no event lists (see `CountedWindow`)."""
        self.spec = spec
        self.stream = stream
        self.stats = WindowerStats()
        self._key_re = re.compile(spec.key) if spec.key is not None else None
        self._count_open: Window | None = None
        self._count_seq = 0
        self._sessions: OrderedDict[str, _Open] = OrderedDict()
        self._step = spec.step_s
        self._length = spec.length_s
        self._pane_s, self._m, self._k = pane_grid(self._length, self._step) if spec.type == "sliding" else (1.0, 1, 1)
        self._panes: dict[int, Pane] = {}
        self._pane_type: type[Pane] = ListPane if lists else TallyPane
        self._next_start: int | None = None  # index (start / step) of the oldest window not yet emitted
        self._pane_floor = 0
        """First pane of window `_next_start`: a record in an earlier pane belongs to no open window."""
        self._due_at = math.inf
        """Event time from which window `_next_start` may be due (checked exactly by `_close_sliding`)."""
        self._watermark = -math.inf
        self._lead_until = -math.inf

    def stats_dict(self) -> dict[str, float]:
        return {name: float(getattr(self.stats, name)) for name in WindowerStats.__slots__}

    # -- public API -------------------------------------------------------------------------------

    def add(self, record: Record) -> list[Window]:
        if self.spec.type == "sliding":
            return self.add_many((record,))
        self.stats.records += 1
        if self.spec.type == "count":
            return self._add_count(record)
        return self._add_session(record)

    def add_many(self, records: Iterable[Record]) -> list[Window]:
        """`add` for each record, in order; the windows they closed, in order."""
        if self.spec.type != "sliding":
            out: list[Window] = []
            for r in records:
                out.extend(self.add(r))
            return out
        return self._add_sliding(records)

    def tick(self, now: float) -> list[Window]:
        """Close the windows whose time is up at `now` (on the records' clock)."""
        if self.spec.type == "sliding":
            return self._close_sliding(now)
        if self.spec.type == "session":
            return self._close_idle(now)
        return []

    def flush(self) -> list[Window]:
        """Emit every open window, also partial ones (end of a file, shutdown)."""
        out: list[Window] = []
        if self.spec.type == "count":
            if self._count_open is not None and self._count_open.events:
                out.append(self._count_open)
            self._count_open = None
        elif self.spec.type == "sliding":
            if self._next_start is not None:
                out = [self._assemble(idx) for idx in self._windows_with_records(self._next_start, None)]
            self._panes.clear()
            self._set_next_start(None)
        else:
            out = [o.window for o in self._sessions.values()]
            self._sessions.clear()
        return self._emitted(out)

    def finish(self, *, input_ended: bool) -> list[Window]:
        """At a stop or the end of a replay: the open windows that are whole; the partial ones are dropped.

        A model learned whole windows, so a window cut short scores as anomalous for its low counts — a
        false alert on every restart and at the end of every replay. Sliding windows the records already
        passed are whole (no tick closed them yet); the others ended early. Sessions end with the input
        (a replayed file's end), not at a stop, where their requests are still in flight. A count window
        still open never reached its size."""
        whole: list[Window] = []
        if self.spec.type == "sliding" and self._watermark > -math.inf:
            whole = self._close_sliding(self._watermark)
        elif self.spec.type == "session" and input_ended:
            return self.flush()
        emitted = self.stats.windows
        self.stats.partial_windows += len(self.flush())
        self.stats.windows = emitted  # dropped, not emitted
        return whole

    # -- shared -------------------------------------------------------------------------------------

    def _new_window(self, key: str, start: float, end: float) -> Window:
        return Window(stream=self.stream, key=key, start=start, end=end)

    def _append(self, window: Window, record: Record, t: float) -> None:
        tid = record.template_id
        window.events.append(tid)
        window.times.append(t)
        window.levels.append(record.level or "")
        if t < window.start:
            window.start = t
        if t > window.end:
            window.end = t
        if record.source:
            window.sources.add(record.source)
        if tid not in window.templates and record.template:
            window.templates[tid] = record.template
        if self.spec.max_samples:
            samples = window.samples.setdefault(tid, [])
            if len(samples) < self.spec.max_samples:
                samples.append(record.raw)

    def _emitted(self, windows: list[Window]) -> list[Window]:
        self.stats.windows += len(windows)
        self.stats.empty_windows += sum(1 for w in windows if not len(w))
        return windows

    # -- count windows ------------------------------------------------------------------------------

    def _add_count(self, record: Record) -> list[Window]:
        t = record.event_time
        if self._count_open is None:
            self._count_seq += 1
            self._count_open = self._new_window(str(self._count_seq), t, t)
        self._append(self._count_open, record, t)
        if len(self._count_open.events) >= self.spec.count_size:
            done, self._count_open = self._count_open, None
            return self._emitted([done])
        return []

    # -- sliding windows ----------------------------------------------------------------------------
    #
    # Window i covers [i*step, i*step + size) = panes i*m .. i*m + k - 1 (m panes per step, k per window).

    def _set_next_start(self, idx: int | None) -> None:
        self._next_start = idx
        if idx is None:
            self._pane_floor, self._due_at = 0, math.inf
        else:
            self._pane_floor = idx * self._m
            # A little early on purpose: the exact test (floor division, as the windows are defined) decides.
            self._due_at = idx * self._step + self._length - 1e-6 * self._step

    def _add_sliding(self, records: Iterable[Record]) -> list[Window]:
        recs = records if isinstance(records, Sequence) else list(records)
        # A parsed `Batch` carries both columns (computed once for every detector and the pipeline's clock).
        times = event_times(recs)
        out: list[Window] = []
        if math.isfinite(sum(times)):  # NaN or infinity anywhere poisons the sum: those go record by record
            self._add_span(recs, times, template_ids(recs), 0, len(recs), out)
        else:
            self._add_each(recs, times, 0, len(recs), out)
        self.stats.records += len(recs)
        return out

    def _add_span(self, recs: Sequence[Record], times: list[float], tids: list[int], lo: int, hi: int,
                  out: list[Window]) -> None:
        """Records [lo, hi): appended in bulk when they all fall in one pane and close no window (a batch
        spans a second or two, a pane ten), else halved; short runs go record by record."""
        if hi - lo < _BULK_MIN:
            self._add_each(recs, times, lo, hi, out)
            return
        span = times[lo:hi] if lo or hi != len(times) else times
        first, last = min(span), max(span)
        p = math.floor(first / self._pane_s)
        if (self._next_start is None or last >= self._due_at or first <= -_FAR or last >= _FAR
                or p < self._pane_floor or math.floor(last / self._pane_s) != p):
            mid = (lo + hi) // 2
            self._add_span(recs, times, tids, lo, mid, out)
            self._add_span(recs, times, tids, mid, hi, out)
            return
        if last > self._watermark:
            self._watermark = last
        pane = self._panes.get(p)
        if pane is None:
            pane = self._panes[p] = self._pane_type()
        if pane.moments is not None:
            self.stats.untimed_records += hi - lo
        whole = not lo and hi == len(recs)
        pane.add_run(recs if whole else recs[lo:hi], span, tids if whole else tids[lo:hi], self.spec.max_samples)

    def _add_each(self, recs: Sequence[Record], times: list[float], lo: int, hi: int, out: list[Window]) -> None:
        stats = self.stats
        panes = self._panes
        pane_s = self._pane_s
        max_samples = self.spec.max_samples
        floor = math.floor
        for i in range(lo, hi):
            t = times[i]
            if not -_FAR < t < _FAR:  # NaN or infinite: no window holds it
                stats.bad_time_records += 1
                continue
            if t >= self._due_at:
                out.extend(self._close_sliding(t))
            if t > self._watermark:
                self._watermark = t
            p = floor(t / pane_s)
            if self._next_start is None:
                # Windows that began before the stream did would be scored on a fraction of their span and
                # look anomalously quiet; the first one emitted is the first that starts at or after this record.
                first = math.ceil(t / self._step)
                self._set_next_start(first)
                self._lead_until = first * self._step
            if p < self._pane_floor:
                if t < self._lead_until:
                    stats.leading_records += 1
                else:
                    stats.late_records += 1
                continue
            pane = panes.get(p)
            if pane is None:
                pane = panes[p] = self._pane_type()
            elif pane.moments is not None:
                stats.untimed_records += 1
            pane.add(recs[i], t, max_samples)

    def _assemble(self, idx: int) -> Window:
        """Window `idx` from its panes (which stay: the next windows share them), with its summary."""
        start = idx * self._step
        window = CountedWindow(stream=self.stream, key=_fmt_start(start), start=start, end=start + self._length)
        first = idx * self._m
        parts = [p for p in map(self._panes.get, range(first, first + self._k)) if p is not None]
        window.summary = merge_tallies([p.tally() for p in parts])
        if not parts:
            return window
        if len(parts) == 1 and self._k == 1:  # tumbling: the pane is this window's alone
            only = parts[0]
            if isinstance(only, ListPane):
                window.events, window.times, window.levels = only.events, only.times, only.levels
            window.templates, window.sources = only.templates, only.sources
            window.samples = only.samples if self.spec.max_samples else {}
            return window
        events, times, levels = window.events, window.times, window.levels
        sources = window.sources
        templates = window.templates
        samples = window.samples
        max_samples = self.spec.max_samples
        for pane in parts:
            if isinstance(pane, ListPane):
                events += pane.events
                times += pane.times
                levels += pane.levels
            sources |= pane.sources
            for tid, text in pane.templates.items():
                templates.setdefault(tid, text)
            if max_samples:
                for tid, lines in pane.samples.items():
                    have = samples.get(tid)
                    if have is None:
                        samples[tid] = lines[:max_samples]
                    elif len(have) < max_samples:
                        have += lines[: max_samples - len(have)]
        return window

    def _windows_with_records(self, lo: int, hi: int | None) -> list[int]:
        """Indices in [lo, hi) (or [lo, ∞)) of the windows that hold at least one pane, ascending."""
        m, k = self._m, self._k
        found: set[int] = set()
        for p in self._panes:
            first = max(lo, -((k - 1 - p) // m))  # ceil((p - k + 1) / m)
            last = p // m if hi is None else min(p // m, hi - 1)
            found.update(range(first, last + 1))
        return sorted(found)

    def _close_sliding(self, now: float) -> list[Window]:
        if self._next_start is None:
            return []
        step, length = self._step, self._length
        # Every window whose end is <= now is due, empty or not.
        due_last = math.floor((now - length) / step)
        if due_last < self._next_start:
            return []
        out: list[Window] = []
        if due_last - self._next_start + 1 > _MAX_EMPTY_PER_GAP:
            keep_from = due_last - _MAX_EMPTY_PER_GAP + 1
            out = [self._assemble(idx) for idx in self._windows_with_records(self._next_start, keep_from)]
            self.stats.skipped_empty_windows += keep_from - self._next_start - len(out)
            self._drop_panes_before(keep_from * self._m)
            self._next_start = keep_from
        for idx in range(self._next_start, due_last + 1):
            out.append(self._assemble(idx))
        self._drop_panes_before((due_last + 1) * self._m)
        self._set_next_start(due_last + 1)
        sealed_before = math.floor((now - self._step) / self._pane_s)
        for p, pane in self._panes.items():
            if p < sealed_before:
                pane.seal()
        return self._emitted(out)

    def _drop_panes_before(self, pane: int) -> None:
        for p in [p for p in self._panes if p < pane]:
            del self._panes[p]

    # -- session windows ----------------------------------------------------------------------------

    def _session_key(self, record: Record) -> str | None:
        if self.spec.key_field is not None and record.fields:
            value = record.fields.get(self.spec.key_field)
            if value:
                return value
        if self._key_re is not None:
            m = self._key_re.search(record.raw)
            if m:
                return m.group(1) if m.groups() and m.group(1) is not None else m.group(0)
        return None

    def _add_session(self, record: Record) -> list[Window]:
        key = self._session_key(record)
        if key is None:
            self.stats.unkeyed_records += 1
            return []
        t = record.event_time
        out: list[Window] = []
        if t > self._watermark:
            self._watermark = t
        opened = self._sessions.get(key)
        if opened is None:
            if len(self._sessions) >= self.spec.max_open:
                _old_key, oldest = self._sessions.popitem(last=False)
                self.stats.evicted_sessions += 1
                out.append(oldest.window)
            opened = _Open(self._new_window(key, t, t), t)
            self._sessions[key] = opened
        else:
            self._sessions.move_to_end(key)
        self._append(opened.window, record, t)
        opened.last_time = max(opened.last_time, t)
        if len(opened.window.events) >= self.spec.max_length:
            out.append(opened.window)
            self.stats.split_sessions += 1
            del self._sessions[key]
        return self._emitted(out)

    def _close_idle(self, now: float) -> list[Window]:
        """Sessions are kept in order of last activity, so only the idle prefix is visited."""
        idle = self.spec.idle.seconds
        out: list[Window] = []
        while self._sessions:
            key, opened = next(iter(self._sessions.items()))
            if opened.last_time + idle > now:
                break
            del self._sessions[key]
            out.append(opened.window)
        return self._emitted(out)


def _fmt_start(start: float) -> str:
    return f"{start:.3f}".rstrip("0").rstrip(".")


def window_to_dict(window: Window) -> dict[str, Any]:
    """The compact JSON form training needs (no samples): what the daemon hands its training child."""
    return {
        "key": window.key,
        "start": window.start,
        "end": window.end,
        "events": list(window.events),
        "times": list(window.times),
        "levels": list(window.levels),
    }


def window_from_dict(data: dict[str, Any], stream: str = "") -> Window:
    return Window(
        stream=stream,
        key=str(data.get("key", "")),
        start=float(data.get("start", 0.0)),
        end=float(data.get("end", 0.0)),
        events=[int(e) for e in data.get("events", [])],
        times=[float(t) for t in data.get("times", [])],
        levels=[str(lv) for lv in data.get("levels", [])],
    )

