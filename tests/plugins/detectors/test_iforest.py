"""IForest detector: serving a bundle, and self-baselining with a real training child process."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import random
import resource
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from agent.bundle import write_bundle
from agent.clock import ManualClock
from agent.plugin import PluginContext
from agent.recent_windows import read_recent
from agent.schema import Duration
from agent.training.iforest import ForestOptions, build_bundle
from agent.types import Record, Window
from agent.windows import WindowSpec
from plugins.detectors.iforest import IForestConfig, IForestDetector

SESSION = WindowSpec(type="session", key=r"blk_-?\d+", idle=Duration(5.0))


def block_records(block: int, t0: float, events: list[int]) -> list[Record]:
    return [Record(tag="hdfs", source="/log/hdfs.log", raw=f"event {e} blk_{block}", time=t0 + i, template_id=e,
                   template=f"template {e}") for i, e in enumerate(events)]


def normal_events(rnd: random.Random) -> list[int]:
    return [5, 5, 22] + [11, 9] * rnd.randint(2, 3) + [26, 26]


def feed_normal(det: IForestDetector, rnd: random.Random, t: float, blocks: int, first: int = 0) -> float:
    """`blocks` normal sessions 20 s apart, each closed by the tick after it; returns the time after them."""
    for block in range(first, first + blocks):
        det.observe(block_records(block, t, normal_events(rnd)))
        t += 20.0
        det.tick(t)
    return t


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    rnd = random.Random(0)
    windows = [Window("hdfs", str(i), 0.0, 0.0, events=normal_events(rnd)) for i in range(150)]
    model, manifest = build_bundle(windows, SESSION, ForestOptions(n_estimators=20), command="test")
    return write_bundle(tmp_path / "bundle", model, manifest)


def test_serves_a_bundle_with_evidence(tmp_path: Path, bundle: Path) -> None:
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path / "state", host="h", clock=ManualClock())
    det = IForestDetector(IForestConfig(model=str(bundle), batch_size=2), c)
    assert det.spec == SESSION  # the bundle's window spec wins
    det.observe(block_records(1, 0.0, [5, 5, 22, 11, 9, 11, 9, 26, 26]))
    det.observe(block_records(2, 0.0, [5, 22, 77]))
    scores = det.tick(100.0) + det.close()
    by_key = {s.key: s for s in scores}
    assert set(by_key) == {"blk_1", "blk_2"}
    assert not by_key["blk_1"].is_anomaly and by_key["blk_2"].is_anomaly
    ev = by_key["blk_2"].evidence
    assert ev.templates[0].template_id == 77 and ev.samples[0] == "event 77 blk_2"
    assert by_key["blk_2"].condition == "session:hdfs:blk_2"


def test_evidence_names_the_templates_that_went_missing(tmp_path: Path, bundle: Path) -> None:
    """"observed 0, normally 2.5" must say which line stopped: the window no longer holds that template, so
    its text comes from what the detector saw earlier, or after a restart from the bundle's manifest."""

    def named(block: int, events: list[int]) -> list[Record]:
        return [Record(tag="hdfs", source="/log/hdfs.log", raw=f"event {e} blk_{block}", time=float(i),
                       template_id=e, template=f"Event {e} of <*>") for i, e in enumerate(events)]

    def missing_rows(det: IForestDetector, block: int) -> dict[int, str]:
        det.observe(named(block, [5, 22, 77]))
        (score,) = [s for s in det.tick(100.0 * block) if s.key == f"blk_{block}"]
        assert score.is_anomaly and score.summary.startswith("3 events from 1970-01-01 00:00:00 to ")
        return {t.template_id: t.template for t in score.evidence.templates if t.observed == 0}

    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path / "state", host="h", clock=ManualClock())
    det = IForestDetector(IForestConfig(model=str(bundle), batch_size=1), c)
    assert set(missing_rows(det, 1).values()) <= {"template 9", "template 11", "template 26"}  # never seen: ids only
    det.observe(named(2, [5, 5, 22, 11, 9, 11, 9, 26, 26]))
    rows = missing_rows(det, 3)
    assert rows and all(text == f"Event {tid} of <*>" for tid, text in rows.items()), rows

    texts = {e: f"Event {e} from the manifest" for e in (5, 9, 11, 22, 26)}
    model, manifest = build_bundle([Window("hdfs", str(i), 0.0, 0.0, events=normal_events(random.Random(i)))
                                    for i in range(150)], SESSION, ForestOptions(n_estimators=20), command="test",
                                   template_names=texts)
    restarted = IForestDetector(IForestConfig(model=str(write_bundle(tmp_path / "named", model, manifest)),
                                              batch_size=1), c)
    rows = missing_rows(restarted, 4)
    assert rows and all(text == texts[tid] for tid, text in rows.items()), rows


