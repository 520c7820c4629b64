"""End-to-end benchmark of the daemon (issue 8): replay throughput, live tailing cost and alert latency.

Part 1 — replay: N generated lines through the whole pipeline (replay input → header parse → Drain →
novelty + volume + params + iforest detectors → alert router → file output), in this process, timed by
CPU seconds of this process (a replay reads and processes on one thread, so lines per CPU-second is
lines/s on one core). Anchor in the same run: Drain3's TemplateMiner alone on the same messages.

Part 2 — live: `logwarden run` as a subprocess tails a file written at a fixed rate; every few seconds a
line with a never-seen ERROR template is written, and a local webhook receiver timestamps the alert:
line-written → alert-received latency. CPU % of one core and RSS of the daemon are sampled with psutil.
Then nothing is written for `--idle` seconds: idle CPU.

These machines are noisy (the same code measured 12 to 20 µs a line from one hour to the next): the replay
runs `--replay-runs` times and the best run counts, each run followed by its anchors. Besides Drain3 the
issue's own yardstick is measured each time — one compiled regex masking each message, "~5 µs here" when
the targets were set: 12 µs a line (80k lines/s) is 2.4 times it, 30% of a core at 20k lines/s (15 µs a
line) 3.0 times. It tells how fast the host was, not a verdict: a tight regex loop and this memory-bound
pipeline do not slow down together (the replay measured 2.0 to 3.5 times the yardstick within one day).

    .venv/bin/python bench/e2e.py [--lines 1000000] [--replay-runs 3] [--rate 20000] [--live 60] [--idle 60]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import socket
import statistics
import string
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.generator import GeneratorConfig, generate  # noqa: E402
from agent.generator.engine import GENERATOR_FORMAT, MULTILINE_START  # noqa: E402


def gen_lines(path: Path, n: int, seed: int, incidents: list[str]) -> int:
    rate = 400.0
    cfg = GeneratorConfig(seed=seed, duration_s=n / rate * 1.02, rate=rate, incidents=incidents, warmup_fraction=0.5)
    with path.open("w") as fh:
        generate(cfg, fh)
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def pipeline_config(tmp: Path, *, detectors: str, outputs: str, logs: str, http: str = "", batch_size: int | None = None) -> str:
    return f"""\
service:
  state_dir: {tmp / 'state'}
  log_level: warning
  snapshot_interval: 30s
{f'  batch_size: {batch_size}' if batch_size else ''}
{http}
pipeline:
  inputs:
    - name: tail
      tag: app
      path: ['{logs}']
      read_from: beginning
      multiline: {{start: '{MULTILINE_START}'}}
      parser: {{format: '{GENERATOR_FORMAT}'}}
  detectors:
{detectors}
  outputs:
{outputs}
"""


REPLAY_DETECTORS = """\
    - name: novelty
      match: app
      learn_for: 5m
    - name: volume
      match: app
      learn_for: 10m
    - name: params
      match: app
      learn_for: 10m
    - name: iforest
      match: app
      model: auto
      window: {type: sliding, size: 60s, step: 10s}
      learn_windows: 60
"""


LIVE_LEARNERS = """\
    - name: volume
      match: app
      learn_for: 1m
    - name: params
      match: app
      learn_for: 1m
    - name: iforest
      match: app
      model: auto
      window: {type: sliding, size: 60s, step: 10s}
      learn_windows: 12
      min_learn_windows: 12
