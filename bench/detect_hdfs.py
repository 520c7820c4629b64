"""Detection quality on HDFS (benchmarks.md §3): sessions protocol and the raw-log path, anchors in the same run.

Sessions: train on the first 2,000 normal sessions only, threshold from normal training data only (a
quantile of training scores), test on the remaining normal sessions plus all abnormal ones. Raw log:
HDFS_5k.log → header format → Drain → session windows keyed by block id, labels from block_labels.csv;
train on the first half of the normal blocks (in order of appearance), test on the rest plus the
anomalous blocks.

Detectors are a list of runners (`RUNNERS`): each takes train and test windows and returns one or more
named results (scores + threshold). Another detector adds a row by appending a runner.

    .venv/bin/python bench/detect_hdfs.py [--data ../shared/data] [--train 2000] [--quantile 0.995]
        [--only deeplog transformer] [--sessions-only] [--threads 1] [--seen-context K] [--seen-min-count N]
        [--restarts R]

The deep models choose g and their seen-transition allowlist (context, minimum session count) from a
held-out slice of the normal training sessions inside `logwarden train`; the table names the choice.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.features import count_matrix, featurize
from agent.forest import novelty_scores
from agent.schema import Duration
from agent.sessions import read_sessions, session_windows
from agent.training.seen_selection import describe_choices
from agent.types import Window
from agent.windows import WindowSpec

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HDFS_FORMAT = "<Date> <Time> <Pid> <Level> <Component>: <Content>"


@dataclass
class Result:
    name: str
    scores: np.ndarray
    threshold: float
    seconds: float = 0.0
    note: str = ""
    """Printed under the table (e.g. how a deep model chose its allowlist on held-out normal sessions)."""


Runner = Callable[[list[Window], list[Window], argparse.Namespace], list[Result]]


def count_vector(w: Window) -> tuple[tuple[int, int], ...]:
    """A window's exact event-count vector, hashable: what the "never seen in training" anchor compares."""
    counts: dict[int, int] = {}
    for e in w.events:
        counts[e] = counts.get(e, 0) + 1
    return tuple(sorted(counts.items()))


def run_seen_vector(train: list[Window], test: list[Window], args: argparse.Namespace) -> list[Result]:
    """Anchor: a window is anomalous when its exact count vector never occurred in training."""
    t0 = time.perf_counter()
    seen = {count_vector(w) for w in train}
    scores = np.asarray([0.0 if count_vector(w) in seen else 1.0 for w in test])
    return [Result("anchor: count vector never seen", scores, 0.5, time.perf_counter() - t0)]


def run_sklearn_raw(train: list[Window], test: list[Window], args: argparse.Namespace) -> list[Result]:
    """Anchor: a plain sklearn IsolationForest on raw counts, threshold at the same training quantile."""
    from sklearn.ensemble import IsolationForest

    from agent.features import fit_feature_spec

    t0 = time.perf_counter()
    spec = fit_feature_spec(train, groups=("counts",))
    forest = IsolationForest(n_estimators=100, random_state=args.seed).fit(count_matrix(spec, train))
    train_scores = -forest.score_samples(count_matrix(spec, train))
    scores = -forest.score_samples(count_matrix(spec, test))
    thr = float(np.quantile(train_scores, args.quantile))
    return [Result("anchor: sklearn IsolationForest, raw counts", scores, thr, time.perf_counter() - t0)]


def run_iforest(train: list[Window], test: list[Window], args: argparse.Namespace) -> list[Result]:
    """logwarden's iforest bundle through onnxruntime: forest part, novelty part, and their combination."""
    from agent.bundle import load_bundle, write_bundle
    from agent.scoring import OnnxScorer, open_window_model
    from agent.training.iforest import ForestOptions, build_bundle

    t0 = time.perf_counter()
    options = ForestOptions(seed=args.seed, quantile=args.quantile)
    model_bytes, manifest = build_bundle(train, WindowSpec(type="session", key_field="session"), options, command="bench")
    out = write_bundle(args.workdir / "iforest", model_bytes, manifest)
    model = open_window_model(load_bundle(out))
    scored = model.score_windows(test)
    elapsed = time.perf_counter() - t0
    spec = model.bundle.features
    # Forest-only threshold: the same quantile of the forest score on training data.
    forest_train = OnnxScorer(model.bundle).score(featurize(spec, train))
    forest_thr = float(np.quantile(forest_train, args.quantile)) + 1e-6
    novelty = novelty_scores(spec, count_matrix(spec, test), 0.0)
    return [
        Result("iforest: forest part only", scored.parts["forest"], forest_thr, elapsed),
        Result("iforest: novelty part only", novelty, 0.5, elapsed),
        Result("iforest: combined (forest + novelty)", scored.score, model.threshold, elapsed),
    ]


# --- deep sequence models (issue 5): trained by their own trainers, served by onnxruntime ----------------


