from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.plugin import PluginContext, Sent
from agent.types import Alert, AlertStatus, Evidence, Record, Severity
from plugins.outputs.stdout import StdoutConfig, StdoutOutput


def test_records_and_alerts_are_one_json_object_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = StdoutOutput(StdoutConfig(), PluginContext(instance="output.stdout.0", state_dir=tmp_path, host="h"))
    out.start()
    out.write_records([Record(tag="t", source="s", raw="x\ny", offset=7, message="x\ny")])
    alert = Alert(
        fingerprint="f", status=AlertStatus.RESOLVED, severity=Severity.INFO, title="T", summary="S",
        evidence=Evidence(), host="h", source="s", detector="d", score=1.0, threshold=0.5, first_seen=0.0,
        last_seen=1.0, id="f-1",
    )
    assert isinstance(out.deliver([alert]), Sent)
    out.stop()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    rec, al = (json.loads(line) for line in lines)
    assert rec["raw"] == "x\ny" and rec["offset"] == 7
    assert al["status"] == "resolved" and al["id"] == "f-1" and al["schema_version"] == 1
