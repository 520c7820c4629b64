"""Features: the ONE path from windows to model input, used by training and by the daemon alike.

A `FeatureSpec` is learned once from training windows and stored in the bundle manifest; serving applies
exactly what training applied (vocabulary, idf, scaler), so there is no train/serve skew to drift into.
Columns, in order:

- `counts`: one column per template of the training vocabulary plus one "unknown template" column that
  collects every template id training never saw (Drain keeps minting ids on a live host);
- `stats`: window length, unique templates, diversity (unique / length), and max / min / std of the
  per-template counts;
- `temporal`: mean and std of the gaps between events and burstiness (std - mean) / (std + mean);
- `levels`: share of ERROR-or-worse and of WARN events.

Count columns may be TF-IDF weighted (idf from training) and every column is standardised with the
training mean and scale (a constant column gets scale 1, so it stays constant instead of dividing by 0).
The raw count distribution (min, max, mean, std per count column) is kept too: the novelty score and the
explanation of an anomalous window are both stated in counts, the unit an operator reads.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from agent.types import Window

GROUPS = ("counts", "stats", "temporal", "levels")
STATS_NAMES = ("length", "unique", "diversity", "freq_max", "freq_min", "freq_std")
TEMPORAL_NAMES = ("interval_mean", "interval_std", "burstiness")
LEVEL_NAMES = ("error_ratio", "warn_ratio")
ERROR_LEVELS = frozenset({"ERROR", "ERR", "FATAL", "CRITICAL", "CRIT", "SEVERE", "EMERG", "EMERGENCY", "ALERT", "PANIC", "E", "F"})
WARN_LEVELS = frozenset({"WARN", "WARNING", "W"})

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(slots=True)
class FeatureSpec:
    """What `featurize` needs to turn windows into the exact matrix the model was trained on."""

    vocabulary: dict[int, int]
    """Template id → count column; the unknown-template column is `len(vocabulary)`."""
    groups: tuple[str, ...] = ("counts", "stats")
    tfidf: bool = False
    idf: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    count_min: list[float] = field(default_factory=list)
    count_max: list[float] = field(default_factory=list)
    count_mean: list[float] = field(default_factory=list)
    count_std: list[float] = field(default_factory=list)

    @property
    def n_counts(self) -> int:
        return len(self.vocabulary) + 1 if "counts" in self.groups else 0

    @property
    def unknown_column(self) -> int:
        return len(self.vocabulary)

    @property
    def names(self) -> list[str]:
        names: list[str] = []
        if "counts" in self.groups:
            ordered = sorted(self.vocabulary.items(), key=lambda kv: kv[1])
            names += [f"count:{tid}" for tid, _col in ordered] + ["count:unknown"]
        if "stats" in self.groups:
            names += [f"stat:{n}" for n in STATS_NAMES]
        if "temporal" in self.groups:
            names += [f"temporal:{n}" for n in TEMPORAL_NAMES]
        if "levels" in self.groups:
            names += [f"level:{n}" for n in LEVEL_NAMES]
        return names

    @property
    def width(self) -> int:
        return len(self.names)

    def template_of_column(self) -> dict[int, int]:
        return {col: tid for tid, col in self.vocabulary.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "vocabulary": {str(tid): col for tid, col in sorted(self.vocabulary.items(), key=lambda kv: kv[1])},
            "unknown_column": self.unknown_column,
            "groups": list(self.groups),
            "tfidf": self.tfidf,
            "idf": self.idf,
            "mean": self.mean,
            "scale": self.scale,
            "count_min": self.count_min,
            "count_max": self.count_max,
            "count_mean": self.count_mean,
            "count_std": self.count_std,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Rebuild and check a spec from a manifest; ValueError says which part is inconsistent."""
        vocab_raw = data.get("vocabulary")
        if not isinstance(vocab_raw, dict):
            raise ValueError("vocabulary must be a mapping of template id to column")
        vocabulary = {int(k): int(v) for k, v in vocab_raw.items()}
        if sorted(vocabulary.values()) != list(range(len(vocabulary))):
            raise ValueError("vocabulary columns must be 0..n-1, each used once")
        groups = tuple(str(g) for g in data.get("groups", ()))
        unknown = [g for g in groups if g not in GROUPS]
        if unknown or not groups:
            raise ValueError(f"groups must be a non-empty subset of {', '.join(GROUPS)}, got {list(groups)}")
        spec = cls(
            vocabulary=vocabulary,
            groups=groups,
            tfidf=bool(data.get("tfidf", False)),
            idf=_floats(data, "idf"),
            mean=_floats(data, "mean"),
            scale=_floats(data, "scale"),
            count_min=_floats(data, "count_min"),
            count_max=_floats(data, "count_max"),
            count_mean=_floats(data, "count_mean"),
            count_std=_floats(data, "count_std"),
        )
        if "names" in data and list(data["names"]) != spec.names:
            raise ValueError("feature names do not match the vocabulary and groups")
        if len(spec.mean) != spec.width or len(spec.scale) != spec.width:
            raise ValueError(f"scaler has {len(spec.mean)}/{len(spec.scale)} values for {spec.width} features")
        n = spec.n_counts
        for name in ("count_min", "count_max", "count_mean", "count_std"):
            if len(getattr(spec, name)) != n:
                raise ValueError(f"{name} has {len(getattr(spec, name))} values for {n} count columns")
        if spec.tfidf and len(spec.idf) != n:
            raise ValueError(f"idf has {len(spec.idf)} values for {n} count columns")
        if any(not math.isfinite(v) for v in spec.mean + spec.scale) or any(s <= 0 for s in spec.scale):
            raise ValueError("scaler values must be finite and scales positive")
        return spec


