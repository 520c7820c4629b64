"""`logwarden score`: one line per session (or window) — `<score>\\t<0|1>` — in input order.

The bundle decides everything: its detector picks the serving class (`agent.scoring.WINDOW_MODELS`), its
window spec windows raw logs, its `drain.json` (when present) maps lines to the template ids training
saw. A session split into several windows (longer than `max_length`) is scored by its worst part.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.errors import LogwardenError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=Path, metavar="DIR", help="Model bundle folder.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sessions", type=Path, metavar="FILE", help="Sessions to score, DeepLog's format.")
    src.add_argument("--input", type=Path, nargs="+", metavar="LOG", help="Raw log files to window and score.")
    p.add_argument("--log-format", metavar="FMT", help="Header format of --input.")
    p.add_argument("--multiline", metavar="REGEX", help="Start pattern of multi-line records in --input.")
    p.add_argument("--batch-size", type=int, default=256, help="Windows per onnxruntime call.")


def score_corpus(model_dir: Path, args: argparse.Namespace) -> tuple[list[float], float]:
    """Scores per session/window in input order, and the bundle's threshold (used by `evaluate` too)."""
    from agent.bundle import load_bundle
    from agent.commands.options import check_log_options
    from agent.corpus import load_logs, load_sessions
    from agent.scoring import open_window_model
    from agent.sessions import fold_by_session

    check_log_options(getattr(args, "log_format", None), getattr(args, "multiline", None))
    bundle = load_bundle(model_dir)
    model = open_window_model(bundle)
    if args.sessions is not None:
        corpus = load_sessions(args.sessions, bundle.window.max_length)
    else:
        corpus = load_logs(args.input, args.log_format, bundle.window, bundle.files.get("drain.json"),
                           multiline=getattr(args, "multiline", None))
    batch = max(1, int(getattr(args, "batch_size", 256)))
    values: list[float] = []
    for i in range(0, len(corpus.windows), batch):
        values.extend(model.score_windows(corpus.windows[i : i + batch]).score.tolist())
    return fold_by_session(values, corpus.owner, corpus.n_units), model.threshold


def run(args: argparse.Namespace) -> int:
    scores, threshold = score_corpus(args.model, args)
    out = sys.stdout
    try:
        for s in scores:
            out.write(f"{s:.6f}\t{1 if s > threshold else 0}\n")
        out.flush()
    except BrokenPipeError:
        return 0
    if not scores:
        raise LogwardenError("nothing to score: the input holds no sessions or windows")
    return 0
