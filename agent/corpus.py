"""Offline corpora for `train`, `score` and `evaluate`: a sessions file or raw logs, as windows.

Both paths end in the same `Window` values the daemon builds, so a model trained here sees at serve time
exactly what it saw in training. A sessions file (DeepLog's format) gives one window per session (split
at `max_length`); raw logs go through the parse stage (header format → Drain) and the `Windower` of the
given window spec — the same code the daemon runs, fed offline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import LogwardenError
from agent.sessions import read_sessions, session_windows
from agent.types import Record, Window
from agent.windows import Windower, WindowSpec

SESSIONS_STREAM = "sessions"


@dataclass(slots=True)
class Corpus:
    """Windows in input order and, for sessions, which session each window came from."""

    windows: list[Window]
    owner: list[int]
    n_units: int
    """Sessions in the file (score prints one line each), or windows for logs (one line per window)."""
    source: str
    drain_snapshot: str | None = None
    drain_state: bytes | None = None
    stats: dict[str, float] = field(default_factory=dict)


def sessions_window_spec(max_length: int) -> WindowSpec:
    """The window spec recorded for bundles trained on a sessions file: one session, split at max_length."""
    return WindowSpec(type="session", key_field="session", max_length=max_length)


def load_sessions(path: str | Path, max_length: int) -> Corpus:
    sf = read_sessions(path)
    windows, owner = session_windows(sf.sessions, max_length, stream=SESSIONS_STREAM)
    return Corpus(windows, owner, len(sf.sessions), f"sessions file {sf.path.name} ({len(sf.sessions)} sessions)")


def load_logs(
    paths: Sequence[str | Path], log_format: str | None, spec: WindowSpec, drain_state: bytes | None = None,
    multiline: str | None = None,
) -> Corpus:
    """Parse raw log files through the parse stage (continuing a bundle's Drain state when given, so
    template ids mean what they meant in training) and window them per `spec`."""
    from agent.drain import Drain
    from agent.errors import StateError
    from agent.parsing import ParseStage, default_section
    from agent.registry import Registry

    stage = ParseStage.from_section(default_section(log_format), Registry.default(entry_points=False))
    if drain_state is not None:
        try:
            stage.drain = Drain.from_snapshot(json.loads(drain_state))
        except (ValueError, StateError) as exc:
            raise LogwardenError(f"the bundle's drain.json cannot be restored: {exc}") from None
    windower = Windower(spec, stream="logs")
    windows: list[Window] = []
    names: list[str] = []
    for path in paths:
        p = Path(path)
        names.append(p.name)
        chunk: list[Record] = []
        for record in _records(p, multiline):
            chunk.append(record)
            if len(chunk) >= 2048:
                windows.extend(_window_chunk(stage, windower, chunk))
                chunk = []
        windows.extend(_window_chunk(stage, windower, chunk))
    windows.extend(windower.flush())
    drain = stage.drain
    return Corpus(
        windows,
        list(range(len(windows))),
        len(windows),
        f"logs {', '.join(names)}",
        drain_snapshot=drain.vocabulary_hash(),
        drain_state=json.dumps(drain.snapshot(), separators=(",", ":")).encode("utf-8"),
        stats={**windower.stats_dict(), **stage.stats()},
    )


def _window_chunk(stage: Any, windower: Windower, chunk: list[Record]) -> list[Window]:
    out: list[Window] = []
    for record in stage.process(chunk):
        out.extend(windower.add(record))
    return out


def _records(path: Path, multiline: str | None) -> Iterator[Record]:
    from agent.replay import read_records

    try:
        yield from read_records(path, "logs", re.compile(multiline) if multiline else None)
    except OSError as exc:
        raise LogwardenError(f"{path}: cannot read: {exc.strerror or exc}") from None
