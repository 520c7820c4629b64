"""The versioned alert JSON (schema_version 1) shared by the webhook, file and stdout outputs and the spool.

One function renders an `Alert` for every JSON sink so that a consumer written against the webhook reads
the JSONL file too. The schema only grows: a new field is added with `schema_version` unchanged; renaming or
removing a field, or changing its meaning, bumps the version. `alert_from_dict` is the inverse the spool
uses to rebuild a pending notification after a restart; it refuses versions it does not know.

Schema version 1 (every key always present):

    schema_version  int      1
    kind            str      "logwarden.alert"
    id              str      idempotency key of this notification; equal across retries and restarts
    fingerprint     str      stable hash of (detector, stream, condition or title, source)
    status          str      "firing" | "resolved"
    severity        str      "info" | "warning" | "critical"
    title           str      one line naming the condition
    summary         str      one sentence explaining it
    host, source, detector   str
    score, threshold         float (score >= threshold made it an anomaly)
    first_seen, last_seen    str  RFC 3339 UTC with milliseconds, e.g. "2024-05-01T12:00:00.000Z"
    count           int      occurrences folded into this alert within the cooldown
    labels          {str: str}  e.g. stream, window key, routing tag
    evidence        {"templates": [{"template_id": int, "template": str, "observed": float,
                                    "expected": float, "weight": float}],
                     "samples": [str], "params": {str: str}}
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from agent.types import Alert, AlertStatus, Evidence, Severity, TemplateEvidence

SCHEMA_VERSION = 1
KIND = "logwarden.alert"


def rfc3339(ts: float) -> str:
    """UTC with milliseconds and a `Z`, the form Alertmanager and most JSON consumers parse."""
    try:
        moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    except (OverflowError, OSError, ValueError):
        moment = dt.datetime.fromtimestamp(0, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def span_text(start: float, end: float) -> str:
    """A window's span for a sentence people read: `from 2024-05-01 12:00:00 to 12:01:00 UTC` (the end's
    date only when it differs), not the epoch seconds a summary once showed."""
    a, b = (rfc3339(t)[:19].replace("T", " ") for t in (start, end))
    return f"from {a} to {b[11:] if a[:10] == b[:10] else b} UTC"


def parse_rfc3339(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def evidence_to_dict(ev: Evidence) -> dict[str, Any]:
    return {
        "templates": [
            {
                "template_id": t.template_id,
                "template": t.template,
                "observed": t.observed,
                "expected": t.expected,
                "weight": t.weight,
            }
            for t in ev.templates
        ],
        "samples": list(ev.samples),
        "params": dict(ev.params),
    }


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "title": alert.title,
        "summary": alert.summary,
        "host": alert.host,
        "source": alert.source,
        "detector": alert.detector,
        "score": float(alert.score),
        "threshold": float(alert.threshold),
        "first_seen": rfc3339(alert.first_seen),
        "last_seen": rfc3339(alert.last_seen),
        "count": alert.count,
        "labels": dict(alert.labels),
        "evidence": evidence_to_dict(alert.evidence),
    }


def alert_to_json(alert: Alert) -> str:
    return json.dumps(alert_to_dict(alert), ensure_ascii=False, separators=(",", ":"))


def alert_from_dict(doc: dict[str, Any]) -> Alert:
    """Rebuild an alert written by `alert_to_dict`; ValueError names what is wrong with it."""
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"unsupported alert schema_version {doc.get('schema_version')!r}")
    try:
        ev = doc["evidence"]
        evidence = Evidence(
            templates=[
                TemplateEvidence(
                    int(t["template_id"]), str(t["template"]), float(t["observed"]), float(t["expected"]),
                    float(t.get("weight", 0.0)),
                )
                for t in ev["templates"]
            ],
            samples=[str(s) for s in ev["samples"]],
            params={str(k): str(v) for k, v in ev["params"].items()},
        )
        return Alert(
            fingerprint=str(doc["fingerprint"]),
            status=AlertStatus(doc["status"]),
            severity=Severity(doc["severity"]),
            title=str(doc["title"]),
            summary=str(doc["summary"]),
            evidence=evidence,
            host=str(doc["host"]),
            source=str(doc["source"]),
            detector=str(doc["detector"]),
            score=float(doc["score"]),
            threshold=float(doc["threshold"]),
            first_seen=parse_rfc3339(doc["first_seen"]),
            last_seen=parse_rfc3339(doc["last_seen"]),
            count=int(doc["count"]),
            labels={str(k): str(v) for k, v in doc["labels"].items()},
            id=str(doc["id"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed alert document: {exc!r}") from None


def alert_from_json(text: str) -> Alert:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"alert is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("alert is not a JSON object")
    return alert_from_dict(doc)
