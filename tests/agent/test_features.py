"""Features: one path for train and serve; vocabulary, unknown column, idf and scaler from training."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from agent.features import (
    GROUPS,
    FeatureSpec,
    count_matrix,
    featurize,
    fit_feature_spec,
    merge_tallies,
    summarize,
    tally,
)
from agent.schema import Duration
from agent.types import Record, Window
from agent.windows import CountedWindow, Windower, WindowSpec


def win(events: list[int], times: list[float] | None = None, levels: list[str] | None = None) -> Window:
    return Window("s", "k", 0.0, 0.0, events=events, times=times or [], levels=levels or [])


def test_counts_vocabulary_and_unknown_column() -> None:
    spec = fit_feature_spec([win([3, 3, 9]), win([9, 12])])
    assert spec.vocabulary == {3: 0, 9: 1, 12: 2}
    counts = count_matrix(spec, [win([3, 99, 98, 9]), win([])])
    assert counts.tolist() == [[1, 1, 0, 2], [0, 0, 0, 0]]
    assert spec.count_max == [2.0, 1.0, 1.0, 0.0]


def test_featurize_is_standardised_with_training_parameters() -> None:
    train = [win([1, 2, 2]), win([1, 1, 2, 3]), win([2]), win([1, 3, 3, 3])]
    spec = fit_feature_spec(train, groups=("counts", "stats"))
    x = featurize(spec, train)
    assert x.dtype == np.float32 and x.shape == (4, spec.width) == (4, 4 + 6)
    varying = np.asarray(spec.scale) != 1.0
    assert np.allclose(x.mean(axis=0), 0.0, atol=1e-6)
    assert np.allclose(x.std(axis=0)[varying], 1.0, atol=1e-5)
    assert spec.names[:4] == ["count:1", "count:2", "count:3", "count:unknown"]


def test_stats_temporal_levels_groups() -> None:
    w = win([1, 1, 2], times=[0.0, 1.0, 4.0], levels=["INFO", "ERROR", "WARN"])
    spec = fit_feature_spec([w, win([1])], groups=("stats", "temporal", "levels"))
    spec.mean = [0.0] * spec.width
    spec.scale = [1.0] * spec.width
    row = featurize(spec, [w])[0].tolist()
    length, unique, diversity, fmax, fmin, fstd, imean, istd, burst, err, warn = row
    assert (length, unique, fmax, fmin) == (3, 2, 2, 1)
    assert diversity == pytest.approx(2 / 3) and fstd == pytest.approx(0.5)
    assert (imean, istd) == (pytest.approx(2.0), pytest.approx(1.0))
    assert burst == pytest.approx((1.0 - 2.0) / 3.0)
    assert (err, warn) == (pytest.approx(1 / 3), pytest.approx(1 / 3))


def test_tfidf_weights_rare_templates_more() -> None:
    spec = fit_feature_spec([win([1, 2]), win([1]), win([1])], groups=("counts",), tfidf=True)
    assert spec.idf[1] > spec.idf[0]
    spec.mean = [0.0] * spec.width
    spec.scale = [1.0] * spec.width
    assert featurize(spec, [win([1, 2])])[0, 1] == pytest.approx(spec.idf[1])


def test_dict_round_trip_and_refusals() -> None:
    spec = fit_feature_spec([win([4, 5]), win([5])], groups=("counts", "stats", "levels"), tfidf=True)
    back = FeatureSpec.from_dict(spec.to_dict())
    assert back == spec
    broken = spec.to_dict()
    broken["scale"] = broken["scale"][:-1]
    with pytest.raises(ValueError, match="scaler"):
        FeatureSpec.from_dict(broken)
    broken = spec.to_dict()
    broken["vocabulary"] = {"4": 0, "5": 0}
    with pytest.raises(ValueError, match="vocabulary"):
        FeatureSpec.from_dict(broken)


def test_empty_training_set_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        fit_feature_spec([])


def test_summaries_give_exactly_the_features_of_their_windows() -> None:
    """Self-baselining keeps summaries, serving sees whole windows: both must featurize identically."""
    from agent.features import WindowSummary

    rng = random.Random(5)
    windows = []
    for k in range(40):
        n = rng.randint(0, 60)
        times = sorted(rng.uniform(0, 60) for _ in range(n))
        windows.append(Window(stream="s", key=str(k), start=0.0, end=60.0,
                              events=[rng.choice([1, 2, 3, 5, 8, 13]) for _ in range(n)], times=times,
                              levels=[rng.choice(["INFO", "WARN", "ERROR", ""]) for _ in range(n)]))
    summaries = [WindowSummary.from_dict(summarize(w).to_dict()) for w in windows]
    for groups in (("counts", "stats"), ("counts", "stats", "temporal", "levels")):
        spec_w = fit_feature_spec(windows, groups=groups, tfidf=True)
        spec_s = fit_feature_spec(summaries, groups=groups, tfidf=True)
        assert spec_w.to_dict() == spec_s.to_dict()
        assert np.array_equal(featurize(spec_w, windows), featurize(spec_s, summaries))
        assert [len(w) for w in windows] == [len(s) for s in summaries]


def _stream(rng: random.Random, n: int) -> list[Record]:
    """Records at a few per second with jitter, some late, bursts and pauses, a few levels and sources."""
    out: list[Record] = []
    t = 1000.0
    for i in range(n):
        t += rng.expovariate(30.0) if rng.random() > 0.001 else rng.uniform(5.0, 40.0)
        late = rng.uniform(0.0, 9.5) if rng.random() < 0.03 else 0.0  # within the 10 s step: no pane sealed yet
        tid = rng.choice([1, 2, 2, 3, 5, 8, 13, 21])
        out.append(Record(tag="app", source=rng.choice(["a.log", "b.log"]), raw=f"line {i}", time=t - late,
                          level=rng.choice(["INFO", "INFO", "WARN", "ERROR", "error", None]), template_id=tid,
                          template=f"tpl {tid}"))
    return out


def test_windower_summaries_give_the_features_of_the_whole_window() -> None:
    """Pane tallies merged per window (the serving and self-baselining path) against the record path
    (counting the window's own lists), for every feature group, on random streams cut into random batches."""
    rng = random.Random(8)
    spec_w = WindowSpec(type="sliding", size=Duration(60.0), step=Duration(10.0))
    for _round in range(2):
        records = _stream(rng, 8000)
        # A list windower (whose windows' own lists are the reference) and a tally-only one, fed alike.
        with_lists, tallies = Windower(spec_w, "app"), Windower(spec_w, "app", lists=False)
        closed: list[Window] = []
        closed_tallies: list[Window] = []
        i = 0
        while i < len(records):
            n = rng.choice([1, 7, 64, 300, 700])
            now = records[min(i + n, len(records)) - 1].event_time
            closed += with_lists.add_many(records[i:i + n]) + with_lists.tick(now)
            closed_tallies += tallies.add_many(records[i:i + n]) + tallies.tick(now)
            i += n
        closed += with_lists.flush()
        closed_tallies += tallies.flush()
        assert len(closed) == len(closed_tallies)
        plain = [Window(w.stream, w.key, w.start, w.end, events=list(w.events), times=list(w.times),
                        levels=list(w.levels)) for w in closed]
        assert sum(len(w) for w in plain) > 8000  # windows overlap: each record is in several
        spec = fit_feature_spec(plain, groups=GROUPS, tfidf=True)
        for counted_windows in (closed, closed_tallies):
            assert all(isinstance(w, CountedWindow) and w.summary is not None for w in counted_windows)
            for lo in range(0, len(plain), 50):  # batches of windows, as the scorer sees them
                counted, rows = counted_windows[lo:lo + 50], plain[lo:lo + 50]
                assert np.allclose(featurize(spec, counted), featurize(spec, rows), rtol=1e-9, atol=1e-9)
                assert np.array_equal(count_matrix(spec, counted), count_matrix(spec, rows))
            for w, p in zip(counted_windows, plain, strict=True):
                got, want = summarize(w), summarize(p)
                assert got.counts == want.counts and len(w) == len(p)
                assert np.allclose(got.temporal + got.levels, want.temporal + want.levels, rtol=1e-9, atol=1e-12)


def test_tally_merge_is_exact_for_split_runs() -> None:
    """Cutting a run of events into time-ordered pieces changes nothing but float rounding."""
    rng = random.Random(3)
    for _ in range(50):
        n = rng.randint(0, 80)
        times = sorted(rng.uniform(0.0, 100.0) for _ in range(n))
        events = [rng.randint(0, 6) for _ in range(n)]
        levels = [rng.choice(["INFO", "WARN", "FATAL", "x"]) for _ in range(n)]
        cuts = sorted(rng.sample(range(n + 1), min(n + 1, rng.randint(0, 5))))
        bounds = [0, *cuts, n]
        parts = [tally(events[a:b], times[a:b], levels[a:b]) for a, b in itertools.pairwise(bounds)]
        whole = merge_tallies([tally(events, times, levels)])
        merged = merge_tallies(parts)
        assert merged.counts == whole.counts and merged.levels == whole.levels
        assert np.allclose(merged.temporal, whole.temporal, rtol=1e-9, atol=1e-12)
