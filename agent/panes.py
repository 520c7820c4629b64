"""Panes: the tumbling slices a sliding window is assembled from (see `agent.windows`).

A record is added to exactly one pane instead of to each of the `size / step` windows overlapping it, and
each window is concatenated from its panes once, when it closes. A pane is also tallied once (template
counts, levels, gap moments) and each window's summary merged from its panes' tallies, so the features do
not recount every record once per window holding it.

Two kinds: a `ListPane` keeps every record's id, time and level (the windows of detectors that read event
sequences), a `TallyPane` only what the tally needs — times in an `array('d')` (8 bytes a record, against
~50 for three list slots, a float object and its share of the lists' slack) and counts of level strings. At
20k lines/s a 60 s window sliding by 10 s holds 1.4M records in its panes: ~70 MB of lists, ~11 MB of array.

A pane whose time is well past is sealed (`seal`): its gap moments are computed once and a `TallyPane`
drops its times, so only the two or three youngest panes hold any. A record that arrives for a sealed pane
(later than the windower's grace) still counts everywhere except in the gap figures, in both kinds, so a
summary does not depend on which kind of pane it was merged from.

This is the per-record hot path of every windowed detector, so a batch is taken apart into columns by list
comprehensions (specialised attribute loads; `map(attrgetter)` costs about twice as much per record in
CPython 3.11) and counted by C-level `Counter.update`, and the sample lines are found by `list.index`
calls that never scan in vain: the pane's running counts say how many occurrences a batch holds.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import cast

from agent.features import GapMoments, Tally, gap_moments, level_counts_of
from agent.types import Record


class Pane:
    """Records of one tumbling slice `[i*pane, (i+1)*pane)`: their running counts, samples, templates and
    sources; the subclasses keep the per-record columns.

    Invariants the bulk path relies on: `counts[tid]` is the number of `tid` records added, and with
    `max_samples > 0`, `samples[tid]` holds the raw lines of the first `min(counts[tid], max_samples)` of
    them (so a template whose samples are not full has all its occurrences sampled)."""

    __slots__ = ("_tallied", "_tally", "counts", "moments", "n", "samples", "sources", "templates")

    def __init__(self) -> None:
        self.n = 0
        self.counts: Counter[int] = Counter()
        self.samples: dict[int, list[str]] = {}
        self.templates: dict[int, str] = {}
        self.sources: set[str] = set()
        self.moments: GapMoments | None = None
        """Set by `seal`: the gap moments of the times the pane had then, final."""
        self._tally: Tally | None = None
        self._tallied = -1

    def tally(self) -> Tally:
        """The pane's tally, recomputed only when records arrived since (a late record)."""
        if self._tally is None or self._tallied != self.n:
            errors, warns = self._level_counts()
            moments = self.moments if self.moments is not None else gap_moments(self._times())
            self._tally = Tally(dict(self.counts), errors, warns, self.n, *moments)
            self._tallied = self.n
        return self._tally

    def seal(self) -> None:
        """Fix the gap moments (later records no longer move them) and let go of what only they needed."""
        if self.moments is None:
            t = self._tally
            if t is not None and self._tallied == self.n:  # tallied when its last window closed: no new sort
                self.moments = (t.n_times, t.first, t.last, t.gap_mean, t.gap_m2)
            else:
                self.moments = gap_moments(self._times())
            self._drop_times()

    def _times(self) -> Sequence[float]:
        raise NotImplementedError

    def _drop_times(self) -> None:
        raise NotImplementedError

    def _level_counts(self) -> tuple[int, int]:
        raise NotImplementedError

    def _column(self, tid: int, t: float, level: str) -> None:
        raise NotImplementedError

    def _columns(self, tids: list[int], times: list[float], levels: list[str | None]) -> None:
        raise NotImplementedError

    def add(self, record: Record, t: float, max_samples: int) -> None:
        """One record (the record-by-record path: runs that cross a pane or close a window)."""
        tid = record.template_id
        self.n += 1
        self._column(tid, t, record.level or "")
        self.counts[tid] += 1
        if record.source:
            self.sources.add(record.source)
        samples = self.samples.get(tid)
        if samples is None:
            self.samples[tid] = [record.raw] if max_samples else []
            if record.template:
                self.templates[tid] = record.template
        elif len(samples) < max_samples:
            samples.append(record.raw)

    def add_run(self, recs: Sequence[Record], times: list[float], tids: list[int], max_samples: int) -> None:
        """A run of records that all belong here (with their time and template id columns), by C-level list
        operations; the columns, samples and templates are exactly those of `add` for each record in turn."""
        self.n += len(tids)
        self._columns(tids, times, [r.level for r in recs])
        sources = self.sources
        sources |= {r.source for r in recs}
        sources.discard("")
        counts = self.counts
        counts.update(tids)
        samples, templates = self.samples, self.templates
        for tid in dict.fromkeys(tids):
            have = samples.get(tid)
            if have is None:
                i = tids.index(tid)
                first = recs[i]
                if first.template:
                    templates[tid] = first.template
                if not max_samples:
                    samples[tid] = []
                    continue
                have = samples[tid] = [first.raw]
                # Occurrences in this run after the first: all of them, as the template is new to the pane.
                wanted = min(max_samples, counts[tid]) - 1
            else:
                held = len(have)
                if held >= max_samples:
                    continue
                # Not full, so every earlier occurrence is sampled: the run holds counts - held of them.
                wanted = min(max_samples, counts[tid]) - held
                i = -1
            for _ in range(wanted):
                i = tids.index(tid, i + 1)
                have.append(recs[i].raw)


