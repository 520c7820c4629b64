"""Followed names that are symlinks (Kubernetes' /var/log/containers/*.log, a `current` link): the rotated
rest of the file lies beside the link's target, not beside the link, and must be found there.

Passes are driven synchronously (`poll_once`), so every step is deterministic.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.plugins.inputs.tail.tailkit import Harness, append

Drain = Callable[..., None]


def _linked(harness: Harness, tmp_path: Path) -> Path:
    """`logs/app.log` -> `pods/app.log`; returns the target (the file the writer and logrotate touch)."""
    pods = tmp_path / "pods"
    pods.mkdir()
    target = pods / "app.log"
    append(target, "l1\n")
    os.symlink(target, harness.dir / "app.log")
    return target


def test_target_renamed_while_stopped_reads_its_unread_rest(harness: Harness, drain: Drain, tmp_path: Path) -> None:
    target = _linked(harness, tmp_path)
    inp, sink = harness.make()
    drain(inp)
    harness.stop(inp)
    assert sink.lines() == ["l1"]
    append(target, "l2-unread\n")
    os.rename(target, target.with_name("app.log.1"))  # kubelet / logrotate rotate the target
    append(target, "l3-new\n")
    inp, sink = harness.make()
    drain(inp)
    harness.stop(inp)
    assert sink.lines() == ["l2-unread", "l3-new"]


def test_target_copytruncated_while_behind_reads_the_rest_from_the_copy(
    harness: Harness, drain: Drain, tmp_path: Path
) -> None:
    target = _linked(harness, tmp_path)
    inp, sink = harness.make()
    drain(inp)
    append(target, "behind-2\n")  # written, not yet read ...
    shutil.copyfile(target, target.with_name("app.log.1"))
    os.truncate(target, 0)  # ... when the target is copied and truncated
    append(target, "n3\n")
    drain(inp)
    harness.stop(inp)
    assert sink.lines() == ["l1", "behind-2", "n3"]


def test_target_copytruncated_while_stopped_reads_the_rest_from_the_copy(
    harness: Harness, drain: Drain, tmp_path: Path
) -> None:
    target = _linked(harness, tmp_path)
    inp, sink = harness.make()
    drain(inp)
    harness.stop(inp)
    append(target, "l2-unread\n")
    shutil.copyfile(target, target.with_name("app.log.1"))
    os.truncate(target, 0)
    append(target, "l3-new\n")
    inp, sink = harness.make()
    drain(inp)
    harness.stop(inp)
    assert sink.lines() == ["l2-unread", "l3-new"]
