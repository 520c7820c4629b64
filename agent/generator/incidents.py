"""Incidents: when each one happens and how it bends the sessions that arrive while it is active.

Incident windows never overlap and start after a warm-up fraction of the log, so a detector has normal
traffic to learn from first. A label is built from the lines the incident actually produced or changed (the
engine marks each such line), and its start/end are widened to cover those lines, so "every labelled line
lies inside its incident, and outside the incidents no incident line appears" holds exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from agent.generator.services import LOGIN_FAIL_P, NOVEL_ERRORS, Mods, Session, Traffic

INCIDENT_TYPES: tuple[str, ...] = ("error_burst", "new_template", "broken_sequence", "frequency_shift", "latency_spike")

_DB_KINDS = ("order_read", "order_create", "job")
_FAIL_P = 0.8
_NOVEL_P = 0.5
_BREAK_P = 0.2
_SPIKE_P = 0.9
_SHIFT_FACTOR = 10.0
_LOGIN_SHARE = 0.12  # share of login sessions in the mix (services._KINDS)


@dataclass(slots=True)
class IncidentLabel:
    """One injected incident: its type, time span (epoch seconds) and the exact lines and sessions it touched."""

    type: str
    start: float
    end: float
    lines: list[int] = field(default_factory=list)
    """1-based physical line numbers in the log (stack-trace continuation lines included)."""
    sessions: list[str] = field(default_factory=list)
    """Request ids (`req=<id>`) of the sessions the incident produced or changed, in order of first line."""
    detail: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "start": round(self.start, 3), "end": round(self.end, 3),
                "lines": self.lines, "sessions": self.sessions, "detail": self.detail}


@dataclass(slots=True)
class IncidentWindow:
    type: str
    start: float
    end: float
    index: int
    template: str = ""
    injected: int = 0


def parse_incidents(spec: str) -> list[str]:
    """`all` (or empty), `none`, or a comma list of INCIDENT_TYPES; ValueError names an unknown type."""
    spec = spec.strip()
    if spec in ("", "all"):
        return list(INCIDENT_TYPES)
    if spec == "none":
        return []
    out: list[str] = []
    for item in spec.split(","):
        name = item.strip()
        if name not in INCIDENT_TYPES:
            raise ValueError(f"unknown incident type {name!r}; choose from {', '.join(INCIDENT_TYPES)}, all or none")
        if name not in out:
            out.append(name)
    return out


def plan(types: list[str], start: float, duration_s: float, warmup_fraction: float,
         incident_s: float) -> list[IncidentWindow]:
    """Spread the incidents over equal slots after the warm-up; each sits in the middle half of its slot."""
    if not types:
        return []
    first = start + duration_s * warmup_fraction
    slot = (start + duration_s - first) / len(types)
    length = min(incident_s, slot * 0.5)
    return [
        IncidentWindow(t, first + i * slot + (slot - length) / 2, first + i * slot + (slot + length) / 2, i)
        for i, t in enumerate(types)
    ]


class Injector:
    """Decides, per arriving session, whether an active incident bends it and how."""

    def __init__(self, windows: list[IncidentWindow], rng: random.Random, traffic: Traffic) -> None:
        self.windows = windows
        self.rng = rng
        self.traffic = traffic
        self._pos = 0
        for w in windows:
            if w.type == "new_template":
                text = rng.choice(NOVEL_ERRORS)
                w.template = text
        # Replacing this share of arrivals with failed logins makes that template ~10x as frequent.
        base = _LOGIN_SHARE * LOGIN_FAIL_P
        self._shift_p = (_SHIFT_FACTOR - 1) * base / (1 - base)

    def active(self, t: float) -> IncidentWindow | None:
        while self._pos < len(self.windows) and self.windows[self._pos].end <= t:
            self._pos += 1
        if self._pos < len(self.windows) and self.windows[self._pos].start <= t:
            return self.windows[self._pos]
        return None

    def session(self, t0: float) -> Session:
        kind = self.traffic.pick_kind()
        w = self.active(t0)
        if w is None:
            return self.traffic.session(t0, kind, Mods())
        mods = Mods(incident=w.index)
        rng = self.rng
        if w.type == "frequency_shift":
            if rng.random() < self._shift_p:
                w.injected += 1
                return self.traffic.login_failure(t0, w.index)
        elif w.type == "error_burst":
            mods.fail_db = kind in ("order_read", "order_create") and rng.random() < _FAIL_P
        elif w.type == "latency_spike":
            mods.slow_db = kind in _DB_KINDS and rng.random() < _SPIKE_P
        elif w.type == "new_template":
            if kind == "order_create" and (w.injected == 0 or rng.random() < _NOVEL_P):
                w.injected += 1
                mods.novel = _fill_novel(w.template, rng)
        elif w.type == "broken_sequence" and kind in ("order_read", "order_create", "search") and (
            w.injected == 0 or rng.random() < _BREAK_P
        ):
            modes = ["missing_auth", "auth_after_backend", "done_before_backend"]
            if kind == "order_read":
                modes.append("missing_cache")
            w.injected += 1
            mods.break_mode = rng.choice(modes)
        return self.traffic.session(t0, kind, mods)


def _fill_novel(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randrange(5, 12), host=f"acq-{rng.randrange(1, 9)}.bank.example",
                           hex=f"{rng.getrandbits(64):016x}")
