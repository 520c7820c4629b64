"""The recent normal windows a self-baselining model retrains on, kept in files instead of in memory.

A forest retrains on its last `keep_windows` windows (20,000 by default: 2.3 days of 10 s steps, or minutes
of per-request sessions). As compact JSON strings in a deque they cost ~0.5 KB each: ~10 MB once full, an
eighth of the daemon's 80 MB budget that only a daemon running for days reaches, and no one-minute
benchmark sees. Appended to a file they cost nothing resident; the training child reads the files.

Two segments, each up to `limit` lines: when the current one is full it replaces the previous one, so
together they always hold the last `limit` windows (or more), and `read_recent` keeps the last `limit`.
Writes are flushed, not fsynced: these are training inputs the stream rebuilds, as the in-memory list was,
and a torn last line after a crash is skipped by the reader. Like that list they do not outlive the
process (cleared at start), so a restarted daemon learns from what it sees. A rotation while a child reads
can cost that one training the older segment; at one rotation per `limit` windows, it does not matter.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import structlog

log = structlog.get_logger("logwarden.recent_windows")

CURRENT = "recent-windows.jsonl"
PREVIOUS = "recent-windows.previous.jsonl"


class RecentWindows:
    """Append-only window log with `deque(maxlen=limit)`'s length."""

    __slots__ = ("_fh", "_in_current", "_in_previous", "folder", "limit", "write_errors")

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder = folder
        self.limit = limit
        self.write_errors = 0
        self._in_current = 0
        self._in_previous = 0
        self._fh: IO[str] | None = None
        for name in (CURRENT, PREVIOUS):
            with contextlib.suppress(OSError):  # none yet; or the folder is unusable, which append reports
                (folder / name).unlink()

    def __len__(self) -> int:
        return min(self.limit, self._in_current + self._in_previous)

    def append(self, line: str) -> None:
        """One window's compact JSON (one line). A failed write is counted and logged once; the window is
        lost to retraining, never to scoring."""
        try:
            if self._in_current >= self.limit:
                self._rotate()
            if self._fh is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.folder / CURRENT, "a", encoding="utf-8")  # noqa: SIM115 — held open
            self._fh.write(line + "\n")
            self._fh.flush()
        except OSError as exc:
            self.write_errors += 1
            if self.write_errors == 1:
                log.error("recent_windows_write_failed", folder=str(self.folder), error=str(exc))
            self.close()
            return
        self._in_current += 1

    def _rotate(self) -> None:
        self.close()
        (self.folder / CURRENT).replace(self.folder / PREVIOUS)
        self._in_previous, self._in_current = self._in_current, 0

    def files(self) -> list[str]:
        """The segments, oldest first, as the training child is told to read them."""
        return [str(self.folder / name) for name in (PREVIOUS, CURRENT) if (self.folder / name).exists()]

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


def read_recent(paths: Sequence[str | Path], limit: int) -> list[dict[str, Any]]:
    """The last `limit` windows of the segments, skipping lines that are not whole JSON objects."""
    out: deque[dict[str, Any]] = deque(maxlen=limit)
    for path in paths:
        try:
            fh = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 — closed below
        except FileNotFoundError:
            continue  # rotated away between listing and reading
        with fh:
            for line in fh:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict):
                    out.append(doc)
    return list(out)
