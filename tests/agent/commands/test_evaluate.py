"""`logwarden evaluate` argument handling and the detection-delay mode on a generated log with labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from agent.generator import GENERATOR_FORMAT, INCIDENT_TYPES


def test_sessions_mode_needs_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model", str(tmp_path), "--normal", str(tmp_path / "n.txt")]) != 0
    assert "--abnormal" in capsys.readouterr().err


def test_delay_mode_needs_labels_and_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model", str(tmp_path), "--labels", str(tmp_path / "l.jsonl")]) != 0
    assert "--input" in capsys.readouterr().err


def test_detection_delay_per_incident_type_on_a_generated_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    normal, incidents, labels, bundle = (tmp_path / n for n in ("normal.log", "inc.log", "labels.jsonl", "bundle"))
    assert main(["generate", "--out", str(normal), "--duration", "10m", "--incidents", "none", "--rate", "5", "--seed", "3"]) == 0
    assert main(["generate", "--out", str(incidents), "--duration", "10m", "--rate", "5", "--seed", "4",
                 "--labels", str(labels)]) == 0
    assert main(["train", "--model", "iforest", "--input", str(normal), "--log-format", GENERATOR_FORMAT,
                 "--window", "{type: sliding, size: 60s, step: 30s}", "--out", str(bundle)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(bundle), "--labels", str(labels), "--input", str(incidents),
                 "--log-format", GENERATOR_FORMAT, "--grace", "60"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["per_type"]) == set(INCIDENT_TYPES)
    for row in doc["per_type"].values():
        assert row["incidents"] == 1
        assert row["detected"] in (0, 1)
        assert (row["delay_median_s"] is None) == (row["detected"] == 0)
        if row["detected"]:
            assert row["delay_median_s"] >= 0
    assert 0 < doc["normal_hours"] < 10 / 60
    assert doc["false_alerts"] <= doc["alerts"] <= doc["windows"]
