"""Recurring causes: episodes are counted apart by the gap, held windows are handed back once a cause has
recurred, and the counts and held windows survive a restart."""

from __future__ import annotations

import json
from pathlib import Path

from agent import recurring
from agent.recurring import RecurringCauses

HOUR = 3600.0


def test_windows_of_one_episode_count_once_and_are_held_until_the_cause_recurs(tmp_path: Path) -> None:
    causes = RecurringCauses(tmp_path / "recurring.json", after=3, gap=HOUR)
    cause = ("+77",)
    for night in range(2):
        for k in range(6):  # an episode's overlapping windows, 10 s apart
            got = causes.flagged(cause, night * 24 * HOUR + 10.0 * k, f"n{night}w{k}")
            assert got.episodes == night + 1 and got.learn == [] and not got.first
    got = causes.flagged(cause, 2 * 24 * HOUR, "n2w0")
    assert got.episodes == 3 and got.first
    assert got.learn == [f"n{n}w{k}" for n in range(2) for k in range(6)] + ["n2w0"]
    again = causes.flagged(cause, 2 * 24 * HOUR + 10.0, "n2w1")  # later windows go straight to learning
    assert again == recurring.Flagged(3, ["n2w1"], False)


def test_a_cause_is_its_own_count_and_none_is_never_learned(tmp_path: Path) -> None:
    causes = RecurringCauses(tmp_path / "recurring.json", after=2, gap=HOUR)
    assert causes.flagged(("+77",), 0.0, "a").episodes == 1
    assert causes.flagged(("-17",), 2 * HOUR, "b").episodes == 1
    assert causes.flagged(("+77", "-17"), 4 * HOUR, "c").episodes == 1
    assert causes.flagged((), 6 * HOUR, "d") == recurring.Flagged(0, [], False)
    assert causes.flagged(("+77",), 30 * 60.0, "e").episodes == 1  # within the gap of the first: same episode
    assert causes.flagged(("+77",), 8 * HOUR, "f").learn == ["a", "e", "f"]


def test_what_keeps_coming_without_a_break_counts_an_episode_per_gap(tmp_path: Path) -> None:
    """A line a deployment added is flagged in every window: one episode per gap since the last one began,
    so it is learned after (after - 1) gaps, not never."""
    causes = RecurringCauses(tmp_path / "recurring.json", after=3, gap=6 * HOUR)
    seen = [causes.flagged(("+5",), 10.0 * k, f"w{k}") for k in range(int(13 * HOUR / 10.0))]
    first = next(k for k, got in enumerate(seen) if got.learn)
    assert 10.0 * first == 12 * HOUR and seen[first].episodes == 3 and seen[first].first
    assert [got.episodes for got in seen[:: int(HOUR / 10.0)]] == [1] * 6 + [2] * 6 + [3]


def test_zero_never_learns(tmp_path: Path) -> None:
    causes = RecurringCauses(tmp_path / "recurring.json", after=0, gap=HOUR)
    for night in range(5):
        assert causes.flagged(("+77",), night * 24 * HOUR, "w") == recurring.Flagged(0, [], False)
    assert not (tmp_path / "recurring.json").exists()


def test_held_windows_are_capped(tmp_path: Path) -> None:
    causes = RecurringCauses(tmp_path / "recurring.json", after=2, gap=HOUR)
    for k in range(recurring.MAX_HELD * 3):
        causes.flagged(("+77",), 10.0 * k, f"w{k}")
    got = causes.flagged(("+77",), 24 * HOUR, "last")
    assert got.learn == [f"w{k}" for k in range(recurring.MAX_HELD)] + ["last"]


def test_episode_counts_and_held_windows_survive_a_restart_and_a_bad_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "recurring.json"
    first = RecurringCauses(path, after=3, gap=HOUR)
    first.flagged(("+77",), 0.0, "a")
    first.flagged(("+77",), 24 * HOUR, "b")  # saved with the new episode: "a"; "b" only by the stop's save
    first.save()
    restarted = RecurringCauses(path, after=3, gap=HOUR)
    assert restarted.episodes(("+77",)) == 2
    got = restarted.flagged(("+77",), 24 * HOUR + 60.0, "c")  # the same episode as before the restart
    assert got.episodes == 2 and got.learn == []
    got = restarted.flagged(("+77",), 48 * HOUR, "d")
    assert got.episodes == 3 and got.learn == ["a", "b", "c", "d"] and got.first

    path.write_text(json.dumps({"kind": recurring.STATE_KIND, "format_version": 1, "causes": [[["+1"], 2, 0.0]]}))
    older = RecurringCauses(path, after=3, gap=HOUR)  # the format before held windows were saved
    assert older.episodes(("+1",)) == 2 and older.flagged(("+1",), 24 * HOUR, "x").learn == ["x"]

    path.write_text(json.dumps({"kind": recurring.STATE_KIND, "format_version": 1, "causes": [[["+1"], "x", 0]]}))
    fresh = RecurringCauses(path, after=3, gap=HOUR)
    assert fresh.episodes(("+1",)) == 0
    assert not path.exists() and list(tmp_path.glob("recurring.json.rejected-*"))


def test_held_windows_are_dropped_with_the_recent_windows_they_would_join(tmp_path: Path) -> None:
    """A changed window spec discards the recent windows; windows held to join them are of the old spec too."""
    path = tmp_path / "recurring.json"
    first = RecurringCauses(path, after=2, gap=HOUR)
    first.flagged(("+77",), 0.0, "a")
    first.save()
    again = RecurringCauses(path, after=2, gap=HOUR, keep_held=False)
    assert again.episodes(("+77",)) == 1
    assert again.flagged(("+77",), 24 * HOUR, "b").learn == ["b"]


def test_the_cause_flagged_longest_ago_makes_room(tmp_path: Path) -> None:
    causes = RecurringCauses(tmp_path / "recurring.json", after=5, gap=HOUR)
    for i in range(recurring.MAX_CAUSES + 1):
        causes.flagged((f"+{i}",), float(i), "w")
    assert causes.episodes(("+0",)) == 0
    assert causes.episodes(("+1",)) == 1 and causes.episodes((f"+{recurring.MAX_CAUSES}",)) == 1
