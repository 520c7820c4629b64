"""Choosing the allowlist and g from held-out normal sessions only (a fixed predictor), and the training restarts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.sequence import NextEventBatch, next_event_windows, predict_windows
from agent.training.deeplog import build_lstm
from agent.training.next_event import NextEventOptions, judge_seen, train_next_event
from agent.training.seen_selection import RestartResult, SeenCandidate, choose_restart, choose_seen
from agent.training.torch_common import FitOptions
from tests.agent.training.seqdata import normal_sessions


def _model(vocab: int) -> object:
    """Predicts token 5 first, 6 second, then 7, 8, ... by index: a fixed ranking, no training."""

    def predict(x: np.ndarray) -> np.ndarray:
        z = np.zeros((x.shape[0], vocab), dtype=np.float32)
        z[:, 5:] = -np.arange(vocab - 5, dtype=np.float32)
        return z

    return predict


def _judge(train: list[list[int]], held: list[list[int]], **options: object) -> list[SeenCandidate]:
    opts = NextEventOptions(history=3, bounded=False, **options)  # type: ignore[arg-type]
    enc_t = [np.asarray(s, dtype=np.int64) for s in train]
    enc_h = [np.asarray(s, dtype=np.int64) for s in held]
    train_w = next_event_windows(enc_t, 3, bounded=False)
    hold_w: NextEventBatch = next_event_windows(enc_h, 3, bounded=False)
    logits = predict_windows(_model(12), hold_w)  # type: ignore[arg-type]
    return judge_seen(logits, hold_w, enc_h, train_w, opts, 12)


def test_held_out_normal_sessions_decide_the_allowlist_and_g() -> None:
    # normal: 5 5 5 5 (top-1 all the way) and a rare branch 5 5 5 9 (rank 5) seen in 2 training sessions
    train = [[5, 5, 5, 5]] * 40 + [[5, 5, 5, 9]] * 2
    quiet = [[5, 5, 5, 5]] * 50
    with_branch = quiet[:48] + [[5, 5, 5, 9]] * 2
    cands = _judge(train, quiet)
    assert {(c.context, c.min_count) for c in cands} >= {(0, 1), (3, 1), (3, 2), (3, 5)}
    assert all(c.top_g == 2 and c.flagged == 0 and c.sessions == 50 for c in cands)  # the floor: g >= 2
    assert choose_seen(cands).chosen.context == 0  # nothing to forgive on held-out data: no allowlist
    # held-out sessions that take the rare branch: an allowlist that knows it keeps g at 2 and wins
    cands = {(c.context, c.min_count): c for c in _judge(train, with_branch)}
    assert cands[(3, 2)].top_g == 2 and cands[(3, 2)].flagged == 0
    assert cands[(0, 1)].top_g > 2 and cands[(3, 3)].top_g > 2  # 2 sessions < min count 3: scored by rank
    chosen = choose_seen(list(cands.values())).chosen
    assert (chosen.context, chosen.min_count) == (3, 2)


def test_given_options_narrow_the_candidates_and_bad_ones_are_refused() -> None:
    assert NextEventOptions(history=10, seen_context=4, seen_min_count=5).seen_candidates() == [(4, 5)]
    assert NextEventOptions(history=10, seen_context=0).seen_candidates() == [(0, 1)]
    assert NextEventOptions(history=2, seen_context=9, seen_min_count=1).seen_candidates() == [(2, 1)]
    auto = NextEventOptions(history=10).seen_candidates()
    assert (0, 1) in auto and (10, 5) in auto and all(c == 0 or c >= 3 for c, _ in auto)
    with pytest.raises(ValueError, match="seen-min-count"):
        NextEventOptions(seen_min_count=0).seen_candidates()
    with pytest.raises(ValueError, match="seen-context"):
        NextEventOptions(seen_context=-1).seen_candidates()
    with pytest.raises(ValueError, match="restarts"):
        NextEventOptions(restarts=0).seen_candidates()


def test_two_restarts_are_recorded_and_the_rule_picks_the_kept_one(tmp_path: Path) -> None:
    fit = FitOptions(epochs=6, batch_size=16, learning_rate=0.01, patience=3, seed=11, threads=1)
    options = NextEventOptions(history=4, restarts=2, seen_context=0, fit=fit)
    sessions = normal_sessions(120, seed=3)
    result = train_next_event("t", lambda v: build_lstm(v, embed_dim=8, hidden=8, layers=1), sessions, options, tmp_path)
    record = result.restarts
    runs = record["runs"]
    assert record["count"] == 2 and [r["seed"] for r in runs] == [11, 12]
    assert all(r["n"] == result.summary["holdout_sessions"] > 0 and r["top_g"] >= 2 for r in runs)
    again = [RestartResult(r["seed"], r["top_g"], r["context"], r["min_count"], r["flagged"], r["n"], r["val_loss"])
             for r in runs]
    kept = choose_restart(again)
    assert record["chosen"] == kept and record["seed"] == 11 + kept
    # the kept model is the one exported and served: its fit, and its g judged again through ONNX
    assert result.fit.epochs_run == runs[kept]["epochs"]
    assert result.fit.best_val_loss == pytest.approx(runs[kept]["val_loss"], abs=1e-6)
    assert result.top_g == result.seen_selection["top_g"] == runs[kept]["top_g"]
