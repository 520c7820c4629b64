"""Shared fixtures. Helper functions live in `lwtest.py` so test modules can import them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.lwtest import wait_for


@pytest.fixture
def waiter() -> Callable[..., None]:
    return wait_for
