"""The shipped systemd unit: it verifies, and onnxruntime works under its memory hardening."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "logwarden.service"


def test_unit_declares_notify_and_hardening() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify", "WatchdogSec=", "ExecStartPre=/opt/logwarden/bin/logwarden check", "StateDirectory=logwarden",
        "SupplementaryGroups=adm", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
        "ProtectHome=yes", "MemoryDenyWriteExecute=yes", "RestartPreventExitStatus=78",
    ):
        assert line in text, line
    reload_lines = [line for line in text.splitlines() if line.startswith("ExecReload=")]
    assert "check" in reload_lines[0] and "kill -HUP $MAINPID" in reload_lines[1]


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed on this machine, so the unit cannot be verified here")
    # Point the unit at this environment's real executables; everything else is verified as shipped.
    logwarden = Path(sys.executable).parent / "logwarden"
    assert logwarden.exists(), "the logwarden console script must be installed"
    unit = tmp_path / "logwarden.service"
    unit.write_text(UNIT.read_text().replace("/opt/logwarden/bin/logwarden", str(logwarden)))
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify prints one line per problem it finds in the unit (unknown keys, bad values, missing binaries).
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if "logwarden.service" in line]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def test_security_exposure_is_low(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    proc = subprocess.run([tool, "security", "--offline=yes", str(UNIT)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 and "offline" in proc.stderr:
        pytest.skip(f"this systemd-analyze has no offline security mode: {proc.stderr.strip()}")
    line = next(line for line in proc.stdout.splitlines() if "Overall exposure level" in line)
    exposure = float(line.split(":")[1].split()[0])
    assert exposure <= 2.0, line


MDWE_PROBE = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN: what MemoryDenyWriteExecute does
    print("unsupported"); sys.exit(0)
import numpy as np, onnxruntime as ort
from onnx import TensorProto, helper
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
print(float(sess.run(None, {"x": -np.ones((2, 4), np.float32)})[0].sum()))
import agent.daemon  # the whole daemon import path loads under the same restriction
print("ok")
"""


def test_onnxruntime_runs_with_memory_deny_write_execute() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("MemoryDenyWriteExecute is Linux-only")
    proc = subprocess.run([sys.executable, "-c", MDWE_PROBE], capture_output=True, text=True, timeout=120)
    if proc.stdout.strip() == "unsupported":
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3), so the restriction cannot be reproduced")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.0", "ok"]
