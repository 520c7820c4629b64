"""JSON Lines rendering shared by the file and stdout outputs: one object per record or per alert.

Records keep the fields a downstream consumer needs to re-join them with the source (tag, source, offset)
and what the parser learned (template and parameters). Alerts use the versioned alert schema of
`agent.alerting.payload`, so a JSONL consumer and a webhook consumer read the same documents.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent.alerting.payload import alert_to_dict
from agent.types import Alert, Record


def record_to_dict(record: Record) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "tag": record.tag,
        "source": record.source,
        "offset": record.offset,
        "time": record.event_time,
        "level": record.level,
        "component": record.component,
        "message": record.message,
        "template_id": record.template_id,
        "template": record.template,
        "params": list(record.params),
        "raw": record.raw,
    }
    if record.fields:
        doc["fields"] = dict(record.fields)
    return doc


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def records_to_jsonl(records: Sequence[Record]) -> str:
    return "".join(_dumps(record_to_dict(r)) + "\n" for r in records)


def alerts_to_jsonl(alerts: Sequence[Alert]) -> str:
    return "".join(_dumps(alert_to_dict(a)) + "\n" for a in alerts)
