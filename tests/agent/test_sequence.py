"""The shared sequence encoding: reserved tokens, windows, and the rank score that *is* the top-g rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sequence import (
    BOS,
    EOS,
    FIRST_KEY,
    PAD,
    UNK,
    UNKNOWN_SCORE,
    Encoder,
    SeenTransitions,
    Vocabulary,
    next_event_windows,
    pad_batch,
    per_owner_max,
    rank_scores,
    score_next_event,
)


def test_vocabulary_sorts_numeric_keys_as_numbers_and_round_trips() -> None:
    vocab = Vocabulary.fit([["10", "9", "E2"], ["2"]])
    assert vocab.keys == ("2", "9", "10", "E2")
    assert vocab.size == FIRST_KEY + 4
    assert Vocabulary.from_json(vocab.to_json()) == vocab
    assert vocab.key_of(FIRST_KEY + 2) == "10"
    assert vocab.key_of(UNK) == "<unk>"


def test_encoder_maps_unseen_keys_to_unknown_and_counts_them() -> None:
    enc = Encoder(Vocabulary.fit([["1", "2"]]))
    assert enc.encode([1, 2, 77], bounded=True).tolist() == [BOS, FIRST_KEY, FIRST_KEY + 1, UNK, EOS]
    assert enc.encode(["2"], bounded=False).tolist() == [FIRST_KEY + 1]
    assert enc.unknown_events == 1


def test_bounded_windows_predict_first_event_and_end() -> None:
    seq = np.asarray([BOS, 5, 6, EOS], dtype=np.int64)
    w = next_event_windows([seq], 2, bounded=True)
    assert w.history.tolist() == [[PAD, BOS], [BOS, 5], [5, 6]]
    assert w.target.tolist() == [5, 6, EOS]
    assert w.owner.tolist() == [0, 0, 0]


def test_unbounded_window_of_one_event_has_nothing_to_predict() -> None:
    w = next_event_windows([np.asarray([5], dtype=np.int64), np.asarray([5, 6, 7], dtype=np.int64)], 3, bounded=False)
    assert w.target.tolist() == [6, 7]
    assert w.owner.tolist() == [1, 1]
    assert w.history.tolist() == [[PAD, PAD, 5], [PAD, 5, 6]]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=5, max_size=12),
    st.integers(0, 11),
    st.integers(1, 6),
)
def test_rank_score_exceeds_g_exactly_when_event_is_outside_top_g(logits: list[float], target: int, g: int) -> None:
    z = np.asarray([logits], dtype=np.float32)
    t = np.asarray([min(target, len(logits) - 1)], dtype=np.int64)
    if t[0] == UNK:
        t[0] = 0
    score = rank_scores(z, t)[0]
    strictly_better = int((z[0] > z[0, t[0]]).sum())
    assert (score > g) == (strictly_better >= g)


def test_unknown_target_scores_above_any_rank() -> None:
    z = np.zeros((1, 8), dtype=np.float32)
    assert rank_scores(z, np.asarray([UNK]))[0] == UNKNOWN_SCORE


def test_score_next_event_flags_unknown_even_without_a_target_position() -> None:
    def predict(x: np.ndarray) -> np.ndarray:
        return np.zeros((x.shape[0], 8), dtype=np.float32)

    seqs = [np.asarray([UNK], dtype=np.int64), np.asarray([5, 6], dtype=np.int64)]
    scores = score_next_event(predict, seqs, 3, bounded=False)
    assert scores.session[0] == UNKNOWN_SCORE
    assert scores.session[1] < 1.0  # uniform prediction: tied at rank 1


def test_pad_batch_cuts_long_sequences_into_chunks_owned_by_their_session() -> None:
    rows, owner = pad_batch([np.arange(1, 6, dtype=np.int64), np.asarray([7], dtype=np.int64)], 2)
    assert rows.tolist() == [[1, 2], [3, 4], [5, PAD], [7, PAD]]
    assert owner.tolist() == [0, 0, 0, 1]
    assert per_owner_max(np.asarray([1.0, 3.0, 2.0, 0.5]), owner, 3, empty=-1.0).tolist() == [3.0, 0.5, -1.0]


def _favours_token_5(x: np.ndarray) -> np.ndarray:
    """A model that always predicts token 5 first, 6 second, 7 third."""
    z = np.zeros((x.shape[0], 8), dtype=np.float32)
    z[:, 5], z[:, 6], z[:, 7] = 3.0, 2.0, 1.0
    return z


def test_a_transition_seen_in_normal_data_counts_as_predicted_whatever_its_rank() -> None:
    normal = [np.asarray([5, 7, 6], dtype=np.int64)]
    seen = SeenTransitions.fit(next_event_windows(normal, 2, bounded=False), 2)
    assert len(seen) == 2  # (PAD 5 -> 7), (5 7 -> 6)
    plain = score_next_event(_favours_token_5, normal, 2, bounded=False).session[0]
    allowed = score_next_event(_favours_token_5, normal, 2, bounded=False, seen=seen).session[0]
    assert plain > 2.0 and allowed < 1.0
    # the same events in another order make transitions never seen: scored by rank again
    swapped = [np.asarray([5, 6, 7], dtype=np.int64)]
    assert score_next_event(_favours_token_5, swapped, 2, bounded=False, seen=seen).session[0] > 2.0
    # a shorter context forgets what came before: (7 -> 6) is seen after any history
    short = SeenTransitions.fit(next_event_windows(normal, 2, bounded=False), 1)
    other = [np.asarray([7, 6], dtype=np.int64)]
    assert score_next_event(_favours_token_5, other, 2, bounded=False, seen=short).session[0] < 1.0
    assert score_next_event(_favours_token_5, other, 2, bounded=False, seen=seen).session[0] > 1.0


def test_seen_transitions_round_trip_and_refuse_bad_bytes() -> None:
    seqs = [np.asarray([4, 5, 6, 4, 5], dtype=np.int64), np.asarray([6, 6], dtype=np.int64)]
    seen = SeenTransitions.fit(next_event_windows(seqs, 3, bounded=True), 3)
    back = SeenTransitions.from_bytes(seen.to_bytes(), 3)
    assert back.hashes.tolist() == seen.hashes.tolist() and len(back) == len(seen) > 0
    with pytest.raises(ValueError, match="whole number"):
        SeenTransitions.from_bytes(b"\x00" * 7, 3)
    with pytest.raises(ValueError, match="sorted"):
        SeenTransitions.from_bytes(seen.to_bytes()[::-1], 3)
    with pytest.raises(ValueError, match="context"):
        SeenTransitions.fit(next_event_windows(seqs, 3, bounded=True), 4)


def test_a_transition_seen_in_fewer_than_min_count_sessions_is_not_allowlisted() -> None:
    common = [np.asarray([5, 7, 6], dtype=np.int64)] * 3
    # one odd session repeats the rare transition (5 -> 6) four times: still one session of evidence
    odd = [np.asarray([5, 6, 5, 6, 5, 6, 5, 6], dtype=np.int64)]
    windows = next_event_windows(common + odd, 1, bounded=False)
    probe = next_event_windows([np.asarray([5, 7], dtype=np.int64), np.asarray([5, 6], dtype=np.int64)], 1, bounded=False)
    assert SeenTransitions.fit(windows, 1).contains(probe).tolist() == [True, True]
    strict = SeenTransitions.fit(windows, 1, min_count=2)
    assert strict.min_count == 2
    assert strict.contains(probe).tolist() == [True, False]  # (5 -> 7) in 3 sessions, (5 -> 6) in 1
    assert SeenTransitions.fit(windows, 1, min_count=4).contains(probe).tolist() == [False, False]
    # the rank rule applies again to the rare transition: 6 is the model's second choice
    assert score_next_event(_favours_token_5, odd, 1, bounded=False, seen=strict).session[0] > 1.0
    with pytest.raises(ValueError, match="min_count"):
        SeenTransitions.fit(windows, 1, min_count=0)
    back = SeenTransitions.from_bytes(strict.to_bytes(), 1, 2)
    assert back.hashes.tolist() == strict.hashes.tolist() and back.min_count == 2
