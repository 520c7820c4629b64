"""Volume detector: line rates per source, per component and per frequent template, against what this host
normally writes at this hour — most outages show up as silence somewhere.

Counts go into event-time buckets (`bucket`, default 60s) that a timer closes even when nothing arrived, so
an empty bucket is scored too. Each key keeps a robust running baseline — an EWMA of the count and of its
absolute deviation, updated with the observation clipped to the alerting band so an incident cannot teach
itself as normal — globally and per UTC hour of day; the hour's profile is used once it has
`profile_min_samples` buckets, the global one before. A deviation counts only as much as both the learned
spread and Poisson noise (on the variance-stabilised √ scale) allow, so a quiet key is judged neither by a
spread it never had nor by a normal approximation that makes 9-instead-of-2 look like a surge. Nothing alerts during `learn_for` after a fresh start; the
baselines are saved atomically under the instance's state directory so a restart keeps them.

Only anomalies are returned as Scores; `condition` is `volume:<key>` so repeats fold into one alert.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import structlog

from agent.errors import StateError
from agent.plugin import PluginContext
from agent.schema import Duration, opt
from agent.state import read_json_state, set_aside, write_json_atomic
from agent.types import Evidence, Record, Score, Severity, TemplateEvidence, event_times, template_ids
from plugins.detectors.timebuckets import BucketClock, SaveThrottle

log = structlog.get_logger("logwarden.detector.volume")

STATE_FILE = "volume.json"
STATE_KIND = "volume_baseline"
_ALPHA_MIN = 0.05
_MAD_TO_SD = 1.25  # mean absolute deviation → standard deviation for a normal distribution


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeConfig:
    bucket: Duration = opt(
        Duration(60.0), ge=1.0, doc="Length of one counting bucket (at least 1s); each closed bucket is scored."
    )
    learn_for: Duration = opt(
        Duration(1800.0), doc="After a fresh start (no saved baseline), buckets of this much event time only teach."
    )
    group_by: list[Literal["source", "component", "tag"]] = opt(
        ["source", "component"],
        doc="Which record fields name a stream whose rate is tracked (the file, the header's component, the tag).",
    )
    max_keys: int = opt(200, ge=1, doc="Streams (sources, components, tags) tracked at most; more are ignored.")
    max_templates: int = opt(50, ge=0, doc="Frequent templates tracked at most; 0 turns per-template rates off.")
    threshold: float = opt(4.0, ge=0.5, doc="Deviation from the expected count, in robust standard deviations, that fires.")
    min_ratio: float = opt(2.0, ge=1.0, doc="A rate must also change by at least this factor (up or down) to fire.")
    min_expected: float = opt(
        10.0, ge=0.0, doc="Expected count per bucket below which a drop or silence is not reported (too noisy)."
    )
    min_samples: int = opt(10, ge=1, doc="Buckets a stream must have been watched before it can fire.")
    profile_min_samples: int = opt(
        20, ge=1, doc="Buckets an hour-of-day profile needs before it replaces the global baseline for that hour."
    )
    delay: Duration = opt(Duration(5.0), doc="Lateness allowed before a bucket whose time is up is closed.")
    max_gap: Duration = opt(
        Duration(600.0), doc="Longest stretch of empty buckets scored after a jump in time (a restart, a hole)."
    )
    save_interval: Duration = opt(Duration(60.0), doc="How often the baselines are saved when they changed.")


@dataclass(slots=True)
class VolumeStats:
    records: int = 0
    anomalies: int = 0
    keys_dropped: int = 0


class _Baseline:
    __slots__ = ("dev", "mean", "n")

    def __init__(self, n: int = 0, mean: float = 0.0, dev: float = 0.0) -> None:
        self.n, self.mean, self.dev = n, mean, dev

    def update(self, x: float) -> None:
        self.n += 1
        if self.n == 1:
            self.mean = x
            return
        alpha = max(1.0 / self.n, _ALPHA_MIN)
        self.dev += alpha * (abs(x - self.mean) - self.dev)
        self.mean += alpha * (x - self.mean)

    def dump(self) -> list[float]:
        return [self.n, round(self.mean, 4), round(self.dev, 4)]


class _Key:
    __slots__ = ("glob", "hours", "kind", "label", "tag", "template")

    def __init__(self, kind: str, label: str, tag: str) -> None:
        self.kind = kind
        self.label = label
        self.tag = tag
        self.template = ""
        self.glob = _Baseline()
        self.hours = [_Baseline() for _ in range(24)]


class VolumeDetector:
    name: ClassVar[str] = "volume"
    reads_fields: ClassVar[bool] = False
    config_class: ClassVar[type[VolumeConfig]] = VolumeConfig

    def __init__(self, config: VolumeConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        self.counters = VolumeStats()
        self._path = ctx.plugin_state_dir() / STATE_FILE
        self._keys: dict[str, _Key] = {}
        self._raw_counts: tuple[Counter[str], Counter[str], Counter[str], Counter[int]] = (
            Counter(), Counter(), Counter(), Counter())
        self._last_raw: dict[int, Record] = {}
        """Last record of each template (evidence, and the template text and tag of a newly tracked one)."""
        self._last_record: Record | None = None
        self._learn_until: float | None = None
        self._partial: int | None = None
        """The first bucket after a start or restore holds only part of its lines: neither judged nor learned."""
        self._pending: list[Score] = []
        self._saver = SaveThrottle(ctx.clock, config.save_interval.seconds, self._save)
        self._by = tuple(config.group_by)
        self._by_source, self._by_component, self._by_tag = (f in self._by for f in ("source", "component", "tag"))
        self._clock = BucketClock(config.bucket.seconds, config.delay.seconds, config.max_gap.seconds, self._close)
        self._load()

    # -- the detector protocol ---------------------------------------------------------------------

    def observe(self, records: Sequence[Record]) -> list[Score]:
        # Hot path: count by raw value per field (no key strings per record); _close names the keys.
        clock = self._clock
        if records and clock.current is None:
            clock.place(records[0].event_time)
            self._partial = clock.current
        if records and self._in_open_bucket(records):
            self._count_batch(records)
        else:
            self._count_each(records)
        if records:
            self.counters.records += len(records)
            if self._learn_until is None:
                self._learn_until = records[0].event_time + self.config.learn_for.seconds
            last = records[-1]
            self._last_record = last
        return self._take()

    def _in_open_bucket(self, records: Sequence[Record]) -> bool:
        times = event_times(records)
        size = self._clock.size_s
        return int(min(times) // size) == int(max(times) // size) == self._clock.current

    def _count_batch(self, records: Sequence[Record]) -> None:
        """The whole batch falls in the open bucket (the usual case): count it field by field in C."""
        by_source, by_component, by_tag, by_template = self._raw_counts
        # List comprehensions: on 3.11 they cost half of map(attrgetter) a record.
        if self._by_source:
            _count_column(by_source, [r.source for r in records])
        if self._by_component:
            _count_column(by_component, [r.component for r in records])
        if self._by_tag:
            _count_column(by_tag, [r.tag for r in records])
        if self.config.max_templates > 0:
            tids = template_ids(records)
            by_template.update(tids)
            self._last_raw.update(zip(tids, records, strict=True))
            if min(tids) < 0:
                for tid in [tid for tid in by_template if tid < 0]:
                    del by_template[tid]
                    self._last_raw.pop(tid, None)

    def _count_each(self, records: Sequence[Record]) -> None:
        """Record by record, moving the bucket clock where a record's time says so."""
        by_source, by_component, by_tag, by_template = self._raw_counts
        use_source, use_component, use_tag = self._by_source, self._by_component, self._by_tag
        track_templates = self.config.max_templates > 0
        clock = self._clock
        for r in records:
            t = r.event_time
            if clock.current is None:
                clock.place(t)
                self._partial = clock.current
            elif int(t // clock.size_s) != clock.current:
                clock.place(t)
            if use_source and r.source:
                by_source[r.source] = by_source.get(r.source, 0) + 1
            if use_component and r.component:
                by_component[r.component] = by_component.get(r.component, 0) + 1
            if use_tag and r.tag:
                by_tag[r.tag] = by_tag.get(r.tag, 0) + 1
            tid = r.template_id
            if track_templates and tid >= 0:
                by_template[tid] = by_template.get(tid, 0) + 1
                self._last_raw[tid] = r

    def _named_counts(self) -> dict[str, int]:
        """The open bucket's counts under key names, emptied in place (observe() holds the dicts)."""
        out: dict[str, int] = {}
        for field, counts in zip(("source", "component", "tag"), self._raw_counts[:3], strict=True):
            for value, n in counts.items():
                out[f"{field}:{value}"] = n
            counts.clear()
        templates = self._raw_counts[3]
        for tid, n in templates.items():
            out[f"template:{tid}"] = n
        templates.clear()
        return out

    def tick(self, now: float) -> list[Score]:
        if self._clock.current is None and self._keys:
            self._clock.tick(now, start=True)
            self._partial = self._clock.current
        else:
            self._clock.tick(now)
        self._saver.maybe_save()
        return self._take()

    def close(self) -> list[Score]:
        """Save; the open bucket is partial (a stop or the end of a replay), so it is not scored."""
        self._saver.flush()
        return self._take()

    def stats(self) -> dict[str, float]:
        c = self._clock.counters
        return {
            "records": float(self.counters.records),
            "anomalies": float(self.counters.anomalies),
            "keys": float(len(self._keys)),
            "buckets_closed": float(c.closed),
            "buckets_skipped": float(c.skipped),
            "late_records": float(c.late_records),
        }

    # -- buckets -------------------------------------------------------------------------------------

    def _take(self) -> list[Score]:
        out, self._pending = self._pending, []
        return out

    def _close(self, index: int) -> None:
        start = self._clock.start_of(index)
        end = start + self.config.bucket.seconds
        hour = int(start // 3600) % 24
        alerting = self._learn_until is not None and start >= self._learn_until
        counts = self._named_counts()
        if index != self._partial:
            for name, key in self._keys.items():
                obs = counts.pop(name, 0)
                score = self._judge(name, key, obs, hour, start, end, alerting)
                if score is not None:
                    self._pending.append(score)
            if counts:
                room = _Room(self._keys)
                for name, obs in counts.items():
                    self._admit(name, obs, hour, room)
            self._saver.changed()
        # The last line of each template is only needed for tracked ones (their alerts' sample): on free text
        # every line is a template of its own, and holding each one's last record grew without bound.
        tracked = {int(k.label) for k in self._keys.values() if k.kind == "template"}
        if len(self._last_raw) > len(tracked):
            self._last_raw = {tid: r for tid, r in self._last_raw.items() if tid in tracked}

    def _expect(self, key: _Key, hour: int) -> tuple[float, float]:
        base = key.hours[hour] if key.hours[hour].n >= self.config.profile_min_samples else key.glob
        expected = base.mean
        sd = max(_MAD_TO_SD * base.dev, math.sqrt(max(expected, 1.0)))
        return expected, sd

    def _judge(self, name: str, key: _Key, obs: int, hour: int, start: float, end: float,
               alerting: bool) -> Score | None:
        cfg = self.config
        expected, sd = self._expect(key, hour)
        watched = key.glob.n >= cfg.min_samples
        z = _deviation(obs, expected, sd)
        score: Score | None = None
        if alerting and watched:
            surge = z >= cfg.threshold and obs >= expected * cfg.min_ratio and expected >= 1.0
            drop = (z <= -cfg.threshold and obs * cfg.min_ratio <= expected and expected >= cfg.min_expected)
            if surge or drop:
                score = self._score(name, key, obs, expected, sd, z, start, end)
        if watched:  # clip to the alerting band: an incident must not become the new normal at once
            band = cfg.threshold * sd
            x = min(max(obs, expected - band), expected + band)
        else:
            x = float(obs)
        key.glob.update(x)
        key.hours[hour].update(x)
        return score

    def _admit(self, name: str, obs: int, hour: int, room: _Room) -> None:
        kind, _, label = name.partition(":")
        if kind == "template":
            if room.templates >= self.config.max_templates and not self._evict_rare_template(obs, room):
                return
            room.templates += 1
        elif room.others >= self.config.max_keys:
            self.counters.keys_dropped += 1
            return
        else:
            room.others += 1
        last = self._last_raw.get(int(label)) if kind == "template" else self._last_record
        key = _Key(kind, label, last.tag if last is not None else "")
        if kind == "template" and last is not None:
            key.template = last.template
        key.glob.update(obs)
        key.hours[hour].update(obs)
        self._keys[name] = key
        if kind == "template" and room.rare is not None and key.glob.mean < room.rare[1]:
            room.rare = (name, key.glob.mean)

    def _evict_rare_template(self, obs: int, room: _Room) -> bool:
        """Make room for a template busier than the quietest tracked one (tracking is for frequent ones)."""
        if room.rare is None:
            rare = min((kv for kv in self._keys.items() if kv[1].kind == "template"), key=lambda kv: kv[1].glob.mean)
            room.rare = (rare[0], rare[1].glob.mean)
        if room.rare[1] >= min(obs, self.config.min_expected):
            return False
        del self._keys[room.rare[0]]
        room.templates -= 1
        room.rare = None  # the next quietest is found when next needed
        return True

    # -- explanation ---------------------------------------------------------------------------------

    def _score(self, name: str, key: _Key, obs: int, expected: float, sd: float, z: float,
               start: float, end: float) -> Score:
        self.counters.anomalies += 1
        bucket = str(self.config.bucket)
        who = f"template '{_short(key.template)}'" if key.kind == "template" else key.label
        if obs == 0:
            title, severity = f"{who} went silent", Severity.CRITICAL
        elif z > 0:
            title, severity = f"{who}: rate surged {obs / max(expected, 1e-9):.1f}x", Severity.WARNING
        else:
            title, severity = f"{who}: rate collapsed to {obs / max(expected, 1e-9):.0%} of normal", Severity.WARNING
        summary = f"{who}: {obs} lines in {bucket}, normally {expected:.0f} ± {sd:.0f}"
        templates: list[TemplateEvidence] = []
        if key.kind == "template":
            templates.append(TemplateEvidence(int(key.label), key.template, float(obs), expected, z))
        last = self._last_raw.get(int(key.label)) if key.kind == "template" else None
        sample = last.raw if last is not None else None
        return Score(
            detector=self.name, stream=key.tag, key=name, start=start, end=end, score=abs(z),
            threshold=self.config.threshold, is_anomaly=True, title=title, summary=summary, severity=severity,
            evidence=Evidence(templates=templates, samples=[sample] if sample else [],
                              params={"observed": str(obs), "expected": f"{expected:.1f}", "sd": f"{sd:.1f}",
                                      "bucket": bucket}),
            source=key.label if key.kind == "source" else "", condition=f"volume:{name}",
        )

    # -- state ---------------------------------------------------------------------------------------

    def _save(self) -> None:
        keys = {
            name: {"tag": k.tag, "template": k.template, "global": k.glob.dump(),
                   "hours": [h.dump() for h in k.hours]}
            for name, k in self._keys.items()
        }
        write_json_atomic(self._path, STATE_KIND, 1, {
            "bucket_s": self.config.bucket.seconds, "learn_until": self._learn_until,
            "keys": keys,
        })

    def _load(self) -> None:
        if not self._path.exists():
            return
        try:
            doc = read_json_state(self._path, STATE_KIND, {1})
            if doc.get("bucket_s") != self.config.bucket.seconds:
                raise StateError(str(self._path), "saved with another bucket size")
            keys: dict[str, _Key] = {}
            for name, body in doc["keys"].items():
                kind, _, label = str(name).partition(":")
                key = _Key(kind, label, str(body.get("tag", "")))
                key.template = str(body.get("template", ""))
                key.glob = _Baseline(*_triple(body["global"]))
                key.hours = [_Baseline(*_triple(h)) for h in body["hours"]][:24]
                if len(key.hours) != 24:
                    raise StateError(str(self._path), f"key {name}: expected 24 hourly baselines")
                keys[str(name)] = key
            learn_until = doc.get("learn_until")
        except (StateError, KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("state_refused", path=str(self._path), reason=str(exc))
            set_aside(self._path)
            return
        self._keys = keys
        self._learn_until = float(learn_until) if learn_until is not None else None
        log.info("baseline_restored", path=str(self._path), keys=len(keys))


def _deviation(obs: int, expected: float, sd: float) -> float:
    """The more conservative of two z-scores: the empirical one, and the Poisson one on the
    variance-stabilised scale 2(√obs - √expected) — the normal approximation alone makes rare templates
    (2 a minute, 9 this minute) look like surges.

    The Poisson one is widened by the key's learned over-dispersion (sd² / expected, at least 1): lines come
    in groups — each order writes two notification-worker lines, a job two scheduler lines — so their count
    varies more than a Poisson count of the same mean, and a pure Poisson floor paged a normal minute of 54
    lines where 26 ± 6 were usual about once a day per busy key (bench/soak.py). Near the mean the widened
    score is the empirical one; it only tempers large surges, and a drop scores as before (the empirical
    score is always the smaller there)."""
    z_emp = (obs - expected) / sd
    dispersion = max(1.0, sd * sd / max(expected, 1.0))
    z_poisson = 2.0 * (math.sqrt(obs) - math.sqrt(max(expected, 0.0))) / math.sqrt(dispersion)
    return z_poisson if abs(z_poisson) < abs(z_emp) else z_emp


class _Room:
    """How full the key table is while one closed bucket admits its new keys, kept as it changes: counting
    the table for every new name made a bucket of thousands of new templates (free text) quadratic."""

    __slots__ = ("others", "rare", "templates")

    def __init__(self, keys: dict[str, _Key]) -> None:
        self.templates = sum(1 for k in keys.values() if k.kind == "template")
        self.others = len(keys) - self.templates
        self.rare: tuple[str, float] | None = None
        """The quietest tracked template and its mean, once looked for (the first in table order on ties)."""


def _count_column(counts: Counter[str], values: list[str | None]) -> None:
    """Count a batch's values of one field, leaving out empty ones. A batch usually comes from one file
    (one source, one tag): one C-level `list.count` then replaces a counter update per record."""
    first = values[0]
    if values.count(first) == len(values):
        if first:
            counts[first] += len(values)
        return
    counts.update(values)  # type: ignore[arg-type]  # the None and "" keys are popped right away
    counts.pop("", None)
    counts.pop(None, None)  # type: ignore[call-overload]


def _triple(value: object) -> tuple[int, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"expected [n, mean, dev], got {value!r}")
    return int(value[0]), float(value[1]), float(value[2])


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