def test_a_stop_scores_the_whole_windows_and_drops_the_ones_it_cut_short(tmp_path: Path) -> None:
    """Windows of a steady stream learned whole; the ones a stop cuts short hold a fraction of their
    counts, which the forest reads as anomalous: a false alert at every restart."""
    spec = WindowSpec(type="sliding", size=Duration(60.0), step=Duration(10.0))

    def steady(t0: float, seconds: int) -> list[Record]:
        return [Record(tag="app", source="/log/app.log", raw=f"line {e}", time=t0 + i / 4, template_id=e,
                       template=f"template {e}") for i in range(seconds * 4) for e in (i % 3,)]

    rnd = random.Random(0)
    learned = []
    for i in range(60):
        events = [e for e in (0, 1, 2) for _ in range(rnd.randint(74, 86))]
        rnd.shuffle(events)
        learned.append(Window("app", str(i), 0.0, 60.0, events=events, times=[j * 60 / len(events) for j in range(len(events))]))
    model, manifest = build_bundle(learned, spec, ForestOptions(n_estimators=20), command="test")
    bundle_dir = write_bundle(tmp_path / "bundle", model, manifest)
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path / "state", host="h", clock=ManualClock())
    det = IForestDetector(IForestConfig(model=str(bundle_dir), batch_size=1, batch_wait=Duration(0.0)), c)
    scored = det.observe(steady(0.0, 300)) + det.tick(300.0)
    assert scored and not any(s.is_anomaly for s in scored)  # whole windows of the same stream: normal
    # 25 s more close [250, 310) and [260, 320); a stop then cuts six short, each holding 55 s of 60 or less.
    assert [s.start for s in det.observe(steady(300.0, 25))] == [250.0, 260.0]
    assert det.close() == []
    assert det.stats()["partial_windows"] == 6


def test_preflight(tmp_path: Path, bundle: Path) -> None:
    assert IForestDetector.preflight(IForestConfig(model=str(bundle))) == []
    assert IForestDetector.preflight(IForestConfig()) == []
    (bundle / "model.onnx").write_bytes(b"junk")
    (problem,) = IForestDetector.preflight(IForestConfig(model=str(bundle)))
    assert problem[0] == "model" and "sha256" in problem[1]


def test_self_baselines_in_a_child_process_and_hot_swaps(
    tmp_path: Path, waiter: Callable[..., None]
) -> None:
    clock = ManualClock()
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path, host="h", clock=clock)
    config = IForestConfig(window=SESSION, learn_windows=60, min_learn_windows=20, n_estimators=20,
                           novelty_margin=0.0, retrain_every=Duration(3600.0))
    det = IForestDetector(config, c)
    rnd = random.Random(1)
    t = feed_normal(det, rnd, 0.0, 60)
    assert det.stats()["trainings"] == 1 and det.model is None

    def swapped() -> bool:
        det.tick(t)
        return det.model is not None

    waiter(swapped, timeout=60.0, what="the trained bundle to be swapped in")
    state = c.plugin_state_dir()
    assert json.loads((state / "current.json").read_text()) == {"current": "bundle-000001", "previous": None}
    assert "sklearn" not in json.dumps(det.stats())
    # The child names the templates it learned, so a restarted daemon can name one that stopped.
    assert det.model.bundle.template_names == {e: f"template {e}" for e in (5, 9, 11, 22, 26)}
    det.observe(block_records(999, t, [5, 22, 404]))
    scores = det.tick(t + 100.0) + det.close()
    assert [s.key for s in scores if s.is_anomaly] == ["blk_999"]

    # A restart resumes the saved bundle instead of learning again.
    again = IForestDetector(config, c)
    assert again.model is not None and again.model.bundle.path.name == "bundle-000001"

    # The retrain schedule produces a second bundle; the first is kept for rollback.
    clock.advance(3601.0)
    for block in range(30):
        again.observe(block_records(2000 + block, t, normal_events(rnd)))
        t += 20.0
        clock.advance(0.1)  # lets each micro-batch reach its batch_wait
        again.tick(t)
    assert again.stats()["scored"] >= 20 and again.stats()["trainings"] == 1

    def retrained() -> bool:
        again.tick(t)
        return again.model is not None and again.model.bundle.path.name == "bundle-000002"

    waiter(retrained, timeout=60.0, what="the retrained bundle")
    assert json.loads((state / "current.json").read_text()) == {"current": "bundle-000002", "previous": "bundle-000001"}
    again.close()


