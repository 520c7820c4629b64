"""The recent normal windows a self-baselining model retrains on, kept in files instead of in memory.

A forest retrains on its last `keep_windows` windows (20,000 by default: 2.3 days of 10 s steps, or minutes
of per-request sessions). As compact JSON strings in a deque they cost ~0.5 KB each: ~10 MB once full, an
eighth of the daemon's 80 MB budget that only a daemon running for days reaches, and no one-minute
benchmark sees. Appended to a file they cost nothing resident; the training child reads the files.

Two segments, each up to `limit` lines: when the current one is full it replaces the previous one, so
together they always hold the last `limit` windows (or more), and `read_recent` keeps the last `limit`.
Writes are flushed, not fsynced: these are training inputs the stream rebuilds, and a torn last line after a
crash is trimmed when the next process opens the segment (a reader skips it meanwhile).

They outlive the process: a restarted daemon carries on learning where it stopped, and its next retraining
reads the days of windows the last model was trained on, not the hours since the restart. A `meta` file
names what the windows are (the window spec: a window of another size is another feature space); a new
process keeps the segments only when the meta it is given is the same, and discards them otherwise. The
owner saves what it needs to resume with the windows (`save`), read back as `carried`. Template ids in the
windows mean what the Drain snapshot, restored with them, says they mean — as for every detector's learned
state. A rotation while a child reads can cost that one training the older segment; at one rotation per
`limit` windows, it does not matter.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import structlog

from agent.errors import StateError
from agent.state import read_json_state, write_json_atomic

log = structlog.get_logger("logwarden.recent_windows")

CURRENT = "recent-windows.jsonl"
PREVIOUS = "recent-windows.previous.jsonl"
META = "recent-windows.meta.json"
STATE_KIND = "recent_windows"


class RecentWindows:
    """Append-only window log with `deque(maxlen=limit)`'s length."""

    __slots__ = ("_fh", "_in_current", "_in_previous", "carried", "folder", "identity", "kept", "limit",
                 "write_errors")

    def __init__(self, folder: Path, limit: int, identity: dict[str, Any] | None = None) -> None:
        """`identity` describes the windows (JSON); None keeps nothing from an earlier process."""
        self.folder = folder
        self.limit = limit
        self.identity = identity
        self.write_errors = 0
        self._in_current = 0
        self._in_previous = 0
        self._fh: IO[str] | None = None
        self.kept = 0
        """Windows the previous process left that this one kept."""
        self.carried: dict[str, Any] | None = None
        """What the previous process saved with its windows (`save`); None when they were discarded."""
        if identity is not None and self._restore(identity):
            return
        for name in (CURRENT, PREVIOUS):
            with contextlib.suppress(OSError):  # none yet; or the folder is unusable, which append reports
                (folder / name).unlink()
        if identity is not None:
            self.save({})

    def _restore(self, identity: dict[str, Any]) -> bool:
        meta = self.folder / META
        if not meta.exists():
            return False
        try:
            doc = read_json_state(meta, STATE_KIND, {1})
        except StateError as exc:
            log.warning("recent_windows_discarded", folder=str(self.folder), reason=exc.reason)
            return False
        if doc.get("identity") != identity:
            log.info("recent_windows_discarded", folder=str(self.folder), reason="the window spec changed",
                     was=doc.get("identity"), now=identity)
            return False
        try:
            self._in_previous = _whole_lines(self.folder / PREVIOUS, trim=False)
            self._in_current = _whole_lines(self.folder / CURRENT, trim=True)
        except OSError as exc:
            log.warning("recent_windows_discarded", folder=str(self.folder), reason=str(exc))
            return False
        carried = doc.get("carried")
        self.carried = carried if isinstance(carried, dict) else {}
        self.kept = len(self)
        if self.kept:
            log.info("recent_windows_kept", folder=str(self.folder), windows=self.kept)
        return True

    def save(self, carried: dict[str, Any]) -> None:
        """Describe the segments for the next process, with what its owner needs to resume (`carried`).
        Without an identity nothing is kept, so nothing is saved."""
        if self.identity is None:
            return
        try:
            write_json_atomic(self.folder / META, STATE_KIND, 1, {"identity": self.identity, "carried": carried})
        except OSError as exc:
            log.error("recent_windows_save_failed", folder=str(self.folder), error=str(exc))

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


def _whole_lines(path: Path, *, trim: bool) -> int:
    """Lines in a segment (0 when it is absent); with `trim`, a torn last line is cut off first, so the next
    append starts a whole line instead of finishing the torn one into a line no reader can parse."""
    try:
        fh = open(path, "r+b" if trim else "rb")  # noqa: SIM115 — closed below
    except FileNotFoundError:
        return 0
    lines = end = pos = 0
    with fh:
        while chunk := fh.read(1 << 20):  # in chunks: a full segment is ~10 MB the daemon need not hold
            n = chunk.count(b"\n")
            if n:
                lines += n
                end = pos + chunk.rfind(b"\n") + 1
            pos += len(chunk)
        if trim and end < pos:
            fh.truncate(end)
    return lines


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
