"""Saved offsets: one atomic JSON file per tail instance, written at most once a second and at stop.

An entry says "everything before `offset` in this file generation was handled durably". It is written only
from `commit()`, never when a line is merely read, so a crash re-reads instead of losing (at-least-once;
Fluent Bit writes at read time and can lose what its memory buffer held). Commits arrive in emit order, so
the newest commit of a file id is its position, and `seq` orders entries of one inode across truncations.
Entries of files not seen for `expire_offsets` are dropped (Vector #23076: stale entries never expired).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog

from agent.errors import StateError
from agent.state import read_json_state, set_aside, write_json_atomic
from plugins.inputs.tail.identity import FileId

log = structlog.get_logger("logwarden.input.tail")

KIND = "tail_offsets"
VERSION = 1


@dataclass(slots=True)
class Entry:
    file_id: str
    path: str
    dev: int
    ino: int
    fp: str
    offset: int
    marker: str | None
    seq: int
    seen: float


class OffsetStore:
    """Thread-safe: the pipeline's thread updates it in `commit()`, the saver thread writes it out."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._seq = 0
        self._dirty = False
        self.scanned_at = 0.0
        """Wall time of the last directory scan: files renamed after it were never seen by us."""
        self.loaded_scanned_at = 0.0
        self.globs: dict[str, list[str]] = {}
        """This run's `path` and `exclude` patterns, saved so the next run knows which files we could see."""
        self.loaded_globs: dict[str, list[str]] | None = None
        """The last run's patterns; None when its offsets file predates them (or there was none)."""

    def load(self) -> None:
        if not self.path.exists():
            return
        try:
            doc = read_json_state(self.path, KIND, {VERSION})
            entries = {e["file_id"]: Entry(**e) for e in doc.get("entries", [])}
            scanned_at = float(doc.get("scanned_at", 0.0))
            globs = doc.get("globs")
            loaded_globs = (
                {k: [str(p) for p in globs.get(k, [])] for k in ("path", "exclude")}
                if isinstance(globs, dict) and globs.get("path") else None
            )
        except (StateError, TypeError, KeyError) as exc:
            kept = set_aside(self.path)
            log.warning("offsets_refused", path=str(self.path), kept=str(kept), error=str(exc))
            return
        with self._lock:
            self._entries = entries
            self._seq = max((e.seq for e in entries.values()), default=0)
            self.loaded_scanned_at = scanned_at
            self.loaded_globs = loaded_globs

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def latest_for(self, dev: int, ino: int) -> Entry | None:
        """The most recently committed entry of an inode (it may hold several content generations)."""
        with self._lock:
            best: Entry | None = None
            for e in self._entries.values():
                if e.dev == dev and e.ino == ino and (best is None or e.seq > best.seq):
                    best = e
            return best

    def register(self, file_id: FileId, offset: int, marker: str | None, path: str, now: float) -> None:
        """Record where reading of a file generation starts, unless an entry already speaks for it.

        Every file we open gets an entry before anything is committed from it, so a restart finds a
        rotated file we were still reading by its inode even if none of its records were durable yet.
        """
        with self._lock:
            if str(file_id) in self._entries:
                return
        self.update(file_id, offset, marker, path, now)

    def get(self, file_id: str) -> Entry | None:
        with self._lock:
            return self._entries.get(file_id)

    def update(self, file_id: FileId, offset: int, marker: str | None, path: str, now: float) -> None:
        key = str(file_id)
        with self._lock:
            self._seq += 1
            e = self._entries.get(key)
            if e is None:
                self._entries[key] = Entry(key, path, file_id.dev, file_id.ino, file_id.fp, offset, marker,
                                           self._seq, now)
            else:
                e.offset, e.marker, e.seq, e.seen, e.path = offset, marker, self._seq, now, path
            self._dirty = True

    def touch(self, keys: set[tuple[int, int]], now: float, expire_s: float) -> None:
        """Mark entries of open files as seen, and forget entries unseen for `expire_s`."""
        with self._lock:
            for k, e in list(self._entries.items()):
                if (e.dev, e.ino) in keys:
                    e.seen = now
                elif now - e.seen > expire_s:
                    del self._entries[k]
                    self._dirty = True

    def forget(self, file_id: str) -> None:
        with self._lock:
            if self._entries.pop(file_id, None) is not None:
                self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def save(self) -> bool:
        """Write the entries if anything changed; False (and the entries stay dirty) if writing failed."""
        with self._save_lock:
            return self._save()

    def _save(self) -> bool:
        with self._lock:
            if not self._dirty:
                return True
            body: dict[str, Any] = {
                "scanned_at": self.scanned_at or self.loaded_scanned_at,
                "globs": self.globs or self.loaded_globs,
                "entries": [asdict(e) for e in self._entries.values()],
            }
            self._dirty = False
        try:
            write_json_atomic(self.path, KIND, VERSION, body)
        except OSError as exc:
            with self._lock:
                self._dirty = True
            log.error("offsets_save_failed", path=str(self.path), error=str(exc))
            return False
        return True
