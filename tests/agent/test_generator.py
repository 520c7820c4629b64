"""The generator's promises: determinism, one parseable line format, and labels that are exactly right."""

from __future__ import annotations

import io
import itertools
import re
from datetime import datetime

import pytest

from agent.clock import ManualClock
from agent.generator import (
    GENERATOR_FORMAT,
    INCIDENT_TYPES,
    SESSION_KEY_REGEX,
    GeneratorConfig,
    IncidentLabel,
    generate,
    generate_sessions,
    parse_incidents,
)
from agent.generator.services import NORMAL_DB_MAX_MS, NORMAL_SEQUENCES, NOVEL_ERRORS, SPIKE_MIN_MS

HEADER = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) (DEBUG|INFO |WARN |ERROR) ([a-z-]+) req=([0-9a-f]{12}) (.+)$"
)

# The test's own reading of a message: (service, message prefix) -> step key.
STEPS: list[tuple[str, str, str]] = [
    ("api-gateway", "Received ", "gw.recv"), ("api-gateway", "Completed ", "gw.done"),
    ("api-gateway", "Health probe", "gw.health"),
    ("auth-service", "Token validated", "auth.ok"), ("auth-service", "Login succeeded", "auth.login_ok"),
    ("auth-service", "Login failed", "auth.login_fail"),
    ("cache-proxy", "Cache hit", "cache.hit"), ("cache-proxy", "Cache miss", "cache.miss"),
    ("cache-proxy", "Evicted", "cache.evict"),
    ("order-service", "Executed SELECT", "db.select"), ("order-service", "Executed INSERT", "db.insert"),
    ("order-service", "Executed DELETE", "db.delete"), ("order-service", "Query on", "db.pool_error"),
    ("order-service", "Published", "queue.publish"), ("inventory-service", "Reserved", "inv.reserve"),
    ("payment-service", "Charged", "pay.charge"), ("payment-service", "Card ", "pay.declined"),
    ("search-service", "Search query", "search.query"), ("search-service", "Search backend", "search.timeout"),
    ("notification-worker", "Consumed", "worker.consume"), ("notification-worker", "Sent ", "worker.email"),
    ("scheduler", "Job", "sched"),
]
NOVEL = [re.compile(re.escape(t).replace(r"\{n\}", r"\d+").replace(r"\{host\}", r"\S+").replace(r"\{hex\}", "[0-9a-f]+"))
         for t in NOVEL_ERRORS]
DURATION = re.compile(r" in (\d+)ms$")


class Line:
    __slots__ = ("cont", "key", "level", "no", "rid", "service", "text", "time")

    def __init__(self, no: int, m: re.Match[str]) -> None:
        self.no = no
        self.time = datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
        self.level, self.service, self.rid, self.text = m.group(2).strip(), m.group(3), m.group(4), m.group(5)
        self.cont: list[int] = []
        self.key = classify(self.service, self.text)


def classify(service: str, text: str) -> str:
    if any(p.search(text) for p in NOVEL):
        return "pay.novel"
    for svc, prefix, key in STEPS:
        if svc == service and text.startswith(prefix):
            if key == "sched":
                return "sched.start" if " started " in text else "sched.done"
            return key
    raise AssertionError(f"unclassified line: {service} {text}")


def read_log(text: str) -> tuple[list[Line], dict[int, Line]]:
    """Records in order, and physical line number -> record (continuations map to their record)."""
    records: list[Line] = []
    by_no: dict[int, Line] = {}
    for no, raw in enumerate(text.splitlines(), start=1):
        m = HEADER.match(raw)
        if m:
            records.append(Line(no, m))
        else:
            assert raw.startswith("\t"), f"line {no} is neither a header nor a tab-indented continuation: {raw!r}"
            assert records, "a continuation line before any record"
            records[-1].cont.append(no)
        by_no[no] = records[-1]
    return records, by_no


