"""Novelty: a never-seen template at WARN or above, after a learning grace period, remembered across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.clock import ManualClock
from agent.plugin import PluginContext
from agent.schema import Duration
from agent.types import Record, Severity
from plugins.detectors.novelty import NoveltyConfig, NoveltyDetector


def rec(t: float, tid: int, level: str) -> Record:
    return Record(tag="app", source="/var/log/app.log", raw=f"{level} raw {tid}", time=t, level=level,
                  template_id=tid, template=f"template {tid} <*>", params=("x",))


def ctx(tmp_path: Path) -> PluginContext:
    return PluginContext(instance="detector.novelty.0", state_dir=tmp_path, host="h", clock=ManualClock())


def test_new_warn_template_after_grace_is_reported_once(tmp_path: Path) -> None:
    det = NoveltyDetector(NoveltyConfig(learn_for=Duration(60.0)), ctx(tmp_path))
    assert det.observe([rec(0.0, 1, "ERROR"), rec(30.0, 2, "WARN")]) == []  # grace: learned silently
    scores = det.observe([rec(61.0, 3, "INFO"), rec(62.0, 4, "WARN"), rec(63.0, 4, "ERROR"), rec(64.0, 5, "FATAL"),
                          rec(65.0, 1, "ERROR")])
    assert [(s.key, s.severity) for s in scores] == [("4", Severity.WARNING), ("5", Severity.CRITICAL)]
    assert scores[0].condition == "template:4" and scores[0].is_anomaly
    assert scores[0].evidence.samples == ["WARN raw 4"] and scores[0].evidence.templates[0].template == "template 4 <*>"
    assert det.stats()["known_templates"] == 5


def test_min_level_error_ignores_warnings(tmp_path: Path) -> None:
    det = NoveltyDetector(NoveltyConfig(min_level="error", learn_for=Duration(0.0)), ctx(tmp_path))
    assert det.observe([rec(0.0, 1, "WARNING")]) == []
    assert [s.key for s in det.observe([rec(1.0, 2, "error")])] == ["2"]


def test_known_templates_survive_restart_without_new_grace(tmp_path: Path) -> None:
    det = NoveltyDetector(NoveltyConfig(learn_for=Duration(10.0)), ctx(tmp_path))
    det.observe([rec(0.0, 1, "ERROR")])
    det.close()
    again = NoveltyDetector(NoveltyConfig(learn_for=Duration(10.0)), ctx(tmp_path))
    assert again.observe([rec(100.0, 1, "ERROR")]) == []
    assert [s.key for s in again.observe([rec(101.0, 9, "ERROR")])] == ["9"]  # no second grace period


def test_corrupt_state_is_set_aside(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    (c.plugin_state_dir() / "templates.json").write_text("{broken")
    det = NoveltyDetector(NoveltyConfig(), c)
    assert det.stats()["known_templates"] == 0
    assert any(p.name.startswith("templates.json.rejected-") for p in c.plugin_state_dir().iterdir())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(-1, 6), st.sampled_from(["INFO", "WARN", "ERROR"])), max_size=6),
                max_size=8))
def test_batches_report_what_records_one_by_one_report(tmp_path_factory: pytest.TempPathFactory,
                                                       batches: list[list[tuple[int, str]]]) -> None:
    """Whole batches (with the all-known fast path) against the same records fed one at a time."""
    dets = [NoveltyDetector(NoveltyConfig(learn_for=Duration(5.0)), ctx(tmp_path_factory.mktemp("n")))
            for _ in range(2)]
    t = 0.0
    got: list[list[str]] = [[], []]
    for batch in batches:
        recs = []
        for tid, level in batch:
            t += 1.0
            recs.append(rec(t, tid, level))
        got[0] += [s.key for s in dets[0].observe(recs)]
        got[1] += [s.key for r in recs for s in dets[1].observe([r])]
    assert got[0] == got[1]
    assert dets[0].stats() == dets[1].stats()
