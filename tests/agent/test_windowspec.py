"""Window specs: validation of inconsistent fields, the YAML shapes, and the bundle-manifest round trip."""

from __future__ import annotations

import pytest

from agent.schema import Builder
from agent.windowspec import WindowSpec


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"type": "count", "size": "10s"}, "count window"),
        ({"type": "session"}, "needs `key`"),
        ({"type": "session", "key": "("}, "not a valid regular expression"),
        ({"type": "sliding", "size": "10s", "step": "20s"}, "step must be"),
    ],
)
def test_window_spec_rejects_inconsistent_fields(data: dict[str, object], problem: str) -> None:
    b = Builder()
    assert b.build(WindowSpec, data, "window") is None
    assert problem in str(b.errors[0])


def test_window_spec_from_yaml_shapes_and_dict_round_trip() -> None:
    b = Builder()
    sliding = b.build(WindowSpec, {"type": "sliding", "size": "60s", "step": "10s"}, "w")
    count = b.build(WindowSpec, {"type": "count", "size": 50}, "w")
    session = b.build(WindowSpec, {"type": "session", "key": r"blk_-?\d+", "idle": "30s"}, "w")
    assert not b.errors and sliding and count and session
    assert (sliding.length_s, sliding.step_s, count.count_size) == (60.0, 10.0, 50)
    for spec in (sliding, count, session):
        assert WindowSpec.from_dict(spec.to_dict()) == spec
