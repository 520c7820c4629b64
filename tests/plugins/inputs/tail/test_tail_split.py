"""The bulk read path agrees with the line-by-line one it short-cuts, on any bytes and any chunking.

`TailFile.feed` splits the usual chunk with a few C-level calls and `MultilineBuffer.push_many` cuts
records between start lines in bulk; both fall back to the per-line code for anything unusual. These
properties pin them to that per-line code: same lines, same offsets, same records, same counters.
Then through the tailer: a CRLF, multiline, badly encoded file read in pieces, and a write whose
filesystem event never came.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from watchdog.observers.api import ObservedWatch
from watchdog.observers.inotify import InotifyObserver

from agent.clock import ManualClock, SystemClock
from agent.plugin import PluginContext
from agent.schema import ByteSize, Duration
from plugins.inputs.tail import MultilineConfig, TailConfig, TailInput
from plugins.inputs.tail.file import LineRules, TailFile
from plugins.inputs.tail.multiline import MultilineBuffer, MultilineRules
from plugins.inputs.tail.stats import TailStats
from tests.lwtest import wait_for
from tests.plugins.inputs.tail.tailkit import Harness, Sink, append

PIECES = [b"2026-01-01T10:00:00 INFO a b", b"\tat x.y(z)", b"\n", b"\n", b"\n", b"\r", b"\x00\x00", b"\xff",
          b"\xc3\xa9", b"x" * 40, b"y", b"yyyy", b""]


def _split_slow(f: TailFile, data: bytes, rules: LineRules, stats: TailStats) -> list[tuple[bytes, int]]:
    base = f.read_pos
    f.read_pos += len(data)
    return f._split(data, base, rules, stats)


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=400, deadline=None)
@example([b"yyyy"] * 4 + [b"\n"] + [b"yyyy"] * 4 + [b"y", b"\n"], [], 16, "truncate")  # limit, limit + 1
@example([b"yyyy"] * 4 + [b"y", b"\n", b"y", b"\n"], [], 16, "skip")
@given(
    st.lists(st.sampled_from(PIECES), max_size=60),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    st.sampled_from([16, 30, 64, 4096]),
    st.sampled_from(["skip", "truncate"]),
)
def test_feed_matches_the_line_by_line_split(pieces: list[bytes], cuts: list[int], limit: int, mode: str) -> None:
    data = b"".join(pieces)
    rules = LineRules(limit, "skip" if mode == "skip" else "truncate", "utf-8")
    fast, slow = TailFile("a", -1, 0, 0, 0), TailFile("a", -1, 0, 0, 0)
    fast_stats, slow_stats = TailStats(), TailStats()
    got: list[tuple[bytes, int]] = []
    want: list[tuple[bytes, int]] = []
    for chunk in _cut(data, cuts):
        head, ends = fast.feed(chunk, rules, fast_stats)
        if ends:
            got += zip(head.split(b"\n"), ends, strict=True)
        want += _split_slow(slow, chunk, rules, slow_stats)
        assert (fast.line_start, bytes(fast.buf), fast.discarding, fast.keep) == (
            slow.line_start, bytes(slow.buf), slow.discarding, slow.keep)
    assert got == want
    assert fast_stats.as_dict() == slow_stats.as_dict()
    assert fast.take_partial() == slow.take_partial()


@settings(max_examples=400, deadline=None)
@example(["2026-01-01T a", "cont", "cont", "2026-01-01T b"], [], 3, 1 << 20)  # a record of exactly max_lines
@given(
    st.lists(st.sampled_from(["2026-01-01T start", "\tat x", "", "2026-01-01T other line", "cont"]), max_size=50),
    st.lists(st.integers(min_value=0, max_value=60), max_size=6),
    st.integers(min_value=1, max_value=6),
    st.sampled_from([8, 40, 1 << 20]),
)
def test_push_many_matches_push_line_by_line(lines: list[str], cuts: list[int], max_lines: int, max_bytes: int) -> None:
    config = MultilineConfig(start=r"^\d{4}-\d{2}-\d{2}T", max_lines=max_lines, max_bytes=ByteSize(max_bytes))
    rules = MultilineRules(config)
    bulk, each = MultilineBuffer(rules), MultilineBuffer(rules)
    ends = [10 * (i + 1) for i in range(len(lines))]
    points = sorted({0, len(lines), *(c % (len(lines) + 1) for c in cuts)})
    got: list[tuple[str, int]] = []
    want: list[tuple[str, int]] = []
    got_forced = want_forced = 0
    for a, b in itertools.pairwise(points):
        texts, tends, forced = bulk.push_many(lines[a:b], ends[a:b], float(b))
        got += zip(texts, tends, strict=True)
        got_forced += forced
        for text, end in zip(lines[a:b], ends[a:b], strict=True):
            done, f = each.push(text, end, float(b))
            want += done
            want_forced += f
        assert bulk.deadline() == each.deadline()
    assert (got, got_forced) == (want, want_forced)
    assert bulk.take() == each.take()


Drain = Callable[..., None]


def test_crlf_multiline_and_bad_bytes_read_in_pieces(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    clock = ManualClock()
    inp, sink = harness.make(clock=clock, multiline=MultilineConfig(start=r"^\d{4}-", flush=Duration(1.0)))
    text = (b"2026-01-01 first\r\n\tat a\r\n\tat b\r\n2026-01-01 caf\xc3\xa9\r\n2026-01-01 bad \xff here\r\n"
            b"2026-01-01 last\r\n")
    for i in range(0, len(text), 7):
        with open(log, "ab") as fh:
            fh.write(text[i : i + 7])
        drain(inp)
    clock.advance(2.0)
    drain(inp)
    assert sink.lines() == ["2026-01-01 first\n\tat a\n\tat b", "2026-01-01 café", "2026-01-01 bad \ufffd here",
                            "2026-01-01 last"]
    offsets = [r.offset for r in sink.records]
    assert offsets == [m.end() for m in re.finditer(rb"\r\n(?=2026|$)", text)]
    assert inp.stats()["decode_errors"] == 1
    assert os.path.getsize(log) == offsets[-1]


class _DeafInotify(InotifyObserver):
    """An observer whose events never arrive: what an inotify queue overflow or an NFS writer looks like."""

    def schedule(self, *args: Any, **kwargs: Any) -> ObservedWatch:
        return ObservedWatch(str(args[1]), recursive=False)


def test_a_write_whose_event_is_lost_is_read_by_the_periodic_reconcile(tmp_path: Path) -> None:
    """The reader sleeps until its next deadline instead of polling, but never longer than the reconcile."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("before\n")
    ctx = PluginContext(instance="input.tail.0", state_dir=tmp_path / "state", host="t", tag="app", clock=SystemClock())
    config = TailConfig(path=[str(logs / "*.log")], read_from="beginning", refresh_interval=Duration(600.0))
    inp = TailInput(config, ctx, make_observer=_DeafInotify)
    sink = Sink()
    sink.input = inp
    inp.start(sink)
    try:
        wait_for(lambda: sink.lines() == ["before"], timeout=10, what="the line found by the first scan")
        append(logs / "app.log", "after\n")
        wait_for(lambda: sink.lines() == ["before", "after"], timeout=10, what="the reconcile to read the write")
    finally:
        inp.stop()
