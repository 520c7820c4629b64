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
    so the parser tries it first and keeps the exact one for headers whose fields contain spaces. A word
    field followed by whitespace (or by the end) is greedy: its only solution is the whole run of
    non-space characters either way, and the greedy form does not try every shorter prefix first (2.1 →
    0.8 µs per line on a five-field header)."""
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
        after = fmt[m.end():m.end() + 1]
        field = (r"\S+" if after in ("", " ", "\t") else r"\S+?") if words else ".*?"
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
        # Both regexes number their groups the same way (one group per field, in format order).
        names = list(self._regex.groupindex)
        at = {n: i for i, n in enumerate(names)}
        self._time_at = [at[n] for n in names if n in _TIME_FIELDS]
        self._extra_at = [(n, at[n]) for n in names if n not in _TIME_FIELDS and n not in ("Content", "Level", "Component")]
        self._content_at = at["Content"]
        self._level_at = at.get("Level", -1)
        self._component_at = at.get("Component", -1)

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
        # One groups() call and positional picks: m.group(name) costs a name lookup per field.
        g = m.groups()
        times = self._time_at
        if not times:
            when = None
        elif len(times) == 1:
            when = parse_time(g[times[0]])
        else:
            when = parse_time(" ".join(g[i] for i in times))
        extra = self._extra_at
        if not extra:
            fields = None
        elif len(extra) == 1:
            fields = {extra[0][0]: g[extra[0][1]]}
        else:
            fields = {name: g[i] for name, i in extra}
        return Header(
            g[self._content_at],
            when,
            normalize_level(g[self._level_at]) if self._level_at >= 0 else None,
            (g[self._component_at] or None) if self._component_at >= 0 else None,
            fields,
        )
