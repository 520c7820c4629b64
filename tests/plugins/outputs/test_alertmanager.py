"""The Alertmanager output against the real Alertmanager binary started on a loopback port."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.alerting.config import AlertsConfig, RetryConfig
from agent.alerting.payload import parse_rfc3339
from agent.alerting.router import AlertRouter
from agent.clock import ManualClock
from agent.plugin import PluginContext, Rejected, Sent
from agent.schema import Duration
from agent.types import Alert, AlertStatus, Evidence, Score, Severity, TemplateEvidence
from plugins.outputs.alertmanager import AlertmanagerConfig, AlertmanagerOutput, postable


def alert(i: int, status: AlertStatus = AlertStatus.FIRING) -> Alert:
    return Alert(
        fingerprint=f"fp{i}", status=status, severity=Severity.CRITICAL, title=f"LogBurst{i}",
        summary="error burst in app", evidence=Evidence([TemplateEvidence(1, "disk <*> full", 40, 1)], ["disk /a full"]),
        host="web-1", source="/var/log/app.log", detector="volume", score=9.0, threshold=3.0,
        first_seen=time.time() - 30, last_seen=time.time(), count=3, id=f"fp{i}-1",
    )


def labels_of(am_alerts: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [a["labels"] for a in am_alerts]


def routed_to(alertmanager: Any, tmp_path: Path) -> tuple[ManualClock, AlertRouter]:
    """A started router whose one output is the Alertmanager, on a manual clock that starts now."""
    clock = ManualClock(start=time.time())
    ctx = PluginContext(instance="output.alertmanager.0", state_dir=tmp_path, host="web-1", clock=clock)
    out = AlertmanagerOutput(AlertmanagerConfig(url=alertmanager.url, resend_interval=Duration(60)), ctx)
    config = AlertsConfig(resolve_after=Duration(300), retry=RetryConfig(base=Duration(0.01), cap=Duration(0.1)))
    router = AlertRouter(config, [("output.alertmanager.0", "*", out)], tmp_path / "spool.db", "web-1", clock)
    router.start()
    return clock, router


def test_postable_alert_shape() -> None:
    now = 1_700_000_000.0
    a = alert(1)
    a.first_seen, a.last_seen = now - 10, now
    doc = postable(a, now, 60.0, "http://h:2020/api/v1/alerts?fp={fingerprint}", {"team": "ops"})
    assert doc["labels"] == {"team": "ops", "alertname": "LogBurst1", "severity": "critical", "host": "web-1",
                             "source": "/var/log/app.log", "detector": "volume", "fingerprint": "fp1"}
    assert set(doc["annotations"]) == {"summary", "description", "evidence"}
    assert parse_rfc3339(doc["endsAt"]) == now + 240 and doc["generatorURL"].endswith("fp=fp1")
    a.status = AlertStatus.RESOLVED
    assert parse_rfc3339(postable(a, now, 60.0, "", {})["endsAt"]) == now


def test_alerts_appear_in_alertmanager_and_reach_its_webhook_receiver(
    tmp_path: Path, alertmanager: Any, waiter: Callable[..., None]
) -> None:
    ctx = PluginContext(instance="output.alertmanager.0", state_dir=tmp_path, host="web-1")
    out = AlertmanagerOutput(AlertmanagerConfig(url=alertmanager.url, generator_url="http://web-1:2020/"), ctx)
    assert isinstance(out.deliver([alert(1), alert(2)]), Sent)
    am = alertmanager.alerts()
    got = {a["labels"]["alertname"]: a for a in am}
    assert set(got) == {"LogBurst1", "LogBurst2"}
    one = got["LogBurst1"]
    assert {k: one["labels"][k] for k in ("severity", "host", "source", "detector")} == {
        "severity": "critical", "host": "web-1", "source": "/var/log/app.log", "detector": "volume"}
    assert "disk <*> full" in one["annotations"]["evidence"] and one["generatorURL"] == "http://web-1:2020/"
    rx = alertmanager.receiver
    waiter(lambda: {a["labels"]["alertname"] for b in rx.bodies() for a in b["alerts"]} == {"LogBurst1", "LogBurst2"},
           timeout=15, what="Alertmanager to forward both alerts to its webhook receiver")
    assert all(b["status"] == "firing" for b in rx.bodies())
    # Resolution: endsAt = now makes Alertmanager resolve it and notify the receiver.
    assert isinstance(out.deliver([alert(1, AlertStatus.RESOLVED)]), Sent)
    waiter(lambda: any(a["status"] == "resolved" and a["labels"]["alertname"] == "LogBurst1"
                       for b in rx.bodies() for a in b["alerts"]), timeout=15, what="a resolved notification")
    out.stop()


def test_router_resends_firing_alerts_and_resolves_them(
    tmp_path: Path, alertmanager: Any, waiter: Callable[..., None]
) -> None:
    clock, router = routed_to(alertmanager, tmp_path)
    s = Score(detector="novelty", stream="app", key="w", start=clock.time() - 5, end=clock.time(), score=1.0,
              threshold=0.5, is_anomaly=True, title="NewTemplate", summary="unseen template", source="/var/log/a.log",
              severity=Severity.WARNING)
    router.submit([s], tag="app")
    waiter(lambda: router.stats()["sent"] == 1, what="the first post")
    assert labels_of(alertmanager.alerts())[0]["alertname"] == "NewTemplate"
    clock.advance(61)
    router.tick(clock.time())
    waiter(lambda: router.stats()["sent"] == 2, what="the re-send a minute later")
    assert router.stats()["resends"] == 1
    (firing,) = alertmanager.alerts()
    assert abs(parse_rfc3339(firing["endsAt"]) - (clock.time() + 240)) < 1  # extended by the re-send
    clock.advance(300)
    router.tick(clock.time())
    waiter(lambda: router.stats()["sent"] == 3, what="the resolution")
    # The manual clock runs ahead of Alertmanager's, so check the end it was told rather than waiting for it.
    (ended,) = alertmanager.alerts()
    assert abs(parse_rfc3339(ended["endsAt"]) - clock.time()) < 1
    router.close(2.0)


def test_a_bad_payload_is_rejected_by_the_real_alertmanager(tmp_path: Path, alertmanager: Any) -> None:
    ctx = PluginContext(instance="output.alertmanager.0", state_dir=tmp_path, host="web-1")
    out = AlertmanagerOutput(AlertmanagerConfig(url=alertmanager.url), ctx)
    result = out.client.post(out.endpoint, b'[{"labels": {}}]', {"Content-Type": "application/json"})
    assert isinstance(result, Rejected) and "HTTP 400" in result.reason


def test_an_escalation_resolves_the_lower_alert_instead_of_leaving_it_firing(
    tmp_path: Path, alertmanager: Any, waiter: Callable[..., None]
) -> None:
    """Severity and title are labels: to Alertmanager the escalated alert is a new one. The old one kept
    firing beside it until its endsAt (4 resend intervals), then reported itself resolved mid-incident."""
    clock, router = routed_to(alertmanager, tmp_path)

    def shift(share: float, severity: Severity) -> Score:
        return Score(detector="params", stream="app", key="w", start=clock.time() - 30, end=clock.time(),
                     score=share, threshold=0.05, is_anomaly=True, title=f"status: 503 share 0.4% → {share:.0%}",
                     summary="503 share shifted", source="/var/log/a.log", condition="params:8:status",
                     severity=severity)

    router.submit([shift(0.08, Severity.WARNING)], tag="app")
    waiter(lambda: router.stats()["sent"] == 1, what="the warning")
    router.submit([shift(0.4, Severity.CRITICAL)], tag="app")
    waiter(lambda: router.stats()["sent"] == 2, what="the escalation")
    waiter(lambda: [a["labels"]["severity"] for a in alertmanager.alerts()] == ["critical"], timeout=15,
           what="Alertmanager to hold the critical alert only")
    rx = alertmanager.receiver
    waiter(lambda: any(a["status"] == "resolved" and a["labels"]["severity"] == "warning"
                       for b in rx.bodies() for a in b["alerts"]), timeout=15, what="the warning resolved at once")
    router.close(2.0)
