"""Parsing accuracy on loghub 2k (corrected ground truth): logwarden's Drain against Drain3 in one run.

Protocol (shared/docs/benchmarks.md §1): feed the `Content` column, one message per line, to each parser;
every message gets its cluster's *final* template. GA: a message is correct when its predicted group holds
exactly the messages of its true group. PA: a message is correct when its predicted template equals the
true one after collapsing whitespace runs and runs of `<*>` separated only by whitespace.
One configuration for every set: logwarden's defaults (the daemon's), Drain3 0.9.11 defaults plus the 7
masks of its example `drain3.ini`.

    .venv/bin/python bench/parsing_accuracy.py [--data ../shared/data/loghub_2k] [--sets HDFS,BGL] [--errors N]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.drain import Drain, DrainConfig

SETS = ("Apache", "BGL", "HDFS", "HPC", "Hadoop", "Linux", "OpenSSH", "Proxifier", "Spark", "Zookeeper")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub_2k"

DRAIN3_EXAMPLE_MASKS = (
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
)

_WS = re.compile(r"\s+")
_RUN = re.compile(r"<\*>(?:\s*<\*>)+")
_DRAIN3_MASK = re.compile(r"<:[A-Z]+:>")


def normalise(template: str) -> str:
    return _RUN.sub("<*>", _WS.sub(" ", template.strip()))


def load_set(data: Path, name: str) -> tuple[list[str], list[str], list[str]]:
    path = data / name / f"{name}_2k.log_structured.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("EventId")]
    # Groups are keyed by the template text, as loghub-2.0 does: the corrected files give a few identical
    # templates two EventIds, which would otherwise count a perfect grouping as wrong.
    return [r["Content"] for r in rows], [r["EventTemplate"] for r in rows], [r["EventTemplate"] for r in rows]


def grouping_accuracy(pred: list[object], truth: list[str]) -> float:
    truth_size = Counter(truth)
    members: dict[object, list[int]] = defaultdict(list)
    for i, p in enumerate(pred):
        members[p].append(i)
    correct = 0
    for idx in members.values():
        ids = {truth[i] for i in idx}
        if len(ids) == 1 and truth_size[next(iter(ids))] == len(idx):
            correct += len(idx)
    return correct / len(truth)


def parsing_accuracy(templates: list[str], truth: list[str]) -> float:
    ok = sum(normalise(p) == normalise(t) for p, t in zip(templates, truth, strict=True))
    return ok / len(truth)


def run_logwarden(lines: list[str]) -> tuple[list[object], list[str], float]:
    drain = Drain(DrainConfig())
    start = time.perf_counter()
    members = [drain.add(line).member_id for line in lines]
    elapsed = time.perf_counter() - start
    groups: list[object] = [drain.resolve(m) for m in members]
    templates = [drain.template(g) for g in groups]  # type: ignore[arg-type]
    return groups, templates, len(lines) / elapsed


def run_drain3(lines: list[str]) -> tuple[list[object], list[str], float]:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    cfg = TemplateMinerConfig()
    cfg.masking_instructions = [MaskingInstruction(p, m) for p, m in DRAIN3_EXAMPLE_MASKS]
    cfg.mask_prefix, cfg.mask_suffix = "<:", ":>"
    cfg.profiling_enabled = False
    miner = TemplateMiner(config=cfg)
    start = time.perf_counter()
    ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
    elapsed = time.perf_counter() - start
    final = {c.cluster_id: _DRAIN3_MASK.sub("<*>", c.get_template()) for c in miner.drain.clusters}
    return list(ids), [final[i] for i in ids], len(lines) / elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--errors", type=int, default=0, help="Show this many wrong templates per set.")
    ap.add_argument("--no-drain3", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    print(f"{'set':<10} {'GA lw':>6} {'GA d3':>6} {'PA lw':>6} {'PA d3':>6} {'lw l/s':>9} {'d3 l/s':>9} {'tpl lw':>6} {'tpl gt':>6}")
    for name in args.sets.split(","):
        lines, ids, truth = load_set(args.data, name)
        groups, templates, lw_speed = run_logwarden(lines)
        ga, pa = grouping_accuracy(groups, ids), parsing_accuracy(templates, truth)
        if args.no_drain3:
            d3_ga = d3_pa = d3_speed = float("nan")
        else:
            d3_groups, d3_templates, d3_speed = run_drain3(lines)
            d3_ga, d3_pa = grouping_accuracy(d3_groups, ids), parsing_accuracy(d3_templates, truth)
        rows.append((ga, d3_ga, pa, d3_pa))
        print(f"{name:<10} {ga:6.3f} {d3_ga:6.3f} {pa:6.3f} {d3_pa:6.3f} {lw_speed:9.0f} {d3_speed:9.0f}"
              f" {len(set(groups)):6d} {len(set(ids)):6d}")
        if args.errors:
            seen: set[tuple[str, str]] = set()
            for p, t, line in zip(templates, truth, lines, strict=True):
                if normalise(p) != normalise(t) and (p, t) not in seen and len(seen) < args.errors:
                    seen.add((p, t))
                    print(f"    got  {p}\n    want {t}\n    line {line}")
    n = len(rows)
    avg = [sum(r[k] for r in rows) / n for k in range(4)]
    print(f"{'average':<10} {avg[0]:6.3f} {avg[1]:6.3f} {avg[2]:6.3f} {avg[3]:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
