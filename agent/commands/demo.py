"""`logwarden demo`: watch logwarden catch an incident, with nothing to set up.

It generates a few minutes of a shop's service log in a temporary directory, starts the real pipeline
(the `tail` input, Drain, the shipped demo model and the self-baselining detectors) on it with the
shipped `config/demo.yaml`, lets it learn the normal traffic, then appends an incident and prints each
alert as it fires, with its evidence. Records are timed by their own timestamps, so the demo needs no
wall-clock waiting and ends within a minute.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.errors import LogwardenError
from agent.types import Alert

INCIDENTS = ("new_template", "error_burst", "latency_spike")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=7, help="Seed of the generated log.")
    p.add_argument("--incident", choices=INCIDENTS, action="append",
                   help="Incident(s) to inject (default: all of them, one after another).")
    p.add_argument("--keep", type=Path, metavar="DIR", help="Work in DIR and keep the log, state and alerts.")


def run(args: argparse.Namespace) -> int:
    from agent.logsetup import configure

    configure("warning")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _demo(args.keep, args)
    with tempfile.TemporaryDirectory(prefix="logwarden-demo-") as tmp:
        return _demo(Path(tmp), args)


def _say(text: str) -> None:
    print(text, flush=True)


def _demo(work: Path, args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.generator import GeneratorConfig, generate
    from agent.pipeline import Pipeline
    from agent.registry import Registry
    from agent.resources import shipped

    started = time.monotonic()
    model = shipped("models/demo")
    config_path = shipped("config/demo.yaml")
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / "shop.log"
    t0 = time.time() - 600
    baseline = GeneratorConfig(seed=args.seed, duration_s=300.0, start=t0, incidents=[])
    with log.open("w") as fh:
        generate(baseline, fh)
    n_base = _count_lines(log)
    _say(f"logwarden demo — working in {work}")
    _say(f"1. generated {n_base:,} lines of normal traffic from a shop's services (5 min of log time): {log.name}")

    env = {**os.environ, "LOGWARDEN_DEMO_DIR": str(work), "LOGWARDEN_DEMO_MODEL": str(model)}
    registry = Registry.default()
    config = load_config(config_path, registry, env)
    fired: list[Alert] = []

    def on_alerts(alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            fired.append(alert)
            _say(_format_alert(alert))

    pipeline = Pipeline(config, registry, event_time=True, on_alerts=on_alerts)
    labels: list[Any] = []
    pipeline.start()
    detectors = ", ".join(f"{s.name}" for s in config.detectors)
    _say(f"2. started the pipeline (tail → Drain → {detectors} → alerts) with the shipped model {model.name}/")
    try:
        _wait_records(pipeline, _records_in(log, config), timeout=45.0)
        _say(f"   learned {pipeline.stats.records:,} records, "
             f"{sum(1 for p in pipeline.parsers for _ in p.drain.clusters())} templates; no alert so far: "
             f"{'none' if not fired else len(fired)}")
        kinds = args.incident or list(INCIDENTS)
        incident = GeneratorConfig(seed=args.seed + 1, duration_s=150.0, start=t0 + 300.0,
                                   incidents=kinds, warmup_fraction=0.1, incident_s=30.0)
        _say(f"3. appending 2.5 more minutes of traffic with injected incidents ({', '.join(kinds)}); "
             "alerts as they fire:\n")
        with log.open("a") as fh:
            labels = generate(incident, fh)
        _wait_records(pipeline, _records_in(log, config), timeout=45.0)
        pipeline.flush(timeout=30.0)
    finally:
        pipeline.stop(timeout=10.0)
    elapsed = time.monotonic() - started
    _say("\n   injected: " + ", ".join(
        f"{lb.type} from {time.strftime('%H:%M:%S', time.gmtime(lb.start))} ({len(lb.lines)} lines)" for lb in labels))
    _say(f"4. {len(fired)} alert(s) in {elapsed:.1f}s; written as JSON lines to {work / 'alerts.jsonl'}")
    if not fired:
        raise LogwardenError("the demo injected incidents but no alert fired")
    return 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def _records_in(path: Path, config: Any) -> int:
    """How many records the tail input will make of the file (continuation lines join their record)."""
    import re

    from agent.replay import read_records

    multiline = config.inputs[0].config.multiline
    start = re.compile(multiline.start) if multiline is not None else None
    return sum(1 for _ in read_records(path, "demo", start))


def _wait_records(pipeline: Any, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pipeline.stats.records < n:
        if time.monotonic() > deadline:
            raise LogwardenError(f"the pipeline processed {pipeline.stats.records} of {n} records in {timeout:.0f}s")
        time.sleep(0.05)


def _format_alert(alert: Alert) -> str:
    when = time.strftime("%H:%M:%S", time.gmtime(alert.first_seen))
    lines = [f"  [{alert.severity.value.upper()}] {when} {alert.detector}: {alert.title}", f"      {alert.summary}"]
    for t in alert.evidence.templates[:3]:
        lines.append(f"      template #{t.template_id} observed {t.observed:.3g}, normally {t.expected:.3g}: {t.template[:100]}")
    for key, value in list(alert.evidence.params.items())[:3]:
        lines.append(f"      {key}: {value}")
    for sample in alert.evidence.samples[:2]:
        lines.append("      > " + textwrap.shorten(sample.replace("\n", " ⏎ "), 150))
    return "\n".join(lines)
