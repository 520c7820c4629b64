"""A busy file is polled instead of followed by a watchdog event per write, and events come back when it
goes quiet: nothing is lost across either switch, nor across a rotation while polling."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from agent.schema import Duration
from plugins.inputs.tail import TailInput
from tests.plugins.inputs.tail.tailkit import Harness, append

Waiter = Callable[..., None]


class Writer(threading.Thread):
    """Appends numbered lines in small writes every 2 ms (500 write events a second) until stopped,
    reopening the path when asked (a rename rotation: the old descriptor is not written again)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.written: list[str] = []
        self.stop_flag = threading.Event()
        self.reopen = threading.Event()
        self.reopened = threading.Event()

    def run(self) -> None:
        fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - reopened on rotation
        n = 0
        try:
            while not self.stop_flag.is_set():
                if self.reopen.is_set() and not self.reopened.is_set():
                    fh.close()
                    fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
                    self.reopened.set()
                lines = [f"line {n + k} {'x' * 40}" for k in range(20)]
                fh.write("".join(line + "\n" for line in lines))
                fh.flush()
                self.written += lines
                n += 20
                time.sleep(0.002)
        finally:
            fh.close()


def _watcher_content(inp: TailInput) -> bool:
    watcher = inp._tailer.watcher  # which mask the inotify watches have is not part of the input's API
    assert watcher is not None
    return watcher.content


def test_busy_file_is_polled_then_followed_by_events_again_losing_nothing(harness: Harness, waiter: Waiter) -> None:
    log = harness.dir / "app.log"
    log.touch()
    # No periodic rescan (the harness's is 0.2 s): only events, or the reader's 2 s check, find a change, so
    # the rotation below is seen through the structure-only watch and the last line through re-armed events.
    inp, sink = harness.make(background=True, refresh_interval=Duration(3600.0))
    writer = Writer(log)
    writer.start()
    try:
        # The watches change mode before the switch is counted (re-arming takes a moment): wait for both.
        # A loaded machine may stall the writer long enough to switch back and forth, hence ">= 1".
        waiter(lambda: inp.stats()["polling_switches"] >= 1 and not _watcher_content(inp), timeout=10.0,
               what="the reader to poll the busy file")
        # Rotate while polling: the structure-only watch still reports the rename and the new file.
        os.rename(log, harness.dir / "app.log.1")
        writer.reopen.set()
        waiter(writer.reopened.is_set, what="the writer to reopen")
        time.sleep(0.3)  # keep writing to the new file while polling
    finally:
        writer.stop_flag.set()
        writer.join(5.0)
    waiter(lambda: len(sink.lines()) >= len(writer.written), timeout=10.0, what="every written line")
    waiter(lambda: _watcher_content(inp), timeout=5.0, what="write events to be re-armed once quiet")
    assert Counter(sink.lines()) == Counter(writer.written)
    assert inp.stats()["files_rotated"] == 1
    # Events again: a single write is read long before the 2 s reconcile would find it.
    started = time.monotonic()
    append(harness.dir / "app.log", "after the burst\n")
    waiter(lambda: sink.lines()[-1:] == ["after the burst"], timeout=5.0, what="the line after the burst")
    assert time.monotonic() - started < 1.5
    harness.stop(inp)
    assert Counter(sink.lines()) == Counter([*writer.written, "after the burst"])


def test_slow_writes_keep_the_write_events(harness: Harness, waiter: Waiter) -> None:
    """A file written 4 times a second is cheaper to follow by events than to poll 10 times a second."""
    log = harness.dir / "app.log"
    append(log, "first\n")
    inp, sink = harness.make(background=True)
    waiter(lambda: sink.lines() == ["first"], what="the first line")
    for i in range(12):
        append(log, f"slow {i}\n")
        time.sleep(0.25)
    waiter(lambda: len(sink.lines()) == 13, what="every slow line")
    assert inp.stats()["polling_switches"] == 0 and _watcher_content(inp)
