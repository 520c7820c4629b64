"""The reader: reconcile the files on disk with the files we hold, read what is new, hand it downstream.

One pass (`poll_once`) stats every path we follow (a different inode or none means rotation), re-globs
when due or when an event hinted at new files, reads rotated files to their end before live ones (older
data first), flushes multiline records whose time is up, and closes rotated files after `rotate_wait`.
Passes run on the reader thread, woken by watchdog events or by the next deadline; tests can call
`poll_once()` directly instead. Nothing here trusts an event: a lost event only delays a pass.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Sequence
from itertools import repeat

import structlog

from agent.plugin import Emit, PluginContext
from agent.types import Record
from plugins.inputs.tail import discovery
from plugins.inputs.tail.config import TailConfig
from plugins.inputs.tail.file import Cursor, LineRules, TailFile
from plugins.inputs.tail.identity import FINGERPRINT_MAX, FileId, digest, marker_at, read_fingerprint
from plugins.inputs.tail.multiline import MultilineBuffer, MultilineRules
from plugins.inputs.tail.resume import Resumer
from plugins.inputs.tail.stats import TailStats
from plugins.inputs.tail.store import OffsetStore
from plugins.inputs.tail.watcher import ObserverFactory, Watcher

log = structlog.get_logger("logwarden.input.tail")

CHUNK = 64 * 1024
"""Bytes read at a time. A read becomes records at once, and the worker then walks each batch of them five
or six times (parse, Drain, each detector): what a read makes should still be in the CPU's cache when the
worker gets to it. 256 KiB (2,500 records, ~2.5 MB of objects) outgrew this host's 1 MiB L2; with 64 KiB
and 256-record batches the daemon took 7-12% less CPU at 20k lines/s in each of five paired runs
(`bench/side_by_side.py`); 16 KiB reads or 64-record batches cost more in passes and calls than they saved."""
BUDGET = 4 * 1024 * 1024
"""Bytes read from one live file per pass before the others get their turn."""
_GONE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP})
"""Errors of a path that vanished or is not a file: the next scan decides again, nothing to report."""
CHECK_S = 2.0
"""Longest time between two passes when nothing wakes the reader: the stat reconcile (also bounded by
`refresh_interval`). Filesystem events make a pass run at once, so this only bounds how late a write or a
rename whose event was lost (inotify queue overflow, a write from another NFS client) is noticed. 2 s is
Fluent Bit's `progress_check_interval`: half a wake-up per second idle, instead of one."""
SAVE_S = 1.0
COALESCE_S = 0.1
"""Pause after a pass that read something, so a busy file is read in fewer, larger pieces. Each pass also
wakes the pipeline's worker, and on this kind of VM a blocking queue wait and its wake-up cost 80-130 µs of
CPU (a two-thread microbenchmark) besides what the pass itself does. 25 ms took a quarter off the reader's
CPU against a pass per write event; 100 ms took another 2.5 to 5% off the daemon's (side by side at 20k
lines/s, bench/e2e.py). It only adds this much latency under load (the bench's p99
went from 0.05 to 0.14-0.19 s); a line written to a quiet file is still read on its write event."""
HOT_AFTER = 8
"""Passes in a row that read data and found the next write event already waiting after the pause: writes
come faster than passes (10/s), so polling every `COALESCE_S` costs less than watchdog's ~0.4 ms per event."""
COOL_AFTER_S = 0.25
"""How long a polling reader keeps polling with nothing to read before it re-arms the write events."""


