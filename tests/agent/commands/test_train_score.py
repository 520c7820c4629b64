"""`logwarden train` and `logwarden score` on sessions files, through the real CLI entry point."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agent.cli import main


def sessions(n: int, seed: int, abnormal: bool = False) -> str:
    rnd = random.Random(seed)
    lines = []
    for _ in range(n):
        s = ["5", "5", "22"] + ["11", "9"] * rnd.randint(2, 3) + ["26"] * 3
        if abnormal:
            s = [*s[: rnd.randint(2, 4)], "E_fail"]
        lines.append(" ".join(s))
    return "\n\n".join(lines) + "\n"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "train.txt").write_text(sessions(300, 1))
    (tmp_path / "test.txt").write_text(sessions(20, 2) + sessions(10, 3, abnormal=True))
    return tmp_path


def test_train_then_score(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--model", "iforest", "--sessions", str(data / "train.txt"), "--out", str(data / "m"),
            "--n-estimators", "30", "--max-length", "6"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["score", "--model", str(data / "m"), "--sessions", str(data / "test.txt")]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 30
    flags = [int(f) for _s, f in rows]
    assert sum(flags[20:]) == 10 and sum(flags[:20]) <= 1
    assert all(float(s) >= 0 for s, _f in rows)


def test_train_extrapolates_a_quantile_beyond_the_sessions_when_asked(data: Path) -> None:
    """1,000 sessions cannot show their 0.99999 quantile: without --threshold-tail it is their maximum, with it
    a fitted tail's extrapolation, recorded as such."""
    import json

    rnd = random.Random(7)  # varied enough that the top tenth of scores are not a few tied values
    varied = [["5"] * rnd.randint(1, 4) + ["22"] + ["11", "9"] * rnd.randint(1, 6) + ["26"] * rnd.randint(1, 5)
              for _ in range(1000)]
    (data / "varied.txt").write_text("\n\n".join(" ".join(s) for s in varied) + "\n")
    base = ["train", "--model", "iforest", "--sessions", str(data / "varied.txt"), "--n-estimators", "30",
            "--threshold-quantile", "0.99999"]
    assert main([*base, "--out", str(data / "plain")]) == 0
    assert main([*base, "--threshold-tail", "--out", str(data / "tail")]) == 0
    plain, tail = (json.loads((data / d / "manifest.json").read_text()) for d in ("plain", "tail"))
    assert plain["threshold"]["method"] == "quantile" and "tail_fit" not in plain["training"]
    assert tail["threshold"]["method"] == "peaks over threshold (GPD tail fit)"
    assert tail["training"]["tail_fit"]["n"] == 1000
    assert tail["threshold"]["value"] > plain["threshold"]["value"]


def test_same_seed_same_model(data: Path) -> None:
    for out, seed in (("a", "4"), ("b", "4"), ("c", "5")):
        assert main(["train", "--model", "iforest", "--sessions", str(data / "train.txt"), "--out",
                     str(data / out), "--seed", seed, "--n-estimators", "10"]) == 0
    a, b, c = ((data / x / "model.onnx").read_bytes() for x in "abc")
    assert a == b != c


def test_bad_input_is_a_clear_error(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data / "empty.txt").write_text("\n  \n")
    assert main(["train", "--model", "iforest", "--sessions", str(data / "empty.txt"), "--out", str(data / "e")]) == 1
    assert "empty" in capsys.readouterr().err
    assert not (data / "e").exists()
    assert main(["score", "--model", str(data / "missing"), "--sessions", str(data / "test.txt")]) == 65
    assert "does not exist" in capsys.readouterr().err


def test_unavailable_trainer_is_named(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.training import TRAINERS, TrainingError, resolve_trainer

    TRAINERS["nonesuch"] = "agent.training.nonesuch:train"
    try:
        with pytest.raises(TrainingError, match="not available"):
            resolve_trainer("nonesuch")
    finally:
        del TRAINERS["nonesuch"]


def hdfs_like_log(blocks: range, seed: int, broken: set[int] = frozenset()) -> str:  # type: ignore[assignment]
    rnd = random.Random(seed)
    lines = []
    for b in blocks:
        blk = f"blk_{'-' if b % 2 else ''}{1000 + b}"
        lines.append(f"081109 2035{b % 60:02d} 14{b % 9} INFO dfs.DataNode: Receiving block {blk} src: /10.0.0.{rnd.randint(1, 9)}:5{b}")
        for _ in range(rnd.randint(2, 3)):
            lines.append(f"081109 2035{b % 60:02d} 14{b % 9} INFO dfs.DataNode: Received block {blk} of size {rnd.randint(10, 99)}")
        if b in broken:
            lines.append(f"081109 2035{b % 60:02d} 14{b % 9} WARN dfs.DataNode: Got exception while serving {blk} to /10.0.0.3")
        lines.append(f"081109 2035{b % 60:02d} 14{b % 9} INFO dfs.FSNamesystem: BLOCK* addStoredBlock: {blk} is added")
    return "\n".join(lines) + "\n"


def test_raw_log_input_keeps_template_ids_between_train_and_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fmt = "<Date> <Time> <Pid> <Level> <Component>: <Content>"
    (tmp_path / "train.log").write_text(hdfs_like_log(range(60), 1))
    (tmp_path / "test.log").write_text(hdfs_like_log(range(100, 110), 2, broken={103, 107}))
    window = "{type: session, key: 'blk_-?\\d+', idle: 1d}"
    assert main(["train", "--model", "iforest", "--input", str(tmp_path / "train.log"), "--log-format", fmt,
                 "--window", window, "--out", str(tmp_path / "m"), "--n-estimators", "20"]) == 0
    assert (tmp_path / "m" / "drain.json").exists()
    capsys.readouterr()
    assert main(["score", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "test.log"), "--log-format", fmt]) == 0
    flags = [int(line.split("\t")[1]) for line in capsys.readouterr().out.splitlines()]
    assert flags == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]
