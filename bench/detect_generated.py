"""Detectors on the generator's incidents: recall per incident type and false alerts per hour.

    .venv/bin/python bench/detect_generated.py [--seeds 3] [--rate 50] [--normal-hours 3]

For each seed and each learning period a row asks for (10 minutes; the forest's default hour), a log with
every incident type — the learning period, 5 minutes, then 15 minutes of incidents — and, once, a log of
normal traffic only are generated, grouped into records (stack traces joined, as the tail input's multiline
does) and parsed ONCE by the real parse stage with `GENERATOR_FORMAT`; the detector rows then see the same
records, fed in batches with a `tick` after each batch (event time, as `logwarden replay` does: the
self-baselining forest waits for its training child). µs/record is this process's CPU, not the child's.

An incident counts as detected when an anomalous score's window overlaps [start, end + 1 bucket]. A false
alert is an anomalous score outside every incident window (+ slack); "alerts/h" folds repeats of one
`condition` within 10 minutes, as the alert router's dedup would. The anchor row is the classic static
rule — ERROR lines per minute above mean + 4 sd of the learning period — measured in the same run.

Add a detector by appending a `Row` to `ROWS`.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.generator import GENERATOR_FORMAT, INCIDENT_TYPES, GeneratorConfig, IncidentLabel, generate
from agent.parsing import ParseStage, default_section
from agent.plugin import PluginContext
from agent.registry import Registry
from agent.schema import Duration
from agent.types import Record, Score
from agent.windowspec import WindowSpec

LEARN_S = 600.0
BUCKET_S = 60.0
DEDUP_S = 600.0


class ErrorRateRule:
    """The anchor: what a hand-written alert rule does — ERROR lines per bucket above mean + 4 sd."""

    name: ClassVar[str] = "error-rate rule"

    def __init__(self) -> None:
        self.bucket: int | None = None
        self.count = 0
        self.history: list[int] = []
        self.first: float | None = None

    def observe(self, records: Sequence[Record]) -> list[Score]:
        out: list[Score] = []
        for r in records:
            t = r.event_time
            self.first = t if self.first is None else self.first
            out += self._advance(int(t // BUCKET_S))
            if (r.level or "").upper() in ("ERROR", "FATAL", "CRITICAL"):
                self.count += 1
        return out

    def tick(self, now: float) -> list[Score]:
        return self._advance(int((now - 5) // BUCKET_S)) if self.bucket is not None else []

    def close(self) -> list[Score]:
        return []

    def _advance(self, b: int) -> list[Score]:
        out: list[Score] = []
        if self.bucket is None:
            self.bucket = b
        while self.bucket < b:
            start = self.bucket * BUCKET_S
            n = len(self.history)
            if self.first is not None and start >= self.first + LEARN_S and n >= 5:
                mean = sum(self.history) / n
                sd = math.sqrt(sum((x - mean) ** 2 for x in self.history) / n)
                limit = mean + 4 * max(sd, 1.0)
                if self.count > limit:
                    out.append(Score(self.name, "app", "errors", start, start + BUCKET_S, float(self.count), limit,
                                     True, title="error rate", condition="errors"))
            else:
                self.history.append(self.count)
            self.count = 0
            self.bucket += 1
        return out


@dataclass(frozen=True)
class Row:
    name: str
    make: Callable[[Path], Any]
    """Builds a fresh detector whose state lives under the given directory."""
    learn_s: float = LEARN_S
    """Event time the detector learns before it scores; its incident logs begin their incidents 5 min later."""


def _plugin(name: str, **overrides: Any) -> Callable[[Path], Any]:
    def make(state: Path) -> Any:
        from agent.plugin import Kind

        cls = Registry.default().get(Kind.DETECTOR, name)
        config = cls.config_class(**overrides)
        # On event time, as replay runs: the self-baselining forest then waits for its training child.
        return cls(config, PluginContext(instance=f"detector.{name}.0", state_dir=state, host="bench", event_time=True))

    return make


ROWS: list[Row] = [
    Row("error-rate rule (anchor)", lambda _state: ErrorRateRule()),
    Row("volume", _plugin("volume", learn_for=Duration(LEARN_S), bucket=Duration(BUCKET_S))),
    Row("params", _plugin("params", learn_for=Duration(LEARN_S), bucket=Duration(BUCKET_S))),
    Row("novelty", _plugin("novelty", learn_for=Duration(LEARN_S))),
    # The forest with its default hour of learning: ten minutes of windows do not show a periodic job's peaks.
    Row("iforest (auto, 60 s windows)", _plugin("iforest", learn_for=Duration(3600.0)), learn_s=3600.0),
    Row("iforest (auto, request sessions)", _plugin(
        "iforest", learn_for=Duration(3600.0), window=WindowSpec(type="session", key_field="Request", idle=Duration(30.0))),
        learn_s=3600.0),
]


def parsed_records(config: GeneratorConfig) -> tuple[list[Record], list[IncidentLabel]]:
    out = io.StringIO()
    labels = generate(config, out)
    records: list[Record] = []
    for line in out.getvalue().splitlines():
        if line.startswith("\t") and records:
            records[-1].raw += "\n" + line
        else:
            records.append(Record(tag="app", source="/var/log/shop/app.log", raw=line))
    ParseStage.from_section(default_section(GENERATOR_FORMAT), Registry.default()).process(records)
    return records, labels


def run_detector(row: Row, records: list[Record], batch: int = 500) -> tuple[list[Score], float]:
    with tempfile.TemporaryDirectory() as state:
        det = row.make(Path(state))
        scores: list[Score] = []
        t0 = time.process_time()  # this process: a training child is not the detector's per-record cost
        for i in range(0, len(records), batch):
            chunk = records[i:i + batch]
            scores += det.observe(chunk)
            scores += det.tick(chunk[-1].event_time)
        scores += det.close()
        elapsed = time.process_time() - t0
    return [s for s in scores if s.is_anomaly], elapsed


def overlaps(s: Score, label: IncidentLabel, slack: float = BUCKET_S) -> bool:
    return s.end > label.start and s.start < label.end + slack


def alerts(scores: list[Score]) -> int:
    """Anomalous scores after folding repeats of one condition within DEDUP_S (the router's dedup)."""
    last: dict[str, float] = {}
    n = 0
    for s in sorted(scores, key=lambda x: x.start):
        c = s.condition or s.title
        if c not in last or s.start - last[c] > DEDUP_S:
            n += 1
        last[c] = s.start
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3, help="Incident logs (one per seed) to average recall over.")
    ap.add_argument("--rate", type=float, default=50.0, help="Lines per second of log time.")
    ap.add_argument("--incident-minutes", type=float, default=30.0)
    ap.add_argument("--normal-hours", type=float, default=3.0)
    args = ap.parse_args(argv)

    t = time.perf_counter()
    incident_s = args.incident_minutes * 60 / 2  # the part after the warm-up, where incidents are injected

    def incident_logs_for(learn_s: float) -> list[tuple[list[Record], list[IncidentLabel]]]:
        duration = learn_s + 300 + incident_s  # learning, 5 min of scoring normal traffic, then the incidents
        return [parsed_records(GeneratorConfig(seed=seed, duration_s=duration, rate=args.rate,
                                               warmup_fraction=(learn_s + 300) / duration))
                for seed in range(1, args.seeds + 1)]

    incident_logs = {learn_s: incident_logs_for(learn_s) for learn_s in sorted({row.learn_s for row in ROWS})}
    normal, _ = parsed_records(GeneratorConfig(seed=100, duration_s=args.normal_hours * 3600, rate=args.rate,
                                               incidents=[]))
    n_lines = sum(len(r) for logs in incident_logs.values() for r, _ in logs) + len(normal)
    print(f"generated and parsed {n_lines} records in {time.perf_counter() - t:.1f}s ({args.seeds} incident logs "
          f"per learning period: the period, 5 min, then {incident_s / 60:.0f} min with incidents; "
          f"{args.normal_hours:g} h normal; {args.rate:g} lines/s)\n")

    header = ["detector", "learns", *INCIDENT_TYPES, "recall", "FA/h normal", "alerts/h normal", "FA/h incident log",
              "µs/record"]
    rows: list[list[str]] = []
    summary: dict[str, tuple[float, float]] = {}
    for row in ROWS:
        hits = {k: 0 for k in INCIDENT_TYPES}
        totals = {k: 0 for k in INCIDENT_TYPES}
        false_in_incident_logs = 0
        busy = 0.0
        logs = incident_logs[row.learn_s]
        for records, labels in logs:
            scores, elapsed = run_detector(row, records)
            busy += elapsed
            for label in labels:
                totals[label.type] += 1
                hits[label.type] += any(overlaps(s, label) for s in scores)
            false_in_incident_logs += sum(1 for s in scores if not any(overlaps(s, lb) for lb in labels))
        normal_scores, elapsed = run_detector(row, normal)
        busy += elapsed
        watched_h = (args.normal_hours * 3600 - row.learn_s) / 3600
        watched_incident_h = args.seeds * (300 + incident_s) / 3600
        recall = sum(hits.values()) / max(1, sum(totals.values()))
        fa_h = len(normal_scores) / watched_h
        summary[row.name] = (recall, fa_h)
        row_lines = sum(len(r) for r, _ in logs) + len(normal)
        rows.append([row.name, f"{row.learn_s / 60:.0f} min", *(f"{hits[k]}/{totals[k]}" for k in INCIDENT_TYPES),
                     f"{recall:.2f}", f"{fa_h:.2f}", f"{alerts(normal_scores) / watched_h:.2f}",
                     f"{false_in_incident_logs / watched_incident_h:.2f}", f"{busy / row_lines * 1e6:.2f}"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    anchor_recall, anchor_fa = summary[ROWS[0].name]
    print(f"\nratios vs the anchor ({ROWS[0].name}: recall {anchor_recall:.2f}, {anchor_fa:.2f} FA/h):")
    for name, (recall, fa) in list(summary.items())[1:]:
        r = f"{recall / anchor_recall:.2f}x" if anchor_recall else "n/a (anchor 0)"
        print(f"  {name}: recall {r}, false alerts/h {fa:.2f} vs {anchor_fa:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
