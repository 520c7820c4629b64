"""Isolation Forest training: windows → features → sklearn forest → ONNX → bundle.

Runs in `logwarden train` and, for self-baselining (`model: auto`), in a child process of the daemon
(`python -m agent.training.iforest --windows FILE --out DIR [--options JSON]`), so the daemon never
imports scikit-learn or carries its memory. The threshold comes from normal training data only: the
`quantile` of the combined score (forest + novelty, see `agent.forest`) on the training windows, or
1 - contamination when a contamination is given. With `tail` the quantile may lie beyond the sample — one
window in 100,000 from an hour of 360 — and is extrapolated from a fitted tail (`agent.training.tail`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.bundle import OnnxInfo, Threshold, new_manifest, write_bundle
from agent.errors import LogwardenError
from agent.features import WindowSummary, count_matrix, featurize, fit_feature_spec
from agent.forest import novelty_scores
from agent.recent_windows import read_recent
from agent.training import TrainingData, TrainingError, window_names
from agent.training.onnx_iforest import INPUT_NAME, OUTPUT_NAME, forest_to_onnx, opsets
from agent.training.tail import tail_threshold
from agent.types import Window
from agent.windows import WindowSpec, window_from_dict

THRESHOLD_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class ForestOptions:
    n_estimators: int = 100
    max_samples: int | None = None
    """Samples per tree; None = min(256, training windows) as in the original paper."""
    contamination: float | None = None
    quantile: float = 0.995
    tail: bool = False
    """Estimate a quantile the training windows are too few to show from a GPD fitted to their upper tail."""
    novelty_margin: float = 0.0
    novelty_rate_sd: float = 0.0
    """Poisson standard deviations above each count's training maximum that are not novel (time windows)."""
    novelty: bool = True
    groups: tuple[str, ...] = ("counts", "stats")
    tfidf: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_estimators < 1:
            raise ValueError("n_estimators must be at least 1")
        if self.contamination is not None and not 0.0 < self.contamination < 0.5:
            raise ValueError("contamination must be in (0, 0.5)")
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError("quantile must be in (0, 1]")
        if self.novelty_margin < 0:
            raise ValueError("novelty margin must be >= 0")
        if not 0 <= self.novelty_rate_sd < float("inf"):
            raise ValueError("novelty rate_sd must be a finite number >= 0")


def fit_forest(x: np.ndarray[Any, Any], options: ForestOptions) -> Any:
    from sklearn.ensemble import IsolationForest

    max_samples: int | str = options.max_samples if options.max_samples is not None else "auto"
    if isinstance(max_samples, int):
        max_samples = min(max_samples, len(x))
    forest = IsolationForest(
        n_estimators=options.n_estimators,
        max_samples=max_samples,
        contamination=options.contamination if options.contamination is not None else "auto",
        random_state=options.seed,
        n_jobs=1,
    )
    forest.fit(x)
    return forest


