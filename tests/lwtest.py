"""Helpers shared by the test suite (import as `from tests.lwtest import wait_for`; pyproject puts the repo root on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition", interval: float = 0.01) -> None:
    """Poll `condition` until it is truthy; fail naming what never became true. Never sleep to synchronise."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
