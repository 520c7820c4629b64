"""`logwarden demo`, the README's first command, runs in the test suite: real pipeline, shipped model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def test_demo_catches_the_injected_incidents(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "demo", "--keep", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    # The new ERROR template is caught by novelty, with the line itself as evidence.
    novelty = re.search(r"novelty: New ERROR message: (.+)", out)
    assert novelty is not None, out
    # The latency spike changes no template: only the params detector can see it, naming the slot.
    assert re.search(r"params: duration p95 \S+ → \S+", out), out
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert {a["detector"] for a in alerts} >= {"novelty", "params"}
    assert all(a["evidence"]["samples"] for a in alerts if a["status"] == "firing")
    # Alerts fire only from the incidents on: nothing while the baseline was being learned.
    assert "no alert so far: none" in out