"""
"""The live run's other three detectors: the default config's, learning for a minute or two instead of an
hour, so that the run is measured after they learned — the forest trained in its child process and its ONNX
scorer swapped in, volume and params scoring their buckets: the daemon as it runs after its first hour. The
forest's first five windows are partial (the log began less than 60 s before they closed), so it learns from
twelve: with six it had one full window and found most later ones anomalous."""


LIVE_DRAIN3_LINES = 100_000
"""Messages the live run's Drain3 anchor mines (before the daemon starts and after it stopped; the lower
counts). The mask yardstick is a tight loop in C; Drain3 is Python like the daemon, so when the host's
Python slows more than its regex engine (one day Drain3 ran 1.6 times slower while the mask did not) this
ratio still compares like with like."""


def part_replay(tmp: Path, n: int, runs: int) -> dict[str, Any]:
    """The whole pipeline over one generated log, `runs` times (each from fresh state), each followed by
    the anchor on the same messages (Drain3 alone), so both see the machine in the same state; the best
    run of each counts (the least disturbed by other load), the median is printed too."""
    from agent.commands.replay import replay
    from agent.config import load_config
    from agent.registry import Registry

    log = tmp / "replay.log"
    lines = gen_lines(log, n, seed=3, incidents=["new_template", "error_burst", "latency_spike"])
    registry = Registry.default()
    messages = []
    with log.open() as fh:
        for i, line in enumerate(fh):
            if i >= 200_000:
                break
            parts = line.rstrip("\n").split(None, 4)
            messages.append(parts[4] if len(parts) == 5 else line)
    cpu_runs: list[float] = []
    drain3_runs: list[float] = []
    mask_runs: list[float] = []
    summary: dict[str, Any] = {}
    wall = 0.0
    for i in range(runs):
        run_dir = tmp / f"replay-{i}"
        run_dir.mkdir()
        cfg_path = run_dir / "replay.yaml"
        outputs = f"    - name: file\n      path: {run_dir / 'alerts.jsonl'}\n"
        cfg_path.write_text(pipeline_config(run_dir, detectors=REPLAY_DETECTORS, outputs=outputs, logs=str(log)))
        config = load_config(cfg_path, registry)
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        summary = replay(config, registry, [log], run_dir / "replay-state")
        cpu_runs.append(time.process_time() - cpu0)
        wall = time.perf_counter() - wall0
        drain3_runs.append(drain3_cost(messages) * len(messages))
        mask_runs.append(mask_cost(messages))
    best = min(cpu_runs)
    per_line = [c / lines for c in cpu_runs]
    ratios = [c / m for c, m in zip(per_line, mask_runs, strict=True)]
    return {
        "lines": lines, "records": summary["records"], "runs": runs, "alerts": summary["alerts"],
        "templates": summary["templates"], "stage_errors": summary["stage_errors"],
        "us_best": 1e6 * best / lines, "us_median": 1e6 * statistics.median(cpu_runs) / lines,
        "lines_per_cpu_s": lines / best, "wall_s": wall,
        "drain3_lines_per_cpu_s": len(messages) / min(drain3_runs),
        "mask_us_best": 1e6 * min(mask_runs), "mask_us_median": 1e6 * statistics.median(mask_runs),
        "mask_ratio_best": min(ratios), "mask_ratio_median": statistics.median(ratios),
    }


IP_MASK = re.compile(r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)")
"""The issue's yardstick: "masking one line with one compiled regex alone costs ~5 µs here" — an IP mask of
the kind Drain3's example configuration applies, run over the same messages. Its cost moves with the host's
speed exactly as ours does, so µs per line ÷ this cost is the figure that does not depend on the hour."""
MASK_TARGET_RATIO = 12.0 / 5.0
LIVE_TARGET_RATIO = 15.0 / 5.0
"""30% of one core at 20,000 lines/s is 15 µs of CPU a line."""


def drain3_cost(messages: list[str]) -> float:
    """CPU seconds per message of Drain3's TemplateMiner (defaults), fresh, over these messages."""
    from drain3 import TemplateMiner  # type: ignore[import-untyped]
    from drain3.template_miner_config import TemplateMinerConfig  # type: ignore[import-untyped]

    miner = TemplateMiner(config=TemplateMinerConfig())
    t0 = time.process_time()
    for m in messages:
        miner.add_log_message(m)
    return (time.process_time() - t0) / len(messages)


def mask_cost(messages: list[str]) -> float:
    """CPU seconds per message of one compiled regex substitution."""
    sub = IP_MASK.sub
    t0 = time.process_time()
    for m in messages:
        sub("<IP>", m)
    return (time.process_time() - t0) / len(messages)


