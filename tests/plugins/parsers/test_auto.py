from __future__ import annotations

import pytest

from plugins.parsers.auto import AutoParser
from plugins.parsers.none import NoneParser


@pytest.mark.parametrize(
    ("line", "message", "level", "component", "has_time"),
    [
        ('{"msg": "hi", "level": "error"}', "hi", "ERROR", None, False),
        ("ts=2024-01-02T03:04:05Z level=debug msg=hello", "hello", "DEBUG", None, True),
        ("2015-10-18 18:01:47,978 INFO [main] created app", "[main] created app", "INFO", None, True),
        ("2024-01-02T03:04:05.5Z WARN db.Pool: pool exhausted", "pool exhausted", "WARN", "db.Pool", True),
        ("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass", "check pass", None, "sshd(pam_unix)[19939]", True),
        ("Failed: something went wrong", "Failed: something went wrong", None, None, False),
        ("plain message", "plain message", None, None, False),
    ],
)
def test_detects_the_header_shape(line: str, message: str, level: str | None, component: str | None,
                                  has_time: bool) -> None:
    h = AutoParser().parse(line)
    assert h is not None
    assert (h.message, h.level, h.component, h.time is not None) == (message, level, component, has_time)


def test_none_parser_keeps_the_line() -> None:
    assert NoneParser().parse(" x ").message == " x "  # type: ignore[union-attr]