def build_bundle(
    windows: Sequence[Window | WindowSummary],
    window_spec: WindowSpec,
    options: ForestOptions,
    *,
    command: str,
    source: str = "",
    drain_snapshot: str | None = None,
    template_names: Mapping[int, str] | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Train and export; returns the ONNX bytes and the manifest (`write_bundle` adds the sha256).

    The manifest names the vocabulary's templates: `template_names` (what a daemon saw) over the texts the
    training windows carry."""
    if not windows:
        raise TrainingError("the training set is empty: no windows to learn from")
    spec = fit_feature_spec(windows, groups=options.groups, tfidf=options.tfidf)
    counts = count_matrix(spec, windows)
    x = featurize(spec, windows, counts)
    forest = fit_forest(x, options)
    model_bytes = forest_to_onnx(forest, spec.width)

    import onnxruntime as ort

    from agent.scoring import session_options

    # Same session options as serving: the ensemble's float32 sum order then matches bit for bit.
    session = ort.InferenceSession(model_bytes, sess_options=session_options(), providers=["CPUExecutionProvider"])
    (forest_scores,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    forest_scores = np.asarray(forest_scores, dtype=np.float64)
    novelty = (novelty_scores(spec, counts, options.novelty_margin, options.novelty_rate_sd) if options.novelty
               else np.zeros(len(x)))
    combined = forest_scores + novelty
    tail_fit: dict[str, Any] | None = None
    if options.contamination is not None:
        q, method = 1.0 - options.contamination, "contamination"
        value = float(np.quantile(combined, q))
    elif options.tail:
        q = options.quantile
        # Forest scores stay below 1 and novel windows score above it: the threshold must stay between.
        value, method, fit = tail_threshold(combined, q, upper=1.0 if options.novelty else float("inf"))
        tail_fit = fit.to_dict() if fit is not None else None
    else:
        q, method = options.quantile, "quantile"
        value = float(np.quantile(combined, q))
    # Normal windows often share one exact score; the float32 tolerance keeps them below the threshold.
    threshold = value + THRESHOLD_TOLERANCE
    lengths = np.asarray([len(w) for w in windows], dtype=np.float64)
    training = {
        "source": source,
        "windows": len(windows),
        "events": int(lengths.sum()),
        "window_length": {"mean": float(lengths.mean()), "max": float(lengths.max())},
        "vocabulary_size": len(spec.vocabulary),
        "metrics": {
            "score_p50": float(np.quantile(combined, 0.5)),
            "score_p99": float(np.quantile(combined, 0.99)),
            "score_max": float(combined.max()),
            "flagged_fraction": float((combined > threshold).mean()),
        },
    }
    if tail_fit is not None:
        training["tail_fit"] = tail_fit
    model = {
        "kind": "isolation_forest",
        "combine": "forest + novelty",
        "n_estimators": options.n_estimators,
        "max_samples": int(forest._max_samples),
        "contamination": options.contamination,
        "seed": options.seed,
        "novelty": {"enabled": options.novelty, "margin": options.novelty_margin, "rate_sd": options.novelty_rate_sd},
    }
    manifest = new_manifest(
        detector="iforest",
        window=window_spec,
        features=spec,
        threshold=Threshold(threshold, method, q),
        onnx=OnnxInfo([INPUT_NAME], [OUTPUT_NAME], opsets()),
        training=training,
        train_command=command,
        model=model,
        drain_snapshot=drain_snapshot,
        template_names={**window_names(windows), **(template_names or {})},
    )
    return model_bytes, manifest


def options_from_args(args: argparse.Namespace) -> ForestOptions:
    groups = getattr(args, "features", None)
    try:
        return ForestOptions(
            n_estimators=int(getattr(args, "n_estimators", 100)),
            max_samples=getattr(args, "max_samples", None),
            contamination=getattr(args, "contamination", None),
            quantile=float(getattr(args, "threshold_quantile", 0.995)),
            tail=bool(getattr(args, "threshold_tail", False)),
            novelty_margin=float(getattr(args, "novelty_margin", 0.0)),
            novelty_rate_sd=float(getattr(args, "novelty_rate_sd", 0.0)),
            novelty=not bool(getattr(args, "no_novelty", False)),
            groups=tuple(groups.split(",")) if isinstance(groups, str) and groups else ("counts", "stats"),
            tfidf=bool(getattr(args, "tfidf", False)),
            seed=int(getattr(args, "seed", 0) or 0),
        )
    except ValueError as exc:
        raise TrainingError(str(exc)) from None


def train(data: TrainingData, out: Path, args: argparse.Namespace) -> Path:
    """The `TRAINERS["iforest"]` entry (signature documented in `agent.training`)."""
    options = options_from_args(args)
    try:
        model_bytes, manifest = build_bundle(
            data.windows,
            data.window,
            options,
            command=data.command,
            source=data.source,
            drain_snapshot=data.drain_snapshot,
        )
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    return write_bundle(out, model_bytes, manifest, data.extra_files)


# -- child-process entry point (self-baselining) ---------------------------------------------------


def write_windows_file(path: Path, spec: WindowSpec, windows: list[dict[str, Any]], options: ForestOptions) -> None:
    """The JSON a daemon hands its training child: window spec, options and compact windows."""
    from agent.state import write_atomic

    doc = {"window": spec.to_dict(), "options": asdict(options), "windows": windows}
    write_atomic(path, json.dumps(doc, separators=(",", ":")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.training.iforest")
    parser.add_argument("--windows", required=True, type=Path, help="JSON file written by write_windows_file")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--source", default="self-baseline")
    args = parser.parse_args(argv)
    try:
        doc = json.loads(args.windows.read_text(encoding="utf-8"))
        spec = WindowSpec.from_dict(doc["window"])
        raw_options = dict(doc.get("options", {}))
        raw_options["groups"] = tuple(raw_options.get("groups", ("counts", "stats")))
        options = ForestOptions(**raw_options)
        # A daemon names its recent-window files (RecentWindows); a file written by write_windows_file holds them.
        docs = doc["windows"] if "windows" in doc else read_recent(doc["window_files"], int(doc["max_windows"]))
        windows: list[Window | WindowSummary] = [
            WindowSummary.from_dict(w) if "counts" in w else window_from_dict(w) for w in docs
        ]
        command = shlex.join([sys.executable, "-m", "agent.training.iforest", *(argv or sys.argv[1:])])
        names = {int(tid): str(text) for tid, text in doc.get("templates", {}).items()}
        model_bytes, manifest = build_bundle(windows, spec, options, command=command, source=args.source,
                                             template_names=names)
        write_bundle(args.out, model_bytes, manifest)  # a full disk is a reason the daemon logs, not a traceback
    except (OSError, KeyError, TypeError, ValueError, LogwardenError) as exc:  # BundleError: --out not a bundle
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
