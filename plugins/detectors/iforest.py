"""Isolation Forest detector: windows → features → onnxruntime forest + novelty → scores with evidence.

With `model: <bundle path>` it serves that bundle (its window spec wins: features were learned on it).
With `model: auto` it baselines itself on this host: windows of the first `learn_for` (or
`learn_windows`) are collected, a CHILD PROCESS trains the forest (`python -m agent.training.iforest`,
so the daemon never imports scikit-learn nor keeps its memory), the bundle lands under the instance's
state directory and the scorer is swapped in between two batches — windows keep being collected while
the child works, so there is no gap. Every `retrain_every` a new bundle is trained on the recent windows
that scored normal; the previous bundle is kept for rollback (`current.json` names both), and a bundle
that fails to load never replaces a working one.

A restart loses no learning: the recent windows stay in their files (`agent.recent_windows`), with how long
the learning had run, the template names and the held windows of recurring causes; a restart during the
learning period carries on from where it stopped, and the retrain schedule runs from when the current bundle
was trained, not from the restart (a daemon restarted more often than `retrain_every` would otherwise
never retrain).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import structlog

from agent import malloc
from agent.alerting.payload import span_text
from agent.bundle import load_bundle
from agent.errors import BundleError
from agent.features import summarize
from agent.forest import ForestModel
from agent.plugin import PluginContext
from agent.recent_windows import RecentWindows
from agent.recurring import RecurringCauses
from agent.schema import Duration, opt
from agent.scoring import ScoreBatcher, TemplateNames, WindowModel, open_window_model
from agent.state import write_atomic
from agent.tagged_windows import TaggedWindowers
from agent.types import Record, Score, Severity, Window
from agent.windows import WindowSpec

log = structlog.get_logger("logwarden.detector.iforest")

CURRENT_FILE = "current.json"
RECURRING_FILE = "recurring.json"
RETRY_FIRST_S = 60.0
RETRY_MAX_S = 3600.0
"""After a failed training the next waits this long, doubling with each failure in a row up to the max: a child
that cannot succeed (a broken install, a full disk) was started again at every tick, a Python start-up and
scikit-learn import each time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IForestConfig:
    window: WindowSpec = opt(
        WindowSpec(type="sliding", size=Duration(60.0), step=Duration(10.0)),
        doc="How records are grouped into scored windows (ignored for a bundle: the bundle's spec is used).",
    )
    model: str = opt("auto", doc="Path of a model bundle, or auto to learn a baseline on this host.")
    batch_size: int = opt(256, ge=1, doc="Windows scored in one onnxruntime call at most.")
    batch_wait: Duration = opt(Duration(0.05), doc="Longest time a closed window waits for its batch to fill.")
    threshold_override: float | None = opt(None, doc="Use this threshold instead of the bundle's.")
    learn_for: Duration = opt(Duration(3600.0), doc="Event time collected before the first self-baselined model.")
    learn_windows: int = opt(
        0, ge=0, doc="When above 0, the first model is trained after this many windows instead of after learn_for."
    )
    min_learn_windows: int = opt(20, ge=2, doc="Windows needed before any model is trained.")
    retrain_every: Duration | None = opt(Duration(86400.0), doc="How often a self-baselined model is retrained.")
    keep_windows: int = opt(20_000, ge=10, doc="Recent normal windows kept for retraining.")
    n_estimators: int = opt(100, ge=1, doc="Trees of a self-baselined forest.")
    threshold_quantile: float = opt(
        0.99999, ge=0.5, le=1.0,
        doc="Share of normal windows that must score below the threshold. A day of 10 s steps is 8,640 windows; "
        "0.99999 is about one normal window in 12 days (windows overlap, so alerts come rarer still). An hour "
        "of training windows cannot show such a quantile: with threshold_tail it is extrapolated.",
    )
    threshold_tail: bool = opt(
        True,
        doc="Estimate a quantile beyond what the training windows show (fewer than ten above it) from a "
        "peaks-over-threshold fit of their upper tail. Off, it is their maximum, and a normal window exceeds "
        "the maximum of n others once in n + 1: an hour of training paged about once an hour.",
    )
    novelty_margin: float = opt(
        0.25, ge=0.0, doc="Share of each count's training span tolerated beyond it before a window counts as novel."
    )
    novelty_rate_sd: float = opt(
        3.0, ge=0.0,
        doc="For sliding windows, whose counts are rates: Poisson standard deviations (square root of the count) "
        "above each count's training maximum that are still not novel. Session and count windows use 0: their "
        "counts are structure, not rates.",
    )
    learn_recurring: int = opt(
        3, ge=0,
        doc="A self-baselined forest learns what it flags as novel for the same cause (the same templates never "
        "seen, the same counts out of range) in this many episodes: those windows join the training windows and "
        "a retraining starts, so a nightly job's line pages three nights, not every night. An incident that "
        "recurs as often, or lasts as long, is learned too; 0 never learns a flagged window.",
    )
    recurring_gap: Duration = opt(
        Duration(6 * 3600.0),
        doc="Flagged windows of one cause within this time of the first of them are one episode; the next one "
        "flagged after it begins another (with 3 episodes, what keeps coming without a break is learned after "
        "twice this).",
    )
    features: list[str] = opt(["counts", "stats", "temporal", "levels"], doc="Feature groups of a self-baselined model.")
    train_timeout: Duration = opt(Duration(900.0), doc="A training child running longer is stopped.")

    def __post_init__(self) -> None:
        from agent.features import GROUPS

        bad = [g for g in self.features if g not in GROUPS]
        if bad or not self.features:
            raise ValueError(f"features must be a non-empty subset of {', '.join(GROUPS)}")


