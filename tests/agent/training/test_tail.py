"""Thresholds beyond the training sample: the GPD fit, its fallbacks, and what it does to a forest's pages."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from agent.bundle import load_bundle, write_bundle
from agent.forest import ForestModel
from agent.schema import Duration
from agent.training.iforest import ForestOptions, build_bundle
from agent.training.tail import MIN_SHAPE, fit_gpd_pwm, fit_tail, tail_threshold
from agent.types import Window
from agent.windows import WindowSpec

PER_DAY = 8640


def gpd_sample(rng: np.random.Generator, shape: float, scale: float, n: int) -> np.ndarray:
    u = rng.random(n)
    return scale * np.log1p(-u) * -1.0 if shape == 0 else scale / shape * ((1.0 - u) ** -shape - 1.0)


@pytest.mark.parametrize("shape", [-0.3, 0.0, 0.3])
def test_probability_weighted_moments_recover_a_known_tail(shape: float) -> None:
    fitted_shape, fitted_scale = fit_gpd_pwm(gpd_sample(np.random.default_rng(3), shape, 2.0, 20_000))
    assert fitted_shape == pytest.approx(shape, abs=0.05)
    assert fitted_scale == pytest.approx(2.0, rel=0.05)


def normal_sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def test_a_threshold_from_an_hour_of_scores_is_crossed_about_as_rarely_as_asked() -> None:
    """360 normal scores, one crossing in 100,000 asked: the sample's 0.999 quantile is its maximum, crossed
    by one sample in 361 — 24 a day of 8,640 — whereas the tail fit lands near the asked-for 0.09."""
    rng = np.random.default_rng(11)
    quantile_per_day, tail_per_day = [], []
    for _ in range(60):
        x = rng.standard_normal(360)
        quantile_per_day.append(normal_sf(float(np.quantile(x, 0.999))) * PER_DAY)
        value, method, fit = tail_threshold(x, 0.99999)
        assert method.startswith("peaks over threshold") and fit is not None and fit.excesses == 36
        assert value >= x.max()
        tail_per_day.append(normal_sf(value) * PER_DAY)
    assert np.mean(quantile_per_day) > 15
    assert np.mean(tail_per_day) < 0.5 and np.quantile(tail_per_day, 0.9) < 1.0


def test_a_short_fitted_tail_is_not_believed() -> None:
    """Scores bounded just above their sample maximum fit a very negative shape; it is held at MIN_SHAPE,
    which can only raise the threshold."""
    x = np.random.default_rng(5).beta(5, 5, 360)
    free = fit_tail(x, min_shape=-math.inf)
    held = fit_tail(x)
    assert free is not None and held is not None
    assert free.shape < MIN_SHAPE and held.shape == MIN_SHAPE
    assert held.quantile(0.99999) > free.quantile(0.99999)
    assert free.quantile(0.99999) <= free.upper_end()


def test_quantiles_the_sample_shows_and_samples_too_small_to_fit_use_the_empirical_quantile() -> None:
    x = np.random.default_rng(2).standard_normal(5000)
    assert tail_threshold(x, 0.99) == (float(np.quantile(x, 0.99)), "empirical quantile", None)
    small = x[:150]
    value, method, fit = tail_threshold(small, 0.99999)
    assert value == float(np.quantile(small, 0.99999)) and fit is None and "too few" in method
    tied = np.concatenate([np.full(990, 0.42), np.linspace(0.43, 0.5, 10)])  # 10 distinct above the level
    value, method, fit = tail_threshold(tied, 0.99999)
    assert value == float(np.quantile(tied, 0.99999)) and fit is None and "too few" in method


def test_the_cap_holds_the_extrapolation_but_never_goes_below_the_data() -> None:
    x = np.random.default_rng(4).standard_normal(2000)
    assert tail_threshold(x, 0.99999)[0] > 3.5
    assert tail_threshold(x, 0.99999, upper=3.5)[0] == max(3.5, float(np.quantile(x, 0.99999)))
    assert tail_threshold(x, 0.99999, upper=1.0)[0] == float(np.quantile(x, 0.99999))


def rate_windows(rng: np.random.Generator, n: int, t0: float = 0.0) -> list[Window]:
    """Sliding-window-like counts of five templates at steady rates (Poisson), one rare background error."""
    rates = {1: 40.0, 2: 25.0, 3: 12.0, 4: 5.0, 9: 0.3}
    out = []
    for i in range(n):
        events = [tid for tid, lam in rates.items() for _ in range(int(rng.poisson(lam)))]
        out.append(Window("app", str(i), t0 + 10.0 * i, t0 + 10.0 * i + 60.0, events=events))
    return out


def test_a_self_baselined_forest_with_a_tail_threshold_pages_far_less_on_normal_traffic(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    spec = WindowSpec(type="sliding", size=Duration(60.0), step=Duration(10.0))
    hour = rate_windows(rng, 360)
    day = rate_windows(rng, PER_DAY, t0=3600.0)
    crossed = {}
    for tail, q in ((False, 0.999), (True, 0.99999)):
        options = ForestOptions(n_estimators=50, quantile=q, tail=tail, novelty_margin=0.25, novelty_rate_sd=3.0,
                                seed=1)
        model, manifest = build_bundle(hour, spec, options, command="test")
        if tail:
            assert manifest["threshold"]["method"] == "peaks over threshold (GPD tail fit)"
            assert manifest["training"]["tail_fit"]["excesses"] == 36
            assert manifest["threshold"]["value"] <= 1.0 + 1e-6
        forest = ForestModel(load_bundle(write_bundle(tmp_path / f"b-{tail}", model, manifest)))
        scores = forest.score_windows(day).score
        crossed[tail] = int((scores > forest.threshold).sum())
        # Whatever the threshold, a template never seen still pages.
        novel = Window("app", "x", 0.0, 60.0, events=[1] * 40 + [2] * 25 + [3] * 12 + [4] * 5 + [77] * 3)
        assert forest.score_windows([novel]).score[0] > forest.threshold
    assert crossed[False] >= 5 and crossed[True] * 5 <= crossed[False]
