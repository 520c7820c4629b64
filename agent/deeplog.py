"""Serving DeepLog bundles with onnxruntime alone (no torch): the top-g rule and the LSTM autoencoder.

`NextEventModel` serves every `objective: next-event` bundle (the DeepLog LSTM and the Transformer's
next-event objective): windows → tokens (`agent.sequence`, the path training used) → deduplicated
histories → one onnxruntime call per micro-batch → per-position rank scores → the window's maximum. The
threshold is g: a window scores above g exactly when one of its events was outside the top-g predictions
(or unknown). The explanation names those events, what the model expected instead, and sample lines.

`AutoencoderModel` serves `objective: autoencoder`: each time window's feature vector (agent/features.py)
joins its stream's last `steps` vectors, and the graph's reconstruction error of that run is the score.
It keeps that short history per stream, so windows must be scored in time order per stream — which is
how the daemon and `logwarden score` deliver them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.bundle import Bundle
from agent.errors import BundleError
from agent.features import featurize
from agent.scoring import OnnxScorer, WindowScores, explain_counts, template_text
from agent.sequence import (
    UNK,
    UNKNOWN_SCORE,
    Encoder,
    IntArray,
    SeenTransitions,
    Vocabulary,
    next_event_windows,
    score_next_event,
    score_positions,
)
from agent.types import Evidence, TemplateEvidence, Window

F64 = npt.NDArray[np.float64]


def _field(bundle: Bundle, doc: dict[str, Any], key: str, kind: type, path: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleError(str(bundle.path), f"model.{path}{key}", f"missing or not a {kind.__name__}")
    return value


class NextEventModel:
    """`WindowModel` for next-event bundles (deeplog, transformer): top-g rule, evidence per miss."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        seq = _field(bundle, bundle.model, "sequence", dict, "")
        self.history = int(_field(bundle, seq, "history", int, "sequence."))
        self.bounded = bool(seq.get("bounded", True))
        try:
            self.vocabulary = Vocabulary.from_json(_field(bundle, seq, "vocabulary", dict, "sequence."))
        except ValueError as exc:
            raise BundleError(str(bundle.path), "model.sequence.vocabulary", str(exc)) from None
        self.encoder = Encoder(self.vocabulary)
        self.scorer = OnnxScorer(bundle)
        self.top_g = bundle.threshold.value
        self.batch_size = 256
        self.seen = _seen_transitions(bundle, self.history)

    @property
    def threshold(self) -> float:
        return self.top_g

    def stats(self) -> dict[str, float]:
        return {"unknown_events": float(self.encoder.unknown_events), "onnx_calls": float(self.scorer.calls)}

    def _predict(self, history: IntArray) -> Any:
        return self.scorer.run({self.scorer.input_name: history}, [self.scorer.output_name])[0]

    def encode(self, windows: Sequence[Window]) -> list[IntArray]:
        return [self.encoder.encode(w.events, bounded=self.bounded) for w in windows]

    def score_windows(self, windows: Sequence[Window]) -> WindowScores:
        scores = score_next_event(self._predict, self.encode(windows), self.history, bounded=self.bounded,
                                  batch_size=self.batch_size, seen=self.seen)
        return WindowScores(score=scores.session)

    def explain(
        self, window: Window, names: Mapping[int, str] | None = None, top: int = 3, max_samples: int = 3
    ) -> Evidence:
        """The events the model did not predict (worst first), with what it expected in their place; the
        expected templates are not in the window, so their text comes from `names` when it is known."""
        names = names or {}
        seq = self.encoder.encode(window.events, bounded=self.bounded, count=False)
        windows = next_event_windows([seq], self.history, bounded=self.bounded)
        if len(windows) == 0:
            return Evidence()
        logits = np.asarray(self._predict(windows.history), dtype=np.float64)
        scores = score_positions(logits, windows, self.seen)
        offset = 1 if self.bounded else 0
        rows: list[TemplateEvidence] = []
        params: dict[str, str] = {}
        samples: list[str] = []
        for j in np.argsort(-scores, kind="stable")[:top]:
            if scores[j] <= self.top_g:
                break
            token = int(windows.target[j])
            event_index = int(windows.position[j]) - offset
            tid, label = self._describe(window, token, event_index, names)
            expected = [_name_key(self.vocabulary.key_of(int(t)), names)
                        for t in np.argsort(-logits[j], kind="stable")[: int(self.top_g)]]
            rank = "unknown" if scores[j] >= UNKNOWN_SCORE else str(int(scores[j]) + 1)
            rows.append(TemplateEvidence(tid, label, float(scores[j]), float(self.top_g), float(scores[j])))
            params[f"event_{event_index}"] = f"{label} (rank {rank}); expected one of: {', '.join(expected)}"
            if tid >= 0:
                samples.extend(window.samples.get(tid, [])[:max_samples])
        return Evidence(templates=rows, samples=samples, params=params)

    def _describe(self, window: Window, token: int, event_index: int, names: Mapping[int, str]) -> tuple[int, str]:
        if 0 <= event_index < len(window.events):
            tid = int(window.events[event_index])
            text = template_text(window, tid, names)
            return tid, (f"{text} (never seen in training)" if token == UNK else text)
        return -1, "end of session" if event_index >= len(window.events) else "start of session"


