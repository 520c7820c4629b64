"""Windows: count, sliding (with empty windows on silence) and session windows, online and offline."""

from __future__ import annotations

import itertools
import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.features import summarize
from agent.schema import Duration
from agent.types import Batch, Record, Window
from agent.windows import Windower, WindowSpec, window_from_dict, window_to_dict


def rec(t: float, tid: int, raw: str = "", level: str = "INFO", fields: dict[str, str] | None = None) -> Record:
    return Record(tag="t", source="/var/log/x.log", raw=raw or f"line {tid}", time=t, template_id=tid,
                  template=f"tpl {tid}", level=level, fields=fields)


def test_count_windows_close_at_size_and_flush_partial() -> None:
    w = Windower(WindowSpec(type="count", size=3), "s")
    out = []
    for i in range(7):
        out += w.add(rec(float(i), i % 2))
    assert [win.events for win in out] == [[0, 1, 0], [1, 0, 1]]
    assert [win.events for win in w.flush()] == [[0]]
    assert w.flush() == []


def test_sliding_windows_overlap_and_emit_empty_windows_on_silence() -> None:
    spec = WindowSpec(type="sliding", size=Duration(10.0), step=Duration(5.0))
    w = Windower(spec, "s")
    # The stream begins mid-window: [-5, 5) and [0, 10) would hold a fraction of their span, so the first
    # window emitted is the first that starts at or after the first record.
    assert w.add(rec(1.0, 7)) == []
    assert w.add(rec(6.0, 8)) == []
    assert w.tick(10.0) == []
    closed = w.tick(40.0)  # [5, 15) holds t=6; the rest are silent but still emitted
    assert [(c.start, c.events) for c in closed] == [(5.0, [8]), (10.0, []), (15.0, []), (20.0, []), (25.0, []), (30.0, [])]
    assert w.stats.empty_windows == 5


def test_sliding_window_late_record_is_counted_not_crashing() -> None:
    w = Windower(WindowSpec(type="sliding", size=Duration(10.0)), "s")
    w.add(rec(25.0, 1))  # [20, 30) began before the stream: a leading record, not a late one
    w.add(rec(31.0, 1))
    w.tick(50.0)
    assert w.add(rec(33.0, 1)) == []
    assert (w.stats.leading_records, w.stats.late_records) == (1, 1)


def test_sliding_records_close_windows_offline_like_tick_online() -> None:
    spec = WindowSpec(type="sliding", size=Duration(10.0))
    offline = Windower(spec, "s")
    online = Windower(spec, "s")
    times = [0.5, 3.0, 12.0, 33.0, 34.0]
    got_off, got_on = [], []
    for t in times:
        got_off += offline.add(rec(t, int(t)))
        got_on += online.tick(t)
        got_on += online.add(rec(t, int(t)))
    got_off += offline.flush()
    got_on += online.flush()
    assert [(x.start, x.events) for x in got_off] == [(x.start, x.events) for x in got_on]
    assert [x.events for x in got_off] == [[12], [], [33, 34]]  # [0, 10) began before the stream


def test_finish_keeps_whole_windows_and_drops_the_ones_a_stop_cut_short() -> None:
    """A partial window scores as anomalous against a model of whole ones: at a stop it is dropped."""
    sliding = Windower(WindowSpec(type="sliding", size=Duration(10.0), step=Duration(5.0)), "s")
    emitted = [w.start for t in (1.0, 6.0, 11.0, 16.0, 21.0) for w in sliding.add(rec(t, 1))]
    assert emitted == [5.0, 10.0]  # [5, 15) and [10, 20): the records reached their ends
    assert sliding.finish(input_ended=True) == []  # [15, 25) and [20, 30) are open: partial either way
    assert sliding.stats.partial_windows == 2 and sliding.stats.windows == 2

    count = Windower(WindowSpec(type="count", size=3), "s")
    for i in range(4):
        count.add(rec(float(i), i))
    assert count.finish(input_ended=True) == [] and count.stats.partial_windows == 1

    def sessions() -> Windower:
        w = Windower(WindowSpec(type="session", key=r"req=(\w+)", idle=Duration(30.0)), "s")
        w.add(rec(0.0, 1, "GET req=a"))
        w.add(rec(1.0, 2, "GET req=b"))
        return w

    ended = sessions()  # a replayed file's end ends its sessions
    assert sorted(x.key for x in ended.finish(input_ended=True)) == ["a", "b"]
    assert ended.stats.partial_windows == 0
    stopped = sessions()  # a stop: their requests are still in flight
    assert stopped.finish(input_ended=False) == [] and stopped.stats.partial_windows == 2
    assert stopped.flush() == []


