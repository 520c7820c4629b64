"""Chaos check of the tail input through the real daemon: rotations, copytruncates and SIGKILLs lose nothing.

A writer appends numbered lines to two files while a rotator performs rotations (half rename + create,
half copytruncate) and the daemon (`logwarden run`, tail → parse → `file` output with `stream: records`)
is SIGKILLed and restarted. The records file is then checked line by line: lost (must be 0), corrupted
(must be 0) and duplicated (expected only around kills: at-least-once replays what was not committed).
Anchor: the same daemon on the same lines with no rotations and no kills ("calm"), in the same run.
A second chaos run also renames one file during every stop. Finally the idle CPU of a caught-up daemon.

The rotator takes the writer's lock around a copytruncate: logrotate's copytruncate loses lines written
between its copy and its truncate no matter who reads the file, and that loss is not the tailer's.

    .venv/bin/python bench/tail_chaos.py                      # 1,000,000 lines, 100 rotations, 5 kills
    .venv/bin/python bench/tail_chaos.py --lines 100000 --idle-seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("a", "b")


def payload(name: str, seq: int) -> str:
    """Deterministic content, so any altered byte is detected as corruption."""
    return f"{name} {seq:09d} user=u{seq % 997} op=GET path=/api/v1/items/{seq % 50} latency_ms={seq % 1000} ok"


@dataclass
class Outcome:
    name: str
    lines: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    lost: int = 0
    corrupted: int = 0
    duplicates: int = 0
    torn_output_lines: int = 0
    kills: int = 0
    rotations: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.lines / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_s / self.lines * 1e6 if self.lines else 0.0


class Writer:
    """Appends numbered lines to a.log and b.log (O_APPEND, like a logger), in small batched writes."""

    def __init__(self, logs: Path, total: int, rate: float, batch: int = 50) -> None:
        self.logs = logs
        self.rate = rate
        self.total = total
        self.batch = batch
        self.written = 0
        self.lock = threading.Lock()
        self.fds: dict[str, int] = {}
        self.stale: dict[str, tuple[int, int]] = {}
        """Files renamed away whose old descriptor the logger still uses for a few more writes."""
        self.done = threading.Event()

    def _fd(self, name: str) -> int:
        if name not in self.fds:
            self.fds[name] = os.open(self.logs / f"{name}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self.fds[name]

    def renamed(self, name: str) -> None:
        """The file was renamed: keep writing to the old descriptor for 3 batches, then reopen."""
        self.stale[name] = (self.fds.pop(name), 3)

    def run(self) -> None:
        seq = dict.fromkeys(FILES, 0)
        per_file = self.total // len(FILES)
        start = time.monotonic()
        while min(seq.values()) < per_file:
            if self.rate > 0:
                ahead = self.written / self.rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)  # pacing the writer to its configured rate
            for name in FILES:
                n = min(self.batch, per_file - seq[name])
                if n <= 0:
                    continue
                data = "".join(payload(name, seq[name] + i) + "\n" for i in range(n)).encode()
                with self.lock:
                    old = self.stale.get(name)
                    if old is not None:
                        fd = old[0]
                        if old[1] <= 1:
                            del self.stale[name]
                            os.write(fd, data)
                            os.close(fd)
                            fd = -1
                        else:
                            self.stale[name] = (fd, old[1] - 1)
                    else:
                        fd = self._fd(name)
                    if fd >= 0:
                        os.write(fd, data)
                    seq[name] += n
                    self.written += n
        with self.lock:
            for fd, _ in self.stale.values():
                os.close(fd)
            for fd in self.fds.values():
                os.close(fd)
            self.stale.clear()
            self.fds.clear()
        self.done.set()


class Rotator:
    def __init__(self, writer: Writer, logs: Path) -> None:
        self.writer = writer
        self.logs = logs
        self.count = 0
        self.serial = 0

    def rotate(self, kind: str, name: str) -> None:
        w = self.writer
        with w.lock:
            self.serial += 1
            src = self.logs / f"{name}.log"
            if not src.exists():
                return
            dst = self.logs / f"{name}.log.{self.serial}"
            if kind == "rename":
                os.rename(src, dst)
                if name in w.fds:
                    w.renamed(name)
            else:
                shutil.copyfile(src, dst)
                os.truncate(src, 0)
            self.count += 1


class Daemon:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.cpu_s = 0.0
        self.pid = 0

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "logwarden"), "run", "-c", str(self.config)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )
        self.pid = self.proc.pid

    def wait_started(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.exists() and b"daemon_started" in self.log.read_bytes():
                return
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not start; see {self.log}")

    def _reap(self) -> None:
        assert self.proc is not None
        _, _, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = 0
        self.cpu_s += usage.ru_utime + usage.ru_stime
        self.proc = None

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self._reap()

    def terminate(self) -> None:
        if self.proc is None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        self._reap()


class OutputReader:
    """Follows the records file; a SIGKILL can leave a torn JSON line, which the next record is appended to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.buf = b""
        self.seen: Counter[str] = Counter()
        self.torn = 0

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.pos)
                data = fh.read()
        except FileNotFoundError:
            return
        self.pos += len(data)
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                self.torn += 1
                cut = line.rfind(b'{"tag"')
                if cut <= 0:
                    continue
                try:
                    rec = json.loads(line[cut:])
                except json.JSONDecodeError:
                    continue
            self.seen[rec["raw"]] += 1


