"""Tiny generated sessions for sequence-model tests: a three-kind grammar and its broken variants.

Normal: read `10 11 12 13`, write `10 11 14 15{1,3} 16 13`, health `20 21`. Abnormal sessions use only
known keys in a wrong order or stop early (what only an order-aware model catches), or carry an unseen key.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest


def normal_sessions(n: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    out: list[list[str]] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.45:
            s = [10, 11, 12, 13]
        elif kind < 0.85:
            s = [10, 11, 14, *([15] * rng.randint(1, 3)), 16, 13]
        else:
            s = [20, 21]
        out.append([str(k) for k in s])
    return out


BROKEN = [
    ["10", "12", "11", "13"],
    ["10", "11", "14", "16", "15", "13"],
    ["10", "11"],
    ["20", "10", "11", "12", "13"],
]
UNKNOWN = [["10", "11", "99", "13"]]


def write_sessions(path: Path, sessions: list[list[str]]) -> Path:
    path.write_text("".join(" ".join(s) + "\n" for s in sessions))
    return path


# One torch thread: on a shared 2-core machine two threads spin against each other on these tiny batches
# (a 12-epoch fit took 13 s with 2 threads, 0.6 s with 1, to the same weights). One training run: the
# restarts have their own test (test_next_event.py), and three fits per bundle would triple the suite.
TINY_LSTM = ["--history", "4", "--embed-dim", "8", "--hidden", "16", "--layers", "1", "--epochs", "40",
             "--batch-size", "16", "--learning-rate", "0.01", "--patience", "6", "--threads", "1", "--restarts", "1"]
TINY_TRANSFORMER = ["--history", "4", "--d-model", "16", "--heads", "2", "--layers", "1", "--ff", "32",
                    "--epochs", "40", "--batch-size", "16", "--learning-rate", "0.01", "--patience", "6", "--threads", "1",
                    "--restarts", "1"]
SHARED_SEED = "7"


def shared_train_args(model: str, train: Path, out: Path) -> list[str]:
    """The `logwarden train` command of the shared bundle of `model` (also used to retrain it for determinism)."""
    tiny = TINY_LSTM if model == "deeplog" else TINY_TRANSFORMER
    return ["train", "--model", model, "--sessions", str(train), "--out", str(out), "--seed", SHARED_SEED, *tiny]


SHARED_SESSIONS = 300


def shared_train_file(directory: Path) -> Path:
    """The normal sessions the shared bundles are trained on, written into `directory`."""
    return write_sessions(directory / "normal.txt", normal_sessions(SHARED_SESSIONS, seed=1))


_SHARED: dict[str, Path] = {}


def shared_bundle(factory: pytest.TempPathFactory, model: str) -> Path:
    """One tiny next-event bundle per model for the whole test session, trained on first use.

    Training and exporting is the slow part of every sequence-model test; the tests that only read a bundle
    (scoring, explanation, evaluate, the detector plugin) share this one. Nothing may write into it.
    """
    if model not in _SHARED:
        from agent.cli import main

        tmp = factory.mktemp(f"shared-{model}")
        train = shared_train_file(tmp)
        out = tmp / "bundle"
        assert main(shared_train_args(model, train, out)) == 0
        _SHARED[model] = out
    return _SHARED[model]
