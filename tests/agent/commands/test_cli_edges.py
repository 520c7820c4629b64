"""Edge inputs an operator gives the CLI: each must be a one-line reason and an exit code, never a
traceback, and never the loss of a file the user did not ask to replace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main

SESSIONS = "\n".join(" ".join(["5", "5", "22", "11", "9", str(i % 3)]) for i in range(40)) + "\n"
INPUT = "pipeline:\n  inputs:\n    - name: tail\n      path: [{logs}/*.log]\n"


def train(tmp_path: Path, out: Path, *extra: str) -> int:
    (tmp_path / "s.txt").write_text(SESSIONS)
    return main(["train", "--model", "iforest", "--sessions", str(tmp_path / "s.txt"), "--out", str(out),
                 "--n-estimators", "10", *extra])


def test_train_refuses_an_out_folder_that_is_not_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Writing a bundle renames what is at --out aside and deletes it: a folder of notes went with it."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("years of work")
    assert train(tmp_path, notes) == 1
    assert "not a model bundle" in capsys.readouterr().err
    assert (notes / "thesis.txt").read_text() == "years of work"


def test_train_refuses_an_out_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "model").write_text("keep me")
    assert train(tmp_path, tmp_path / "model") == 1
    assert "is not a folder" in capsys.readouterr().err
    assert (tmp_path / "model").read_text() == "keep me"


def test_train_replaces_a_bundle_and_fills_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    assert train(tmp_path, tmp_path / "m") == 0
    assert train(tmp_path, tmp_path / "m") == 0
    assert (tmp_path / "m" / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--log-format", "<Date> <Level>", "--log-format: the format needs a <Content> field"),
     ("--multiline", "([", "--multiline: not a valid regular expression")],
)
def test_train_and_score_refuse_bad_log_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    log = tmp_path / "app.log"
    log.write_text("2026-11-28T12:00:00Z INFO svc started\n")
    assert main(["train", "--model", "iforest", "--input", str(log), "--out", str(tmp_path / "m"), flag, value]) == 1
    assert message in capsys.readouterr().err
    assert train(tmp_path, tmp_path / "b") == 0
    capsys.readouterr()
    assert main(["score", "--model", str(tmp_path / "b"), "--input", str(log), flag, value]) == 1
    assert message in capsys.readouterr().err


def test_parse_names_a_folder_as_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(tmp_path)]) == 1
    assert "a folder, not a file" in capsys.readouterr().err


def test_replay_state_dir_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "plain").write_text("x")
    log = tmp_path / "logs" / "a.log"
    log.write_text("2026-11-28T12:00:00Z INFO svc started\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"service:\n  state_dir: {tmp_path / 'st'}\n" + INPUT.format(logs=tmp_path / "logs"))
    assert main(["replay", "-c", str(cfg), "--quiet", "--state-dir", str(tmp_path / "plain" / "s"), str(log)]) == 1
    assert "--state-dir" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, where nothing can be created")
def test_run_exits_78_when_state_dir_cannot_be_created(tmp_path: Path) -> None:
    """`check` only warns (it may run as another user); `run` must refuse before starting, not crash."""
    (tmp_path / "logs").mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("service:\n  state_dir: /proc/logwarden-state\n" + INPUT.format(logs=tmp_path / "logs"))
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "run", "-c", str(cfg)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "NOTIFY_SOCKET": ""})
    assert proc.returncode == 78, proc.stderr
    assert f"{cfg}:2: service.state_dir: cannot keep state in /proc/logwarden-state" in proc.stderr
    assert "Traceback" not in proc.stderr
    check = subprocess.run([sys.executable, "-m", "agent.cli", "check", "-c", str(cfg)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0 and "is not writable by this user" in check.stderr


def test_evaluate_report_path_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train(tmp_path, tmp_path / "m") == 0
    (tmp_path / "taken").write_text("x")
    args = ["evaluate", "--model", str(tmp_path / "m"), "--normal", str(tmp_path / "s.txt"),
            "--abnormal", str(tmp_path / "s.txt"), "--report", str(tmp_path / "taken")]
    assert main(args) == 1
    assert "--report" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "x"
