"""Panes: the tumbling slices a sliding window is assembled from (see `agent.windows`).

A record is added to exactly one pane instead of to each of the `size / step` windows overlapping it, and
each window is concatenated from its panes once, when it closes. A pane is also tallied once (template
counts, levels, gap moments) and each window's summary merged from its panes' tallies, so the features do
not recount every record once per window holding it.

This is the per-record hot path of every windowed detector, so a batch is taken apart into columns by list
comprehensions (specialised attribute loads; `map(attrgetter)` costs about twice as much per record in
CPython 3.11) and counted by C-level `Counter.update`, and the sample lines are found by `list.index`
calls that never scan in vain: the pane's running counts say how many occurrences a batch holds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import cast

from agent.features import Tally, tally_counted
from agent.types import Record


class Pane:
    """Records of one tumbling slice `[i*pane, (i+1)*pane)`, in arrival order, with their running counts.

    Invariants the bulk path relies on: `counts[tid]` is the number of `tid` in `events`, and with
    `max_samples > 0`, `samples[tid]` holds the raw lines of the first `min(counts[tid], max_samples)` of
    them (so a template whose samples are not full has all its occurrences sampled)."""

    __slots__ = ("_tallied", "_tally", "counts", "events", "levels", "samples", "sources", "templates", "times")

    def __init__(self) -> None:
        self.events: list[int] = []
        self.times: list[float] = []
        self.levels: list[str] = []
        self.counts: Counter[int] = Counter()
        self.samples: dict[int, list[str]] = {}
        self.templates: dict[int, str] = {}
        self.sources: set[str] = set()
        self._tally: Tally | None = None
        self._tallied = -1

    def tally(self) -> Tally:
        """The pane's tally, recomputed only when records arrived since (a late record)."""
        if self._tally is None or self._tallied != len(self.events):
            self._tally = tally_counted(self.counts, self.times, self.levels)
            self._tallied = len(self.events)
        return self._tally

    def add(self, record: Record, t: float, max_samples: int) -> None:
        """One record (the record-by-record path: runs that cross a pane or close a window)."""
        tid = record.template_id
        self.events.append(tid)
        self.times.append(t)
        self.levels.append(record.level or "")
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
        operations; the lists, samples and templates are exactly those of `add` for each record in turn."""
        self.events += tids
        self.times += times
        levels: list[str | None] = [r.level for r in recs]
        self.levels += [lv or "" for lv in levels] if None in levels else cast(list[str], levels)
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


def pane_grid(length: float, step: float) -> tuple[float, int, int]:
    """(pane length, panes per step, panes per window): the largest pane that tiles both (µs resolution)."""
    fl = Fraction(length).limit_denominator(1_000_000)
    fs = Fraction(step).limit_denominator(1_000_000)
    g = Fraction(math.gcd(fl.numerator * fs.denominator, fs.numerator * fl.denominator), fl.denominator * fs.denominator)
    if g <= 0:
        return step, 1, max(1, round(length / step))
    return float(g), int(fs / g), int(fl / g)
