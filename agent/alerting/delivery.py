"""One delivery thread per output: sends the spool's pending notifications in order, retrying with backoff.

The head of an output's queue blocks the rest (head-of-line), which is what makes delivery in-order per
output: a notification is sent only once everything spooled before it for that output was acknowledged
or dead-lettered. Backoff is exponential with full jitter (a uniform delay in [0, min(cap, base·2^n)]), so
many agents recovering from one receiver outage do not retry in lock-step; a receiver's `Retry-After`
replaces the computed delay (at least `base`, at most `cap`). Retry times are wall-clock seconds persisted in the spool,
so a restart keeps honouring them.

Waits use real time on purpose: retries are about a remote receiver, not about the pipeline's clock.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import structlog

from agent.alerting.config import RetryConfig
from agent.alerting.spool import Pending, Spool
from agent.plugin import Delivery, Output, Rejected, Retry, Sent

log = structlog.get_logger("logwarden.alerting.delivery")

_MIN_DELAY_S = 0.01
"""Full jitter can draw ~0; a floor keeps a failing receiver from being hammered in a tight loop."""


_IDLE_S = 300.0
"""Longest sleep with nothing pending; wake-ups come from the router, this only guards against a lost one."""
_RETRY_WAIT_CAP_S = 10.0
"""Longest single wait for a retry that is not due yet: `next_at` is wall time, so a clock step can make the
computed delay wrong by any amount; the cap bounds how late that makes a retry."""
_SPOOL_RETRY_S = 1.0
"""Wait before touching the spool again after a write to it failed (disk full, locked by another process)."""


@dataclass(slots=True)
class OutputStats:
    sent: int = 0
    requests: int = 0
    retried: int = 0
    dead_lettered: int = 0
    rejected: int = 0
    latency_sum_s: float = 0.0
    latency_max_s: float = 0.0
    failing_since: float | None = None
    """Monotonic time of the first failure of the current head; None while deliveries succeed."""


class DeliveryWorker:
    def __init__(
        self,
        instance: str,
        output: Output,
        spool: Spool,
        retry: RetryConfig,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.instance = instance
        self.output = output
        self.spool = spool
        self.retry = retry
        self.stats = OutputStats()
        self.max_batch = max(1, int(getattr(output, "max_batch", 1)))
        self.by_group = bool(getattr(output, "group_by_window", False))
        self.min_interval_s = float(getattr(output, "min_interval_s", 0.0))
        self._rng = rng or random.Random()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_request = -1e18
        self._unacked: list[int] = []
        """Seqs the receiver accepted whose ack the spool failed to record: recorded before anything is sent
        again, so a spool hiccup does not turn into a duplicate notification."""
        self._spool_failures = 0
        self._thread = threading.Thread(target=self._run, name=f"deliver-{instance}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self._unacked:
                    self.spool.ack(self.instance, self._unacked)
                    self._unacked = []
                batch = self.spool.head(self.instance, self.max_batch, by_group=self.by_group)
            except Exception as exc:  # the spool's disk failing must not end delivery for good
                self._spool_failed("read", exc)
                continue
            if not batch:
                # The router wakes us after every spool commit, and this thread is the spool's only reader for
                # this output: an empty queue sleeps until then. The timeout is a backstop, not a poll.
                self._wake.wait(_IDLE_S)
                continue
            delay = batch[0].next_at - time.time()
            if delay > self.retry.cap.seconds:
                # No backoff and no honoured Retry-After exceeds `cap`: the wall clock was stepped back after
                # this retry was scheduled. Waiting for wall time to catch up would stall the queue for as long
                # as the step; the receiver has been left alone for at least the intended delay anyway.
                delay = 0.0
            if delay > 0:
                self._stop.wait(min(delay, _RETRY_WAIT_CAP_S))
                continue
            pace = self._last_request + self.min_interval_s - time.monotonic()
            if pace > 0:
                self._stop.wait(pace)
                continue
            try:
                self._send(batch)
            except Exception as exc:  # recording the outcome failed; the thread must outlive a full disk
                self._spool_failed("write", exc)
                continue
            self._spool_failures = 0

    def _spool_failed(self, op: str, exc: Exception) -> None:
        self._spool_failures += 1
        n = self._spool_failures
        if n & (n - 1) == 0:  # 1, 2, 4, ...: a disk full for an hour logs a dozen lines, not thousands
            log.error("spool_write_failed" if op == "write" else "spool_read_failed", output=self.instance,
                      error=str(exc), failures=n)
        self._stop.wait(_SPOOL_RETRY_S)

    def _send(self, batch: list[Pending]) -> None:
        self._last_request = time.monotonic()
        self.stats.requests += 1
        try:
            result: Delivery = self.output.deliver([p.alert for p in batch])
        except Exception as exc:  # a plugin bug is a failed delivery, never a dead delivery thread
            log.error("output_raised", output=self.instance, error_type=type(exc).__name__)
            result = Retry(f"output raised {type(exc).__name__}")
        seqs = [p.seq for p in batch]
        now = time.time()
        if isinstance(result, Sent):
            self.stats.sent += len(batch)
            for p in batch:
                lat = max(0.0, now - p.created)
                self.stats.latency_sum_s += lat
                self.stats.latency_max_s = max(self.stats.latency_max_s, lat)
            if self.stats.failing_since is not None:
                log.info("alert_delivery_recovered", output=self.instance, attempts=batch[0].attempts + 1)
                self.stats.failing_since = None
            self._unacked = seqs
            self.spool.ack(self.instance, seqs)
            self._unacked = []
            return
        if self.stats.failing_since is None:
            self.stats.failing_since = time.monotonic()
        ids = [p.alert.id for p in batch]
        if isinstance(result, Rejected):
            self.spool.dead_letter(self.instance, seqs, f"rejected: {result.reason}", now)
            self.stats.rejected += len(batch)
            self.stats.dead_lettered += len(batch)
            log.error("alert_rejected", output=self.instance, alert_ids=ids, reason=result.reason)
            self.stats.failing_since = None  # the receiver answered; the queue moves on
            return
        attempts = batch[0].attempts + 1
        limit = self.retry.limit
        if limit >= 0 and attempts > limit:
            self.spool.dead_letter(self.instance, seqs, f"retry limit {limit} reached: {result.reason}", now)
            self.stats.dead_lettered += len(batch)
            log.error("alert_dead_lettered", output=self.instance, alert_ids=ids, attempts=attempts,
                      reason=result.reason)
            return
        wait = self.backoff(attempts, result.after_s)
        self.spool.retry_later(self.instance, seqs, attempts, now + wait, result.reason)
        self.stats.retried += len(batch)
        if attempts & (attempts - 1) == 0:  # 1, 2, 4, 8…: a long outage logs a handful of lines, not thousands
            log.warning("alert_delivery_failed", output=self.instance, attempts=attempts, retry_in_s=round(wait, 3),
                        reason=result.reason)

    def backoff(self, attempts: int, after_s: float | None) -> float:
        cap = self.retry.cap.seconds
        if after_s is not None:
            # Never sooner than `base`: a Retry-After date already past on our clock (the receiver's clock is
            # behind) or a literal 0 would otherwise retry a rate-limiting receiver in a 10 ms loop.
            return max(_MIN_DELAY_S, min(cap, self.retry.base.seconds), min(after_s, cap))
        ceiling = min(cap, self.retry.base.seconds * (2.0 ** min(attempts - 1, 60)))
        return max(_MIN_DELAY_S, self._rng.uniform(0.0, ceiling))
