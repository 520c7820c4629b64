"""Every parser leaves `fields` out when told no stage reads them (`PluginContext.keep_fields`), and parses
the rest of the header exactly as it does with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.plugin import PluginContext
from plugins.parsers.auto import AutoParser
from plugins.parsers.json import JsonParser
from plugins.parsers.logfmt import LogfmtParser
from plugins.parsers.loghub_format import FormatConfig, FormatParser
from plugins.parsers.regex import RegexConfig, RegexParser

CASES: list[tuple[str, Any, str, dict[str, str]]] = [
    ("format", lambda ctx: FormatParser(FormatConfig(format="<Date> <Level> <Component> <Request> <Content>"), ctx),
     "2026-11-28T12:00:00Z WARN api req=7 took 5ms", {"Request": "req=7"}),
    ("json", lambda ctx: JsonParser(None, ctx), '{"time":"2026-11-28T12:00:00Z","level":"warn","msg":"took 5ms","pod":"a"}',
     {"pod": "a"}),
    ("logfmt", lambda ctx: LogfmtParser(None, ctx), "time=2026-11-28T12:00:00Z level=warn msg=\"took 5ms\" pod=a",
     {"pod": "a"}),
    ("regex", lambda ctx: RegexParser(RegexConfig(pattern=r"(?P<time>\S+) (?P<level>\w+) (?P<pod>\w+) (?P<message>.*)"), ctx),
     "2026-11-28T12:00:00Z WARN a took 5ms", {"pod": "a"}),
    ("auto", lambda ctx: AutoParser(None, ctx), "Nov 28 12:00:00 web-1 sshd[41]: took 5ms", {"host": "web-1"}),
]


@pytest.mark.parametrize(("name", "make", "line", "fields"), CASES, ids=[c[0] for c in CASES])
def test_fields_are_left_out_when_no_stage_reads_them(
    tmp_path: Path, name: str, make: Any, line: str, fields: dict[str, str]
) -> None:
    ctx = PluginContext(instance=f"parser.{name}.0", state_dir=tmp_path, host="h")
    kept, left = make(ctx).parse(line), make(PluginContext(instance=f"parser.{name}.0", state_dir=tmp_path, host="h",
                                                           keep_fields=False)).parse(line)
    assert kept is not None and left is not None
    assert kept.fields == fields and left.fields is None
    assert (left.message, left.time, left.level, left.component) == (kept.message, kept.time, kept.level, kept.component)
    assert kept.message == "took 5ms" and kept.time is not None
