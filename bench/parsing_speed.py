"""Parsing speed: logwarden's Drain against Drain3's TemplateMiner on the same ≥200k lines, in one run.

Input (shared/docs/benchmarks.md §2): the loghub 2k messages of every set, repeated, with every parameter
(each `<*>` slot of the ground-truth template, matched back onto the message) re-drawn at random with the
same character classes (digit → digit, lower → lower, upper → upper), so variation sits where real logs
vary, not only in digits. Each parser runs in its own subprocess on the same file, so peak RSS is its own.

    .venv/bin/python bench/parsing_speed.py [--data ../shared/data/loghub_2k] [--lines 200000] [--seed 1]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import resource
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub_2k"
SETS = ("Apache", "BGL", "HDFS", "HPC", "Hadoop", "Linux", "OpenSSH", "Proxifier", "Spark", "Zookeeper")
BATCH = 512
"""Lines per `add_many` call (the daemon's parse stage hands the tree a read batch)."""
LABELS = {
    "drain3": "Drain3 0.9.11 (anchor)",
    "logwarden": f"logwarden add_many ({BATCH}/batch)",
    "logwarden-add": "logwarden add (per line)",
}
DRAIN3_EXAMPLE_MASKS = (
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
)


def _redraw(text: str, rng: random.Random) -> str:
    out = []
    for ch in text:
        if ch.isdigit():
            out.append(rng.choice(string.digits))
        elif "a" <= ch <= "z":
            out.append(rng.choice(string.ascii_lowercase))
        elif "A" <= ch <= "Z":
            out.append(rng.choice(string.ascii_uppercase))
        else:
            out.append(ch)
    return "".join(out)


def make_lines(data: Path, total: int, seed: int) -> tuple[list[str], list[str]]:
    """Each message with the spans of its template's `<*>` slots, then `total` re-drawn copies, and the
    ground-truth template (set-qualified) of each copy, for the mix's grouping accuracy."""
    rng = random.Random(seed)
    pool: list[tuple[str, list[tuple[int, int]], str]] = []
    for name in SETS:
        with (data / name / f"{name}_2k.log_structured.csv").open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                content, template = row["Content"], row["EventTemplate"]
                pattern = "(.*?)".join(re.escape(p) for p in template.split("<*>"))
                m = re.fullmatch(pattern, content, re.DOTALL)
                spans = [m.span(i) for i in range(1, (m.lastindex or 0) + 1)] if m else []
                pool.append((content, spans, f"{name}|{template}"))
    lines = []
    truth = []
    for i in range(total):
        content, spans, template = pool[i % len(pool)]
        truth.append(template)
        pieces, pos = [], 0
        for a, b in spans:
            pieces.append(content[pos:a])
            pieces.append(_redraw(content[a:b], rng))
            pos = b
        pieces.append(content[pos:])
        lines.append("".join(pieces))
    return lines, truth


def grouping_accuracy(pred: list[int], truth: list[str]) -> float:
    """GA as bench/parsing_accuracy.py computes it (shared/docs/benchmarks.md §1)."""
    truth_size = Counter(truth)
    members: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(pred):
        members[p].append(i)
    correct = 0
    for idx in members.values():
        ids = {truth[i] for i in idx}
        if len(ids) == 1 and truth_size[next(iter(ids))] == len(idx):
            correct += len(idx)
    return correct / len(truth)


def worker(engine: str, path: str) -> None:
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    members: list[int] = []
    if engine in ("logwarden", "logwarden-add"):
        from agent.drain import Drain

        drain = Drain()
        if engine == "logwarden":  # batches, as the parse stage feeds the tree
            add_many = drain.add_many
            start = time.perf_counter()
            for i in range(0, len(lines), BATCH):
                members += [m.member_id for m in add_many(lines[i:i + BATCH])]
            elapsed = time.perf_counter() - start
        else:  # one call per line, as Drain3 is driven
            add = drain.add
            start = time.perf_counter()
            for line in lines:
                members.append(add(line).member_id)
            elapsed = time.perf_counter() - start
        templates = sum(1 for _ in drain.clusters())
        groups = [drain.resolve(m) for m in members]
    else:
        from drain3 import TemplateMiner
        from drain3.masking import MaskingInstruction
        from drain3.template_miner_config import TemplateMinerConfig

        cfg = TemplateMinerConfig()
        cfg.masking_instructions = [MaskingInstruction(p, m) for p, m in DRAIN3_EXAMPLE_MASKS]
        cfg.mask_prefix, cfg.mask_suffix = "<:", ":>"
        cfg.profiling_enabled = False
        miner = TemplateMiner(config=cfg)
        add3 = miner.add_log_message
        start = time.perf_counter()
        for line in lines:
            members.append(add3(line)["cluster_id"])
        elapsed = time.perf_counter() - start
        templates = len(miner.drain.clusters)
        groups = members
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"lines": len(lines), "seconds": elapsed, "templates": templates, "rss_mib": rss_mib,
                      "groups": groups}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1, help="Repeat and report the median lines/s of each parser.")
    ap.add_argument("--worker", nargs=2, metavar=("ENGINE", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    lines, truth = make_lines(args.data, args.lines, args.seed)
    results: dict[str, list[dict[str, Any]]] = {"drain3": [], "logwarden": [], "logwarden-add": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lines.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        for _ in range(args.runs):
            for engine in results:
                out = subprocess.run([sys.executable, __file__, "--worker", engine, str(path)],
                                     check=True, capture_output=True, text=True).stdout
                results[engine].append(json.loads(out))
    print(f"{len(lines)} lines ({args.runs} run(s), median), parameters re-drawn per character class")
    print(f"{'parser':<30} {'lines/s':>10} {'ratio':>6} {'templates':>10} {'mix GA':>7} {'peak RSS MiB':>13}")
    speed = {}
    for engine, runs in results.items():
        rates = sorted(r["lines"] / r["seconds"] for r in runs)
        speed[engine] = rates[len(rates) // 2]
    for engine, runs in results.items():
        ga = grouping_accuracy(runs[-1]["groups"], truth)
        print(f"{LABELS[engine]:<30} {speed[engine]:10.0f} {speed[engine] / speed['drain3']:5.1f}x"
              f" {int(runs[-1]['templates']):10d} {ga:7.3f} {runs[-1]['rss_mib']:13.1f}")
    # Each run measures both parsers back to back, so its ratio shares that moment's load; the median of
    # the per-run ratios is steadier on a shared machine than the ratio of the medians.
    per_run = sorted(a["seconds"] / b["seconds"] for a, b in zip(results["drain3"], results["logwarden"], strict=True))
    print(f"ratio logwarden / Drain3: {speed['logwarden'] / speed['drain3']:.1f}x (of medians);"
          f" per run {', '.join(f'{r:.1f}x' for r in per_run)}, median {per_run[len(per_run) // 2]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
