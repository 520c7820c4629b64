"""Sequence detectors on the generator's incidents: recall per incident type and false alerts per hour.

    .venv/bin/python bench/detect_deep.py [--seeds 3] [--rate 50] [--train-minutes 30] [--normal-hours 2] [--restarts R]

The deep models are trained offline on sessions (request ids), so this benchmark works on sessions, with
the generator's own event keys (its ground-truth templates: the template miner is benchmarked elsewhere
and cannot blur the comparison):
- train: every session of a normal-only log (seed 100, `--train-minutes`); thresholds come from it only
  (each trainer's held-out slice / training quantile);
- incidents: `--seeds` logs with every incident type (seeds 1..n, 30 minutes, 50% warm-up). A session an
  incident produced or changed counts for that type; the *session* recall per type is the share of them
  flagged, the *incident* recall the share of incidents with at least one flagged session;
- false alerts: every session of a separate normal-only log (seed 200, `--normal-hours`) that is flagged,
  per hour and per day of traffic. Each flagged session is its own alert (its condition is its key).

Rows: the anchor "count vector never seen in training" (a set lookup, measured in the same run),
logwarden's iforest bundle, and the DeepLog and Transformer next-event bundles (each choosing g and its
seen-transition allowlist from a held-out slice of the training sessions, as `logwarden train` does). latency_spike and
frequency_shift leave every session's sequence normal: no session-level model can see them (volume and
params detectors do), so they are shown for honesty, not expected.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.bundle import load_bundle, write_bundle
from agent.generator import INCIDENT_TYPES, GeneratorConfig, generate
from agent.scoring import open_window_model
from agent.sessions import session_windows
from agent.training import TrainingData, resolve_trainer
from agent.training.seen_selection import describe_choices
from agent.types import Window
from agent.windows import WindowSpec

SPEC = WindowSpec(type="session", key_field="session")
THREADS = 1
"""torch threads of the deep trainers (`--threads`; 1 by default: the machine is shared)."""
RESTARTS: int | None = None
"""The deep trainers' `--restarts` (None = the product default)."""
NOTES: list[str] = []
"""How each deep bundle chose its allowlist on held-out normal sessions, printed under the table."""


@dataclass
class Log:
    sessions: list[list[str]]
    ids: list[str]
    types: dict[str, str]
    """Request id → incident type of the incident that touched it."""
    incidents: list[tuple[str, set[str]]]
    hours: float


def generated(config: GeneratorConfig) -> Log:
    keys: dict[str, list[str]] = {}

    def observe(rid: str, ev: object) -> None:
        keys.setdefault(rid, []).append(ev.key)  # type: ignore[attr-defined]

    labels = generate(config, io.StringIO(), observe=observe)
    types = {rid: label.type for label in labels for rid in label.sessions}
    ids = list(keys)
    return Log([keys[i] for i in ids], ids, types, [(lb.type, set(lb.sessions)) for lb in labels],
               config.duration_s / 3600)


Flagger = Callable[[list[Window]], np.ndarray]


def seen_vector(train: list[Window], workdir: Path, seed: int) -> Flagger:
    from detect_hdfs import count_vector  # the same anchor as the HDFS bench

    seen = {count_vector(w) for w in train}
    return lambda ws: np.asarray([count_vector(w) not in seen for w in ws])


def bundle_flagger(model: str) -> Callable[[list[Window], Path, int], Flagger]:
    def make(train: list[Window], workdir: Path, seed: int) -> Flagger:
        if model == "iforest":
            from agent.training.iforest import ForestOptions, build_bundle

            model_bytes, manifest = build_bundle(train, SPEC, ForestOptions(seed=seed), command="bench")
            out = write_bundle(workdir / model, model_bytes, manifest)
        else:
            data = TrainingData(windows=train, window=SPEC, command="bench", source="bench/detect_deep.py")
            ns = argparse.Namespace(seed=seed, threads=THREADS, restarts=RESTARTS)
            out = resolve_trainer(model)(data, workdir / model, ns)
        bundle = load_bundle(out)
        served = open_window_model(bundle)
        if model != "iforest":
            NOTES.extend(describe_choices(model, bundle.model))

        def flag(ws: list[Window]) -> np.ndarray:
            scores = np.concatenate([served.score_windows(ws[i : i + 1024]).score for i in range(0, len(ws), 1024)])
            return np.asarray(scores > served.threshold)

        return flag

    return make


ROWS: list[tuple[str, Callable[[list[Window], Path, int], Flagger]]] = [
    ("anchor: count vector never seen", seen_vector),
    ("iforest (forest + novelty)", bundle_flagger("iforest")),
    ("deeplog (next-event, top-g)", bundle_flagger("deeplog")),
    ("transformer (next-event, top-g)", bundle_flagger("transformer")),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--train-minutes", type=float, default=30.0)
    ap.add_argument("--incident-minutes", type=float, default=30.0)
    ap.add_argument("--normal-hours", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0, help="Training seed.")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the deep trainers (default 1).")
    ap.add_argument("--restarts", type=int, default=None, help="The deep trainers' --restarts (default: the product default, 3).")
    args = ap.parse_args()
    global THREADS, RESTARTS
    THREADS = args.threads
    RESTARTS = args.restarts

    t0 = time.perf_counter()
    train_log = generated(GeneratorConfig(seed=100, duration_s=args.train_minutes * 60, rate=args.rate, incidents=[]))
    incident_logs = [generated(GeneratorConfig(seed=s, duration_s=args.incident_minutes * 60, rate=args.rate,
                                               warmup_fraction=0.5)) for s in range(1, args.seeds + 1)]
    normal_log = generated(GeneratorConfig(seed=200, duration_s=args.normal_hours * 3600, rate=args.rate, incidents=[]))
    train, _ = session_windows(train_log.sessions, 1000)
    normal, _ = session_windows(normal_log.sessions, 1000)
    print(f"generated in {time.perf_counter() - t0:.1f}s: train {len(train)} sessions ({args.train_minutes:g} min), "
          f"{args.seeds} incident logs, normal {len(normal)} sessions ({args.normal_hours:g} h), {args.rate:g} lines/s\n")

    header = ["detector", *(f"{t} (sessions)" for t in INCIDENT_TYPES), "incidents found", "FA/h normal",
              "FA/day", "train+score s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in ROWS:
            t = time.perf_counter()
            flag = make(train, Path(tmp), args.seed)
            hit = dict.fromkeys(INCIDENT_TYPES, 0)
            total = dict.fromkeys(INCIDENT_TYPES, 0)
            found = n_incidents = 0
            for log in incident_logs:
                windows, _ = session_windows(log.sessions, 1000)
                flags = flag(windows)
                flagged = {rid for rid, f in zip(log.ids, flags, strict=True) if f}
                for rid in log.ids:
                    kind = log.types.get(rid)
                    if kind is not None:
                        total[kind] += 1
                        hit[kind] += rid in flagged
                for _kind, rids in log.incidents:
                    n_incidents += 1
                    found += bool(rids & flagged)
            false = int(flag(normal).sum())
            fa_h = false / normal_log.hours
            cells = [f"{hit[k]}/{total[k]} ({hit[k] / total[k]:.2f})" if total[k] else "-" for k in INCIDENT_TYPES]
            print(f"| {name} | " + " | ".join(cells) + f" | {found}/{n_incidents} | {fa_h:.2f} | {fa_h * 24:.1f} "
                  f"| {time.perf_counter() - t:.1f} |")
    for note in NOTES:
        print(f"\n{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
