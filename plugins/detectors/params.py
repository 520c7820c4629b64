"""Params detector: the values inside a template — a latency, an HTTP status, a queue depth — against what
they normally are. A latency spike or a rise in 5xx codes changes no template, only its parameters.

Per (template, slot) a distribution is learned (see `paramslots`): numeric slots on a log-scale histogram,
categorical ones as shares; identifier-like slots are skipped. Each closed event-time bucket is compared
with the baseline: numeric — the bucket's median and p95 against the baseline's, in robust standard
deviations of the log-value and as a ratio; categorical — the category whose share grew most, as an exact
binomial tail probability (shown as a z) and an absolute change. Baselines decay with `halflife`, learn
anomalous buckets only at a tenth of the weight (an incident must not become normal at once), and are saved
atomically so a restart keeps them.
Templates, slots and categories are capped, so memory stays bounded on any input.

Only anomalies are returned; `condition` is `params:<template id>:<slot>` so repeats fold into one alert.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import structlog

from agent.errors import StateError
from agent.plugin import PluginContext
from agent.schema import Duration, opt
from agent.state import read_json_state, set_aside, write_json_atomic
from agent.types import Evidence, Record, Score, Severity, TemplateEvidence, event_times
from plugins.detectors.paramslots import BIN, FOLD_AT, Slot, binomial_z, from_bin, quantile, show, slot_name, spread
from plugins.detectors.timebuckets import BucketClock, SaveThrottle

log = structlog.get_logger("logwarden.detector.params")

STATE_FILE = "params.json"
STATE_KIND = "params_baseline"
_ANOMALY_WEIGHT = 0.1
_MIN_SPREAD_BINS = 1.0  # 0.05 decades: a near-constant slot is not judged by a spread it never had
_SPAN_MIN = 32
"""Runs shorter than this go record by record: halving them further costs more than it saves."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamsConfig:
    bucket: Duration = opt(
        Duration(60.0), ge=1.0, doc="Length of one bucket (at least 1s); each slot's values in a closed bucket are scored."
    )
    learn_for: Duration = opt(
        Duration(1800.0), doc="After a fresh start (no saved baseline), buckets of this much event time only teach."
    )
    min_count: int = opt(20, ge=1, doc="Values a slot needs in one bucket before that bucket is scored.")
    min_baseline: int = opt(200, ge=1, doc="Values a slot's baseline needs before it can fire.")
    numeric_threshold: float = opt(
        3.0, ge=0.5, doc="Shift of a numeric slot's median or p95, in robust standard deviations of its log-value."
    )
    min_ratio: float = opt(2.0, ge=1.0, doc="A numeric median or p95 must also change by at least this factor.")
    share_threshold: float = opt(
        6.0, ge=1.0, doc="How unlikely a category's count in a bucket must be at its learned share to fire, as a "
        "standard normal z (the exact binomial tail: 6 is about one bucket in a billion)."
    )
    min_share_delta: float = opt(0.05, ge=0.0, le=1.0, doc="A category's share must also grow by at least this much.")
    classify_after: int = opt(50, ge=5, doc="Values seen before a slot is classed numeric, categorical or id-like.")
    max_templates: int = opt(500, ge=1, doc="Templates tracked at most; later ones are ignored.")
    max_slots: int = opt(16, ge=1, doc="Slots tracked per template at most (the first ones).")
    max_categories: int = opt(20, ge=2, doc="Categories per slot at most; more fold into <other>.")
    sample_after: int = opt(
        2000, ge=0, doc="Records of one template counted one by one in a bucket; past that, about one in "
        "`sample_every` is counted, weighted by the records it stands for."
    )
    sample_every: int = opt(
        8, ge=1, doc="Mean gap between counted records of a template past `sample_after` (1 counts every record)."
    )
    halflife: Duration = opt(
        Duration(6 * 3600.0), doc="Age at which a value's weight in the baseline has halved (at least one bucket)."
    )
    delay: Duration = opt(Duration(5.0), doc="Lateness allowed before a bucket whose time is up is closed.")
    max_gap: Duration = opt(Duration(600.0), doc="Longest stretch of buckets closed after a jump in time.")
    save_interval: Duration = opt(Duration(60.0), doc="How often the baselines are saved when they changed.")

    def __post_init__(self) -> None:
        # A halflife of 0 used to skip the decay (never forget), the opposite of what it says; one shorter
        # than a bucket forgets the baseline before the next bucket is compared with it.
        if self.halflife.seconds < self.bucket.seconds:
            raise ValueError(f"halflife ({self.halflife}) must be at least one bucket ({self.bucket})")


