"""Wiring and lifecycle of one running configuration: inputs → parse → detectors → alert router → outputs.

Threads: each input reads on its own thread and hands batches to one bounded queue; a single worker
thread parses (the Drain tree is not thread-safe and the GIL would serialise parsing anyway), writes
record streams, feeds detectors, and submits their scores to the alert router, which spools them before
its own delivery threads send them. Only then are the batch's offsets committed back to its input, so a
crash replays what was not handled durably (at-least-once). Timers (closing time windows, resolving
alerts) run on the worker between batches, so no plugin is ever called from two threads.

Reload is a rebuild: the old pipeline drains and saves offsets, templates and the spool, and the new one
starts from that state. Nothing is lost, and no component has to support in-place reconfiguration.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from agent.clock import Clock, SystemClock
from agent.config import Config, DetectorSection, InputSection, OutputSection
from agent.plugin import Detector, Input, Kind, Output, PluginContext, reads_fields
from agent.registry import Registry
from agent.stages import BoundedQueue, QueueClosed, tag_matches
from agent.types import Alert, Record, Score, event_times

log = structlog.get_logger("logwarden.pipeline")


GC_THRESHOLD = 50_000
"""Net new container objects before a young-generation collection (CPython's default is 700)."""


def tune_gc() -> None:
    """Raise the cyclic collector's first threshold for the daemon's allocation pattern.

    Every batch creates thousands of short-lived records, tuples and dicts that reference counting frees
    (they form no cycles), yet at the default threshold they trigger a collection every 700 allocations,
    and the older generations' collections then walk the long-lived state (the Drain tree, windows,
    baselines): 949 collections costing 16% of a 300k-line replay's CPU. At 50,000 the same replay runs
    one collection; real cycles (exceptions with tracebacks, closures) are still collected, only later."""
    threshold, *older = gc.get_threshold()
    if threshold < GC_THRESHOLD:
        gc.set_threshold(GC_THRESHOLD, *older)


@dataclass(slots=True)
class PipelineStats:
    records: int = 0
    batches: int = 0
    scores: int = 0
    anomalies: int = 0
    stage_errors: int = 0
    last_progress: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Batch:
    input_index: int
    records: list[Record]


@dataclass(slots=True)
class _Flush:
    """Asks the worker to flush detectors and timers and to signal `done` (end of a replay)."""

    done: threading.Event


class _Wake:
    """Wakes a worker that sleeps until its next timer, so `stop()` does not wait for the timeout."""


_WAKE = _Wake()

AlertListener = Callable[[Sequence[Alert]], None]

_FAILED: Any = object()
"""What `_guard` returns when the guarded call raised."""

SCORE_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, float("inf"))
"""Buckets of score/threshold: above 1.0 is anomalous, whatever the detector's own scale."""