def _name_key(key: str, names: Mapping[int, str], width: int = 80) -> str:
    """A vocabulary key as evidence: the template id with the start of its text when the detector knows it."""
    text = names.get(int(key)) if key.lstrip("-").isdigit() else None
    if text is None:
        return key
    return f"{key} '{text if len(text) <= width else text[:width - 1] + '…'}'"


def _seen_transitions(bundle: Bundle, history: int) -> SeenTransitions | None:
    """The bundle's allowlist of normal transitions; bundles written before it have none (plain top-g).

    The file already holds only the transitions that met the training's minimum count, so `min_count` is
    informational here; a manifest without it (written before the count existed) means 1.
    """
    doc = bundle.model.get("seen_transitions")
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise BundleError(str(bundle.path), "model.seen_transitions", "must be an object or null")
    name = _field(bundle, doc, "file", str, "seen_transitions.")
    context = int(_field(bundle, doc, "context", int, "seen_transitions."))
    if not 0 <= context <= history:
        raise BundleError(str(bundle.path), "model.seen_transitions.context", f"must be within 0..{history}")
    # Bundles written before the minimum count existed allowlisted every transition seen once: 1.
    min_count = doc.get("min_count", 1)
    if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
        raise BundleError(str(bundle.path), "model.seen_transitions.min_count", "must be an integer >= 1")
    data = bundle.files.get(name)
    if data is None:
        raise BundleError(str(bundle.path), "model.seen_transitions.file", f"{name!r} is not among the bundle's files")
    try:
        return SeenTransitions.from_bytes(data, context, min_count)
    except ValueError as exc:
        raise BundleError(str(bundle.path), f"files.{name}", str(exc)) from None


class AutoencoderModel:
    """`WindowModel` for DeepLog's `objective: autoencoder`: reconstruction error of the last `steps` windows."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.spec = bundle.features
        self.steps = int(_field(bundle, bundle.model, "steps", int, ""))
        self.scorer = OnnxScorer(bundle)
        self._recent: dict[str, deque[npt.NDArray[np.float32]]] = {}

    @property
    def threshold(self) -> float:
        return self.bundle.threshold.value

    def score_windows(self, windows: Sequence[Window]) -> WindowScores:
        if not windows:
            return WindowScores(score=np.zeros(0))
        feats = featurize(self.spec, windows)
        runs: list[npt.NDArray[np.float32]] = []
        for w, row in zip(windows, feats, strict=True):
            recent = self._recent.setdefault(w.stream, deque(maxlen=self.steps))
            recent.append(row)
            runs.append(np.stack(recent))
        out = np.zeros(len(windows), dtype=np.float64)
        by_len: dict[int, list[int]] = {}
        for i, r in enumerate(runs):
            by_len.setdefault(r.shape[0], []).append(i)
        for idx in by_len.values():
            batch = np.ascontiguousarray(np.stack([runs[i] for i in idx]), dtype=np.float32)
            err = self.scorer.run({self.scorer.input_name: batch}, [self.scorer.output_name])[0]
            out[idx] = np.asarray(err, dtype=np.float64).reshape(-1)
        return WindowScores(score=out)

    def explain(self, window: Window, names: Mapping[int, str] | None = None) -> Evidence:
        return explain_counts(self.spec, window, names=names)


def DeepLogModel(bundle: Bundle) -> NextEventModel | AutoencoderModel:
    """The serving class for a `detector: deeplog` bundle, chosen by its objective."""
    objective = bundle.model.get("objective", "next-event")
    if objective == "next-event":
        return NextEventModel(bundle)
    if objective == "autoencoder":
        return AutoencoderModel(bundle)
    raise BundleError(str(bundle.path), "model.objective", f"unknown objective {objective!r} for deeplog")
