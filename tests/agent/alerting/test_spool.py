"""The spool and its delivery thread when the spool itself misbehaves: locked, holding a bad row, full, or the
wall clock stepping back under a scheduled retry. Real SQLite files, a real receiver on 127.0.0.1."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.alerting.config import AlertsConfig, RetryConfig
from agent.alerting.delivery import DeliveryWorker
from agent.alerting.router import AlertRouter
from agent.alerting.spool import Notification, Spool
from agent.alerting.testing import Receiver, Request, Response
from agent.errors import LogwardenError
from agent.plugin import PluginContext
from agent.schema import Duration
from agent.types import Alert, AlertStatus, Evidence, Score, Severity
from plugins.outputs.webhook import WebhookConfig, WebhookOutput

OUT = "output.webhook.0"


def alert(i: int) -> Alert:
    return Alert(
        fingerprint=f"fp{i}", status=AlertStatus.FIRING, severity=Severity.WARNING, title=f"t{i}", summary="s",
        evidence=Evidence(), host="h", source="/s", detector="novelty", score=1.0, threshold=0.5, first_seen=1.0,
        last_seen=2.0,
    )


def spooled(spool: Spool, *idx: int) -> list[Alert]:
    return spool.commit([Notification(alert(i), f"g{i}", [OUT]) for i in idx], time.time())


def hook(tmp_path: Path, rx: Receiver) -> WebhookOutput:
    return WebhookOutput(WebhookConfig(url=rx.url + "/hook"), PluginContext(instance=OUT, state_dir=tmp_path, host="h"))


def keys(rx: Receiver) -> list[str]:
    return [r.headers["idempotency-key"] for r in rx.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.close()


def test_a_spool_locked_by_another_process_is_refused_not_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path)
    spooled(spool, 1, 2)
    spool.close()
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")  # e.g. a second daemon on the same state_dir, or an operator's sqlite3
    with pytest.raises(LogwardenError, match="locked"):
        Spool(path, busy_timeout_s=0.2)
    other.execute("ROLLBACK")
    other.close()
    assert not list(tmp_path.glob("spool.db.rejected-*"))
    again = Spool(path)
    assert again.pending(OUT) == 2  # the pending alerts were kept, not moved out of the daemon's sight
    again.close()


def test_an_unreadable_head_row_is_dead_lettered_and_the_next_one_sent_at_once(
    tmp_path: Path, receiver: Receiver, waiter: Callable[..., None]
) -> None:
    spool = Spool(tmp_path / "spool.db")
    bad, good = spooled(spool, 1, 2)
    raw = sqlite3.connect(str(tmp_path / "spool.db"), isolation_level=None)
    raw.execute("UPDATE notifications SET body='{\"schema_version\": 99}' WHERE alert_id=?", (bad.id,))
    raw.close()
    worker = DeliveryWorker(OUT, hook(tmp_path, receiver), spool, RetryConfig(base=Duration(0.01), cap=Duration(1)))
    worker.start()  # nobody wakes it afterwards: the queue behind the bad row must not wait for the idle backstop
    waiter(lambda: receiver.accepted, timeout=5, what="the row after the unreadable one")
    worker.stop()
    assert worker.join(5)
    assert keys(receiver) == [good.id]
    assert [(o, a) for o, a, _ in spool.dead_letters()] == [(OUT, bad.id)]
    spool.close()


def test_a_retry_scheduled_before_the_clock_stepped_back_is_not_postponed_by_the_step(
    tmp_path: Path, receiver: Receiver, waiter: Callable[..., None]
) -> None:
    spool = Spool(tmp_path / "spool.db")
    (a,) = spooled(spool, 1)
    ((seq,),) = sqlite3.connect(str(tmp_path / "spool.db")).execute("SELECT seq FROM deliveries").fetchall()
    # Scheduled 1 s ahead, then the wall clock was stepped back by an hour (NTP, a VM restored): next_at now
    # lies an hour ahead, beyond anything the policy (cap 1 s) can produce.
    spool.retry_later(OUT, [seq], 1, time.time() + 3600, "HTTP 500")
    worker = DeliveryWorker(OUT, hook(tmp_path, receiver), spool, RetryConfig(base=Duration(0.01), cap=Duration(1)))
    worker.start()
    waiter(lambda: receiver.accepted, timeout=8, what="the retry within the policy's cap despite the clock step")
    worker.stop()
    assert worker.join(5)
    assert keys(receiver) == [a.id] and spool.pending() == 0
    spool.close()


def test_a_spool_write_failing_after_a_send_neither_kills_delivery_nor_sends_twice(
    tmp_path: Path, receiver: Receiver, waiter: Callable[..., None]
) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, busy_timeout_s=0.05)
    first, second = spooled(spool, 1, 2)
    locker = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)

    def lock_then_ok(req: Request) -> Response:
        if not receiver.requests:  # the first request: the spool cannot record its ack (disk full, locked...)
            locker.execute("BEGIN IMMEDIATE")
        return Response(200, b"ok")

    receiver.responder = lock_then_ok
    worker = DeliveryWorker(OUT, hook(tmp_path, receiver), spool, RetryConfig(base=Duration(0.01), cap=Duration(1)))
    with capture_logs() as logs:
        worker.start()
        waiter(lambda: any(e["event"] == "spool_write_failed" for e in logs), timeout=5,
               what="the failed ack to be logged")
        locker.execute("ROLLBACK")
        waiter(lambda: spool.pending() == 0, timeout=8, what="delivery to go on once the spool can be written")
    worker.stop()
    assert worker.join(5)
    locker.close()
    assert keys(receiver) == [first.id, second.id]  # the acknowledged alert was not sent again
    spool.close()


def test_a_long_outage_keeps_the_spool_bounded_and_counts_what_it_drops(
    tmp_path: Path, receiver: Receiver, waiter: Callable[..., None]
) -> None:
    receiver.down()
    config = AlertsConfig(max_per_minute=10_000, output_max_per_minute=10_000, max_pending=3, max_dead_letters=5,
                          retry=RetryConfig(base=Duration(5), cap=Duration(5)))
    router = AlertRouter(config, [(OUT, "*", hook(tmp_path, receiver))], tmp_path / "spool.db", "h")
    router.start()
    with capture_logs() as logs:
        for i in range(40):
            router.submit([Score(detector="novelty", stream="app", key="w", start=0.0, end=1.0, score=1.0,
                                 threshold=0.5, is_anomaly=True, title=f"t{i}", condition=f"c{i}")])
    st = router.stats()
    assert st["pending"] == 3
    assert st["spool_dropped"] == 37  # every notification pushed out is counted...
    assert len(router.spool.dead_letters(1000)) == 5  # ...but the dead-letter table does not grow without bound
    full = [e for e in logs if e["event"] == "spool_full"]
    assert 1 <= len(full) <= 7  # logged at 1, 2, 4, ... drops, not once per alert
    router.close(2.0)
    size = (tmp_path / "spool.db").stat().st_size
    assert size < 1_000_000
