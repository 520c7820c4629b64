"""Params: learned per-slot distributions; latency and status-share shifts explained by template and slot."""

from __future__ import annotations

import io
import math
import random
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agent.clock import ManualClock
from agent.generator import GENERATOR_FORMAT, GeneratorConfig, IncidentLabel, generate
from agent.generator.services import Event
from agent.parsing import ParseStage, default_section
from agent.plugin import Kind, PluginContext
from agent.registry import Registry
from agent.schema import Duration
from agent.types import Record, Score
from plugins.detectors.params import STATE_FILE, ParamsConfig, ParamsDetector
from plugins.detectors.paramslots import (
    FOLD_AT,
    OTHER,
    Slot,
    binomial_z,
    parse_number,
    quantile,
    slot_name,
    to_bin,
)

_NUM = re.compile(r"(?<=[=\s])[0-9][\w.%]*")


def generated(config: GeneratorConfig) -> tuple[list[Record], list[IncidentLabel]]:
    """Records as the parse stage would fill them, with the generator's step keys as template ids."""
    ids: dict[str, int] = {}
    templates: dict[str, str] = {}
    records: list[Record] = []

    def observe(rid: str, ev: Event) -> None:
        tid = ids.setdefault(ev.key, len(ids))
        template = templates.setdefault(ev.key, _NUM.sub("<*>", ev.text))
        records.append(Record(tag="app", source="/var/log/shop.log", raw=ev.text, time=round(ev.t, 3),
                              level=ev.level, component=ev.service, message=ev.text, template_id=tid,
                              template=template, params=tuple(_NUM.findall(ev.text))))

    labels = generate(config, io.StringIO(), observe=observe)
    return records, labels


def ctx(tmp_path: Path) -> PluginContext:
    return PluginContext(instance="detector.params.0", state_dir=tmp_path, host="h", clock=ManualClock())


def feed(det: ParamsDetector, records: list[Record], batch: int = 200) -> list[Score]:
    out: list[Score] = []
    for i in range(0, len(records), batch):
        chunk = records[i:i + batch]
        out += det.observe(chunk)
        out += det.tick(chunk[-1].event_time)
    return out


def near(score: Score, label: IncidentLabel, slack: float = 60.0) -> bool:
    return score.end > label.start - slack and score.start < label.end + slack


@pytest.fixture(scope="module")
def two_incidents() -> tuple[list[Record], list[IncidentLabel]]:
    return generated(GeneratorConfig(seed=11, duration_s=2700, rate=25, incidents=["error_burst", "latency_spike"],
                                     warmup_fraction=0.5))


def test_latency_spike_and_5xx_share_are_found_and_explained(tmp_path: Path, two_incidents) -> None:  # type: ignore[no-untyped-def]
    records, labels = two_incidents
    det = ParamsDetector(ParamsConfig(learn_for=Duration(900)), ctx(tmp_path))
    scores = feed(det, records)
    burst, spike = labels
    assert [s.title for s in scores if not near(s, burst) and not near(s, spike)] == []
    statuses = [s for s in scores if near(s, burst) and s.evidence.params.get("slot") == "status"]
    assert statuses and statuses[0].evidence.params["category"] == "503"
    assert re.match(r"status: 503 share \d+\.\d% → \d+\.\d% in 'Completed ", statuses[0].title)
    assert max(float(s.evidence.params["share"]) for s in statuses) > 0.1
    assert all(float(s.evidence.params["baseline_share"]) < 0.02 for s in statuses)
    slow = [s for s in scores if near(s, spike) and s.evidence.params.get("slot") == "duration"]
    db = [s for s in slow if s.evidence.templates[0].template.startswith("Executed SELECT")]
    assert db, [s.title for s in slow]
    assert re.match(r"duration p95 \d+ms → \d\.\d\ds, p50 ", db[0].title)
    assert db[0].condition == f"params:{db[0].evidence.templates[0].template_id}:2"
    assert db[0].evidence.samples and "Executed SELECT" in db[0].evidence.samples[0]


