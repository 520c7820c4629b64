"""Serving an Isolation Forest bundle: the forest's score plus an explicit novelty score.

A forest never splits on a feature that is constant in its training data, so a template that never
occurred in training, or a count far outside anything seen, cannot move its score. The detector therefore
adds a novelty term computed from the count distribution stored in the manifest:

    novelty  = 0                      when every count lies within the (widened) training range,
             = 1 + ln(1 + excess)     otherwise, excess = Σ_j distance outside range_j / span_j
    combined = forest + novelty       (forest = 2^(-E[h]/c) in (0, 1))

The range of count j is [min_j - margin·span_j - rate_sd·√min_j, max_j + margin·span_j + rate_sd·√max_j].
The √ terms are for time windows, whose counts are rates: an hour of windows has not seen the highest count
of a template that comes a few times a minute, and a new maximum a few Poisson standard deviations (√count)
above the old one is noise, not news — without it a self-baselined forest flagged 2 windows an hour of
normal traffic for a background error that came 4 times in a minute instead of at most twice. The same holds
below: health probes that came 2 to 20 times a minute while learning come once or not at all in a minute
every few days (Poisson, mean 11), and the soak's normal days paged on it. A busy template that stops is
still far below its minimum. A template never seen (max 0) keeps no tolerance; a session's counts are its
structure, so session bundles leave rate_sd at 0.

The threshold is a quantile of the combined score on normal training data (where novelty is 0 by
construction, so it is a quantile of the forest score, below 1); hence any novel window is anomalous,
and among novel windows the forest and the size of the excess still order them. The same functions run at
training time, so the threshold is measured on exactly what serving computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from agent.bundle import Bundle
from agent.errors import BundleError
from agent.features import FeatureSpec, count_matrix, featurize, template_counts
from agent.scoring import OnnxScorer, WindowScores, explain_counts, template_text
from agent.types import Evidence, TemplateEvidence, Window

F64 = npt.NDArray[np.float64]


def _excess(spec: FeatureSpec, counts: F64, margin: float, rate_sd: float) -> tuple[F64, F64, F64]:
    """Per window and count column, the distance outside the widened training range in spans; and the
    range's low and high ends."""
    lo = np.asarray(spec.count_min, dtype=np.float64)
    hi = np.asarray(spec.count_max, dtype=np.float64)
    span = np.maximum(hi - lo, 1.0)
    lo_w = lo - margin * span - rate_sd * np.sqrt(lo)
    hi_w = hi + margin * span + rate_sd * np.sqrt(hi)
    return (np.maximum(counts - hi_w, 0.0) + np.maximum(lo_w - counts, 0.0)) / span, lo_w, hi_w


def novelty_scores(spec: FeatureSpec, counts: F64, margin: float, rate_sd: float = 0.0) -> F64:
    """0 for windows whose every count is inside the training range (widened by `margin` times the span,
    and by `rate_sd` Poisson standard deviations beyond the minimum and the maximum)."""
    if counts.shape[1] == 0 or not spec.count_min:
        return np.zeros(len(counts))
    total = _excess(spec, counts, margin, rate_sd)[0].sum(axis=1)
    return np.where(total > 0, 1.0 + np.log1p(total), 0.0)


def outside_range(spec: FeatureSpec, counts: F64, margin: float, rate_sd: float = 0.0) -> list[tuple[int, float, float]]:
    """The count columns of one window outside their widened training range, largest excess first, as
    (column, low, high) — what made the window novel, for its explanation."""
    if counts.shape[0] == 0 or not spec.count_min:
        return []
    excess, lo_w, hi_w = _excess(spec, counts, margin, rate_sd)
    cols = [int(c) for c in np.argsort(-excess, kind="stable") if excess[c] > 0]
    return [(c, float(max(lo_w[c], 0.0)), float(hi_w[c])) for c in cols]


