"""Router logic: fingerprints, dedup within cooldown, escalation, reminders, rate limits, resolve, restart."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from agent.alerting.config import AlertsConfig
from agent.alerting.router import AlertRouter, fingerprint
from agent.clock import ManualClock
from agent.plugin import PluginContext
from agent.schema import Duration
from agent.types import AlertStatus, Evidence, Score, Severity, TemplateEvidence
from plugins.outputs.file import FileConfig, FileOutput
from plugins.outputs.slack import SlackConfig, SlackOutput


def score(cond: str = "c1", sev: Severity = Severity.WARNING, anomaly: bool = True, key: str = "w1",
          start: float = 1000.0, templates: int = 10, samples: int = 10) -> Score:
    return Score(
        detector="volume", stream="app", key=key, start=start, end=start + 60, score=5.0, threshold=2.0,
        is_anomaly=anomaly, title=f"burst {cond}", summary="too many errors", severity=sev,
        evidence=Evidence([TemplateEvidence(i, f"t{i} <*>", 10.0, 1.0) for i in range(templates)],
                          [f"line {i}" for i in range(samples)], {"user": "x"}),
        source="/var/log/app.log", condition=cond,
    )


def make(tmp_path: Path, clock: ManualClock, **cfg: object) -> tuple[AlertRouter, Path]:
    ctx = PluginContext(instance="output.file.0", state_dir=tmp_path, host="h", clock=clock)
    out_path = tmp_path / "alerts.jsonl"
    out = FileOutput(FileConfig(path=str(out_path), fsync=False), ctx)
    config = AlertsConfig(**cfg)  # type: ignore[arg-type]
    return AlertRouter(config, [("output.file.0", "app*", out)], tmp_path / "spool.db", "h", clock), out_path


def test_fingerprint_is_stable_and_identifies_the_condition_not_the_occurrence() -> None:
    a, b = score(key="w1", start=1.0), score(key="w9", start=500.0)
    # Spelled out independently: the value must not depend on the process (no hash() randomisation).
    expected = hashlib.sha256(b"volume\x1fapp\x1fc1\x1f/var/log/app.log").hexdigest()[:16]
    assert fingerprint(a) == fingerprint(b) == expected
    assert fingerprint(score(cond="c2")) != fingerprint(a)
    untitled = score(cond="")
    assert fingerprint(untitled) != fingerprint(a) and fingerprint(untitled) == fingerprint(score(cond="", key="x"))


def test_repeats_within_cooldown_become_a_count_and_escalation_notifies(tmp_path: Path) -> None:
    clock = ManualClock()
    router, _ = make(tmp_path, clock, cooldown=Duration(600))
    first = router.submit([score(), score(anomaly=False, cond="quiet")], tag="app")
    assert len(first) == 1 and first[0].id.startswith(first[0].fingerprint + "-")
    assert len(first[0].evidence.templates) == 5 and len(first[0].evidence.samples) == 5  # trimmed
    clock.advance(30)
    assert router.submit([score(start=1100.0)], tag="app") == []
    (open_alert,) = router.open_alerts()
    assert open_alert.count == 2 and open_alert.last_seen == 1160.0
    clock.advance(30)
    escalated = router.submit([score(sev=Severity.CRITICAL)], tag="app")
    assert [a.severity for a in escalated] == [Severity.CRITICAL] and escalated[0].count == 3
    assert escalated[0].id != first[0].id and escalated[0].fingerprint == first[0].fingerprint
    clock.advance(601)
    reminder = router.submit([score()], tag="app")
    assert len(reminder) == 1 and reminder[0].count == 4
    st = router.stats()
    assert st["deduplicated"] == 1 and st["escalations"] == 1 and st["reminders"] == 1
    router.close(1.0)


def test_unmatched_tags_open_alerts_but_notify_nobody(tmp_path: Path) -> None:
    router, _ = make(tmp_path, ManualClock())
    assert router.submit([score()], tag="db") == []
    assert len(router.open_alerts()) == 1
    router.close(1.0)


def test_global_rate_limit_holds_back_then_a_repeat_notifies_once_tokens_return(tmp_path: Path) -> None:
    clock = ManualClock()
    router, _ = make(tmp_path, clock, max_per_minute=2)
    sent = router.submit([score(cond=f"c{i}") for i in range(5)], tag="app")
    assert len(sent) == 2 and router.stats()["rate_limited"] == 3
    clock.advance(60)
    again = router.submit([score(cond="c4")], tag="app")
    assert len(again) == 1 and again[0].count == 2
    router.close(1.0)


def test_per_output_rate_limit(tmp_path: Path) -> None:
    router, _ = make(tmp_path, ManualClock(), output_max_per_minute=3)
    assert len(router.submit([score(cond=f"c{i}") for i in range(5)], tag="app")) == 3
    assert router.stats()["output_rate_limited"] == 2
    router.close(1.0)


def test_alerts_from_one_window_share_a_group_and_slack_gets_them_in_one_message(
    tmp_path: Path, waiter: Callable[..., None]
) -> None:
    from agent.alerting.testing import Receiver

    with Receiver() as rx:
        ctx = PluginContext(instance="output.slack.0", state_dir=tmp_path, host="h")
        slack = SlackOutput(SlackConfig(webhook_url=rx.url + "/services/T/B/x"), ctx)
        router = AlertRouter(AlertsConfig(), [("output.slack.0", "*", slack)], tmp_path / "spool.db", "h")
        router.start()
        router.submit([score(cond="a", key="w1"), score(cond="b", key="w1")], tag="app")
        router.submit([score(cond="c", key="w2")], tag="app")
        waiter(lambda: router.stats()["sent"] == 3, timeout=10, what="three alerts sent")
        router.close(2.0)
        texts = [b["text"] for b in rx.bodies()]
        assert len(texts) == 2 and "burst a" in texts[0] and "burst b" in texts[0] and "burst c" in texts[1]


def test_resolve_after_quiet_period_and_state_survives_restart(tmp_path: Path, waiter: Callable[..., None]) -> None:
    clock = ManualClock()
    router, out_path = make(tmp_path, clock, resolve_after=Duration(300), cooldown=Duration(600))
    (fired,) = router.submit([score()], tag="app")
    router.close(1.0)
    # A restart keeps the open condition: a repeat is deduplicated, not notified again.
    router, out_path = make(tmp_path, clock, resolve_after=Duration(300), cooldown=Duration(600))
    clock.advance(100)
    assert router.submit([score()], tag="app") == []
    router.tick(clock.time() + 299)
    assert router.open_alerts()
    clock.advance(300)
    router.tick(clock.time())
    assert router.open_alerts() == []
    (resolved,) = router.recent(1)
    assert resolved.status is AlertStatus.RESOLVED and resolved.fingerprint == fired.fingerprint
    router.start()
    waiter(lambda: out_path.exists() and len(out_path.read_text().splitlines()) == 2, what="firing + resolved")
    router.close(2.0)
    docs = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [d["status"] for d in docs] == ["firing", "resolved"]
    assert docs[1]["count"] == 2 and docs[0]["id"] != docs[1]["id"]


def test_resolutions_skip_outputs_that_do_not_support_them(tmp_path: Path) -> None:
    clock = ManualClock()
    ctx = PluginContext(instance="output.slack.0", state_dir=tmp_path, host="h", clock=clock)
    slack = SlackOutput(SlackConfig(webhook_url="http://127.0.0.1:9/x"), ctx)
    file_out = FileOutput(FileConfig(path=str(tmp_path / "a.jsonl")), ctx)
    router = AlertRouter(AlertsConfig(resolve_after=Duration(10)),
                         [("output.slack.0", "*", slack), ("output.file.0", "*", file_out)],
                         tmp_path / "spool.db", "h", clock)
    router.submit([score()], tag="app")
    clock.advance(11)
    router.tick(clock.time())
    assert router.stats()["output.slack.0.pending"] == 1  # only the firing notification
    assert router.stats()["output.file.0.pending"] == 2  # firing + resolved
    router.close(1.0)


def test_alerts_config_is_built_and_validated_from_yaml_data() -> None:
    from agent.alerting.config import AlertsConfig as Cfg
    from agent.schema import Builder

    b = Builder("x.yaml")
    cfg = b.build(Cfg, {"cooldown": "5m", "retry": {"base": "200ms", "cap": "1m", "limit": 5}}, "service.alerts")
    assert cfg is not None and cfg.cooldown.seconds == 300 and cfg.retry.base.seconds == 0.2 and cfg.retry.limit == 5
    bad = Builder("x.yaml")
    assert bad.build(Cfg, {"retry": {"base": "10s", "cap": "1s"}}, "service.alerts") is None
    assert "cap" in str(bad.errors[0])


def test_a_spool_that_cannot_be_written_fails_submit_and_leaves_no_dedup_state(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    router, _ = make(tmp_path, ManualClock())
    router.spool.close()  # what a vanished state dir looks like to the router
    with pytest.raises(sqlite3.Error):
        router.submit([score()], tag="app")
    assert router.open_alerts() == []


def test_a_failed_spool_write_rolls_an_open_alert_back_to_what_it_was(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    clock = ManualClock()
    router, _ = make(tmp_path, clock)
    router.submit([score()], tag="app")
    (before,) = router.open_alerts()
    router.spool.close()
    clock.advance(3600)  # past the cooldown, so the repeat would notify (and mark the output resent)
    with pytest.raises(sqlite3.Error):
        router.submit([score(sev=Severity.CRITICAL, start=5000.0, templates=1)], tag="app")
    (after,) = router.open_alerts()
    assert after == before and after.count == 1 and after.severity == Severity.WARNING
    assert len(after.evidence.templates) == len(before.evidence.templates)
    router.close(1.0)


def test_a_flood_of_distinct_conditions_is_capped_and_notified_ones_are_kept(tmp_path: Path) -> None:
    """Each anomaly opens an alert that folds its repeats; a flood of distinct ones (free text at ERROR, every
    line a new template) grew that table, and its spool copy, without bound. Beyond `max_open` the oldest
    never-notified are forgotten first; the spool forgets them too, so a restart sees the same table."""
    clock = ManualClock()
    router, _ = make(tmp_path, clock, max_open=5, max_per_minute=2)
    notified = router.submit([score(cond="c0"), score(cond="c1")], tag="app")
    assert len(notified) == 2
    for i in range(2, 30):
        router.submit([score(cond=f"c{i}")], tag="app")  # rate-limited: opened, never notified
    kept = {a.fingerprint for a in router.open_alerts()}
    assert len(kept) == 5
    assert {fingerprint(score(cond="c0")), fingerprint(score(cond="c1"))} <= kept  # the ones outputs have seen
    assert fingerprint(score(cond="c29")) in kept and fingerprint(score(cond="c2")) not in kept  # oldest go first
    assert router.stats()["alerts_forgotten"] == 25
    router.close(5.0)
    again, _ = make(tmp_path, clock, max_open=5, max_per_minute=2)
    assert {a.fingerprint for a in again.open_alerts()} == kept
    again.close(5.0)


def test_a_lone_surrogate_from_a_json_log_line_is_replaced_not_a_poison_alert(
    tmp_path: Path, waiter: Callable[..., None]
) -> None:
    # json.loads('"\\ud800"') yields a lone surrogate: a JSON log line can put one in a template or sample,
    # which UTF-8 (SQLite, HTTP bodies, files) cannot encode.
    bad = json.loads('"disk \\ud800 full"')
    s = score(cond="surrogate", key=json.loads('"w\\udcff"'))  # a window key taken from a log field
    s.title = bad
    s.evidence = Evidence([TemplateEvidence(1, bad, 3.0, 1.0)], [bad], {bad: bad})
    clock = ManualClock()
    router, out_path = make(tmp_path, clock)
    (created,) = router.submit([s], tag="app")
    router.start()
    waiter(lambda: router.stats()["sent"] == 1, what="the alert to reach the file")
    router.close(2.0)
    (doc,) = [json.loads(line) for line in out_path.read_text(encoding="utf-8").splitlines()]
    assert doc["title"] == "disk \ufffd full" and doc["evidence"]["templates"][0]["template"] == "disk \ufffd full"
    assert doc["evidence"]["samples"] == ["disk \ufffd full"] and doc["id"] == created.id
    assert doc["labels"]["window"] == "w\ufffd"
