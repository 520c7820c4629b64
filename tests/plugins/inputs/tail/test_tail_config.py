"""The tail input's config checks that look outside the config (`preflight`), through the real loader."""

from __future__ import annotations

from pathlib import Path

from agent.config import load_config
from agent.registry import Registry


def _warnings(tmp_path: Path, *patterns: str) -> list[str]:
    cfg = tmp_path / "it.yaml"
    paths = ", ".join(f"'{p}'" for p in patterns)
    cfg.write_text(f"pipeline:\n  inputs:\n    - name: tail\n      path: [{paths}]\n  outputs: [{{name: stdout}}]\n")
    return load_config(cfg, Registry.default()).warnings


def test_a_glob_whose_folder_does_not_exist_warns_at_its_key(tmp_path: Path) -> None:
    """`/typo/*.log` checked as valid and then tailed nothing, silently: a folder that is not there is most
    likely a typo, so check says so (a warning: some programs create their log folder when they start)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("x\n")
    typo = f"{tmp_path}/lgos/*.log"
    deep = f"{tmp_path}/nope/**/*.log"
    plain = f"{tmp_path}/missing/app.log"
    warnings = _warnings(tmp_path, f"{logs}/*.log", typo, deep, plain)
    assert len(warnings) == 3, warnings
    for i, (pattern, folder) in enumerate(((typo, "lgos"), (deep, "nope"), (plain, "missing")), start=1):
        (w,) = [w for w in warnings if f"pipeline.inputs[0].path[{i}]:" in w]
        assert f"{tmp_path}/{folder}" in w and "does not exist" in w and pattern in w


def test_a_glob_whose_folder_exists_but_is_empty_does_not_warn(tmp_path: Path) -> None:
    """Logs appear after the daemon starts (a service not yet started, a rotation in progress, a pod not yet
    scheduled): a pattern that matches nothing in a folder that exists is normal and must stay quiet."""
    (tmp_path / "logs" / "pods").mkdir(parents=True)
    assert _warnings(tmp_path, f"{tmp_path}/logs/*.log", f"{tmp_path}/logs/*/app.log",
                     f"{tmp_path}/logs/pods/**/*.log", f"{tmp_path}/logs/later.log") == []


def test_a_pattern_that_matches_a_file_never_warns_even_through_a_missing_literal_folder(tmp_path: Path) -> None:
    """A match is what counts: `/a/*/x.log` matching a file is fine whatever its parts look like."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.log").write_text("x\n")
    assert _warnings(tmp_path, f"{tmp_path}/a/*/x.log", f"{tmp_path}/a/b/x.log") == []