def test_id_like_slots_are_skipped_and_categories_are_capped(tmp_path: Path) -> None:
    det = ParamsDetector(ParamsConfig(classify_after=20, max_categories=5), ctx(tmp_path))
    recs = [Record(tag="app", source="s", raw=f"r{i}", time=1000.0 + i, template_id=1,
                   template="job <*> for user_id=<*> region=<*> offset=<*> took <*>",
                   params=(f"{i:08x}-aa", str(1000 + i * 7 % 13), f"r{i % 30}", str(5000 + i), f"{i % 9 + 1}ms"))
            for i in range(200)]
    det.observe(recs)
    kinds = [(s.name, s.kind) for s in det._templates[1].slots]
    assert kinds == [("job", "skip"), ("user_id", "skip"), ("region", "skip"), ("offset", "skip"),
                     ("duration", "numeric")]
    slot = Slot("code")
    for i in range(200):
        slot.add(str(200 + i % 3) if i < 100 else str(i), "raw", 20, 5)
    slot.fold(5)
    assert slot.kind == "categorical" and len(slot.cur) <= 6 and OTHER in slot.cur


def test_numbers_with_units_and_slot_names() -> None:
    assert parse_number("12ms") == (0.012, "duration")
    assert parse_number("0.25s") == (0.25, "duration")
    assert parse_number("3.5MB") == (3.5e6, "size")
    assert parse_number("503") == (503.0, "")
    assert parse_number("10.2.3.4") is None and parse_number("abc") is None and parse_number("5 apples") is None
    assert parse_number("1e999") is None and parse_number("9" * 400 + "ms") is None and parse_number("-" + "9" * 400) is None
    assert slot_name("Completed <*> status=<*> in <*>", 1) == "status"
    assert slot_name("Executed on orders (id=<*>) rows=<*>", 0) == "id"
    assert slot_name("Evicted <*> keys", 0) == "Evicted"


def test_a_number_too_large_for_a_float_is_skipped_not_raised(tmp_path: Path) -> None:
    """A value that overflows to infinity in a numeric slot used to make every fold of that slot raise
    (OverflowError from round), so the detector failed on each batch from then on."""
    det = ParamsDetector(ParamsConfig(learn_for=Duration(0.0), classify_after=5), ctx(tmp_path))
    values = ["12034", "15020", "11003", "14500", "13200", "1e999", "9" * 400, "16100", "12000"]
    records = [Record(tag="app", source="s", raw=f"line {i}", time=1000.0 + i, template_id=1,
                      template="took <*>", params=(v,)) for i, v in enumerate(values)]
    det.observe(records)
    slot = det._templates[1].slots[0]
    slot.fold(det.config.max_categories)  # what closing the bucket does first
    assert slot.kind == "numeric" and slot.cur_n == len(values) - 2
    det.observe([Record(tag="app", source="s", raw="later", time=1200.0, template_id=1, template="took <*>",
                        params=("12500",))])  # the next bucket: the old one closes without an error
    assert slot.base_n == 0.0 and dict(slot.counts) == {"12500": 1}  # the first bucket was partial: not learned


def test_baseline_survives_restart(tmp_path: Path, two_incidents) -> None:  # type: ignore[no-untyped-def]
    records, labels = two_incidents
    burst = labels[0]
    before = [r for r in records if r.event_time < burst.start - 120]
    det = ParamsDetector(ParamsConfig(learn_for=Duration(900)), ctx(tmp_path))
    feed(det, before)
    det.close()
    assert (tmp_path / "detector.params.0" / STATE_FILE).exists()
    again = ParamsDetector(ParamsConfig(learn_for=Duration(900)), ctx(tmp_path))
    assert again.stats()["slots_numeric"] > 5
    scores = feed(again, [r for r in records if burst.start - 120 <= r.event_time < burst.end + 60])
    assert any(s.evidence.params.get("category") == "503" for s in scores)


