from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from agent.schema import Builder, ByteSize, Duration, describe, opt, secret_values


@dataclass(frozen=True, slots=True, kw_only=True)
class Inner:
    start: str = opt("^x", doc="A pattern.")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    path: list[str] = opt(doc="Paths.")
    timeout: Duration = opt(Duration(5.0), doc="Timeout.")
    size: ByteSize = opt(ByteSize(1024), doc="Size.")
    mode: Literal["skip", "truncate"] = opt("skip", doc="Mode.")
    count: int = opt(3, ge=1, le=10, doc="Count.")
    ratio: float = opt(0.5, doc="Ratio.")
    on: bool = opt(False, doc="Switch.")
    inner: Inner | None = opt(None, doc="Nested.")
    token: str = opt("", doc="Token.", secret=True)


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("10s", 10.0), ("5m", 300.0), ("1h", 3600.0), ("2d", 172800.0), (7, 7.0)]
)
def test_duration_parse(text: object, seconds: float) -> None:
    assert Duration.parse(text).seconds == seconds


@pytest.mark.parametrize("bad", ["ten", "5 minutes", -1, True, "1y"])
def test_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        Duration.parse(bad)


@pytest.mark.parametrize(
    ("text", "n"), [("64KiB", 65536), ("10MB", 10_000_000), ("1GiB", 1024**3), (12, 12), ("3k", 3000)]
)
def test_bytesize_parse(text: object, n: int) -> None:
    assert ByteSize.parse(text).bytes == n


def test_build_converts_and_defaults() -> None:
    b = Builder("f.yaml")
    cfg = b.build(Sample, {"path": "/var/log/*.log", "timeout": "2m", "size": "64KiB", "inner": {}}, "x")
    assert not b.errors
    assert cfg is not None
    assert cfg.path == ["/var/log/*.log"]
    assert cfg.timeout == Duration(120.0)
    assert cfg.size == ByteSize(65536)
    assert cfg.inner == Inner()
    assert cfg.count == 3


def test_build_collects_every_error_with_path_and_hint() -> None:
    lines = {"x.tmeout": 4, "x.count": 5, "x.mode": 6}
    b = Builder("f.yaml", lines.get)
    cfg = b.build(Sample, {"tmeout": "1s", "count": 99, "mode": "trunc", "on": "maybe"}, "x")
    assert cfg is None
    text = [str(e) for e in b.errors]
    assert "f.yaml:4: x.tmeout: unknown key (did you mean 'timeout'?)" in text
    assert any(t.startswith("f.yaml:5: x.count: must be at most 10") for t in text)
    assert any("x.mode" in t and "did you mean 'truncate'" in t for t in text)
    assert any("x.on: expected true or false" in t for t in text)
    assert any("x.path: required key is missing" in t for t in text)


def test_build_rejects_wrong_types() -> None:
    b = Builder()
    assert b.build(Sample, {"path": ["a"], "count": "three", "ratio": "x", "inner": 5}, "") is None
    msgs = {e.key_path: e.message for e in b.errors}
    assert msgs["count"].startswith("expected an integer")
    assert msgs["ratio"].startswith("expected a number")
    assert msgs["inner"].startswith("expected a mapping")


def test_describe_lists_every_option_and_nested() -> None:
    rows = {r.name: r for r in describe(Sample)}
    assert rows["path"].required
    assert rows["timeout"].default == "5s"
    assert rows["token"].secret
    assert "inner.start" in rows


def test_secret_values_found_in_tree() -> None:
    cfg = Sample(path=["a"], token="s3cret-value")
    assert secret_values([cfg]) == ["s3cret-value"]


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        ({"timeout": float("nan")}, "timeout", "finite"),
        ({"timeout": float("inf")}, "timeout", "finite"),
        ({"timeout": "9" * 400 + "s"}, "timeout", "finite"),
        ({"timeout": "-5s"}, "timeout", "cannot be negative"),
        ({"size": "9" * 400 + "TB"}, "size", "finite"),
        ({"ratio": float("nan")}, "ratio", "finite"),
        ({"ratio": "inf"}, "ratio", "finite"),
    ],
)
def test_non_finite_and_negative_values_are_refused(data: dict[str, object], key: str, message: str) -> None:
    """A NaN passes every `ge`/`le` comparison and an infinite size raised OverflowError: both must be
    located errors."""
    b = Builder()
    assert b.build(Sample, {"path": ["a"], **data}, "") is None
    (err,) = b.errors
    assert err.key_path == key
    assert message in err.message


def test_bounds_are_written_in_the_value_unit() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Timer:
        every: Duration = opt(Duration(1.0), ge=0.01, doc="Interval.")

    b = Builder()
    assert b.build(Timer, {"every": "0s"}, "t") is None
    assert b.errors[0].message == "must be at least 10ms, got 0ms"
