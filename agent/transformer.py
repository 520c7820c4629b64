"""Serving Transformer bundles with onnxruntime alone: the next-event objective or the session classifier.

`objective: next-event` is served exactly like DeepLog (`agent.deeplog.NextEventModel`: the same tokens,
windows, top-g rule and evidence). `objective: classify` pads each window's tokens (cut into chunks of the
learned position table's length), runs the graph, which returns a probability per chunk, and takes the
window's maximum; its threshold is a quantile of held-out normal probabilities from training, and the
explanation is the count deviation of `agent.scoring.explain_counts` (a classifier has no per-event miss).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from agent.bundle import Bundle
from agent.deeplog import NextEventModel
from agent.errors import BundleError
from agent.scoring import OnnxScorer, WindowScores, explain_counts
from agent.sequence import Encoder, Vocabulary, pad_batch, per_owner_max
from agent.types import Evidence, Window


class ClassifierModel:
    """`WindowModel` for `objective: classify`: probability that a session is abnormal."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        seq = bundle.model.get("sequence")
        if not isinstance(seq, dict) or not isinstance(seq.get("max_len"), int):
            raise BundleError(str(bundle.path), "model.sequence.max_len", "missing or not an integer")
        self.max_len = int(seq["max_len"])
        self.bounded = bool(seq.get("bounded", True))
        try:
            self.encoder = Encoder(Vocabulary.from_json(seq.get("vocabulary") or {}))
        except ValueError as exc:
            raise BundleError(str(bundle.path), "model.sequence.vocabulary", str(exc)) from None
        self.scorer = OnnxScorer(bundle)
        self.batch_size = 256

    @property
    def threshold(self) -> float:
        return self.bundle.threshold.value

    def score_windows(self, windows: Sequence[Window]) -> WindowScores:
        seqs = [self.encoder.encode(w.events, bounded=self.bounded) for w in windows]
        rows, owner = pad_batch(seqs, self.max_len)
        probs = np.zeros(rows.shape[0], dtype=np.float64)
        for s in range(0, rows.shape[0], self.batch_size):
            out = self.scorer.run({self.scorer.input_name: rows[s : s + self.batch_size]}, [self.scorer.output_name])[0]
            probs[s : s + self.batch_size] = np.asarray(out, dtype=np.float64).reshape(-1)
        return WindowScores(score=per_owner_max(probs, owner, len(windows)))

    def explain(self, window: Window, names: Mapping[int, str] | None = None) -> Evidence:
        return explain_counts(self.bundle.features, window, names=names)


def TransformerModel(bundle: Bundle) -> NextEventModel | ClassifierModel:
    """The serving class for a `detector: transformer` bundle, chosen by its objective."""
    objective = bundle.model.get("objective", "next-event")
    if objective == "next-event":
        return NextEventModel(bundle)
    if objective == "classify":
        return ClassifierModel(bundle)
    raise BundleError(str(bundle.path), "model.objective", f"unknown objective {objective!r} for transformer")
