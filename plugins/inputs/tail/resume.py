"""Where reading starts: saved offsets checked against the file, and the unread rest of rotated files.

A saved offset is trusted only if the inode still starts with the same first line and still has the same
bytes before the offset (the marker); otherwise the content was replaced while we were away (copytruncate,
inode reuse) and the file is read from 0. Whatever was unread in the old content is looked for beside it:
a renamed file by its inode, a copy by its fingerprint and marker. That is what makes a rotation during a
restart lose nothing, where agents that only look at glob matches drop the rest of the old file.
"""

from __future__ import annotations

import fnmatch
import os
from typing import TYPE_CHECKING

import structlog

from plugins.inputs.tail import discovery
from plugins.inputs.tail.identity import FileId, marker_at, read_fingerprint
from plugins.inputs.tail.store import Entry

if TYPE_CHECKING:
    from plugins.inputs.tail.file import TailFile
    from plugins.inputs.tail.tailer import Tailer

log = structlog.get_logger("logwarden.input.tail")

CTIME_SLACK_S = 1.0
"""Kernel timestamps come from a coarse clock that can trail time.time(); compare with this much slack."""

MAX_ORPHANS = 256
"""Saved offsets of vanished files checked at startup (newest first); older ones only wait to expire."""


class Resumer:
    def __init__(self, tailer: Tailer) -> None:
        self.t = tailer
        self._seen_before: set[str] | None = None

    def _valid(self, fd: int, entry: Entry, size: int) -> bool:
        if entry.offset > size or read_fingerprint(fd, self.t.fp_limit) != entry.fp:
            return False
        return entry.marker is None or marker_at(fd, entry.offset) == entry.marker

    def start_offset(self, f: TailFile, st: os.stat_result, first_scan: bool) -> int:
        size = st.st_size
        entry = self.t.store.latest_for(f.dev, f.ino)
        if entry is not None:
            if self._valid(f.fd, entry, size):
                return entry.offset
            self.t.stats.files_truncated += 1
            log.info("offset_invalidated", path=f.path, offset=entry.offset, size=size)
            self.recover_copy(entry.path, entry.fp, entry.offset, entry.marker, entry.offset, skip={f.key})
            return 0
        if first_scan and self.t.config.read_from == "end" and not self._appeared_while_stopped(f.path, st):
            self._remember_end(f, size)
            return size
        return 0

    def _appeared_while_stopped(self, path: str, st: os.stat_result) -> bool:
        """A file created after we last saved offsets would have been read from its start had we been
        running; `read_from: end` is for files that predate us, not for what we missed while down.

        The ctime also moves on every write, so it only tells "created while we were down" for a file the
        last run's globs match: a busy log whose pattern was just added to the config is new to us, and is
        followed from its end like any file found at a first start."""
        entries = self.t.store.entries()
        if not entries or st.st_ctime <= max(e.seen for e in entries):
            return False
        return path in self._matched_before()

    def _matched_before(self) -> set[str]:
        """Paths the last run's globs match now (all of this run's when its offsets did not say)."""
        if self._seen_before is None:
            before = self.t.store.loaded_globs
            if before is None:
                self._seen_before = set(discovery.expand(self.t.config.path, self.t.config.exclude).files)
            else:
                self._seen_before = set(discovery.expand(before["path"], before["exclude"]).files)
        return self._seen_before

    def _remember_end(self, f: TailFile, size: int) -> None:
        """Skipping to the end is a decision to keep: save it, or the next start would skip again."""
        fp = read_fingerprint(f.fd, self.t.fp_limit)
        if fp is not None:
            t = self.t
            t.store.update(FileId(f.dev, f.ino, fp), size, marker_at(f.fd, size), f.path, t.ctx.clock.time())

    def recover_copy(
        self,
        original: str,
        fp: str,
        offset: int,
        marker: str | None,
        start: int,
        skip: set[tuple[int, int]],
        durable_from: int | None = None,
    ) -> TailFile | None:
        """Read the unread rest of `original`'s old content from a copy beside it, from `start` on."""
        t = self.t
        found = discovery.find_copy(original, fp, offset, marker, t.fp_limit, skip | set(t.files))
        if found is None:
            return None
        path, st = found
        f = t.open_file(path, start=start, rotated=True, durable_from=durable_from)
        if f is None:
            return None
        own = t.store.latest_for(st.st_dev, st.st_ino)
        if own is not None and own.offset > start and self._valid(f.fd, own, st.st_size):
            f.seek(own.offset)
        t.stats.files_recovered += 1
        log.info("rotated_rest_recovered", path=path, original=original, offset=f.read_pos, how="copy")
        return f

    def recover_orphans(self) -> None:
        """At startup: offsets of files no glob matches any more; read what they left unread."""
        t = self.t
        best: dict[tuple[int, int], Entry] = {}
        for e in t.store.entries():
            key = (e.dev, e.ino)
            if key not in t.files and (key not in best or e.seq > best[key].seq):
                best[key] = e
        for e in sorted(best.values(), key=lambda e: e.seen, reverse=True)[:MAX_ORPHANS]:
            found = discovery.find_by_inode(e.path, e.dev, e.ino)
            if found is not None and discovery.content_matches(found[0], e.fp, e.offset, e.marker, t.fp_limit):
                path, st = found
                # renamed since our last scan: a writer may still append to it, so follow it for rotate_wait
                fresh = st.st_ctime > t.store.loaded_scanned_at - CTIME_SLACK_S
                if (st.st_size > e.offset or fresh) and (e.dev, e.ino) not in t.files:
                    t.open_file(path, start=e.offset, rotated=True)
                    t.stats.files_recovered += 1
                    log.info("rotated_rest_recovered", path=path, original=e.path, offset=e.offset, how="rename")
                continue
            # renamed after a copytruncate, or gone: the old content may survive only in a copy
            self.recover_copy(e.path, e.fp, e.offset, e.marker, e.offset, skip=set())
            if found is not None:
                self._newer_generation(found[0], found[1], e)

    def _newer_generation(self, path: str, st: os.stat_result, e: Entry) -> None:
        """The inode was truncated and rewritten after our last save: none of its content is saved.

        Unless the inode number was reused for a copy of content we did read under another inode (a
        copytruncate's copy, made after the file we knew under that number was deleted): its saved
        offset, not 0, is where that copy's rest starts, and the copy search for that entry reads it."""
        t = self.t
        fp = discovery.fingerprint_file(path, t.fp_limit)
        if fp is None or (e.dev, e.ino) in t.files:
            return
        same = [x for x in t.store.entries() if x.fp == fp]
        if any((x.dev, x.ino) == (e.dev, e.ino) for x in same):
            return
        if any(discovery.content_matches(path, x.fp, x.offset, x.marker, t.fp_limit) for x in same):
            return
        if t.open_file(path, start=0, rotated=True) is not None:
            t.stats.files_recovered += 1
            log.info("rotated_rest_recovered", path=path, original=e.path, offset=0, how="new_generation")

    def recover_unseen_at_start(self) -> None:
        """At startup: rotated files created and rotated away after our last directory scan."""
        t = self.t
        cutoff = t.store.loaded_scanned_at
        if cutoff <= 0:
            return  # no earlier run: nothing can have been missed
        names = set(t.active) | {
            e.path for e in t.store.entries()
            if any(fnmatch.fnmatch(e.path, os.path.abspath(p)) for p in t.config.path)
        }
        self.recover_unseen(dict.fromkeys(names, cutoff))

    def recover_unseen(self, since: dict[str, float]) -> list[TailFile]:
        """Read whole every sibling `<followed name><sep>…` renamed after `since[name]` that we never saw.

        Unseen means: its inode is not open, not in a cursor and not in the store, and its first line is
        not one we know (a copy of known content is the copy search's job). Oldest first, so they go out
        after the known rests and before the live files. At runtime this catches files that were created
        and rotated away between two passes (the reader was blocked by backpressure, or events were lost).
        """
        t = self.t
        entries = t.store.entries()
        known_inodes = {(e.dev, e.ino) for e in entries} | set(t.files) | t.cursor_inodes()
        known_fps = {e.fp for e in entries} | {f.fp for f in t.files.values() if f.fp is not None}
        found: list[tuple[float, str]] = []
        for original, cutoff in since.items():
            for path, st in discovery.renamed_since(original, cutoff - CTIME_SLACK_S):
                key = (st.st_dev, st.st_ino)
                if key in known_inodes or discovery.excluded(path, t.config.exclude):
                    continue
                fp = discovery.fingerprint_file(path, t.fp_limit)
                if fp is not None and fp not in known_fps:
                    found.append((st.st_mtime, path))
        opened: list[TailFile] = []
        for _, path in sorted(found):
            f = t.open_file(path, start=0, rotated=True)
            if f is not None:
                opened.append(f)
                t.stats.files_recovered += 1
                log.info("rotated_rest_recovered", path=path, offset=0, how="unseen")
        return opened
