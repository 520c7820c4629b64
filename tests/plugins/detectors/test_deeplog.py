"""DeepLogDetector on real records: session windows from the bundle, onnxruntime scoring, evidence on misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.clock import ManualClock
from agent.plugin import PluginContext
from agent.schema import Duration
from agent.types import Record
from plugins.detectors.deeplog import DeepLogDetector, SequenceDetectorConfig
from tests.agent.training.seqdata import shared_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_bundle(tmp_path_factory, "deeplog")


def records(session: str, keys: list[int], t0: float) -> list[Record]:
    return [
        Record(tag="app", source="/var/log/app.log", raw=f"t={t0 + i} session={session} event {k}", time=t0 + i,
               fields={"session": session}, template_id=k, template=f"event {k} <*>")
        for i, k in enumerate(keys)
    ]


def test_detector_flags_the_broken_session_only_and_explains_it(bundle_dir: Path, tmp_path: Path) -> None:
    # On event time, as a replay runs: the end of the input ends its sessions, so close() scores them.
    ctx = PluginContext(instance="detector.deeplog.0", state_dir=tmp_path, host="h", clock=ManualClock(0.0),
                        event_time=True)
    det = DeepLogDetector(SequenceDetectorConfig(model=str(bundle_dir), batch_wait=Duration(0.0)), ctx)
    feed = (records("a", [10, 11, 12, 13], 0) + records("b", [10, 11, 14, 15, 15, 16, 13], 10)
            + records("c", [10, 12, 11, 13], 20) + records("d", [20, 21], 30) + records("e", [10, 11, 77, 13], 40))
    scores = det.observe(feed) + det.close()
    by_key = {s.key: s for s in scores}
    assert set(by_key) == {"a", "b", "c", "d", "e"}
    assert not by_key["a"].is_anomaly and not by_key["b"].is_anomaly and not by_key["d"].is_anomaly
    broken = by_key["c"]
    assert broken.is_anomaly and broken.score > broken.threshold
    assert broken.evidence.templates and broken.evidence.samples
    # after `10` only `11` is likely, so either the misplaced 12 or the 11 after it is the miss
    assert broken.evidence.templates[0].template in {"event 11 <*>", "event 12 <*>"}
    unknown = by_key["e"]
    assert unknown.is_anomaly
    assert "never seen" in unknown.evidence.templates[0].template
    stats = det.stats()
    assert stats["scored"] == 5 and stats["anomalies"] == 2 and stats["unknown_events"] == 1


def test_a_stop_drops_sessions_still_in_flight_instead_of_scoring_them(bundle_dir: Path, tmp_path: Path) -> None:
    """Live, a stop cuts requests short: a truncated session would look broken and page at every restart."""
    ctx = PluginContext(instance="detector.deeplog.0", state_dir=tmp_path, host="h", clock=ManualClock(0.0))
    det = DeepLogDetector(SequenceDetectorConfig(model=str(bundle_dir), batch_wait=Duration(0.0)), ctx)
    scores = det.observe(records("a", [10, 11], 0) + records("c", [10, 12, 11, 13], 20)) + det.close()
    assert scores == []
    assert det.stats()["partial_windows"] == 2 and det.stats()["scored"] == 0


def test_preflight_refuses_a_missing_bundle(tmp_path: Path) -> None:
    problems = DeepLogDetector.preflight(SequenceDetectorConfig(model=str(tmp_path / "nope")))
    assert problems and problems[0][0] == "model"
