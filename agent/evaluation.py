"""Detection metrics computed with numpy alone: confusion counts, precision/recall/F1, ROC-AUC, PR-AUC, delays.

`logwarden evaluate` and the benchmarks compute every figure here, so a number in a report and a number in
a benchmark table mean the same thing. Conventions:

- label 1 = abnormal (the positive class); higher score = more anomalous; the decision is the detector's
  own (`score > threshold` as served), never a threshold re-chosen on the test labels;
- ROC-AUC is the Mann-Whitney probability that a random abnormal scores above a random normal, ties
  counting one half (identical to the trapezoid under the ROC curve with tied scores merged);
- PR-AUC is average precision: the sum over distinct thresholds of precision times the recall gained there
  (the step-wise area that does not interpolate optimistically between operating points).

Detection delay (time-windowed inputs, with the labels JSONL of `logwarden generate`): an incident is
detected by the first alert whose window overlaps the incident's span (widened by `grace_s` after its
end); its delay is that alert's end minus the incident's start, floored at 0. Alerts overlapping no
incident are false alerts, reported per hour of incident-free time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.errors import LogwardenError

F64 = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class Metrics:
    precision: float
    recall: float
    f1: float
    roc_auc: float
    pr_auc: float
    tp: int
    fp: int
    tn: int
    fn: int

    def to_json(self) -> dict[str, float | int | None]:
        """JSON-safe: NaN (e.g. ROC-AUC with one class only) becomes null."""
        out: dict[str, float | int | None] = {}
        for name in ("precision", "recall", "f1", "roc_auc", "pr_auc"):
            value = float(getattr(self, name))
            out[name] = round(value, 6) if math.isfinite(value) else None
        out.update(tp=self.tp, fp=self.fp, tn=self.tn, fn=self.fn)
        return out


def confusion(labels: Labels, predicted: npt.NDArray[np.bool_]) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) with label 1 = abnormal."""
    pos = labels.astype(bool)
    return (
        int(np.sum(predicted & pos)),
        int(np.sum(predicted & ~pos)),
        int(np.sum(~predicted & ~pos)),
        int(np.sum(~predicted & pos)),
    )


def roc_auc(labels: Labels, scores: F64) -> float:
    """Mann-Whitney U / (n_pos * n_neg) with average ranks for ties; NaN when a class is missing."""
    pos = labels.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _average_ranks(scores)
    u = float(ranks[pos].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _average_ranks(values: F64) -> F64:
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    ranks = np.empty(values.shape[0], dtype=np.float64)
    # boundaries of runs of equal values
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], sorted_vals.shape[0]]
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each run
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _sorted_counts(labels: Labels, scores: F64) -> tuple[F64, F64, F64]:
    """Cumulative (tp, fp) at each distinct threshold, scores descending; also the thresholds."""
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    y = labels[order].astype(np.float64)
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.shape[0] - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return tps, fps, s[last]


def roc_curve(labels: Labels, scores: F64) -> tuple[F64, F64, F64]:
    """(fpr, tpr, thresholds), starting at (0, 0); a point per distinct score."""
    tps, fps, thr = _sorted_counts(labels, scores)
    n_pos = max(float(labels.sum()), 1.0)
    n_neg = max(float(labels.shape[0] - labels.sum()), 1.0)
    return np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos], np.r_[np.inf, thr]


def pr_curve(labels: Labels, scores: F64) -> tuple[F64, F64, F64]:
    """(precision, recall, thresholds) per distinct score, highest threshold first."""
    tps, fps, thr = _sorted_counts(labels, scores)
    n_pos = max(float(labels.sum()), 1.0)
    precision = tps / np.maximum(tps + fps, 1.0)
    return precision, tps / n_pos, thr