@dataclass(slots=True)
class IForestStats:
    windows: int = 0
    scored: int = 0
    anomalies: int = 0
    batches: int = 0
    trainings: int = 0
    training_failures: int = 0
    swaps: int = 0
    recurring_learned: int = 0
    """Flagged windows handed to training because their cause recurred."""


@dataclass(slots=True)
class _Training:
    proc: subprocess.Popen[bytes]
    out: Path
    started: float
    log_path: Path


def _compact(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


class IForestDetector:
    name: ClassVar[str] = "iforest"
    reads_fields: bool
    """Only a session window keyed by a field reads `Record.fields` (the pipeline asks, see PluginContext)."""
    config_class: ClassVar[type[IForestConfig]] = IForestConfig

    def __init__(self, config: IForestConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        self.counters = IForestStats()
        self.auto = config.model == "auto"
        self.model: WindowModel | None = None
        self.spec = config.window
        self._batcher: ScoreBatcher[Window] = ScoreBatcher(config.batch_size, config.batch_wait.seconds)
        # The window spec names the feature space of the windows kept (only an auto model keeps them); how many
        # windows may be open and how many sample lines each keeps change no count, so they do not discard them.
        spec = {k: v for k, v in config.window.to_dict().items() if k not in ("max_open", "max_samples")}
        identity = {"window": spec} if config.model == "auto" else None
        self._recent = RecentWindows(ctx.state_dir / ctx.instance, config.keep_windows, identity)
        """Recent normal windows' summaries as compact JSON lines, what the training child reads: in files,
        since a full `keep_windows` in memory would be ~10 MB on top of the daemon (see RecentWindows)."""
        self._learn_start: float | None = None
        self._learn_end = 0.0
        self._learned_s = 0.0
        """Event time learned by earlier processes (from the windows they left), added to this one's."""
        self._training: _Training | None = None
        self._next_retrain: float | None = None
        self._failures = 0
        """Trainings that failed in a row."""
        self._not_before: float | None = None
        self._relearn = False
        """Flagged windows of a recurring cause joined the training windows: retrain without waiting for the schedule."""
        self._seq = 0
        self._names = TemplateNames()
        if not self.auto:
            self._swap(Path(config.model), record=False)
            assert self.model is not None
            self.spec = self.model.bundle.window
        else:
            self._state = ctx.plugin_state_dir()
            self._recurring = RecurringCauses(self._state / RECURRING_FILE, config.learn_recurring,
                                              config.recurring_gap.seconds, keep_held=self._recent.carried is not None)
            self._carry_over()
            self._resume()
        # Features and evidence read each window's summary: its panes never keep per-record lists.
        self._windows = TaggedWindowers(self.spec, lists=False)
        self.reads_fields = self.spec.key_field is not None

    @staticmethod
    def preflight(config: IForestConfig) -> list[tuple[str, str]]:
        if config.model == "auto":
            return []
        try:
            load_bundle(config.model, expected_detector="iforest")
        except BundleError as exc:
            return [("model", f"{exc.field}: {exc.reason}")]
        return []

    # -- model lifecycle ------------------------------------------------------------------------------

    def _swap(self, path: Path, *, record: bool = True) -> bool:
        """Load a bundle and make it the scorer; a bundle that fails to load leaves the old one in place."""
        try:
            model = open_window_model(load_bundle(path, expected_detector="iforest"))
        except BundleError:
            if not record:
                raise
            log.error("bundle_refused", path=str(path), exc_info=True)
            return False
        previous = self.model
        self.model = model
        self._names.seed(model.bundle)
        self.counters.swaps += 1
        if record:
            prev_name = previous.bundle.path.name if previous is not None and previous.bundle.path.parent == path.parent else None
            write_atomic(self._state / CURRENT_FILE, json.dumps({"current": path.name, "previous": prev_name}))
            self._prune(keep={path.name, prev_name})
            self._next_retrain = (
                self.ctx.clock.monotonic() + self.config.retrain_every.seconds if self.config.retrain_every else None
            )
            log.info("model_swapped", path=str(path), previous=prev_name)
        if previous is not None:
            del previous  # the last reference to the replaced session: its memory is free from here
            malloc.trim()
        return True

    def _carry_over(self) -> None:
        """What the previous process left with its windows: how long it had learned, and the template names
        its windows carried (newer than any bundle's)."""
        carried = self._recent.carried or {}
        learned = carried.get("learned_s")
        if self._recent.kept and isinstance(learned, int | float) and 0.0 < learned < float("inf"):
            self._learned_s = float(learned)
        names = carried.get("templates")
        if isinstance(names, dict):
            for tid, text in names.items():
                with contextlib.suppress(ValueError):
                    if isinstance(text, str):
                        self._names[int(tid)] = text

    def _save_carried(self) -> None:
        # This process's span began `_learned_s` before its first window, so it already holds the carried part.
        learned = self._learn_end - self._learn_start if self._learn_start is not None else self._learned_s
        self._recent.save({"learned_s": learned if self.model is None else 0.0,
                           "templates": {str(tid): text for tid, text in self._names.items()}})

    def _retrain_delay(self, model: WindowModel) -> float:
        """Seconds until the next retraining: `retrain_every` after the bundle was trained. From the restart
        instead when no windows were kept to retrain on (a retraining on the first few windows after it would
        replace a model learned over days with one learned over minutes)."""
        every = self.config.retrain_every.seconds if self.config.retrain_every else 0.0
        if not self._recent.kept:
            return every
        try:
            created = _dt.datetime.fromisoformat(str(model.bundle.manifest.get("created"))).timestamp()
        except (ValueError, TypeError, OverflowError):
            return every
        return min(every, max(0.0, every - (self.ctx.clock.time() - created)))

    def _resume(self) -> None:
        current = self._state / CURRENT_FILE
        if not current.exists():
            return
        try:
            doc = json.loads(current.read_text())
            names = [doc.get("current"), doc.get("previous")]
        except (OSError, ValueError, AttributeError):
            names = []
        for name in names:
            if isinstance(name, str) and (self._state / name).is_dir():
                try:
                    self.model = open_window_model(load_bundle(self._state / name, expected_detector="iforest"))
                except BundleError:
                    log.warning("bundle_refused", path=str(self._state / name), exc_info=True)
                    continue
                self._names.seed(self.model.bundle)
                self._seq = _seq_of(name)
                if self.config.retrain_every:
                    self._next_retrain = self.ctx.clock.monotonic() + self._retrain_delay(self.model)
                log.info("model_resumed", path=str(self._state / name))
                return

    def _prune(self, keep: set[str | None]) -> None:
        for child in self._state.glob("bundle-*"):
            if child.name not in keep and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)

    def _start_training(self) -> None:
        self._seq += 1
        name = f"bundle-{self._seq:06d}"
        windows_file = self._state / "train-windows.json"
        # The file `agent.training.iforest.write_windows_file` writes, written here: importing the training
        # module would load onnx, protobuf and friends into the daemon (~170M instructions, tens of MB) just
        # to dump JSON. The child validates these options (`ForestOptions(**options)`) and fills the rest in
        # with the same defaults.
        options = {
            "n_estimators": self.config.n_estimators,
            "quantile": self.config.threshold_quantile,
            "tail": self.config.threshold_tail,
            "novelty_margin": self.config.novelty_margin,
            "novelty_rate_sd": self.config.novelty_rate_sd if self.spec.type == "sliding" else 0.0,
            "groups": list(self.config.features),
            "seed": self._seq,
        }
        # The text of each template as last seen, so the bundle can name the ones that go missing later.
        doc = {"window": self.spec.to_dict(), "options": options, "templates": self._names,
               "window_files": self._recent.files(), "max_windows": self.config.keep_windows}
        write_atomic(windows_file, json.dumps(doc, separators=(",", ":")))
        log_path = self._state / "train.log"
        with open(log_path, "wb") as log_fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "agent.training.iforest", "--windows", str(windows_file),
                 "--out", str(self._state / name), "--source", f"self-baseline of {self.ctx.instance}"],
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self._training = _Training(proc, self._state / name, self.ctx.clock.monotonic(), log_path)
        self.counters.trainings += 1
        log.info("training_started", windows=len(self._recent), pid=proc.pid, out=str(self._state / name))
        if self.ctx.event_time:
            self._await_training()

    def _await_training(self) -> None:
        """On the records' time (a replay) the child is waited for. Live, its few seconds are a window or two
        learned instead of scored; in a replay they are hours of log whose windows were neither scored nor
        learned from, and a faster machine scored a different set of windows."""
        t = self._training
        if t is None:
            return
        try:
            t.proc.wait(timeout=self.config.train_timeout.seconds)
        except subprocess.TimeoutExpired:
            t.proc.kill()  # past its timeout in real seconds, whatever the plugin's clock says
            t.proc.wait()
        self._poll_training()  # swaps the bundle in, or counts the failure (a killed child exits non-zero)

    def _poll_training(self) -> None:
        t = self._training
        if t is None:
            return
        code = t.proc.poll()
        if code is None:
            if self.ctx.clock.monotonic() - t.started > self.config.train_timeout.seconds:
                t.proc.kill()
                t.proc.wait()
                code = -9
            else:
                return
        self._training = None
        if code != 0 or not self._swap(t.out):
            self.counters.training_failures += 1
            self._failures += 1
            wait = min(RETRY_FIRST_S * 2.0 ** min(self._failures - 1, 16), RETRY_MAX_S)  # 2.0**1024 overflows
            self._not_before = self.ctx.clock.monotonic() + wait
            tail = t.log_path.read_text(errors="replace")[-500:] if t.log_path.exists() else ""
            log.error("training_failed", code=code, output=tail, retry_in_s=wait)
            if self.config.retrain_every:
                self._next_retrain = self.ctx.clock.monotonic() + min(self.config.retrain_every.seconds, 600.0)
        else:
            self._failures = 0
            self._not_before = None

    def _maybe_train(self) -> None:
        if not self.auto or self._training is not None or len(self._recent) < self.config.min_learn_windows:
            return
        if self._not_before is not None and self.ctx.clock.monotonic() < self._not_before:
            return
        if self.model is None:
            if self._learn_start is None:
                return
            if self.config.learn_windows:
                due = len(self._recent) >= self.config.learn_windows
            else:
                due = self._learn_end - self._learn_start >= self.config.learn_for.seconds
            if due or (self._next_retrain is not None and self.ctx.clock.monotonic() >= self._next_retrain):
                self._start_training()
        elif self._relearn or (self._next_retrain is not None and self.ctx.clock.monotonic() >= self._next_retrain):
            self._next_retrain = None
            self._relearn = False
            self._start_training()

    # -- detector protocol ----------------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        out = {k: float(v) for k, v in asdict(self.counters).items()}
        out["learning"] = 1.0 if self.model is None else 0.0
        out["partial_windows"] = float(self._windows.partial_windows())
        out["pending"] = float(len(self._batcher))
        out["recent_windows"] = float(len(self._recent))
        out["recent_write_errors"] = float(self._recent.write_errors)
        return out

    def observe(self, records: Sequence[Record]) -> list[Score]:
        return self._handle(self._windows.add_many(records))

    def tick(self, now: float) -> list[Score]:
        closed = self._windows.tick(now)
        self._poll_training()
        out = self._handle(closed)
        out.extend(self._score(self._batcher.due(self.ctx.clock.monotonic())))
        self._maybe_train()
        return out

    def close(self) -> list[Score]:
        """Whole windows are scored (or learned); those a stop cut short are dropped (`Windower.finish`)."""
        out = self._handle(self._windows.finish(input_ended=self.ctx.event_time))
        out.extend(self._score(self._batcher.flush()))
        if self._training is not None:
            self._training.proc.terminate()
            self._training.proc.wait()
            self._training = None
        if self.auto:
            self._save_carried()
            self._recurring.save()
        self._recent.close()
        return out

    def _handle(self, windows: list[Window]) -> list[Score]:
        if not windows:
            return []
        self.counters.windows += len(windows)
        self._names.learn(windows)
        if self.model is None:
            for w in windows:
                self._recent.append(_compact(summarize(w).to_dict()))
                if self._learn_start is None:
                    self._learn_start = w.start - self._learned_s
                self._learn_end = max(self._learn_end, w.end)
            self._maybe_train()
            return []
        out: list[Score] = []
        for batch in self._batcher.add(windows, self.ctx.clock.monotonic()):
            out.extend(self._score(batch))
        return out

    def _score(self, batch: list[Window]) -> list[Score]:
        if not batch or self.model is None:
            return []
        model = self.model
        scored = model.score_windows(batch)
        threshold = self.config.threshold_override if self.config.threshold_override is not None else model.threshold
        self.counters.batches += 1
        self.counters.scored += len(batch)
        forest, novelty = scored.parts.get("forest"), scored.parts.get("novelty")
        out: list[Score] = []
        for i, w in enumerate(batch):
            value = float(scored.score[i])
            anomalous = value > threshold
            score = Score(
                detector=self.name, stream=w.stream, key=w.key, start=w.start, end=w.end,
                score=value, threshold=threshold, is_anomaly=anomalous, source=",".join(sorted(w.sources)),
                condition=f"session:{w.stream}:{w.key}" if self.spec.type == "session" else f"window:{w.stream}",
            )
            if anomalous:
                self.counters.anomalies += 1
                novel = novelty is not None and novelty[i] > 0
                score.title = f"Unusual log pattern in {w.stream}" + (" (templates or counts never seen)" if novel else "")
                parts = f"forest {forest[i]:.3f}, novelty {novelty[i]:.3f}" if forest is not None and novelty is not None else ""
                score.summary = f"{len(w)} events {span_text(w.start, w.end)} scored {value:.3f} > {threshold:.3f} ({parts})."
                score.severity = Severity.WARNING
                score.evidence = model.explain(w, self._names)
                if self.auto and novel:
                    self._recur(w, score, model)
            elif self.auto:
                self._recent.append(_compact(summarize(w).to_dict()))
            out.append(score)
        return out

    def _recur(self, w: Window, score: Score, model: WindowModel) -> None:
        """Count a novel window's cause; once it has recurred, learn its windows (see agent.recurring)."""
        if self.config.learn_recurring <= 0 or not isinstance(model, ForestModel):
            return
        cause = model.novel_cause(w)
        if not cause:  # the forest alone flagged it: nothing to recognise next time, and no summary to build
            return
        got = self._recurring.flagged(cause, w.end, _compact(summarize(w).to_dict()))
        after = self.config.learn_recurring
        if got.learn:
            for doc in got.learn:
                self._recent.append(doc)
            self.counters.recurring_learned += len(got.learn)
            score.summary += f" Flagged for the same cause in {got.episodes} separate episodes: learned as normal."
            if got.first:
                log.info("recurring_pattern_learned", cause=" ".join(cause), episodes=got.episodes, windows=len(got.learn))
                self._relearn = True  # retrain on them as soon as no training runs (one may be running now)
        elif got.episodes > 1:
            score.summary += f" Flagged for the same cause in {got.episodes} separate episodes (learned at {after})."


def _seq_of(name: str) -> int:
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0
