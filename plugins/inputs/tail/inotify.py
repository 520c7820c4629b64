"""A minimal inotify observer: one thread, one read per burst of events, one wake-up of the reader per read.

watchdog's InotifyObserver hands every event through three threads (the fd reader, a move-pairing queue,
the dispatcher) and builds an event object per event; at 100 writes/s that was ~3% of a core for nothing,
because the reader only needs to know "something changed" (and whether files may have appeared or gone).
This class keeps watchdog's observer surface that `Watcher` uses (`start`, `schedule`, `unschedule`,
`stop`, `join`), so the polling observer and test doubles stay interchangeable with it.

Unlike watchdog it reports a kernel queue overflow (IN_Q_OVERFLOW) as a structural change, so the reader
re-scans at once instead of waiting for its periodic reconcile. Errors keep watchdog's shape: ENOSPC and
EMFILE are raised as OSError (the watcher falls back to polling), a missing directory as FileNotFoundError.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from watchdog.events import FileCreatedEvent, FileModifiedEvent

IN_MODIFY = 0x00000002
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000

STRUCTURAL = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW
MASK = IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR
"""No IN_OPEN/IN_ACCESS/IN_CLOSE_*: our own reads would wake us, and an idle daemon must stay asleep."""

_HEADER = struct.Struct("iIII")
COALESCE_S = 0.02
"""Pause after delivering a burst; bounds how late a change seen during it reaches an already busy reader."""


@dataclass(slots=True)
class Burst:
    """What one read of the inotify fd said: content changed, files may have come or gone, new directories."""

    modified: bool = False
    structural: bool = False
    new_dirs: list[tuple[int, bytes]] = field(default_factory=list)
    """(watch descriptor, name) of directories created or moved in: recursive watches must cover them."""
    ignored: list[int] = field(default_factory=list)
    """Watch descriptors the kernel dropped (their directory is gone)."""


def parse(buf: bytes) -> Burst:
    """Decode a buffer of `struct inotify_event` records (a pure function, so overflow handling is testable)."""
    out = Burst()
    off = 0
    n = len(buf)
    while off + _HEADER.size <= n:
        wd, mask, _cookie, length = _HEADER.unpack_from(buf, off)
        off += _HEADER.size
        name = buf[off : off + length].rstrip(b"\0")
        off += length
        if mask & STRUCTURAL:
            out.structural = True
            if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                out.new_dirs.append((wd, name))
        if mask & IN_MODIFY:
            out.modified = True
        if mask & IN_IGNORED:
            out.ignored.append(wd)
            out.structural = True
    return out


class _Watch:
    __slots__ = ("path", "recursive")

    def __init__(self, path: str, recursive: bool) -> None:
        self.path = path
        self.recursive = recursive


class InotifyObserver:
    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self._fd: int = fd
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._lock = threading.Lock()
        self._handlers: dict[_Watch, Any] = {}
        self._wds: dict[int, tuple[_Watch, str]] = {}
        """Watch descriptor → the watch it serves and the directory it is on."""
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tail-inotify", daemon=True)

    # -- the observer surface Watcher uses ---------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def schedule(self, handler: Any, path: str, *, recursive: bool = False, **_: Any) -> _Watch:
        watch = _Watch(path, recursive)
        with self._lock:
            self._add(watch, path)  # raises for the root: the caller decides (polling fallback, retry)
            self._handlers[watch] = handler
            if recursive:
                self._add_tree(watch, path)
        return watch

    def unschedule(self, watch: _Watch) -> None:
        with self._lock:
            self._handlers.pop(watch, None)
            for wd in [wd for wd, (w, _) in self._wds.items() if w is watch]:
                del self._wds[wd]
                self._libc.inotify_rm_watch(self._fd, wd)

    def watched_dirs(self) -> set[str]:
        with self._lock:
            return {path for _, path in self._wds.values()}

    def stop(self) -> None:
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            for fd in (self._fd, self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._fd = self._wake_r = self._wake_w = -1

    # -- internals -----------------------------------------------------------------------------------

    def _add(self, watch: _Watch, path: str) -> None:
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err == errno.ENOENT:
                raise FileNotFoundError(err, os.strerror(err), path)
            raise OSError(err, os.strerror(err), path)
        self._wds[wd] = (watch, path)

    def _add_tree(self, watch: _Watch, root: str) -> None:
        """Watch every directory below `root`; ones that vanish or are refused are left to the reconcile."""
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                try:
                    self._add(watch, os.path.join(dirpath, d))
                except OSError:
                    continue

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        stop_only = select.poll()
        stop_only.register(self._wake_r, select.POLLIN)
        while not self._stopping:
            poller.poll()
            if self._stopping:
                return
            try:
                buf = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                continue
            except OSError:
                return
            self._dispatch(parse(buf))
            # The kernel merges identical consecutive events that are still queued: pausing after a wake-up
            # turns a busy file's hundred IN_MODIFY a second into a few reads. The reader is already awake.
            stop_only.poll(int(COALESCE_S * 1000))

    def _dispatch(self, burst: Burst) -> None:
        with self._lock:
            for wd in burst.ignored:
                self._wds.pop(wd, None)
            for wd, name in burst.new_dirs:
                got = self._wds.get(wd)
                if got is not None and got[0].recursive:
                    path = os.path.join(got[1], os.fsdecode(name))
                    try:
                        self._add(got[0], path)
                        self._add_tree(got[0], path)
                    except OSError:
                        pass  # gone already, or over the watch limit: the periodic re-scan still finds files
            handlers = list({id(h): h for h in self._handlers.values()}.values())  # one wake per handler
        event = FileCreatedEvent("") if burst.structural else FileModifiedEvent("") if burst.modified else None
        if event is None:
            return
        for handler in handlers:
            handler.dispatch(event)
