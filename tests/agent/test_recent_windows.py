"""Recent windows for retraining live in files: the last `limit` survive rotations and restarts (of the same
window spec), a torn line is skipped and then trimmed, a write that fails is counted and never raises into
the detector."""

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


SPEC = {"window": {"type": "sliding", "size": 60.0, "step": 10.0}}


def test_a_new_process_keeps_the_last_ones_windows_and_what_it_saved_with_them(tmp_path: Path) -> None:
    first = RecentWindows(tmp_path, limit=4, identity=SPEC)
    assert first.kept == 0 and first.carried is None
    for i in range(7):  # one rotation: the previous segment holds 4, the current 3
        first.append(line(i))
    first.save({"learned_s": 70.0})
    first.close()
    with open(tmp_path / CURRENT, "a") as fh:
        fh.write('{"counts":{"1"')  # a crash mid-write
    again = RecentWindows(tmp_path, limit=4, identity=SPEC)
    assert again.kept == len(again) == 4 and again.carried == {"learned_s": 70.0}
    again.append(line(7))  # starts a whole line: the torn one was cut off
    assert [w["counts"]["1"] for w in read_recent(again.files(), 4)] == [4, 5, 6, 7]
    assert (tmp_path / CURRENT).read_text().count("\n") == 4
    again.close()


def test_windows_of_another_spec_or_without_one_are_discarded(tmp_path: Path) -> None:
    first = RecentWindows(tmp_path, limit=5, identity=SPEC)
    for i in range(3):
        first.append(line(i))
    first.close()
    other = {"window": {"type": "sliding", "size": 300.0, "step": 10.0}}
    changed = RecentWindows(tmp_path, limit=5, identity=other)  # another feature space: not comparable
    assert changed.kept == len(changed) == 0 and changed.files() == [] and changed.carried is None
    changed.append(line(9))
    changed.close()
    unnamed = RecentWindows(tmp_path, limit=5)  # no identity: nothing is kept (a bundle-serving detector)
    assert len(unnamed) == 0 and unnamed.files() == []


def test_a_failing_write_is_counted_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the instance folder should be")
    recent = RecentWindows(blocker, limit=5)
    for i in range(3):
        recent.append(line(i))
    assert recent.write_errors == 3 and len(recent) == 0