def test_through_the_parse_stage(tmp_path: Path) -> None:
    out = io.StringIO()
    labels = generate(GeneratorConfig(seed=3, duration_s=1200, rate=12, incidents=["latency_spike"],
                                      warmup_fraction=0.6), out)
    records: list[Record] = []
    for line in out.getvalue().splitlines():
        if line.startswith("\t") and records:
            records[-1].raw += "\n" + line
        else:
            records.append(Record(tag="app", source="shop.log", raw=line))
    ParseStage.from_section(default_section(GENERATOR_FORMAT), Registry.default()).process(records)
    det = ParamsDetector(ParamsConfig(learn_for=Duration(600), min_count=8, min_baseline=80), ctx(tmp_path))
    scores = feed(det, records)
    (spike,) = labels
    assert [s.title for s in scores if not near(s, spike)] == []
    assert any("duration p95" in s.title and "Executed" in s.title for s in scores), [s.title for s in scores]
    assert Registry.default().get(Kind.DETECTOR, "params") is ParamsDetector


def test_folded_counts_are_what_counting_each_value_on_arrival_gives() -> None:
    values = [f"{(i * 7919) % 5000 + 1}ms" for i in range(3 * FOLD_AT)]  # more distinct values than FOLD_AT
    slot = Slot("took")
    slot.kind, slot.unit = "numeric", "duration"
    for i, v in enumerate([*values, "n/a"]):
        slot.add(v, f"line {i}", 50, 20)
    slot.fold(20)
    bins = [str(to_bin(parse_number(v)[0], "duration")) for v in values]  # type: ignore[index]
    first: dict[str, str] = {}
    for i, b in enumerate(bins):
        first.setdefault(b, f"line {i}")
    assert (slot.cur, slot.cur_n, slot.sample_raw) == (dict(Counter(bins)), len(values), first)

    cat = Slot("region")
    cat.kind, cat.base = "categorical", {"eu": 5.0}
    for i, v in enumerate(["us", "eu", "ap", "sa", "us", "af"]):
        cat.add(v, f"line {i}", 50, 3)
    cat.fold(3)
    assert cat.cur == {"us": 2, "eu": 1, "ap": 1, OTHER: 2} and cat.sample_raw[OTHER] == "line 3"


def _fold_by_hand(values: list[str], unit: str) -> tuple[dict[str, int], int, dict[str, str]]:
    """What a numeric fold must give, value by value: `parse_number` and `to_bin`, bins in first-seen order."""
    cur: dict[str, int] = {}
    first: dict[str, str] = {}
    for i, v in enumerate(values):
        num = parse_number(v)
        if num is not None:
            b = str(to_bin(num[0], unit))
            cur[b] = cur.get(b, 0) + 1
            first.setdefault(b, f"line {i}")
    return cur, sum(cur.values()), first


_SHAPES: dict[str, Callable[[random.Random], str]] = {
    "int": lambda r: str(r.randrange(1, 10**r.randint(1, 9))),
    "decimal": lambda r: f"{r.random() * 10**r.randint(0, 6):.{r.randint(1, 3)}f}",
    "negative": lambda r: str(-r.randrange(0, 5000)),
    "exponent": lambda r: f"{r.randint(1, 9)}e{r.randint(-3, 12)}",
    "ms": lambda r: f"{r.randrange(0, 90000)}ms",
    "seconds": lambda r: f"{r.random() * 30:.2f}s",
    "mb": lambda r: f"{r.randrange(1, 4096)}MB",
    "percent": lambda r: f"{r.randrange(0, 100)}%",
    "spaced": lambda r: f"{r.randrange(1, 999)} ms",
    "odd": lambda r: r.choice(["", "n/a", "1e999", "12.", ".5ms", "1.2.3ms", "1_000", "٣٤", "5²", "0x1f", "-", "ms"]),
}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shapes=st.lists(st.sampled_from(sorted(_SHAPES)), min_size=1, max_size=3),
       odd_share=st.sampled_from([0.0, 0.0, 0.001, 0.2]), n=st.sampled_from([300, 2 * FOLD_AT + 7]),
       unit=st.sampled_from(["", "duration", "size", "percent"]))
