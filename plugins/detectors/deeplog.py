"""DeepLog detector: sessions or windows → next-event LSTM in onnxruntime → top-g misses as alerts.

Serves a bundle from `logwarden train --model deeplog` (no self-baselining: training a recurrent network
belongs offline, with the train extra). The bundle's window spec wins, because the model learned on it.
Closed windows are micro-batched (`batch_size` windows or `batch_wait`, whichever first) into one
onnxruntime call; an anomalous window's alert names the events the model did not expect, what it expected
instead, and sample lines. No torch on this path: `agent.deeplog` is numpy + onnxruntime.

`TransformerDetector` (plugins/detectors/transformer.py) is this class with another bundle kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import structlog

from agent.bundle import load_bundle
from agent.errors import BundleError
from agent.plugin import PluginContext
from agent.schema import Duration, opt
from agent.scoring import ScoreBatcher, TemplateNames, WindowModel, open_window_model
from agent.tagged_windows import TaggedWindowers
from agent.types import Record, Score, Severity, Window

log = structlog.get_logger("logwarden.detector.sequence")


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceDetectorConfig:
    model: str = opt(doc="Path of a model bundle written by `logwarden train` for this detector.")
    batch_size: int = opt(256, ge=1, doc="Windows scored in one onnxruntime call at most.")
    batch_wait: Duration = opt(Duration(0.05), doc="Longest time a closed window waits for its batch to fill.")
    threshold_override: float | None = opt(
        None, doc="Use this threshold instead of the bundle's (for next-event models: the top-g value g)."
    )
    severity: Severity = opt(Severity.WARNING, doc="Severity of the alerts this detector raises.")


DeepLogConfig = SequenceDetectorConfig


@dataclass(slots=True)
class SequenceStats:
    windows: int = 0
    scored: int = 0
    anomalies: int = 0
    batches: int = 0


class DeepLogDetector:
    name: ClassVar[str] = "deeplog"
    config_class: ClassVar[type[SequenceDetectorConfig]] = SequenceDetectorConfig

    def __init__(self, config: SequenceDetectorConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        self.counters = SequenceStats()
        self.model: WindowModel = open_window_model(load_bundle(Path(config.model), expected_detector=self.name))
        self.spec = self.model.bundle.window
        self.reads_fields = self.spec.key_field is not None  # a session keyed by a field reads Record.fields
        self.threshold = config.threshold_override if config.threshold_override is not None else self.model.threshold
        self._windows = TaggedWindowers(self.spec)
        self._batcher: ScoreBatcher[Window] = ScoreBatcher(config.batch_size, config.batch_wait.seconds)
        self._names = TemplateNames()
        self._names.seed(self.model.bundle)
        log.info("bundle_loaded", detector=self.name, path=config.model, threshold=self.threshold)

    @classmethod
    def preflight(cls, config: SequenceDetectorConfig) -> list[tuple[str, str]]:
        try:
            load_bundle(config.model, expected_detector=cls.name)
        except BundleError as exc:
            return [("model", f"{exc.field}: {exc.reason}")]
        return []

    def stats(self) -> dict[str, float]:
        out = {
            "windows": float(self.counters.windows),
            "scored": float(self.counters.scored),
            "anomalies": float(self.counters.anomalies),
            "batches": float(self.counters.batches),
            "pending": float(len(self._batcher)),
            "partial_windows": float(self._windows.partial_windows()),
        }
        model_stats = getattr(self.model, "stats", None)
        if callable(model_stats):
            out.update(model_stats())
        return out

    def observe(self, records: Sequence[Record]) -> list[Score]:
        return self._handle(self._windows.add_many(records))

    def tick(self, now: float) -> list[Score]:
        out = self._handle(self._windows.tick(now))
        out.extend(self._score(self._batcher.due(self.ctx.clock.monotonic())))
        return out

    def close(self) -> list[Score]:
        """Whole sessions are scored; those a stop cut short are dropped (`Windower.finish`)."""
        out = self._handle(self._windows.finish(input_ended=self.ctx.event_time))
        out.extend(self._score(self._batcher.flush()))
        return out

    def _handle(self, windows: list[Window]) -> list[Score]:
        if not windows:
            return []
        self.counters.windows += len(windows)
        self._names.learn(windows)
        out: list[Score] = []
        for batch in self._batcher.add(windows, self.ctx.clock.monotonic()):
            out.extend(self._score(batch))
        return out

    def _score(self, batch: list[Window]) -> list[Score]:
        if not batch:
            return []
        scored = self.model.score_windows(batch).score
        self.counters.batches += 1
        self.counters.scored += len(batch)
        out: list[Score] = []
        session = self.spec.type == "session"
        for w, value in zip(batch, scored.tolist(), strict=True):
            anomalous = value > self.threshold
            score = Score(
                detector=self.name, stream=w.stream, key=w.key, start=w.start, end=w.end, score=value,
                threshold=self.threshold, is_anomaly=anomalous, source=",".join(sorted(w.sources)),
                condition=f"session:{w.stream}:{w.key}" if session else f"window:{w.stream}",
            )
            if anomalous:
                self.counters.anomalies += 1
                evidence = self.model.explain(w, self._names)
                what = "session" if session else "window"
                first = evidence.templates[0].template if evidence.templates else "an unexpected event"
                score.title = f"Unexpected event order in {w.stream}: {first}"[:200]
                score.summary = (f"{self.name}: a {what} of {len(w)} events had an event outside the model's "
                                 f"expected next events (score {value:.2f} > {self.threshold:g}).")
                score.severity = self.config.severity
                score.evidence = evidence
            out.append(score)
        return out
