"""Bad input never stops the input: unreadable files, directories, vanishing paths, a full inotify table."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs
from watchdog.observers.inotify import InotifyObserver

from agent.clock import ManualClock, SystemClock
from agent.plugin import PluginContext
from agent.schema import Duration
from plugins.inputs.tail import TailConfig, TailInput
from tests.plugins.inputs.tail.tailkit import Harness, Sink, append

Drain = Callable[..., None]
Waiter = Callable[..., None]
ROOT = Path(__file__).resolve().parents[4]


def test_directory_matching_the_glob_is_reported_once_and_skipped(harness: Harness, drain: Drain) -> None:
    (harness.dir / "dir.log").mkdir()
    append(harness.dir / "app.log", "ok\n")
    with capture_logs() as logs:
        inp, sink = harness.make()
        drain(inp)
        drain(inp)
    assert sink.lines() == ["ok"]
    assert [e["event"] for e in logs].count("path_not_a_file") == 1


def test_a_directory_the_glob_matches_does_not_make_every_write_rescan(harness: Harness, drain: Drain) -> None:
    """`/var/log/*` matches directories (journal/, apt/): reported once, they must not turn each write event
    into a re-expansion of every pattern (a file that could not be opened still does: it is retried)."""
    clock = ManualClock(1000.0)
    (harness.dir / "dir.log").mkdir()
    append(harness.dir / "app.log", "one\n")
    inp, sink = harness.make(clock=clock, refresh_interval=Duration(60.0))
    drain(inp)
    tailer = inp._tailer  # which events rescan is not part of the input's API
    scanned = tailer.store.scanned_at
    clock.advance(1.0)
    append(harness.dir / "app.log", "two\n")
    tailer.wake(structural=False)  # what the watcher does for a write
    drain(inp)
    assert sink.lines() == ["one", "two"]
    assert tailer.store.scanned_at == scanned


def test_excluded_paths_are_not_read(harness: Harness, drain: Drain) -> None:
    append(harness.dir / "app.log", "keep\n")
    append(harness.dir / "debug.log", "drop\n")
    inp, sink = harness.make(exclude=["debug.*"])
    drain(inp)
    assert sink.lines() == ["keep"]


def test_several_globs(harness: Harness, drain: Drain, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    append(harness.dir / "a.log", "from-a\n")
    append(other / "b.txt", "from-b\n")
    inp, sink = harness.make(path=[str(harness.dir / "*.log"), str(other / "*.txt")])
    drain(inp)
    assert sorted(sink.lines()) == ["from-a", "from-b"]


def test_path_that_disappears_before_it_is_read(harness: Harness, drain: Drain) -> None:
    clock = ManualClock()
    log = harness.dir / "app.log"
    append(log, "x\n")
    inp, sink = harness.make(clock=clock)
    drain(inp)
    os.unlink(log)
    append(harness.dir / "later.log", "y\n")
    clock.advance(1.0)
    drain(inp)
    os.unlink(harness.dir / "later.log")
    drain(inp)
    clock.advance(10.0)  # past rotate_wait: both deleted files are closed
    drain(inp)
    assert sink.lines() == ["x", "y"]
    assert inp.stats()["files_open"] == 0


def test_ignore_older_skips_stale_files_until_written(harness: Harness, drain: Drain) -> None:
    old = harness.dir / "old.log"
    append(old, "ancient\n")
    os.utime(old, (1_000_000, 1_000_000))
    clock = ManualClock()
    inp, sink = harness.make(clock=clock, ignore_older=_dur(3600))
    drain(inp)
    assert sink.lines() == []
    append(old, "fresh\n")
    clock.advance(1.0)
    drain(inp)
    assert sink.lines() == ["fresh"]


def test_copytruncate_while_behind_recovers_unread_lines_from_the_copy(harness: Harness, drain: Drain) -> None:
    log = harness.dir / "app.log"
    append(log, "r1\n")
    inp, sink = harness.make()
    drain(inp)
    append(log, "behind-2\nbehind-3\n")  # written, not yet read ...
    shutil.copyfile(log, harness.dir / "app.log.1")
    os.truncate(log, 0)  # ... when logrotate copies and truncates
    append(log, "n4\n")
    drain(inp)
    assert sink.lines() == ["r1", "behind-2", "behind-3", "n4"]
    assert inp.stats()["files_recovered"] == 1


class _FullInotify(InotifyObserver):  # type: ignore[misc]
    """watchdog's observer on a host whose fs.inotify.max_user_watches is used up."""

    def schedule(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_inotify_watch_limit_falls_back_to_polling(tmp_path: Path, waiter: Waiter) -> None:
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    ctx = PluginContext(instance="input.tail.0", state_dir=tmp_path / "state", host="t", tag="app", clock=SystemClock())
    config = TailConfig(path=[str(logs_dir / "*.log")], read_from="beginning", poll_interval=_dur(0.1),
                        refresh_interval=_dur(600))  # only the polling watcher can find the new file in time
    inp = TailInput(config, ctx, make_observer=_FullInotify)
    sink = Sink()
    sink.input = inp
    with capture_logs() as logs:
        inp.start(sink)
        try:
            waiter(lambda: inp.stats()["polling_fallbacks"] == 1, what="the fallback watch")
            append(logs_dir / "app.log", "seen-by-polling\n")
            waiter(lambda: sink.lines() == ["seen-by-polling"], what="the line")
        finally:
            inp.stop()
    limit = [e for e in logs if e["event"] == "inotify_watch_limit_reached"]
    assert limit and "fs.inotify.max_user_watches" in limit[0]["hint"]
    assert inp.stats()["polling_fallbacks"] == 1


_CHILD = """
import sys, time
from agent.plugin import PluginContext
from agent.schema import Duration
from agent.schema import Duration
from plugins.inputs.tail import TailConfig, TailInput
from pathlib import Path
d = Path(sys.argv[1])
inp = TailInput(TailConfig(path=[str(d / "*.log")], read_from="beginning", refresh_interval=Duration(0.2)),
                PluginContext(instance="input.tail.0", state_dir=d / "state", host="t", tag="app"))
def emit(records):
    for r in records:
        print("RECORD " + r.raw, flush=True)
inp.start(emit)
sys.stdin.read()
print("STATS", inp.stats(), flush=True)
inp.stop()
"""


def test_permission_denied_is_logged_once_and_retried(tmp_path: Path, waiter: Waiter) -> None:
    """Runs the input in a child without CAP_DAC_OVERRIDE, so `chmod 000` binds even when tests run as root."""
    log = tmp_path / "secret.log"
    log.write_text("hidden-until-readable\n")
    log.chmod(0)
    cmd = [sys.executable, "-c", _CHILD, str(tmp_path)]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "root needs setpriv(1) to drop CAP_DAC_OVERRIDE for this test"
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *cmd]
    child = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(child.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        waiter(lambda: any("file_permission_denied" in line for line in out), timeout=20, what="the denial log")
        log.chmod(0o644)
        waiter(lambda: "RECORD hidden-until-readable\n" in out, timeout=20, what="the record once readable")
    finally:
        child.communicate(timeout=20)
        reader.join(5)
    assert sum("file_permission_denied" in line for line in out) == 1
    assert out.count("RECORD hidden-until-readable\n") == 1


def _dur(seconds: float) -> Any:
    from agent.schema import Duration

    return Duration(seconds)


_LIMITED_CHILD = """
import resource, sys
from pathlib import Path
from agent.plugin import PluginContext
from agent.schema import Duration
from agent.schema import Duration
from plugins.inputs.tail import TailConfig, TailInput
d, limit = Path(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
inp = TailInput(TailConfig(path=[str(d / "logs" / "*.log")], read_from="beginning", refresh_interval=Duration(0.2)),
                PluginContext(instance="input.tail.0", state_dir=d / "state", host="t", tag="app"))
def emit(records):
    for r in records:
        print("RECORD " + r.raw, flush=True)
inp.start(emit)
sys.stdin.readline()  # the test saw the failures: give the descriptors back
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
sys.stdin.read()
print("STATS", inp.stats(), flush=True)
inp.stop()
"""


def test_out_of_descriptors_is_reported_and_the_files_are_read_once_there_are_some(tmp_path: Path, waiter: Waiter) -> None:
    """Opening a file that exists can fail for want of descriptors (EMFILE): that was skipped silently, as if
    the file had vanished. It is logged once per file with a hint, counted, and retried on every scan."""
    logs = tmp_path / "logs"
    logs.mkdir()
    limit, files = 64, 110  # the interpreter and the input take well under 64; 110 files cannot all fit
    for i in range(files):
        (logs / f"f{i:03d}.log").write_text(f"line-{i}\n")
    child = subprocess.Popen([sys.executable, "-c", _LIMITED_CHILD, str(tmp_path), str(limit)], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(child.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        waiter(lambda: any("file_open_failed" in line for line in out), timeout=20, what="the open failure log")
        failed = [line for line in out if "file_open_failed" in line]
        assert "Too many open files" in failed[0] and "LimitNOFILE" in failed[0]
        child.stdin.write("raise\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        waiter(lambda: sum(line.startswith("RECORD ") for line in out) >= files, timeout=30, what="every file's line")
    finally:
        child.stdin.close()  # type: ignore[union-attr]  # the child prints its stats and stops
        child.wait(timeout=20)
        reader.join(5)
    records = sorted(line for line in out if line.startswith("RECORD "))
    assert records == sorted(f"RECORD line-{i}\n" for i in range(files))  # each once: nothing lost, nothing twice
    stats = next(line for line in out if line.startswith("STATS"))
    assert "'access_errors': 0.0" not in stats and len(set(failed)) == len(failed)  # once per file