def test_a_fold_of_many_values_bins_them_as_parse_number_and_to_bin_do(
        seed: int, shapes: list[str], odd_share: float, n: int, unit: str) -> None:
    """Many distinct values fold in C-level passes (one shape: all end in a digit, or all carry one unit);
    any other mix goes value by value. Either way the bins, totals and first lines are what parsing and
    binning each value on arrival gives — for every shape a slot meets, and the odd ones it must skip."""
    r = random.Random(seed)
    values = [_SHAPES["odd" if r.random() < odd_share else r.choice(shapes)](r) for _ in range(n)]
    slot = Slot("x")
    slot.kind, slot.unit = "numeric", unit
    for i, v in enumerate(values):
        slot.add(v, f"line {i}", 50, 20)
    slot.fold(20)
    cur, cur_n, first = _fold_by_hand(values, unit)
    assert (list(slot.cur.items()), slot.cur_n, slot.sample_raw) == (list(cur.items()), cur_n, first)
    assert slot.counts == {} and slot.firsts == {}


def _state(det: ParamsDetector) -> dict[int, list[tuple[object, ...]]]:
    """Every slot's learning state, with the open bucket folded (one by one leaves raw values unfolded)."""
    for t in det._templates.values():
        for s in t.slots:
            s.fold(det.config.max_categories)
    return {tid: [(s.kind, s.unit, s.cur, s.cur_n, s.sample_raw, s.base, s.base_n, s.counts, s.firsts)
                  for s in t.slots] for tid, t in det._templates.items()}


def test_counting_in_batches_is_counting_one_by_one(tmp_path: Path, two_incidents) -> None:  # type: ignore[no-untyped-def]
    """The batch path (per template, C-level counting) against one record per call (the per-record path):
    the same baselines, open-bucket counts, first lines and scores, including batches across buckets."""
    records, _labels = two_incidents
    records = records[: len(records) // 2 + 4000]  # warm-up plus the start of the incidents: enough to fire
    config = ParamsConfig(learn_for=Duration(600.0))
    one = ParamsDetector(config, ctx(tmp_path / "one"))
    many = ParamsDetector(config, ctx(tmp_path / "many"))
    scores_one = [(s.key, s.start, round(s.score, 9)) for s in feed(one, records, batch=1)]
    scores_many = [(s.key, s.start, round(s.score, 9)) for s in feed(many, records, batch=700)]
    assert scores_one == scores_many
    one.close()
    many.close()
    assert _state(one) == _state(many)
    assert one.counters == many.counters and one.stats() == many.stats()


def _raw_state(det: ParamsDetector) -> dict[int, tuple[object, ...]]:
    """Everything a slot holds, open bucket unfolded: the raw counts and first lines must match too."""
    return {tid: (t.text, t.n, [(s.kind, s.unit, s.name, list(s.counts.items()), s.firsts, s.cur, s.cur_n,
                                 s.sample_raw, s.sample, s.base, s.base_n) for s in t.slots])
            for tid, t in det._templates.items()}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), distinct=st.sampled_from([40, 900, 20_000]),
       classify_after=st.integers(5, 60), max_templates=st.integers(2, 8), batch=st.integers(32, 3000),
       sample_after=st.sampled_from([0, 80, 2000]))
