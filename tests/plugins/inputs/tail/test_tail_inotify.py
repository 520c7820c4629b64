"""The tail input's own inotify observer: what a burst of kernel events means, recursive watches, stopping.

Timing-free: the tailer re-globs only every 600 s here, so a file in a directory created after start can
only be found in time through inotify events (including the watch added for the new directory).
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from agent.clock import SystemClock
from agent.plugin import PluginContext
from agent.schema import Duration
from plugins.inputs.tail import TailConfig, TailInput
from plugins.inputs.tail.inotify import (
    IN_CREATE,
    IN_IGNORED,
    IN_ISDIR,
    IN_MODIFY,
    IN_Q_OVERFLOW,
    InotifyObserver,
    parse,
)
from tests.lwtest import wait_for
from tests.plugins.inputs.tail.tailkit import Sink, append


def event(wd: int, mask: int, name: bytes = b"") -> bytes:
    """One `struct inotify_event` as the kernel lays it out: the name NUL-padded, `len` counting the padding."""
    padded = name + b"\0" * (16 - len(name) % 16) if name else b""
    return struct.pack("iIII", wd, mask, 0, len(padded)) + padded


def test_parse_tells_content_changes_from_structural_ones() -> None:
    only_writes = parse(event(1, IN_MODIFY, b"app.log") + event(1, IN_MODIFY, b"app.log"))
    assert (only_writes.modified, only_writes.structural, only_writes.new_dirs) == (True, False, [])
    mixed = parse(event(1, IN_MODIFY, b"a.log") + event(2, IN_CREATE | IN_ISDIR, b"sub") + event(3, IN_IGNORED))
    assert (mixed.modified, mixed.structural) == (True, True)
    assert mixed.new_dirs == [(2, b"sub")]
    assert mixed.ignored == [3]


def test_queue_overflow_is_a_structural_change() -> None:
    """watchdog drops IN_Q_OVERFLOW (wd -1); here it makes the reader re-scan at once."""
    burst = parse(event(-1, IN_Q_OVERFLOW))
    assert burst.structural and not burst.modified


class Recorder(FileSystemEventHandler):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        with self.lock:
            self.events.append(event.event_type)

    def seen(self, kind: str) -> bool:
        with self.lock:
            return kind in self.events


def test_observer_wakes_on_writes_and_creations_and_stops(tmp_path: Path) -> None:
    obs = InotifyObserver()
    rec = Recorder()
    obs.schedule(rec, str(tmp_path))
    obs.start()
    try:
        (tmp_path / "a.log").write_text("x\n")
        wait_for(lambda: rec.seen("created"), what="a structural wake-up")
        append(tmp_path / "a.log", "y\n")
        wait_for(lambda: rec.seen("modified"), what="a content wake-up")
    finally:
        obs.stop()
        obs.join(5.0)
    assert not obs._thread.is_alive()


def test_recursive_watch_follows_directories_created_later(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    obs = InotifyObserver()
    rec = Recorder()
    obs.schedule(rec, str(tmp_path), recursive=True)
    obs.start()
    try:
        assert obs.watched_dirs() == {str(tmp_path), str(tmp_path / "old")}
        deeper = tmp_path / "new" / "deeper"
        deeper.mkdir(parents=True)
        wait_for(lambda: str(deeper) in obs.watched_dirs(), what="watches on the new directories")
        with rec.lock:
            rec.events.clear()
        append(deeper / "b.log", "x\n")  # only the watch on `deeper` sees this
        wait_for(lambda: rec.seen("created"), what="an event from the new directory")
        (tmp_path / "old").rmdir()
        wait_for(lambda: str(tmp_path / "old") not in obs.watched_dirs(), what="the dropped watch forgotten")
    finally:
        obs.stop()
        obs.join(5.0)


def test_missing_directory_raises_file_not_found(tmp_path: Path) -> None:
    obs = InotifyObserver()
    try:
        with pytest.raises(FileNotFoundError):
            obs.schedule(Recorder(), str(tmp_path / "nope"))
    finally:
        obs.stop()
        obs.join(5.0)


def test_file_in_a_directory_created_after_start_is_found_through_events(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "old").mkdir(parents=True)
    ctx = PluginContext(instance="input.tail.0", state_dir=tmp_path / "state", host="t", tag="app", clock=SystemClock())
    config = TailConfig(path=[str(logs / "**" / "*.log")], read_from="beginning", refresh_interval=Duration(600.0))
    inp = TailInput(config, ctx)
    sink = Sink()
    sink.input = inp
    inp.start(sink)
    try:
        append(logs / "old" / "a.log", "existing dir\n")
        wait_for(lambda: sink.lines() == ["existing dir"], what="a new file in a directory watched at start")
        (logs / "new" / "deeper").mkdir(parents=True)
        append(logs / "new" / "deeper" / "b.log", "new dir\n")
        wait_for(lambda: sorted(sink.lines()) == ["existing dir", "new dir"], what="a file in a new directory")
    finally:
        inp.stop()