class Receiver:
    """A webhook receiver on loopback that timestamps every alert it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                outer.received.append((time.time(), body))
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def marker(i: int) -> str:
    letters = string.ascii_lowercase
    word = ""
    i += 1
    while i:
        i, r = divmod(i, 26)
        word += letters[r]
    return "zq" + word


def novel_line(i: int, rng: random.Random) -> str:
    """An ERROR line whose template nobody has seen: its own words, its own length."""
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9))) for _ in range(3 + i % 5)]
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return f"{ts} ERROR payment-service req={os.urandom(6).hex()} {marker(i)} {' '.join(words)} failed\n"


WARMUP_MAX_S = 240.0
"""Longest warm-up before the live measurement: learning a minute, training the forest and the swap."""


def scrape(metrics_url: str) -> str:
    return urllib.request.urlopen(metrics_url, timeout=10).read().decode()


def learning(metrics_url: str) -> bool:
    """True while a detector says it is learning (the iforest before its first model), from `/metrics`."""
    text = scrape(metrics_url)
    return any(float(line.rsplit(" ", 1)[1]) > 0 for line in text.splitlines()
               if line.startswith("logwarden_detector_learning"))


def anomalies(metrics_url: str) -> dict[str, float]:
    """Anomalies each detector has reported so far, from `/metrics`."""
    text = scrape(metrics_url)
    return {line.split('component="detector.', 1)[1].split(".", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith("logwarden_detector_anomalies_total{")}


def restamp(lines: list[str]) -> list[str]:
    """The pool's lines stamped with the time they are written: the pool was generated at 400 lines/s
    yesterday and is replayed in a loop at 20k lines/s, and event-time detectors (volume, params, sliding
    windows) must see a clock that moves like the wall clock, not 50 times faster and back every loop."""
    now = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    return [ts + line[24:] if line[:1].isdigit() else line for line in lines]


def part_live(tmp: Path, rate: int, seconds: int, idle: int, all_detectors: bool = False,
              batch_size: int | None = None) -> dict[str, Any]:
    import psutil

    logs = tmp / "live"
    logs.mkdir()
    normal = tmp / "normal.log"
    gen_lines(normal, min(rate * 30, 600_000), seed=5, incidents=[])
    pool = normal.read_text().splitlines(keepends=True)
    receiver = Receiver()
    port_sock = socket.socket()
    port_sock.bind(("127.0.0.1", 0))
    port = port_sock.getsockname()[1]
    port_sock.close()
    detectors = "    - name: novelty\n      match: app\n      learn_for: 0s\n"
    if all_detectors:  # the default config's set: the never-seen template still fires from novelty
        detectors += LIVE_LEARNERS
    outputs = f"    - name: webhook\n      url: {receiver.url}\n"
    cfg = tmp / "live.yaml"
    live_log = logs / "app.log"
    cfg.write_text(pipeline_config(tmp, detectors=detectors, outputs=outputs, logs=str(logs / "*.log"),
                                   http=f"  http: {{listen: 127.0.0.1:{port}}}", batch_size=batch_size))
    messages = [parts[4] if len(parts := line.split(None, 4)) == 5 else line for line in pool[:200_000]]
    mask_before = mask_cost(messages)  # the yardsticks, before the daemon runs and after it stopped
    drain3_before = drain3_cost(messages[:LIVE_DRAIN3_LINES])
    # Warm the tree up on normal traffic first, so only the injected templates are new.
    live_log.write_text("".join(restamp(pool[:20_000])))
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)], cwd=ROOT,  # this tree's code
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "live-daemon.log", "w"))  # noqa: SIM115
    ps = psutil.Process(proc.pid)
    time.sleep(5.0)
    rng = random.Random(9)
    written: dict[str, float] = {}
    rss: list[float] = []
    anon: list[float] = []  # RSS less its file-backed pages (the shared libraries' code): the daemon's own
    chunk = max(1, rate // 100)
    pos = 20_000
    injected = 0
    metrics_url = f"http://127.0.0.1:{port}/metrics"

    def write(seconds: float, measure: bool, until: Callable[[], bool] | None = None) -> None:
        nonlocal pos, injected
        t0 = time.monotonic()
        next_inject = t0 + 1.0
        next_check = t0 + 5.0
        with live_log.open("a") as fh:
            tick = t0
            while time.monotonic() - t0 < seconds:
                block = restamp([pool[(pos + k) % len(pool)] for k in range(chunk)])
                pos += chunk
                if measure and time.monotonic() >= next_inject:
                    line = novel_line(injected, rng)
                    block.append(line)
                    written[marker(injected)] = -1.0
                    injected += 1
                    next_inject += 2.0
                fh.write("".join(block))
                fh.flush()
                for m, t in written.items():
                    if t < 0:
                        written[m] = time.time()
                tick += 0.01
                delay = tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if measure and int(time.monotonic() * 10) % 20 == 0:
                    mem = ps.memory_info()
                    rss.append(mem.rss / 2**20)
                    anon.append((mem.rss - mem.shared) / 2**20)
                if until is not None and time.monotonic() >= next_check:
                    next_check += 5.0
                    if until():
                        return

    warmup_s = 0.0
    if all_detectors:  # write at the rate until every learner has finished: the run measures scoring
        t_warm = time.monotonic()
        write(WARMUP_MAX_S, measure=False, until=lambda: time.monotonic() - t_warm >= 75.0 and not learning(metrics_url))
        warmup_s = time.monotonic() - t_warm
        if learning(metrics_url):
            raise SystemExit(f"the detectors were still learning after {warmup_s:.0f}s of warm-up")
    lines_before = pos
    anomalies_before = anomalies(metrics_url)
    cpu0 = sum(ps.cpu_times()[:2])
    t_start = time.monotonic()
    write(seconds, measure=True)
    live_elapsed = time.monotonic() - t_start
    cpu_live = sum(ps.cpu_times()[:2]) - cpu0
    lines_written = pos - lines_before + injected
    time.sleep(5.0)  # let the last alerts arrive and the reader catch up
    # What the daemon says it read and handled: the CPU figure means something only if it kept up.
    metrics = scrape(metrics_url)
    handled = {name: sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                         if line.startswith(name + "{"))
               for name in ("logwarden_input_lines_read_total", "logwarden_pipeline_records_total")}
    run_anomalies = {k: v - anomalies_before.get(k, 0.0) for k, v in anomalies(metrics_url).items()}
    latencies = []
    for m, t in written.items():
        hits = [rt for rt, body in receiver.received if m in body]
        if hits:
            latencies.append(min(hits) - t)
    if all_detectors:  # the last 60 s windows (and buckets) close after the writes stop: that is not idling
        time.sleep(75.0)
    cpu1 = sum(ps.cpu_times()[:2])
    time.sleep(idle)
    cpu_idle = sum(ps.cpu_times()[:2]) - cpu1
    rss_idle = ps.memory_info().rss / 2**20
    proc.terminate()
    proc.wait(30)
    mask = min(mask_before, mask_cost(messages))
    drain3 = min(drain3_before, drain3_cost(messages[:LIVE_DRAIN3_LINES]))
    latencies.sort()
    return {
        "rate": lines_written / live_elapsed, "seconds": live_elapsed, "cpu_pct": 100 * cpu_live / live_elapsed,
        "cpu_s_per_million": cpu_live / lines_written * 1e6, "injected": injected, "alerted": len(latencies),
        "p50_latency_s": statistics.median(latencies) if latencies else float("nan"),
        "p99_latency_s": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan"),
        "rss_steady_mb": statistics.median(rss[len(rss) // 2:]) if rss else rss_idle, "rss_max_mb": max(rss or [rss_idle]),
        "anon_steady_mb": statistics.median(anon[len(anon) // 2:]) if anon else float("nan"),
        "idle_cpu_pct": 100 * cpu_idle / idle, "mask_us": 1e6 * mask,
        "lines_read": handled["logwarden_input_lines_read_total"] - lines_before, "lines_written": lines_written,
        "warmup_s": warmup_s, "anomalies": run_anomalies,
        "records": handled["logwarden_pipeline_records_total"],
        "mask_ratio": cpu_live / lines_written / mask, "drain3_us": 1e6 * drain3,
        "drain3_ratio": cpu_live / lines_written / drain3,
    }


def interpreter() -> str:
    """Which Python ran this. The same code took 8% (replay) to 15% (live, side by side) more CPU on a
    source build calling into a shared libpython without profile-guided optimisation (pyenv's default) than
    on Debian's python3.11 (libpython linked into the binary, built with PGO and LTO), the interpreter the
    README's `python3 -m venv /opt/logwarden` gives on Debian. The process's maps say which kind ran
    (sysconfig's Py_ENABLE_SHARED is 1 for both)."""
    try:
        shared = "libpython" in Path("/proc/self/maps").read_text()
    except OSError:
        shared = bool(sysconfig.get_config_var("Py_ENABLE_SHARED"))
    linked = "calls a shared libpython" if shared else "libpython linked in"
    return f"{os.path.realpath(sys.executable)}, Python {sys.version.split()[0]}, {linked}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=20_000)
    ap.add_argument("--live", type=int, default=60)
    ap.add_argument("--idle", type=int, default=60)
    ap.add_argument("--skip-replay", action="store_true")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--live-detectors", choices=["novelty", "all"], default="novelty",
                    help="Detectors of the live daemon: novelty alone (the alert path), or the default four.")
    ap.add_argument("--batch-size", type=int, default=None, help="The live daemon's service.batch_size (default: the config's).")
    ap.add_argument("--replay-runs", type=int, default=3, help="Replays of the same log; the best CPU time counts.")
    args = ap.parse_args()
    print(f"Interpreter: {interpreter()}")
    with tempfile.TemporaryDirectory(prefix="lw-e2e-") as d:
        tmp = Path(d)
        # Live first: the replay imports onnxruntime into this process, and the kernel does not page out
        # library pages that another process maps too (agent/coldpages.py), so after it the daemon's RSS
        # kept ~20 MiB of onnxruntime's pages that it alone would have released (95.2 against 75.8 MiB).
        lv = None if args.skip_live else part_live(tmp, args.rate, args.live, args.idle,
                                                   all_detectors=args.live_detectors == "all",
                                                   batch_size=args.batch_size)
        if not args.skip_replay:
            r = part_replay(tmp, args.lines, args.replay_runs)
            print(f"\n## Replay through the whole pipeline (read and processed on one thread; best of {r['runs']} runs)\n")
            print("| what | lines/s per CPU-second | µs per line | ratio to Drain3 alone |")
            print("|---|---|---|---|")
            print(f"| Drain3 TemplateMiner alone, same messages (anchor) | {r['drain3_lines_per_cpu_s']:,.0f} | "
                  f"{1e6 / r['drain3_lines_per_cpu_s']:.1f} | 1.0 |")
            print(f"| logwarden replay, whole pipeline, {r['lines']:,} lines | {r['lines_per_cpu_s']:,.0f} | "
                  f"{r['us_best']:.1f} (median {r['us_median']:.1f}) | "
                  f"{r['lines_per_cpu_s'] / r['drain3_lines_per_cpu_s']:.2f}x |")
            print(f"| one compiled regex masking each message (the issue's ~5 µs yardstick) | "
                  f"{1e6 / r['mask_us_best']:,.0f} | {r['mask_us_best']:.1f} (median {r['mask_us_median']:.1f}) | |")
            print(f"\nReplay µs per line ÷ the yardstick's in the same run: best {r['mask_ratio_best']:.2f}, "
                  f"median {r['mask_ratio_median']:.2f} (target ≤ {MASK_TARGET_RATIO:.1f}: 12 µs where the mask costs 5 µs).")
            print("Target: ≥ 80,000 lines/s on one core (≤ 12 µs per line all-in).")
            print(f"wall {r['wall_s']:.1f}s (last run), {r['templates']} templates, {r['alerts']} alerts, "
                  f"{r['stage_errors']} stage errors; peak RSS "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        if lv is not None:
            print(f"\n## Live tailing (`logwarden run` subprocess, detectors: {args.live_detectors})\n")
            print("| metric | measured | target |")
            print("|---|---|---|")
            if lv["warmup_s"]:
                print(f"| warm-up before measuring | {lv['warmup_s']:.0f}s at the same rate, until volume and params had "
                      "learned for a minute and the forest was trained and scoring | |")
            print(f"| write rate | {lv['rate']:,.0f} lines/s for {lv['seconds']:.0f}s | 20,000 |")
            print(f"| read by the daemon 5 s after | {lv['lines_read']:,.0f} of {lv['lines_written']:,} lines "
                  f"({lv['records']:,.0f} records through the pipeline, warm-up included) | all |")
            print(f"| daemon CPU | {lv['cpu_pct']:.1f}% of one core ({lv['cpu_s_per_million']:.1f} CPU-s per 1M lines) | ≤ 30% |")
            print(f"| CPU per line ÷ the mask yardstick ({lv['mask_us']:.1f} µs here) | {lv['mask_ratio']:.2f} | "
                  f"≤ {LIVE_TARGET_RATIO:.1f} (15 µs a line where the mask costs 5 µs) |")
            print(f"| CPU per line ÷ Drain3's per message, same messages ({lv['drain3_us']:.1f} µs here) | "
                  f"{lv['drain3_ratio']:.2f} | (a Python-speed anchor: Drain3 alone, no reading or detectors) |")
            print(f"| new ERROR template → webhook | p50 {lv['p50_latency_s']:.3f}s, p99 {lv['p99_latency_s']:.3f}s "
                  f"({lv['alerted']}/{lv['injected']} alerted) | p99 ≤ 1 s |")
            print(f"| anomalies reported while measured ({lv['injected']} injected never-seen templates) | "
                  + ", ".join(f"{k} {v:.0f}" for k, v in sorted(lv["anomalies"].items())) + " | |")
            print(f"| RSS (MiB, as ps and systemd's MemoryMax count) | steady {lv['rss_steady_mb']:.1f}, max "
                  f"{lv['rss_max_mb']:.1f} (of the steady RSS, {lv['anon_steady_mb']:.1f} not file-backed) | ≤ 80 |")
            print(f"| idle CPU ({args.idle}s, no writes) | {lv['idle_cpu_pct']:.3f}% | ≤ 0.2% |")


if __name__ == "__main__":
    main()