def test_runs_count_exactly_as_one_by_one(tmp_path_factory: pytest.TempPathFactory, seed: int, distinct: int,
                                          classify_after: int, max_templates: int, batch: int,
                                          sample_after: int) -> None:
    """Random runs — unparsed lines (-1), templates Drain generalises mid-run, numeric and categorical slots,
    many distinct values, slots still classifying, templates sampled past `sample_after` — leave the run
    path (`_count` over a run inside the open bucket) and the record-by-record path in the same state after
    every run. Whether a slot folded mid-bucket depends on the draw (a slot of distinct values may classify
    as an id and be skipped), so it is only reported here; the test below pins a run that does fold."""
    folded = _runs_against_one_by_one(tmp_path_factory.mktemp("eq"), seed, distinct, classify_after,
                                      max_templates, batch, sample_after=sample_after)
    event(f"folded mid-bucket: {folded}")


def test_runs_that_fold_mid_bucket_count_exactly_as_one_by_one(tmp_path: Path) -> None:
    """A draw where the latency slot classifies numeric and passes FOLD_AT distinct values inside one bucket
    (every record counted: sampled, the bucket would not see that many distinct values)."""
    assert _runs_against_one_by_one(tmp_path, seed=2, distinct=20_000, classify_after=60, max_templates=8,
                                    batch=500, n=14_000, sample_every=1)


def _runs_against_one_by_one(base: Path, seed: int, distinct: int, classify_after: int, max_templates: int,
                             batch: int, n: int = 8000, sample_after: int = 2000, sample_every: int = 8) -> bool:
    """Feed one random stream both ways, comparing after every run; returns whether a slot folded
    mid-bucket (FOLD_AT distinct values) and kept counting."""
    rng = random.Random(seed)
    texts = {tid: [f"op{tid} took <*> status=<*> v{k}" for k in range(2)] for tid in range(10)}
    records: list[Record] = []
    t = 1000.0
    for i in range(n):
        tid = rng.choice([-1, *range(10)]) if i and rng.random() < 0.5 else 0  # 0 first: always tracked
        t += rng.random() * 0.02
        latency = f"{rng.randrange(distinct)}ms" if rng.random() > 0.01 else "n/a"
        params = (latency, rng.choice(["200", "200", "404", "503"]), str(rng.randrange(3)))[: 1 + tid % 3]
        text = texts[tid][1 if i > 5000 and tid % 2 else 0] if tid >= 0 else ""
        records.append(Record(tag="app", source="s", raw=f"line {i}", time=round(t, 3), template_id=tid,
                              template=text, params=params if tid >= 0 else ()))
    config = ParamsConfig(learn_for=Duration(60.0), classify_after=classify_after, max_templates=max_templates,
                          min_count=5, min_baseline=20, sample_after=sample_after, sample_every=sample_every)
    runs = ParamsDetector(config, ctx(base / "runs"))
    each = ParamsDetector(config, ctx(base / "each"))
    scores_runs: list[Score] = []
    scores_each: list[Score] = []
    folded = False
    for lo in range(0, len(records), batch):
        chunk = records[lo:lo + batch]
        scores_runs += runs.observe(chunk)
        for r in chunk:
            scores_each += each.observe([r])
        assert _raw_state(runs) == _raw_state(each)
        folded = folded or any(s.cur_n and s.counts for tpl in runs._templates.values() for s in tpl.slots)
        scores_runs += runs.tick(chunk[-1].event_time)
        scores_each += each.tick(chunk[-1].event_time)
    assert [(s.key, s.start, s.score, s.title) for s in scores_runs] == \
        [(s.key, s.start, s.score, s.title) for s in scores_each]
    assert _raw_state(runs) == _raw_state(each) and runs.counters == each.counters
    return folded


def _one_template(n: int, status: Callable[[int], str], start: float = 1020.0) -> list[Record]:
    """`n` records of one template over 50 s of one bucket: a latency that cycles over 1..400 ms and a status."""
    return [Record(tag="app", source="s", raw=f"line {i}", time=start + 50.0 * i / n, template_id=7,
                   template="GET /x took <*> status=<*>", params=(f"{1 + (i * 7919) % 400}ms", status(i)))
            for i in range(n)]