def average_precision(labels: Labels, scores: F64) -> float:
    if labels.sum() == 0:
        return math.nan
    precision, recall, _ = pr_curve(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def compute_metrics(labels: Labels, scores: F64, predicted: npt.NDArray[np.bool_]) -> Metrics:
    tp, fp, tn, fn = confusion(labels, predicted)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Metrics(precision, recall, f1, roc_auc(labels, scores), average_precision(labels, scores), tp, fp, tn, fn)


@dataclass(slots=True)
class Evaluation:
    """Scores of labelled data under one model, with the served decisions and the metrics."""

    normal: F64
    abnormal: F64
    normal_flags: npt.NDArray[np.bool_]
    abnormal_flags: npt.NDArray[np.bool_]
    threshold: float
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = compute_metrics(self.labels, self.scores, np.r_[self.normal_flags, self.abnormal_flags])

    @property
    def labels(self) -> Labels:
        out: Labels = np.r_[np.zeros(self.normal.shape[0], np.int8), np.ones(self.abnormal.shape[0], np.int8)]
        return out

    @property
    def scores(self) -> F64:
        out: F64 = np.r_[self.normal, self.abnormal]
        return out


def evaluate_scores(
    normal: Sequence[float] | F64,
    abnormal: Sequence[float] | F64,
    threshold: float,
    normal_flags: Sequence[bool] | None = None,
    abnormal_flags: Sequence[bool] | None = None,
) -> Evaluation:
    """Metrics of scored normal and abnormal items; flags default to `score > threshold`."""
    n = np.asarray(normal, dtype=np.float64)
    a = np.asarray(abnormal, dtype=np.float64)
    nf = np.asarray(normal_flags, dtype=bool) if normal_flags is not None else n > threshold
    af = np.asarray(abnormal_flags, dtype=bool) if abnormal_flags is not None else a > threshold
    return Evaluation(n, a, nf, af, float(threshold))


# --------------------------------------------------------------------------------------------------
# detection delay on time-windowed inputs


@dataclass(frozen=True, slots=True)
class Incident:
    type: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class AlertSpan:
    """An anomalous window: when the data it covered started and ended (the alert fires at `end`)."""

    start: float
    end: float


def read_labels(path: str | Path) -> list[Incident]:
    """The labels JSONL of `logwarden generate` (one incident a line: type, start, end, lines, sessions)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise LogwardenError(f"{p}: cannot read labels: {exc.strerror or exc}") from None
    out: list[Incident] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            out.append(Incident(str(doc["type"]), float(doc["start"]), float(doc["end"])))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise LogwardenError(f"{p}:{number}: not an incident label ({exc})") from None
    return out


@dataclass(slots=True)
class TypeDelay:
    incidents: int = 0
    detected: int = 0
    delays_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = np.asarray(self.delays_s, dtype=np.float64)
        return {
            "incidents": self.incidents,
            "detected": self.detected,
            "recall": round(self.detected / self.incidents, 4) if self.incidents else None,
            "delay_median_s": round(float(np.median(d)), 3) if d.size else None,
            "delay_max_s": round(float(d.max()), 3) if d.size else None,
        }


@dataclass(slots=True)
class DelayReport:
    per_type: dict[str, TypeDelay]
    false_alerts: int
    normal_hours: float

    @property
    def false_alerts_per_hour(self) -> float:
        return self.false_alerts / self.normal_hours if self.normal_hours > 0 else math.nan

    def to_json(self) -> dict[str, Any]:
        return {
            "per_type": {k: v.to_json() for k, v in sorted(self.per_type.items())},
            "false_alerts": self.false_alerts,
            "normal_hours": round(self.normal_hours, 4),
            "false_alerts_per_hour": round(self.false_alerts_per_hour, 4) if self.normal_hours > 0 else None,
        }


def detection_delays(
    incidents: Sequence[Incident],
    alerts: Iterable[AlertSpan],
    *,
    span: tuple[float, float],
    grace_s: float = 0.0,
) -> DelayReport:
    """Per incident type: detected share and time from incident start to first overlapping alert.

    `span` is the (start, end) of the whole input; the time outside every incident (widened by
    `grace_s`) is the normal traffic that false alerts are counted against.
    """
    ordered = sorted(alerts, key=lambda a: (a.end, a.start))
    per_type: dict[str, TypeDelay] = {}
    claimed = [False] * len(ordered)
    for inc in incidents:
        stats = per_type.setdefault(inc.type, TypeDelay())
        stats.incidents += 1
        first: float | None = None
        for i, a in enumerate(ordered):
            if a.end >= inc.start and a.start <= inc.end + grace_s:
                claimed[i] = True
                if first is None:
                    first = max(0.0, a.end - inc.start)
        if first is not None:
            stats.detected += 1
            stats.delays_s.append(first)
    covered = _union_length([(i.start, i.end + grace_s) for i in incidents], span)
    normal_hours = max(0.0, (span[1] - span[0]) - covered) / 3600.0
    return DelayReport(per_type, sum(1 for c in claimed if not c), normal_hours)


def _union_length(intervals: Sequence[tuple[float, float]], clip: tuple[float, float]) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted((max(s, clip[0]), min(e, clip[1])) for s, e in intervals):
        if e <= s:
            continue
        if cur_e is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        total += cur_e - cur_s
    return total
