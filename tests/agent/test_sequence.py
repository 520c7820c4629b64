"""The shared sequence encoding: reserved tokens, windows, and the rank score that *is* the top-g rule."""

from __future__ import annotations

import numpy as np
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
