from __future__ import annotations

from plugins.parsers.logfmt import LogfmtParser


def test_pairs_quoted_values_and_fields() -> None:
    h = LogfmtParser().parse('time=2024-01-02T03:04:05Z level=warn msg="disk \\"sda\\" full" path=/var n=3')
    assert h is not None
    assert (h.message, h.level, h.time) == ('disk "sda" full', "WARN", 1704164645.0)
    assert h.fields == {"path": "/var", "n": "3"}


def test_without_msg_the_remaining_pairs_are_the_message() -> None:
    h = LogfmtParser().parse("level=info user=bob action=login")
    assert h is not None and h.message == "user=bob action=login" and h.level == "INFO"
    assert LogfmtParser().parse("just words") is None
