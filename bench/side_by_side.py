"""Two daemons side by side on the same writes: the CPU of one change against another, paired.

On the shared build machines the same daemon measured 25% of a core in one run and 31% in the next, so a
10% change cannot be seen by running `bench/e2e.py` before and after it. Two daemons started together, fed
the same lines by one writer at the same moments, share whatever the machine is doing; their difference
stays within about a point when both run the same code (the A/A check, `--b` left out). Each round swaps
which daemon's file is written first, and the table gives the ratio of each round and their median.

Each side is a checkout (a `git worktree` of the commit to compare) run with this venv's interpreter from
its own directory, so its `agent` and `plugins` packages are the ones imported; `--env-b`/`--batch-b` vary
one side without a checkout. The detectors are the default four of `bench/e2e.py`'s live run; the minute
measured starts after `--warm` seconds (170 s: the forest has trained and scores; 40 s: still learning).

    git worktree add /tmp/base HEAD~3
    .venv/bin/python bench/side_by_side.py --a /tmp/base --rounds 2 --warm 170
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e import LIVE_LEARNERS, gen_lines, pipeline_config, restamp  # noqa: E402

CHUNK_LINES = 200
"""Lines per write, every 10 ms: 20,000 lines/s, as in bench/e2e.py's live run."""


@dataclass
class Side:
    name: str
    checkout: Path
    env: dict[str, str] = field(default_factory=dict)
    batch_size: int | None = None


def run_round(sides: list[Side], pool: list[str], warm: float, measure: float, work: Path) -> list[float]:
    """One round: start every side, write to all of them, return each daemon's CPU % over the measured span."""
    import psutil

    started: list[tuple[subprocess.Popen[bytes], Any, IO[str]]] = []
    for i, side in enumerate(sides):
        d = work / f"{i}-{side.name}"
        (d / "live").mkdir(parents=True)
        log = d / "live" / "a.log"
        log.write_text("".join(restamp(pool[:20_000])))
        detectors = "    - name: novelty\n      match: app\n      learn_for: 0s\n" + LIVE_LEARNERS
        outputs = f"    - name: file\n      path: {d / 'alerts.jsonl'}\n"
        cfg = d / "config.yaml"
        cfg.write_text(pipeline_config(d, detectors=detectors, outputs=outputs, logs=str(d / "live" / "*.log"),
                                       batch_size=side.batch_size))
        with (d / "stderr.txt").open("w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)], cwd=side.checkout,
                                    env={**os.environ, **side.env}, stdout=subprocess.DEVNULL, stderr=err)
        started.append((proc, psutil.Process(proc.pid), log.open("a")))
    try:
        time.sleep(3.0)
        pos = 20_000
        t0 = tick = time.monotonic()
        cpu0: list[float] | None = None
        t_measure = 0.0
        flip = False
        while (now := time.monotonic()) - t0 < warm + measure:
            if cpu0 is None and now - t0 >= warm:
                cpu0 = [sum(ps.cpu_times()[:2]) for _, ps, _ in started]
                t_measure = now
            block = "".join(restamp([pool[(pos + k) % len(pool)] for k in range(CHUNK_LINES)]))
            pos += CHUNK_LINES
            flip = not flip
            for _, _, fh in started if flip else started[::-1]:
                fh.write(block)
                fh.flush()
            tick += 0.01
            if (delay := tick - time.monotonic()) > 0:
                time.sleep(delay)
        elapsed = time.monotonic() - t_measure
        assert cpu0 is not None
        return [100 * (sum(ps.cpu_times()[:2]) - c) / elapsed for (_, ps, _), c in zip(started, cpu0, strict=True)]
    finally:
        for proc, _, fh in started:
            fh.close()
            proc.terminate()
        for proc, _, _ in started:
            proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, default=ROOT, help="Checkout of side A (default: this one).")
    ap.add_argument("--b", type=Path, default=ROOT, help="Checkout of side B (default: this one).")
    ap.add_argument("--env-b", action="append", default=[], metavar="KEY=VALUE", help="Environment of side B only.")
    ap.add_argument("--batch-b", type=int, default=None, help="service.batch_size of side B (default: the config's).")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warm", type=float, default=170.0, help="Seconds written before the measured span.")
    ap.add_argument("--measure", type=float, default=60.0)
    args = ap.parse_args()
    a = Side("A", args.a.resolve())
    b = Side("B", args.b.resolve(), dict(kv.split("=", 1) for kv in args.env_b), args.batch_b)
    with tempfile.TemporaryDirectory(prefix="lw-sbs-") as tmp:
        work = Path(tmp)
        normal = work / "normal.log"
        gen_lines(normal, 400_000, seed=5, incidents=[])
        pool = normal.read_text().splitlines(keepends=True)
        rows = []
        for r in range(args.rounds):
            order = [a, b] if r % 2 == 0 else [b, a]
            cpu = dict(zip((s.name for s in order), run_round(order, pool, args.warm, args.measure, work / f"r{r}"),
                           strict=True))
            rows.append((cpu["A"], cpu["B"]))
            print(f"round {r + 1}: A {cpu['A']:.1f}%  B {cpu['B']:.1f}%", file=sys.stderr, flush=True)
    print(f"\nA: {a.checkout}\nB: {b.checkout} {b.env or ''} {f'batch_size {b.batch_size}' if b.batch_size else ''}")
    print(f"{CHUNK_LINES * 100:,} lines/s to each, default four detectors, measured {args.measure:.0f} s after "
          f"{args.warm:.0f} s\n")
    print("| round | A, % of a core | B, % of a core | B ÷ A |")
    print("|---|---|---|---|")
    for i, (ca, cb) in enumerate(rows, 1):
        print(f"| {i} | {ca:.1f} | {cb:.1f} | {cb / ca:.3f} |")
    print(f"| median | | | {statistics.median(cb / ca for ca, cb in rows):.3f} |")


if __name__ == "__main__":
    main()
