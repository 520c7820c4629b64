"""Recent windows for retraining live in files: the last `limit` survive rotations, a torn line is skipped,
a write that fails is counted and never raises into the detector."""

from __future__ import annotations

import json
from pathlib import Path

from agent.recent_windows import CURRENT, PREVIOUS, RecentWindows, read_recent


def line(i: int) -> str:
    return json.dumps({"counts": {"1": i}}, separators=(",", ":"))


def test_the_last_limit_windows_survive_rotations(tmp_path: Path) -> None:
    recent = RecentWindows(tmp_path / "inst", limit=5)
    assert len(recent) == 0 and recent.files() == []
    for i in range(12):
        recent.append(line(i))
    assert len(recent) == 5
    assert [w["counts"]["1"] for w in read_recent(recent.files(), 5)] == [7, 8, 9, 10, 11]
    sizes = [len(Path(f).read_text().splitlines()) for f in recent.files()]
    assert sizes == [5, 2]  # two segments bound the disk too: twice the limit in lines at most
    recent.close()


def test_a_torn_last_line_and_a_vanished_segment_are_skipped(tmp_path: Path) -> None:
    recent = RecentWindows(tmp_path, limit=10)
    for i in range(3):
        recent.append(line(i))
    with open(tmp_path / CURRENT, "a") as fh:
        fh.write('{"counts":{"1"')  # a crash mid-write
    assert [w["counts"]["1"] for w in read_recent([str(tmp_path / PREVIOUS), *recent.files()], 10)] == [0, 1, 2]


def test_a_new_process_starts_without_the_last_ones_windows(tmp_path: Path) -> None:
    first = RecentWindows(tmp_path, limit=2)
    for i in range(5):
        first.append(line(i))
    first.close()
    again = RecentWindows(tmp_path, limit=2)
    assert len(again) == 0 and again.files() == []


def test_a_failing_write_is_counted_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the instance folder should be")
    recent = RecentWindows(blocker, limit=5)
    for i in range(3):
        recent.append(line(i))
    assert recent.write_errors == 3 and len(recent) == 0
