"""Sessions files: DeepLog's format with blank lines, named keys and over-long sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.sessions import SessionsError, fold_by_session, key_to_id, read_sessions, session_windows


def test_blank_lines_skipped_and_line_numbers_kept(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("5 5 22\n\n   \n11 9 E7\n")
    sf = read_sessions(f)
    assert sf.sessions == [["5", "5", "22"], ["11", "9", "E7"]]
    assert sf.lines == [1, 4]


def test_named_keys_get_stable_ids_that_never_collide_with_numbers() -> None:
    assert key_to_id("22") == 22
    assert key_to_id("E7") == key_to_id("E7") != key_to_id("E8")
    assert key_to_id("E7") > 10**12
    (w,), _ = session_windows([["E7", "3"]], max_length=10)
    assert w.events == [key_to_id("E7"), 3]
    assert w.templates == {key_to_id("E7"): "E7"}


def test_long_sessions_split_and_fold_back_to_the_worst_part() -> None:
    windows, owner = session_windows([["1"] * 5, ["2"]], max_length=2)
    assert [w.events for w in windows] == [[1, 1], [1, 1], [1], [2]]
    assert owner == [0, 0, 0, 1]
    assert fold_by_session([0.1, 0.9, 0.2, 0.3], owner, 2) == [0.9, 0.3]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SessionsError, match=r"nope\.txt"):
        read_sessions(tmp_path / "nope.txt")
