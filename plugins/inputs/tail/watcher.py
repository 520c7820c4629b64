"""watchdog wiring: filesystem events only wake the reader; they never decide anything.

watchdog drops inotify queue overflows without telling us (gorakhargosh/watchdog#654) and inotify does
not see writes made on another NFS client, so the reader's periodic reconcile is the source of truth and
an event merely makes it run sooner. Directories are watched (not files), so a rename or a re-created file
is seen without re-arming watches. When the kernel refuses a watch (`fs.inotify.max_user_watches`
reached), that directory falls back to a polling observer instead of going blind.

Content events cost more than they are worth under load: watchdog hands each IN_MODIFY through three
threads (reader, emitter, dispatcher), ~0.4 ms of CPU per event here, 4-5% of a core at 100 writes/s. So
the reader may switch the inotify watches to structure only (`set_content(False)`: creates, renames and
deletes still wake it) while it polls a busy file itself, and back when the file goes quiet — Vector and
Filebeat poll growth all the time; we only do it while polling is the cheaper of the two.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import Any

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.polling import PollingObserver

from plugins.inputs.tail.stats import TailStats

log = structlog.get_logger("logwarden.input.tail")

Wake = Callable[[bool], None]
"""Called with True when files may have appeared or gone (re-glob now), False when content changed."""

_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent,
    DirCreatedEvent, DirMovedEvent, DirDeletedEvent,
]
"""Our own reads raise IN_OPEN/IN_ACCESS/IN_CLOSE_NOWRITE; filtering them keeps an idle daemon asleep."""
_STRUCTURE_EVENTS: list[type[FileSystemEvent]] = [e for e in _EVENTS if e is not FileModifiedEvent]
"""While the reader polls: no IN_MODIFY (nor IN_ATTRIB) in the inotify mask at all."""

_STRUCTURAL = frozenset({"created", "moved", "deleted"})


class _Handler(FileSystemEventHandler):
    def __init__(self, wake: Wake) -> None:
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._wake(event.event_type in _STRUCTURAL)


ObserverFactory = Callable[[], Any]


def _inotify_observer() -> Any:
    from watchdog.observers.inotify import InotifyObserver

    return InotifyObserver()


class Watcher:
    """Watches a changing set of directories with one observer, plus a polling one for fallbacks."""

    def __init__(
        self,
        wake: Wake,
        stats: TailStats,
        *,
        poll: bool,
        poll_interval_s: float,
        make_observer: ObserverFactory | None = None,
    ) -> None:
        self._handler = _Handler(wake)
        self._stats = stats
        self._poll_interval_s = poll_interval_s
        self._make_primary: ObserverFactory = (
            (lambda: PollingObserver(timeout=poll_interval_s)) if poll else (make_observer or _inotify_observer)
        )
        self._primary: Any = None
        self._fallback: Any = None
        self._watches: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        self._inotify = not poll
        self.content = True
        """Whether the inotify watches report writes (False while the reader polls a busy file)."""
        self.polled: set[str] = set()
        """Directories watched by polling because inotify refused them."""

    def start(self) -> None:
        with self._lock:
            if self._primary is None:
                try:
                    self._primary = self._make_primary()
                except OSError as exc:
                    log.error("inotify_unavailable", error=str(exc), fallback="polling")
                    self._primary = PollingObserver(timeout=self._poll_interval_s)
                    self._inotify = False
                self._primary.start()

    def watched(self) -> set[str]:
        with self._lock:
            return set(self._watches)

    def watch(self, directory: str, recursive: bool = False) -> bool:
        """Watch a directory (idempotent); False if it does not exist (the reconcile will retry)."""
        with self._lock:
            if directory in self._watches or self._primary is None:
                return True
            try:
                watch = self._primary.schedule(self._handler, directory, recursive=recursive, event_filter=self._filter())
                self._watches[directory] = (self._primary, watch)
                return True
            except FileNotFoundError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                    log.warning("watch_failed", path=directory, error=str(exc))
                    return False
                log.error(
                    "inotify_watch_limit_reached",
                    path=directory,
                    error=str(exc),
                    fallback="polling",
                    hint="raise the sysctl fs.inotify.max_user_watches (and fs.inotify.max_user_instances)",
                )
            return self._poll_locked(directory, recursive)

    def _filter(self) -> list[type[FileSystemEvent]]:
        return _EVENTS if self.content or not self._inotify else _STRUCTURE_EVENTS

    def set_content(self, on: bool) -> bool:
        """Make the inotify watches report writes or not; True if anything changed. A polling observer is left
        alone (it stats what it watches either way). Re-arming a watch takes ~0.4 ms; a write between the old
        watch's removal and the new one's arming raises no event, so the caller reads once after re-arming."""
        with self._lock:
            if on == self.content or self._primary is None or not self._inotify:
                return False
            self.content = on
            for directory, (observer, watch) in list(self._watches.items()):
                if observer is not self._primary:
                    continue
                try:
                    observer.unschedule(watch)
                except (KeyError, OSError):
                    pass
                try:
                    new = observer.schedule(self._handler, directory, recursive=watch.is_recursive,
                                            event_filter=self._filter())
                except OSError as exc:  # gone or out of watches: the next scan watches it again (or polls it)
                    log.warning("watch_failed", path=directory, error=str(exc))
                    del self._watches[directory]
                    continue
                self._watches[directory] = (observer, new)
            return True

    def _poll_locked(self, directory: str, recursive: bool) -> bool:
        if self._fallback is None:
            self._fallback = PollingObserver(timeout=self._poll_interval_s)
            self._fallback.start()
        try:
            watch = self._fallback.schedule(self._handler, directory, recursive=recursive, event_filter=_EVENTS)
        except OSError as exc:
            log.warning("watch_failed", path=directory, error=str(exc))
            return False
        self._watches[directory] = (self._fallback, watch)
        self.polled.add(directory)
        self._stats.polling_fallbacks += 1
        return True

    def unwatch(self, directory: str) -> None:
        with self._lock:
            got = self._watches.pop(directory, None)
            self.polled.discard(directory)
        if got is not None:
            observer, watch = got
            try:
                observer.unschedule(watch)
            except (KeyError, OSError):
                pass

    def stop(self) -> None:
        with self._lock:
            observers = [o for o in (self._primary, self._fallback) if o is not None]
            self._primary = self._fallback = None
            self._watches.clear()
        for o in observers:
            o.stop()
        for o in observers:
            o.join(timeout=5.0)
