import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.linestart import StartTest, prefix_width


@pytest.mark.parametrize(
    ("pattern", "width"),
    [
        (r"^\d{4}-\d{2}-\d{2}T", 11),
        (r"^\[?\d{4}-", 6),
        (r"\A\d{2}:", 3),
        (r"^(?:INFO|WARN|ERROR)\s", 6),
        (r"^\S", 1),
        (r"\d{4}", None),  # unanchored: a match may start anywhere
        (r"^\d+", None),  # unbounded
        (r"^ab$", None),  # `$` looks at what follows
        (r"^\d{2}\b", None),  # so does a word boundary
        (r"^a(?=b)", None),  # and a lookahead
        (r"^(a)\1", None),  # a backreference
        (r"(?m)^\d", None),
    ],
)
def test_only_patterns_decided_by_a_bounded_prefix_are_memoised(pattern: str, width: int | None) -> None:
    assert prefix_width(re.compile(pattern)) == width


PATTERNS = [r"^\d{4}-\d{2}", r"^\[?\d{2}:", r"^(?:INFO|WARN)\s", r"^\S", r"\d{4}", r"^\d{2}\b", r"^a(?=b)",
            r"(?i)^err", r"^(?>ab|a)c", r"^x{0,3}y"]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(PATTERNS),
    st.lists(st.text(alphabet="0123456789-:[ abcyxERrINFOWA\t\u00e9", max_size=14), max_size=30),
)
def test_start_test_answers_exactly_what_search_answers(pattern: str, lines: list[str]) -> None:
    compiled = re.compile(pattern)
    test = StartTest(compiled)
    expected = [compiled.search(line) is not None for line in lines]
    assert test.many(lines) == expected
    assert test.many(lines) == expected  # a second time from the memo
    assert [test.one(line) for line in lines] == expected