def test_session_windows_by_regex_idle_and_split() -> None:
    spec = WindowSpec(type="session", key=r"blk_-?\d+", idle=Duration(10.0), max_length=3, max_samples=1)
    w = Windower(spec, "s")
    out = []
    out += w.add(rec(0.0, 1, "Receiving blk_-12 from a"))
    out += w.add(rec(1.0, 2, "Receiving blk_7 from b"))
    out += w.add(rec(2.0, 1, "Served blk_-12 to c"))
    out += w.add(rec(3.0, 3, "no block here"))
    assert out == [] and w.stats.unkeyed_records == 1
    out += w.add(rec(4.0, 3, "Deleting blk_-12"))  # third event of blk_-12: split at max_length
    assert [(x.key, x.events) for x in out] == [("blk_-12", [1, 1, 3])]
    assert out[0].samples == {1: ["Receiving blk_-12 from a"], 3: ["Deleting blk_-12"]}
    assert out[0].templates[1] == "tpl 1"
    closed = w.tick(11.5)  # blk_7 idle since 1.0
    assert [(x.key, x.events) for x in closed] == [("blk_7", [2])]
    out = w.add(rec(12.0, 4, "again blk_-12"))
    assert out == []
    assert [(x.key, x.events) for x in w.flush()] == [("blk_-12", [4])]
    assert w.stats.split_sessions == 1


def test_session_key_field_and_first_group_and_eviction() -> None:
    spec = WindowSpec(type="session", key=r"req=(\w+)", key_field="trace", max_open=2)
    w = Windower(spec, "s")
    w.add(rec(0.0, 1, "x req=a"))
    w.add(rec(0.0, 1, "x req=zzz", fields={"trace": "T1"}))
    out = w.add(rec(0.0, 1, "x req=b"))  # third open session evicts the least recently active (a)
    assert [x.key for x in out] == ["a"]
    assert sorted(x.key for x in w.flush()) == ["T1", "b"]
    assert w.stats.evicted_sessions == 1


def test_window_dict_round_trip() -> None:
    w = Windower(WindowSpec(type="count", size=2), "s")
    w.add(rec(1.0, 5, level="WARN"))
    (win,) = w.add(rec(2.0, 6))
    back = window_from_dict(window_to_dict(win))
    assert (back.events, back.times, back.levels, back.start, back.end) == ([5, 6], [1.0, 2.0], ["WARN", "INFO"], 1.0, 2.0)


class _Reference:
    """Sliding windows by their definition: every record appended to each open window that spans it."""

    def __init__(self, size: float, step: float) -> None:
        self.size, self.step = size, step
        self.open: dict[int, list[tuple[float, int, str]]] = {}
        self.next: int | None = None
        self.lead_until = -math.inf
        self.watermark = -math.inf
        self.leading = self.late = 0

    def close(self, now: float) -> list[tuple[float, list[tuple[float, int, str]]]]:
        if self.next is None:
            return []
        due = math.floor((now - self.size) / self.step)
        out = [(i * self.step, self.open.pop(i, [])) for i in range(self.next, due + 1)]
        self.next = max(self.next, due + 1)
        return out

    def add(self, t: float, tid: int, raw: str) -> list[tuple[float, list[tuple[float, int, str]]]]:
        out = self.close(t) if t > self.watermark else []
        self.watermark = max(self.watermark, t)
        if self.next is None:
            self.next = math.ceil(t / self.step)
            self.lead_until = self.next * self.step
        last, first = math.floor(t / self.step), math.floor((t - self.size) / self.step) + 1
        if last < self.next:
            if t < self.lead_until:
                self.leading += 1
            else:
                self.late += 1
        for i in range(max(first, self.next), last + 1):
            self.open.setdefault(i, []).append((t, tid, raw))
        return out

    def flush(self) -> list[tuple[float, list[tuple[float, int, str]]]]:
        return [(i * self.step, self.open.pop(i)) for i in sorted(self.open)]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([(60.0, 10.0), (10.0, 10.0), (25.0, 10.0), (1.0, 0.25), (0.75, 0.5)]),
    st.lists(st.tuples(st.floats(-3.0, 8.0), st.integers(0, 4), st.booleans()), max_size=60),
)
def test_sliding_windows_hold_exactly_the_records_of_their_span(
    shape: tuple[float, float], steps: list[tuple[float, int, bool]]
) -> None:
    size, step = shape
    spec = WindowSpec(type="sliding", size=Duration(size), step=Duration(step), max_samples=2)
    w, ref = Windower(spec, "s"), _Reference(size, step)
    got: list[Window] = []
    want: list[tuple[float, list[tuple[float, int, str]]]] = []
    t = 1000.0
    monotone = True
    for n, (dt, tid, tick) in enumerate(steps):
        t_rec = t + dt * step / 4
        monotone &= dt >= 0
        t = max(t, t_rec)
        if tick:
            got += w.tick(t)
            want += ref.close(t)
        got += w.add(rec(t_rec, tid, raw=f"r{n}"))
        want += ref.add(t_rec, tid, f"r{n}")
    got += w.flush()
    want += ref.flush()
    assert [(x.start, x.end) for x in got] == [(s, s + size) for s, _ in want]
    for window, (_start, members) in zip(got, want, strict=True):
        assert sorted(zip(window.times, window.events, window.levels, strict=True)) == sorted(
            (mt, mtid, "INFO") for mt, mtid, _raw in members)
        assert window.templates == {mtid: f"tpl {mtid}" for _t, mtid, _r in members}
        if monotone:
            assert window.events == [mtid for _t, mtid, _r in members]
            samples: dict[int, list[str]] = {}
            for _t, mtid, raw in members:
                if len(samples.setdefault(mtid, [])) < 2:
                    samples[mtid].append(raw)
            assert window.samples == samples
    assert (w.stats.leading_records, w.stats.late_records) == (ref.leading, ref.late)
    assert w.stats.records == len(steps)


