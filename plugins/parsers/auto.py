"""Guess the header per line: JSON object, logfmt pairs, or a "timestamp level component: message" prefix.

Detection is per line and cheap (a first-character test, then one prefix regex), so a file that mixes
shapes still parses. When nothing is recognised, the whole line is the message: guessing must never eat
words of the message itself, so a component is only taken after a recognised time or level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from agent.plugin import Header, PluginContext
from agent.schema import opt
from plugins.parsers.common import LEVEL_WORDS, normalize_level, parse_time
from plugins.parsers.json import JsonParser
from plugins.parsers.logfmt import LogfmtParser

_TS = (
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:\s?(?:Z|[+-]\d{2}:?\d{2}))?"
    r"|[A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}"
    r"|\d{6}\s+\d{6}"
)
_SYSLOG = re.compile(
    r"^(?P<time>[A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2})\s+(?P<host>[\w.-]+)\s+"
    r"(?P<component>[\w./-]+(?:\([^)\s]*\))?(?:\[\d+\])?):\s(?P<message>.*)$",
    re.DOTALL,
)
_PREFIX = re.compile(
    rf"^(?:\[?(?P<time>{_TS})\]?\s+)?"
    rf"(?:\[?(?P<level>{LEVEL_WORDS})\]?:?\s+)?"
    r"(?:(?P<component>[\w.$/-]+(?:\[[\w.-]+\])?):\s+)?"
    r"(?P<message>.*)$",
    re.DOTALL | re.IGNORECASE,
)
_LOGFMT_START = re.compile(r"\s*[A-Za-z_@][\w.@/-]*=")


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoConfig:
    detect_json: bool = opt(True, doc="Parse lines that start with '{' as JSON objects.")
    detect_logfmt: bool = opt(True, doc="Parse lines that start with key=value pairs as logfmt.")


class AutoParser:
    name: ClassVar[str] = "auto"
    config_class: ClassVar[type[AutoConfig]] = AutoConfig

    def __init__(self, config: AutoConfig | None = None, ctx: PluginContext | None = None) -> None:
        self.config = config or AutoConfig()
        self._json = JsonParser(None, ctx)
        self._logfmt = LogfmtParser(None, ctx)
        self._fields = ctx is None or ctx.keep_fields

    def parse(self, raw: str) -> Header | None:
        head = raw[:1]
        if head == "{" and self.config.detect_json:
            found = self._json.parse(raw)
            if found is not None:
                return found
        if self.config.detect_logfmt and _LOGFMT_START.match(raw):
            found = self._logfmt.parse(raw)
            if found is not None and found.message:
                return found
        m = _SYSLOG.match(raw)
        if m is not None:
            return Header(message=m.group("message"), time=parse_time(m.group("time")),
                          component=m.group("component"), fields={"host": m.group("host")} if self._fields else None)
        m = _PREFIX.match(raw)
        if m is None or (m.group("time") is None and m.group("level") is None):
            return Header(message=raw)
        return Header(message=m.group("message"), time=parse_time(m.group("time")),
                      level=normalize_level(m.group("level")), component=m.group("component"))
