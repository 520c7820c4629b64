"""logfmt (`time=... level=info msg="disk full" path=/var`): configurable keys, the rest into `fields`.

A line without at least two `key=value` pairs is not logfmt (None). When there is no message key, the
message is the line with the time and level pairs removed, so Drain still mines the remaining pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from agent.plugin import Header, PluginContext
from agent.schema import opt
from plugins.parsers.common import normalize_level, parse_time

_PAIR = re.compile(r'([A-Za-z_@][\w.@/-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
_UNESCAPE = re.compile(r"\\(.)")


def pairs(text: str) -> list[tuple[str, str, int, int]]:
    """(key, value, start, end) of every pair; quoted values are unquoted and unescaped."""
    out = []
    for m in _PAIR.finditer(text):
        value = m.group(2)
        if value.startswith('"'):
            value = _UNESCAPE.sub(lambda e: {"n": "\n", "t": "\t"}.get(e.group(1), e.group(1)), value[1:-1])
        out.append((m.group(1), value, m.start(), m.end()))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class LogfmtConfig:
    message_key: str = opt("msg", doc="Key of the log message; message is tried when it is missing.")
    level_key: str = opt("level", doc="Key of the level; lvl and severity are tried when it is missing.")
    time_key: str = opt("time", doc="Key of the timestamp; ts and timestamp are tried when it is missing.")
    component_key: str = opt("component", doc="Key of the component; logger and caller are tried when it is missing.")


class LogfmtParser:
    name: ClassVar[str] = "logfmt"
    config_class: ClassVar[type[LogfmtConfig]] = LogfmtConfig

    def __init__(self, config: LogfmtConfig | None = None, ctx: PluginContext | None = None) -> None:
        self.config = config = config or LogfmtConfig()
        self._message = (config.message_key, "msg", "message")
        self._level = (config.level_key, "level", "lvl", "severity")
        self._time = (config.time_key, "time", "ts", "timestamp")
        self._component = (config.component_key, "component", "logger", "caller")
        self._fields = ctx is None or ctx.keep_fields

    def parse(self, raw: str) -> Header | None:
        found = pairs(raw)
        if len(found) < 2:
            return None
        doc = {k: v for k, v, _s, _e in found}
        header = Header(message="")
        used: set[str] = set()
        for role, keys in (("time", self._time), ("level", self._level), ("component", self._component)):
            key = next((k for k in keys if k in doc), None)
            if key is None:
                continue
            used.add(key)
            if role == "time":
                header.time = parse_time(doc[key])
            elif role == "level":
                header.level = normalize_level(doc[key])
            else:
                header.component = doc[key] or None
        msg_key = next((k for k in self._message if k in doc), None)
        if msg_key is not None:
            used.add(msg_key)
            header.message = doc[msg_key]
        else:
            header.message = " ".join(raw[s:e] for k, _v, s, e in found if k not in used)
        if self._fields:
            fields = {k: v for k, v in doc.items() if k not in used}
            header.fields = fields or None
        return header
