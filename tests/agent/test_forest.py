"""The forest's novelty term: what counts as a count never seen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.bundle import load_bundle, write_bundle
from agent.errors import BundleError
from agent.features import fit_feature_spec
from agent.forest import ForestModel, novelty_scores
from agent.schema import Duration
from agent.training.iforest import ForestOptions, build_bundle
from agent.types import Window
from agent.windows import WindowSpec


def test_rate_tolerance_absorbs_a_new_maximum_of_a_rare_count_but_not_a_template_never_seen() -> None:
    # Template 1 came 0-2 times a window while learning (a background error), template 2 never.
    learned = [Window("app", str(i), 0.0, 60.0, events=[7] * 50 + [1] * (i % 3)) for i in range(30)]
    spec = fit_feature_spec(learned)
    col = spec.vocabulary
    rows = np.zeros((3, spec.n_counts))
    rows[:, col[7]] = 50
    rows[0, col[1]] = 4  # twice the old maximum: within 3 Poisson sd of it (2 + 0.5 + 3 * 1.41)
    rows[1, col[1]] = 9  # far beyond
    rows[2, spec.unknown_column] = 1  # a template the forest never saw
    without = novelty_scores(spec, rows, 0.25)
    with_rate = novelty_scores(spec, rows, 0.25, rate_sd=3.0)
    assert without[0] > 0 and with_rate[0] == 0
    assert with_rate[1] > 0
    assert without[2] > 0 and with_rate[2] == without[2]  # nothing tolerated where the maximum is 0


def test_a_bundle_with_a_bad_rate_tolerance_is_refused_with_the_key(tmp_path: Path) -> None:
    learned = [Window("app", str(i), 0.0, 60.0, events=[7] * (50 + i % 5)) for i in range(30)]
    model, manifest = build_bundle(learned, WindowSpec(type="sliding", size=Duration(60.0)),
                                   ForestOptions(n_estimators=5, novelty_rate_sd=3.0), command="test")
    path = write_bundle(tmp_path / "b", model, manifest)
    assert ForestModel(load_bundle(path)).rate_sd == 3.0
    doc = json.loads((path / "manifest.json").read_text())
    doc["model"]["novelty"]["rate_sd"] = -1
    (path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="rate_sd"):
        ForestModel(load_bundle(path))


def test_a_novel_window_is_explained_by_the_count_outside_its_learned_range_first(tmp_path: Path) -> None:
    """Template 7 came 200-260 times a window, template 8 once: a window with 130 of 7 is novel (below 200
    less a quarter of the span and three Poisson sd), while 4 of 8 is within its tolerance yet further from
    its mean in z. The z-ranking alone named 8 first; the explanation must lead with 7 and give its range."""
    learned = [Window("app", str(i), 0.0, 60.0, events=[7] * (200 + i % 61) + [8]) for i in range(61)]
    model, manifest = build_bundle(learned, WindowSpec(type="sliding", size=Duration(60.0)),
                                   ForestOptions(n_estimators=10, novelty_margin=0.25, novelty_rate_sd=3.0),
                                   command="test")
    forest = ForestModel(load_bundle(write_bundle(tmp_path / "b", model, manifest)))
    window = Window("app", "x", 0.0, 60.0, events=[7] * 130 + [8] * 4)
    window.samples = {7: ["line of 7"], 8: ["line of 8"]}
    assert forest.score_windows([window]).parts["novelty"][0] > 0
    evidence = forest.explain(window, {7: "template seven", 8: "template eight"})
    assert [t.template_id for t in evidence.templates][:2] == [7, 8]
    assert evidence.templates[0].observed == 130.0 and evidence.templates[0].template == "template seven"
    assert evidence.params == {"template 7": "130 in this window, learned range 142.6 to 323.4"}
    assert evidence.samples[0] == "line of 7"
    inside = Window("app", "y", 0.0, 60.0, events=[7] * 190 + [8] * 4)
    assert forest.score_windows([inside]).parts["novelty"][0] == 0 and forest.explain(inside, {}).params == {}


def test_a_new_minimum_a_few_poisson_sd_below_the_old_one_is_not_novel() -> None:
    """Health probes came 2-20 times a window while learning; 0 in a window is Poisson noise at that rate,
    not news. A busy template that stops is still novel."""
    learned = [Window("app", str(i), 0.0, 60.0, events=[5] * (2 + i % 19) + [6] * (300 + i % 7)) for i in range(40)]
    spec = fit_feature_spec(learned)
    rows = np.zeros((2, spec.n_counts))
    rows[:, spec.vocabulary[6]] = 303
    rows[0, spec.vocabulary[5]] = 0
    rows[1, spec.vocabulary[5]] = 10
    rows[1, spec.vocabulary[6]] = 0
    assert novelty_scores(spec, rows, 0.0)[0] > 0  # without the tolerance: below the minimum of 2
    with_rate = novelty_scores(spec, rows, 0.0, rate_sd=3.0)
    assert with_rate[0] == 0 and with_rate[1] > 0


def test_a_novel_windows_cause_names_what_left_its_range_the_same_way_each_time(tmp_path: Path) -> None:
    """Template 7 came 200-260 times a window and template 8 once: a window is keyed by the templates never
    seen and by the direction of each count outside its range, in a stable order; a window inside every
    range has no cause."""
    learned = [Window("app", str(i), 0.0, 60.0, events=[7] * (200 + i % 61) + [8]) for i in range(61)]
    model, manifest = build_bundle(learned, WindowSpec(type="sliding", size=Duration(60.0)),
                                   ForestOptions(n_estimators=10, novelty_margin=0.25, novelty_rate_sd=3.0),
                                   command="test")
    forest = ForestModel(load_bundle(write_bundle(tmp_path / "b", model, manifest)))
    assert forest.novel_cause(Window("app", "x", 0.0, 60.0, events=[7] * 230 + [8])) == ()
    assert forest.novel_cause(Window("app", "x", 0.0, 60.0, events=[7] * 130 + [8] + [99])) == ("+99", "-7")
    assert forest.novel_cause(Window("app", "x", 0.0, 60.0, events=[99, 42] + [7] * 230)) == ("+42", "+99")
    assert forest.novel_cause(Window("app", "x", 0.0, 60.0, events=[7] * 400 + [8] * 30)) == ("+7", "+8")
