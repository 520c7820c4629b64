"""The alert router: turns anomalous scores into deduplicated, explained notifications, durably.

Dedup: a condition is identified by its fingerprint, a stable hash of (detector, stream, condition or title,
source). While a condition is open its repeats only update the open alert (count, last_seen, score,
evidence); a new notification goes out when the severity rises or `cooldown` has passed since the last
one (a reminder). A condition not seen for `resolve_after` is resolved by `tick`, and the outputs that
support it (`supports_resolve`) get a resolved notification.

Grouping: notifications from one window (same stream, key and bounds) share a group id; outputs that set
`group_by_window` (Slack) receive a group as one `deliver` call, so one window is one message.

Rate limits: a global token bucket and one per output bound *new* notifications; a limited alert stays
open (its repeats still count) and is notified by a later repeat once tokens are back. Resolutions and
Alertmanager re-sends are never limited: dropping them would leave receivers with stale state.

Durability: `submit` spools notifications and the dedup state in one SQLite transaction before it
returns; delivery threads (agent/alerting/delivery.py) only read from the spool. An output may declare
class attributes the router reads: `supports_resolve`, `group_by_window`, `max_batch`, `min_interval_s`
and `resend_interval_s` (Alertmanager expects firing alerts again every minute or so).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import fnmatch
import hashlib
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from agent.alerting.config import AlertsConfig
from agent.alerting.delivery import DeliveryWorker
from agent.alerting.payload import alert_from_dict, alert_to_dict
from agent.alerting.ratelimit import TokenBucket
from agent.alerting.spool import Notification, Spool
from agent.clock import Clock, SystemClock
from agent.plugin import Output
from agent.types import Alert, AlertStatus, Evidence, Score

log = structlog.get_logger("logwarden.alerting.router")

MAX_TITLE = 200
MAX_SUMMARY = 2000
MAX_SAMPLE_CHARS = 1000
MAX_PARAMS = 20


def fingerprint(score: Score) -> str:
    """Stable across processes and versions: sha256 of the identifying fields, never Python's hash()."""
    ident = "\x1f".join((score.detector, score.stream, score.condition or score.title, score.source))
    return hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()[:16]


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """Replace lone surrogates (a JSON log line's `\\ud800` decodes to one) with U+FFFD.

    UTF-8 cannot encode them, so one would make the spool write raise on every retry of the batch (the
    pipeline then stops committing that input's offsets) and every output's request body fail.
    """
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def trim_evidence(ev: Evidence, max_templates: int, max_samples: int) -> Evidence:
    return Evidence(
        templates=[dataclasses.replace(t, template=clean(t.template[:MAX_SAMPLE_CHARS]))
                   for t in ev.templates[:max_templates]],
        samples=[clean(s[:MAX_SAMPLE_CHARS]) for s in ev.samples[:max_samples]],
        params={clean(k[:100]): clean(v[:200]) for k, v in list(ev.params.items())[:MAX_PARAMS]},
    )


@dataclass(slots=True)
class _Open:
    alert: Alert
    tag: str
    seen_at: float
    """Wall time of the last repeat (resolve_after counts from here)."""
    notified_at: float | None
    outputs: list[str]
    """Outputs that were sent the firing alert: the resolution goes to them."""
    resent_at: dict[str, float] = field(default_factory=dict)

    def saved(self) -> _Open:
        """A copy to roll back to: `submit` reassigns the alert's fields and the lists, and only adds to
        `resent_at`, so copying those is enough (a deep copy cost ~6% of a replay's CPU)."""
        return replace(self, alert=replace(self.alert), outputs=list(self.outputs), resent_at=dict(self.resent_at))

    def to_doc(self) -> dict[str, Any]:
        return {"alert": alert_to_dict(self.alert), "tag": self.tag, "seen_at": self.seen_at,
                "notified_at": self.notified_at, "outputs": self.outputs}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> _Open:
        return cls(alert_from_dict(doc["alert"]), str(doc["tag"]), float(doc["seen_at"]),
                   None if doc["notified_at"] is None else float(doc["notified_at"]), list(doc["outputs"]))