@dataclass(slots=True)
class ParamsStats:
    records: int = 0
    anomalies: int = 0
    templates_dropped: int = 0
    sampled_out: int = 0
    """Records past `sample_after` that another counted record stood for."""


_GAPS = 4096
"""Length of the detector's table of random gaps between counted records (cycled)."""


class _Template:
    """A tracked template and its slot plan: which params are counted inline, which still classify."""

    __slots__ = ("active", "counted", "n", "pending", "skip", "slots", "tag", "text")

    def __init__(self, text: str, tag: str, slots: list[Slot]) -> None:
        self.text, self.tag, self.slots = text, tag, slots
        self.n = len(slots)
        self.counted = 0
        """Records counted in the open bucket."""
        self.skip = 0
        """Records still to pass over: the last counted one stood for them."""
        self.active: list[tuple[int, dict[str, int], dict[str, str], Slot]] = []
        self.pending: list[tuple[int, Slot]] = []
        self.plan()

    def plan(self) -> None:
        """Skipped (id-like) slots cost nothing per record; classified ones are a dict increment."""
        self.active = [(i, s.counts, s.firsts, s) for i, s in enumerate(self.slots) if s.kind in ("numeric", "categorical")]
        self.pending = [(i, s) for i, s in enumerate(self.slots) if s.kind == "pending"]


