from __future__ import annotations

from plugins.parsers.json import JsonConfig, JsonParser


def test_keys_are_configurable_and_the_rest_are_fields() -> None:
    p = JsonParser(JsonConfig(message_key="event", level_key="sev"))
    h = p.parse('{"event": "disk full", "sev": "warning", "ts": 1700000000.5, "logger": "disk", "n": 3, "ok": true}')
    assert h is not None
    assert (h.message, h.level, h.time, h.component) == ("disk full", "WARN", 1700000000.5, "disk")
    assert h.fields == {"n": "3", "ok": "true"}


def test_not_json_or_no_message_is_none() -> None:
    p = JsonParser()
    assert p.parse("plain text") is None
    assert p.parse("{broken") is None
    assert p.parse("[1, 2]") is None
    assert p.parse('{"other": 1}') is None
    assert p.parse('{"msg": "hi", "time": "2024-01-02T03:04:05+01:00"}').time == 1704161045.0  # type: ignore[union-attr]


def test_non_finite_or_huge_numeric_times_are_dropped_not_kept() -> None:
    parser = JsonParser()
    for text in ('{"msg": "a", "time": NaN}', '{"msg": "a", "time": Infinity}', '{"msg": "a", "time": -Infinity}',
                 '{"msg": "a", "time": ' + "9" * 400 + "}"):
        header = parser.parse(text)
        assert header is not None and header.message == "a" and header.time is None, text
    header = parser.parse('{"msg": "a", "time": 1800000000.25}')
    assert header is not None and header.time == 1_800_000_000.25
