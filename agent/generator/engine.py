"""The event loop: Poisson arrivals of sessions, their lines merged in time order, labels collected.

Sessions are built whole when they arrive and their lines are pushed on a heap; a line is written once no
later arrival can precede it, so memory holds only the sessions in flight (the generator streams millions
of lines). Time is virtual — `start + arrivals` — so the same seed gives byte-identical output; in follow
mode the same schedule is anchored at the wall clock and each line is written when its time comes.
"""

from __future__ import annotations

import calendar
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from agent.clock import Clock
from agent.generator.incidents import INCIDENT_TYPES, IncidentLabel, Injector, plan
from agent.generator.services import Event, Mods, Traffic

GENERATOR_FORMAT = "<Date> <Level> <Component> <Request> <Content>"
"""The logparser-style format of generated lines (`<Request>` is the `req=<12 hex>` token)."""
SESSION_KEY_REGEX = r"req=([0-9a-f]{12})"
"""Extracts the request id that ties the lines of one session together."""
MULTILINE_START = r"^\d{4}-\d{2}-\d{2}T"
"""A record starts with a timestamp; stack-trace lines start with a tab and continue the record above."""
DEFAULT_START = float(calendar.timegm((2026, 11, 28, 12, 0, 0)))


@dataclass(slots=True)
class GeneratorConfig:
    seed: int = 1
    duration_s: float = 600.0
    rate: float = 50.0
    """Lines per second of log time (approximate: sessions arrive as a Poisson process)."""
    start: float = DEFAULT_START
    incidents: list[str] = field(default_factory=lambda: list(INCIDENT_TYPES))
    warmup_fraction: float = 0.3
    incident_s: float = 60.0
    """Longest span of one incident; shorter when the slots after the warm-up are small."""

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise ValueError("duration_s must be positive")
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError("warmup_fraction must be in [0, 1)")
        unknown = [t for t in self.incidents if t not in INCIDENT_TYPES]
        if unknown:
            raise ValueError(f"unknown incident types: {', '.join(unknown)}")


class _Stamp:
    """ISO-8601 UTC with milliseconds; the second-resolution prefix is cached (strftime is the slow part)."""

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def __call__(self, ms: int) -> str:
        sec = ms // 1000
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._prefix}.{ms % 1000:03d}Z"


def _mean_lines(seed: int) -> float:
    """Lines per session of normal traffic, estimated on a private stream so the main one is untouched."""
    traffic = Traffic(random.Random(seed ^ 0x5EED))
    total = 0
    n = 3000
    for _ in range(n):
        s = traffic.session(0.0, traffic.pick_kind(), Mods())
        total += sum(1 + len(e.cont) for e in s.events)
    return total / n


def generate(config: GeneratorConfig, out: TextIO, *, follow: Clock | None = None,
             sleep: Callable[[float], None] = time.sleep,
             observe: Callable[[str, Event], None] | None = None) -> list[IncidentLabel]:
    """Write the log to `out`; return one label per incident (in schedule order).

    With `follow`, timestamps start at `follow.time()` and each line is written (and flushed) only once
    that clock reaches its time, sleeping with `sleep` in between. `observe(request_id, event)` sees every
    record as it is written (how `generate_sessions` gets event keys without re-parsing lines).
    """
    rng = random.Random(config.seed)
    start = follow.time() if follow is not None else config.start
    end = start + config.duration_s
    traffic = Traffic(rng)
    windows = plan(config.incidents, start, config.duration_s, config.warmup_fraction, config.incident_s)
    injector = Injector(windows, random.Random(config.seed + 7919), traffic)
    labels = [IncidentLabel(w.type, w.start, w.end) for w in windows]
    seen_sessions: list[set[str]] = [set() for _ in windows]
    arrivals_per_s = config.rate / _mean_lines(config.seed)
    stamp = _Stamp()
    heap: list[tuple[float, int, str, Event]] = []
    seq = 0
    line_no = 0
    t_next = start + rng.expovariate(arrivals_per_s)
    while True:
        horizon = t_next if t_next < end else float("inf")
        while heap and heap[0][0] <= horizon:
            t, _, rid, ev = heapq.heappop(heap)
            if follow is not None:
                wait = t - follow.time()
                if wait > 0:
                    out.flush()
                    sleep(wait)
            ms = round(t * 1000)
            out.write(f"{stamp(ms)} {ev.level:<5} {ev.service} req={rid} {ev.text}\n")
            for c in ev.cont:
                out.write(c)
                out.write("\n")
            if observe is not None:
                observe(rid, ev)
            first = line_no + 1
            line_no += 1 + len(ev.cont)
            if ev.incident >= 0:
                label = labels[ev.incident]
                label.lines.extend(range(first, line_no + 1))
                label.start = min(label.start, ms / 1000)
                label.end = max(label.end, ms / 1000)
                if rid not in seen_sessions[ev.incident]:
                    seen_sessions[ev.incident].add(rid)
                    label.sessions.append(rid)
        if horizon == float("inf"):
            break
        session = injector.session(t_next)
        for ev in session.events:
            heapq.heappush(heap, (ev.t, seq, session.rid, ev))
            seq += 1
        t_next += rng.expovariate(arrivals_per_s)
    out.flush()
    for w, label in zip(windows, labels, strict=True):
        label.detail = _detail(w.type, w.template, label)
    return labels


def _detail(kind: str, template: str, label: IncidentLabel) -> dict[str, object]:
    if kind == "error_burst":
        return {"service": "order-service", "event": "db.pool_error", "status": 503}
    if kind == "new_template":
        return {"service": "payment-service", "template": template.replace("{n}", "<*>").replace(
            "{host}", "<*>").replace("{hex}", "<*>")}
    if kind == "frequency_shift":
        return {"service": "auth-service", "event": "auth.login_fail", "factor": 10}
    if kind == "latency_spike":
        return {"service": "order-service", "event": "db.*", "slot": "duration"}
    return {"sessions": len(label.sessions)}
