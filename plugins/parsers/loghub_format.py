"""logparser-style format strings: `<Date> <Time> <Level> <Component>: <Content>`.

The format is compiled once to one anchored regex with a named group per field (the way logparser's
`generate_logformat_regex` reads loghub files). `Content` is the message; Date/Time/Timestamp make the
time, Level the level, Component the component, and every other field lands in `fields`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from agent.plugin import Header, PluginContext
from agent.schema import opt
from plugins.parsers.common import normalize_level, parse_time

_FIELD = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")
_TIME_FIELDS = ("Date", "Day", "Time", "Timestamp", "Datetime")


def compile_format(fmt: str, *, words: bool = False) -> re.Pattern[str]:
    """One regex for a format string; ValueError when it has no <Content> or cannot compile.

    With `words`, header fields are non-empty runs without whitespace: the engine never retries a field at
    every character of the line. Where that regex matches, it matches as the exact one does (fields are
    lazy and separators greedy, so the exact regex's first solution is the one without inner whitespace),
    so the parser tries it first and keeps the exact one for headers whose fields contain spaces."""
    names = _FIELD.findall(fmt)
    if "Content" not in names:
        raise ValueError("the format needs a <Content> field (the message Drain mines)")
    if len(set(names)) != len(names):
        raise ValueError("a field appears twice in the format")
    parts = []
    pos = 0
    for m in _FIELD.finditer(fmt):
        literal = fmt[pos:m.start()]
        parts.append(r"\s+".join(re.escape(p) for p in re.split(r"\s+", literal)))
        name = m.group(1)
        field = r"\S+?" if words else ".*?"
        parts.append(f"(?P<{name}>.*)" if name == "Content" else f"(?P<{name}>{field})")
        pos = m.end()
    tail = fmt[pos:]
    parts.append(r"\s+".join(re.escape(p) for p in re.split(r"\s+", tail)))
    try:
        return re.compile("^" + "".join(parts) + "$", re.DOTALL)
    except re.error as exc:
        raise ValueError(f"the format does not compile: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class FormatConfig:
    format: str = opt(
        doc="Header layout with <Field> placeholders; <Content> is the message, e.g. '<Date> <Time> <Level> <Component>: <Content>'."
    )

    def __post_init__(self) -> None:
        compile_format(self.format)


class FormatParser:
    name: ClassVar[str] = "format"
    config_class: ClassVar[type[FormatConfig]] = FormatConfig

    def __init__(self, config: FormatConfig, ctx: PluginContext | None = None) -> None:
        self.config = config
        self._regex = compile_format(config.format)
        self._words = compile_format(config.format, words=True)
        names = list(self._regex.groupindex)
        self._time_fields = [n for n in names if n in _TIME_FIELDS]
        self._extra = [n for n in names if n not in _TIME_FIELDS and n not in ("Content", "Level", "Component")]
        self._has_level = "Level" in names
        self._has_component = "Component" in names

    @staticmethod
    def preflight(config: FormatConfig) -> list[tuple[str, str]]:
        try:
            compile_format(config.format)
        except ValueError as exc:
            return [("format", str(exc))]
        return []

    def parse(self, raw: str) -> Header | None:
        m = self._words.match(raw) or self._regex.match(raw)
        if m is None:
            return None
        group = m.group
        times = self._time_fields
        if not times:
            when = None
        elif len(times) == 1:
            when = parse_time(group(times[0]))
        else:
            when = parse_time(" ".join(group(*times)))
        extra = self._extra
        fields = ({extra[0]: group(extra[0])} if len(extra) == 1 else dict(zip(extra, group(*extra), strict=True))
                  ) if extra else None
        return Header(
            group("Content"),
            when,
            normalize_level(group("Level")) if self._has_level else None,
            (group("Component") or None) if self._has_component else None,
            fields,
        )
