"""Instructions and cache misses per line of the whole replay pipeline, counted by valgrind, beside Drain3.

Wall and CPU time on the shared build machines moved by ±30% from one hour to the next (and 2x within a
day), which hides a 5% change; an instruction count does not move. Instructions alone mislead, though: at
equal instructions the pipeline took ~1.6x Drain3's time, and the difference is memory. So the counts come
from cachegrind's cache simulation with this host's per-core sizes (32 KiB L1 data and instruction caches,
1 MiB L2 as the last level): L1 misses cost a few cycles, a last-level miss goes to a shared L3 that other
tenants use, or to memory, and can cost hundreds. This runs the same replay as `bench/e2e.py` (generated log,
header parse → Drain → novelty + volume + params + iforest → router → file) under callgrind for `--lines`
lines and for the first 1,000 of them, and reports the difference per line, so start-up and imports
cancel out. The anchor is Drain3's TemplateMiner on the same messages, counted the same way. Learning
periods are scaled down with the log (30 s / 1 min / 6 windows instead of 5 / 10 min / 60) so that, as in
e2e's 1M-line replay, about three quarters of the lines are scored after learning.

Needs valgrind on PATH; takes ~5 minutes for 100k lines (two runs at a time). The children run with a fixed
hash seed: with a random one, the same code counted 41,988 and 43,958 instructions a line (dict and set
layouts differ), which hides the changes this is for.

    .venv/bin/python bench/instructions.py [--lines 100000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

BASE_LINES = 1000


def child(kind: str, log: Path, work: Path) -> None:
    """The measured program: one replay, or Drain3 over the log's messages."""
    if kind == "drain3":
        from drain3 import TemplateMiner  # type: ignore[import-untyped]
        from drain3.template_miner_config import TemplateMinerConfig  # type: ignore[import-untyped]

        miner = TemplateMiner(config=TemplateMinerConfig())
        with log.open() as fh:
            for line in fh:
                parts = line.rstrip("\n").split(None, 4)
                miner.add_log_message(parts[4] if len(parts) == 5 else line)
        return
    import e2e

    from agent.commands.replay import replay
    from agent.config import load_config
    from agent.registry import Registry

    detectors = (e2e.REPLAY_DETECTORS.replace("learn_for: 5m", "learn_for: 30s\n      save_interval: 1h")
                 .replace("learn_for: 10m", "learn_for: 1m\n      save_interval: 1h")
                 .replace("learn_windows: 60", "learn_windows: 6"))
    cfg = work / "replay.yaml"
    # Saves run on the wall clock, and under valgrind a replay takes fifty times as long: every 30 s snapshot
    # and 60 s baseline save was counted several times here and never in e2e's replay (12 s of CPU), and how
    # many fell in a run moved the count by ~2% from one run of the same code to the next.
    text = e2e.pipeline_config(work, detectors=detectors, logs=str(log),
                               outputs=f"    - name: file\n      path: {work / 'alerts.jsonl'}\n")
    cfg.write_text(text.replace("snapshot_interval: 30s", "snapshot_interval: 1h"))
    registry = Registry.default()
    replay(load_config(cfg, registry), registry, [log], work / "state")


CACHES = ["--cache-sim=yes", "--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64"]
EVENTS = {"instructions": "I   refs", "I1 misses": "I1  misses", "D1 misses": "D1  misses", "LL misses": "LL misses"}


def count(kind: str, log: Path) -> dict[str, int]:
    """Cachegrind's totals for one child run."""
    with tempfile.TemporaryDirectory() as work:
        run = subprocess.run(
            ["valgrind", "--tool=cachegrind", *CACHES, "--cachegrind-out-file=/dev/null", sys.executable, __file__,
             "--child", kind, str(log), work],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    out = {}
    for name, label in EVENTS.items():
        m = re.search(rf"{label}:\s+([\d,]+)", run.stderr)
        if m is None:
            raise SystemExit(f"no {name} count from valgrind:\n{run.stderr[-2000:]}")
        out[name] = int(m.group(1).replace(",", ""))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--child", nargs=3, metavar=("KIND", "LOG", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    import e2e

    with tempfile.TemporaryDirectory() as tmp:
        log, head = Path(tmp) / "replay.log", Path(tmp) / "head.log"
        e2e.gen_lines(log, args.lines, seed=3, incidents=["new_template", "error_burst", "latency_spike"])
        with log.open() as src, head.open("w") as dst:
            for i, line in enumerate(src):
                if i >= BASE_LINES:
                    break
                dst.write(line)
        lines = sum(1 for _ in log.open("rb")) - BASE_LINES
        jobs = [(kind, f) for kind in ("pipeline", "drain3") for f in (log, head)]
        with ThreadPoolExecutor(2) as pool:
            full_p, head_p, full_d, head_d = pool.map(lambda job: count(*job), jobs)
    per_line = {
        "pipeline": {k: (full_p[k] - head_p[k]) / lines for k in EVENTS},
        "drain3": {k: (full_d[k] - head_d[k]) / lines for k in EVENTS},
    }
    print(f"## Per line (cachegrind, 32 KiB L1s, 1 MiB last level; {lines:,} lines minus the first {BASE_LINES:,})")
    print("| what | " + " | ".join(EVENTS) + " |")
    print("|---|" + "---|" * len(EVENTS))
    d, p = per_line["drain3"], per_line["pipeline"]
    print("| Drain3 TemplateMiner alone, same messages (anchor) | " + " | ".join(f"{d[k]:,.0f}" for k in EVENTS) + " |")
    print("| logwarden replay, whole pipeline | " + " | ".join(f"{p[k]:,.0f}" for k in EVENTS) + " |")
    print("| ratio | " + " | ".join(f"{p[k] / d[k]:.2f}x" if d[k] >= 1 else "(anchor < 1)" for k in EVENTS) + " |")

if __name__ == "__main__":
    main()
