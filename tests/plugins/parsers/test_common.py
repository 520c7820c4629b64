"""parse_time's memoised fast path must give what a plain datetime computation gives, on first and repeated
calls, for every fraction and zone spelling it accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.parsers.common import parse_time


def reference(y: int, mo: int, d: int, h: int, mi: int, s: int, digits: str, zone: str | None) -> float:
    naive = datetime(y, mo, d, h, mi, s)
    fraction = int(digits) / 10 ** len(digits) if digits else 0.0
    if zone is None:
        return naive.timestamp() + fraction
    if zone == "Z":
        tz = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        hh, mm = int(zone[1:3]), int(zone.replace(":", "")[3:5])
        tz = timezone(sign * timedelta(hours=hh, minutes=mm))
    return naive.replace(tzinfo=tz).timestamp() + fraction


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(min_value=datetime(1971, 1, 2), max_value=datetime(2100, 1, 1)),
    st.sampled_from(["T", " "]),
    st.sampled_from(["", ".", ","]),
    st.text(alphabet="0123456789", min_size=1, max_size=9),
    st.sampled_from([None, "Z", "+05:30", "-0200", "+00:00", "-11:45"]),
)
def test_iso_times_match_datetime_on_first_and_repeated_calls(
    when: datetime, sep: str, dot: str, digits: str, zone: str | None
) -> None:
    digits = digits if dot else ""
    text = f"{when:%Y-%m-%d}{sep}{when:%H:%M:%S}{dot}{digits}{zone or ''}"
    expected = reference(when.year, when.month, when.day, when.hour, when.minute, when.second, digits, zone)
    for _ in range(2):  # the second call is served from the memo
        got = parse_time(text)
        assert got is not None and abs(got - expected) < 1e-6, text


def test_a_known_second_with_a_bad_tail_is_still_refused() -> None:
    assert parse_time("2027-01-15T08:00:06.833Z") == 1_800_000_006.833
    assert parse_time("2027-01-15T08:00:06.833Zjunk") is None
    assert parse_time("2027-01-15T08:00:06.") is None
    assert parse_time("2027-13-15T08:00:06Z") is None
    assert parse_time("2027-01-15T08:00:06 +0100") == 1_800_000_006 - 3600


def test_other_shapes_still_parse() -> None:
    assert parse_time("[2027-01-15 08:00:06]") == datetime(2027, 1, 15, 8, 0, 6).timestamp()
    assert parse_time("270115 080006") == datetime(2027, 1, 15, 8, 0, 6).timestamp()
    assert parse_time("1800000006.5") == 1_800_000_006.5
    assert parse_time("") is None and parse_time(None) is None and parse_time("yesterday") is None


def test_local_times_across_daylight_saving_changes_match_datetime() -> None:
    """In a zone with DST (a fresh interpreter, so the memos start empty): the minute memo must not
    carry an offset across a change."""
    import subprocess
    import sys

    code = (
        "from datetime import datetime\n"
        "from plugins.parsers.common import parse_time\n"
        "times = ['2026-03-08T01:59:58', '2026-03-08T01:59:59.25', '2026-03-08T02:30:10', '2026-03-08T03:00:01',\n"
        "         '2026-11-01T00:59:59', '2026-11-01T01:30:05', '2026-11-01T01:30:06.5', '2026-11-01T02:00:00']\n"
        "bad = [t for t in times if parse_time(t) != datetime.fromisoformat(t).timestamp()]\n"
        "assert not bad, bad\n"
        "assert parse_time('2026-03-08T01:59:60') is None and parse_time('2026-02-30T01:00:00') is None\n"
    )
    env = {"TZ": "America/New_York", "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
