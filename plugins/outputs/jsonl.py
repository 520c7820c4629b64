"""JSON Lines rendering shared by the file and stdout outputs: one object per record or per alert.

Records keep the fields a downstream consumer needs to re-join them with the source (tag, source, offset)
and what the parser learned (template and parameters). Alerts use the versioned alert schema of
`agent.alerting.payload`, so a JSONL consumer and a webhook consumer read the same documents.

A `stream: records` output renders every line the daemon reads, so `records_to_jsonl` is on the hot path:
it writes the fixed record schema with one format string per record and the C string escaper of the json
module, instead of building a dict per record for `json.dumps` (which also builds a new encoder per call
for non-default separators). Strings that repeat from record to record (tag, source, level, component,
template, field names) are escaped once and looked up afterwards. The output is byte-for-byte what
`json.dumps(record_to_dict(r), ensure_ascii=False, separators=(",", ":"))` gives; a record that does not
fit the fast path (a value of an unexpected type) takes that slow path instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any

from agent.alerting.payload import alert_to_dict
from agent.types import Alert, Record

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_RECORD = (
    '{"tag":%s,"source":%s,"offset":%d,"time":%s,"level":%s,"component":%s,"message":%s,"template_id":%d,'
    '"template":%s,"params":[%s],"raw":%s%s}\n'
)
_QUOTED_MAX = 4096
"""Escaped repeating strings kept at most; the cache is emptied when full (a template-minting storm)."""
_quoted: dict[str | None, str] = {None: "null"}


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
    return _ENCODER.encode(doc)


def _quote(value: str | None) -> str:
    """JSON text of a string that repeats across records (or null)."""
    text = _quoted.get(value)
    if text is None:
        if len(_quoted) >= _QUOTED_MAX:
            _quoted.clear()
            _quoted[None] = "null"
        text = _quoted[value] = encode_basestring(value) if value is not None else "null"
    return text


def _record_line(r: Record, s: Any = encode_basestring) -> str:
    t = r.time if r.time is not None else r.read_time
    # repr is what json writes for a finite float (and an int); NaN/inf take json's own spelling.
    time_text = repr(t) if t - t == 0 and type(t) in (float, int) else _ENCODER.encode(t)
    g = _quoted.get  # the cache hit inline: five of these per record
    fields = r.fields
    tail = (',"fields":{' + ",".join([(g(k) or _quote(k)) + ":" + s(v) for k, v in fields.items()]) + "}"
            if fields else "")
    return _RECORD % (
        g(r.tag) or _quote(r.tag), g(r.source) or _quote(r.source), r.offset, time_text,
        g(r.level) or _quote(r.level), g(r.component) or _quote(r.component), s(r.message), r.template_id,
        g(r.template) or _quote(r.template), ",".join(map(s, r.params)), s(r.raw), tail,
    )


def records_to_jsonl(records: Sequence[Record]) -> str:
    out: list[str] = []
    for r in records:
        try:
            line = _record_line(r)
        except TypeError:  # a value of an unexpected type: the generic encoder says what it can
            line = _dumps(record_to_dict(r)) + "\n"
        out.append(line)
    return "".join(out)


def alerts_to_jsonl(alerts: Sequence[Alert]) -> str:
    return "".join(_dumps(alert_to_dict(a)) + "\n" for a in alerts)
