"""Scorer: a real onnxruntime session per bundle, micro-batching, and explanations in templates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.bundle import load_bundle, write_bundle
from agent.errors import BundleError
from agent.features import fit_feature_spec
from agent.scoring import OnnxScorer, ScoreBatcher, explain_counts, open_window_model
from agent.training.iforest import ForestOptions, build_bundle
from agent.types import Window
from agent.windows import WindowSpec


def win(events: list[int], samples: dict[int, list[str]] | None = None) -> Window:
    return Window("s", "k", 0.0, 0.0, events=events, samples=samples or {}, templates={7: "Disk <*> failed"})


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    windows = [win([1] * int(rng.integers(2, 5)) + [2] * int(rng.integers(1, 3))) for _ in range(200)]
    model, manifest = build_bundle(
        windows, WindowSpec(type="count", size=10), ForestOptions(n_estimators=20), command="test"
    )
    return write_bundle(tmp_path_factory.mktemp("b") / "bundle", model, manifest)


def test_scorer_batches_equal_rows(bundle_dir: Path) -> None:
    scorer = OnnxScorer(load_bundle(bundle_dir))
    x = np.random.default_rng(1).normal(size=(300, scorer.bundle.features.width)).astype(np.float32)
    batch = scorer.score(x)
    single = np.concatenate([scorer.score(x[i : i + 1]) for i in range(10)])
    assert batch.shape == (300,) and np.allclose(batch[:10], single, atol=1e-7)
    assert scorer.score(x[:0]).shape == (0,)
    assert scorer.session.get_session_options().intra_op_num_threads == 1


def test_manifest_output_names_must_match_model(bundle_dir: Path, tmp_path: Path) -> None:
    b = load_bundle(bundle_dir)
    manifest = dict(b.manifest)
    manifest["onnx"] = {**manifest["onnx"], "outputs": ["anomaly"]}
    bad = load_bundle(write_bundle(tmp_path / "bad", b.model_bytes, manifest))
    with pytest.raises(BundleError) as info:
        OnnxScorer(bad)
    assert info.value.field == "onnx.outputs"


def test_forest_plus_novelty(bundle_dir: Path) -> None:
    model = open_window_model(load_bundle(bundle_dir))
    normal = win([1, 1, 1, 2])
    unseen = win([1, 1, 7, 2], samples={7: ["disk sda failed"]})
    too_many = win([1] * 30 + [2])
    scores = model.score_windows([normal, unseen, too_many])
    assert scores.parts["novelty"][0] == 0.0 and scores.parts["novelty"][1] >= 1.0 and scores.parts["novelty"][2] >= 1.0
    assert scores.score[0] < model.threshold < min(scores.score[1], scores.score[2])
    assert np.allclose(scores.score, scores.parts["forest"] + scores.parts["novelty"])
    ev = model.explain(unseen)
    assert ev.templates[0].template_id == 7 and ev.templates[0].template == "Disk <*> failed"
    assert ev.samples == ["disk sda failed"]
    ev = model.explain(too_many)
    assert ev.templates[0].template_id == 1 and ev.templates[0].observed == 30.0 and ev.templates[0].weight > 3


def test_explain_ranks_missing_templates_too() -> None:
    spec = fit_feature_spec([win([1, 2, 2]), win([1, 2, 2, 2])])
    ev = explain_counts(spec, win([1, 1, 1, 1, 1]))
    assert {t.template_id for t in ev.templates} == {1, 2}


def test_a_template_missing_from_the_window_is_named_by_what_the_detector_saw() -> None:
    spec = fit_feature_spec([win([1, 2, 2]), win([1, 2, 2, 2])])
    silent = win([1, 1, 1])  # template 2 stopped: the window holds no text for it
    assert {t.template_id: t.template for t in explain_counts(spec, silent).templates}[2] == "template 2"
    named = explain_counts(spec, silent, names={2: "Heartbeat from <*> ok", 7: "unused"}).templates
    assert {t.template_id: t.template for t in named}[2] == "Heartbeat from <*> ok"
    silent.templates[2] = "the window's own text wins"
    assert {t.template_id: t.template for t in explain_counts(spec, silent, names={2: "x"}).templates}[2] == "the window's own text wins"


def test_tally_windows_explain_like_list_windows() -> None:
    """A `lists=False` windower's windows have no events: the evidence comes from their summaries and must
    be that of the same windows with their lists (unseen templates first, then counts off the mean)."""
    import random

    from agent.schema import Duration
    from agent.types import Record
    from agent.windows import Windower

    rng = random.Random(2)
    records = []
    for i in range(3000):
        tid = 7 if 1200 <= i < 1210 else 9 if i % 700 == 5 else rng.choice([1, 2, 2])
        records.append(Record(tag="t", source="a.log", raw=f"line {i} of {tid}", time=1000.0 + i * 0.05, template_id=tid,
                              template=f"tpl {tid}", level="INFO"))
    spec_w = WindowSpec(type="sliding", size=Duration(20.0), step=Duration(5.0), max_samples=2)
    pairs = []
    for lists in (True, False):
        windower = Windower(spec_w, "s", lists=lists)
        pairs.append([w for i in range(0, len(records), 100) for w in windower.add_many(records[i:i + 100])]
                     + windower.flush())
    with_lists, tallies = pairs
    spec = fit_feature_spec([w for w in with_lists if 7 not in w.events and 9 not in w.events])
    explained = [(explain_counts(spec, a), explain_counts(spec, b)) for a, b in zip(with_lists, tallies, strict=True)]
    assert all(x == y for x, y in explained)
    unseen = [x for x, _ in explained if x.templates and x.templates[0].template_id in (7, 9)]
    assert len(unseen) >= 4 and any(x.samples[0].endswith("of 7") for x in unseen)


def test_batcher_releases_full_batches_and_waits_for_stragglers() -> None:
    b: ScoreBatcher[int] = ScoreBatcher(max_batch=3, max_wait_s=0.05)
    assert b.add([1, 2, 3, 4], now=10.0) == [[1, 2, 3]]
    assert b.due(10.01) == [] and len(b) == 1
    assert b.add([5], now=10.03) == []
    assert b.due(10.05) == [4, 5]
    assert b.flush() == []
