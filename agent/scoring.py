"""Scoring with onnxruntime alone: one session per bundle, micro-batches of windows, readable evidence.

One `run()` of onnxruntime costs microseconds of fixed overhead whatever the batch holds, so windows are
scored in micro-batches (`ScoreBatcher`: up to N windows or T seconds, whichever comes first). Each
session runs with one intra-op and one inter-op thread: the daemon shares a host with the services it
watches, and a batch of a few hundred windows does not profit from more.

Serving a bundle is detector-specific (a forest plus novelty, DeepLog's top-g rule, ...), so this module
only defines the contract — `WindowModel` — and a table from the manifest's `detector` to the class that
serves it, imported by name when a bundle of that kind is first opened.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from agent.bundle import Bundle
from agent.errors import BundleError
from agent.features import FeatureSpec, count_matrix, template_counts
from agent.types import Evidence, TemplateEvidence, Window

F64 = npt.NDArray[np.float64]
T = TypeVar("T")

WINDOW_MODELS: dict[str, str] = {
    "iforest": "agent.forest:ForestModel",
    "deeplog": "agent.deeplog:DeepLogModel",
    "transformer": "agent.transformer:TransformerModel",
}
"""Manifest `detector` → `module:Class` implementing `WindowModel` (constructed as `Class(bundle)`)."""


def session_options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return opts


class OnnxScorer:
    """One onnxruntime session for one bundle, checked against the manifest's input and output names."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        try:
            self.session = ort.InferenceSession(
                bundle.model_bytes, sess_options=session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for a model it cannot load
            raise BundleError(str(bundle.path), "model.onnx", f"onnxruntime cannot load it: {exc}") from None
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != bundle.onnx.inputs:
            raise BundleError(str(bundle.path), "onnx.inputs", f"manifest says {bundle.onnx.inputs}, model has {inputs}")
        if outputs != bundle.onnx.outputs:
            raise BundleError(
                str(bundle.path), "onnx.outputs", f"manifest says {bundle.onnx.outputs}, model has {outputs}"
            )
        self.input_name = inputs[0]
        self.output_name = outputs[0]
        self.calls = 0
        self.rows = 0

    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> list[Any]:
        """Raw access for models with several inputs or outputs (sequence models)."""
        self.calls += 1
        result: list[Any] = self.session.run(outputs, feeds)
        return result

    def score(self, features: npt.NDArray[np.float32]) -> F64:
        """First output of the model for a [n, d] float32 matrix, flattened to n float64 scores."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        self.calls += 1
        self.rows += len(features)
        (out,) = self.session.run([self.output_name], {self.input_name: features})
        return np.asarray(out, dtype=np.float64).reshape(len(features), -1)[:, 0]


@dataclass(slots=True)
class WindowScores:
    """Scores of a batch of windows: the combined score that is thresholded, and its named parts."""

    score: F64
    parts: dict[str, F64] = field(default_factory=dict)


class WindowModel(Protocol):
    """What a detector needs from a served bundle, whatever model is inside."""

    bundle: Bundle

    @property
    def threshold(self) -> float: ...

    def score_windows(self, windows: Sequence[Window]) -> WindowScores:
        """Higher = more anomalous; anomalous when above `threshold`."""
        ...

    def explain(self, window: Window, names: Mapping[int, str] | None = None) -> Evidence:
        """Why this window scored high, in templates and sample lines; `names` gives the text of templates
        the window does not hold (see `template_text`)."""
        ...


def open_window_model(bundle: Bundle) -> WindowModel:
    """Instantiate the serving class for a validated bundle (see `WINDOW_MODELS`)."""
    target = WINDOW_MODELS.get(bundle.detector)
    if target is None:
        raise BundleError(str(bundle.path), "detector", f"no scorer for {bundle.detector!r}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise BundleError(
            str(bundle.path), "detector", f"this logwarden cannot serve {bundle.detector!r} ({exc.name} is missing)"
        ) from None
    cls = getattr(module, class_name)
    model: WindowModel = cls(bundle)
    return model


class ScoreBatcher(Generic[T]):
    """Holds items until `max_batch` are waiting or the oldest has waited `max_wait_s` (on the caller's clock)."""

    def __init__(self, max_batch: int, max_wait_s: float) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._items: list[T] = []
        self._since = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, items: Iterable[T], now: float) -> list[list[T]]:
        """Queue items; returns the full batches (and the rest too when it has waited long enough)."""
        out: list[list[T]] = []
        for item in items:
            if not self._items:
                self._since = now
            self._items.append(item)
            if len(self._items) >= self.max_batch:
                out.append(self._items)
                self._items = []
        due = self.due(now)
        if due:
            out.append(due)
        return out

    def due(self, now: float) -> list[T]:
        if self._items and now - self._since >= self.max_wait_s:
            return self.flush()
        return []

    def flush(self) -> list[T]:
        items, self._items = self._items, []
        return items


class TemplateNames(dict[int, str]):
    """The latest text of each template a detector's windows carried, seeded from its bundle's manifest:
    what `explain` names a template with when the window it explains no longer holds it.

    Bounded (`limit`, oldest first out) because a stream of ever-new templates would otherwise grow it
    without end; the Drain tree that made them has its own bound."""

    __slots__ = ("limit",)

    def __init__(self, limit: int = 50_000) -> None:
        super().__init__()
        self.limit = limit

    def learn(self, windows: Iterable[Window]) -> None:
        for w in windows:
            self.update(w.templates)
        while len(self) > self.limit:
            del self[next(iter(self))]

    def seed(self, bundle: Bundle) -> None:
        """The bundle's names of templates not seen here yet (what the daemon saw itself is newer)."""
        for tid, text in bundle.template_names.items():
            self.setdefault(tid, text)


def template_text(window: Window, tid: int, names: Mapping[int, str]) -> str:
    """The window's own text of a template, else the last one its detector saw, else just its id."""
    text = window.templates.get(tid)
    if text is None:
        text = names.get(tid)
    return text if text is not None else f"template {tid}"


def explain_counts(
    spec: FeatureSpec, window: Window, top: int = 3, max_samples: int = 3, names: Mapping[int, str] | None = None
) -> Evidence:
    """The templates whose counts deviate most from training (z-scores), with sample lines.

    A template training never saw is the strongest evidence there is, so unseen ids rank first (weighted
    as a z against a std of 0.5, like any column constant at 0 in training); then
    columns by |z|, where a column that was constant in training gets a floor of 0.5 on its std (seeing
    1 of a template that was always absent is a z of 2, not infinity).

    A template that went missing is not in the window, so its text comes from `names` (what the detector
    last saw of each template): "normally 174, observed 0" needs to say which line stopped.
    """
    names = names or {}
    counts = count_matrix(spec, [window])[0]
    mean = np.asarray(spec.count_mean, dtype=np.float64)
    std = np.maximum(np.asarray(spec.count_std, dtype=np.float64), 0.5)
    col_to_tid = spec.template_of_column()
    # Per template, not per event: a windower's window carries its counts (in order of first occurrence).
    unknown = {tid: n for tid, n in template_counts(window) if tid not in spec.vocabulary}
    rows: list[TemplateEvidence] = [
        TemplateEvidence(tid, template_text(window, tid, names), float(n), 0.0, float(n) / 0.5)
        for tid, n in sorted(unknown.items(), key=lambda kv: -kv[1])
    ]
    if len(mean) == len(counts):
        z = (counts - mean) / std
        z[spec.unknown_column] = 0.0
        for col in np.argsort(-np.abs(z), kind="stable"):
            if len(rows) >= top or abs(z[col]) < 1.0:
                break
            tid = col_to_tid[int(col)]
            rows.append(
                TemplateEvidence(tid, template_text(window, tid, names), float(counts[col]), float(mean[col]), float(z[col]))
            )
    rows = rows[:top]
    samples: list[str] = []
    for row in rows:
        samples.extend(window.samples.get(row.template_id, [])[:max_samples])
    return Evidence(templates=rows, samples=samples[: max_samples * top])
