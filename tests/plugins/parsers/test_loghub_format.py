from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.types import Record
from plugins.parsers.common import normalize_level, parse_time
from plugins.parsers.loghub_format import FormatConfig, FormatParser, compile_format


def test_fields_time_level_component_and_extras() -> None:
    p = FormatParser(FormatConfig(format="<Date> <Time> <Pid> <Level> <Component>: <Content>"))
    h = p.parse("081109 203615 148 info dfs.DataNode$PacketResponder: PacketResponder 1 terminating")
    assert h is not None
    assert h.message == "PacketResponder 1 terminating" and h.level == "INFO"
    assert h.component == "dfs.DataNode$PacketResponder" and h.fields == {"Pid": "148"}
    assert h.time == datetime(2008, 11, 9, 20, 36, 15).timestamp()
    assert p.parse("no header here") is None


def test_unparseable_time_is_none_not_an_error() -> None:
    p = FormatParser(FormatConfig(format="<Date> <Level>: <Content>"))
    h = p.parse("yesterday WARNING: disk full")
    assert h is not None and h.time is None and h.level == "WARN"


@pytest.mark.parametrize("fmt", ["<Date> <Level>", "<Content> <Content>"])
def test_preflight_and_config_refuse_bad_formats(fmt: str) -> None:
    with pytest.raises(ValueError):
        FormatConfig(format=fmt)
    ok = FormatConfig(format="<Level> <Content>")
    assert FormatParser.preflight(ok) == []


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=" \t\nab:[]-", max_size=40))
def test_the_word_regex_agrees_with_the_exact_one_wherever_it_matches(line: str) -> None:
    for fmt in ("<Date> <Level> <Component>: <Content>", "[<Time>] <Program> - <Content>", "<A>  [<B>:<C>] - <Content>"):
        exact, words = compile_format(fmt), compile_format(fmt, words=True)
        fast = words.match(line)
        if fast is not None:
            slow = exact.match(line)
            assert slow is not None and slow.groupdict() == fast.groupdict()


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2003\u200b\u3000ab:-", max_size=30))
def test_bare_word_formats_split_exactly_as_the_regexes_match(line: str) -> None:
    """`<A> <B> <Content>` formats take a str.split fast path; it must give what the regexes give."""
    for fmt in ("<Date> <Level> <Content>", "<Date> <Time> <Level> <Component> <Content>", "<Level> <Content>"):
        parser = FormatParser(FormatConfig(format=fmt))
        rec = Record("t", "s", line)
        unparsed = parser.fill([rec])
        m = compile_format(fmt, words=True).match(line) or compile_format(fmt).match(line)
        assert unparsed == (m is None)
        if m is not None:
            assert rec.message == m.group("Content")
            assert rec.level == normalize_level(m.group("Level"))
            if "Component" in fmt:
                assert rec.component == (m.group("Component") or None)


_LINE = st.one_of(
    st.text(alphabet=" \t\x85\u3000ab:-", max_size=24),
    st.builds(
        lambda sec, frac, zone, level, rest: f"2026-11-28T12:00:{sec:02d}{frac}{zone} {level} api req=1 {rest}",
        st.integers(0, 61), st.sampled_from(["", ".5", ".123", ",9", "."]),
        st.sampled_from(["Z", "+00:00", "+02:00", "-0130", "", "Zjunk"]),
        st.sampled_from(["INFO", "warning", "E", "weird", "[error]"]), st.text(alphabet=" ab=1", max_size=12),
    ),
)


@settings(max_examples=800, deadline=None)
@given(st.lists(_LINE, max_size=12), st.sampled_from([
    "<Date> <Level> <Component> <Request> <Content>", "<Date> <Level> <A> <B> <Content>", "<Date> <Level>: <Content>",
]))
def test_a_batch_fills_what_the_regexes_and_the_plain_helpers_give(lines: list[str], fmt: str) -> None:
    """The inlined memo hits (and the previous line's second) against parse_time/normalize_level per line."""
    parser = FormatParser(FormatConfig(format=fmt))
    batch = [Record("t", "s", line) for line in lines]
    unparsed = parser.fill(batch)
    exact, words = compile_format(fmt), compile_format(fmt, words=True)
    missed = 0
    for rec, line in zip(batch, lines, strict=True):
        m = words.match(line) or exact.match(line)
        if m is None:
            missed += 1
            assert rec.message == line and rec.time is None and rec.level is None
            continue
        fields = {k: v for k, v in m.groupdict().items() if k not in ("Date", "Level", "Component", "Content")}
        assert (rec.message, rec.time, rec.level, rec.fields) == (
            m.group("Content"), parse_time(m.group("Date")), normalize_level(m.group("Level")), fields or None)
    assert unparsed == missed


def test_records_share_one_string_per_component_and_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import plugins.parsers.loghub_format as mod

    p = FormatParser(FormatConfig(format="<Level> <Component> <Content>"))
    recs = [Record("t", "s", f"INFO api-gw request {i}") for i in range(3)]  # each split makes its own "api-gw"
    p.fill(recs)
    assert [r.component for r in recs] == ["api-gw"] * 3
    assert recs[0].component is recs[1].component is recs[2].component
    monkeypatch.setattr(mod, "_COMPONENTS", 2)
    q = FormatParser(FormatConfig(format="<Level> <Component> <Content>"))
    many = [Record("t", "s", f"INFO c{i} x") for i in range(5)] + [Record("t", "s", "INFO  x")]
    q.fill(many)
    assert [r.component for r in many] == ["c0", "c1", "c2", "c3", "c4", None]
    assert len(q._components) == 2
