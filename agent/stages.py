"""Bounded hand-off between stages and the routing of records by tag.

A `BoundedQueue` blocks the producer when full (backpressure reaches the tailer, which simply reads
later), never drops silently, and lets a closing pipeline unblock producers so shutdown is bounded.
"""

from __future__ import annotations

import fnmatch
import queue
import threading
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueClosed(Exception):
    """The consumer is gone; the producer must stop (its data was not committed, so nothing is lost)."""


@dataclass(slots=True)
class QueueStats:
    put: int = 0
    blocked_s: float = 0.0
    """Seconds producers spent waiting on a full queue: the backpressure that reached them."""


class BoundedQueue(Generic[T]):
    def __init__(self, maxsize: int) -> None:
        self._q: queue.Queue[T] = queue.Queue(maxsize=maxsize)
        self._closed = threading.Event()
        self.stats = QueueStats()

    def put(self, item: T) -> None:
        """Block while full; raise QueueClosed when the consumer has shut down."""
        try:
            self._q.put_nowait(item)
            self.stats.put += 1
            return
        except queue.Full:
            pass
        started = time.monotonic()
        while not self._closed.is_set():
            try:
                self._q.put(item, timeout=0.1)
                self.stats.put += 1
                self.stats.blocked_s += time.monotonic() - started
                return
            except queue.Full:
                continue
        raise QueueClosed

    def offer(self, item: T) -> bool:
        """Put without blocking; False when full (a wake-up hint that may be dropped: the consumer is busy)."""
        try:
            self._q.put_nowait(item)
        except queue.Full:
            return False
        return True

    def get(self, timeout: float) -> T | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def get_nowait(self) -> T | None:
        try:
            return self._q.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def qsize(self) -> int:
        return self._q.qsize()

    @property
    def maxsize(self) -> int:
        return self._q.maxsize


def tag_matches(pattern: str, tag: str) -> bool:
    """Fluent Bit-style routing: `match` is a glob over tags (`app.*`, `*`)."""
    return pattern == "*" or pattern == tag or fnmatch.fnmatchcase(tag, pattern)

