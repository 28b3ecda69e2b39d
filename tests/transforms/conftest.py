"""Fixtures for the transform tests (helpers live in cstutil.py)."""

from __future__ import annotations

import pytest
from cstutil import FakeRuntime


@pytest.fixture
def rt() -> FakeRuntime:
    return FakeRuntime()
