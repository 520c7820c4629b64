"""Sequence encoding for the sequence detectors (DeepLog LSTM, Transformer): the ONE path for train and serve.

Training (`agent/training/deeplog.py`, `agent/training/transformer.py`) and the daemon's detectors
(`plugins/detectors/deeplog.py`, `plugins/detectors/transformer.py`) both turn a session's event keys into
model indices here, so the vocabulary, the reserved tokens, the padding and the windowing can never drift
apart between the two. numpy only: this module is on the daemon's import path.

Token layout: 0 = padding, 1 = unknown key (a template never seen in training), 2 = begin of session,
3 = end of session, 4.. = the training keys in sorted order. A *bounded* window (a whole session: a block
id closed by its idle timeout) carries the begin/end tokens, so a session that stops early or starts in
the wrong place is itself an unpredicted event; an unbounded window (a slice of a time series) does not,
because its edges are arbitrary.

Scores follow DeepLog's top-g rule and stay continuous for ROC-AUC: at each position the observed event
gets `(rank - 1) + (1 - p)`, with rank 1 = the most likely prediction and p its softmax probability. That
value exceeds g exactly when the event is not among the top-g predictions, so `score > g` *is* the top-g
rule, and a session's score is the maximum over its positions. An unknown key scores `UNKNOWN_SCORE`,
above any rank. A position whose exact transition (its last few tokens -> the event) occurred in normal
training data counts as predicted whatever its rank (`SeenTransitions`), so rare-but-normal continuations
stop deciding g.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

PAD = 0
UNK = 1
BOS = 2
EOS = 3
FIRST_KEY = 4
RESERVED = ("<pad>", "<unk>", "<bos>", "<eos>")

UNKNOWN_SCORE = 1.0e6
"""Score of a position whose event is unknown: above every rank, so it is anomalous for every g."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Event keys seen in training, in model-index order (index = FIRST_KEY + position in `keys`).

    Keys are strings: sessions files may hold any token and the daemon's template ids are stringified,
    so one mapping serves both.
    """

    keys: tuple[str, ...]

    @classmethod
    def fit(cls, sessions: Iterable[Sequence[Any]]) -> Vocabulary:
        seen: set[str] = set()
        for session in sessions:
            seen.update(str(k) for k in session)
        return cls(tuple(sorted(seen, key=_natural_key)))

    @property
    def size(self) -> int:
        """Number of model classes: the reserved tokens plus the keys."""
        return FIRST_KEY + len(self.keys)

    def index(self) -> dict[str, int]:
        return {k: FIRST_KEY + i for i, k in enumerate(self.keys)}

    def key_of(self, token: int) -> str:
        if token >= FIRST_KEY:
            return self.keys[token - FIRST_KEY]
        return RESERVED[token]

    def to_json(self) -> dict[str, Any]:
        return {"reserved": list(RESERVED), "keys": list(self.keys)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Vocabulary:
        if list(doc.get("reserved", [])) != list(RESERVED):
            raise ValueError(f"reserved tokens {doc.get('reserved')!r} differ from {list(RESERVED)!r}")
        keys = doc.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError("keys must be a list of strings")
        if len(set(keys)) != len(keys):
            raise ValueError("keys must be unique")
        return cls(tuple(keys))


def _natural_key(key: str) -> tuple[int, int, str]:
    """Numeric keys sort as numbers (HDFS event ids), anything else after them as text."""
    if key.lstrip("-").isdigit():
        return (0, int(key), "")
    return (1, 0, key)


class Encoder:
    """Maps event keys to tokens with a dict built once; unknown keys become UNK and are counted."""

    __slots__ = ("_index", "unknown_events", "vocabulary")

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._index = vocabulary.index()
        self.unknown_events = 0

    def encode(self, session: Sequence[Any], *, bounded: bool, count: bool = True) -> IntArray:
        """Tokens of one session; `count=False` for re-encodings (explanations) that must not count twice."""
        get = self._index.get
        body = [get(str(k), UNK) for k in session]
        if count:
            self.unknown_events += body.count(UNK)
        if bounded:
            body = [BOS, *body, EOS]
        return np.asarray(body, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class NextEventBatch:
    """All next-event prediction problems of a set of sequences, flattened.

    `history[i]` is the left-padded window of the `h` tokens before target `target[i]`, which is the
    `position[i]`-th token of sequence `owner[i]`.
    """

    history: IntArray
    target: IntArray
    owner: IntArray
    position: IntArray

    def __len__(self) -> int:
        return int(self.target.shape[0])


def next_event_windows(sequences: Sequence[IntArray], history: int, *, bounded: bool) -> NextEventBatch:
    """Every (last h tokens → next token) problem of every sequence, vectorised per sequence.

    In a bounded sequence the first target is the first real event (predicted from BOS alone) and the last
    is EOS. In an unbounded one, prediction starts at the second event, since nothing precedes the first.
    """
    first = 1
    hist: list[IntArray] = []
    tgt: list[IntArray] = []
    own: list[IntArray] = []
    pos: list[IntArray] = []
    for i, seq in enumerate(sequences):
        n = int(seq.shape[0])
        if n <= first:
            continue
        padded = np.concatenate([np.full(history, PAD, dtype=np.int64), seq])
        views = np.lib.stride_tricks.sliding_window_view(padded, history)
        # views[t] holds padded[t : t + h] == the h tokens before seq[t].
        hist.append(views[first:n])
        tgt.append(seq[first:n])
        own.append(np.full(n - first, i, dtype=np.int64))
        pos.append(np.arange(first, n, dtype=np.int64))
    if not tgt:
        empty = np.zeros(0, dtype=np.int64)
        return NextEventBatch(np.zeros((0, history), dtype=np.int64), empty, empty, empty)
    return NextEventBatch(
        np.ascontiguousarray(np.concatenate(hist)),
        np.concatenate(tgt),
        np.concatenate(own),
        np.concatenate(pos),
    )


def pad_batch(sequences: Sequence[IntArray], max_len: int) -> tuple[IntArray, IntArray]:
    """Right-pad sequences into one [B, L] array; longer ones are cut into chunks of `max_len`.

    Returns the array and, per row, the index of the sequence it came from, so a caller can take the
    maximum over a long session's chunks instead of silently scoring only its head.
    """
    rows: list[IntArray] = []
    owner: list[int] = []
    for i, seq in enumerate(sequences):
        if seq.shape[0] == 0:
            rows.append(np.full(1, PAD, dtype=np.int64))
            owner.append(i)
            continue
        for start in range(0, int(seq.shape[0]), max_len):
            rows.append(seq[start : start + max_len])
            owner.append(i)
    width = max((int(r.shape[0]) for r in rows), default=1)
    out = np.full((len(rows), width), PAD, dtype=np.int64)
    for j, r in enumerate(rows):
        out[j, : r.shape[0]] = r
    return out, np.asarray(owner, dtype=np.int64)


def rank_scores(logits: npt.NDArray[np.floating[Any]], target: IntArray) -> FloatArray:
    """`(rank - 1) + (1 - p)` of each target under its row of logits; UNKNOWN_SCORE for UNK targets.

    Ties count in the event's favour (only strictly larger logits outrank it), so a uniform prediction
    never makes an event look unpredicted.
    """
    rows = np.arange(target.shape[0])
    z = logits.astype(np.float64, copy=False)
    z_t = z[rows, target]
    above = (z > z_t[:, None]).sum(axis=1).astype(np.float64)
    z_max = z.max(axis=1)
    p = np.exp(z_t - z_max) / np.exp(z - z_max[:, None]).sum(axis=1)
    score: FloatArray = above + (1.0 - p)
    score[target == UNK] = UNKNOWN_SCORE
    return score


def per_owner_max(values: FloatArray, owner: IntArray, n: int, *, empty: float = 0.0) -> FloatArray:
    """Maximum of `values` per owner index; owners without any value get `empty`."""
    out = np.full(n, -np.inf, dtype=np.float64)
    if values.shape[0]:
        np.maximum.at(out, owner, values)
    out[np.isneginf(out)] = empty
    return out


_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
TRANSITIONS_FILE = "transitions.u64"
TRANSITIONS_HASH = "splitmix64 chain over the last `context` history tokens, then the target (little-endian uint64, sorted)"


def _transition_hashes(windows: NextEventBatch, context: int) -> npt.NDArray[np.uint64]:
    """One 64-bit fingerprint per (last `context` tokens -> target) transition, vectorised per column.

    A fingerprint instead of the tokens themselves keeps the bundle's allowlist at 8 bytes a transition;
    at the sizes a log vocabulary produces (< 1e6 transitions) a 64-bit collision is out of reach.
    """
    cols = [windows.history[:, windows.history.shape[1] - context + j] for j in range(context)] if context else []
    h = np.zeros(len(windows), dtype=np.uint64)
    for col in [*cols, windows.target]:
        h = h + _GOLDEN + col.astype(np.uint64)
        h = (h ^ (h >> np.uint64(30))) * _MIX1
        h = (h ^ (h >> np.uint64(27))) * _MIX2
        h = h ^ (h >> np.uint64(31))
    return h


@dataclass(frozen=True, slots=True)
class SeenTransitions:
    """Transitions (the last `context` tokens -> the next token) that occurred in normal training data.

    The top-g rule alone needs one g for every context: a g small enough to catch a broken order also
    flags every rare-but-normal continuation (a timeout branch seen three times in training ranks below
    the common ones). An event whose exact transition was seen in normal data therefore counts as
    predicted whatever its rank; a broken order creates transitions never seen, so it still scores by
    rank. Training (choosing g) and serving both apply it through `score_positions`.
    """

    context: int
    hashes: npt.NDArray[np.uint64]
    """Sorted, unique fingerprints."""
    min_count: int = 1
    """Normal sessions a transition had to occur in to be kept (recorded for the manifest; 1 = any)."""

    @classmethod
    def fit(cls, windows: NextEventBatch, context: int, min_count: int = 1) -> SeenTransitions:
        """Transitions that occurred in at least `min_count` distinct sequences of `windows`.

        Sessions, not occurrences: a single odd session that loops over one transition fifty times is
        still one piece of evidence that the transition is normal. With `min_count` > 1 a transition seen
        in one or two sessions (a rare branch, or noise in "normal" data) keeps being scored by rank.
        """
        if not 0 <= context <= windows.history.shape[1]:
            raise ValueError(f"seen-transition context {context} must be within 0..{windows.history.shape[1]}")
        if min_count < 1:
            raise ValueError(f"seen-transition min_count {min_count} must be >= 1")
        h = _transition_hashes(windows, context)
        if min_count == 1:
            return cls(context, np.unique(h), 1)
        # One (session, transition) pair per session, then count sessions per transition.
        pairs = np.unique(np.stack([windows.owner.astype(np.uint64), h], axis=1), axis=0)
        uniq, sessions = np.unique(pairs[:, 1], return_counts=True)
        return cls(context, uniq[sessions >= min_count], min_count)

    def __len__(self) -> int:
        return int(self.hashes.shape[0])

    def contains(self, windows: NextEventBatch) -> npt.NDArray[np.bool_]:
        if len(windows) == 0 or self.hashes.shape[0] == 0 or windows.history.shape[1] < self.context:
            return np.zeros(len(windows), dtype=bool)
        h = _transition_hashes(windows, self.context)
        at = np.minimum(np.searchsorted(self.hashes, h), self.hashes.shape[0] - 1)
        found: npt.NDArray[np.bool_] = self.hashes[at] == h
        return found

    def to_bytes(self) -> bytes:
        return self.hashes.astype("<u8").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, context: int, min_count: int = 1) -> SeenTransitions:
        if len(data) % 8:
            raise ValueError(f"{len(data)} bytes is not a whole number of uint64 fingerprints")
        hashes = np.frombuffer(data, dtype="<u8").astype(np.uint64)
        if hashes.shape[0] > 1 and not bool((hashes[1:] > hashes[:-1]).all()):
            raise ValueError("fingerprints must be sorted and unique")
        return cls(context, hashes, min_count)


def score_positions(logits: npt.NDArray[np.floating[Any]], windows: NextEventBatch,
                    seen: SeenTransitions | None) -> FloatArray:
    """Rank scores of every position, with seen transitions counted as predicted (rank 1: `1 - p` < 1 <= g)."""
    score = rank_scores(logits, windows.target)
    if seen is not None and len(windows):
        hit = seen.contains(windows) & (windows.target != UNK)
        score[hit] = score[hit] % 1.0  # the (1 - p) part: scored as if ranked first
    return score


Predict = Callable[[IntArray], npt.NDArray[np.float32]]
"""A next-event model: [B, h] int64 histories → [B, vocabulary] float32 logits (onnxruntime or torch)."""


@dataclass(frozen=True, slots=True)
class NextEventScores:
    """Per-sequence scores plus the per-position detail an explanation needs."""

    session: FloatArray
    windows: NextEventBatch
    position: FloatArray
    """Score of every prediction problem in `windows` (same order)."""


def predict_windows(predict: Predict, windows: NextEventBatch, batch_size: int = 256) -> npt.NDArray[np.float32]:
    """Logits of every window, [len(windows), vocabulary].

    Histories are deduplicated before prediction: normal traffic repeats a few contexts over and over,
    so most batches shrink to a fraction of their rows. Windows are predicted in micro-batches of
    `batch_size` rows, one model call each.
    """
    if len(windows) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    uniq, inverse = np.unique(windows.history, axis=0, return_inverse=True)
    logits = np.concatenate(
        [predict(np.ascontiguousarray(uniq[s : s + batch_size])) for s in range(0, uniq.shape[0], batch_size)]
    )
    out: npt.NDArray[np.float32] = logits[inverse.reshape(-1)]
    return out


def session_scores(logits: npt.NDArray[np.floating[Any]], windows: NextEventBatch, sequences: Sequence[IntArray],
                   seen: SeenTransitions | None) -> NextEventScores:
    """Session score = max over positions, from logits already predicted (`predict_windows`).

    Split from the prediction so that training can compare several allowlists on one set of logits.
    """
    pos = score_positions(logits, windows, seen) if len(windows) else np.zeros(0, dtype=np.float64)
    session = per_owner_max(pos, windows.owner, len(sequences))
    # An unknown key anywhere (also where it is never a target, e.g. the only event of an unbounded window)
    # makes the whole sequence anomalous.
    for i, seq in enumerate(sequences):
        if seq.shape[0] and bool((seq == UNK).any()):
            session[i] = UNKNOWN_SCORE
    return NextEventScores(session, windows, pos)


def score_next_event(
    predict: Predict,
    sequences: Sequence[IntArray],
    history: int,
    *,
    bounded: bool,
    batch_size: int = 256,
    seen: SeenTransitions | None = None,
) -> NextEventScores:
    """Session score = max over positions of the observed event's rank score (see the module docstring)."""
    windows = next_event_windows(sequences, history, bounded=bounded)
    return session_scores(predict_windows(predict, windows, batch_size), windows, sequences, seen)
