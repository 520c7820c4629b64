"""Model-based test (after Vector's file_watcher quickcheck model): random write / rotate / copytruncate /
truncate / delete / restart sequences against real files.

Invariants: every emitted record is exactly a line that was written (never corrupted, never a NUL-padded or
half line), no line is emitted twice, and at the end every line whose loss is not excused was emitted. A
loss is excused only where no tailer could see the line: a plain truncate of unread lines, or a file that
was created and rotated away (or deleted) before any pass saw it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from agent.clock import ManualClock
from agent.plugin import PluginContext
from agent.schema import Duration
from plugins.inputs.tail import TailConfig, TailInput
from tests.plugins.inputs.tail.tailkit import Sink

ROTATE_WAIT = 5.0


@dataclass
class ModelFile:
    lines: list[str] = field(default_factory=list)
    seen: bool = False
    """A pass ran while this file was at the followed path (the tailer holds it open)."""
    had_line: bool = False
    """A pass saw a complete line of its current content (the tailer knows its fingerprint and offset)."""


class TailModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="tailmodel-"))
        self.dir = self.tmp / "logs"
        self.dir.mkdir()
        self.log = self.dir / "app.log"
        self.clock = ManualClock(start=time.time())  # saved times are compared with file ctimes
        self.counter = itertools.count()
        self.rotations = itertools.count(1)
        self.written: list[str] = []
        self.optional: set[str] = set()
        self.current: ModelFile | None = None
        self.others: list[ModelFile] = []
        self.deleted: list[ModelFile] = []
        self.sink = Sink()
        self.emitted_before: list[str] = []
        self.inp = self._start()

    def _start(self) -> TailInput:
        config = TailConfig(path=[str(self.log)], read_from="beginning", rotate_wait=Duration(ROTATE_WAIT),
                            refresh_interval=Duration(0.2))
        ctx = PluginContext(instance="input.tail.0", state_dir=self.tmp / "state", host="m", tag="app",
                            clock=self.clock)
        inp = TailInput(config, ctx)
        self.sink.input = inp
        inp.start(self.sink, background=False)
        return inp

    def _line(self, pad: int) -> str:
        line = f"L{next(self.counter):05d}-" + "x" * pad
        self.written.append(line)
        return line

    def _file(self) -> ModelFile:
        if self.current is None or not self.log.exists():
            self.current = ModelFile()
        return self.current

    @rule(n=st.integers(1, 4), pad=st.integers(0, 60))
    def write(self, n: int, pad: int) -> None:
        f = self._file()
        lines = [self._line(pad) for _ in range(n)]
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
        f.lines.extend(lines)

    @rule(pad=st.integers(0, 60), cut=st.integers(1, 5))
    def write_in_two_parts_around_a_pass(self, pad: int, cut: int) -> None:
        f = self._file()
        line = self._line(pad)
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write(line[:cut])
        self.poll()
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write(line[cut:] + "\n")
        f.lines.append(line)

    @rule()
    def poll(self) -> None:
        self.clock.advance(0.3)
        if self.log.exists():
            f = self._file()
            f.seen = True
            f.had_line = f.had_line or bool(f.lines)
        self.inp.poll_once()

    @rule()
    def rotate_by_rename(self) -> None:
        if not self.log.exists():
            return
        f = self._file()
        os.rename(self.log, self.dir / f"app.log.{next(self.rotations)}")
        if not (f.seen or f.had_line):  # held open, or found again by its inode at the first scan
            self.optional.update(f.lines)
        self.others.append(f)
        self.current = None

    @rule()
    def copytruncate(self) -> None:
        if not self.log.exists():
            return
        f = self._file()
        shutil.copyfile(self.log, self.dir / f"app.log.c{next(self.rotations)}")
        os.truncate(self.log, 0)
        if not f.had_line:
            self.optional.update(f.lines)
        f.lines, f.had_line = [], False

    @rule()
    def truncate(self) -> None:
        if not self.log.exists():
            return
        f = self._file()
        os.truncate(self.log, 0)
        self.optional.update(f.lines)
        f.lines, f.had_line = [], False

    @rule()
    def delete(self) -> None:
        if not self.log.exists():
            return
        f = self._file()
        os.unlink(self.log)
        if not f.seen:
            self.optional.update(f.lines)
        self.deleted.append(f)
        self.current = None

    @rule()
    def wait_past_rotate_wait(self) -> None:
        self.clock.advance(ROTATE_WAIT + 0.5)
        self.inp.poll_once()

    @rule()
    def restart(self) -> None:
        self.inp.stop()
        self.restart_bookkeeping()
        self.inp = self._start()

    @rule(n=st.integers(1, 3))
    def rename_rotation_while_stopped(self, n: int) -> None:
        self.inp.stop()
        self.restart_bookkeeping()
        if self.log.exists():
            f = self._file()
            self.write(n, 5)
            os.rename(self.log, self.dir / f"app.log.{next(self.rotations)}")
            if not f.had_line:
                self.optional.update(f.lines)
            self.others.append(f)
            self.current = None
        self.write(n, 7)
        self.inp = self._start()

    def restart_bookkeeping(self) -> None:
        for f in self.deleted:
            self.optional.update(f.lines)  # the only copy was the descriptor we just closed
        self.deleted.clear()
        if self.current is not None:
            self.current.seen = False  # the new tailer has not opened it yet
        for f in self.others:
            if not f.had_line:
                self.optional.update(f.lines)

    @invariant()
    def emitted_lines_are_written_lines_and_unique(self) -> None:
        got = self.sink.lines()
        written = set(self.written)
        bad = [line for line in got if line not in written]
        assert not bad, f"corrupted records: {bad[:3]}"
        dups = [line for line, c in Counter(got).items() if c > 1]
        assert not dups, f"duplicated records: {dups[:3]}"

    def teardown(self) -> None:
        try:
            for _ in range(2):
                self.poll()
                self.wait_past_rotate_wait()
            got = set(self.sink.lines())
            missing = [line for line in self.written if line not in got and line not in self.optional]
            assert not missing, f"lost lines: {missing[:5]}"
        finally:
            self.inp.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)


TailModel.TestCase.settings = settings(
    max_examples=35, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestTailModel = TailModel.TestCase
