"""DeepLog LSTM: export parity on random inputs, training on tiny generated sessions, the top-g rule end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.bundle import load_bundle
from agent.cli import main
from agent.scoring import open_window_model
from agent.sessions import session_windows
from agent.training.deeplog import build_autoencoder
from agent.training.torch_common import ExportMismatch, TrainExtraMissing, check_parity, export_onnx, require_torch
from tests.agent.training.seqdata import (
    BROKEN,
    UNKNOWN,
    normal_sessions,
    shared_bundle,
    shared_train_args,
    shared_train_file,
    write_sessions,
)


def test_autoencoder_export_matches_torch(tmp_path: Path) -> None:
    torch = require_torch()
    torch.manual_seed(4)
    net = build_autoencoder(5, hidden=8)
    path = tmp_path / "ae.onnx"
    export_onnx(net, (torch.randn(2, 4, 5),), path, input_names=["intervals"], output_names=["error"],
                dynamic={"intervals": {0: ("batch", 1, 4096), 1: ("steps", 1, 64)}})
    rng = np.random.default_rng(1)
    feeds = [{"intervals": rng.normal(size=s).astype(np.float32)} for s in ((1, 4, 5), (6, 9, 5), (2, 1, 5))]
    assert check_parity(net, path, feeds) <= 1e-4
    assert not (tmp_path / "ae.onnx.data").exists()  # one file, no external data
    with torch.no_grad():
        next(net.parameters()).add_(0.5)  # the torch model drifts from the exported one
    with pytest.raises(ExportMismatch):
        check_parity(net, path, feeds)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_bundle(tmp_path_factory, "deeplog")


def test_trained_bundle_flags_broken_order_truncation_and_unknown_keys(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir, expected_detector="deeplog")
    assert bundle.model["objective"] == "next-event"
    # the trainer compared torch and onnxruntime on random histories of several batch sizes and lengths
    assert bundle.model["parity_max_abs_error"] <= 1e-4
    assert bundle.threshold.value == bundle.model["top_g"] >= 1
    # the allowlist setting was chosen by the held-out rule, and the manifest says how and what it served
    selection = bundle.model["seen_selection"]
    chosen = selection["chosen"]
    assert chosen in selection["candidates"] and len(selection["candidates"]) > 1
    assert chosen["top_g"] == bundle.model["top_g"] >= bundle.model["min_top_g"] == 2
    # one-SE rule: the band is measured from the cleanest smallest-g candidate, the choice lies inside it
    assert selection["rule_name"] == "one-standard-error" and selection["n"] > 0
    smallest = [c for c in selection["candidates"] if c["top_g"] == chosen["top_g"]]
    assert selection["best"]["holdout_fpr"] == min(c["holdout_fpr"] for c in smallest)
    assert selection["band"] == pytest.approx(selection["best"]["holdout_fpr"] + selection["best"]["se"], abs=2e-6)
    assert chosen["holdout_fpr"] <= selection["band"] and chosen["tied"]
    # one training run (--restarts 1): recorded as the only restart, with the choice judged through ONNX
    restarts = bundle.model["restarts"]
    assert restarts["count"] == 1 and restarts["chosen"] == 0 and restarts["seed"] == bundle.model["seed"] == 7
    assert [(r["seed"], r["top_g"], r["context"], r["min_count"], r["flagged"]) for r in restarts["runs"]] == [
        (7, chosen["top_g"], chosen["context"], chosen["min_count"], chosen["flagged"])]
    seen = bundle.model["seen_transitions"]
    if chosen["context"] == 0:
        assert seen is None
    else:
        assert (seen["context"], seen["min_count"]) == (chosen["context"], chosen["min_count"])
        assert len(bundle.files[seen["file"]]) == 8 * seen["count"] > 0
    model = open_window_model(bundle)
    normal, _ = session_windows(normal_sessions(200, seed=2), 1000)
    broken, _ = session_windows(BROKEN + UNKNOWN, 1000)
    n = model.score_windows(normal).score
    b = model.score_windows(broken).score
    assert (n > model.threshold).mean() <= 0.02
    assert (b > model.threshold).all(), b


def test_explanation_names_the_unpredicted_event_and_what_was_expected(bundle_dir: Path) -> None:
    model = open_window_model(load_bundle(bundle_dir))
    (window,), _ = session_windows([["10", "12", "11", "13"]], 1000)
    window.templates = {12: "read row <*>", 11: "auth ok"}
    window.samples = {12: ["2026-01-01 read row 7"]}
    ev = model.explain(window)  # type: ignore[attr-defined]
    assert ev.templates, "an anomalous session must be explained"
    assert ev.templates[0].template == "read row <*>"
    assert "2026-01-01 read row 7" in ev.samples
    assert any("expected one of" in v and "11" in v for v in ev.params.values())
    named = model.explain(window, {11: "auth ok for <*>", 12: "read row <*>"})  # type: ignore[attr-defined]
    assert any("expected one of" in v and "11 'auth ok for <*>'" in v for v in named.params.values()), named.params


def test_evaluate_prints_one_json_object_and_writes_the_report(
    bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    normal = write_sessions(tmp_path / "n.txt", normal_sessions(100, seed=5))
    abnormal = write_sessions(tmp_path / "a.txt", BROKEN * 5 + UNKNOWN)
    report = tmp_path / "report"
    capsys.readouterr()
    assert main(["evaluate", "--model", str(bundle_dir), "--normal", str(normal), "--abnormal", str(abnormal),
                 "--report", str(report)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    doc = json.loads(out[0])
    assert set(doc) == {"precision", "recall", "f1", "roc_auc", "pr_auc", "tp", "fp", "tn", "fn"}
    assert doc["tp"] + doc["fn"] == 21 and doc["tn"] + doc["fp"] == 100
    assert doc["recall"] == 1.0
    for name in ("confusion_matrix.png", "pr_curve.png", "roc_curve.png", "score_distribution.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert name in (report / "index.html").read_text()
    assert "| f1 |" in (report / "report.md").read_text()


@pytest.fixture(scope="module")
def given_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared bundle's training run again, with the allowlist setting given instead of chosen."""
    tmp = tmp_path_factory.mktemp("given")
    out = tmp / "b"
    args = [*shared_train_args("deeplog", shared_train_file(tmp), out), "--seen-context", "3", "--seen-min-count", "2"]
    assert main(args) == 0
    return out


