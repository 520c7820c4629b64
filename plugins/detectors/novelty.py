"""Novelty detector: a log template never seen before, at WARN level or above.

It needs no model and works from the first minute: every template id the parser assigns is remembered;
a record whose template is new and whose level is at least `min_level` is an anomaly. The first
`learn_for` of event time after a fresh start (no saved state) only learns — a host's existing templates
are not news — and the set of known templates is saved under the instance's state directory, so a
restart does not re-announce them. The Score's `condition` is the template id, so repeats of one new
template fold into one alert in the router.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import structlog

from agent.errors import StateError
from agent.plugin import PluginContext
from agent.schema import Duration, opt
from agent.state import read_json_state, set_aside, write_json_atomic
from agent.types import Evidence, Record, Score, Severity, TemplateEvidence, template_ids

log = structlog.get_logger("logwarden.detector.novelty")

STATE_FILE = "templates.json"
STATE_KIND = "novelty_templates"
_LEVEL_RANK = {
    "WARN": 1, "WARNING": 1, "W": 1,
    "ERROR": 2, "ERR": 2, "E": 2, "SEVERE": 2,
    "FATAL": 3, "CRITICAL": 3, "CRIT": 3, "F": 3, "EMERG": 3, "EMERGENCY": 3, "ALERT": 3, "PANIC": 3,
}
_MIN_RANK = {"warn": 1, "error": 2, "fatal": 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class NoveltyConfig:
    min_level: Literal["warn", "error", "fatal"] = opt("warn", doc="Lowest level at which a new template is reported.")
    learn_for: Duration = opt(
        Duration(60.0),
        doc="After a fresh start (no saved templates), templates seen during this much event time are learned "
        "silently.",
    )
    max_templates: int = opt(200_000, ge=1, doc="Known template ids remembered; beyond it new ids are not stored.")
    save_interval: Duration = opt(Duration(30.0), doc="How often the known templates are saved when they changed.")


@dataclass(slots=True)
class NoveltyStats:
    records: int = 0
    new_templates: int = 0
    anomalies: int = 0
    learned_in_grace: int = 0


class NoveltyDetector:
    name: ClassVar[str] = "novelty"
    reads_fields: ClassVar[bool] = False
    config_class: ClassVar[type[NoveltyConfig]] = NoveltyConfig

    def __init__(self, config: NoveltyConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        self.counters = NoveltyStats()
        self._min_rank = _MIN_RANK[config.min_level]
        self._path = ctx.plugin_state_dir() / STATE_FILE
        self._known: set[int] = set()
        self._grace_until: float | None = None  # event time; None = not started yet
        self._learning = True
        self._dirty = False
        self._last_save = ctx.clock.monotonic()
        self._load()

    def _load(self) -> None:
        if not self._path.exists():
            return
        try:
            doc = read_json_state(self._path, STATE_KIND, {1})
            self._known = {int(t) for t in doc.get("templates", [])}
        except (StateError, TypeError, ValueError) as exc:
            log.warning("state_refused", path=str(self._path), reason=str(exc))
            set_aside(self._path)
            return
        self._learning = False

    def _save(self) -> None:
        write_json_atomic(self._path, STATE_KIND, 1, {"templates": sorted(self._known)})
        self._dirty = False
        self._last_save = self.ctx.clock.monotonic()

    def stats(self) -> dict[str, float]:
        return {
            "records": float(self.counters.records),
            "new_templates": float(self.counters.new_templates),
            "anomalies": float(self.counters.anomalies),
            "known_templates": float(len(self._known)),
        }

    def observe(self, records: Sequence[Record]) -> list[Score]:
        known = self._known
        tids = template_ids(records)
        if known.issuperset(tids):  # the usual batch, every template known (no -1 is ever known): C-level
            self.counters.records += len(tids)
            return []
        out: list[Score] = []
        for record in records:
            tid = record.template_id
            if tid < 0:
                continue
            self.counters.records += 1
            if tid in known:
                continue
            t = record.event_time
            if self._learning:
                if self._grace_until is None:
                    self._grace_until = t + self.config.learn_for.seconds
                if t < self._grace_until:
                    self._remember(tid)
                    self.counters.learned_in_grace += 1
                    continue
                self._learning = False
            self._remember(tid)
            self.counters.new_templates += 1
            rank = _LEVEL_RANK.get((record.level or "").upper(), 0)
            if rank >= self._min_rank:
                self.counters.anomalies += 1
                out.append(self._score(record, rank))
        return out

    def _remember(self, tid: int) -> None:
        if len(self._known) < self.config.max_templates:
            self._known.add(tid)
            self._dirty = True

    def _score(self, record: Record, rank: int) -> Score:
        t = record.event_time
        template = record.template or record.message
        level = (record.level or "").upper()
        return Score(
            detector=self.name,
            stream=record.tag,
            key=str(record.template_id),
            start=t,
            end=t,
            score=1.0,
            threshold=0.5,
            is_anomaly=True,
            title=f"New {level} message: {template[:120]}",
            summary=f"A log template never seen before appeared at level {level} in {record.source}.",
            severity=Severity.CRITICAL if rank >= 3 else Severity.WARNING,
            evidence=Evidence(
                templates=[TemplateEvidence(record.template_id, template, 1.0, 0.0, 1.0)],
                samples=[record.raw],
                params={f"p{i}": p for i, p in enumerate(record.params)},
            ),
            source=record.source,
            condition=f"template:{record.template_id}",
        )

    def tick(self, now: float) -> list[Score]:
        if self._dirty and self.ctx.clock.monotonic() - self._last_save >= self.config.save_interval.seconds:
            self._save()
        return []

    def close(self) -> list[Score]:
        if self._dirty:
            self._save()
        return []
