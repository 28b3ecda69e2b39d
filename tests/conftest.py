"""Shared fixtures (helpers for the hook tests live in hookutil.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hookutil import PyRunner

import mandala_ast

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True, scope="session")
def _compiled_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Processes the tests start cache compiled modules in a scratch directory, not ~/.cache
    (this suite runs with bytecode writing off, so compiled modules go there)."""
    os.environ["MANDALA_AST_CACHE_DIR"] = str(tmp_path_factory.mktemp("compiled-cache"))


@pytest.fixture(autouse=True, scope="session")
def _subprocesses_import_this_tree() -> None:
    """Processes the tests start import this tree's mandala_ast: its directory first on
    PYTHONPATH, and the entries given made absolute. ``PYTHONPATH=.`` names the tree only from
    its root: pytester runs pytest in a temporary directory, where "." is that directory, and
    those runs imported the editable install's checkout (another branch's code) instead."""
    given = [os.path.abspath(entry) for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(Path(__file__).resolve().parent.parent), *given]))


@pytest.fixture
def py(tmp_path: Path) -> PyRunner:
    """A scratch project in tmp_path plus a runner for fresh interpreters."""
    return PyRunner(tmp_path)


@pytest.fixture
def compile_user(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[str, str], ModuleType]]:
    """Compile a user module's ``source`` through the compiler, as a module named after
    ``prefix`` and this test (compiled ops are named by module: each test gets its own ops),
    taken out of ``sys.modules`` after the test."""
    names: list[str] = []

    def compile_(source: str, prefix: str) -> ModuleType:
        path = tmp_path / f"{prefix}_user.py"
        path.write_text(source)
        names.append(prefix + "_" + "".join(c if c.isalnum() else "_" for c in request.node.name))
        return mandala_ast.compile_module(path, name=names[-1])

    yield compile_
    for name in names:
        sys.modules.pop(name, None)
