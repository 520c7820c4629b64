"""JSON lines: one object per line; configurable keys for the message, level, time and component.

Every other top-level key lands in `fields` as text. A line that is not a JSON object, or has no message
key, is not this format (None), so the parse stage keeps the raw line as the message and counts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from agent.plugin import Header, PluginContext
from agent.schema import opt
from plugins.parsers.common import epoch_number, normalize_level, parse_time, scalar_text


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonConfig:
    message_key: str = opt("message", doc="Key of the log message; msg and log are tried when it is missing.")
    level_key: str = opt("level", doc="Key of the level; severity and lvl are tried when it is missing.")
    time_key: str = opt("time", doc="Key of the timestamp; ts, timestamp and @timestamp are tried when it is missing.")
    component_key: str = opt("logger", doc="Key of the component (logger name).")


class JsonParser:
    name: ClassVar[str] = "json"
    config_class: ClassVar[type[JsonConfig]] = JsonConfig

    def __init__(self, config: JsonConfig | None = None, ctx: PluginContext | None = None) -> None:
        self.config = config = config or JsonConfig()
        self._message = (config.message_key, "msg", "message", "log")
        self._level = (config.level_key, "severity", "lvl", "level")
        self._time = (config.time_key, "ts", "timestamp", "@timestamp", "time")
        self._component = (config.component_key, "component", "logger")
        self._fields = ctx is None or ctx.keep_fields

    def parse(self, raw: str) -> Header | None:
        text = raw.strip()
        if not text.startswith("{"):
            return None
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(doc, dict):
            return None
        msg_key = _first(doc, self._message)
        if msg_key is None:
            return None
        used = {msg_key}
        header = Header(message=scalar_text(doc[msg_key]))
        key = _first(doc, self._level)
        if key is not None:
            used.add(key)
            header.level = normalize_level(scalar_text(doc[key]))
        key = _first(doc, self._time)
        if key is not None:
            used.add(key)
            value = doc[key]
            header.time = epoch_number(value) if isinstance(value, int | float) and not isinstance(value, bool) else parse_time(
                scalar_text(value)
            )
        key = _first(doc, self._component)
        if key is not None:
            used.add(key)
            header.component = scalar_text(doc[key]) or None
        if self._fields:
            fields = {k: scalar_text(v) for k, v in doc.items() if k not in used}
            header.fields = fields or None
        return header


def _first(doc: dict[str, object], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        if k in doc:
            return k
    return None