class Tailer:
    def __init__(self, config: TailConfig, ctx: PluginContext, make_observer: ObserverFactory | None = None) -> None:
        self.config = config
        self.ctx = ctx
        self.stats = TailStats()
        self.rules = LineRules(config.max_line_size.bytes, config.long_lines, config.encoding)
        self.fp_limit = min(FINGERPRINT_MAX, config.max_line_size.bytes)
        self._ml = MultilineRules(config.multiline) if config.multiline is not None else None
        self.store = OffsetStore(ctx.plugin_state_dir() / "offsets.json")
        self.store.globs = {"path": [os.path.abspath(p) for p in config.path],
                            "exclude": list(config.exclude)}
        self.files: dict[tuple[int, int], TailFile] = {}
        self.active: dict[str, tuple[int, int]] = {}
        self._cursors: dict[str, Cursor] = {}
        self._cursor_lock = threading.Lock()
        self._resumer = Resumer(self)
        self._reported: set[str] = set()
        self._unopened: set[str] = set()
        """Matched files that could not be opened (permission, descriptors): every wake-up rescans for them.
        Only these: a directory the glob matches stays reported, and rescanning for it at each write the
        watcher reports would re-expand every pattern many times a second."""
        self._ignored: dict[str, tuple[tuple[int, int], float, int]] = {}
        self._emit: Emit | None = None
        self._out: list[Record] = []
        self._wake = threading.Event()
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._rescan = True
        self._first_scan = True
        self._stopped = False
        self._next_refresh = 0.0
        self._checked_at = 0.0
        self._rotated_since: dict[str, float] = {}
        """Followed names whose file was rotated, with when we last saw them unrotated (wall time)."""
        self._threads: list[threading.Thread] = []
        self._make_observer = make_observer
        self.watcher: Watcher | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def open(self, emit: Emit) -> None:
        """Load offsets and take `emit`; passes are then driven by `poll_once()` or by `start_threads()`."""
        self.store.load()
        self._emit = emit

    def start_threads(self) -> None:
        self.watcher = Watcher(
            self.wake, self.stats, poll=self.config.poll,
            poll_interval_s=self.config.poll_interval.seconds, make_observer=self._make_observer,
        )
        self.watcher.start()
        for target, name in ((self._run, "tail-reader"), (self._run_saver, "tail-saver")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self, structural: bool) -> None:
        if structural or self._unopened:
            self._rescan = True
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        reader = self._threads[0] if self._threads else None
        if reader is not None:
            reader.join(timeout_s)
            if reader.is_alive():
                log.warning("tail_reader_stop_timed_out")
        else:
            self._finish()
        if self.watcher is not None:
            self.watcher.stop()
        self._stopped = True
        self._dirty.set()
        for t in self._threads[1:]:
            t.join(timeout_s)
        self.save()  # while the files are still open, so their entries count as seen
        for f in list(self.files.values()):
            self.close_file(f)
        self.save()

    def _run(self) -> None:
        busy = 0  # passes in a row that read data while the next write event was already waiting
        quiet_since: float | None = None  # polling mode: when the passes began to find nothing
        while not self._stopping.is_set():
            self._wake.clear()
            more = False
            read = self.stats.bytes_read
            try:
                more = self.poll_once()
            except Exception:  # the reader must outlive any one bad file; the next pass retries
                log.exception("tail_pass_failed")
            if more:
                continue
            polling = self.watcher is not None and not self.watcher.content
            if self.stats.bytes_read != read and COALESCE_S > 0:
                # Under load a pass per write event costs a pass, a batch and a commit per small write; a
                # short pause lets writes pile up into one read. Idle files never get here.
                quiet_since = None
                self._stopping.wait(COALESCE_S)
                if polling:
                    continue
                busy = busy + 1 if self._wake.is_set() else 0
                if busy >= HOT_AFTER and self.watcher is not None and self.watcher.set_content(False):
                    self.stats.polling_switches += 1
                    busy = 0
                    continue
            elif polling:
                now = self.ctx.clock.monotonic()
                quiet_since = now if quiet_since is None else quiet_since
                if now - quiet_since < COOL_AFTER_S:
                    self._wake.wait(COALESCE_S)  # structural events still wake it at once
                    continue
                assert self.watcher is not None
                self.watcher.set_content(True)
                quiet_since = None
                continue  # one more pass: a write while the watches were re-armed raised no event
            else:
                busy = 0
            self._wake.wait(max(0.0, self._next_deadline() - self.ctx.clock.monotonic()))
        self._finish()

    def _finish(self) -> None:
        """At stop: emit held multiline records (they were only waiting for a timeout); never partial lines."""
        with contextlib.suppress(Exception):
            for f in list(self.files.values()):
                self._flush_multiline(f)
            self._send()

    def _run_saver(self) -> None:
        while True:
            self._dirty.wait()
            if self._stopping.is_set():
                return
            self._dirty.clear()
            self.save()
            self._stopping.wait(SAVE_S)

    def save(self) -> None:
        keys = set(self.files)
        self.store.touch(keys, self.ctx.clock.time(), self.config.expire_offsets.seconds)
        if self.store.dirty:
            if self.store.save():
                self.stats.offsets_saved += 1
            else:
                self.stats.offset_save_errors += 1

    # -- commits (pipeline thread) ------------------------------------------------------------------

    def commit(self, records: Sequence[Record]) -> None:
        fids = [r.file_id for r in records]
        last: dict[str, int] = {}
        if fids and fids.count(fids[0]) == len(fids):  # one file, the usual batch: a third of the loop's cost
            if fids[0]:
                last[fids[0]] = records[-1].offset
        else:
            for fid, r in zip(fids, records, strict=True):
                if fid:
                    last[fid] = r.offset
        now = self.ctx.clock.time()
        for fid, offset in last.items():
            with self._cursor_lock:
                cur = self._cursors.get(fid)
            file_id = cur.file_id if cur is not None else FileId.parse(fid)
            if file_id is None:
                continue
            marker = cur.marker_for(offset) if cur is not None else None
            prev = self.store.get(fid)
            path = cur.path if cur is not None else (prev.path if prev is not None else "")
            self.store.update(file_id, offset, marker, path, now)
        if self._stopped:
            self.save()
        else:
            self._dirty.set()

    # -- one pass -----------------------------------------------------------------------------------

    def poll_once(self) -> bool:
        """Reconcile and read once; True when a live file had more to read than one pass takes."""
        now = self.ctx.clock.monotonic()
        due = now >= self._next_refresh
        if not (self._rescan or due):
            self._check_paths()  # may find a rotation and ask for a re-scan in this same pass
        if self._rescan or due:
            self._scan()
            self._next_refresh = now + self.config.refresh_interval.seconds
        more = self._read_all()
        now = self.ctx.clock.monotonic()
        # A reader that is behind (more bytes waiting) has not seen the continuation lines yet: a record held
        # for `flush` only times out once the files are read to their end, or a slow pass would split it.
        for f in [] if more else list(self.files.values()):
            if f.multiline is not None and f.multiline.due(now):
                self.stats.multiline_flushed += 1
                self._flush_multiline(f)
        self._send()
        self._purge_rotated(now)
        self._forget_cursors(now)
        return more

    def _next_deadline(self) -> float:
        now = self.ctx.clock.monotonic()
        deadline = min(now + CHECK_S, self._next_refresh)
        for f in self.files.values():
            if f.rotated_at is not None:
                deadline = min(deadline, f.rotated_at + self.config.rotate_wait.seconds)
            if f.multiline is not None and (d := f.multiline.deadline()) is not None:
                deadline = min(deadline, d)
        return deadline

    def _scan(self) -> None:
        self._rescan = False
        self.store.scanned_at = self.ctx.clock.time()
        self._check_paths()
        found = discovery.expand(self.config.path, self.config.exclude)
        self._unopened.intersection_update(found.files)  # one deleted since is no reason to rescan any more
        for path in found.directories + found.others:
            self._report_once(path, "path_not_a_file")
        if self.watcher is not None:
            for pattern in self.config.path:
                root, recursive = discovery.watch_root(pattern)
                self.watcher.watch(root, recursive)
        now_wall = self.ctx.clock.time()
        for path, st in found.files.items():
            key = (st.st_dev, st.st_ino)
            if self.active.get(path) == key:
                continue
            f = self.files.get(key)
            if f is not None:
                f.rotated_at = None  # e.g. renamed to a name the glob matches too: keep following it
                self.active[path] = key
                continue
            if self._ignore_old(path, key, st, now_wall):
                continue
            self.open_file(path, start=None)
        if self._first_scan:
            self._resumer.recover_orphans()
            self._resumer.recover_unseen_at_start()
        elif self._rotated_since:
            self._resumer.recover_unseen(self._rotated_since)
        self._rotated_since = {}
        self._first_scan = False

    def _ignore_old(self, path: str, key: tuple[int, int], st: os.stat_result, now_wall: float) -> bool:
        """`ignore_older`: skip stale files without offsets; follow them from their old size once written."""
        limit = self.config.ignore_older
        seen = self._ignored.get(path)
        if seen is not None and seen[0] == key:
            if st.st_mtime <= seen[1]:
                return True
            del self._ignored[path]
            self.open_file(path, start=seen[2])
            return True
        if limit is None or now_wall - st.st_mtime <= limit.seconds or self.store.latest_for(*key) is not None:
            return False
        self._ignored[path] = (key, st.st_mtime, st.st_size)
        return True

    def _report_once(self, path: str, event: str, **kw: object) -> None:
        if path not in self._reported:
            self._reported.add(path)
            log.warning(event, path=path, **kw)

    def open_file(
        self, path: str, start: int | None, rotated: bool = False, durable_from: int | None = None
    ) -> TailFile | None:
        """Open and register a file; `start=None` decides from saved offsets (or `read_from`).

        `durable_from` (default: the start) is what a restart should resume from if nothing of this file
        gets committed: lower than `start` when it continues content whose records are still in flight.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except PermissionError as exc:
            if path not in self._reported:
                self.stats.permission_denied += 1
            self._unopened.add(path)
            self._report_once(path, "file_permission_denied", error=str(exc), retry="on every scan")
            return None
        except OSError as exc:
            if exc.errno in _GONE:
                return None  # gone since the glob; a directory; the next scan decides again
            # Out of descriptors (EMFILE/ENFILE), an I/O error: the file exists and is not being read.
            if path not in self._reported:
                self.stats.access_errors += 1
            self._unopened.add(path)
            hint = "raise LimitNOFILE (ulimit -n)" if exc.errno in (errno.EMFILE, errno.ENFILE) else None
            self._report_once(path, "file_open_failed", error=str(exc), retry="on every scan", hint=hint)
            return None
        self._reported.discard(path)
        self._unopened.discard(path)
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if key in self.files:
            os.close(fd)
            return self.files[key]
        f = TailFile(path, fd, st.st_dev, st.st_ino, 0)
        offset = self._resumer.start_offset(f, st, self._first_scan) if start is None else start
        f.seek(offset)
        self._register(f, offset if durable_from is None else min(durable_from, offset))
        f.multiline = MultilineBuffer(self._ml) if self._ml is not None else None
        self.files[key] = f
        if rotated:
            f.rotated_at = self.ctx.clock.monotonic()
        else:
            self.active[path] = key
        self.stats.files_opened += 1
        self.stats.files_open = len(self.files)
        if self.watcher is not None and os.path.islink(path):
            self.watcher.watch(os.path.dirname(os.path.realpath(path)))
        return f

    def _check_paths(self) -> None:
        """A followed path that now names another inode, or nothing, means its file was rotated."""
        checked_before, self._checked_at = self._checked_at, self.ctx.clock.time()
        for path, key in list(self.active.items()):
            try:
                st = os.stat(path)
                now_key: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                now_key = None
            except OSError:
                continue
            if now_key == key:
                continue
            del self.active[path]
            self._rescan = True
            self._rotated_since[path] = checked_before
            f = self.files.get(key)
            if f is not None and key not in self.active.values() and f.rotated_at is None:
                f.rotated_at = self.ctx.clock.monotonic()
                self.stats.files_rotated += 1
                log.info("file_rotated", path=path, inode=key[1], moved=now_key is not None)

    # -- reading ------------------------------------------------------------------------------------

    def _read_all(self) -> bool:
        rotated = sorted((f for f in self.files.values() if f.rotated_at is not None), key=_rotated_order)
        for f in rotated:
            self._read(f, None)
        more = False
        for f in list(self.files.values()):
            if f.rotated_at is None and f.fd >= 0 and self._read(f, BUDGET):
                more = True
        return more

    def _read(self, f: TailFile, budget: int | None) -> bool:
        try:
            st = os.fstat(f.fd)
        except OSError:
            return False
        seen = (st.st_size, st.st_mtime_ns)
        if seen != f.last_seen:  # changed since the last pass: was it truncated (and maybe rewritten)?
            replaced = f.cursor is None and f.fp is not None and read_fingerprint(f.fd, self.fp_limit) != f.fp
            if st.st_size < f.read_pos or replaced or not f.tail_intact():
                self._truncated(f)
            f.last_seen = seen
        f.read_wall = self.ctx.clock.time()
        total = 0
        while not (self._stopping.is_set() and self._threads):
            want = CHUNK if budget is None else min(CHUNK, budget - total)
            try:
                data = os.pread(f.fd, want, f.read_pos)
            except OSError as exc:
                self._report_once(f.path, "file_read_failed", error=str(exc))
                return False
            if not data:
                return False
            since = f.line_start
            head, ends = f.feed(data, self.rules, self.stats)
            self.stats.bytes_read += len(data)
            total += len(data)
            if ends:
                self._deliver(f, head, ends, since)
            if len(data) < want:
                return False
            if budget is not None and total >= budget:
                return True
        return False

    def cursor_inodes(self) -> set[tuple[int, int]]:
        with self._cursor_lock:
            return {(c.file_id.dev, c.file_id.ino) for c in self._cursors.values()}

    def _cursor(self, f: TailFile, since: int) -> Cursor | None:
        if f.cursor is None and f.identify(since, self.rules) is not None:
            assert f.cursor is not None
            with self._cursor_lock:
                self._cursors[str(f.cursor.file_id)] = f.cursor
            self.store.register(f.cursor.file_id, since, marker_at(f.fd, since), f.path, self.ctx.clock.time())
            self._dirty.set()
        return f.cursor

    def _register(self, f: TailFile, offset: int) -> None:
        """Save where we start in a file before anything of it is committed (see OffsetStore.register)."""
        fp = read_fingerprint(f.fd, self.fp_limit)
        f.fp = fp  # what the content was, should it be copied and truncated before we read any of it
        if fp is not None and self.store.latest_for(f.dev, f.ino) is None:
            self.store.register(FileId(f.dev, f.ino, fp), offset, marker_at(f.fd, offset), f.path,
                                self.ctx.clock.time())
            self._dirty.set()

    def _deliver(self, f: TailFile, head: bytes, ends: list[int], since: int) -> None:
        """Decode the complete lines of one read, assemble multiline records, queue them as Records.

        This runs for every line at full rate, so it works on whole lists: one decode of the joined lines,
        one split, records built by `map`. Only a chunk that does not decode falls back to line by line,
        so each bad line is counted and replaced on its own.
        """
        cursor = self._cursor(f, since)
        fid = str(cursor.file_id) if cursor is not None else ""
        self.stats.lines_read += len(ends)
        texts = self._decode(head)
        if b"\r" in head:  # CRLF files: drop the CR that ends a line
            texts = [t[:-1] if t[-1:] == "\r" else t for t in texts]
        ml = f.multiline
        if ml is None:
            raws, offsets = texts, ends
        else:
            raws, offsets, forced = ml.push_many(texts, ends, self.ctx.clock.monotonic())
            self.stats.multiline_flushed += forced
        if not raws:
            return
        n = len(raws)
        self._out += map(Record, repeat(self.ctx.tag, n), repeat(f.path, n), raws, offsets, repeat(fid, n),
                         repeat(self.ctx.clock.time(), n))
        if cursor is not None:
            cursor.emitted = max(cursor.emitted, offsets[-1])
        out = self._out
        size = self.ctx.batch_size
        if len(out) >= size and self._emit is not None:  # whole batches now; the rest goes at the pass end
            full = len(out) - len(out) % size
            self._out = out[full:]
            for i in range(0, full, size):
                self._emit_batch(out[i:i + size])

    def _decode(self, head: bytes) -> list[str]:
        enc = self.config.encoding
        try:
            return head.decode(enc).split("\n")
        except UnicodeDecodeError:
            pass
        texts = []
        for raw in head.split(b"\n"):
            try:
                texts.append(raw.decode(enc))
            except UnicodeDecodeError:
                self.stats.decode_errors += 1
                texts.append(raw.decode(enc, "replace"))
        return texts

    def _emit_one(self, f: TailFile, text: str, end: int) -> None:
        fid = str(f.cursor.file_id) if f.cursor is not None else ""
        self._out.append(Record(tag=self.ctx.tag, source=f.path, raw=text, offset=end, file_id=fid,
                                read_time=self.ctx.clock.time()))
        if f.cursor is not None:
            f.cursor.emitted = max(f.cursor.emitted, end)

    def _flush_multiline(self, f: TailFile) -> None:
        if f.multiline is not None and (rec := f.multiline.take()) is not None:
            self._emit_one(f, rec[0], rec[1])

    def _send(self) -> None:
        if self._out:
            batch, self._out = self._out, []
            self._emit_batch(batch)

    def _emit_batch(self, batch: list[Record]) -> None:
        if self._emit is None:
            self._out[:0] = batch
            return
        self.stats.records_emitted += len(batch)
        self._emit(batch)

    # -- truncation, rotation end -------------------------------------------------------------------

    def _truncated(self, f: TailFile) -> None:
        self.stats.files_truncated += 1
        log.info("file_truncated", path=f.path, offset=f.read_pos)
        self._flush_multiline(f)
        self._send()
        if f.fp is not None:  # also with nothing read yet: the copy then matches from byte 0
            durable = f.cursor.committed if f.cursor is not None else f.line_start
            copy = self._resumer.recover_copy(f.path, f.fp, f.read_pos, digest(f.tail), f.line_start, {f.key}, durable)
            if copy is not None:
                self._read(copy, None)  # the old content's rest goes out before the new content
        for unseen in self._resumer.recover_unseen({f.path: f.read_wall}):  # copies of generations never seen
            self._read(unseen, None)
        if f.cursor is not None:
            f.cursor.closed_at = self.ctx.clock.monotonic()
        f.reset()
        f.multiline = MultilineBuffer(self._ml) if self._ml is not None else None

    def _purge_rotated(self, now: float) -> None:
        wait = self.config.rotate_wait.seconds
        for f in [f for f in self.files.values() if f.rotated_at is not None and now - f.rotated_at >= wait]:
            self._read(f, None)
            self._flush_multiline(f)
            partial = f.take_partial()
            if partial is not None:
                text = partial[0].decode(self.config.encoding, "replace")
                self._emit_one(f, text, partial[1])
            self._send()
            self.close_file(f)

    def close_file(self, f: TailFile) -> None:
        if f.cursor is not None:
            f.cursor.closed_at = self.ctx.clock.monotonic()
        f.close()
        self.files.pop(f.key, None)
        for path in [p for p, k in self.active.items() if k == f.key]:
            del self.active[path]
        self.stats.files_closed += 1
        self.stats.files_open = len(self.files)

    def _forget_cursors(self, now: float) -> None:
        """Drop cursors of closed generations once their records were committed (or nobody commits)."""
        keep_s = max(60.0, 2 * self.config.rotate_wait.seconds)
        with self._cursor_lock:
            for fid, cur in list(self._cursors.items()):
                if cur.closed_at is not None and (cur.committed >= cur.emitted or now - cur.closed_at > keep_s):
                    del self._cursors[fid]


def _rotated_order(f: TailFile) -> float:
    return f.rotated_at if f.rotated_at is not None else 0.0