class ParamsDetector:
    name: ClassVar[str] = "params"
    reads_fields: ClassVar[bool] = False
    config_class: ClassVar[type[ParamsConfig]] = ParamsConfig

    def __init__(self, config: ParamsConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        self.counters = ParamsStats()
        self._path = ctx.plugin_state_dir() / STATE_FILE
        self._templates: dict[int, _Template] = {}
        self._learn_until: float | None = None
        self._partial: int | None = None
        self._pending: list[Score] = []
        self._saver = SaveThrottle(ctx.clock, config.save_interval.seconds, self._save)
        self._decay = 0.5 ** (config.bucket.seconds / config.halflife.seconds) if config.halflife.seconds > 0 else 1.0
        self._clock = BucketClock(config.bucket.seconds, config.delay.seconds, config.max_gap.seconds, self._close)
        rng = random.Random(config.sample_every)  # fixed: two runs over one log count the same records
        self._gaps = [rng.randint(1, 2 * config.sample_every - 1) for _ in range(_GAPS)]
        """Random gaps (mean `sample_every`): a fixed stride could beat with a periodic pattern in the log
        (round-robin backends) and always count the same one."""
        self._gap_at = 0
        self._load()

    # -- the detector protocol ---------------------------------------------------------------------

    def observe(self, records: Sequence[Record]) -> list[Score]:
        if records:
            times = event_times(records)
            if math.isfinite(sum(times)):
                self._observe_span(records, times, 0, len(records))
            else:
                self._observe_each(records)
        return self._take()

    def _observe_span(self, records: Sequence[Record], times: list[float], lo: int, hi: int) -> None:
        """Records [lo, hi): when they all fall in the open bucket (a batch spans a second or two, a bucket
        a minute) they are counted without a clock check each, else halved; short runs go one by one."""
        clock = self._clock
        if hi - lo < _SPAN_MIN or clock.current is None or self._learn_until is None:
            self._observe_each(records[lo:hi])
            return
        span = times[lo:hi] if lo or hi != len(times) else times
        size = clock.size_s
        if int(min(span) // size) == int(max(span) // size) == clock.current:
            self.counters.records += self._count(records[lo:hi] if lo or hi != len(records) else records)
            return
        mid = (lo + hi) // 2
        self._observe_span(records, times, lo, mid)
        self._observe_span(records, times, mid, hi)

    def _observe_each(self, records: Sequence[Record]) -> None:
        """Record by record, moving the bucket clock where a record's time says so."""
        cfg = self.config
        clock = self._clock
        size = clock.size_s
        for r in records:
            if r.template_id < 0:
                continue
            t = r.time
            if t is None:
                t = r.read_time
            if clock.current is None:
                clock.place(t)
                self._partial = clock.current
            elif int(t // size) != clock.current:
                clock.place(t)
            if self._learn_until is None:
                self._learn_until = t + cfg.learn_for.seconds
            self.counters.records += self._count((r,))

    def _count(self, records: Sequence[Record]) -> int:
        """Count records of the open bucket (classified slots inline, pending ones via `Slot.add`); returns
        how many had a template.

        Past `sample_after` records of a template in one bucket, a counted record stands for itself and the next
        gap-1 records of its template, which are passed over (StatsD's sample rates: the count is scaled, not
        lost). At that volume an eighth of the values puts a share within a point and a quantile within one bin
        of what counting all gives (the tests' 40,000 records), and counting every slot of every record was the
        costliest per-line work of the detectors (about 3 µs a line, a sixth of the daemon's CPU at 20k lines/s,
        where most lines fall in a few templates). Why not sample sooner: the share test scores weighted counts
        as if each were a record, and a 5-point shift must stay several standard errors of the sample — at 2,000
        counted it is about 4.5 or more for any share (0.05 ÷ √(0.25/2000)); at 500 a 50/50 slot could fluctuate
        past it a few times an hour."""
        cfg = self.config
        templates = self._templates
        max_slots, classify_after, max_categories = cfg.max_slots, cfg.classify_after, cfg.max_categories
        sample_after = cfg.sample_after if cfg.sample_every > 1 else -1
        gaps, gap_at, mask = self._gaps, self._gap_at, _GAPS - 1
        passed = 0
        seen = 0
        for r in records:
            tid = r.template_id
            if tid < 0:
                continue
            seen += 1
            tpl = templates.get(tid)
            if tpl is not None and tpl.skip and tpl.text == r.template:
                # Sampled out before its params are read: a line's params are cut only when read (Record).
                tpl.skip -= 1
                passed += 1
                continue
            # What Record.params does, inline: the property's call on every counted record was 3% of a
            # replay's instructions (a replay's buckets hold too few lines of a template to sample).
            params = r._params
            if not isinstance(params, tuple):
                params = r._params = params(r.message)
            if not params:
                continue
            n = len(params)
            if tpl is None or tpl.n != (n if n < max_slots else max_slots) or tpl.text != r.template:
                tpl = self._track(r)
                if tpl is None:
                    continue
            if tpl.skip:
                tpl.skip -= 1
                passed += 1
                continue
            w = 1
            k = tpl.counted = tpl.counted + 1
            if k > sample_after >= 0:
                w = gaps[gap_at]
                gap_at = (gap_at + 1) & mask
                tpl.skip = w - 1
            for i, counts, firsts, slot in tpl.active:
                value = params[i]
                c = counts.get(value)
                if c is None:
                    counts[value] = w
                    firsts[value] = r.raw
                    if len(counts) >= FOLD_AT:
                        slot.fold(max_categories)
                else:
                    counts[value] = c + w
            if tpl.pending:
                for i, slot in tpl.pending:
                    slot.add(params[i], r.raw, classify_after, max_categories)
                if any(slot.kind != "pending" for _i, slot in tpl.pending):
                    tpl.plan()
        self._gap_at = gap_at
        self.counters.sampled_out += passed
        return seen

    def tick(self, now: float) -> list[Score]:
        self._clock.tick(now)
        self._saver.maybe_save()
        return self._take()

    def close(self) -> list[Score]:
        """Save; the open bucket is partial (a stop or the end of a replay), so it is not scored."""
        self._saver.flush()
        return self._take()

    def stats(self) -> dict[str, float]:
        slots = [s for t in self._templates.values() for s in t.slots]
        c = self._clock.counters
        return {
            "records": float(self.counters.records),
            "anomalies": float(self.counters.anomalies),
            "sampled_out": float(self.counters.sampled_out),
            "templates": float(len(self._templates)),
            "slots_numeric": float(sum(s.kind == "numeric" for s in slots)),
            "slots_categorical": float(sum(s.kind == "categorical" for s in slots)),
            "slots_skipped": float(sum(s.kind == "skip" for s in slots)),
            "buckets_closed": float(c.closed),
            "late_records": float(c.late_records),
        }

    # -- tracking and buckets ------------------------------------------------------------------------

    def _track(self, r: Record) -> _Template | None:
        """Start (or, when Drain generalised the template, restart) the slots of a template."""
        if r.template_id not in self._templates and len(self._templates) >= self.config.max_templates:
            self.counters.templates_dropped += 1
            return None
        n = min(len(r.params), self.config.max_slots)
        tpl = _Template(r.template, r.tag, [Slot(slot_name(r.template, i)) for i in range(n)])
        self._templates[r.template_id] = tpl
        return tpl

    def _take(self) -> list[Score]:
        out, self._pending = self._pending, []
        return out

    def _close(self, index: int) -> None:
        start = self._clock.start_of(index)
        end = start + self.config.bucket.seconds
        skip = index == self._partial
        alerting = self._learn_until is not None and start >= self._learn_until and not skip
        for tid, tpl in self._templates.items():
            tpl.counted = tpl.skip = 0
            for i, slot in enumerate(tpl.slots):
                if slot.kind in ("pending", "skip"):
                    continue
                slot.fold(self.config.max_categories)
                score = None
                if alerting and slot.cur_n >= self.config.min_count and slot.base_n >= self.config.min_baseline:
                    score = self._judge(tid, tpl, i, slot, start, end)
                if score is not None:
                    self._pending.append(score)
                if not skip:
                    slot.learn(_ANOMALY_WEIGHT if score is not None else 1.0, self._decay)
                slot.reset_bucket()
        self._saver.changed()

    def _judge(self, tid: int, tpl: _Template, i: int, slot: Slot, start: float, end: float) -> Score | None:
        if slot.kind == "numeric":
            return self._judge_numeric(tid, tpl, i, slot, start, end)
        return self._judge_share(tid, tpl, i, slot, start, end)

    def _judge_numeric(self, tid: int, tpl: _Template, i: int, slot: Slot, start: float, end: float) -> Score | None:
        base = {int(k): v for k, v in slot.base.items()}
        cur = {int(k): float(v) for k, v in slot.cur.items()}
        b50, b95 = quantile(base, 0.5), quantile(base, 0.95)
        c50, c95 = quantile(cur, 0.5), quantile(cur, 0.95)
        sd = max(spread(base, b50), _MIN_SPREAD_BINS)
        min_bins = math.log10(self.config.min_ratio) / BIN
        shifts = [(c - b) for b, c in ((b50, c50), (b95, c95)) if abs(c - b) >= min_bins]
        if not shifts:
            return None
        z = max(abs(s) for s in shifts) / sd
        if z < self.config.numeric_threshold:
            return None
        u = slot.unit
        p50 = f"p50 {show(from_bin(b50, u), u)} → {show(from_bin(c50, u), u)}"
        p95 = f"p95 {show(from_bin(b95, u), u)} → {show(from_bin(c95, u), u)}"
        shift = f"{slot.name} {p95}, {p50}"
        worst = str(max(cur)) if max(shifts) > 0 else str(min(cur))
        return self._score(tid, tpl, i, slot, start, end, z, self.config.numeric_threshold, shift,
                           from_bin(c95, u), from_bin(b95, u), worst,
                           {"p50": show(from_bin(c50, u), u), "p95": show(from_bin(c95, u), u),
                            "baseline_p50": show(from_bin(b50, u), u), "baseline_p95": show(from_bin(b95, u), u)})

    def _judge_share(self, tid: int, tpl: _Template, i: int, slot: Slot, start: float, end: float) -> Score | None:
        n = slot.cur_n
        total = slot.base_n
        smooth = 0.5
        best: tuple[float, str, float, float] | None = None
        for cat, k in slot.cur.items():
            p = (slot.base.get(cat, 0.0) + smooth) / (total + smooth * (len(slot.base) + 1))
            share = k / n
            if share - p < self.config.min_share_delta:
                continue
            z = binomial_z(k, n, p)
            if z >= self.config.share_threshold and (best is None or z > best[0]):
                best = (z, cat, p, share)
        if best is None:
            return None
        z, cat, p, share = best
        shift = f"{slot.name}: {cat} share {p:.1%} → {share:.1%}"
        return self._score(tid, tpl, i, slot, start, end, z, self.config.share_threshold, shift, share, p, cat,
                           {"category": cat, "share": f"{share:.4f}", "baseline_share": f"{p:.4f}",
                            "count": str(slot.cur.get(cat, 0)), "values": str(n)})

    def _score(self, tid: int, tpl: _Template, i: int, slot: Slot, start: float, end: float, z: float,
               threshold: float, shift: str, observed: float, expected: float, sample_key: str,
               params: dict[str, str]) -> Score:
        self.counters.anomalies += 1
        text = tpl.text if len(tpl.text) <= 100 else tpl.text[:99] + "…"
        sample = slot.sample_raw.get(sample_key)
        return Score(
            detector=self.name, stream=tpl.tag, key=f"{tid}:{i}", start=start, end=end, score=z,
            threshold=threshold, is_anomaly=True, title=f"{shift} in '{text}'",
            summary=f"Parameter {i} ({slot.name}) of template {tid} shifted: {shift} over {self.config.bucket}.",
            severity=Severity.CRITICAL if z >= 3 * threshold else Severity.WARNING,
            evidence=Evidence(templates=[TemplateEvidence(tid, tpl.text, observed, expected, z)],
                              samples=[sample] if sample else [], params={"slot": slot.name, **params}),
            condition=f"params:{tid}:{i}",
        )

    # -- state ---------------------------------------------------------------------------------------

    def _save(self) -> None:
        templates = {str(tid): {"template": t.text, "tag": t.tag, "slots": [s.dump() for s in t.slots]}
                     for tid, t in self._templates.items()}
        write_json_atomic(self._path, STATE_KIND, 1, {"bucket_s": self.config.bucket.seconds,
                                                      "learn_until": self._learn_until, "templates": templates})

    def _load(self) -> None:
        if not self._path.exists():
            return
        try:
            doc = read_json_state(self._path, STATE_KIND, {1})
            if doc.get("bucket_s") != self.config.bucket.seconds:
                raise StateError(str(self._path), "saved with another bucket size")
            templates = {
                int(tid): _Template(str(body["template"]), str(body.get("tag", "")),
                                    [Slot.restore(s) for s in body["slots"]])
                for tid, body in doc["templates"].items()
            }
            learn_until = doc.get("learn_until")
        except (StateError, KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("state_refused", path=str(self._path), reason=str(exc))
            set_aside(self._path)
            return
        self._templates = templates
        self._learn_until = float(learn_until) if learn_until is not None else None
        log.info("baseline_restored", path=str(self._path), templates=len(templates))