def test_same_seed_gives_the_same_model(bundle_dir: Path, given_dir: Path) -> None:
    # the allowlist options only act after the fit, so the same seed and data give the same network bytes
    assert (given_dir / "model.onnx").read_bytes() == (bundle_dir / "model.onnx").read_bytes()


def test_missing_torch_names_the_train_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(TrainExtraMissing, match=r"pip install 'logwarden\[train\]'"):
        require_torch()


def test_train_cli_exits_non_zero_with_the_extra_named_when_torch_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    train = write_sessions(tmp_path / "normal.txt", normal_sessions(20))
    assert main(["train", "--model", "deeplog", "--sessions", str(train), "--out", str(tmp_path / "b")]) != 0
    assert "logwarden[train]" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_given_allowlist_options_are_recorded_and_old_or_bad_min_counts_are_handled(given_dir: Path, tmp_path: Path) -> None:
    import shutil

    from agent.errors import BundleError

    bundle = load_bundle(given_dir)
    seen = bundle.model["seen_transitions"]
    assert (seen["context"], seen["min_count"]) == (3, 2)
    assert bundle.model["seen_selection"]["rule"].startswith("given")
    assert [(c["context"], c["min_count"]) for c in bundle.model["seen_selection"]["candidates"]] == [(3, 2)]
    assert open_window_model(bundle).seen.min_count == 2  # type: ignore[attr-defined]
    # a bundle written before the minimum count existed loads with 1 (every transition seen once counted)
    old = tmp_path / "old"
    shutil.copytree(given_dir, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["model"]["seen_transitions"]["min_count"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert open_window_model(load_bundle(old)).seen.min_count == 1  # type: ignore[attr-defined]
    manifest["model"]["seen_transitions"]["min_count"] = 0
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="min_count"):
        open_window_model(load_bundle(old))


def test_train_refuses_a_bad_min_count_before_fitting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = write_sessions(tmp_path / "normal.txt", normal_sessions(20))
    args = [*shared_train_args("deeplog", train, tmp_path / "b"), "--seen-min-count", "0"]
    assert main(args) != 0
    assert "seen-min-count" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
