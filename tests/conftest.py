"""Shared fixtures (helpers for the hook tests live in hookutil.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hookutil import PyRunner

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True, scope="session")
def _compiled_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Processes the tests start cache compiled modules in a scratch directory, not ~/.cache
    (this suite runs with bytecode writing off, so compiled modules go there)."""
    os.environ["MANDALA_AST_CACHE_DIR"] = str(tmp_path_factory.mktemp("compiled-cache"))


@pytest.fixture
def py(tmp_path: Path) -> PyRunner:
    """A scratch project in tmp_path plus a runner for fresh interpreters."""
    return PyRunner(tmp_path)
