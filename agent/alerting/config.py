"""Settings of the alert router (`service.alerts`): dedup, rate limits, retry policy of deliveries."""

from __future__ import annotations

from dataclasses import dataclass

from agent.schema import Duration, opt


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    # Zero used to be accepted and made a failing output retry in a busy loop: a zero base never grows, and a
    # cap under the delivery worker's 10 ms jitter floor makes every scheduled retry look like a clock step,
    # which the worker sends at once. 100 ms keeps the cap well above that floor.
    base: Duration = opt(
        Duration(1.0), ge=0.01, doc="First retry delay (at least 10ms); doubles on each failure, with jitter."
    )
    cap: Duration = opt(
        Duration(300.0), ge=0.1,
        doc="Longest delay between two retries (at least 100ms), also the most a Retry-After is honoured.",
    )
    limit: int = opt(-1, ge=-1, doc="Attempts before an alert is dead-lettered; -1 retries forever.")

    def __post_init__(self) -> None:
        if self.cap < self.base:
            raise ValueError("retry.cap must not be smaller than retry.base")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertsConfig:
    cooldown: Duration = opt(
        Duration(600.0), doc="Repeats of one condition within this time update the open alert instead of sending a new one."
    )
    resolve_after: Duration = opt(
        Duration(300.0), doc="A firing alert whose condition has not been seen for this long is resolved."
    )
    max_per_minute: int = opt(60, ge=1, doc="Global rate limit of new notifications across all outputs.")
    max_open: int = opt(
        5_000, ge=1,
        doc="Open alerts (conditions remembered to fold repeats) at most, ~2 KB each. Beyond, the oldest never "
        "notified (rate-limited) ones are forgotten first: a flood of distinct conditions cannot grow memory.",
    )
    output_max_per_minute: int = opt(
        30, ge=1, doc="Rate limit of new notifications per output; resolutions and re-sends are not limited."
    )
    max_samples: int = opt(5, ge=0, le=100, doc="Sample raw lines kept as evidence in each alert.")
    max_templates: int = opt(5, ge=1, le=50, doc="Templates listed as evidence in each alert.")
    max_pending: int = opt(
        100_000, ge=1, doc="Notifications the spool holds per output; beyond it the oldest go to the dead-letter table."
    )
    max_dead_letters: int = opt(
        10_000, ge=1,
        doc="Dead letters (rejected, retried out or pushed out of a full spool) kept for an operator; beyond, the "
        "oldest are deleted, so a receiver gone for days cannot fill the disk.",
    )
    unhealthy_after: Duration = opt(
        Duration(300.0), doc="An output failing for this long makes the daemon's health check fail."
    )
    retry: RetryConfig = opt(RetryConfig(), doc="Retry policy for failed deliveries.")
