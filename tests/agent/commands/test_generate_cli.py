"""`logwarden generate` as users run it: files, labels, determinism, and refusals without tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.generator import INCIDENT_TYPES

HEADER = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (DEBUG|INFO |WARN |ERROR) \S+ req=([0-9a-f]{12}) ")


def test_writes_log_and_labels_that_point_at_real_lines(tmp_path: Path) -> None:
    log, labels = tmp_path / "app.log", tmp_path / "labels.jsonl"
    assert main(["generate", "--duration", "10m", "--seed", "1", "--out", str(log), "--labels", str(labels)]) == 0
    lines = log.read_text().splitlines()
    docs = [json.loads(x) for x in labels.read_text().splitlines()]
    assert [d["type"] for d in docs] == list(INCIDENT_TYPES)
    for d in docs:
        assert d["start"] < d["end"] and d["lines"] and d["sessions"]
        ids = set(d["sessions"])
        for no in d["lines"]:
            raw = lines[no - 1]
            m = HEADER.match(raw)
            if m:
                assert m.group(2) in ids
            else:
                assert raw.startswith("\t")


def test_same_seed_same_bytes_and_start_moves_timestamps(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "c.log"
    common = ["generate", "--duration", "90s", "--seed", "9", "--rate", "30"]
    assert main([*common, "--out", str(a)]) == 0
    assert main([*common, "--out", str(b)]) == 0
    assert main([*common, "--out", str(c), "--start", "2030-01-02T03:04:05Z", "--incidents", "none"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert c.read_text().startswith("2030-01-02T03:04:0")


def test_no_incidents_writes_empty_labels(tmp_path: Path) -> None:
    labels = tmp_path / "l.jsonl"
    assert main(["generate", "--duration", "60s", "--incidents", "none", "--out", str(tmp_path / "x.log"),
                 "--labels", str(labels)]) == 0
    assert labels.read_text() == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--incidents", "error_burst,meteor"], "unknown incident type 'meteor'"),
        (["--duration", "ten minutes"], "expected a duration"),
        (["--start", "yesterday"], "--start"),
        (["--rate", "0"], "rate must be positive"),
    ],
)
def test_bad_arguments_exit_1_with_a_message(tmp_path: Path, extra: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--out", str(tmp_path / "x.log"), *extra]) == 1
    assert message in capsys.readouterr().err


def test_console_script_streams_to_stdout() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "generate", "--duration", "20s", "--out", "-", "--incidents", "none"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert all(HEADER.match(x) or x.startswith("\t") for x in proc.stdout.splitlines())
    assert len(proc.stdout.splitlines()) > 500
