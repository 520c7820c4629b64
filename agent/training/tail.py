"""Thresholds beyond what the training sample shows: a peaks-over-threshold fit of the score's upper tail.

A self-baselined forest learns from an hour of windows: 360 at a 10 s step. The 0.999 quantile of 360 scores
is, in effect, their maximum, and a new normal window exceeds the maximum of n others with probability
1/(n + 1) — so the detector paged about once an hour on normal traffic *by construction*, whatever the
traffic. A threshold meant to be crossed once in weeks (8,640 windows a day) lies far beyond anything an
hour of windows has shown, so it has to be extrapolated.

The extreme-value result used by SPOT (Siffer et al., KDD 2017, "Anomaly detection in streams with extreme
value theory") is that the excesses of a score over a high level `u` follow a generalized Pareto
distribution (GPD) for almost any distribution of the score itself:

    P(X > u + y | X > u) = (1 + ξ·y/s)^(-1/ξ)          (ξ = 0: exp(-y/s))

so with `k` of `n` training scores above `u`, the level crossed with probability `risk` is

    z = u + s/ξ · ((risk·n/k)^(-ξ) - 1)                 (ξ = 0: u - s·ln(risk·n/k))

s and ξ are fitted by probability-weighted moments (Hosking & Wallis, Technometrics 1987) rather than by
maximum likelihood: with the few dozen excesses an hour gives, the likelihood is flat and its optimum often
sits on the boundary, while the moment estimates are closed-form and stable. Isolation Forest scores are
bounded (below 1), which a fit sees as ξ < 0: a finite upper end `u - s/ξ`. How short a tail is believed
from a few dozen excesses is bounded (MIN_SHAPE): paging too rarely costs less here than paging hourly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MIN_EXCESSES = 20
"""Fewer excesses than this and the shape estimate is noise: the caller gets the empirical quantile."""
TAIL_FRACTION = 0.1
"""Share of the training scores above `u`, the level the tail is fitted over."""
MAX_EXCESSES = 1000
"""With many windows, `u` moves up the tail (the top 1,000 of 20,000 windows is the top 5%)."""
MIN_SHAPE = -0.1
"""A fitted shape below this — a tail that ends soon after the largest scores seen — is not believed: from a
few dozen excesses a short tail is mostly chance, and it puts the threshold just over the sample's maximum,
the very threshold this module replaces. `bench/tail_threshold.py` measures it: thresholds for one sample
in 100,000 from 360 scores of a normal, beta or exponential distribution; with the shape as fitted, one
trial in ten left a threshold crossed 14 to 34 times a day (of 8,640 samples; the target is 0.09), with the shape
held at -0.1 or above at most 3.3 (the sample's 0.999 quantile: 63 to 70). Bounded tails are then over-estimated
— the forest's threshold is capped below the novel windows' scores. Heavier tails (shape above 0) are fitted
as they are."""


@dataclass(frozen=True, slots=True)
class TailFit:
    """A GPD fitted to the excesses of the top `excesses` of `n` scores over `level`."""

    level: float
    shape: float
    scale: float
    excesses: int
    n: int

    def quantile(self, q: float) -> float:
        """The score a sample exceeds with probability 1 - q, for q above the fitted level's own quantile."""
        risk = 1.0 - q
        ratio = risk * self.n / self.excesses
        if abs(self.shape) < 1e-9:
            return self.level - self.scale * math.log(ratio)
        return self.level + self.scale / self.shape * (math.pow(ratio, -self.shape) - 1.0)

    def upper_end(self) -> float:
        """The largest value the fitted tail allows (infinite unless the shape is negative)."""
        return self.level - self.scale / self.shape if self.shape < 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "shape": self.shape, "scale": self.scale, "excesses": self.excesses, "n": self.n}


def fit_gpd_pwm(excesses: npt.NDArray[np.float64]) -> tuple[float, float]:
    """(shape ξ, scale s) of a GPD by probability-weighted moments; excesses are >= 0, at least two of them.

    With a0 = mean(y) and a1 = mean(y·(1 - p)) over the sorted excesses, p the plotting position
    (i - 0.35)/k: ξ = 2 - a0/(a0 - 2·a1), s = 2·a0·a1/(a0 - 2·a1)."""
    y = np.sort(np.asarray(excesses, dtype=np.float64))
    k = len(y)
    p = (np.arange(1, k + 1) - 0.35) / k
    a0 = float(y.mean())
    a1 = float((y * (1.0 - p)).mean())
    d = a0 - 2.0 * a1
    if a0 <= 0 or d <= 0:  # all excesses equal (a0 = 0) or degenerate: a point mass, no tail to extend
        return 0.0, 0.0
    return 2.0 - a0 / d, 2.0 * a0 * a1 / d


def fit_tail(scores: npt.NDArray[np.float64], min_shape: float = MIN_SHAPE) -> TailFit | None:
    """The GPD over the top TAIL_FRACTION (at most MAX_EXCESSES) of `scores`, its shape at least `min_shape`;
    None when too few to fit."""
    x = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
    n = len(x)
    k = min(int(n * TAIL_FRACTION), MAX_EXCESSES)
    if k < MIN_EXCESSES:
        return None
    level = float(x[n - k - 1])  # the (k+1)-th largest: exactly k scores lie above it unless tied
    excesses = x[n - k:] - level
    excesses = excesses[excesses > 0]
    if len(excesses) < MIN_EXCESSES:
        return None
    shape, scale = fit_gpd_pwm(excesses)
    if scale <= 0:
        return None
    if shape < min_shape:
        shape, scale = min_shape, float(excesses.mean()) * (1.0 - min_shape)  # the mean excess is s/(1 - ξ)
    return TailFit(level=level, shape=shape, scale=scale, excesses=len(excesses), n=n)


def tail_threshold(
    scores: npt.NDArray[np.float64], q: float, upper: float = float("inf"), min_shape: float = MIN_SHAPE
) -> tuple[float, str, TailFit | None]:
    """The score normal samples exceed with probability 1 - q, and how it was estimated.

    The empirical quantile where the sample observes it (at least ten scores above it), else the fitted
    tail's extrapolation — never below the empirical quantile, so a poor fit cannot lower the threshold
    under what the data itself shows, and never above `upper` (the forest's novel windows score above 1:
    a threshold beyond would let them pass)."""
    x = np.asarray(scores, dtype=np.float64)
    empirical = float(np.quantile(x, q))
    if (1.0 - q) * len(x) >= 10:
        return empirical, "empirical quantile", None
    fit = fit_tail(x, min_shape)
    if fit is None:
        return empirical, "empirical quantile (too few scores above the tail's level to fit it)", None
    return min(max(fit.quantile(q), empirical), max(upper, empirical)), "peaks over threshold (GPD tail fit)", fit
