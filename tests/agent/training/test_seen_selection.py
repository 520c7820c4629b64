"""The one-standard-error rule that picks the seen-transition allowlist: pure arithmetic on held-out counts."""

from __future__ import annotations

import math

import pytest

from agent.training.seen_selection import RULE_NAME, RestartResult, SeenCandidate, choose_restart, choose_seen

N = 400


def cand(context: int, min_count: int, flagged: int, top_g: int = 2, n: int = N) -> SeenCandidate:
    return SeenCandidate(context, min_count, top_g, flagged, n)


def test_standard_error_is_binomial_with_a_one_session_floor() -> None:
    assert cand(3, 1, 4).share == 0.01
    assert cand(3, 1, 4).standard_error == pytest.approx(math.sqrt(0.01 * 0.99 / N))
    assert cand(3, 1, 0).standard_error == 1 / N  # p = 0 still has a band: one session of n
    assert cand(3, 1, 1).standard_error == 1 / N > math.sqrt((1 / N) * (1 - 1 / N) / N)
    two = cand(3, 1, 2).standard_error
    assert two == pytest.approx(math.sqrt(0.005 * 0.995 / N)) and two > 1 / N  # the floor no longer acts
    assert cand(3, 1, 0, n=0).standard_error == 0.0 and cand(3, 1, 0, n=0).share == 0.0


def test_candidates_within_one_se_of_the_best_tie_and_the_strictest_tied_wins() -> None:
    # best 2/400 = .005, SE ~ .00353, band ~ .00853: 3/400 ties, 4/400 (.01) does not
    best, strict_tied, strict_out = cand(3, 1, 2), cand(8, 5, 3), cand(0, 1, 4)
    choice = choose_seen([best, strict_tied, strict_out])
    assert choice.best == best and choice.band == pytest.approx(0.005 + math.sqrt(0.005 * 0.995 / N))
    assert choice.chosen == strict_tied
    assert set(choice.tied) == {best, strict_tied}
    # the old rule ("lowest share") would have kept the laxer best; a clearly worse share never wins
    assert choose_seen([best, cand(0, 1, 5)]).chosen == best


def test_a_clean_best_still_ties_with_one_flagged_session_but_not_two() -> None:
    assert choose_seen([cand(3, 1, 0), cand(3, 5, 1)]).chosen == cand(3, 5, 1)
    assert choose_seen([cand(3, 1, 0), cand(3, 5, 2)]).chosen == cand(3, 1, 0)


def test_strictness_order_is_off_then_larger_count_then_longer_context() -> None:
    assert choose_seen([cand(3, 5, 0), cand(8, 3, 0)]).chosen.min_count == 5
    assert choose_seen([cand(3, 5, 0), cand(8, 5, 0)]).chosen.context == 8
    assert choose_seen([cand(10, 5, 0), cand(0, 1, 1)]).chosen.context == 0


def test_the_smallest_g_comes_before_any_share() -> None:
    low_g = cand(3, 1, 3)
    assert choose_seen([low_g, cand(0, 1, 0, top_g=3), cand(8, 5, 0, top_g=4)]).chosen == low_g
    with pytest.raises(ValueError):
        choose_seen([])


def test_the_record_names_the_rule_n_every_share_and_se_the_band_and_the_choice() -> None:
    cands = [cand(0, 1, 6), cand(3, 1, 2), cand(3, 5, 3), cand(4, 1, 0, top_g=3)]
    doc = choose_seen(cands).to_json(cands)
    assert doc["rule_name"] == RULE_NAME and doc["n"] == N and doc["top_g"] == 2
    assert doc["chosen"]["context"] == 3 and doc["chosen"]["min_count"] == 5
    assert doc["best"]["flagged"] == 2 and doc["band"] == pytest.approx(0.005 + 0.003527, abs=1e-6)
    assert doc["chosen"] in doc["candidates"]
    rows = {(c["context"], c["min_count"]): c for c in doc["candidates"]}
    assert rows[(0, 1)]["holdout_fpr"] == 0.015 and rows[(0, 1)]["se"] > 0 and not rows[(0, 1)]["tied"]
    assert rows[(3, 1)]["tied"] and rows[(3, 5)]["tied"] and not rows[(4, 1)]["tied"]
    single = [cand(3, 2, 1)]
    assert choose_seen(single).to_json(single)["rule_name"] == "given"


def run(seed: int, top_g: int, flagged: int, val_loss: float, n: int = N) -> RestartResult:
    return RestartResult(seed, top_g, 3, 2, flagged, n, val_loss)


def test_the_restart_with_the_smallest_g_is_kept_whatever_its_share_and_loss() -> None:
    # the seed-3 failure: one fit needs g = 5 on held-out normal sessions, the others 2 or 3
    runs = [run(3, 5, 0, 0.10), run(4, 3, 3, 0.30), run(5, 2, 4, 0.50)]
    assert choose_restart(runs) == 2


def test_restart_ties_go_to_the_lower_held_out_share_then_the_lower_seed_never_the_loss() -> None:
    assert choose_restart([run(0, 2, 3, 0.1), run(1, 2, 1, 0.9), run(2, 3, 0, 0.0)]) == 1
    # a lower validation loss alone does not replace the first fit
    assert choose_restart([run(0, 2, 1, 0.3), run(1, 2, 1, 0.2), run(2, 2, 1, 0.25)]) == 0
    assert choose_restart([run(7, 2, 1, 0.2), run(6, 2, 1, 0.2)]) == 1
    # the share, not the count: 2 of 400 is lower than 2 of 200
    assert choose_restart([run(0, 2, 2, 0.1, n=200), run(1, 2, 2, 0.5, n=400)]) == 1


def test_a_restart_without_a_validation_loss_is_judged_like_any_other_and_the_record_says_so() -> None:
    assert choose_restart([run(0, 2, 0, math.nan), run(1, 2, 0, 0.7)]) == 0
    assert choose_restart([run(0, 2, 0, math.nan)]) == 0
    assert run(0, 2, 0, math.nan).to_json()["val_loss"] is None
    assert run(4, 3, 2, 0.1234567).to_json() == {"seed": 4, "top_g": 3, "context": 3, "min_count": 2, "flagged": 2,
                                                 "n": N, "holdout_fpr": 0.005, "val_loss": 0.123457, "epochs": 0}
    with pytest.raises(ValueError, match="no training restarts"):
        choose_restart([])
