"""Line handling: long lines, encodings, multiline records, rotate_wait, partial lines of gone files."""

from __future__ import annotations

import os
from collections.abc import Callable

from agent.clock import ManualClock
from agent.schema import ByteSize, Duration
from plugins.inputs.tail import MultilineConfig
from plugins.inputs.tail.file import safe_cut
from tests.plugins.inputs.tail.tailkit import Harness, append

Drain = Callable[..., None]


def test_long_lines_skipped_keep_surrounding_records(harness: Harness, drain: Drain) -> None:
    append(harness.dir / "app.log", "before\n" + "x" * 10_240 + "\nafter\n")
    inp, sink = harness.make(max_line_size=ByteSize(4096), long_lines="skip")
    drain(inp)
    assert sink.lines() == ["before", "after"]
    assert inp.stats()["long_lines_skipped"] == 1


def test_long_line_arriving_in_pieces_is_skipped_without_growing_memory(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    inp, sink = harness.make(max_line_size=ByteSize(100), long_lines="skip")
    append(log, "ok\n" + "y" * 80)
    drain(inp)
    for _ in range(5):
        append(log, "y" * 80)
        drain(inp)
    append(log, "\nnext\n")
    drain(inp)
    assert sink.lines() == ["ok", "next"]
    assert inp.stats()["long_lines_skipped"] == 1


def test_long_lines_truncated_utf8_safe(harness: Harness, drain: Drain) -> None:
    line = "é" * 3000  # 6000 bytes of two-byte characters
    append(harness.dir / "app.log", "before\n" + line + "\nafter\n")
    inp, sink = harness.make(max_line_size=ByteSize(4095), long_lines="truncate")
    drain(inp)
    got = sink.lines()
    assert got[0] == "before" and got[2] == "after"
    assert got[1] == "é" * 2047  # 4094 bytes: the 4095th would split a character
    assert inp.stats()["long_lines_truncated"] == 1 and inp.stats()["decode_errors"] == 0


def test_truncated_long_line_restart_resumes_after_it(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "z" * 500 + "\n")
    inp, sink = harness.make(max_line_size=ByteSize(100), long_lines="truncate")
    drain(inp)
    harness.stop(inp)
    assert sink.lines() == ["z" * 100]
    append(log, "tail\n")
    inp, sink = harness.make(max_line_size=ByteSize(100), long_lines="truncate")
    drain(inp)
    assert sink.lines() == ["tail"]


def test_safe_cut_never_splits_a_character() -> None:
    data = "aé€😀".encode()
    for limit in range(len(data) + 1):
        cut = safe_cut(data, limit, "utf-8")
        assert len(cut) <= limit
        assert data.startswith(cut)
        cut.decode("utf-8")


def test_invalid_bytes_are_replaced_and_counted(harness: Harness, drain: Drain) -> None:
    (harness.dir / "app.log").write_bytes(b"good\nbad \xff\xfe here\nwin\r\n")
    inp, sink = harness.make()
    drain(inp)
    assert sink.lines() == ["good", "bad \ufffd\ufffd here", "win"]
    assert inp.stats()["decode_errors"] == 1


def test_other_encoding(harness: Harness, drain: Drain) -> None:
    (harness.dir / "app.log").write_bytes("größe\n".encode("latin-1"))
    inp, sink = harness.make(encoding="latin-1")
    drain(inp)
    assert sink.lines() == ["größe"]


def test_binary_file_does_not_stop_the_input(harness: Harness, drain: Drain) -> None:
    (harness.dir / "blob.log").write_bytes(bytes(range(256)) * 64)
    append(harness.dir / "app.log", "text\n")
    inp, sink = harness.make(max_line_size=ByteSize(1024))
    drain(inp)
    assert "text" in sink.lines()
    assert inp.stats()["decode_errors"] >= 1


def _multiline() -> MultilineConfig:
    return MultilineConfig(start=r"^\d{4}-", flush=Duration(2.0), max_lines=4)


def test_multiline_joins_continuation_lines(harness: Harness, drain: Drain) -> None:
    clock = ManualClock()
    log = harness.dir / "app.log"
    append(log, "2024-01 start\n  at a\n  at b\n2024-02 next\n")
    inp, sink = harness.make(clock=clock, multiline=_multiline())
    drain(inp)
    assert sink.lines() == ["2024-01 start\n  at a\n  at b"]
    assert sink.records[0].offset == len("2024-01 start\n  at a\n  at b\n")
    clock.advance(1.0)
    drain(inp)
    assert len(sink.lines()) == 1  # still waiting for continuation lines
    clock.advance(1.5)
    drain(inp)
    assert sink.lines()[-1] == "2024-02 next"
    assert sink.records[-1].offset == os.path.getsize(log)


def test_multiline_max_lines_forces_a_record(harness: Harness, drain: Drain) -> None:
    append(harness.dir / "app.log", "2024-01 start\n" + "  more\n" * 5)
    inp, sink = harness.make(clock=ManualClock(), multiline=_multiline())
    drain(inp)
    assert sink.lines() == ["2024-01 start\n  more\n  more\n  more"]
    assert inp.stats()["multiline_flushed"] == 1


def test_multiline_record_held_at_stop_is_emitted(harness: Harness, drain: Drain) -> None:
    append(harness.dir / "app.log", "2024-01 only\n  trace\n")
    inp, sink = harness.make(clock=ManualClock(), multiline=_multiline())
    drain(inp)
    assert sink.lines() == []
    harness.stop(inp)
    assert sink.lines() == ["2024-01 only\n  trace"]


def test_rotate_wait_keeps_old_inode_then_purges_it(harness: Harness, drain: Drain) -> None:
    clock = ManualClock()
    log = harness.dir / "app.log"
    with open(log, "a", buffering=1) as old:
        old.write("one\n")
        inp, sink = harness.make(clock=clock, rotate_wait=Duration(5.0))
        drain(inp)
        os.rename(log, harness.dir / "app.log.1")
        drain(inp)
        clock.advance(3.0)
        old.write("within-wait\n")
        drain(inp)
        assert sink.lines() == ["one", "within-wait"]
        clock.advance(3.0)
        drain(inp)
        assert inp.stats()["files_closed"] == 1
        old.write("after-purge\n")
        append(log, "new-file\n")
        clock.advance(1.0)  # the next glob refresh finds the new file
        drain(inp)
    assert sink.lines() == ["one", "within-wait", "new-file"]


def test_partial_line_of_a_gone_file_is_emitted_at_purge(harness: Harness, drain: Drain) -> None:
    clock = ManualClock()
    log = harness.dir / "app.log"
    append(log, "whole\nno-newline")
    inp, sink = harness.make(clock=clock, rotate_wait=Duration(1.0))
    drain(inp)
    assert sink.lines() == ["whole"]
    os.unlink(log)
    drain(inp)
    clock.advance(1.0)
    drain(inp)
    assert sink.lines() == ["whole", "no-newline"]
