"""Durable delivery against a real HTTP receiver on 127.0.0.1 that fails in every way a receiver can."""

from __future__ import annotations

import itertools
import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.alerting.config import AlertsConfig, RetryConfig
from agent.alerting.delivery import DeliveryWorker
from agent.alerting.router import AlertRouter
from agent.alerting.spool import Spool
from agent.alerting.testing import Receiver, Request, Response
from agent.plugin import PluginContext
from agent.schema import Duration
from agent.types import Evidence, Score
from plugins.outputs.webhook import WebhookConfig, WebhookOutput

FAST = RetryConfig(base=Duration(0.01), cap=Duration(1.5), limit=-1)


def score(i: int, window: int = 0) -> Score:
    return Score(
        detector="novelty", stream="app", key=f"w{window}", start=float(window), end=float(window) + 1, score=1.0,
        threshold=0.5, is_anomaly=True, title=f"new template {i}", summary="never seen", evidence=Evidence(),
        source="/var/log/app.log", condition=f"cond-{i}",
    )


class Script:
    """Answers from a plan of responses first, then with 200; thread-safe."""

    def __init__(self, plan: list[Response] | None = None, every: int = 0) -> None:
        self.plan = list(plan or [])
        self.every = every
        self.n = 0
        self.lock = threading.Lock()

    def __call__(self, _req: Request) -> Response:
        with self.lock:
            self.n += 1
            if self.plan:
                return self.plan.pop(0)
            if self.every and self.n % self.every == 0:
                return Response(500, b"flaky")
        return Response(200, b"ok")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.close()


def router_for(tmp_path: Path, rx: Receiver, retry: RetryConfig = FAST, **cfg: object) -> AlertRouter:
    ctx = PluginContext(instance="output.webhook.0", state_dir=tmp_path, host="h")
    hook = WebhookOutput(WebhookConfig(url=rx.url + "/hook"), ctx)
    config = AlertsConfig(max_per_minute=10_000, output_max_per_minute=10_000, retry=retry, **cfg)  # type: ignore[arg-type]
    return AlertRouter(config, [("output.webhook.0", "*", hook)], tmp_path / "spool.db", "h")


def first_occurrence_keys(rx: Receiver) -> list[str]:
    seen: dict[str, None] = {}
    for req in rx.accepted:
        seen.setdefault(req.headers["idempotency-key"], None)
    return list(seen)


