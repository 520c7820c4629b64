"""The exported forest equals sklearn's score_samples (negated) and is byte-identical per seed."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.ensemble import IsolationForest

from agent.training.onnx_iforest import INPUT_NAME, OUTPUT_NAME, forest_to_onnx


@pytest.mark.parametrize("max_features", [1.0, 0.6])
def test_onnx_score_equals_sklearn_score_samples(max_features: float) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 9)).astype(np.float32)
    x[:, 3] = np.round(x[:, 3])  # ties on thresholds, like count features
    forest = IsolationForest(n_estimators=40, max_features=max_features, random_state=3).fit(x)
    session = ort.InferenceSession(forest_to_onnx(forest, 9), providers=["CPUExecutionProvider"])
    probe = np.vstack([x[:50], rng.normal(size=(300, 9)), rng.normal(scale=6.0, size=(100, 9))]).astype(np.float32)
    (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: probe})
    want = -forest.score_samples(probe)
    assert got.shape == (len(probe),)
    assert np.abs(got - want).max() < 1e-5
    assert len(session.get_inputs()) == 1 and len(session.get_outputs()) == 1


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    x = np.random.default_rng(1).normal(size=(200, 4)).astype(np.float32)

    def export(seed: int) -> bytes:
        return forest_to_onnx(IsolationForest(n_estimators=10, random_state=seed).fit(x), 4)

    assert export(5) == export(5)
    assert export(5) != export(6)