def test_a_restart_during_learning_carries_on_where_it_stopped(tmp_path: Path) -> None:
    """Ten minutes of learning, a stop at five, a restart an hour later: five more minutes finish it, on the
    windows of both processes. (Before, the restart started the ten minutes over, on its own windows.)"""
    config = IForestConfig(window=SESSION, learn_for=Duration(600.0), min_learn_windows=20, n_estimators=20)
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path, host="h", clock=ManualClock())
    first = IForestDetector(config, c)
    rnd = random.Random(3)
    feed_normal(first, rnd, 0.0, 16)  # sessions 20 s apart: 308 s of learning
    assert first.stats()["trainings"] == 0 and first.stats()["recent_windows"] == 16
    first.close()

    evidence_only = replace(config, window=replace(SESSION, max_samples=5))  # changes no count: windows kept
    again = IForestDetector(evidence_only, c)
    assert again.stats()["recent_windows"] == 16
    t = feed_normal(again, rnd, 3600.0, 15, first=100)  # 3600..3888: 596 s with the first process's 308
    assert again.stats()["trainings"] == 0
    feed_normal(again, rnd, t, 1, first=200)
    assert again.stats()["trainings"] == 1 and again.stats()["recent_windows"] == 32
    train_doc = json.loads((c.plugin_state_dir() / "train-windows.json").read_text())
    assert len(read_recent(train_doc["window_files"], train_doc["max_windows"])) == 32
    again.close()


def _resumable_bundle(state: Path, created: float) -> None:
    """A bundle the instance resumes at start, trained at `created` (wall time)."""
    rnd = random.Random(0)
    windows = [Window("hdfs", str(i), 0.0, 0.0, events=normal_events(rnd)) for i in range(150)]
    model, manifest = build_bundle(windows, SESSION, ForestOptions(n_estimators=20), command="test")
    manifest["created"] = _dt.datetime.fromtimestamp(created, _dt.UTC).isoformat(timespec="seconds")
    write_bundle(state / "bundle-000001", model, manifest)
    (state / "current.json").write_text(json.dumps({"current": "bundle-000001", "previous": None}))


@pytest.mark.parametrize("kept", [True, False])
def test_the_retrain_schedule_runs_from_the_bundles_training_not_from_the_restart(tmp_path: Path, kept: bool) -> None:
    """A bundle trained 50 minutes before a restart is retrained 10 minutes after it (hourly schedule), on the
    windows kept; a daemon restarted more often than `retrain_every` would otherwise never retrain. Without
    kept windows the schedule starts over: a retraining on the first few windows after the restart would
    replace a model learned over days with one learned over minutes."""
    trained = 1_700_000_000.0
    config = IForestConfig(window=SESSION, min_learn_windows=20, n_estimators=20, retrain_every=Duration(3600.0))
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path, host="h", clock=ManualClock(trained + 600.0))
    _resumable_bundle(c.plugin_state_dir(), trained)
    first = IForestDetector(config, c)
    assert first.model is not None
    rnd = random.Random(5)
    t = feed_normal(first, rnd, 0.0, 25)
    first.close()
    assert first.stats()["scored"] == 25 and first.stats()["trainings"] == 0
    if not kept:
        (c.plugin_state_dir() / "recent-windows.meta.json").unlink()

    clock = ManualClock(trained + 3000.0)
    again = IForestDetector(config, replace(c, clock=clock))
    assert again.stats()["recent_windows"] == (25 if kept else 0)
    clock.advance(601.0)
    feed_normal(again, rnd, t, 25 if not kept else 1, first=100)
    assert again.stats()["trainings"] == (1 if kept else 0)
    again.close()


def test_on_the_records_time_the_training_child_is_waited_for(tmp_path: Path) -> None:
    """A replay reads hours of log in the seconds a training takes: those windows must be scored by the
    model as they would be live, not skipped because the child was still running."""
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path, host="h", clock=ManualClock(), event_time=True)
    config = IForestConfig(window=SESSION, learn_windows=60, min_learn_windows=20, n_estimators=20, novelty_margin=0.0)
    det = IForestDetector(config, c)
    t = feed_normal(det, random.Random(1), 0.0, 60)
    assert det.stats()["trainings"] == 1 and det.model is not None  # swapped in by the call that trained it
    det.observe(block_records(999, t, [5, 22, 404]))
    scores = det.tick(t + 100.0) + det.close()
    assert [s.key for s in scores if s.is_anomaly] == ["blk_999"]


