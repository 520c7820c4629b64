"""`logwarden generate`: write a synthetic microservice log and, optionally, its incident labels (JSONL).

Without `--follow` the log is written as fast as possible with virtual timestamps from `--start`, so the
same `--seed` gives byte-identical files. With `--follow` the same schedule is anchored at the current time
and each line is written (and flushed) when its time comes — a live log for the daemon to tail.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from agent.errors import LogwardenError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="The log file to write ('-' for stdout).")
    p.add_argument("--duration", default="10m", help="Span of log time to generate, e.g. 90s, 10m, 2h (default 10m).")
    p.add_argument("--seed", type=int, default=1, help="Random seed; the same seed gives the same log (default 1).")
    p.add_argument("--incidents", default="all",
                   help="Comma list of error_burst,new_template,broken_sequence,frequency_shift,latency_spike; "
                        "'all' (default) or 'none'.")
    p.add_argument("--labels", help="Write one JSON object per incident here (type, start, end, lines, sessions).")
    p.add_argument("--rate", type=float, default=50.0, help="Lines per second of log time (default 50).")
    p.add_argument("--follow", action="store_true",
                   help="Write in real time with current timestamps instead of as fast as possible.")
    p.add_argument("--start", help="First timestamp (ISO 8601 like 2026-11-28T12:00:00Z, or epoch seconds).")
    p.add_argument("--warmup", type=float, default=0.3,
                   help="Fraction of the duration kept free of incidents at the start (default 0.3).")


def _parse_start(text: str) -> float:
    with contextlib.suppress(ValueError):
        return float(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LogwardenError(f"--start: expected ISO 8601 time or epoch seconds, got {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def run(args: argparse.Namespace) -> int:
    from agent.clock import SystemClock
    from agent.generator import DEFAULT_START, GeneratorConfig, generate, parse_incidents
    from agent.schema import Duration

    try:
        duration = Duration.parse(args.duration).seconds
        incidents = parse_incidents(args.incidents)
        config = GeneratorConfig(
            seed=args.seed, duration_s=duration, rate=args.rate,
            start=_parse_start(args.start) if args.start else DEFAULT_START,
            incidents=incidents, warmup_fraction=args.warmup,
        )
    except ValueError as exc:
        raise LogwardenError(f"generate: {exc}") from None
    follow = SystemClock() if args.follow else None
    try:
        out: TextIO = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    except OSError as exc:
        raise LogwardenError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    try:
        labels = generate(config, out, follow=follow)
    finally:
        if out is not sys.stdout:
            out.close()
    if args.labels:
        try:
            with open(args.labels, "w", encoding="utf-8") as fh:
                for label in labels:
                    fh.write(json.dumps(label.to_json(), separators=(",", ":")) + "\n")
        except OSError as exc:
            raise LogwardenError(f"{args.labels}: cannot write: {exc.strerror or exc}") from None
    return 0
