"""Drain on lines that fit no template: free text, random words (issue 3's tree, hardened under issue 8).

Drain compares a line that matched no cache with every cluster of its leaf. Logs of free text (chat-like
application output, random words) make a new cluster of almost every line, and past `max_children` they all
land in the same few leaves, so each line costs a comparison with thousands of clusters: quadratic. Leaves
of many clusters are now indexed by (position, token), and only clusters sharing a token are scored — the
answers are the same (tests/agent/test_drain.py checks every match against the full scan).

Anchor in the same run: Drain3's TemplateMiner on the same lines (it scans the whole leaf too). Reports
lines per CPU-second for each, at two sizes, so growth with size is visible.

Then the whole replay pipeline (e2e's configuration: header parse, Drain, novelty, volume, params,
iforest, router, file output) in a fresh process per run, on free text behind a normal header and, as the
anchor, on the same number of generated service lines: CPU per line and peak RSS. Free text is the worst
case for memory (a template per line), so the peak must stop growing with size: Drain, its caches and the
detectors' tables are capped.

    .venv/bin/python bench/free_text.py [--lines 4000,16000] [--pipeline 30000,90000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.drain import Drain, DrainConfig


def free_text(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(5000)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 10))) for _ in range(n)]


def ours(lines: list[str]) -> tuple[float, int]:
    d = Drain(DrainConfig())
    t0 = time.process_time()
    for i in range(0, len(lines), 100):
        d.add_many(lines[i:i + 100])
    return time.process_time() - t0, int(d.stats()["clusters"])


def drain3(lines: list[str]) -> tuple[float, int]:
    from drain3 import TemplateMiner  # type: ignore[import-untyped]
    from drain3.template_miner_config import TemplateMinerConfig  # type: ignore[import-untyped]

    miner = TemplateMiner(config=TemplateMinerConfig())
    t0 = time.process_time()
    for line in lines:
        miner.add_log_message(line)
    return time.process_time() - t0, len(miner.drain.clusters)


def free_text_log(path: Path, n: int, seed: int = 3) -> None:
    """`n` lines of free text behind the generator's header (so times, levels and components parse)."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(5000)]
    with path.open("w") as fh:
        for i in range(n):
            t = 1_700_000_000 + i * 0.005
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
            level = rng.choice(["INFO ", "INFO ", "WARN ", "ERROR"])
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 10)))
            fh.write(f"{stamp} {level} svc-{rng.randint(1, 20)} req={i:012x} {text}\n")


def child(log: str, work: str) -> None:
    """One replay of `log` through e2e's pipeline; prints CPU seconds and peak RSS as JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import e2e

    from agent.commands.replay import replay
    from agent.config import load_config
    from agent.registry import Registry

    tmp = Path(work)
    cfg = tmp / "replay.yaml"
    cfg.write_text(e2e.pipeline_config(tmp, detectors=e2e.REPLAY_DETECTORS, logs=log,
                                       outputs=f"    - name: file\n      path: {tmp / 'alerts.jsonl'}\n"))
    registry = Registry.default()
    t0 = time.process_time()
    summary = replay(load_config(cfg, registry), registry, [Path(log)], tmp / "state")
    print(json.dumps({"cpu": time.process_time() - t0, "lines": summary["lines"], "templates": summary["templates"],
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def pipeline_run(log: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        out = subprocess.run([sys.executable, __file__, "--child", str(log), work], capture_output=True, text=True,
                             check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", default="4000,16000", help="Sizes to run, comma-separated.")
    ap.add_argument("--pipeline", default="30000,90000", help="Sizes of the whole-pipeline runs ('' for none).")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    print("| lines | logwarden lines/s | clusters | Drain3 lines/s | clusters | ratio |")
    print("|---|---|---|---|---|---|")
    for n in (int(x) for x in args.lines.split(",")):
        lines = free_text(n)
        t_ours, c_ours = ours(lines)
        t_d3, c_d3 = drain3(lines)
        print(f"| {n:,} | {n / t_ours:,.0f} | {c_ours:,} | {n / t_d3:,.0f} | {c_d3:,} | {t_d3 / t_ours:.1f}x |")
    sizes = [int(x) for x in args.pipeline.split(",") if x]
    if not sizes:
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import e2e

    print("\n| lines | free text: µs/line | templates | peak RSS | generated log (anchor): µs/line | peak RSS |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            free, normal = Path(d) / f"free-{n}.log", Path(d) / f"normal-{n}.log"
            free_text_log(free, n)
            e2e.gen_lines(normal, n, seed=3, incidents=[])
            a, b = pipeline_run(free), pipeline_run(normal)
            print(f"| {n:,} | {1e6 * a['cpu'] / a['lines']:.0f} | {a['templates']:,.0f} | {a['rss_mb']:.0f} MB | "
                  f"{1e6 * b['cpu'] / b['lines']:.1f} | {b['rss_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
