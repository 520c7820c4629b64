"""Which flagged patterns keep coming back, so that a self-baselining model can learn them.

A model retrained on the windows it scored normal never learns a window it flagged: a nightly job's one
line, never seen in the first hour of learning, is novel every night and pages every night for as long as
the daemon runs. Operators expect what volume and params already do (they learn an anomalous bucket at a
tenth of the weight): what recurs is, after a while, normal.

A flagged window's *cause* is a key naming what made it novel (`ForestModel.novel_cause`: `+77` a template
never seen, `-17` a count below its range). Flagged windows of one cause within `gap` of the first of them
are one *episode* (an incident's overlapping windows, a burst); the first flagged `gap` or more after an
episode began starts the next. Once a cause has been flagged in `after` episodes, its held windows and every
later one it flags are handed back to be learned. With a 6 h gap and three episodes: a nightly job is
learned on the third night, an hourly one after 12 hours, and a line a deployment added, which keeps coming,
after 12 hours too — as does an incident that lasts that long or comes back three times hours apart: that is
the trade-off `after` and `gap` set, and `after` 0 turns learning off. A window the forest flags with every
count in range has no cause and is never learned this way.

The episode counts are saved when they change and the held windows (a few KB a cause) with them and at a
stop, so "three nights" survives a restart with the nights' windows; held windows are dropped when the
recent windows they would join were (`keep_held` false: the window spec changed).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import structlog

from agent.errors import StateError
from agent.state import read_json_state, set_aside, write_json_atomic

log = structlog.get_logger("logwarden.recurring")

STATE_KIND = "recurring_causes"
MAX_CAUSES = 256
"""Causes tracked at most; the one whose episode began longest ago makes room (a cause is a few template ids)."""
MAX_HELD = 16
"""Flagged windows held per cause until it is learned: an episode's overlapping windows (six for a 60 s
window with a 10 s step), a few episodes' worth of them."""


@dataclass(slots=True)
class _Cause:
    episodes: int = 0
    since: float = float("-inf")
    """End of the window that began the current episode."""
    held: list[str] = field(default_factory=list)
    learning: bool = False
    """Windows of it were handed back since this process started."""


class Flagged(NamedTuple):
    episodes: int
    """Separate episodes of this cause so far, this one included."""
    learn: list[str]
    """Windows to learn now: empty until the cause has recurred `after` times."""
    first: bool
    """The first windows of this cause handed back by this process: time to retrain."""


class RecurringCauses:
    """Episode counts per cause, saved to `path` when they change."""

    __slots__ = ("_causes", "_dirty", "after", "gap", "path")

    def __init__(self, path: Path, after: int, gap: float, *, keep_held: bool = True) -> None:
        self.path = path
        self.after = after
        self.gap = gap
        self._causes: dict[tuple[str, ...], _Cause] = {}
        self._dirty = False
        """Held windows changed since the last save."""
        self._load(keep_held)

    def flagged(self, cause: tuple[str, ...], end: float, window: str) -> Flagged:
        """Count one flagged window (`window` is what training reads of it, ending at `end`)."""
        if not cause or self.after <= 0:
            return Flagged(0, [], False)
        entry = self._causes.get(cause)
        if entry is None:
            if len(self._causes) >= MAX_CAUSES:
                oldest = min(self._causes, key=lambda k: self._causes[k].since)
                del self._causes[oldest]
            entry = self._causes[cause] = _Cause()
        if end - entry.since >= self.gap:
            entry.episodes += 1
            entry.since = end
            self._save()
        if entry.episodes < self.after:
            if len(entry.held) < MAX_HELD:
                entry.held.append(window)
                self._dirty = True
            return Flagged(entry.episodes, [], False)
        self._dirty = self._dirty or bool(entry.held)
        learn, entry.held = [*entry.held, window], []
        first, entry.learning = not entry.learning, True
        return Flagged(entry.episodes, learn, first)

    def episodes(self, cause: tuple[str, ...]) -> int:
        entry = self._causes.get(cause)
        return entry.episodes if entry is not None else 0

    def save(self) -> None:
        """At a stop: the windows held since the last save (they are saved with each new episode too)."""
        if self._dirty:
            self._save()

    def _save(self) -> None:
        body = {"causes": [[list(k), v.episodes, v.since, v.held] for k, v in self._causes.items()]}
        try:
            write_json_atomic(self.path, STATE_KIND, 2, body)
            self._dirty = False
        except OSError as exc:
            log.error("recurring_save_failed", path=str(self.path), error=str(exc))

    def _load(self, keep_held: bool) -> None:
        if not self.path.exists():
            return
        try:
            doc = read_json_state(self.path, STATE_KIND, {1, 2})
            self._causes = {
                _key(item[0]): _Cause(int(item[1]), float(item[2]), _held(item[3]) if keep_held and len(item) > 3 else [])
                for item in _items(doc)
            }
        except (StateError, ValueError, TypeError, IndexError) as exc:
            log.warning("recurring_state_refused", path=str(self.path), error=str(exc))
            with contextlib.suppress(OSError):
                set_aside(self.path)
            self._causes = {}


def _items(doc: dict[str, Any]) -> list[Any]:
    items = doc.get("causes")
    if not isinstance(items, list):
        raise ValueError("causes must be a list")
    return items[-MAX_CAUSES:]


def _held(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("held windows must be a list of strings")
    return value[:MAX_HELD]


def _key(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"a cause must be a list of strings, got {value!r}")
    return tuple(value)