def _bucket(det: ParamsDetector) -> list[Slot]:
    slots = det._templates[7].slots
    for s in slots:
        s.fold(det.config.max_categories)
    return slots


def test_past_sample_after_counted_records_stand_for_the_ones_passed_over(tmp_path: Path) -> None:
    """40,000 records of one template in one bucket, sampled past 1,000: every record is accounted for in the
    slot totals (up to the last gap), only about one in eight past the threshold is counted, and the share
    and the quantiles are those of counting all — also where a status repeats with the sampler's mean
    period (every 8th record a 503: a fixed stride would see it always or never)."""
    n = 40_000
    records = _one_template(n, lambda i: "503" if i % 8 == 3 else "200")
    cfg = {"learn_for": Duration(0.0), "classify_after": 50}
    sampled = ParamsDetector(ParamsConfig(**cfg, sample_after=1000, sample_every=8), ctx(tmp_path / "s"))
    exact = ParamsDetector(ParamsConfig(**cfg, sample_every=1), ctx(tmp_path / "e"))
    feed(sampled, records, batch=500)
    feed(exact, records, batch=500)
    (lat_s, status_s), (lat_e, status_e) = _bucket(sampled), _bucket(exact)
    assert (lat_s.kind, status_s.kind) == ("numeric", "categorical")
    assert exact.counters.sampled_out == 0 and status_e.cur_n == n
    passed = sampled.counters.sampled_out
    assert 0.8 * (n - 1000) * 7 / 8 < passed < 1.2 * (n - 1000) * 7 / 8
    assert n - 2 * 8 < status_s.cur_n <= n + 2 * 8 and n - 2 * 8 < lat_s.cur_n <= n + 2 * 8
    assert status_e.cur["503"] / n == 0.125
    assert abs(status_s.cur["503"] / status_s.cur_n - 0.125) < 0.01
    binned_s = {int(b): float(c) for b, c in lat_s.cur.items()}
    binned_e = {int(b): float(c) for b, c in lat_e.cur.items()}
    for q in (0.5, 0.95):
        assert abs(quantile(binned_s, q) - quantile(binned_e, q)) <= 1  # within one bin (12%)
    assert sampled.stats()["sampled_out"] == passed and sampled.counters.records == n


def test_a_share_shift_fires_the_same_when_sampled(tmp_path: Path) -> None:
    """A learned bucket of 0.5% 503s (the first, partial one only starts the clock), then one of 14%: sampled
    and exact counting fire the same alert with shares within a point; the next bucket starts counting one
    by one again."""
    def normal(i: int) -> str:
        return "503" if i % 200 == 7 else "200"

    learn = _one_template(30_000, normal) + _one_template(30_000, normal, start=1080.0)
    shift = _one_template(30_000, lambda i: "503" if i % 50 < 7 else "200", start=1140.0)
    after = _one_template(10, lambda i: "200", start=1200.0)
    fired = []
    for name, every in (("sampled", 8), ("exact", 1)):
        det = ParamsDetector(ParamsConfig(learn_for=Duration(120.0), min_baseline=200, sample_after=1000,
                                          sample_every=every), ctx(tmp_path / name))
        scores = feed(det, learn + shift + after, batch=500)
        (score,) = scores
        assert score.condition == "params:7:1" and score.evidence.params["category"] == "503"
        fired.append(float(score.evidence.params["share"]))
        assert det._templates[7].counted == len(after) and det._templates[7].skip == 0
    assert fired[1] == 0.14 and abs(fired[0] - fired[1]) < 0.01