def _run_sequence_model(model: str, train: list[Window], test: list[Window], args: argparse.Namespace) -> Result:
    """Train a next-event bundle on the normal training windows (g from a held-out slice of them), score test."""
    from agent.bundle import load_bundle
    from agent.scoring import open_window_model
    from agent.training import TrainingData, resolve_trainer

    t0 = time.perf_counter()
    data = TrainingData(windows=train, window=WindowSpec(type="session", key_field="session"), command="bench",
                        source="bench/detect_hdfs.py")
    ns = argparse.Namespace(seed=args.seed, threads=args.threads, seen_context=args.seen_context,
                            seen_min_count=args.seen_min_count, restarts=args.restarts)
    out = resolve_trainer(model)(data, args.workdir / model, ns)
    bundle = load_bundle(out)
    served = open_window_model(bundle)
    scores = np.concatenate([served.score_windows(test[i : i + 1024]).score for i in range(0, len(test), 1024)])
    g = served.threshold
    selection = bundle.model.get("seen_selection", {})
    chosen = selection.get("chosen", {})
    seen = "off" if not chosen.get("context") else f"context {chosen['context']}, min count {chosen['min_count']}"
    return Result(f"{model}: next-event, top-g (g={g:g}; seen transitions {seen}; both from held-out normal)", scores, g,
                  time.perf_counter() - t0,
                  "\n".join(describe_choices(model, bundle.model)))


def run_deeplog(train: list[Window], test: list[Window], args: argparse.Namespace) -> list[Result]:
    return [_run_sequence_model("deeplog", train, test, args)]


def run_transformer(train: list[Window], test: list[Window], args: argparse.Namespace) -> list[Result]:
    return [_run_sequence_model("transformer", train, test, args)]


RUNNERS: list[tuple[str, Runner]] = [
    ("seen-vector", run_seen_vector),
    ("sklearn-raw", run_sklearn_raw),
    ("iforest", run_iforest),
    ("deeplog", run_deeplog),
    ("transformer", run_transformer),
]


def metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    pred = scores > threshold
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    auc = float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else float("nan")
    return {"precision": p, "recall": r, "f1": f1, "roc_auc": auc, "tp": tp, "fp": fp, "fn": fn}


def table(title: str, train: list[Window], test: list[Window], labels: np.ndarray, args: argparse.Namespace) -> None:
    print(f"\n## {title}\ntrain {len(train)} normal windows; test {len(test)} ({int(labels.sum())} abnormal)\n")
    print("| detector | precision | recall | F1 | ROC-AUC | TP | FP | FN | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    notes: list[str] = []
    for name, runner in RUNNERS:
        if args.only and name not in args.only:
            continue
        for res in runner(train, test, args):
            m = metrics(res.scores, labels, res.threshold)
            print(
                f"| {res.name} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['roc_auc']:.4f} "
                f"| {m['tp']} | {m['fp']} | {m['fn']} | {res.seconds:.1f} |"
            )
            if res.note:
                notes.append(res.note)
    for note in notes:
        print(f"\n{note}")


def sessions_benchmark(args: argparse.Namespace) -> None:
    root = args.data / "hdfs_sessions"
    normal = read_sessions(root / "normal.txt").sessions
    abnormal = read_sessions(root / "abnormal.txt").sessions
    train, _ = session_windows(normal[: args.train], max_length=1000)
    test, _ = session_windows(normal[args.train :] + abnormal, max_length=1000)
    labels = np.asarray([False] * (len(normal) - args.train) + [True] * len(abnormal))
    assert len(test) == len(labels), "no session is longer than max_length here; one window per session"
    table("HDFS sessions (DeepLog split)", train, test, labels, args)


def raw_log_benchmark(args: argparse.Namespace) -> None:
    from agent.corpus import load_logs

    root = args.data / "hdfs_5k"
    with open(root / "block_labels.csv", newline="") as fh:
        label_of = {row["BlockId"]: row["Label"] == "Anomaly" for row in csv.DictReader(fh)}
    spec = WindowSpec(type="session", key=r"blk_-?\d+", idle=Duration(86400.0))
    t0 = time.perf_counter()
    corpus = load_logs([root / "HDFS_5k.log"], HDFS_FORMAT, spec)
    parse_s = time.perf_counter() - t0
    windows = [w for w in corpus.windows if w.key in label_of]
    normal = [w for w in windows if not label_of[w.key]]
    half = len(normal) // 2
    train = normal[:half]
    train_keys = {w.key for w in train}
    test = [w for w in windows if w.key not in train_keys]
    labels = np.asarray([label_of[w.key] for w in test])
    print(f"\n(parsed {int(corpus.stats.get('records', 0))} lines into {len(corpus.windows)} block windows in {parse_s:.2f}s)")
    table("HDFS_5k raw log → Drain → block sessions", train, test, labels, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--quantile", type=float, default=0.995)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the deep models (default 1: the machine is shared).")
    parser.add_argument("--seen-context", type=int, default=None,
                        help="Fix the deep models' --seen-context (default: chosen from held-out normal sessions).")
    parser.add_argument("--seen-min-count", type=int, default=None,
                        help="Fix the deep models' --seen-min-count (default: chosen from held-out normal sessions).")
    parser.add_argument("--restarts", type=int, default=None,
                        help="The deep models' --restarts (default: the product default, 3).")
    parser.add_argument("--only", nargs="+", choices=[name for name, _ in RUNNERS], default=None,
                        help="Run only these detectors (default: all).")
    parser.add_argument("--sessions-only", action="store_true", help="Skip the raw HDFS_5k table.")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        args.workdir = Path(tmp)
        sessions_benchmark(args)
        if not args.sessions_only:
            raw_log_benchmark(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
