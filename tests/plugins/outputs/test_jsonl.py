"""JSON Lines rendering of records: the fast path writes exactly what the json module would."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.types import Record
from plugins.outputs.jsonl import record_to_dict, records_to_jsonl


def _reference(records: list[Record]) -> str:
    return "".join(json.dumps(record_to_dict(r), ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
records = st.builds(
    Record,
    tag=text, source=text, raw=text, offset=st.integers(0, 2**40),
    read_time=st.floats(allow_nan=True, allow_infinity=True),
    time=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    level=st.none() | text, component=st.none() | text, message=text,
    fields=st.none() | st.dictionaries(text, text, max_size=3),
    template_id=st.integers(-1, 10**6), template=text, params=st.lists(text, max_size=4).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(records, max_size=5))
def test_fast_rendering_is_byte_identical_to_json_dumps(batch: list[Record]) -> None:
    assert records_to_jsonl(batch) == _reference(batch)


def test_escapes_quotes_controls_and_keeps_unicode() -> None:
    r = Record(tag="app", source="/var/log/a b.log", raw='say "hi"\\ \t\x01 ünï 🚀\nnext', time=1.5, level=None,
               message='say "hi"', template='say <*>', params=('"hi"',), fields={"k\"": "v\n"})
    line = records_to_jsonl([r])
    assert line.endswith("\n") and line.count("\n") == 1
    doc = json.loads(line)
    assert doc["raw"] == r.raw and doc["level"] is None and doc["fields"] == {"k\"": "v\n"}
    assert "ünï 🚀" in line  # not \u-escaped: the file stays readable


def test_odd_values_fall_back_to_the_generic_encoder() -> None:
    r = Record(tag="app", source="s", raw="x", time=math.inf, component=7)  # type: ignore[arg-type]
    assert json.loads(records_to_jsonl([r]).replace("Infinity", "1e999"))["component"] == 7
    assert records_to_jsonl([r]) == _reference([r])
