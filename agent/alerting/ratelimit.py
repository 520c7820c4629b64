"""A token bucket: `rate_per_minute` tokens a minute, bursts up to one minute's worth.

Used for the router's global and per-output notification limits. Time comes from the injected clock's
monotonic side, so tests move it with a ManualClock.
"""

from __future__ import annotations

from agent.clock import Clock


class TokenBucket:
    __slots__ = ("_clock", "_last", "_rate_s", "_tokens", "capacity")

    def __init__(self, rate_per_minute: float, clock: Clock) -> None:
        self.capacity = float(rate_per_minute)
        self._rate_s = rate_per_minute / 60.0
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self._rate_s)
        self._last = now

    def available(self) -> bool:
        self._refill()
        return self._tokens >= 1.0

    def take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
