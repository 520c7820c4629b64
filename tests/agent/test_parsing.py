"""The parse stage: header parser plugin + Drain, built from a config section, never raising on bad input."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agent.config import ParserSection
from agent.drain import Drain, DrainConfig
from agent.parsing import FUTURE_TOLERANCE_S, ParseStage
from agent.plugin import BatchParser, Header, Kind
from agent.registry import Registry
from agent.types import Record


def _section(name: str, drain: DrainConfig | None = None, **options: Any) -> ParserSection:
    plugin = Registry.default(entry_points=False).get(Kind.PARSER, name)
    return ParserSection(name, plugin.config_class(**options), drain or DrainConfig())


def _records(*lines: str) -> list[Record]:
    return [Record(tag="t", source="s", raw=line) for line in lines]


def test_format_parser_and_drain_fill_every_field() -> None:
    section = _section("format", DrainConfig(sim_th=0.5), format="<Date> <Time> <Level> <Component>: <Content>")
    stage = ParseStage.from_section(section, Registry.default(entry_points=False))
    out = stage.process(_records(
        "2024-01-02 03:04:05,120 WARNING disk.Monitor: usage 91% on /dev/sda1",
        "2024-01-02 03:04:06,000 WARN disk.Monitor: usage 93% on /dev/sdb1",
        "this line has no header",
    ))
    a, b, c = out
    assert a.level == "WARN" and a.component == "disk.Monitor" and a.time is not None
    assert b.time is not None and abs(b.time - a.time - 0.88) < 1e-6
    assert a.template_id == b.template_id and b.template == "usage <*>% on <*>" and b.params == ("93", "/dev/sdb1")
    assert c.message == c.raw and c.template_id not in (-1, a.template_id)
    st = stage.stats()
    assert st["records"] == 3 and st["unparsed"] == 1 and st["drain_lines"] == 3


def test_snapshot_is_restored_and_a_corrupt_one_is_set_aside(tmp_path: Path) -> None:
    section = _section("none")
    reg = Registry.default(entry_points=False)
    snap = tmp_path / "drain.json"
    first = ParseStage.from_section(section, reg, snap)
    ids = [r.template_id for r in first.process(_records("job 1 done", "job 2 done"))]
    first.save(snap)
    second = ParseStage.from_section(section, reg, snap)
    assert second.process(_records("job 3 done"))[0].template_id == ids[0]
    snap.write_text('{"kind": "drain", "format_version": 1, "clusters": "garbage"}')
    third = ParseStage.from_section(section, reg, snap)
    assert third.drain.stats()["clusters"] == 0
    kept = list(tmp_path.glob("drain.json.rejected-*"))
    assert len(kept) == 1 and "garbage" in kept[0].read_text()
    assert not snap.exists()


def test_bad_lines_never_raise() -> None:
    stage = ParseStage.from_section(_section("auto"), Registry.default(entry_points=False))
    lines = ["", "x" * 1_000_000, "\x00\x01binary\xff", "{not json", '{"msg": 5}', " ".join(["w"] * 10_000), "a=b"]
    out = stage.process(_records(*lines))
    assert all(r.template_id > 0 for r in out)
    assert isinstance(stage.drain, Drain)


def test_header_times_no_clock_should_follow_are_dropped_and_counted() -> None:
    """A time more than FUTURE_TOLERANCE_S ahead of the wall clock (year 9999, a broken clock) or not finite
    keeps its line and template but not its time; ordinary times, past ones included, are untouched."""
    stage = ParseStage.from_section(_section("auto"), Registry.default(entry_points=False))
    ahead = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + FUTURE_TOLERANCE_S + 3600))
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    lines = ["2026-11-28T12:00:00Z INFO job 1 done", "9999-12-31T23:59:59Z INFO job 2 done",
             f"{ahead} INFO job 3 done", f"{soon} INFO job 4 done", "1900-01-01T00:00:00Z INFO job 5 done",
             '{"time": 1e999, "level": "info", "msg": "job 6 done"}']
    out = stage.process(_records(*lines))
    assert [r.time is None for r in out] == [False, True, True, False, False, True]
    assert stage.stats()["bad_times"] == 2  # the JSON parser already refuses an infinite time
    assert len({r.template_id for r in out[:5]}) == 1  # the lines themselves are kept and mined as usual
    assert out.event_times() == [r.event_time for r in out]  # the batch's column says the same


class _Clocky:
    """A third-party parser that hands on whatever number a line says its time is."""

    name = "clocky"
    config_class = object

    def parse(self, raw: str) -> Header | None:
        stamp, _, message = raw.partition(" ")
        return Header(message, time=float(stamp))


def test_times_that_are_not_finite_are_dropped_whatever_parser_made_them() -> None:
    stage = ParseStage(_Clocky(), Drain(DrainConfig()))
    out = stage.process(_records("1700000000.5 job 1 done", "inf job 2 done", "nan job 3 done", "-inf job 4 done"))
    assert [r.time for r in out] == [1_700_000_000.5, None, None, None]
    assert stage.stats()["bad_times"] == 3


class _Fussy:
    """A third-party batch parser that fails on one kind of line, as a buggy plugin would."""

    name = "fussy"
    config_class = object

    def parse(self, raw: str) -> Header | None:
        if "boom" in raw:
            raise ValueError("cannot read this line")
        return Header(raw.partition(" ")[2], level=raw.partition(" ")[0])

    def fill(self, records: list[Record]) -> int:
        for rec in records:
            header = self.parse(rec.raw)
            assert header is not None
            rec.message, rec.level = header.message, header.level
        return 0


def test_a_batch_parser_that_fails_falls_back_line_by_line_and_counts_only_the_bad_line() -> None:
    stage = ParseStage(_Fussy(), Drain(DrainConfig()))
    out = stage.process(_records("INFO job 1 done", "WARN boom happened", "ERROR job 2 failed"))
    assert [r.level for r in out] == ["INFO", None, "ERROR"]
    assert [r.message for r in out] == ["job 1 done", "WARN boom happened", "job 2 failed"]
    st = stage.stats()
    assert st["parser_errors"] == 1 and st["unparsed"] == 1 and st["records"] == 3


def test_the_format_parser_fills_a_batch_as_it_parses_one_line() -> None:
    reg = Registry.default(entry_points=False)
    parser = reg.get(Kind.PARSER, "format")(
        reg.get(Kind.PARSER, "format").config_class(format="<Date> <Level> <Pid> <Component>: <Content>"), None)
    assert isinstance(parser, BatchParser)
    lines = ["2024-01-02T03:04:05.5Z warning 77 a.b: disk full", "no header here", "2024-01-02 03:04:05 E 1 x:  y z"]
    batch = _records(*lines)
    assert parser.fill(batch) == 1
    for line, rec in zip(lines, batch, strict=True):
        h = parser.parse(line)
        got = None if rec.message == line else (rec.message, rec.time, rec.level, rec.component, rec.fields)
        assert got == (None if h is None else (h.message, h.time, h.level, h.component, h.fields))
    assert batch[0].fields == {"Pid": "77"} and batch[0].level == "WARN" and batch[2].message == "y z"


def test_params_the_key_cache_answers_are_deferred_and_read_as_an_eager_tree_gives_them() -> None:
    """Lines that repeat a learned shape get their params cut only when read; read, they are what
    `Drain.add_many` (every param cut at once) gives for the same messages."""
    section = _section("format", format="<Date> <Level> <Content>")
    stage = ParseStage.from_section(section, Registry.default(entry_points=False))
    lines = [f"2026-11-28T12:00:{i % 60:02d}Z INFO GET /api/v1/orders/{1000 + i * 7} status={200 + i % 3} in {i % 9}ms"
             for i in range(300)] + ["2026-11-28T12:01:00Z WARN disk <*> full on sda1"]
    records = stage.process(_records(*lines))
    deferred = [r for r in records if not isinstance(r._params, tuple)]
    assert len(deferred) > 250  # the key cache answers nearly every repeat of the shape
    eager = Drain(DrainConfig()).add_many([r.message for r in records])
    assert [r.params for r in records] == [m.params for m in eager]
    assert all(isinstance(r._params, tuple) for r in records)  # each cut once, then kept
