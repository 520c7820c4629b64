"""Drain on lines that fit no template: free text, random words (issue 3's tree, hardened under issue 8).

Drain compares a line that matched no cache with every cluster of its leaf. Logs of free text (chat-like
application output, random words) make a new cluster of almost every line, and past `max_children` they all
land in the same few leaves, so each line costs a comparison with thousands of clusters: quadratic. Leaves
of many clusters are now indexed by (position, token), and only clusters sharing a token are scored — the
answers are the same (tests/agent/test_drain.py checks every match against the full scan).

Anchor in the same run: Drain3's TemplateMiner on the same lines (it scans the whole leaf too). Reports
lines per CPU-second for each, at two sizes, so growth with size is visible.

    .venv/bin/python bench/free_text.py [--lines 4000,16000]
"""

from __future__ import annotations

import argparse
import random
import sys
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", default="4000,16000", help="Sizes to run, comma-separated.")
    args = ap.parse_args()
    print("| lines | logwarden lines/s | clusters | Drain3 lines/s | clusters | ratio |")
    print("|---|---|---|---|---|---|")
    for n in (int(x) for x in args.lines.split(",")):
        lines = free_text(n)
        t_ours, c_ours = ours(lines)
        t_d3, c_d3 = drain3(lines)
        print(f"| {n:,} | {n / t_ours:,.0f} | {c_ours:,} | {n / t_d3:,.0f} | {c_d3:,} | {t_d3 / t_ours:.1f}x |")


if __name__ == "__main__":
    main()
