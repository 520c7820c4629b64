"""Scoring speed (benchmarks.md §4): one Isolation Forest, three ways of scoring it, in one run.

An IsolationForest (100 trees, 64 features) is trained on random data; then one row and batches of 256
are scored with sklearn `decision_function` (the anchor), with skl2onnx's converted graph in
onnxruntime, and with logwarden's exported model (one TreeEnsembleRegressor node) through `OnnxScorer`
— all onnxruntime sessions with one intra-op thread. Medians of repeated calls; ratios against sklearn.

    .venv/bin/python bench/scoring_speed.py [--repeat 200] [--features 64] [--trees 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--trees", type=int, default=100)
    args = parser.parse_args()

    import onnx
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from sklearn.ensemble import IsolationForest

    from agent.bundle import OnnxInfo, Threshold, load_bundle, new_manifest, write_bundle
    from agent.features import FeatureSpec
    from agent.scoring import OnnxScorer, session_options
    from agent.training.onnx_iforest import INPUT_NAME, OUTPUT_NAME, forest_to_onnx, opsets
    from agent.windows import WindowSpec

    rng = np.random.default_rng(0)
    d = args.features
    x_train = rng.normal(size=(2000, d)).astype(np.float32)
    forest = IsolationForest(n_estimators=args.trees, random_state=0).fit(x_train)
    ours = forest_to_onnx(forest, d)
    theirs = to_onnx(forest, x_train[:1], target_opset={"": 17, "ai.onnx.ml": 3}).SerializeToString()
    nodes_ours = len(onnx.load_from_string(ours).graph.node)
    nodes_theirs = len(onnx.load_from_string(theirs).graph.node)

    spec = FeatureSpec(vocabulary={}, groups=("stats",), mean=[0.0] * 6, scale=[1.0] * 6)  # placeholder schema
    manifest = new_manifest(
        detector="iforest", window=WindowSpec(), features=spec, threshold=Threshold(0.6, "fixed"),
        onnx=OnnxInfo([INPUT_NAME], [OUTPUT_NAME], opsets()), training={}, train_command="bench",
    )
    with tempfile.TemporaryDirectory() as tmp:
        scorer = OnnxScorer(load_bundle(write_bundle(Path(tmp) / "b", ours, manifest)))
    skl2onnx_sess = ort.InferenceSession(theirs, sess_options=session_options(), providers=["CPUExecutionProvider"])
    skl_in = skl2onnx_sess.get_inputs()[0].name

    probe = rng.normal(size=(256, d)).astype(np.float32)
    got = scorer.score(probe)
    want = -forest.score_samples(probe)
    max_err = float(np.abs(got - want).max())

    rows: list[tuple[str, str, int, float]] = []
    for batch in (1, 256):
        xb = probe[:batch]
        repeat = args.repeat if batch == 1 else max(20, args.repeat // 10)
        rows.append(("sklearn decision_function", "anchor", batch, median_time(lambda xb=xb: forest.decision_function(xb), repeat)))
        rows.append((f"skl2onnx graph ({nodes_theirs} nodes), onnxruntime", "", batch,
                     median_time(lambda xb=xb: skl2onnx_sess.run(None, {skl_in: xb}), repeat)))
        rows.append((f"logwarden export ({nodes_ours} nodes), OnnxScorer", "", batch, median_time(lambda xb=xb: scorer.score(xb), repeat)))

    print(f"IsolationForest {args.trees} trees, {d} features; max |ours - sklearn score_samples| = {max_err:.2e}\n")
    print("| scorer | batch | median per call | per row | speed-up vs sklearn |")
    print("|---|---|---|---|---|")
    for batch in (1, 256):
        anchor = next(t for name, kind, b, t in rows if b == batch and kind == "anchor")
        for name, _kind, b, t in rows:
            if b == batch:
                print(f"| {name} | {b} | {t * 1e6:,.1f} µs | {t / b * 1e6:,.2f} µs | {anchor / t:,.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
