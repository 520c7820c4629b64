"""Where the shipped example config and model bundles are, in a source checkout or an installed wheel.

A checkout has them beside the packages (`config/`, `models/`); `pip install .` copies them to
`<prefix>/share/logwarden/` (pyproject's data-files). `LOGWARDEN_SHARE` overrides both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from agent.errors import LogwardenError


def share_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("LOGWARDEN_SHARE")
    if env:
        dirs.append(Path(env))
    dirs.append(Path(__file__).resolve().parents[1])
    dirs.append(Path(sys.prefix) / "share" / "logwarden")
    return dirs


def shipped(relative: str) -> Path:
    """The first existing `relative` path (e.g. `models/demo`) among the share directories."""
    for base in share_dirs():
        candidate = base / relative
        if candidate.exists():
            return candidate
    searched = ", ".join(str(d) for d in share_dirs())
    raise LogwardenError(f"shipped file {relative} not found (searched {searched}); is logwarden fully installed?")
