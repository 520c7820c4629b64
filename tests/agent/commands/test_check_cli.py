"""`logwarden check` and `logwarden plugins` as a user runs them: exit codes and one-paragraph errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "logwarden.yaml"


def lw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_example_config_is_valid() -> None:
    proc = lw("check", "-c", str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    assert "configuration is valid" in proc.stdout


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("rotate_wait: 5s", "rotate_wiat: 5s"), ":23: pipeline.inputs[0].rotate_wiat: unknown key (did you mean 'rotate_wait'?)"),
        (("bucket: 1m", "bucket: often"), ":40: pipeline.detectors[1].bucket: expected a duration"),
        (("name: novelty", "name: noveltty"), ":36: pipeline.detectors[0].name: no detector plugin named 'noveltty' (did you mean 'novelty'?)"),
        (("read_from: end", "read_from: middle"), ":22: pipeline.inputs[0].read_from: expected one of beginning, end"),
        (("      match: app\n      model: auto", "      match: app\n      model: /nonexistent/bundle"), "pipeline.detectors[3].model:"),
        (("  log_level: info", "  log_level: info\n  log_level: debug"), "key is set twice"),
        (("    listen: 127.0.0.1:2020", "    listen: [oops"), "invalid YAML"),
    ],
)
def test_errors_exit_78_naming_file_line_and_key(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    text = EXAMPLE.read_text()
    assert edit[0] in text
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text.replace(edit[0], edit[1], 1))
    proc = lw("check", "-c", str(cfg))
    assert proc.returncode == 78, proc.stdout + proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(cfg) in proc.stderr


def test_unset_required_secret_and_missing_file(tmp_path: Path) -> None:
    cfg = tmp_path / "secret.yaml"
    cfg.write_text(EXAMPLE.read_text().replace("    # - name: webhook\n    #   url: https://hooks.example.internal/logwarden\n"
                                               "    #   secret:", "    - name: webhook\n      url: https://hooks.example.internal/x\n      secret:"))
    env = {k: v for k, v in os.environ.items() if k != "LOGWARDEN_WEBHOOK_SECRET"}
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "check", "-c", str(cfg)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 78
    assert "LOGWARDEN_WEBHOOK_SECRET is not set: set the webhook secret" in proc.stderr
    missing = lw("check", "-c", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 78 and "config file not found" in missing.stderr


def test_secret_is_redacted_in_printed_config(tmp_path: Path) -> None:
    cfg = tmp_path / "secret.yaml"
    cfg.write_text(EXAMPLE.read_text().replace("    # - name: webhook\n    #   url: https://hooks.example.internal/logwarden\n"
                                               "    #   secret:", "    - name: webhook\n      url: https://hooks.example.internal/x\n      secret:"))
    proc = lw("check", "--print", "-c", str(cfg), env={"LOGWARDEN_WEBHOOK_SECRET": "hunter2-very-secret"})
    assert proc.returncode == 0, proc.stderr
    assert "hunter2-very-secret" not in proc.stdout + proc.stderr
    assert '"secret": "***"' in proc.stdout


def test_plugins_lists_every_builtin_with_options() -> None:
    proc = lw("plugins")
    assert proc.returncode == 0, proc.stderr
    for key in ("input.tail", "parser.format", "detector.iforest", "detector.novelty", "detector.volume",
                "detector.params", "output.slack", "output.webhook", "output.alertmanager", "output.file"):
        assert f"\n{key}" in "\n" + proc.stdout, key
    assert "unavailable" not in proc.stdout
    one = lw("plugins", "--describe", "output.slack")
    assert "webhook_url" in one.stdout and "[secret]" in one.stdout


def test_help_lists_commands() -> None:
    proc = lw("--help")
    assert proc.returncode == 0
    for cmd in ("run", "check", "demo", "replay", "parse", "train", "score", "evaluate", "generate", "plugins"):
        assert cmd in proc.stdout