def _bucket_by_hand(records: list[Record], kinds: dict[tuple[int, int], tuple[str, str]], gaps: list[int],
                    classify_after: int, sample_after: int, max_categories: int) -> dict[tuple[int, int], object]:
    """One bucket counted the way the detector's docs say, record by record in plain dicts: a template's
    first `classify_after` records classify its slots (their values count with the classifying record as
    first line), past `sample_after` a counted record weighs the next gap of the detector's table and stands
    for the records of its template it passes over; then each slot folds in first-seen order."""
    counted: Counter[int] = Counter()
    skip: Counter[int] = Counter()
    values: dict[tuple[int, int], dict[str, list[object]]] = {}  # value -> [weight, first line]
    gap_at = 0
    for r in records:
        tid = r.template_id
        if skip[tid]:
            skip[tid] -= 1
            continue
        counted[tid] += 1
        w = 1
        if counted[tid] > sample_after:
            w, gap_at = gaps[gap_at], gap_at + 1
            skip[tid] = w - 1
        for i, v in enumerate(r.params):
            seen = values.setdefault((tid, i), {})
            if counted[tid] < classify_after:
                continue  # still classifying: counted when the classify_after-th record comes
            if counted[tid] == classify_after:
                for earlier in records:
                    if earlier.template_id == tid:
                        seen.setdefault(earlier.params[i], [0, r.raw])[0] += 1  # type: ignore[operator]
                        if earlier is r:
                            break
                continue
            seen.setdefault(v, [0, r.raw])[0] += w  # type: ignore[operator]
    out: dict[tuple[int, int], object] = {}
    for key, seen in values.items():
        kind, unit = kinds[key]
        cur: dict[str, int] = {}
        first: dict[str, str] = {}
        for v, (n, line) in seen.items():
            if kind == "numeric":
                num = parse_number(v)
                if num is None:
                    continue
                b = str(to_bin(num[0], unit))
            else:
                b = v if v in cur or len(cur) - (OTHER in cur) < max_categories else OTHER
            cur[b] = cur.get(b, 0) + int(n)  # type: ignore[call-overload]
            first.setdefault(b, str(line))
        out[key] = (list(cur.items()), sum(cur.values()), first)
    return out


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 3000), sample_after=st.sampled_from([40, 900, 10**9]))
def test_a_bucket_counts_what_counting_record_by_record_by_hand_gives(seed: int, batch: int, sample_after: int) -> None:
    """What a bucket holds is what the plain record-by-record count of the docs gives, whatever the batches:
    weights of sampled records, first lines, categories capped in first-seen order, FOLD_AT folds of a slot
    of many distinct values, values counted while a slot classifies."""
    r = random.Random(seed)
    records = []
    for i in range(9000):
        tid = r.choice([1, 1, 1, 2, 3])
        params = (f"{r.randrange(1, 5000) if tid == 1 else r.randrange(1, 40)}ms", r.choice("abcdefghij"[:3 + tid]),
                  str(r.randrange(1, 10**6)))[:tid + 1]
        records.append(Record(tag="app", source="s", raw=f"line {i}", time=1020.0 + i / 1000, template_id=tid,
                              template=f"t{tid}" + " <*>" * len(params), params=params))
    config = ParamsConfig(learn_for=Duration(0.0), classify_after=30, max_categories=4, sample_after=sample_after)
    with tempfile.TemporaryDirectory() as tmp:
        det = ParamsDetector(config, ctx(Path(tmp)))
        for lo in range(0, len(records), batch):
            det.observe(records[lo:lo + batch])
    kinds = {(tid, i): (s.kind, s.unit) for tid, t in det._templates.items() for i, s in enumerate(t.slots)}
    assert ("numeric", "duration") in kinds.values() and ("categorical", "") in kinds.values()
    got = {}
    for tid, t in det._templates.items():
        for i, s in enumerate(t.slots):
            s.fold(config.max_categories)
            if s.kind != "skip":
                got[(tid, i)] = (list(s.cur.items()), s.cur_n, s.sample_raw)
    want = _bucket_by_hand(records, kinds, det._gaps, config.classify_after, sample_after, config.max_categories)
    assert got == {k: v for k, v in want.items() if kinds[k][0] != "skip"}


