"""Offline corpora for `train`, `score` and `evaluate`: a sessions file or raw logs, as windows.

Both paths end in the same `Window` values the daemon builds, so a model trained here sees at serve time
exactly what it saw in training. A sessions file (DeepLog's format) gives one window per session (split
at `max_length`); raw logs go through the parse stage (header format → Drain) and the `Windower` of the
given window spec — the same code the daemon runs, fed offline.
"""

from __future__ import annotations

import importlib
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
    paths: Sequence[str | Path], log_format: str | None, spec: WindowSpec, drain_state: bytes | None = None
) -> Corpus:
    """Parse raw log files (optionally continuing a saved Drain state) and window them per `spec`."""
    try:
        parsing = importlib.import_module("agent.parsing")
    except ImportError as exc:
        raise LogwardenError(f"--input needs the parse stage, which is not available: {exc}") from None
    parser: Any = parsing.OfflineParser(log_format=log_format, drain_state=drain_state)
    windower = Windower(spec, stream="logs")
    windows: list[Window] = []
    names: list[str] = []
    for path in paths:
        p = Path(path)
        names.append(p.name)
        for line in _lines(p):
            record: Record | None = parser.parse(str(p), line)
            if record is not None:
                windows.extend(windower.add(record))
    windows.extend(windower.flush())
    return Corpus(
        windows,
        list(range(len(windows))),
        len(windows),
        f"logs {', '.join(names)}",
        drain_snapshot=parser.snapshot_hash(),
        drain_state=parser.state_bytes(),
        stats=windower.stats_dict(),
    )


def _lines(path: Path) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                yield line.rstrip("\n")
    except OSError as exc:
        raise LogwardenError(f"{path}: cannot read: {exc.strerror or exc}") from None
