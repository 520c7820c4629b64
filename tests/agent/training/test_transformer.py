"""Transformer: next-event training (shared bundle), the classify objective, export parity recorded by both."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.bundle import load_bundle
from agent.cli import main
from agent.scoring import open_window_model
from agent.sessions import session_windows
from tests.agent.training.seqdata import (
    BROKEN,
    TINY_TRANSFORMER,
    UNKNOWN,
    normal_sessions,
    shared_bundle,
    write_sessions,
)


@pytest.fixture(scope="module")
def next_event_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_bundle(tmp_path_factory, "transformer")


def test_next_event_transformer_flags_broken_sessions(next_event_bundle: Path) -> None:
    bundle = load_bundle(next_event_bundle, expected_detector="transformer")
    assert bundle.model["objective"] == "next-event"
    # the trainer checked torch against onnxruntime on random histories of several batch sizes and
    # lengths (shorter than h: the padding mask) and refuses to write a bundle beyond 1e-4
    assert bundle.model["parity_max_abs_error"] <= 1e-4
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
    train = write_sessions(tmp_path / "normal.txt", normal_sessions(100, seed=6))
    abnormal = write_sessions(tmp_path / "abnormal.txt", BROKEN * 8)
    out = tmp_path / "clf"
    assert main(["train", "--model", "transformer", "--objective", "classify", "--sessions", str(train),
                 "--abnormal", str(abnormal), "--out", str(out), "--max-len", "16", *TINY_TRANSFORMER[2:10],
                 "--epochs", "12", "--batch-size", "32", "--learning-rate", "0.01", "--threads", "1"]) == 0
    bundle = load_bundle(out)
    # parity was checked on padded batches of several lengths up to max_len (pad + mask in the graph)
    assert bundle.model["parity_max_abs_error"] <= 1e-4
    model = open_window_model(bundle)
    normal, _ = session_windows(normal_sessions(100, seed=8), 1000)
    broken, _ = session_windows(BROKEN, 1000)
    assert (model.score_windows(normal).score > model.threshold).mean() <= 0.05
    assert (model.score_windows(broken).score > model.threshold).all()