def _floats(data: dict[str, Any], key: str) -> list[float]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list of numbers")
    return [float(v) for v in value]


@dataclass(slots=True)
class WindowSummary:
    """What the features need of a window, without its event list.

    A self-baselining detector keeps thousands of recent windows for retraining; at production rates their
    event lists would hold hundreds of millions of ids. The summary holds per-template counts and the
    temporal and level figures, computed by the same functions `featurize` uses on a whole window, so a
    model trained on summaries sees exactly the features serving computes."""

    counts: dict[int, int]
    temporal: tuple[float, float, float]
    levels: tuple[float, float]

    def __len__(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()}, "temporal": list(self.temporal),
                "levels": list(self.levels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowSummary:
        t, lv = data["temporal"], data["levels"]
        return cls({int(k): int(v) for k, v in data["counts"].items()},
                   (float(t[0]), float(t[1]), float(t[2])), (float(lv[0]), float(lv[1])))


FeatureInput = Window | WindowSummary


@dataclass(slots=True)
class Tally:
    """Mergeable figures of a run of events whose times lie before every later run's (a pane).

    Gaps are kept as count, mean and sum of squared deviations (Chan's parallel form), so the gap mean and
    std of a whole window follow exactly from its panes' figures plus the gaps that bridge the panes."""

    counts: dict[int, int]
    errors: int
    warns: int
    n_levels: int
    n_times: int
    first: float
    last: float
    gap_mean: float
    gap_m2: float


def tally(events: Sequence[int], times: Sequence[float], levels: Sequence[str]) -> Tally:
    """The figures of one run of events; `merge_tallies([tally(...)])` is exactly `summarize` of it."""
    errors, warns = level_counts_of(Counter(levels))
    return Tally(dict(Counter(events)), errors, warns, len(levels), *gap_moments(times))


def merge_tallies(parts: Sequence[Tally]) -> WindowSummary:
    """The summary of the concatenation of `parts`, given in time order with disjoint time ranges."""
    counts: dict[int, int] = {}
    errors = warns = n_levels = 0
    gaps, mean, m2 = 0, 0.0, 0.0
    last: float | None = None
    for part in parts:
        if not counts:
            counts = dict(part.counts)
        else:
            for tid, n in part.counts.items():
                counts[tid] = counts.get(tid, 0) + n
        errors += part.errors
        warns += part.warns
        n_levels += part.n_levels
        if part.n_times:
            if last is not None:
                gaps, mean, m2 = _combine(gaps, mean, m2, 1, part.first - last, 0.0)
            gaps, mean, m2 = _combine(gaps, mean, m2, part.n_times - 1, part.gap_mean, part.gap_m2)
            last = part.last
    return WindowSummary(counts, _finish_temporal(gaps, mean, m2), _finish_levels(errors, warns, n_levels))


def summarize(window: FeatureInput) -> WindowSummary:
    """What the features need of a window; a windower-made window already carries it."""
    summary = _summary_of(window)
    if summary is not None:
        return summary
    assert isinstance(window, Window)
    return merge_tallies([tally(window.events, window.times, window.levels)])


def template_counts(window: FeatureInput) -> Iterable[tuple[int, int]]:
    """(template id, count) in order of first occurrence: a `lists=False` windower's window has no events
    to count, only its summary."""
    summary = _summary_of(window)
    if summary is not None:
        return summary.counts.items()
    assert isinstance(window, Window)
    return Counter(window.events).items() if window.events else ()


def count_matrix(spec: FeatureSpec, windows: Sequence[FeatureInput]) -> F64:
    """Raw per-template counts [n, vocabulary + 1]; unseen template ids land in the unknown column.

    Counted per distinct template (a C `Counter` over the events), not per event in Python: a window
    holds thousands of events but a few dozen templates."""
    width = len(spec.vocabulary) + 1
    out = np.zeros((len(windows), width), dtype=np.float64)
    unknown = spec.unknown_column
    vocab = spec.vocabulary
    for row, window in enumerate(windows):
        line = out[row]
        for tid, n in template_counts(window):
            line[vocab.get(tid, unknown)] += n
    return out


def _raw_features(spec: FeatureSpec, windows: Sequence[FeatureInput], counts: F64 | None = None) -> F64:
    parts: list[F64] = []
    summaries: Sequence[FeatureInput] = windows
    if "temporal" in spec.groups or "levels" in spec.groups:
        summaries = [summarize(w) for w in windows]
    if counts is None:
        counts = count_matrix(spec, summaries)
    if "counts" in spec.groups:
        weighted = counts * np.asarray(spec.idf, dtype=np.float64) if spec.tfidf and spec.idf else counts
        parts.append(weighted)
    if "stats" in spec.groups:
        parts.append(_stats(counts))
    if "temporal" in spec.groups:
        temporal = [cast(WindowSummary, w).temporal for w in summaries]
        parts.append(np.asarray(temporal, dtype=np.float64).reshape(-1, 3))
    if "levels" in spec.groups:
        levels = [cast(WindowSummary, w).levels for w in summaries]
        parts.append(np.asarray(levels, dtype=np.float64).reshape(-1, 2))
    return np.hstack(parts) if parts else np.zeros((len(windows), 0))


def _stats(counts: F64) -> F64:
    length = counts.sum(axis=1)
    present = counts > 0
    unique = present.sum(axis=1).astype(np.float64)
    diversity = np.divide(unique, length, out=np.zeros_like(length), where=length > 0)
    fmax = counts.max(axis=1) if counts.shape[1] else np.zeros(len(counts))
    masked = np.where(present, counts, np.inf)
    fmin = masked.min(axis=1) if counts.shape[1] else np.zeros(len(counts))
    fmin = np.where(np.isfinite(fmin), fmin, 0.0)
    # std of the counts of the templates present in the window
    safe_unique = np.maximum(unique, 1.0)
    mean_present = length / safe_unique
    sq = np.where(present, (counts - mean_present[:, None]) ** 2, 0.0).sum(axis=1)
    fstd = np.sqrt(sq / safe_unique)
    return np.stack([length, unique, diversity, fmax, fmin, fstd], axis=1)


def _summary_of(window: FeatureInput) -> WindowSummary | None:
    """The summary a window carries when the windower made it from pane tallies (`CountedWindow`)."""
    if isinstance(window, WindowSummary):
        return window
    summary = getattr(window, "summary", None)
    return summary if isinstance(summary, WindowSummary) else None


GapMoments = tuple[int, float, float, float, float]
"""(n, first, last, gap mean, gap sum of squared deviations) of a run's sorted times: a `Tally`'s tail."""


def gap_moments(times: Sequence[float]) -> GapMoments:
    """The `GapMoments` of `times` (a list or an `array('d')`), in any order."""
    n = len(times)
    if n == 0:
        return 0, 0.0, 0.0, 0.0, 0.0
    if n == 1:
        return 1, float(times[0]), float(times[0]), 0.0, 0.0
    # Times arrive (nearly) in order: a stable sort is linear on them, where quicksort is not.
    column = np.frombuffer(times, dtype=np.float64) if isinstance(times, array) else np.fromiter(times, dtype=np.float64, count=n)
    ordered = np.sort(column, kind="stable")
    gaps = np.diff(ordered)
    mean = float(gaps.mean())
    dev = gaps - mean
    return n, float(ordered[0]), float(ordered[-1]), mean, float((dev * dev).sum())  # as np.std sums


def _combine(na: int, ma: float, m2a: float, nb: int, mb: float, m2b: float) -> tuple[int, float, float]:
    if nb == 0:
        return na, ma, m2a
    if na == 0:
        return nb, mb, m2b
    n = na + nb
    delta = mb - ma
    return n, ma + delta * nb / n, m2a + m2b + delta * delta * na * nb / n


def _finish_temporal(gaps: int, mean: float, m2: float) -> tuple[float, float, float]:
    if gaps < 1:
        return (0.0, 0.0, 0.0)
    std = math.sqrt(max(m2, 0.0) / gaps)
    burst = (std - mean) / (std + mean) if std + mean > 0 else 0.0
    return (mean, std, burst)


def level_counts_of(counted: Mapping[str | None, int]) -> tuple[int, int]:
    """(errors, warns) of counts by level string (None or "" is no level)."""
    errors = warns = 0
    for level, n in counted.items():
        upper = (level or "").upper()
        if upper in ERROR_LEVELS:
            errors += n
        elif upper in WARN_LEVELS:
            warns += n
    return errors, warns


def _finish_levels(errors: int, warns: int, n: int) -> tuple[float, float]:
    return (errors / n, warns / n) if n else (0.0, 0.0)


def fit_feature_spec(
    windows: Sequence[FeatureInput],
    *,
    groups: Sequence[str] = ("counts", "stats"),
    tfidf: bool = False,
) -> FeatureSpec:
    """Learn vocabulary, idf, scaler and the count distribution from (normal) training windows."""
    if not windows:
        raise ValueError("cannot fit features on an empty training set")
    bad = [g for g in groups if g not in GROUPS]
    if bad or not groups:
        raise ValueError(f"feature groups must be a non-empty subset of {', '.join(GROUPS)}, got {list(groups)}")
    seen = sorted({tid for w in windows for tid, _ in template_counts(w)})
    spec = FeatureSpec(vocabulary={tid: col for col, tid in enumerate(seen)}, groups=tuple(groups), tfidf=tfidf)
    counts = count_matrix(spec, windows)
    n = len(windows)
    spec.count_min = counts.min(axis=0).tolist()
    spec.count_max = counts.max(axis=0).tolist()
    spec.count_mean = counts.mean(axis=0).tolist()
    spec.count_std = counts.std(axis=0).tolist()
    if tfidf:
        df = (counts > 0).sum(axis=0)
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        spec.idf = idf.tolist()
    raw = _raw_features(spec, windows, counts)
    spec.mean = raw.mean(axis=0).tolist()
    std = raw.std(axis=0)
    spec.scale = np.where(std > 1e-12, std, 1.0).tolist()
    if "counts" not in groups:
        spec.count_min = spec.count_max = spec.count_mean = spec.count_std = []
    return spec


def featurize(spec: FeatureSpec, windows: Sequence[FeatureInput], counts: F64 | None = None) -> F32:
    """The model input [n, spec.width] float32; pass `counts` when already computed to skip recounting."""
    raw = _raw_features(spec, windows, counts)
    scaled = (raw - np.asarray(spec.mean)) / np.asarray(spec.scale)
    return np.ascontiguousarray(scaled, dtype=np.float32)
