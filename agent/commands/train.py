"""`logwarden train`: windows from a sessions file or raw logs → a model bundle.

The detector's trainer is looked up by name in `agent.training.TRAINERS` and imported only then, so the
Isolation Forest path never imports torch and the deep models can live in their own modules. Same input,
same options and same `--seed` give a byte-identical `model.onnx`; the manifest records the command line
that reproduces it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import yaml

from agent.errors import LogwardenError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from agent.training import TRAINERS

    p.add_argument("--model", required=True, choices=sorted(TRAINERS), help="Detector to train.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sessions", type=Path, metavar="FILE", help="Normal sessions, DeepLog's format.")
    src.add_argument("--input", type=Path, nargs="+", metavar="LOG", help="Raw log files (parsed with Drain).")
    p.add_argument("--abnormal", type=Path, metavar="FILE", help="Labelled abnormal sessions (supervised objectives).")
    p.add_argument("--log-format", metavar="FMT", help="Header format of --input, e.g. '<Date> <Time> <Level> <Component>: <Content>'.")
    p.add_argument("--multiline", metavar="REGEX",
                   help="Lines not matching this start pattern join the record before them (stack traces).")
    p.add_argument(
        "--window",
        default="{type: sliding, size: 60s}",
        metavar="SPEC",
        help="Window spec for --input as a YAML flow mapping, e.g. \"{type: session, key: 'blk_-?\\d+', idle: 30s}\".",
    )
    p.add_argument("--max-length", type=int, default=1000, help="Events per session window; longer ones are split.")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="Bundle folder to write.")
    p.add_argument("--seed", type=int, default=0, help="Random seed; the same seed gives the same model.")
    forest = p.add_argument_group("iforest options")
    forest.add_argument("--n-estimators", type=int, default=100, help="Trees in the forest.")
    forest.add_argument("--max-samples", type=int, default=None, help="Samples per tree (default min(256, n)).")
    forest.add_argument("--contamination", type=float, default=None, help="Expected anomaly share; sets the threshold quantile to 1 - c.")
    forest.add_argument("--threshold-quantile", type=float, default=0.995, help="Quantile of normal training scores used as threshold.")
    forest.add_argument("--threshold-tail", action="store_true", help="Where the training windows are too few to show that quantile (fewer than ten above it), extrapolate it from a peaks-over-threshold fit of their upper tail instead of taking their maximum.")
    forest.add_argument("--novelty-margin", type=float, default=0.0, help="Widen each count column's training range by this share of its span.")
    forest.add_argument("--novelty-rate-sd", type=float, default=0.0, help="Also tolerate this many Poisson standard deviations (square root of the count) above each count's training maximum: for sliding windows, whose counts are rates.")
    forest.add_argument("--no-novelty", action="store_true", help="Forest score only (for comparisons).")
    forest.add_argument("--features", default="counts,stats", help="Feature groups: counts, stats, temporal, levels.")
    forest.add_argument("--tfidf", action="store_true", help="Weight count columns by training idf.")
    from agent.training import deep_options

    deep_options.add_arguments(p.add_argument_group("deeplog / transformer options"))


def parse_window(text: str, max_length: int) -> object:
    """Build a WindowSpec from the --window YAML (a bare type name is allowed) with the config validator."""
    from agent.schema import Builder
    from agent.windows import WindowSpec

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LogwardenError(f"--window: not valid YAML: {exc}") from None
    if isinstance(data, str):
        data = {"type": data}
    if isinstance(data, dict):
        data.setdefault("max_length", max_length)
    builder = Builder(file="--window")
    spec = builder.build(WindowSpec, data, "window")
    if spec is None:
        raise LogwardenError("; ".join(str(e) for e in builder.errors))
    return spec


def run(args: argparse.Namespace) -> int:
    from agent.commands.options import check_log_options
    from agent.corpus import load_logs, load_sessions, sessions_window_spec
    from agent.training import TrainingData, resolve_trainer
    from agent.windows import WindowSpec

    if args.max_length < 1:
        raise LogwardenError("--max-length must be at least 1")
    check_out_dir(args.out)
    check_log_options(args.log_format, args.multiline)
    trainer = resolve_trainer(args.model)
    command = shlex.join(["logwarden", *sys.argv[1:]]) if sys.argv[1:2] == ["train"] else _rebuild_command(args)
    if args.sessions is not None:
        corpus = load_sessions(args.sessions, args.max_length)
        spec = sessions_window_spec(args.max_length)
    else:
        parsed = parse_window(args.window, args.max_length)
        assert isinstance(parsed, WindowSpec)
        spec = parsed
        corpus = load_logs(args.input, args.log_format, spec, multiline=args.multiline)
    if not corpus.windows:
        raise LogwardenError(f"the training set is empty: {corpus.source} holds no sessions or windows")
    abnormal = load_sessions(args.abnormal, args.max_length).windows if args.abnormal is not None else []
    data = TrainingData(
        windows=corpus.windows,
        window=spec,
        command=command,
        source=corpus.source,
        drain_snapshot=corpus.drain_snapshot,
        abnormal=abnormal,
    )
    if corpus.drain_state is not None:
        data.extra_files["drain.json"] = corpus.drain_state
    out = trainer(data, args.out, args)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def check_out_dir(out: Path) -> None:
    """Refuse an --out that is not a bundle before training, not after it (`bundle.check_replaceable`); a
    wrong option is a usage error (exit 1), not a bad bundle (65)."""
    from agent.bundle import check_replaceable
    from agent.errors import BundleError

    try:
        check_replaceable(out)
    except BundleError as exc:
        raise LogwardenError(f"--out {out}: {exc.reason}") from None


def _rebuild_command(args: argparse.Namespace) -> str:
    """When called in-process (tests, benches) sys.argv is not ours: rebuild the essential flags."""
    parts = ["logwarden", "train", "--model", args.model]
    if args.sessions is not None:
        parts += ["--sessions", str(args.sessions)]
    else:
        parts += ["--input", *map(str, args.input), "--window", args.window]
        if args.log_format:
            parts += ["--log-format", args.log_format]
        if args.multiline:
            parts += ["--multiline", args.multiline]
    parts += ["--out", str(args.out), "--seed", str(args.seed)]
    return shlex.join(parts)