@pytest.mark.parametrize("halflife", [0.0, 30.0])
def test_a_halflife_shorter_than_a_bucket_is_refused(halflife: float) -> None:
    """A halflife of 0 silently meant "never forget" (the decay was skipped) and one shorter than a bucket
    forgets the baseline before the next bucket is compared with it: neither is what the user asked for."""
    with pytest.raises(ValueError, match="halflife"):
        ParamsConfig(bucket=Duration(60.0), halflife=Duration(halflife))
    assert ParamsConfig(bucket=Duration(60.0), halflife=Duration(60.0)).halflife.seconds == 60.0


@pytest.mark.parametrize(("k", "n", "p"), [(2, 25, 0.001), (5, 25, 0.001), (30, 100, 0.1), (15, 20, 0.2), (3, 3, 0.5)])
def test_the_share_surprise_is_the_exact_binomial_tail(k: int, n: int, p: float) -> None:
    from statistics import NormalDist

    tail = sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))
    assert binomial_z(k, n, p) == pytest.approx(-NormalDist().inv_cdf(tail), rel=1e-9)


def test_the_share_surprise_beyond_a_float_still_grows_with_the_evidence() -> None:
    assert math.isfinite(binomial_z(300, 300, 0.01)) and 40 < binomial_z(300, 300, 0.01) < binomial_z(600, 600, 0.01)
    assert binomial_z(1, 100, 0.5) == 0.0 and binomial_z(1, 10, 0.0) == math.inf


def test_two_rare_statuses_in_a_quiet_bucket_do_not_page_but_a_real_share_shift_does(tmp_path: Path) -> None:
    """503 learned at 0.1%: 2 of a bucket's 25 requests is 8% — the normal approximation called it z = 12.5
    and paged, though a quiet template shows it once in 3,400 buckets; 8 of 25 is an outage."""
    learn = [r for b in range(40) for r in _one_template(100, lambda i, b=b: "503" if (100 * b + i) % 1000 == 7
                                                            else "200", start=1020.0 + 60.0 * b)]
    end = 1020.0 + 60.0 * 40
    two = _one_template(25, lambda i: "503" if i in (3, 17) else "200", start=end)
    eight = _one_template(25, lambda i: "503" if i % 3 == 0 and i < 24 else "200", start=end + 60.0)
    after = _one_template(1, lambda i: "200", start=end + 120.0)
    det = ParamsDetector(ParamsConfig(learn_for=Duration(600.0)), ctx(tmp_path))
    scores = feed(det, learn + two + eight + after, batch=100)
    (score,) = scores
    assert score.start == end + 60.0 and score.evidence.params["category"] == "503"
    assert score.evidence.params["count"] == "8"


def test_records_sampled_out_are_never_cut(tmp_path: Path) -> None:
    """Past `sample_after`, the records a busy template's slots pass over never have their params cut: the
    parse stage defers the cut (`Record.params`), and most lines' params are never read."""
    det = ParamsDetector(ParamsConfig(learn_for=Duration(0.0), sample_after=50, sample_every=8), ctx(tmp_path))
    cuts = 0

    def cut(message: str) -> tuple[str, ...]:
        nonlocal cuts
        cuts += 1
        return (message.split()[1],)

    records = []
    for i in range(2000):
        text = f"took {i % 40 + 10}ms"
        rec = Record(tag="app", source="s", raw=text, time=1000.0 + i * 0.01, template_id=1, template="took <*>",
                     message=text)
        rec._params = cut
        records.append(rec)
    feed(det, records)
    assert 50 + 1950 / 16 < cuts < 50 + 1950 / 4  # about one in eight past the first 50, not all 2,000
    assert det.counters.records == 2000