def write_config(work: Path) -> Path:
    cfg = work / "logwarden.yaml"
    cfg.write_text(
        f"""service:
  state_dir: {work}/state
  log_level: info
pipeline:
  inputs:
    - name: tail
      tag: chaos
      path: ['{work}/logs/*.log']
      read_from: beginning
      rotate_wait: 5s
      parser: {{name: none}}
  outputs:
    - name: file
      stream: records
      path: {work}/out/records.jsonl
"""
    )
    return cfg


def run_case(
    name: str, lines: int, rotations: int, kills: int, rename_in_stop: bool, keep: bool, rate: float
) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix=f"tail-chaos-{name}-"))
    logs = work / "logs"
    logs.mkdir()
    (work / "out").mkdir()
    cfg = write_config(work)
    daemon = Daemon(cfg, work / "daemon.log")
    writer = Writer(logs, lines, rate)
    rotator = Rotator(writer, logs)
    reader = OutputReader(work / "out" / "records.jsonl")
    outcome = Outcome(name, lines)
    expected = {payload(f, s) for f in FILES for s in range(lines // len(FILES))}
    total = len(expected)
    outcome.lines = total

    daemon.start()
    daemon.wait_started()
    t0 = time.monotonic()
    wt = threading.Thread(target=writer.run, daemon=True)
    wt.start()
    rot_at = [int(total * (i + 1) / (rotations + 1)) for i in range(rotations)]
    kill_at = [int(total * (i + 1) / (kills + 1)) for i in range(kills)]
    stop_serial = 0
    while not writer.done.is_set() or rot_at or kill_at:
        progress = writer.written
        if rot_at and progress >= rot_at[0]:
            rot_at.pop(0)
            kind = "rename" if rotator.count % 2 == 0 else "copytruncate"
            rotator.rotate(kind, FILES[rotator.count % len(FILES)])
        elif kill_at and progress >= kill_at[0]:
            kill_at.pop(0)
            daemon.kill()
            outcome.kills += 1
            if rename_in_stop:
                stop_serial += 1
                rotator.rotate("rename", FILES[stop_serial % len(FILES)])
            daemon.start()
        elif writer.done.is_set():
            rot_at.clear()
            kill_at.clear()
        else:
            time.sleep(0.002)  # pacing the scheduler, not synchronisation
        reader.poll()
    wt.join()
    # wait until every line arrived, or nothing arrives for 20 s
    last_change, last_count = time.monotonic(), -1
    while True:
        reader.poll()
        have = sum(1 for line in expected if line in reader.seen) if len(reader.seen) >= total else len(reader.seen)
        if have >= total:
            break
        if len(reader.seen) != last_count:
            last_change, last_count = time.monotonic(), len(reader.seen)
        elif time.monotonic() - last_change > 20:
            outcome.notes.append("gave up waiting after 20 s without progress")
            break
        time.sleep(0.05)
    outcome.wall_s = time.monotonic() - t0
    daemon.terminate()
    reader.poll()
    outcome.cpu_s = daemon.cpu_s
    outcome.rotations = rotator.count
    outcome.lost = sum(1 for line in expected if line not in reader.seen)
    outcome.corrupted = sum(c for line, c in reader.seen.items() if line not in expected)
    outcome.duplicates = sum(c - 1 for line, c in reader.seen.items() if c > 1 and line in expected)
    outcome.torn_output_lines = reader.torn
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        outcome.notes.append(f"kept {work}")
    return outcome


def idle_cpu(seconds: float) -> tuple[float, int]:
    """CPU share of one core used by a caught-up daemon following two files with no writes."""
    work = Path(tempfile.mkdtemp(prefix="tail-chaos-idle-"))
    (work / "logs").mkdir()
    (work / "out").mkdir()
    for name in FILES:
        (work / "logs" / f"{name}.log").write_text("".join(payload(name, i) + "\n" for i in range(1000)))
    daemon = Daemon(write_config(work), work / "daemon.log")
    daemon.start()
    reader = OutputReader(work / "out" / "records.jsonl")
    deadline = time.monotonic() + 60
    while len(reader.seen) < 2000 and time.monotonic() < deadline:
        reader.poll()
        time.sleep(0.1)
    time.sleep(3)  # let startup work (imports, first snapshot) settle before measuring
    assert daemon.proc is not None
    before = _proc_cpu(daemon.pid)
    time.sleep(seconds)
    used = _proc_cpu(daemon.pid) - before
    daemon.terminate()
    shutil.rmtree(work, ignore_errors=True)
    return used / seconds * 100.0, len(reader.seen)


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000, help="Lines written in total (over two files).")
    ap.add_argument("--rotations", type=int, default=100)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--rate", type=float, default=10000.0, help="Lines per second the writer produces (0: flat out).")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--keep", action="store_true", help="Keep the work directories for inspection.")
    args = ap.parse_args()
    if not (ROOT / ".venv" / "bin" / "logwarden").exists():
        print("needs the project venv with logwarden installed", file=sys.stderr)
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    cases = [
        run_case("calm (anchor)", args.lines, 0, 0, False, args.keep, args.rate),
        run_case("chaos", args.lines, args.rotations, args.kills, False, args.keep, args.rate),
        run_case("chaos + rename in each stop", args.lines, args.rotations, args.kills, True, args.keep, args.rate),
    ]
    anchor = cases[0]
    rate = f"{args.rate:,.0f} lines/s" if args.rate > 0 else "flat out"
    print(f"\ntail chaos: {args.lines:,} lines over {len(FILES)} files written at {rate}, "
          f"logwarden run (tail → parse → file records)\n")
    head = (f"{'case':30} {'rot':>4} {'kills':>5} {'lost':>5} {'corrupt':>7} {'dups':>6} {'torn':>4} "
            f"{'lines/s':>9} {'x anchor':>8} {'cpu s/M':>8} {'x anchor':>8}")
    print(head)
    print("-" * len(head))
    for c in cases:
        print(f"{c.name:30} {c.rotations:>4} {c.kills:>5} {c.lost:>5} {c.corrupted:>7} {c.duplicates:>6} "
              f"{c.torn_output_lines:>4} {c.throughput:>9,.0f} {c.throughput / anchor.throughput:>8.2f} "
              f"{c.cpu_per_million:>8.1f} {c.cpu_per_million / anchor.cpu_per_million:>8.2f}")
        for note in c.notes:
            print(f"    note: {note}")
    if args.idle_seconds > 0:
        pct, n = idle_cpu(args.idle_seconds)
        print(f"\nidle: {pct:.3f}% of one core over {args.idle_seconds:.0f} s with no writes "
              f"(target <= 0.2%; {n} startup lines read)")
    bad = any(c.lost or c.corrupted for c in cases)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
