"""logparser-style format strings: `<Date> <Time> <Level> <Component>: <Content>`.

The format is compiled once to one anchored regex with a named group per field (the way logparser's
`generate_logformat_regex` reads loghub files). `Content` is the message; Date/Time/Timestamp make the
time, Level the level, Component the component, and every other field lands in `fields`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from agent.plugin import Header, PluginContext
from agent.schema import opt
from agent.types import Record
from plugins.parsers.common import LEVEL_MEMO, SECOND_MEMO, TAIL_MEMO, normalize_level, parse_time

_FIELD = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")
_TIME_FIELDS = ("Date", "Day", "Time", "Timestamp", "Datetime")
_BARE_WORDS = re.compile(r"(?:<[A-Za-z_][A-Za-z0-9_]*> +)+<Content>")


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


_COMPONENTS = 4096


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
        keep = ctx is None or ctx.keep_fields  # when no stage reads them, the other fields are not kept
        self._extra_at = [(n, at[n]) for n in names if keep and n not in _TIME_FIELDS and n not in ("Content", "Level", "Component")]
        self._content_at = at["Content"]
        self._level_at = at.get("Level", -1)
        self._component_at = at.get("Component", -1)
        self._components: dict[str, str] = {}
        # Bare fields separated by whitespace and ending in <Content> (`<Date> <Time> <Level> <Content>`):
        # str.split gives exactly the word regex's groups for a line that does not start with whitespace
        # (both split on runs of str.isspace characters), at a third of the regex's cost.
        self._split = len(names) - 1 if _BARE_WORDS.fullmatch(config.format) else 0

    def _component(self, name: str) -> str | None:
        """One string per component name: a record holds the shared one (less memory a batch, so more of it
        stays in cache) and the detectors that count by component hash it once, not once a line. The memo
        stops growing at `_COMPONENTS` names, for formats whose component is really a variable."""
        if not name:
            return None
        if len(self._components) < _COMPONENTS:
            self._components[name] = name
        return name

    @staticmethod
    def preflight(config: FormatConfig) -> list[tuple[str, str]]:
        try:
            compile_format(config.format)
        except ValueError as exc:
            return [("format", str(exc))]
        return []

    def parse(self, raw: str) -> Header | None:
        rec = Record("", "", raw)
        if self.fill([rec]):
            return None
        return Header(rec.message, rec.time, rec.level, rec.component, rec.fields)

    def fill(self, records: list[Record]) -> int:
        """The one implementation of this parser; `parse` is a batch of one. Positional picks out of one
        groups() call, because m.group(name) costs a name lookup per field.

        The memo hits of `normalize_level` and `parse_time` are inlined (same memos, same arithmetic, so
        the same values), and the second of the previous line is kept: a call per field cost more than
        everything else on the line."""
        words, exact = self._words.match, self._regex.match
        content, level_at, component_at = self._content_at, self._level_at, self._component_at
        times = self._time_at
        one_time = times[0] if len(times) == 1 else -1
        extra = self._extra_at
        one_extra = extra[0] if len(extra) == 1 else None
        split = self._split
        known_component, new_component = self._components.get, self._component
        known_level, known_tail, known_second = LEVEL_MEMO.get, TAIL_MEMO.get, SECOND_MEMO.get
        last_prefix, last_second = "\0", (0.0, 0.0)
        unparsed = 0
        for rec in records:
            raw = rec.raw
            g: Sequence[str] | None = raw.split(None, split) if split else None
            if g is None or len(g) <= split or not raw.startswith(g[0]):  # short, or leading whitespace
                m = words(raw) or exact(raw)
                if m is None:
                    rec.message = raw
                    rec.time = rec.level = rec.component = rec.fields = None
                    unparsed += 1
                    continue
                g = m.groups()
            rec.message = g[content]
            if one_time >= 0:
                text = g[one_time]
                tail = known_tail(text[19:]) if text.startswith(last_prefix) else None
                if tail is not None:
                    fraction, offset = tail
                    rec.time = (last_second[1] if offset is None else last_second[0] - offset) + fraction
                else:
                    rec.time = parse_time(text)
                    second = known_second(text[:19])  # remembered by that call when it is a valid ISO second
                    if second is not None:
                        last_prefix, last_second = text[:19], second
            else:
                rec.time = parse_time(" ".join(g[i] for i in times)) if times else None
            if level_at >= 0:
                level = known_level(g[level_at], "")
                rec.level = level if level != "" else normalize_level(g[level_at])
            else:
                rec.level = None
            if component_at >= 0:
                name = g[component_at]
                rec.component = known_component(name) or new_component(name)
            else:
                rec.component = None
            if one_extra is not None:
                rec.fields = {one_extra[0]: g[one_extra[1]]}
            else:
                rec.fields = {name: g[i] for name, i in extra} if extra else None
        return unparsed
