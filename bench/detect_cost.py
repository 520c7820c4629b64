"""Per-record CPU cost of everything after the parse stage (issue 8: ≤ 12 µs per line all-in).

A generated hour of service log is parsed ONCE (header parser + Drain, the other helper's stage); then each
component of `config/logwarden.yaml`'s pipeline runs on the parsed records, in batches of 512 with `tick`
after each batch (the worker's order in a replay), timed with `time.process_time()`:

- `novelty`, `volume`, `params`: the detectors as configured;
- `iforest learn`: `model: auto` while learning — sliding windows (60s / 10s) and the compact windows kept
  for the training child (the child's training is not per record and is not timed);
- `iforest serve`: the same detector serving a bundle trained once by the real child on those windows:
  windowing, featurize and onnxruntime;
- `windower`, `featurize`: the two halves of the iforest path on their own;
- `file records`: a `stream: records` file output (JSON Lines, fsync per batch; CPU only);
- `pipeline post-parse`: the whole `Pipeline._process` + timers path (tag routing, every detector above,
  the alert router, an alerts file output and a records file output) with the parse stage replaced by a
  pass-through, so the fixed per-batch overhead shows as the difference to the sum of its parts.

The anchor, measured in the same run on the same input: the parse stage itself (µs/record), the budget
the rest is compared with.

    .venv/bin/python bench/detect_cost.py [--log /tmp/big.log] [--minutes 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.clock import ManualClock  # noqa: E402
from agent.plugin import PluginContext  # noqa: E402
from agent.schema import Duration  # noqa: E402
from agent.types import Record  # noqa: E402

BATCH = 512
FORMAT = "<Date> <Level> <Component> <Request> <Content>"
START = r"^\d{4}-\d{2}-\d{2}T"


def generate(path: Path, minutes: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "agent.cli", "generate", "--duration", f"{minutes}m", "--seed", "2", "--rate", "60",
         "--incidents", "none", "--out", str(path)],
        check=True, cwd=ROOT,
    )


def parse(path: Path) -> tuple[list[Record], float]:
    from agent.parsing import ParseStage, default_section
    from agent.registry import Registry
    from agent.replay import read_records

    stage = ParseStage.from_section(default_section(FORMAT), Registry.default(), None)
    records = list(read_records(path, "app", re.compile(START)))
    t0 = time.process_time()
    for i in range(0, len(records), BATCH):
        stage.process(records[i:i + BATCH])
    return records, time.process_time() - t0


def batches(records: list[Record]) -> list[list[Record]]:
    return [records[i:i + BATCH] for i in range(0, len(records), BATCH)]


def ctx(tmp: Path, name: str) -> PluginContext:
    return PluginContext(instance=name, state_dir=tmp, host="bench", clock=ManualClock())


def run_detector(det: Any, parts: list[list[Record]]) -> float:
    """observe + tick(latest event time) per batch, then close: the worker's calls in a replay (the tick
    times are computed before the clock starts: they are the bench's work, not the detector's)."""
    nows: list[float] = []
    for batch in parts:
        nows.append(max(nows[-1] if nows else 0.0, max(r.event_time for r in batch)))
    t0 = time.process_time()
    for batch, now in zip(parts, nows, strict=True):
        det.observe(batch)
        det.tick(now)
    det.close()
    return time.process_time() - t0


def best(fn: Callable[[], float], rounds: int) -> float:
    return min(fn() for _ in range(rounds))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", type=Path, default=Path("/tmp/big.log"), help="Generated log (made if missing).")
    ap.add_argument("--minutes", type=int, default=60, help="Duration generated when the log is missing.")
    ap.add_argument("--rounds", type=int, default=3, help="Runs per component; the fastest counts.")
    ap.add_argument("--no-serve", action="store_true", help="Skip training a bundle for `iforest serve`.")
    ap.add_argument("--only", default="", help="Comma-separated components to run (e.g. params,file); all by default.")
    args = ap.parse_args(argv)

    if not args.log.exists():
        generate(args.log, args.minutes)
    records, parse_s = parse(args.log)
    parts = batches(records)
    n = len(records)
    print(f"{n:,} records ({args.log}), batches of {BATCH}, best of {args.rounds}", file=sys.stderr)

    from agent.features import featurize, fit_feature_spec
    from agent.windows import Windower, WindowSpec
    from plugins.detectors.iforest import IForestConfig, IForestDetector
    from plugins.detectors.novelty import NoveltyConfig, NoveltyDetector
    from plugins.detectors.params import ParamsConfig, ParamsDetector
    from plugins.detectors.volume import VolumeConfig, VolumeDetector
    from plugins.outputs.file import FileConfig, FileOutput

    spec = WindowSpec(type="sliding", size=Duration(60.0), step=Duration(10.0))
    rows: list[tuple[str, float]] = []
    only = {o.strip() for o in args.only.split(",") if o.strip()}

    def want(name: str) -> bool:
        return not only or any(o in name for o in only)

    with tempfile.TemporaryDirectory(prefix="detect-cost-") as tmp_s:
        tmp = Path(tmp_s)
        counter = iter(range(1_000_000))

        def fresh(cls: Any, config: Any, name: str) -> Any:
            return cls(config, ctx(tmp / f"r{next(counter)}", name))

        if want("novelty"):
            rows.append(("novelty", best(lambda: run_detector(
                fresh(NoveltyDetector, NoveltyConfig(), "detector.novelty.0"), parts), args.rounds)))
        if want("volume"):
            rows.append(("volume", best(lambda: run_detector(
                fresh(VolumeDetector, VolumeConfig(bucket=Duration(60.0)), "detector.volume.0"), parts), args.rounds)))
        if want("params"):
            rows.append(("params", best(lambda: run_detector(
                fresh(ParamsDetector, ParamsConfig(), "detector.params.0"), parts), args.rounds)))

        learn_cfg = IForestConfig(model="auto", window=spec, learn_for=Duration(10 * 86400.0))
        learner: list[Any] = []

        def learn() -> float:
            det = fresh(IForestDetector, learn_cfg, "detector.iforest.0")
            learner[:] = [det]
            return run_detector(det, parts)

        if want("iforest"):
            rows.append(("iforest learn", best(learn, args.rounds)))

        closed: list[Any] = []

        def windower() -> float:
            w = Windower(spec, "app")
            out: list[Any] = []
            t0 = time.process_time()
            for batch in parts:
                out.extend(w.add_many(batch))
                out.extend(w.tick(batch[-1].event_time))
            out.extend(w.flush())
            cpu = time.process_time() - t0
            closed[:] = out
            return cpu

        if want("windower") or want("featurize"):
            rows.append(("  windower", best(windower, args.rounds)))
        if want("featurize"):
            feat_spec = fit_feature_spec(closed, groups=tuple(learn_cfg.features))

            def feat() -> float:
                t0 = time.process_time()
                for i in range(0, len(closed), 16):  # windows close a few at a time per tick
                    featurize(feat_spec, closed[i:i + 16])
                return time.process_time() - t0

            rows.append(("  featurize", best(feat, args.rounds)))

        if not args.no_serve and want("serve"):
            if not learner:
                learn()
            bundle = train_bundle(tmp, learner[0], spec)
            serve_cfg = IForestConfig(model=str(bundle), batch_wait=Duration(0.0))
            rows.append(("iforest serve", best(lambda: run_detector(
                fresh(IForestDetector, serve_cfg, "detector.iforest.1"), parts), args.rounds)))

        def file_records() -> float:
            out = FileOutput(FileConfig(path=str(tmp / f"records{next(counter)}.jsonl")), ctx(tmp, "output.file.0"))
            out.start()
            t0 = time.process_time()
            for batch in parts:
                out.write_records(batch)
            cpu = time.process_time() - t0
            out.stop()
            return cpu

        if want("file"):
            rows.append(("file records", best(file_records, args.rounds)))
        if want("pipeline"):
            rows.append(("pipeline post-parse", best(lambda: run_pipeline(tmp / f"p{next(counter)}", parts),
                                                     args.rounds)))

    print(f"{'component':<22}{'µs/record':>11}{'x parse':>9}")
    print(f"{'parse (anchor)':<22}{parse_s / n * 1e6:>11.2f}{1.0:>9.2f}")
    for name, cpu in rows:
        us = cpu / n * 1e6
        print(f"{name:<22}{us:>11.2f}{cpu / parse_s:>9.2f}")
    return 0


def train_bundle(tmp: Path, learner: Any, spec: Any) -> Path:
    """The real self-baselining child, once, on the windows the learning run collected."""
    from agent.training.iforest import ForestOptions, write_windows_file

    windows_file = tmp / "train-windows.json"
    options = ForestOptions(groups=("counts", "stats", "temporal", "levels"))
    from agent.recent_windows import read_recent

    write_windows_file(windows_file, spec, read_recent(learner._recent.files(), learner._recent.limit), options)
    out = tmp / "bundle"
    subprocess.run([sys.executable, "-m", "agent.training.iforest", "--windows", str(windows_file), "--out", str(out)],
                   check=True, cwd=ROOT)
    return out


class _Parsed:
    """Stands in for the parse stage: the records arrive parsed already."""

    def process(self, records: list[Record]) -> list[Record]:
        return records

    def save(self, path: Path) -> None:
        pass

    def stats(self) -> dict[str, float]:
        return {}


class _NoInput:
    def start(self, emit: Any) -> None:
        pass

    def commit(self, records: Sequence[Record]) -> None:
        pass

    def stop(self) -> None:
        pass


def run_pipeline(state: Path, parts: list[list[Record]]) -> float:
    """The worker's `_process` + `_timers` for every batch, on the configured detectors, without threads."""
    from agent.config import build_config
    from agent.pipeline import Pipeline, _Batch
    from agent.registry import Registry

    doc = {
        "service": {"state_dir": str(state), "log_level": "warning"},
        "pipeline": {
            "inputs": [{"name": "tail", "tag": "app", "path": ["/nonexistent/*.log"], "parser": {"format": FORMAT}}],
            "detectors": [
                {"name": "novelty", "match": "*"},
                {"name": "volume", "match": "*", "bucket": "1m"},
                {"name": "params", "match": "app"},
                {"name": "iforest", "match": "app", "model": "auto", "learn_for": "10d",
                 "window": {"type": "sliding", "size": "60s", "step": "10s"}},
            ],
            "outputs": [
                {"name": "file", "path": str(state / "alerts.jsonl")},
                {"name": "file", "path": str(state / "records.jsonl"), "stream": "records"},
            ],
        },
    }
    registry = Registry.default()
    config = build_config(doc, registry, file="bench", preflight=False)
    pipeline = Pipeline(config, registry, inputs=[(config.inputs[0], cast(Any, _NoInput()))], event_time=True)
    pipeline.parsers[0] = cast(Any, _Parsed())
    t0 = time.process_time()
    for batch in parts:
        pipeline._process(_Batch(0, batch))
        pipeline._timers()
    pipeline._close_detectors()
    cpu = time.process_time() - t0
    pipeline.router.close(1.0)
    for _, out in pipeline.outputs:
        out.stop()
    return cpu


if __name__ == "__main__":
    sys.exit(main())
