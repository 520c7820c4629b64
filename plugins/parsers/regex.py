"""A plain regex with named groups: `message` (or `Content`) is required; `time`, `level` and
`component` fill those fields; every other named group lands in `fields`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from agent.plugin import Header, PluginContext
from agent.schema import opt
from plugins.parsers.common import normalize_level, parse_time

_ROLES = {"message": "message", "content": "message", "time": "time", "timestamp": "time",
          "level": "level", "severity": "level", "component": "component", "logger": "component"}


def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        regex = re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise ValueError(f"the pattern does not compile: {exc}") from None
    if not any(_ROLES.get(n.lower()) == "message" for n in regex.groupindex):
        raise ValueError("the pattern needs a named group 'message' (or 'Content')")
    return regex


@dataclass(frozen=True, slots=True, kw_only=True)
class RegexConfig:
    pattern: str = opt(doc="Regular expression with named groups; it must have a group named message.")

    def __post_init__(self) -> None:
        compile_pattern(self.pattern)


class RegexParser:
    name: ClassVar[str] = "regex"
    config_class: ClassVar[type[RegexConfig]] = RegexConfig

    def __init__(self, config: RegexConfig, ctx: PluginContext | None = None) -> None:
        self.config = config
        self._regex = compile_pattern(config.pattern)
        self._roles = {n: _ROLES.get(n.lower(), "") for n in self._regex.groupindex}
        if ctx is not None and not ctx.keep_fields:  # other groups are matched, not kept
            self._roles = {n: role or "skip" for n, role in self._roles.items()}

    @staticmethod
    def preflight(config: RegexConfig) -> list[tuple[str, str]]:
        try:
            compile_pattern(config.pattern)
        except ValueError as exc:
            return [("pattern", str(exc))]
        return []

    def parse(self, raw: str) -> Header | None:
        m = self._regex.match(raw)
        if m is None:
            return None
        header = Header(message="")
        fields: dict[str, str] = {}
        for name, value in m.groupdict().items():
            role = self._roles[name]
            if role == "message":
                header.message = value or ""
            elif value is None:
                continue
            elif role == "time":
                header.time = parse_time(value)
            elif role == "level":
                header.level = normalize_level(value)
            elif role == "component":
                header.component = value or None
            elif role == "":
                fields[name] = value
        header.fields = fields or None
        return header
