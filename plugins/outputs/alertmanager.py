"""Alertmanager output: `POST /api/v2/alerts` with a list of postable alerts (API v2; v1 is gone since 0.27).

Alertmanager identifies an alert by its label set, so labels hold only what names the condition
(alertname, severity, host, source, detector, fingerprint, plus configured static labels); everything that
changes per occurrence goes into annotations (summary, description, evidence), where the latest wins.

Alertmanager resolves an alert by itself once `endsAt` passes, so a firing alert is sent with
`endsAt = now + 4 * resend_interval` and re-sent every `resend_interval` while open (the router's tick
drives the re-sends): if logwarden dies, its alerts resolve a few minutes later instead of firing forever,
the same bargain Prometheus makes. A resolution is sent with `endsAt = now`.

An escalation changes the labels (severity, and the title that is the alertname), which to Alertmanager is a
new alert: the old label set is resolved in the same request, so it does not keep firing beside the new
one until its `endsAt` and then report "resolved" minutes into the incident. The last labels sent per
fingerprint are remembered in memory (bounded); after a restart the old set just expires.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from agent.alerting.payload import rfc3339
from agent.plugin import Delivery, PluginContext, Sent
from agent.schema import Duration, opt
from agent.types import Alert, AlertStatus, Record
from plugins.outputs.http_common import HttpClient, HttpClientConfig, check_url

MAX_ANNOTATION = 8000
MAX_REMEMBERED = 10_000
"""Open alerts whose last labels are remembered; the oldest is forgotten beyond (it then merely expires)."""
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertmanagerConfig:
    url: str = opt(doc="Base URL of Alertmanager, e.g. http://127.0.0.1:9093; /api/v2/alerts is appended.")
    resend_interval: Duration = opt(
        Duration(60.0), doc="How often firing alerts are sent again; Alertmanager expects 30 seconds to 3 minutes."
    )
    generator_url: str = opt(
        "", doc="Link put on every alert (e.g. this host's /api/v1/alerts); `{fingerprint}` is replaced."
    )
    labels: dict[str, str] = opt({}, doc="Static labels added to every alert, e.g. {team: ops}.")
    http: HttpClientConfig = opt(HttpClientConfig(), doc="HTTP client settings: timeout, TLS, headers, proxy.")

    def __post_init__(self) -> None:
        if self.resend_interval.seconds < 1:
            raise ValueError("resend_interval must be at least 1s")
        for name in self.labels:
            if not _LABEL_NAME.match(name):
                raise ValueError(f"labels: {name!r} is not a valid Prometheus label name")


def _evidence_text(alert: Alert) -> str:
    ev = alert.evidence
    lines = [f"{t.observed:g}x (normally {t.expected:g}) {t.template}" for t in ev.templates]
    if ev.samples:
        lines += ["samples:", *ev.samples]
    if ev.params:
        lines.append("params: " + ", ".join(f"{k}={v}" for k, v in ev.params.items()))
    text = "\n".join(lines)
    return text if len(text) <= MAX_ANNOTATION else text[: MAX_ANNOTATION - 12] + "\n…truncated"


def postable(alert: Alert, now: float, resend_interval_s: float, generator_url: str,
             static_labels: dict[str, str]) -> dict[str, Any]:
    labels = {
        **static_labels,
        "alertname": alert.title[:200] or f"logwarden_{alert.detector}",
        "severity": alert.severity.value,
        "host": alert.host,
        "source": alert.source,
        "detector": alert.detector,
        "fingerprint": alert.fingerprint,
    }
    description = (
        f"{alert.detector} scored {alert.score:.4g} against threshold {alert.threshold:.4g}; "
        f"seen {alert.count} time(s) between {rfc3339(alert.first_seen)} and {rfc3339(alert.last_seen)}."
    )
    ends = now if alert.status is AlertStatus.RESOLVED else now + 4 * resend_interval_s
    doc: dict[str, Any] = {
        "labels": {k: v for k, v in labels.items() if v != ""},
        "annotations": {"summary": alert.summary[:MAX_ANNOTATION], "description": description,
                        "evidence": _evidence_text(alert)},
        "startsAt": rfc3339(min(alert.first_seen, now)),
        "endsAt": rfc3339(ends),
    }
    if generator_url:
        doc["generatorURL"] = generator_url.replace("{fingerprint}", quote(alert.fingerprint))
    return doc


class AlertmanagerOutput:
    name: ClassVar[str] = "alertmanager"
    config_class: ClassVar[type[AlertmanagerConfig]] = AlertmanagerConfig
    supports_resolve: ClassVar[bool] = True
    max_batch: ClassVar[int] = 64

    def __init__(self, config: AlertmanagerConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        self.resend_interval_s = config.resend_interval.seconds
        self.endpoint = config.url.rstrip("/") + "/api/v2/alerts"
        self.client = HttpClient(config.http)
        self._labels_sent: dict[str, dict[str, str]] = {}
        """Fingerprint → the labels its last firing post carried."""

    @staticmethod
    def preflight(config: AlertmanagerConfig) -> list[tuple[str, str]]:
        return check_url("url", config.url) + (check_url("generator_url", config.generator_url)
                                               if config.generator_url else [])

    def start(self) -> None:
        pass

    def deliver(self, alerts: Sequence[Alert]) -> Delivery:
        now = self.ctx.clock.time()
        body: list[dict[str, Any]] = []
        sent: dict[str, dict[str, str] | None] = {}
        for a in alerts:
            doc = postable(a, now, self.resend_interval_s, self.config.generator_url, self.config.labels)
            before = sent.get(a.fingerprint, self._labels_sent.get(a.fingerprint))
            if before is not None and before != doc["labels"]:
                body.append({"labels": before, "startsAt": doc["startsAt"], "endsAt": rfc3339(now)})
            firing = a.status is AlertStatus.FIRING
            sent[a.fingerprint] = doc["labels"] if firing else None
            body.append(doc)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        result = self.client.post(self.endpoint, data, {"Content-Type": "application/json"})
        if isinstance(result, Sent):
            for fp, labels in sent.items():
                self._labels_sent.pop(fp, None)
                if labels is not None:
                    self._labels_sent[fp] = labels
            while len(self._labels_sent) > MAX_REMEMBERED:
                del self._labels_sent[next(iter(self._labels_sent))]
        return result

    def write_records(self, records: Sequence[Record]) -> None:
        raise NotImplementedError("the alertmanager output takes `stream: alerts` only")

    def stop(self) -> None:
        self.client.close()