def test_on_the_records_time_a_training_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    """The wait is in real seconds: a manual (or event) clock that does not move must not leave the child
    running unwatched."""
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path, host="h", clock=ManualClock(), event_time=True)
    config = IForestConfig(window=SESSION, learn_windows=20, min_learn_windows=20, train_timeout=Duration(0.01))
    det = IForestDetector(config, c)
    feed_normal(det, random.Random(1), 0.0, 25)  # a Python start-up alone takes longer than 10 ms
    assert (det.stats()["trainings"], det.stats()["training_failures"]) == (1, 1)
    assert det.model is None and det._training is None


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """RLIMIT_FSIZE, inherited by child processes: a write past it fails with EFBIG, as on a full disk
    (CPython ignores SIGXFSZ, so the write raises instead of the process being killed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_failing_training_is_retried_after_a_growing_wait_not_at_every_window(tmp_path: Path) -> None:
    """A child that cannot write its bundle fails; it was started again at every tick."""
    clock = ManualClock()
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path, host="h", clock=clock, event_time=True)
    config = IForestConfig(window=SESSION, learn_windows=20, min_learn_windows=20, n_estimators=400)
    det = IForestDetector(config, c)
    rnd = random.Random(1)
    t = 0.0

    def feed(blocks: int) -> None:
        nonlocal t
        t = feed_normal(det, rnd, t, blocks, first=int(t))

    with file_size_limit(24 * 1024):  # the windows file (~0.2 KB a window) fits, a 400-tree model (~40 KB) not
        feed(40)
        assert (det.stats()["trainings"], det.stats()["training_failures"]) == (1, 1) and det.model is None
        assert (c.plugin_state_dir() / "train.log").read_text() == "training failed: [Errno 27] File too large\n"
        clock.advance(59.0)
        feed(5)
        assert det.stats()["trainings"] == 1  # still waiting out the first minute
        clock.advance(2.0)
        feed(5)
        assert (det.stats()["trainings"], det.stats()["training_failures"]) == (2, 2)
        clock.advance(61.0)
        feed(5)
        assert det.stats()["trainings"] == 2  # the second wait is two minutes
    clock.advance(60.0)
    feed(5)  # the disk has room again
    assert (det.stats()["trainings"], det.stats()["training_failures"]) == (3, 2) and det.model is not None
    det.close()


_DAEMON_SIDE = """
import json, sys
from pathlib import Path
from agent.clock import ManualClock
from agent.plugin import PluginContext
from agent.types import Record
from plugins.detectors.iforest import IForestConfig, IForestDetector

state = Path(sys.argv[1])
ctx = PluginContext(instance="detector.iforest.0", state_dir=state, host="h", clock=ManualClock())
det = IForestDetector(IForestConfig(learn_windows=20, min_learn_windows=20, n_estimators=5), ctx)
for i in range(3000):
    det.observe([Record(tag="t", source="a.log", raw=f"line {i}", time=1000.0 + i / 10, template_id=i % 7,
                        template=f"tpl {i % 7}", level="INFO")])
started = det.stats()["trainings"]
det.close()
heavy = sorted(m for m in ("agent.training.iforest", "onnx", "sklearn") if m in sys.modules)
print(json.dumps({"started": started, "heavy": heavy}))
"""


def test_starting_a_training_child_loads_no_training_code_into_the_daemon(tmp_path: Path) -> None:
    """The daemon writes the training windows file itself: the training module would pull onnx and its
    protobuf runtime into the daemon's memory just to dump JSON."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", _DAEMON_SIDE, str(tmp_path)], cwd=root, capture_output=True,
                          text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"started": 1.0, "heavy": []}
    doc = json.loads((tmp_path / "detector.iforest.0" / "train-windows.json").read_text())
    assert asdict(ForestOptions(**{**doc["options"], "groups": tuple(doc["options"]["groups"])})) == asdict(
        ForestOptions(n_estimators=5, quantile=0.99999, tail=True, novelty_margin=0.25, novelty_rate_sd=3.0,  # rates
                      groups=("counts", "stats", "temporal", "levels"), seed=1))
    windows = read_recent(doc["window_files"], doc["max_windows"])  # what the child reads
    assert len(windows) >= 20 and all("counts" in w for w in windows)


