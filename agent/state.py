"""Atomic state files: write a temp file beside the target, fsync it, rename it over, fsync the folder.

A crash at any point leaves either the old file or the new one, never a torn one. Every JSON state file
carries `format_version` and `kind`; readers refuse what they do not know and the caller keeps the refused
file aside (`<name>.rejected-<time>`) instead of overwriting it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.errors import StateError


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def write_json_atomic(path: str | Path, kind: str, version: int, body: dict[str, Any]) -> None:
    doc = {"kind": kind, "format_version": version, **body}
    write_atomic(path, json.dumps(doc, separators=(",", ":"), ensure_ascii=False))


def read_json_state(path: str | Path, kind: str, versions: set[int]) -> dict[str, Any]:
    """Read a state file written by `write_json_atomic`; StateError names what is wrong with it."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise StateError(str(p), f"cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(str(p), f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise StateError(str(p), "not a JSON object")
    if doc.get("kind") != kind:
        raise StateError(str(p), f"expected a {kind} state file, found kind {doc.get('kind')!r}")
    if doc.get("format_version") not in versions:
        raise StateError(str(p), f"unsupported format_version {doc.get('format_version')!r}")
    return doc


def set_aside(path: str | Path) -> Path:
    """Move a refused state file out of the way, keeping it for inspection."""
    p = Path(path)
    dest = p.with_name(f"{p.name}.rejected-{int(time.time())}")
    os.replace(p, dest)
    return dest