def test_every_alert_arrives_in_order_after_500_429_and_refused_connections(
    tmp_path: Path, receiver: Receiver, waiter: Callable[..., None]
) -> None:
    script = Script([Response(500, b"boom")] * 3 + [Response(429, b"slow down", (("Retry-After", "1"),))], every=7)
    receiver.responder = script
    router = router_for(tmp_path, receiver)
    router.start()
    created = router.submit([score(i, window=i // 5) for i in range(10)])
    waiter(lambda: len(receiver.requests) >= 5, what="the 500s and the 429 to be answered")
    receiver.down()
    retried = router.stats()["retried"]
    created += router.submit([score(i, window=i // 5) for i in range(10, 20)])
    waiter(lambda: router.stats()["retried"] >= retried + 3, what="retries against a refused connection")
    receiver.up()
    created += router.submit([score(i) for i in range(20, 30)])
    waiter(lambda: router.stats()["pending"] == 0, timeout=20, what="the spool to drain")
    router.close(2.0)
    ids = [a.id for a in created]
    assert len(set(ids)) == 30
    assert first_occurrence_keys(receiver) == ids
    # Repeats (requests the receiver saw but answered 500) carry the key of the alert they repeat.
    bodies = [(r.headers["idempotency-key"], json.loads(r.body)) for r in receiver.requests]
    assert len({k for k, _ in bodies}) < len(bodies)
    assert all(key == body["id"] for key, body in bodies)
    # The 429 (4th request) was honoured: nothing was sent to the receiver for a second after it.
    assert receiver.requests[4].at - receiver.requests[3].at >= 0.9


def test_a_router_restarted_during_the_outage_delivers_everything_from_the_spool(
    tmp_path: Path, receiver: Receiver, waiter: Callable[..., None]
) -> None:
    receiver.down()
    first = router_for(tmp_path, receiver)
    first.start()
    created = first.submit([score(i) for i in range(12)])
    waiter(lambda: first.stats()["retried"] >= 2, what="failed attempts before the restart")
    first.close(2.0)
    second = router_for(tmp_path, receiver)
    assert second.stats()["pending"] == 12
    second.start()
    receiver.up()
    created += second.submit([score(i) for i in range(12, 15)])
    waiter(lambda: second.stats()["pending"] == 0, timeout=20, what="the spool to drain after restart")
    second.close(2.0)
    assert first_occurrence_keys(receiver) == [a.id for a in created]


def test_400_dead_letters_at_once_with_the_response_body_and_the_queue_moves_on(
    tmp_path: Path, receiver: Receiver, waiter: Callable[..., None]
) -> None:
    receiver.responder = Script([Response(400, b"invalid_payload: field x")])
    router = router_for(tmp_path, receiver)
    with capture_logs() as logs:
        router.start()
        bad, good = router.submit([score(0, window=0)]) + router.submit([score(1, window=1)])
        waiter(lambda: router.stats()["sent"] == 1, what="the alert after the rejected one")
    st = router.stats()
    assert st["dead_lettered"] == 1 and st["rejected"] == 1 and st["retried"] == 0
    ((output, alert_id, reason),) = router.spool.dead_letters()
    assert output == "output.webhook.0" and alert_id == bad.id and "invalid_payload: field x" in reason
    rejected = [e for e in logs if e["event"] == "alert_rejected"]
    assert rejected and "invalid_payload" in rejected[0]["reason"]
    assert [r.headers["idempotency-key"] for r in receiver.accepted] == [good.id]
    router.close(2.0)


def test_retry_limit_dead_letters_and_health_turns_bad_while_failing(
    tmp_path: Path, receiver: Receiver, waiter: Callable[..., None]
) -> None:
    receiver.down()
    router = router_for(tmp_path, receiver, RetryConfig(base=Duration(0.01), cap=Duration(0.02), limit=2),
                        unhealthy_after=Duration(0.0))
    router.start()
    (alert,) = router.submit([score(0)])
    waiter(lambda: not router.healthy(), what="the failing output to make health bad")
    waiter(lambda: router.stats()["dead_lettered"] == 1, what="dead letter after the retry limit")
    assert router.stats()["retried"] == 2
    ((_, alert_id, reason),) = router.spool.dead_letters()
    assert alert_id == alert.id and "retry limit 2" in reason and "ConnectionRefusedError" in reason
    router.close(2.0)


def test_backoff_is_full_jitter_within_the_cap_and_honours_retry_after(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    ctx = PluginContext(instance="output.webhook.0", state_dir=tmp_path, host="h")
    hook = WebhookOutput(WebhookConfig(url="http://127.0.0.1:9/x"), ctx)
    worker = DeliveryWorker("o", hook, spool, RetryConfig(base=Duration(1), cap=Duration(30)), rng=random.Random(7))
    for attempt in range(1, 12):
        ceiling = min(30.0, 2.0 ** (attempt - 1))
        draws = [worker.backoff(attempt, None) for _ in range(200)]
        assert all(0.0 < d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8  # uses the whole range, not a fixed delay
    assert worker.backoff(3, 7.0) == 7.0
    assert worker.backoff(3, 3600.0) == 30.0  # a Retry-After beyond the cap waits the cap
    spool.close()


def test_unreadable_spool_is_set_aside_and_a_fresh_one_used(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    path.write_bytes(b"this is not sqlite" * 100)
    spool = Spool(path)
    assert spool.pending() == 0
    assert list(tmp_path.glob("spool.db.rejected-*"))
    spool.close()


def test_a_retry_after_date_already_past_does_not_turn_retries_into_a_tight_loop(
    tmp_path: Path, receiver: Receiver, waiter: Callable[..., None]
) -> None:
    # A receiver whose clock is behind ours sends a Retry-After date that is already past for us: read
    # literally that is "retry now", and a rate-limiting receiver would get ~100 requests a second.
    past = "Thu, 01 Jan 1970 00:00:01 GMT"
    receiver.responder = Script([Response(429, b"slow down", (("Retry-After", past),))] * 3)
    router = router_for(tmp_path, receiver, RetryConfig(base=Duration(0.3), cap=Duration(1.0)))
    router.start()
    (created,) = router.submit([score(0)])
    waiter(lambda: router.stats()["sent"] == 1, timeout=10, what="delivery after three 429s")
    router.close(2.0)
    at = [r.at for r in receiver.requests]
    assert len(at) == 4 and [r.headers["idempotency-key"] for r in receiver.accepted] == [created.id]
    assert all(b - a >= 0.29 for a, b in itertools.pairwise(at))  # never sooner than retry.base
