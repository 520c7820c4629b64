from __future__ import annotations

import pytest

from plugins.parsers.regex import RegexConfig, RegexParser


def test_named_groups_map_to_header_fields() -> None:
    p = RegexParser(RegexConfig(pattern=r"(?P<time>\S+) \[(?P<level>\w+)\] (?P<host>\S+) (?P<message>.*)"))
    h = p.parse("2024-01-02T03:04:05Z [err] web1 upstream timed out")
    assert h is not None
    assert (h.message, h.level, h.fields) == ("upstream timed out", "ERROR", {"host": "web1"})
    assert h.time == 1704164645.0
    assert p.parse("") is None


@pytest.mark.parametrize(("pattern", "why"), [("(?P<message>.*", "compile"), (r"(?P<text>.*)", "message")])
def test_bad_patterns_are_refused(pattern: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        RegexConfig(pattern=pattern)