def test_sliding_window_after_a_long_silence_skips_empties_but_keeps_records() -> None:
    w = Windower(WindowSpec(type="sliding", size=Duration(20.0), step=Duration(10.0)), "s")
    w.add(rec(0.0, 1))
    w.add(rec(15.0, 2))
    out = w.tick(10.0 * 20_000)
    # Windows 0..19998 are due: the two holding records, then the last 10 000 (empty) ones; the rest skipped.
    assert [(x.start, x.events) for x in out[:2]] == [(0.0, [1, 2]), (10.0, [2])]
    assert (len(out), w.stats.skipped_empty_windows, out[-1].start) == (10_002, 9_997, 199_980.0)


def test_sliding_record_without_a_usable_time_is_counted_and_skipped() -> None:
    w = Windower(WindowSpec(type="sliding", size=Duration(10.0)), "s")
    w.add_many([rec(1.0, 1), rec(math.nan, 2), rec(math.inf, 3), rec(12.0, 4)])
    assert w.stats.bad_time_records == 2 and w.stats.records == 4
    assert [x.events for x in w.flush()] == [[4]]


def test_sliding_batches_give_the_windows_of_one_record_at_a_time() -> None:
    """`add_many` appends runs in bulk; the windows (lists, samples, templates, sources, stats) must be
    those of feeding the records one by one; a `lists=False` window has the same all but the lists, and the
    same summary as the list window."""
    import random

    rng = random.Random(4)
    records = []
    t = 5000.0
    for i in range(6000):
        t += rng.expovariate(40.0) if rng.random() > 0.001 else rng.uniform(10.0, 50.0)
        late = rng.uniform(0.0, 15.0) if rng.random() < 0.02 else 0.0
        tid = rng.choice([1, 2, 2, 3, 4, 7])
        records.append(Record(tag="t", source=rng.choice(["a.log", "b.log", ""]), raw=f"r{i}",
                              time=t - late if rng.random() > 0.001 else math.nan, template_id=tid,
                              template="" if tid == 7 else f"tpl {tid}", level=rng.choice(["INFO", None, "WARN"])))
    spec = WindowSpec(type="sliding", size=Duration(30.0), step=Duration(10.0), max_samples=3)

    def run(windower: Windower, sizes: list[int]) -> list[Window]:
        out: list[Window] = []
        i = 0
        for n in sizes:
            out += windower.add_many(records[i:i + n])
            i += n
        return out + windower.flush()

    one_by_one = Windower(spec, "s")
    want = run(one_by_one, [1] * len(records))
    sizes = [rng.choice([3, 50, 400, 900]) for _ in range(100)]
    for lists in (True, False):
        batched = Windower(spec, "s", lists=lists)
        got = run(batched, sizes)
        assert [(w.start, w.samples, w.templates, w.sources, len(w), summarize(w)) for w in got] == [
            (w.start, w.samples, w.templates, w.sources, len(w), summarize(w)) for w in want]
        assert [(w.events, w.times, w.levels) for w in got] == (
            [(w.events, w.times, w.levels) for w in want] if lists else [([], [], [])] * len(want))
        assert batched.stats == one_by_one.stats


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.0, 0.01, 0.05]),
    st.lists(st.integers(1, 160), min_size=1, max_size=12),
    st.sampled_from([0, 1, 3]),
)
def test_bulk_pane_runs_give_the_windows_and_summaries_of_one_record_at_a_time(
    seed: int, late_share: float, sizes: list[int], max_samples: int
) -> None:
    """Runs appended to a pane at once (columns, C-level counts, sample lines found by bounded scans) against
    the record path, on streams with late and out-of-order records, template id -1 and missing levels.

    Hypothesis picks the stream's seed and shape rather than each record: runs of 32+ records in one pane
    (what takes the bulk path) need streams longer than it would build record by record."""
    import random

    rng = random.Random(seed)
    records = []
    t = 100.0
    for n in range(rng.randint(1, 700)):
        t += rng.expovariate(60.0)
        back = rng.uniform(0.0, 4.0) if rng.random() < late_share else rng.uniform(0.0, 0.02)
        tid = rng.choice([-1, 0, 1, 1, 1, 2, 2, 3, 4, 5, 40])
        records.append(Record(tag="t", source=rng.choice(["a.log", "a.log", "b.log", ""]), raw=f"r{n}",
                              time=t - back, template_id=tid, template=f"tpl {tid}" if tid % 4 else "",
                              level=rng.choice(["INFO", "INFO", "WARN", None, "error"])))
    spec = WindowSpec(type="sliding", size=Duration(6.0), step=Duration(2.0), max_samples=max_samples)
    one = Windower(spec, "s")
    want = [w for r in records for w in one.add(r)] + one.flush()
    batched = Windower(spec, "s", lists=False)
    got: list[Window] = []
    i = 0
    for k in itertools.count():
        if i >= len(records):
            break
        n = sizes[k % len(sizes)]
        chunk = records[i:i + n]
        # Parsed batches carry their template-id column; plain lists are taken apart by the windower.
        got += batched.add_many(Batch(chunk, [r.template_id for r in chunk]) if k % 2 else chunk)
        i += n
    got += batched.flush()
    assert [(w.start, w.samples, w.templates, w.sources, len(w)) for w in got] == [
        (w.start, w.samples, w.templates, w.sources, len(w)) for w in want]
    assert all(not (w.events or w.times or w.levels) for w in got)  # a TallyPane keeps no per-record lists
    assert [summarize(w) for w in got] == [summarize(w) for w in want]
    assert all(summarize(w).counts == Counter(w.events) for w in want)
    assert batched.stats == one.stats


