"""Shared fixtures (helpers for the hook tests live in hookutil.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hookutil import PyRunner

pytest_plugins = ["pytester"]


@pytest.fixture
def py(tmp_path: Path) -> PyRunner:
    """A scratch project in tmp_path plus a runner for fresh interpreters."""
    return PyRunner(tmp_path)