class EventClock:
    """Wall time as the records tell it (for replays), with real monotonic time for timeouts and retries.

    A replayed hour then closes its windows and dedups its alerts as it happened, while delivery backoff
    still waits real seconds.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def time(self) -> float:
        return self._pipeline._virtual_now

    def monotonic(self) -> float:
        return time.monotonic()


class Pipeline:
    """One configuration, running. Build with `Pipeline(config, registry)`, then `start()` and `stop()`."""

    def __init__(
        self,
        config: Config,
        registry: Registry,
        *,
        clock: Clock | None = None,
        inputs: Sequence[tuple[InputSection, Input]] | None = None,
        event_time: bool = False,
        on_alerts: AlertListener | None = None,
    ) -> None:
        """`inputs` replaces the configured inputs (replay); `event_time` drives timers by the records'
        own times instead of the wall clock, so a replayed hour closes its windows as it happened."""
        from agent.alerting.router import AlertRouter
        from agent.parsing import ParseStage

        self.config = config
        self.event_time = event_time
        self._virtual_now = 0.0
        self.clock: Clock = EventClock(self) if event_time else (clock or SystemClock())
        self.on_alerts = on_alerts
        svc = config.service
        self.state_dir = Path(svc.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.host = svc.hostname
        self.stats = PipelineStats()
        self.queue: BoundedQueue[_Batch | _Flush | _Wake] = BoundedQueue(svc.queue_size)
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._commit_blocked: set[int] = set()
        self.score_buckets = [0] * len(SCORE_BUCKETS)
        self.score_sum = 0.0

        if inputs is None:
            inputs = [(s, self._make(Kind.INPUT, s.name, s.config, s.index, registry, tag=s.tag)) for s in config.inputs]
        self.inputs: list[tuple[InputSection, Input]] = list(inputs)
        self.detectors: list[tuple[DetectorSection, Detector]] = [
            (s, self._make(Kind.DETECTOR, s.name, s.config, s.index, registry)) for s in config.detectors
        ]
        self.outputs: list[tuple[OutputSection, Output]] = [
            (s, self._make(Kind.OUTPUT, s.name, s.config, s.index, registry)) for s in config.outputs
        ]
        alert_outputs = [(f"output.{s.name}.{s.index}", s.match, o) for s, o in self.outputs if s.stream == "alerts"]
        self.record_outputs = [(s, o) for s, o in self.outputs if s.stream == "records"]
        self.parsers: list[ParseStage] = []
        self.snapshot_paths: list[Path] = []
        for section, _ in self.inputs:
            snap = self.state_dir / f"drain.{section.tag}.{section.index}.json"
            self.snapshot_paths.append(snap)
            keep = self._fields_read(section.tag)
            self.parsers.append(ParseStage.from_section(section.parser, registry, snap, keep_fields=keep))
        self.router = AlertRouter(svc.alerts, alert_outputs, self.state_dir / "alerts.sqlite", self.host, self.clock)
        self._last_snapshot = self.clock.monotonic()
        self._last_tick = self.clock.monotonic()
        self._last_event_tick = float("-inf")
        """Record time of the last tick of a replay: its timers run once per `tick_interval` of record time,
        as a live run's do once per `tick_interval` of wall time (not after every batch: a tick of all
        detectors and the router cost ~50 µs, half a microsecond a line with 100-line batches)."""
        self._snapshot_records = 0
        """`stats.records` at the last snapshot: an idle tree is not written again."""

    def _fields_read(self, tag: str) -> bool:
        """Whether any stage that gets this tag's records reads their `fields`: a records output, or a detector
        that reads them (a session window keyed by a field) or does not say (`agent.plugin.reads_fields`)."""
        return any(tag_matches(s.match, tag) for s, _ in self.record_outputs) or any(
            tag_matches(s.match, tag) and reads_fields(det) for s, det in self.detectors
        )

    def _make(self, kind: Kind, name: str, config: Any, index: int, registry: Registry, tag: str = "") -> Any:
        cls = registry.get(kind, name)
        ctx = PluginContext(
            instance=f"{kind.value}.{name}.{index}", state_dir=self.state_dir, host=self.host, tag=tag, clock=self.clock,
            batch_size=self.config.service.batch_size, event_time=self.event_time,
        )
        return cls(config, ctx)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, *, inline: bool = False) -> None:
        """Start outputs, the router, the worker and the inputs. With `inline`, neither the worker nor the
        inputs are started: the caller hands batches to `process_inline` on its own thread (replay)."""
        tune_gc()
        for _, out in self.outputs:
            out.start()
        self.router.start()
        if inline:
            return
        self._worker = threading.Thread(target=self._run_worker, name="logwarden-worker", daemon=True)
        self._worker.start()
        for i, (section, inp) in enumerate(self.inputs):
            inp.start(self._emitter(i))
            log.info("input_started", input=f"input.{section.name}.{section.index}", tag=section.tag)

    def _emitter(self, index: int) -> Callable[[Sequence[Record]], None]:
        def emit(records: Sequence[Record]) -> None:
            if records:
                self.queue.put(_Batch(index, list(records)))

        return emit

    def process_inline(self, input_index: int, records: list[Record]) -> None:
        """One input batch on the calling thread, exactly as the worker handles a queued one, then the
        timers. A replay reads and processes on one thread: each batch is parsed right after it was read,
        while its lines are still in the CPU's cache, and no GIL hand-off sits between reader and worker."""
        if records:
            self._process(_Batch(input_index, records))
        self._timers()

    def finish_inline(self) -> None:
        """The end of an inline run: what `flush` does for the worker (open windows are closed and scored)."""
        self._close_detectors()

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until everything queued so far is processed and open windows are closed (replay's end)."""
        done = threading.Event()
        try:
            self.queue.put(_Flush(done))
        except QueueClosed:
            return False
        return done.wait(timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Stop inputs, finish what is queued, flush detectors, save state; bounded by `timeout`."""
        limit = self.config.service.shutdown_timeout.seconds if timeout is None else timeout
        deadline = time.monotonic() + limit
        for section, inp in self.inputs:
            try:
                inp.stop()
            except Exception:
                log.exception("input_stop_failed", input=f"input.{section.name}.{section.index}")
        self._stopping.set()
        self.queue.offer(_WAKE)  # when full, the worker is busy and sees `_stopping` once it drains it
        if self._worker is not None:
            self._worker.join(max(0.1, deadline - time.monotonic()))
            if self._worker.is_alive():
                log.warning("worker_stop_timed_out", queued=self.queue.qsize())
        self.queue.close()
        self.router.close(max(0.1, deadline - time.monotonic()))
        for _, out in self.outputs:
            try:
                out.stop()
            except Exception:
                log.exception("output_stop_failed")
        self.save_state()
        log.info("pipeline_stopped", records=self.stats.records)

    def save_state(self) -> None:
        for parser, path in zip(self.parsers, self.snapshot_paths, strict=True):
            try:
                parser.save(path)
            except OSError as exc:
                log.error("snapshot_save_failed", path=str(path), error=str(exc))

    # -- the worker --------------------------------------------------------------------------------

    def _run_worker(self) -> None:
        while True:
            item = self.queue.get(timeout=self._until_timers())
            if item is None or item is _WAKE:
                if self._stopping.is_set():
                    break
            elif isinstance(item, _Flush):
                self._close_detectors()
                item.done.set()
            elif isinstance(item, _Batch):
                self._process(item)
            self._timers()
        # Stopping: the inputs are stopped, so drain what they had already queued.
        while (item := self.queue.get_nowait()) is not None:
            if isinstance(item, _Batch):
                self._process(item)
            elif isinstance(item, _Flush):
                item.done.set()
        self._close_detectors()

    def _process(self, batch: _Batch) -> None:
        section, inp = self.inputs[batch.input_index]
        parser = self.parsers[batch.input_index]
        records = self._guard("parse", f"parser.{section.parser.name}", parser.process, batch.records)
        if records is _FAILED:
            records = batch.records
        tag = section.tag
        durable = True
        for out_section, out in self.record_outputs:
            if tag_matches(out_section.match, tag):
                durable &= self._guard("records", f"output.{out_section.name}", out.write_records, records) is not _FAILED
        scores: list[Score] = []
        for det_section, det in self.detectors:
            if tag_matches(det_section.match, tag):
                got = self._guard("detect", f"detector.{det_section.name}", det.observe, records)
                if got and got is not _FAILED:
                    scores.extend(got)
        if self.event_time and records:
            self._virtual_now = max(self._virtual_now, max(event_times(records)))
        durable &= self._submit(scores, tag)
        if not durable and batch.input_index not in self._commit_blocked:
            # A records stream or the spool could not take this batch: stop committing this input's offsets,
            # so a restart re-reads from the last batch that was handled durably (at-least-once, never lost).
            self._commit_blocked.add(batch.input_index)
            log.error("offsets_commit_suspended", input=f"input.{section.name}.{section.index}")
        if batch.input_index not in self._commit_blocked:
            self._guard("commit", f"input.{section.name}", inp.commit, batch.records)
        self.stats.records += len(records)
        self.stats.batches += 1
        self.stats.last_progress = time.monotonic()

    def _submit(self, scores: list[Score], tag: str) -> bool:
        """Hand scores to the router; False when they could not be spooled."""
        if not scores:
            return True
        self.stats.scores += len(scores)
        for s in scores:
            self._score_hist(s)
        self.stats.anomalies += sum(1 for s in scores if s.is_anomaly)
        alerts = self._guard("alert", "router", self.router.submit, scores, tag)
        if alerts is _FAILED:
            return False
        if alerts and self.on_alerts is not None:
            self.on_alerts(alerts)
        return True

    def _score_hist(self, score: Score) -> None:
        ratio = score.score / score.threshold if score.threshold > 0 else (1.0 if score.is_anomaly else 0.0)
        for i, bound in enumerate(SCORE_BUCKETS):
            if ratio <= bound:
                self.score_buckets[i] += 1
        self.score_sum += ratio

    def now(self) -> float:
        return self._virtual_now if self.event_time else self.clock.time()

    def _until_timers(self) -> float:
        """Seconds the idle worker may sleep: until the next tick or snapshot is due, never polling sooner.

        A replay checks its timers (by record time) after every batch, so its wait only bounds a stall.
        """
        svc = self.config.service
        if self.event_time:
            return svc.tick_interval.seconds
        due = min(self._last_tick + svc.tick_interval.seconds, self._last_snapshot + svc.snapshot_interval.seconds)
        return max(0.001, due - self.clock.monotonic())

    def _timers(self) -> None:
        mono = self.clock.monotonic()
        interval = self.config.service.tick_interval.seconds
        if (
            self._virtual_now - self._last_event_tick >= interval if self.event_time
            else mono - self._last_tick >= interval
        ):
            self._last_tick = mono
            self._last_event_tick = self._virtual_now
            now = self.now()
            if now > 0:
                for det_section, det in self.detectors:
                    got = self._guard("tick", f"detector.{det_section.name}", det.tick, now)
                    if got and got is not _FAILED:
                        self._submit(got, det_section.match)
                self._guard("tick", "router", self.router.tick, now)
        if mono - self._last_snapshot >= self.config.service.snapshot_interval.seconds:
            self._last_snapshot = mono
            if self.stats.records != self._snapshot_records:
                self._snapshot_records = self.stats.records
                self.save_state()
        self.stats.last_progress = time.monotonic()

    def _close_detectors(self) -> None:
        for det_section, det in self.detectors:
            got = self._guard("close", f"detector.{det_section.name}", det.close)
            if got and got is not _FAILED:
                self._submit(got, det_section.match)

    def _guard(self, stage: str, plugin: str, fn: Callable[..., Any], *args: Any) -> Any:
        """The one place that catches broad exceptions: a failing plugin call is logged, counted and
        skipped, so one bad record or one buggy plugin cannot stop the daemon."""
        try:
            return fn(*args)
        except Exception as exc:
            self.stats.stage_errors += 1
            log.error("stage_item_failed", stage=stage, plugin=plugin, error=repr(exc), exc_info=True)
            return _FAILED

    # -- introspection for /health, /metrics and the API -------------------------------------------

    def stuck(self, after_s: float = 60.0) -> bool:
        """Work is queued but the worker has made no progress for `after_s`."""
        return self.queue.qsize() > 0 and time.monotonic() - self.stats.last_progress > after_s

    def component_stats(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {
            "pipeline": {
                k: float(v) for k, v in dataclasses.asdict(self.stats).items() if k not in ("last_progress", "started")
            },
            "queue": {"depth": float(self.queue.qsize()), "capacity": float(self.queue.maxsize),
                      "blocked_seconds": self.queue.stats.blocked_s},
        }
        for (section, inp), parser in zip(self.inputs, self.parsers, strict=True):
            out[f"parser.{section.tag}.{section.index}"] = parser.stats()
            fn = getattr(inp, "stats", None)
            if callable(fn):
                out[f"input.{section.name}.{section.index}"] = fn()
        for det_section, det in self.detectors:
            fn = getattr(det, "stats", None)
            if callable(fn):
                out[f"detector.{det_section.name}.{det_section.index}"] = fn()
        out["router"] = self.router.stats()
        hist = {f"hist_score_ratio__le_{'inf' if b == float('inf') else b}": float(c)
                for b, c in zip(SCORE_BUCKETS, self.score_buckets, strict=True)}
        hist["hist_score_ratio__sum"] = self.score_sum
        out["pipeline"].update(hist)
        return out
