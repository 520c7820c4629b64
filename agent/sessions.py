"""Sessions files (DeepLog's HDFS format) and their mapping onto windows.

One session per line, event keys separated by whitespace, in order; blank lines are skipped. Keys are
usually integers (template ids from an external parser); a non-numeric key (`E5`, a template hash) is
kept as a template id of its own: it maps to a stable integer id derived from its text, far above any
Drain id, so the same key means the same column at train and at score time without a side table. A
session longer than the window spec's `max_length` becomes several windows (`session_windows` keeps the
session index of each part so scores can be folded back to one line per session).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.errors import LogwardenError
from agent.types import Window

_NAMED_KEY_BASE = 1 << 40
"""Ids of non-numeric keys start here: Drain ids are small integers and can never reach it."""


class SessionsError(LogwardenError):
    """A sessions file that cannot be read (missing, not text); names the file."""


@dataclass(frozen=True, slots=True)
class SessionsFile:
    path: Path
    sessions: list[list[str]]
    lines: list[int]
    """1-based line number of each session in the file (blank lines are skipped, so they differ)."""


def read_sessions(path: str | Path) -> SessionsFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SessionsError(f"{p}: cannot read sessions file: {exc.strerror or exc}") from None
    sessions: list[list[str]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        keys = line.split()
        if keys:
            sessions.append(keys)
            lines.append(number)
    return SessionsFile(p, sessions, lines)


def key_to_id(key: str) -> int:
    """An event key's template id: the integer itself, or a stable id for a named key."""
    try:
        value = int(key)
    except ValueError:
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=5).digest()
        return _NAMED_KEY_BASE + int.from_bytes(digest, "big")
    return value


def session_windows(
    sessions: Sequence[Sequence[str]], max_length: int, stream: str = "sessions"
) -> tuple[list[Window], list[int]]:
    """Windows for sessions, splitting any longer than `max_length`; also each window's session index."""
    windows: list[Window] = []
    owner: list[int] = []
    for index, keys in enumerate(sessions):
        ids = [key_to_id(k) for k in keys]
        names = {i: k for i, k in zip(ids, keys, strict=True) if i >= _NAMED_KEY_BASE}
        for part_start in range(0, max(len(ids), 1), max_length):
            part = ids[part_start : part_start + max_length]
            window = Window(
                stream=stream,
                key=str(index),
                start=0.0,
                end=0.0,
                events=part,
                times=[],
                levels=[],
                templates={i: names[i] for i in part if i in names},
            )
            windows.append(window)
            owner.append(index)
    return windows, owner


def fold_by_session(values: Sequence[float], owner: Sequence[int], n_sessions: int) -> list[float]:
    """One score per session from its windows' scores: the worst part decides."""
    out = [float("-inf")] * n_sessions
    for value, index in zip(values, owner, strict=True):
        if value > out[index]:
            out[index] = value
    return out
