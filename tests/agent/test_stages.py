"""Bounded queues: a full queue blocks the producer (backpressure), closing releases it, nothing is dropped."""

from __future__ import annotations

import threading

import pytest

from agent.stages import BoundedQueue, QueueClosed, tag_matches
from tests.lwtest import wait_for


def test_full_queue_blocks_producer_until_consumer_takes() -> None:
    q: BoundedQueue[int] = BoundedQueue(2)
    q.put(1)
    q.put(2)
    done = threading.Event()

    def producer() -> None:
        q.put(3)
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    wait_for(lambda: q.qsize() == 2, what="queue full")
    assert not done.wait(0.3), "producer must block on a full queue"
    assert q.get(timeout=1.0) == 1
    assert done.wait(5.0)
    t.join()
    assert [q.get(timeout=1.0), q.get(timeout=1.0)] == [2, 3]
    assert q.stats.put == 3
    assert q.stats.blocked_s > 0


def test_close_releases_blocked_producer() -> None:
    q: BoundedQueue[int] = BoundedQueue(1)
    q.put(1)
    raised = threading.Event()

    def producer() -> None:
        try:
            q.put(2)
        except QueueClosed:
            raised.set()

    t = threading.Thread(target=producer)
    t.start()
    q.close()
    assert raised.wait(5.0)
    t.join()
    assert q.get(timeout=0.1) == 1  # what was accepted stays available to drain


def test_no_item_lost_under_many_producers() -> None:
    q: BoundedQueue[int] = BoundedQueue(4)
    n, producers = 2000, 4
    threads = [threading.Thread(target=lambda k=k: [q.put(k * n + i) for i in range(n)]) for k in range(producers)]
    for t in threads:
        t.start()
    got = []
    while len(got) < n * producers:
        item = q.get(timeout=5.0)
        assert item is not None
        got.append(item)
    for t in threads:
        t.join()
    assert sorted(got) == list(range(n * producers))


@pytest.mark.parametrize(
    ("pattern", "tag", "ok"), [("*", "app", True), ("app", "app", True), ("app.*", "app.web", True), ("db", "app", False)]
)
def test_tag_matching(pattern: str, tag: str, ok: bool) -> None:
    assert tag_matches(pattern, tag) is ok