class ListPane(Pane):
    """A pane that keeps every record's template id, time and level, in arrival order (also once sealed:
    the windows' lists are made of them)."""

    __slots__ = ("events", "levels", "times")

    def __init__(self) -> None:
        super().__init__()
        self.events: list[int] = []
        self.times: list[float] = []
        self.levels: list[str] = []

    def _times(self) -> Sequence[float]:
        return self.times

    def _drop_times(self) -> None:
        pass

    def _level_counts(self) -> tuple[int, int]:
        return level_counts_of(Counter(self.levels))

    def _column(self, tid: int, t: float, level: str) -> None:
        self.events.append(tid)
        self.times.append(t)
        self.levels.append(level)

    def _columns(self, tids: list[int], times: list[float], levels: list[str | None]) -> None:
        self.events += tids
        self.times += times
        self.levels += [lv or "" for lv in levels] if None in levels else cast(list[str], levels)


class TallyPane(Pane):
    """A pane that keeps only what its tally needs: the times until sealed (for the gap moments) and
    counts of level strings."""

    __slots__ = ("level_counts", "times")

    def __init__(self) -> None:
        super().__init__()
        self.times = array("d")
        self.level_counts: Counter[str | None] = Counter()
        """By level string as recorded; None and "" both mean no level (as `ListPane` stores "")."""

    def _times(self) -> Sequence[float]:
        return self.times

    def _drop_times(self) -> None:
        self.times = array("d")

    def _level_counts(self) -> tuple[int, int]:
        return level_counts_of(self.level_counts)

    def _column(self, tid: int, t: float, level: str) -> None:
        if self.moments is None:
            self.times.append(t)
        self.level_counts[level] += 1

    def _columns(self, tids: list[int], times: list[float], levels: list[str | None]) -> None:
        if self.moments is None:
            self.times.extend(times)
        self.level_counts.update(levels)


def pane_grid(length: float, step: float) -> tuple[float, int, int]:
    """(pane length, panes per step, panes per window): the largest pane that tiles both (µs resolution)."""
    fl = Fraction(length).limit_denominator(1_000_000)
    fs = Fraction(step).limit_denominator(1_000_000)
    g = Fraction(math.gcd(fl.numerator * fs.denominator, fs.numerator * fl.denominator), fl.denominator * fs.denominator)
    if g <= 0:
        return step, 1, max(1, round(length / step))
    return float(g), int(fs / g), int(fl / g)
