from agent.drain import Drain, DrainConfig
from agent.parsing import ParseStage
from agent.types import Batch, Record, event_times, template_ids
from plugins.parsers.loghub_format import FormatConfig, FormatParser


def test_a_parsed_batch_carries_the_columns_its_records_hold() -> None:
    stage = ParseStage(FormatParser(FormatConfig(format="<Date> <Level> <Content>")), Drain(DrainConfig()))
    lines = ["2026-01-01T00:00:01Z INFO started 1", "no header at all", "2026-01-01T00:00:02Z WARN slow 200 ms"]
    records = [Record("t", "s", line, read_time=5.0) for line in lines]
    batch = stage.process(records)
    assert isinstance(batch, Batch) and list(batch) == records
    assert template_ids(batch) == [r.template_id for r in records] and min(template_ids(batch)) >= 1
    assert event_times(batch) == [r.event_time for r in records] == [1767225601.0, 5.0, 1767225602.0]
    plain = list(batch)  # the same helpers answer for a list without columns
    assert event_times(plain) == event_times(batch) and template_ids(plain) == template_ids(batch)


def test_deferred_params_are_cut_once_when_first_read_and_compare_by_value() -> None:
    calls: list[str] = []

    def cut(message: str) -> tuple[str, ...]:
        calls.append(message)
        return (message[5:8], message[-2:])

    rec = Record("t", "s", "raw", message="took 200 ms")
    rec._params = cut  # what the parse stage stores for a line Drain's key cache answered
    assert calls == []
    assert rec.params == ("200", "ms") and rec.params == ("200", "ms") and calls == ["took 200 ms"]
    assert rec == Record("t", "s", "raw", message="took 200 ms", params=("200", "ms"))
    assert rec != Record("t", "s", "raw", message="took 200 ms", params=("201", "ms"))
    rec.params = ("x",)
    assert rec.params == ("x",)