def nightly_pages(tmp_path: Path, learn_recurring: int, episodes: int = 5) -> tuple[list[int], IForestDetector]:
    """Sliding windows over Poisson traffic of four templates, one line of a template never seen while
    learning (a nightly job) every 1.5 hours; returns the hour of each episode that paged."""
    clock = ManualClock()
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path, host="h", clock=clock, event_time=True)
    config = IForestConfig(learn_windows=360, n_estimators=50, retrain_every=None, learn_recurring=learn_recurring,
                           recurring_gap=Duration(3600.0))
    det = IForestDetector(config, c)
    rnd = random.Random(7)
    t0 = 1_700_000_000.0
    job_at = {int(5400 * (k + 1)) + 30 for k in range(episodes)}
    paged: set[int] = set()
    for sec in range(5400 * (episodes + 1)):
        recs = [Record(tag="app", source="/x.log", raw=f"line {tid}", time=t0 + sec + 0.5, template_id=tid,
                       template=f"template {tid}") for tid, rate in ((1, 2.0), (2, 1.0), (3, 0.5), (4, 0.2))
                for _ in range(_poisson(rnd, rate))]
        if sec in job_at:
            recs.append(Record(tag="app", source="/x.log", raw="nightly job done", time=t0 + sec + 0.6,
                               template_id=77, template="nightly job done"))
        out = det.observe(recs) if recs else []
        if sec % 10 == 0:
            clock.advance(10.0)
            out += det.tick(t0 + sec)
        paged.update(round((s.start - t0) / 5400) for s in out if s.is_anomaly)
    det.close()
    return sorted(paged), det


def _poisson(rnd: random.Random, rate: float) -> int:
    n, p, limit = 0, 1.0, 2.718281828459045 ** -rate
    while True:
        p *= rnd.random()
        if p < limit:
            return n
        n += 1


def test_a_pattern_flagged_in_three_separate_episodes_is_learned(tmp_path: Path) -> None:
    """A never-seen line that comes back every 1.5 hours pages three times, then a retraining on the windows
    it was flagged in makes it normal; with learning off it pages every time (the forest never learns a
    window it flagged)."""
    paged, det = nightly_pages(tmp_path / "on", learn_recurring=3)
    assert paged == [1, 2, 3]
    assert det.stats()["recurring_learned"] >= 3 and det.stats()["trainings"] == 2
    assert json.loads((tmp_path / "on" / "detector.iforest.0" / "recurring.json").read_text())["causes"] == [
        [["+77"], 3, pytest.approx(1_700_000_000.0 + 3 * 5400 + 60, abs=40), []]]  # none held: all learned
    off, _ = nightly_pages(tmp_path / "off", learn_recurring=0)
    assert off == [1, 2, 3, 4, 5]


def test_a_pattern_learned_while_a_training_runs_is_retrained_on_once_it_is_done(
    tmp_path: Path, waiter: Callable[..., None]
) -> None:
    """Live, the third episode can come while a scheduled training child is running: the recurring windows
    must get a retraining of their own after it, not wait for the next day's schedule."""
    clock = ManualClock()
    c = PluginContext(instance="detector.iforest.0", state_dir=tmp_path, host="h", clock=clock)
    config = IForestConfig(window=SESSION, learn_windows=60, min_learn_windows=20, n_estimators=20,
                           novelty_margin=0.0, retrain_every=Duration(3600.0), recurring_gap=Duration(60.0))
    det = IForestDetector(config, c)
    rnd = random.Random(1)
    t = feed_normal(det, rnd, 0.0, 60)

    def bundle_is(name: str) -> Callable[[], bool]:
        def check() -> bool:
            det.tick(t)
            return det.model is not None and det.model.bundle.path.name == name
        return check

    def novel(block: int) -> bool:
        nonlocal t
        det.observe(block_records(block, t, [5, 22, 404]))
        t += 100.0
        scores = det.tick(t)  # closes the session; its micro-batch is scored once batch_wait has passed
        clock.advance(0.1)
        return any(s.is_anomaly for s in scores + det.tick(t))

    waiter(bundle_is("bundle-000001"), timeout=60.0, what="the first bundle")
    assert novel(900) and novel(901)
    clock.advance(3601.0)
    t = feed_normal(det, rnd, t, 1, first=2000)  # its tick starts the scheduled training
    assert det.stats()["trainings"] == 2
    assert novel(902)  # the third episode while the child runs: learned, and retraining is due
    assert det.stats()["recurring_learned"] == 3
    waiter(bundle_is("bundle-000002"), timeout=60.0, what="the scheduled bundle")
    waiter(bundle_is("bundle-000003"), timeout=60.0, what="the bundle retrained on the recurring windows")
    assert det.stats()["trainings"] == 3
    assert not novel(903)
    det.close()