@dataclass(slots=True)
class RouterStats:
    submitted: int = 0
    alerts_opened: int = 0
    alerts_forgotten: int = 0
    deduplicated: int = 0
    notifications: int = 0
    reminders: int = 0
    escalations: int = 0
    resolved: int = 0
    resends: int = 0
    rate_limited: int = 0
    output_rate_limited: int = 0


@dataclass(slots=True)
class _Route:
    instance: str
    match: str
    output: Output
    bucket: TokenBucket
    worker: DeliveryWorker

    @property
    def supports_resolve(self) -> bool:
        return bool(getattr(self.output, "supports_resolve", False))

    @property
    def resend_interval_s(self) -> float | None:
        value = getattr(self.output, "resend_interval_s", None)
        return float(value) if value else None


class AlertRouter:
    def __init__(
        self,
        config: AlertsConfig,
        outputs: Sequence[tuple[str, str, Output]],
        spool_path: Path,
        host: str,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self.clock: Clock = clock or SystemClock()
        self.spool = Spool(spool_path, max_pending=config.max_pending, max_dead_letters=config.max_dead_letters)
        self.stats_ = RouterStats()
        self._lock = threading.Lock()
        self._global = TokenBucket(config.max_per_minute, self.clock)
        self._routes = [
            _Route(inst, match, out, TokenBucket(config.output_max_per_minute, self.clock),
                   DeliveryWorker(inst, out, self.spool, config.retry))
            for inst, match, out in outputs
        ]
        self._recent: collections.deque[Alert] = collections.deque(maxlen=1000)
        self._open: dict[str, _Open] = {}
        known = {r.instance for r in self._routes}
        for fp, doc in self.spool.load_open().items():
            try:
                entry = _Open.from_doc(doc)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("open_alert_unreadable", fingerprint=fp, error=str(exc))
                continue
            entry.outputs = [o for o in entry.outputs if o in known]
            self._open[fp] = entry
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start one delivery thread per output; each begins with what the spool still holds."""
        if self._started:
            return
        self._started = True
        for r in self._routes:
            r.worker.start()
        pending = self.spool.pending()
        if pending:
            log.info("spool_resumed", pending=pending, open_alerts=len(self._open))

    def close(self, timeout: float) -> None:
        """Stop delivery threads; what was not delivered stays in the spool for the next start."""
        for r in self._routes:
            r.worker.stop()
        deadline = self.clock.monotonic() + timeout
        for r in self._routes:
            if self._started and not r.worker.join(max(0.0, deadline - self.clock.monotonic())):
                log.warning("delivery_thread_still_running", output=r.instance)
        self.spool.close()

    # -- scores in ----------------------------------------------------------------------------------

    def _matching(self, tag: str) -> list[_Route]:
        return [r for r in self._routes if fnmatch.fnmatchcase(tag, r.match)]

    def _new_alert(self, s: Score, fp: str, tag: str) -> Alert:
        labels = {"stream": clean(s.stream), "window": clean(s.key)}
        if tag:
            labels["tag"] = clean(tag)
        return Alert(
            fingerprint=fp,
            status=AlertStatus.FIRING,
            severity=s.severity,
            title=clean((s.title or f"{s.detector} anomaly on {s.stream}")[:MAX_TITLE]),
            summary=clean((s.summary or f"score {s.score:.3g} over threshold {s.threshold:.3g}")[:MAX_SUMMARY]),
            evidence=trim_evidence(s.evidence, self.config.max_templates, self.config.max_samples),
            host=clean(self.host),
            source=clean(s.source),
            detector=clean(s.detector),
            score=float(s.score),
            threshold=float(s.threshold),
            first_seen=s.start,
            last_seen=s.end,
            labels=labels,
        )

    def submit(self, scores: Sequence[Score], tag: str = "") -> list[Alert]:
        """Fold anomalous scores into open alerts; spool the notifications they cause before returning.

        Raises sqlite3.Error when the spool cannot be written (disk full): the caller must then not commit
        the offsets of the records behind these scores.
        """
        anomalies = [s for s in scores if s.is_anomaly]
        if not anomalies:
            return []
        now = self.clock.time()
        with self._lock:
            self.stats_.submitted += len(anomalies)
            notes: list[Notification] = []
            upserts: dict[str, dict[str, Any]] = {}
            before: dict[str, _Open | None] = {}
            for s in anomalies:
                fp = fingerprint(s)
                entry = self._open.get(fp)
                if fp not in before:
                    before[fp] = None if entry is None else entry.saved()
                notify = False
                if entry is None:
                    entry = _Open(self._new_alert(s, fp, tag), tag, now, None, [])
                    self._open[fp] = entry
                    self.stats_.alerts_opened += 1
                    notify = True
                else:
                    a = entry.alert
                    a.count += 1
                    a.last_seen = max(a.last_seen, s.end)
                    a.score = float(s.score)
                    a.threshold = float(s.threshold)
                    a.evidence = trim_evidence(s.evidence, self.config.max_templates, self.config.max_samples)
                    entry.seen_at = now
                    if s.severity.rank > a.severity.rank:
                        a.severity = s.severity
                        a.title = clean((s.title or a.title)[:MAX_TITLE])
                        a.summary = clean((s.summary or a.summary)[:MAX_SUMMARY])
                        notify = True
                        self.stats_.escalations += 1
                    elif entry.notified_at is None or now - entry.notified_at >= self.config.cooldown.seconds:
                        notify = True
                        self.stats_.reminders += entry.notified_at is not None
                    else:
                        self.stats_.deduplicated += 1
                if notify:
                    note = self._notification(entry, s)
                    if note is not None:
                        notes.append(note)
                upserts[fp] = entry.to_doc()
            shed = self._shed()
            for fp in shed:
                upserts.pop(fp, None)
            try:
                created = self.spool.commit(notes, now, open_upserts=upserts, open_deletes=list(shed))
            except BaseException:
                # Nothing was spooled: put the dedup state back so the caller's retry is not deduplicated.
                self._open.update(shed)
                for fp, old in before.items():
                    if old is None:
                        self._open.pop(fp, None)
                    else:
                        self._open[fp] = old
                raise
            for a in created:
                self._recent.append(a)
            for n in notes:
                if n.alert.id and n.alert.fingerprint in self._open:
                    self._open[n.alert.fingerprint].alert.id = n.alert.id
            self.stats_.notifications += len(created)
        self._wake(notes)
        return created

    def _shed(self) -> dict[str, _Open]:
        """Forget open alerts beyond `max_open`, oldest first, those never notified (held back by the rate
        limits) before those an output has seen; returns them so the spool drops them too (or, should the
        spool write fail, they are put back). A forgotten condition that repeats opens a new alert."""
        excess = len(self._open) - self.config.max_open
        if excess <= 0:
            return {}
        order = list(self._open)
        drop = [fp for fp in order if self._open[fp].notified_at is None][:excess]
        if len(drop) < excess:
            chosen = set(drop)
            drop += [fp for fp in order if fp not in chosen][:excess - len(drop)]
        shed = {fp: self._open.pop(fp) for fp in drop}
        total = self.stats_.alerts_forgotten = self.stats_.alerts_forgotten + len(shed)
        if (total - len(shed)).bit_length() != total.bit_length():  # at 1, 2, 4, 8, ... in all
            log.warning("open_alerts_forgotten", forgotten=total, max_open=self.config.max_open)
        return shed

    def _notification(self, entry: _Open, s: Score) -> Notification | None:
        """Apply the rate limits; None when the global limit holds this notification back."""
        routes = self._matching(entry.tag)
        if not routes:
            return None
        if not self._global.take():
            self.stats_.rate_limited += 1
            if self.stats_.rate_limited & (self.stats_.rate_limited - 1) == 0:
                log.warning("alerts_rate_limited", limited=self.stats_.rate_limited,
                            max_per_minute=self.config.max_per_minute)
            return None
        targets = []
        for r in routes:
            if r.bucket.take():
                targets.append(r.instance)
            else:
                self.stats_.output_rate_limited += 1
        if not targets:
            return None
        entry.notified_at = self.clock.time()
        entry.outputs = sorted(set(entry.outputs) | set(targets))
        for inst in targets:
            entry.resent_at[inst] = entry.notified_at
        grp = hashlib.sha1(f"{s.stream}\x1f{s.key}\x1f{s.start}\x1f{s.end}".encode("utf-8", "surrogatepass"),
                           usedforsecurity=False)
        return Notification(copy.deepcopy(entry.alert), grp.hexdigest()[:16], targets)

    def _wake(self, notes: Sequence[Notification]) -> None:
        outs = {o for n in notes for o in n.outputs}
        for r in self._routes:
            if r.instance in outs:
                r.worker.wake()

    # -- timers -------------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Resolve conditions that cleared and re-send firing alerts to outputs that expect it."""
        with self._lock:
            notes: list[Notification] = []
            deletes: list[str] = []
            routes = {r.instance: r for r in self._routes}
            for fp, entry in list(self._open.items()):
                if now - entry.seen_at >= self.config.resolve_after.seconds:
                    del self._open[fp]
                    deletes.append(fp)
                    targets = [o for o in entry.outputs if o in routes and routes[o].supports_resolve]
                    if targets:
                        resolved = copy.deepcopy(entry.alert)
                        resolved.status = AlertStatus.RESOLVED
                        notes.append(Notification(resolved, f"resolve-{fp}", targets))
                        self.stats_.resolved += 1
                    continue
                for inst in entry.outputs:
                    r = routes.get(inst)
                    interval = r.resend_interval_s if r is not None else None
                    if r is None or interval is None:
                        continue
                    if now - entry.resent_at.get(inst, entry.notified_at or now) < interval:
                        continue
                    if self.spool.pending(inst):
                        continue  # what is still queued carries the alert; piling up re-sends helps no one
                    entry.resent_at[inst] = now
                    notes.append(Notification(copy.deepcopy(entry.alert), f"resend-{fp}", [inst]))
                    self.stats_.resends += 1
            if notes or deletes:
                created = self.spool.commit(notes, now, open_deletes=deletes)
                for a in created:
                    if a.status is AlertStatus.RESOLVED:
                        self._recent.append(a)
        self._wake(notes)

    # -- introspection ------------------------------------------------------------------------------

    def recent(self, limit: int = 100) -> list[Alert]:
        with self._lock:
            items = list(self._recent)[-limit:]
        return [copy.deepcopy(a) for a in reversed(items)]

    def open_alerts(self) -> list[Alert]:
        with self._lock:
            return [copy.deepcopy(e.alert) for e in self._open.values()]

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = {k: float(v) for k, v in dataclasses.asdict(self.stats_).items()}
        out["open"] = float(len(self._open))
        out["pending"] = float(self.spool.pending())
        out["spool_dropped"] = float(self.spool.dropped_full)
        totals = {"sent": 0.0, "retried": 0.0, "dead_lettered": 0.0, "rejected": 0.0, "requests": 0.0,
                  "delivery_latency_seconds_sum": 0.0, "delivery_latency_seconds_max": 0.0}
        for r in self._routes:
            st = r.worker.stats
            per = {"sent": st.sent, "retried": st.retried, "dead_lettered": st.dead_lettered,
                   "rejected": st.rejected, "requests": st.requests, "delivery_latency_seconds_sum": st.latency_sum_s}
            for k, v in per.items():
                totals[k] += v
                out[f"{r.instance}.{k}"] = float(v)
            totals["delivery_latency_seconds_max"] = max(totals["delivery_latency_seconds_max"], st.latency_max_s)
            out[f"{r.instance}.pending"] = float(self.spool.pending(r.instance))
        out.update(totals)
        out["delivery_latency_seconds_count"] = totals["sent"]
        return out

    def healthy(self) -> bool:
        """False once any output has failed continuously for `unhealthy_after`."""
        limit = self.config.unhealthy_after.seconds
        now = time.monotonic()  # the delivery threads' clock
        return all(r.worker.stats.failing_since is None or now - r.worker.stats.failing_since < limit
                   for r in self._routes)
