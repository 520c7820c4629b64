"""Transformer: variable-length export parity (pad + mask), next-event training and the classify objective."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.bundle import load_bundle
from agent.cli import main
from agent.scoring import open_window_model
from agent.sessions import session_windows
from agent.training.torch_common import check_parity, export_onnx, require_torch
from agent.training.transformer import build_encoder
from tests.agent.training.seqdata import BROKEN, TINY_TRANSFORMER, UNKNOWN, normal_sessions, write_sessions


@pytest.mark.parametrize("classify", [False, True])
def test_export_accepts_any_batch_and_length_and_matches_torch(tmp_path: Path, classify: bool) -> None:
    torch = require_torch()
    torch.manual_seed(5)
    net = build_encoder(11, max_len=32, d_model=16, heads=2, layers=2, ff=32, classify=classify)
    path = tmp_path / "t.onnx"
    export_onnx(net, (torch.randint(1, 11, (2, 8)),), path, input_names=["events"], output_names=["out"],
                dynamic={"events": {0: ("batch", 1, 4096), 1: ("seq", 1, 32)}})
    rng = np.random.default_rng(2)
    feeds = []
    for batch, length in ((1, 1), (1, 8), (5, 32), (3, 17)):
        x = rng.integers(1, 11, size=(batch, length), dtype=np.int64)
        x[0, max(1, length // 2):] = 0  # right padding in one row
        feeds.append({"events": x})
    assert check_parity(net, path, feeds) <= 1e-4


def test_next_event_transformer_flags_broken_sessions(tmp_path: Path) -> None:
    train = write_sessions(tmp_path / "normal.txt", normal_sessions(300, seed=3))
    out = tmp_path / "bundle"
    assert main(["train", "--model", "transformer", "--sessions", str(train), "--out", str(out), "--seed", "2",
                 *TINY_TRANSFORMER]) == 0
    bundle = load_bundle(out, expected_detector="transformer")
    assert bundle.model["objective"] == "next-event"
    model = open_window_model(bundle)
    normal, _ = session_windows(normal_sessions(200, seed=4), 1000)
    broken, _ = session_windows(BROKEN + UNKNOWN, 1000)
    assert (model.score_windows(normal).score > model.threshold).mean() <= 0.02
    assert (model.score_windows(broken).score > model.threshold).all()


def test_classify_needs_abnormal_sessions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = write_sessions(tmp_path / "normal.txt", normal_sessions(50))
    code = main(["train", "--model", "transformer", "--objective", "classify", "--sessions", str(train),
                 "--out", str(tmp_path / "b")])
    assert code != 0
    assert "--abnormal" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_classify_objective_separates_labelled_sessions(tmp_path: Path) -> None:
    train = write_sessions(tmp_path / "normal.txt", normal_sessions(200, seed=6))
    abnormal = write_sessions(tmp_path / "abnormal.txt", BROKEN * 15)
    out = tmp_path / "clf"
    assert main(["train", "--model", "transformer", "--objective", "classify", "--sessions", str(train),
                 "--abnormal", str(abnormal), "--out", str(out), "--max-len", "16", *TINY_TRANSFORMER[2:10],
                 "--epochs", "30", "--batch-size", "32", "--learning-rate", "0.01"]) == 0
    model = open_window_model(load_bundle(out))
    normal, _ = session_windows(normal_sessions(100, seed=8), 1000)
    broken, _ = session_windows(BROKEN, 1000)
    assert (model.score_windows(normal).score > model.threshold).mean() <= 0.05
    assert (model.score_windows(broken).score > model.threshold).all()