def test_panes_a_step_old_are_sealed_and_a_record_later_than_that_counts_without_its_time() -> None:
    """Times are kept only while records may still arrive (bounded memory at any line rate); a record
    more than a step late is counted, sampled and templated, but leaves the gap figures as they were."""
    spec = WindowSpec(type="sliding", size=Duration(30.0), step=Duration(10.0))
    stream = [rec(float(t), 1 + t % 3) for t in range(0, 100)]
    late = rec(65.5, 9)
    for lists in (True, False):
        w = Windower(spec, "s", lists=lists)
        got = [x for r in stream[:81] for x in w.add(r)]
        assert sum(1 for p in w._panes.values() if p.moments is None) <= 2  # the pane being filled, the last one
        if not lists:
            assert all(len(p.times) == 0 for p in w._panes.values() if p.moments is not None)
        got += w.add(late)  # t=80 closed [50, 80) and sealed the panes that ended by t=70: [60, 70) among them
        assert w.stats.untimed_records == 1 and w.stats.late_records == 0
        got += [x for r in stream[81:] for x in w.add(r)] + w.flush()
        holding = [x for x in got if 9 in summarize(x).counts]
        assert [x.start for x in holding] == [60.0]  # [40, 70) and [50, 80) had closed before it came
        for x in holding:
            on_time = [r for r in stream if x.start <= r.event_time < x.end]
            plain = summarize(Window("s", "k", x.start, x.end, events=[r.template_id for r in on_time],
                                     times=[r.event_time for r in on_time], levels=["" for _ in on_time]))
            s = summarize(x)
            assert s.counts == {**plain.counts, 9: 1} and len(x) == len(on_time) + 1
            assert s.temporal == plain.temporal  # the late record's time is not in the gaps
            assert x.templates[9] == "tpl 9"
