"""Fixtures for the tail tests (helpers live in tailkit.py so test modules can import them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plugins.inputs.tail import TailInput
from tests.plugins.inputs.tail.tailkit import Harness


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    for inp in list(h.running):
        inp.stop()


@pytest.fixture
def drain() -> Callable[[TailInput], None]:
    """Run passes until one reads nothing new (the synchronous way to 'catch up')."""

    def run(inp: TailInput) -> None:
        for _ in range(100):
            if not inp.poll_once():
                return

    return run