@pytest.fixture(scope="module")
def generated() -> tuple[str, list[IncidentLabel], list[Line], dict[int, Line]]:
    out = io.StringIO()
    labels = generate(GeneratorConfig(seed=1, duration_s=600), out)
    text = out.getvalue()
    records, by_no = read_log(text)
    return text, labels, records, by_no


def sessions_of(records: list[Line]) -> dict[str, list[Line]]:
    out: dict[str, list[Line]] = {}
    for r in records:
        out.setdefault(r.rid, []).append(r)
    return out


def test_same_seed_gives_identical_bytes_and_other_seed_differs() -> None:
    a, b, c = io.StringIO(), io.StringIO(), io.StringIO()
    la = generate(GeneratorConfig(seed=5, duration_s=120), a)
    lb = generate(GeneratorConfig(seed=5, duration_s=120), b)
    generate(GeneratorConfig(seed=6, duration_s=120), c)
    assert a.getvalue() == b.getvalue()
    assert [x.to_json() for x in la] == [x.to_json() for x in lb]
    assert a.getvalue() != c.getvalue()


def test_every_line_has_the_documented_header_and_sessions_follow_normal_paths(generated) -> None:  # type: ignore[no-untyped-def]
    text, labels, records, _ = generated
    assert GENERATOR_FORMAT == "<Date> <Level> <Component> <Request> <Content>"
    raw = text.splitlines()
    assert all(re.search(SESSION_KEY_REGEX, raw[r.no - 1]) for r in records)
    times = [r.time for r in records]
    assert times == sorted(times)
    assert any(r.cont for r in records), "normal traffic includes multi-line stack traces"
    touched = {rid for label in labels for rid in label.sessions}
    for rid, lines in sessions_of(records).items():
        if rid not in touched:
            assert tuple(r.key for r in lines) in NORMAL_SEQUENCES, rid
    assert len({r.service for r in records}) >= 8


def test_rate_follows_lines_per_second_of_log_time(generated) -> None:  # type: ignore[no-untyped-def]
    text, _, records, _ = generated
    span = records[-1].time - records[0].time
    assert 590 <= span <= 602
    assert 50 * 600 * 0.85 <= text.count("\n") <= 50 * 600 * 1.15


def test_labels_cover_each_incident_after_the_warmup_without_overlap(generated) -> None:  # type: ignore[no-untyped-def]
    _, labels, records, by_no = generated
    assert [label.type for label in labels] == list(INCIDENT_TYPES)
    start = records[0].time
    for prev, label in itertools.pairwise(labels):
        assert prev.end < label.start
    for label in labels:
        assert label.start >= start + 0.3 * 600 - 1
        assert label.lines == sorted(set(label.lines)) and label.sessions
        for no in label.lines:
            rec = by_no[no]
            assert label.start <= rec.time <= label.end
            assert rec.rid in label.sessions
            assert set(rec.cont) <= set(label.lines), "a labelled record is labelled with all its lines"


def test_no_incident_signature_appears_outside_its_label(generated) -> None:  # type: ignore[no-untyped-def]
    _, labels, records, _ = generated
    labelled = {no for label in labels for no in label.lines}
    kind = {label.type: label for label in labels}
    burst = kind["error_burst"]
    pool_out = [r for r in records if r.key == "db.pool_error" and r.no not in labelled]
    pool_in = [r for r in records if r.key == "db.pool_error" and r.no in burst.lines]
    assert len(pool_in) >= 20 * max(1, len(pool_out))
    for r in records:
        if r.no in labelled:
            continue
        assert r.key != "pay.novel", r.no
        if r.key.startswith("db.") and r.key != "db.pool_error":
            assert int(DURATION.search(r.text).group(1)) <= NORMAL_DB_MAX_MS  # type: ignore[union-attr]
        if r.key == "gw.done" and "status=2" in r.text:
            assert int(DURATION.search(r.text).group(1)) < SPIKE_MIN_MS  # type: ignore[union-attr]


