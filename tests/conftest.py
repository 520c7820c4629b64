"""Shared fixtures. Helper functions live in `lwtest.py` so test modules can import them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import structlog

from tests.lwtest import wait_for


@pytest.fixture
def waiter() -> Callable[..., None]:
    return wait_for


@pytest.fixture(autouse=True)
def _structlog_restored() -> Iterator[None]:
    """A command run in-process points structlog at that test's captured stderr (`logsetup.configure`);
    once pytest closes that stream, every later test that logs would fail writing to it."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