class ForestModel:
    """`WindowModel` for `detector: iforest` bundles."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.spec = bundle.features
        self.scorer = OnnxScorer(bundle)
        novelty = bundle.model.get("novelty", {})
        margin = novelty.get("margin", 0.0) if isinstance(novelty, dict) else None
        if not isinstance(margin, int | float) or margin < 0:
            raise BundleError(str(bundle.path), "model.novelty.margin", "must be a number >= 0")
        self.margin = float(margin)
        rate_sd = novelty.get("rate_sd", 0.0) if isinstance(novelty, dict) else None  # absent before 0.1 bundles had it
        if not isinstance(rate_sd, int | float) or not 0 <= rate_sd < float("inf"):
            raise BundleError(str(bundle.path), "model.novelty.rate_sd", "must be a finite number >= 0")
        self.rate_sd = float(rate_sd)
        self.novelty_enabled = bool(novelty.get("enabled", True)) if isinstance(novelty, dict) else True
        self._threshold = bundle.threshold.value

    @property
    def threshold(self) -> float:
        return self._threshold

    def score_windows(self, windows: Sequence[Window]) -> WindowScores:
        counts = count_matrix(self.spec, windows)
        forest = self.scorer.score(featurize(self.spec, windows, counts))
        novelty = (novelty_scores(self.spec, counts, self.margin, self.rate_sd) if self.novelty_enabled
                   else np.zeros(len(windows)))
        return WindowScores(score=forest + novelty, parts={"forest": forest, "novelty": novelty})

    def novel_cause(self, window: Window) -> tuple[str, ...]:
        """What makes a window novel, as a key that is the same each time the same thing happens: `+77` for
        a template never seen, `+12` or `-17` for a count above or below its learned range. Empty when
        nothing is out of range (the forest alone flagged it, or novelty is off). A window the forest
        flags daily for the same cause is the same key every day, which is how the detector tells a
        recurring pattern (a nightly job) from a new one."""
        if not self.novelty_enabled:
            return ()
        unseen = sorted(tid for tid, _ in template_counts(window) if tid not in self.spec.vocabulary)
        cause = [f"+{tid}" for tid in unseen]
        counts = count_matrix(self.spec, [window])[0]
        col_to_tid = self.spec.template_of_column()
        for col, lo, _hi in outside_range(self.spec, counts, self.margin, self.rate_sd):
            if col != self.spec.unknown_column:
                cause.append(f"{'-' if counts[col] < lo else '+'}{col_to_tid[col]}")
        return tuple(sorted(cause))

    def explain(self, window: Window, names: Mapping[int, str] | None = None) -> Evidence:
        """The templates furthest from their training mean; when the window is novel, first the counts
        outside the learned range, each with that range in `params` — a z-ranking alone could name a
        busier template than the one whose count was never seen."""
        evidence = explain_counts(self.spec, window, names=names)
        if not self.novelty_enabled:
            return evidence
        counts = count_matrix(self.spec, [window])[0]
        outside = [(c, lo, hi) for c, lo, hi in outside_range(self.spec, counts, self.margin, self.rate_sd)
                   if c != self.spec.unknown_column]  # templates never seen are already named first
        if not outside:
            return evidence
        col_to_tid = self.spec.template_of_column()
        mean, std = self.spec.count_mean, self.spec.count_std
        first: list[TemplateEvidence] = []
        for col, lo, hi in outside[:3]:
            tid = col_to_tid[col]
            z = (counts[col] - mean[col]) / max(std[col], 0.5)  # as explain_counts weighs its rows
            first.append(TemplateEvidence(tid, template_text(window, tid, names or {}), float(counts[col]),
                                          float(mean[col]), float(z)))
            evidence.params[f"template {tid}"] = f"{counts[col]:g} in this window, learned range {lo:.4g} to {hi:.4g}"
        named = {t.template_id for t in first}
        unseen = [t for t in evidence.templates if t.template_id not in self.spec.vocabulary]
        rest = [t for t in evidence.templates if t.template_id not in named and t not in unseen]
        evidence.templates = (unseen + first + rest)[:max(3, len(unseen) + len(first))]
        evidence.samples = [line for t in evidence.templates for line in window.samples.get(t.template_id, [])[:3]][:9]
        return evidence