def test_each_labelled_line_is_what_its_label_says(generated) -> None:  # type: ignore[no-untyped-def]
    _, labels, records, by_no = generated
    kind = {label.type: label for label in labels}
    sessions = sessions_of(records)
    for no in kind["error_burst"].lines:
        r = by_no[no]
        assert r.key == "db.pool_error" or (r.key == "gw.done" and "status=503" in r.text)
        assert r.level in ("ERROR", "WARN")
    novel = [by_no[no] for no in kind["new_template"].lines if by_no[no].key == "pay.novel"]
    assert novel and all(r.level == "ERROR" for r in novel)
    assert len({NOVEL.index(next(p for p in NOVEL if p.search(r.text))) for r in novel}) == 1
    for rid in kind["broken_sequence"].sessions:
        assert tuple(r.key for r in sessions[rid]) not in NORMAL_SEQUENCES
        assert {r.no for r in sessions[rid]} <= set(kind["broken_sequence"].lines)
    shift = kind["frequency_shift"]
    assert all(by_no[no].key in ("gw.recv", "auth.login_fail", "gw.done") for no in shift.lines)
    fails_in = sum(1 for r in records if r.key == "auth.login_fail" and shift.start <= r.time <= shift.end)
    fails_out = sum(1 for r in records if r.key == "auth.login_fail" and r.time < labels[0].start)
    rate_in = fails_in / (shift.end - shift.start)
    rate_out = fails_out / (labels[0].start - records[0].time)
    assert 5 * rate_out <= rate_in <= 20 * rate_out
    spike = kind["latency_spike"]
    for no in spike.lines:
        r = by_no[no]
        assert r.key in ("db.select", "db.insert", "db.delete", "gw.done", "sched.done")
        assert int(DURATION.search(r.text).group(1)) >= SPIKE_MIN_MS  # type: ignore[union-attr]


def test_no_incidents_means_no_labels_and_only_normal_sessions() -> None:
    out = io.StringIO()
    assert generate(GeneratorConfig(seed=3, duration_s=120, incidents=[]), out) == []
    records, _ = read_log(out.getvalue())
    for rid, lines in sessions_of(records).items():
        assert tuple(r.key for r in lines) in NORMAL_SEQUENCES, rid


def test_generate_sessions_splits_normal_and_abnormal_sequences() -> None:
    normal, abnormal = generate_sessions(GeneratorConfig(seed=2, duration_s=300, rate=30))
    assert len(normal) > 500 and len(abnormal) > 20
    assert all(tuple(s) in NORMAL_SEQUENCES for s in normal)
    assert sum(tuple(s) not in NORMAL_SEQUENCES for s in abnormal) > 10


def test_follow_writes_on_the_clock_with_current_timestamps() -> None:
    clock = ManualClock(start=1_900_000_000.0)
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock.advance(s)

    out = io.StringIO()
    generate(GeneratorConfig(seed=1, duration_s=20, rate=20, incidents=[]), out, follow=clock, sleep=sleep)
    records, _ = read_log(out.getvalue())
    assert records[0].time >= 1_900_000_000.0 and records[-1].time <= clock.time() + 0.001
    assert 19 <= sum(slept) <= 21


def test_parse_incidents_and_config_validation() -> None:
    assert parse_incidents("all") == list(INCIDENT_TYPES)
    assert parse_incidents("none") == []
    assert parse_incidents("latency_spike, error_burst") == ["latency_spike", "error_burst"]
    with pytest.raises(ValueError, match="unknown incident type 'nope'"):
        parse_incidents("nope")
    with pytest.raises(ValueError):
        GeneratorConfig(duration_s=0)
    with pytest.raises(ValueError):
        GeneratorConfig(rate=-1)
    with pytest.raises(ValueError):
        GeneratorConfig(incidents=["bogus"])
