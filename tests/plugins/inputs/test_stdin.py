"""The stdin input reads a real pipe: batches of complete lines, a final line without newline, bad bytes."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.plugin import PluginContext
from agent.schema import ByteSize
from agent.types import Record
from plugins.inputs.stdin import StdinConfig, StdinInput


def _ctx(tmp_path: Path) -> PluginContext:
    return PluginContext(instance="input.stdin.0", state_dir=tmp_path, host="t", tag="piped")


def test_reads_lines_from_a_pipe_until_eof(tmp_path: Path, waiter: Callable[..., None]) -> None:
    r, w = os.pipe()
    got: list[Record] = []
    with os.fdopen(r, "rb", buffering=0) as reader:
        inp = StdinInput(StdinConfig(max_line_size=ByteSize(16)), _ctx(tmp_path), stream=reader)

        def emit(records: Sequence[Record]) -> None:
            got.extend(records)

        inp.start(emit)
        os.write(w, b"one\ntwo\r\n")
        waiter(lambda: len(got) == 2, what="the first two lines")
        os.write(w, b"bad \xff\n" + b"x" * 40 + b"\nno-newline")
        os.close(w)
        waiter(inp.finished.is_set, what="end of input")
        inp.stop()
    assert [r.raw for r in got] == ["one", "two", "bad \ufffd", "x" * 16, "no-newline"]
    assert {r.tag for r in got} == {"piped"} and got[0].source == "-"
    assert inp.stats()["decode_errors"] == 1 and inp.stats()["long_lines_truncated"] == 1


def test_a_burst_goes_downstream_in_batches_of_the_configured_size(tmp_path: Path, waiter: Callable[..., None]) -> None:
    r, w = os.pipe()
    batches: list[list[Record]] = []
    lines = [f"line {i}" for i in range(1000)]
    with os.fdopen(r, "rb", buffering=0) as reader:
        ctx = PluginContext(instance="input.stdin.0", state_dir=tmp_path, host="t", tag="piped", batch_size=256)
        inp = StdinInput(StdinConfig(), ctx, stream=reader)
        inp.start(lambda records: batches.append(list(records)))
        os.write(w, "".join(f"{line}\n" for line in lines).encode())  # 8.9 KB: one read
        os.close(w)
        waiter(inp.finished.is_set, what="end of input")
        inp.stop()
    assert [r.raw for b in batches for r in b] == lines
    assert max(map(len, batches)) == 256 and len(batches) >= 4
