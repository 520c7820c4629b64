"""Rotation scenarios ported from Fluent Bit's in_tail integration suite, run with the real observer thread.

Each test writes real files, rotates them the way logrotate does, and waits (with a deadline) until the
expected lines arrived; stopping the input afterwards joins the reader, so the final exact comparison
also catches duplicates emitted up to that point.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from agent.clock import ManualClock
from tests.plugins.inputs.tail.tailkit import Harness, append

Waiter = Callable[..., None]


def _exactly(sink_lines: list[str], expected: list[str]) -> bool:
    return Counter(sink_lines) == Counter(expected)


def test_rename_rotation_reads_old_descriptor_and_new_file(harness: Harness, waiter: Waiter) -> None:
    log = harness.dir / "app.log"
    with open(log, "a", buffering=1) as writer:
        writer.write("before-rotation\n")
        inp, sink = harness.make(background=True)
        waiter(lambda: sink.lines() == ["before-rotation"], what="the first line")
        os.rename(log, harness.dir / "app.log.1")
        writer.write("written-to-old-fd\n")
        append(log, "in-new-file\n")
        expected = ["before-rotation", "written-to-old-fd", "in-new-file"]
        waiter(lambda: _exactly(sink.lines(), expected), what="all three lines")
    harness.stop(inp)
    assert _exactly(sink.lines(), expected)
    assert inp.stats()["files_rotated"] == 1


def test_repeated_rename_rotations(harness: Harness, waiter: Waiter) -> None:
    log = harness.dir / "app.log"
    append(log, "one\n")
    inp, sink = harness.make(background=True)
    waiter(lambda: sink.lines() == ["one"], what="line one")
    append(log, "two\n")
    os.rename(log, harness.dir / "app.log.1")
    append(log, "three\n")
    waiter(lambda: len(sink.lines()) == 3, what="three lines")
    append(log, "four\n")
    os.rename(harness.dir / "app.log.1", harness.dir / "app.log.2")
    os.rename(log, harness.dir / "app.log.1")
    append(log, "five\n")
    expected = ["one", "two", "three", "four", "five"]
    waiter(lambda: _exactly(sink.lines(), expected), what="five lines")
    harness.stop(inp)
    assert _exactly(sink.lines(), expected)


def test_copytruncate_with_open_writer_emits_no_nul(harness: Harness, waiter: Waiter) -> None:
    log = harness.dir / "app.log"
    with open(log, "a", buffering=1) as writer:  # O_APPEND: after the truncate it writes at the new end
        writer.write("first\n")
        writer.write("second\n")
        inp, sink = harness.make(background=True)
        waiter(lambda: len(sink.lines()) == 2, what="two lines")
        shutil.copyfile(log, harness.dir / "app.log.1")
        os.truncate(log, 0)
        writer.write("third\n")
        waiter(lambda: "third" in sink.lines(), what="the line after the truncate")
    harness.stop(inp)
    assert _exactly(sink.lines(), ["first", "second", "third"])
    assert not any("\x00" in line for line in sink.lines())
    assert inp.stats()["files_truncated"] == 1


def test_copytruncate_with_non_append_writer_skips_the_nul_hole(harness: Harness, drain: Callable[..., None]) -> None:
    """A writer without O_APPEND keeps its position after the truncate and leaves a hole of NUL bytes."""
    log = harness.dir / "app.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"alpha\nbeta\n")
        inp, sink = harness.make()
        drain(inp)
        shutil.copyfile(log, harness.dir / "app.log.1")
        os.truncate(log, 0)
        os.write(fd, b"gamma\n")  # lands at offset 11: bytes 0..10 read back as NUL
        drain(inp)
        os.write(fd, b"delta\n")
        drain(inp)
    finally:
        os.close(fd)
    assert sink.lines() == ["alpha", "beta", "gamma", "delta"]
    assert not any("\x00" in line for line in sink.lines())


def test_symlink_target_swap(harness: Harness, waiter: Waiter, tmp_path: Path) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    (targets / "a.log").write_text("from-a\n")
    link = harness.dir / "app.log"
    os.symlink(targets / "a.log", link)
    inp, sink = harness.make(background=True)
    waiter(lambda: sink.lines() == ["from-a"], what="the first target's line")
    (targets / "b.log").write_text("from-b\n")
    tmp_link = harness.dir / "app.log.tmp-link"
    os.symlink(targets / "b.log", tmp_link)
    os.replace(tmp_link, link)  # atomic swap, as deploy tools do
    append(targets / "b.log", "from-b-later\n")
    expected = ["from-a", "from-b", "from-b-later"]
    waiter(lambda: _exactly(sink.lines(), expected), what="lines of both targets")
    harness.stop(inp)
    assert _exactly(sink.lines(), expected)


def test_polling_observer_follows_rename_rotation(harness: Harness, waiter: Waiter) -> None:
    log = harness.dir / "app.log"
    append(log, "p1\n")
    inp, sink = harness.make(background=True, poll=True, poll_interval=_s(0.1))
    waiter(lambda: sink.lines() == ["p1"], what="first line via polling")
    append(log, "p2\n")
    os.rename(log, harness.dir / "app.log.1")
    append(log, "p3\n")
    waiter(lambda: _exactly(sink.lines(), ["p1", "p2", "p3"]), what="lines across the rotation")
    harness.stop(inp)
    assert _exactly(sink.lines(), ["p1", "p2", "p3"])


def test_delete_and_recreate_same_path_is_read_again(harness: Harness, waiter: Waiter) -> None:
    log = harness.dir / "app.log"
    append(log, "old-content\n")
    inp, sink = harness.make(background=True)
    waiter(lambda: sink.lines() == ["old-content"], what="the first file")
    os.unlink(log)
    append(log, "new-content\n")
    waiter(lambda: _exactly(sink.lines(), ["old-content", "new-content"]), what="the re-created file")
    harness.stop(inp)
    assert _exactly(sink.lines(), ["old-content", "new-content"])


def test_rapid_rotation_of_several_files(harness: Harness, waiter: Waiter) -> None:
    names = ["a", "b", "c"]
    for n in names:
        append(harness.dir / f"{n}.log", f"{n}-1\n")
    inp, sink = harness.make(background=True)
    waiter(lambda: len(sink.lines()) == 3, what="one line per file")
    for n in names:
        append(harness.dir / f"{n}.log", f"{n}-2\n")
        os.rename(harness.dir / f"{n}.log", harness.dir / f"{n}.log.1")
        append(harness.dir / f"{n}.log", f"{n}-3\n")
    expected = [f"{n}-{i}" for n in names for i in (1, 2, 3)]
    waiter(lambda: _exactly(sink.lines(), expected), what="nine lines")
    harness.stop(inp)
    assert _exactly(sink.lines(), expected)
    by_source = {r.raw: r.source for r in sink.records}
    assert by_source["a-3"].endswith("a.log") and by_source["b-2"].endswith("b.log")


def test_new_files_under_the_glob_are_read_from_their_start(harness: Harness, waiter: Waiter) -> None:
    append(harness.dir / "old.log", "existing\n")
    inp, sink = harness.make(background=True, read_from="end")
    waiter(lambda: inp.stats()["files_open"] == 1, what="the existing file to be opened")
    append(harness.dir / "old.log", "appended\n")
    append(harness.dir / "new.log", "new-1\nnew-2\n")
    waiter(lambda: _exactly(sink.lines(), ["appended", "new-1", "new-2"]), what="appended and new lines")
    harness.stop(inp)
    assert "existing" not in sink.lines()


def _s(seconds: float) -> object:
    from agent.schema import Duration

    return Duration(seconds)


def test_files_rotated_away_between_two_passes_are_still_read(harness: Harness, drain: Callable[..., None]) -> None:
    """The reader was blocked (backpressure) while a whole file was created and rotated away."""
    clock = ManualClock(start=time.time())  # rename times are compared with file ctimes
    log = harness.dir / "app.log"
    append(log, "a1\n")
    inp, sink = harness.make(clock=clock)
    drain(inp)
    append(log, "a2\n")
    os.rename(log, harness.dir / "app.log.1")
    append(log, "b1\n")
    os.rename(log, harness.dir / "app.log.2")
    append(log, "c1\n")
    clock.advance(1.0)
    drain(inp)
    assert sink.lines() == ["a1", "a2", "b1", "c1"]


def test_two_copytruncates_between_two_passes(harness: Harness, drain: Callable[..., None]) -> None:
    clock = ManualClock(start=time.time())
    log = harness.dir / "app.log"
    append(log, "x1\n")
    inp, sink = harness.make(clock=clock)
    drain(inp)
    append(log, "x2\n")
    for n, nxt in ((1, "y1\n"), (2, "z1\n")):
        shutil.copyfile(log, harness.dir / f"app.log.{n}")
        os.truncate(log, 0)
        append(log, nxt)
    clock.advance(1.0)
    drain(inp)
    assert sink.lines() == ["x1", "x2", "y1", "z1"]


def test_copytruncate_before_anything_was_read_recovers_from_the_copy(
    harness: Harness, drain: Callable[..., None]
) -> None:
    """Opened at offset 0 (a new file), then copied and truncated before the reader got to it."""
    clock = ManualClock(start=time.time())
    log = harness.dir / "app.log"
    sink_inp, sink = harness.make(clock=clock)
    drain(sink_inp)
    append(log, "first\n")
    clock.advance(1.0)
    sink_inp._tailer._scan()  # discovered and opened, not read yet
    shutil.copyfile(log, harness.dir / "app.log.1")
    os.truncate(log, 0)
    append(log, "second\n")
    drain(sink_inp)
    assert sink.lines() == ["first", "second"]
