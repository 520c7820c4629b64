"""Restarts: saved offsets, markers, and rotations that happen while the input is stopped.

These tests drive passes synchronously (`poll_once`) so every step is deterministic; the sink commits each
batch at once, like a pipeline whose outputs are durable.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable

from agent.clock import ManualClock
from agent.schema import Duration
from tests.plugins.inputs.tail.tailkit import Harness, Sink, append

Drain = Callable[..., None]


def _run(harness: Harness, drain: Drain, **options: object) -> list[str]:
    inp, sink = harness.make(**options)
    drain(inp)
    harness.stop(inp)
    return sink.lines()


def test_restart_resumes_from_saved_offset(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "first-line\n")
    assert _run(harness, drain) == ["first-line"]
    append(log, "second-line\n")
    assert _run(harness, drain) == ["second-line"]


def test_offsets_are_saved_only_for_committed_records(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "a\nb\nc\n")
    sink = Sink()
    sink.auto_commit = False
    inp, _ = harness.make(sink)
    drain(inp)
    inp.commit(sink.records[:1])  # only "a" reached a durable place
    harness.stop(inp)
    assert _run(harness, drain) == ["b", "c"]


def test_read_from_end_applies_only_without_saved_offset(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "old\n")
    assert _run(harness, drain, read_from="end") == []
    append(log, "new\n")
    assert _run(harness, drain, read_from="end") == ["new"]


def test_copytruncate_across_restart_reads_new_content_only(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "line-1\nline-2\n")
    assert _run(harness, drain) == ["line-1", "line-2"]
    shutil.copyfile(log, harness.dir / "app.log.1")
    os.truncate(log, 0)
    append(log, "line-3\n")
    assert _run(harness, drain) == ["line-3"]


def test_copytruncate_while_stopped_recovers_unread_rest_from_the_copy(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "read-1\n")
    assert _run(harness, drain) == ["read-1"]
    append(log, "unread-2\nunread-3\n")
    shutil.copyfile(log, harness.dir / "app.log.1")
    os.truncate(log, 0)
    append(log, "after-4\n")
    assert _run(harness, drain) == ["unread-2", "unread-3", "after-4"]
    assert _run(harness, drain) == []


def test_truncated_and_regrown_past_offset_is_detected_by_marker(harness: Harness, drain: Drain) -> None:
    """Stop, truncate, write more than before: size alone would hide it, the offset marker does not."""
    log = harness.dir / "app.log"
    append(log, "short-1\n")
    assert _run(harness, drain) == ["short-1"]
    with open(log, "w") as fh:
        fh.write("rewritten-content-that-is-longer\n")
    assert _run(harness, drain) == ["rewritten-content-that-is-longer"]


def test_partial_line_across_restart_is_completed_once(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "whole\npartial")
    assert _run(harness, drain) == ["whole"]
    append(log, " line\n")
    assert _run(harness, drain) == ["partial line"]
    assert _run(harness, drain) == []


def test_rename_rotation_while_stopped_reads_old_rest_before_new_file(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "l1\nl2\n")
    assert _run(harness, drain) == ["l1", "l2"]
    append(log, "l3-unread\n")
    os.rename(log, harness.dir / "app.log.1")
    append(log, "l4-new\n")
    inp, sink = harness.make()
    drain(inp)
    assert sink.lines() == ["l3-unread", "l4-new"]
    assert inp.stats()["files_recovered"] == 1
    harness.stop(inp)
    assert _run(harness, drain) == []


def test_two_rotations_while_stopped_read_every_unseen_file_in_order(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "seen-1\n")
    assert _run(harness, drain) == ["seen-1"]
    append(log, "rest-2\n")
    os.rename(log, harness.dir / "app.log.1")
    append(log, "unseen-3\n")  # a whole file created and rotated away while we were down
    os.rename(log, harness.dir / "app.log.2")
    append(log, "live-4\n")
    (harness.dir / "app.log.1.gz").write_bytes(b"not-a-log")
    assert _run(harness, drain, read_from="end") == ["rest-2", "unseen-3", "live-4"]
    assert _run(harness, drain) == []


def test_inode_reuse_is_not_mistaken_for_the_old_file(harness: Harness, drain: Drain) -> None:
    """A new file that happens to get the old inode must be read from 0 (its first line differs)."""
    log = harness.dir / "app.log"
    append(log, "old-file-line-with-some-length\n")
    assert _run(harness, drain) == ["old-file-line-with-some-length"]
    os.unlink(log)
    with open(log, "w") as fh:
        fh.write("fresh\n" * 10)
    assert _run(harness, drain) == ["fresh"] * 10


def test_stale_offsets_expire(harness: Harness, drain: Drain) -> None:
    clock = ManualClock()
    for name in ("keep.log", "gone.log"):
        append(harness.dir / name, f"{name}\n")
    inp, _ = harness.make(clock=clock, expire_offsets=Duration(3600))
    drain(inp)
    harness.stop(inp)
    os.unlink(harness.dir / "gone.log")
    clock.advance(7200)
    inp, _ = harness.make(clock=clock, expire_offsets=Duration(3600))
    drain(inp)
    harness.stop(inp)
    doc = json.loads((harness.state / "input.tail.0" / "offsets.json").read_text())
    assert [os.path.basename(e["path"]) for e in doc["entries"]] == ["keep.log"]


def test_corrupt_offsets_file_is_set_aside(harness: Harness, drain: Drain) -> None:
    state = harness.state / "input.tail.0"
    state.mkdir(parents=True)
    (state / "offsets.json").write_text("{not json")
    append(harness.dir / "app.log", "x\n")
    assert _run(harness, drain) == ["x"]
    assert any(p.name.startswith("offsets.json.rejected-") for p in state.iterdir())


def test_kill_before_any_commit_replays_rotated_and_new_files(harness: Harness, drain: Drain) -> None:
    """Records were read but none committed (the pipeline lagged) when the process died."""
    log = harness.dir / "app.log"
    append(log, "a1\na2\n")
    sink = Sink()
    sink.auto_commit = False
    inp, _ = harness.make(sink)
    drain(inp)
    os.rename(log, harness.dir / "app.log.1")
    append(log, "b1\n")
    drain(inp)
    assert sink.lines() == ["a1", "a2", "b1"]
    inp._tailer.save()  # the periodic save of a running daemon, then SIGKILL: no stop(), nothing committed
    harness.running.remove(inp)
    inp2, sink2 = harness.make()
    drain(inp2)
    assert sink2.lines() == ["a1", "a2", "b1"]


def test_file_renamed_while_stopped_is_followed_for_a_writer_that_still_holds_it(
    harness: Harness, drain: Drain
) -> None:
    log = harness.dir / "app.log"
    with open(log, "a", buffering=1) as writer:
        writer.write("one\n")
        assert _run(harness, drain) == ["one"]
        os.rename(log, harness.dir / "app.log.1")  # while stopped; nothing unread yet
        inp, sink = harness.make()
        drain(inp)
        writer.write("late-write-to-old-fd\n")  # the logger had not reopened yet
        drain(inp)
    assert sink.lines() == ["late-write-to-old-fd"]


def test_copytruncate_then_rename_while_stopped_reads_the_unsaved_generation(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "gen0-line\n")
    assert _run(harness, drain) == ["gen0-line"]
    shutil.copyfile(log, harness.dir / "app.log.c1")
    os.truncate(log, 0)
    append(log, "gen1-a\ngen1-b\n")  # a content generation we never saved anything of ...
    os.rename(log, harness.dir / "app.log.1")  # ... whose inode is then rotated away
    append(log, "live\n")
    assert _run(harness, drain) == ["gen1-a", "gen1-b", "live"]
    assert _run(harness, drain) == []


def test_a_copy_that_got_a_forgotten_files_inode_number_is_not_read_again(harness: Harness, drain: Drain) -> None:
    """Found by the state machine: a copytruncate's copy can get the inode number of a file we read
    earlier and that was deleted since. It is a copy of content we read, not a new generation of that
    old inode, so it must not be read from 0 (its rest, from our saved offset, is nothing)."""
    import time

    from plugins.inputs.tail.identity import FileId
    from plugins.inputs.tail.store import OffsetStore

    log = harness.dir / "app.log"
    append(log, "copied-line\n")
    assert _run(harness, drain) == ["copied-line"]
    copy = harness.dir / "app.log.c1"
    shutil.copyfile(log, copy)
    os.truncate(log, 0)
    os.unlink(log)
    # What inode reuse leaves in the offsets: an older file, deleted since, saved under the copy's number.
    st = copy.stat()
    store = OffsetStore(harness.state / "input.tail.0" / "offsets.json")
    store.load()
    store.update(FileId(st.st_dev, st.st_ino, "0123456789abcdef"), 5, None, str(log), time.time() + 60)
    assert store.save()
    assert _run(harness, drain) == []


def test_read_from_end_applies_to_a_busy_file_that_a_new_pattern_adds(harness: Harness, drain: Drain) -> None:
    """A file the last run's globs did not match was not missed while we were down, however recently it was
    written: adding its pattern (a restart or a reload) follows it from its end, not from years of backlog."""
    a, b = harness.dir / "a.log", harness.dir / "b.log"
    append(a, "a-old\n")
    append(b, "b-old\n")
    earlier = ManualClock(os.stat(b).st_ctime - 3600.0)  # the last run saved its offsets an hour ago
    assert _run(harness, drain, read_from="end", path=[str(a)], clock=earlier) == []
    append(b, "b-written-while-stopped\n")
    append(harness.dir / "c.log", "c-created-while-stopped\n")
    inp, sink = harness.make(read_from="end", path=[str(harness.dir / "a.log"), str(harness.dir / "[bc].log")])
    drain(inp)
    append(b, "b-new\n")
    drain(inp)
    harness.stop(inp)
    assert sink.lines() == ["b-new"]


def test_rotated_rest_still_unread_at_the_second_restart_is_read(harness: Harness, drain: Drain) -> None:
    """A rotated file whose rest a restart began to read is saved under its rotated name; the next restart
    must find it at that very name, not only among the name's siblings."""
    log = harness.dir / "app.log"
    append(log, "l1\n")
    assert _run(harness, drain) == ["l1"]
    append(log, "rest-a\nrest-b\n")
    os.rename(log, harness.dir / "app.log.1")
    append(log, "live\n")
    sink = Sink()
    sink.auto_commit = False
    inp, _ = harness.make(sink)
    drain(inp)
    assert sink.lines() == ["rest-a", "rest-b", "live"]
    inp.commit(sink.records[:1])  # stopped while the rest of app.log.1 was still on its way
    harness.stop(inp)
    assert _run(harness, drain) == ["rest-b", "live"]
