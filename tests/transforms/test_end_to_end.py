"""Transformed code against the real runtime (``mandala_ast.runtime.compiled``) and Storage."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from cstutil import assert_line_stable

from mandala_ast.transforms import transform_source

SOURCE = textwrap.dedent(
    """\
    '''A user module.'''
    from mandala_ast import Storage, op, workflow

    CALLS = []

    @op
    def inc(x: int) -> int:
        CALLS.append(x)
        return x + 1

    @workflow
    def twice(x):
        y = inc(x)
        return inc(y)

    def main(path):
        storage = Storage(path)
        with storage.run():
            y = inc(1)
            z = inc(2)
            w = inc(y)
        with storage.run():
            t = twice(10)
        return y, z, w, t
    """
)


def load(tmp_path: Path, name: str) -> dict:
    """Write the module, compile its transformed text under the real path, execute it."""
    path = tmp_path / f"{name}.py"
    path.write_text(SOURCE)
    result = transform_source(SOURCE, str(path))
    assert result.changed
    assert_line_stable(SOURCE, result.source)
    namespace = {"__name__": name, "__file__": str(path)}
    module = type(sys)(name)
    module.__dict__.update(namespace)
    sys.modules[name] = module
    try:
        exec(compile(result.source, str(path), "exec", dont_inherit=True), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module.__dict__


@pytest.fixture
def compiled(tmp_path: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("mandala_ast.runtime.compiled")
    namespace = load(tmp_path, "e2e_user_module")
    yield namespace
    sys.modules.pop("e2e_user_module", None)


def test_y_z_w_runs_the_body_twice(compiled: dict, tmp_path: Path) -> None:
    """``y = inc(1); z = inc(2); w = inc(y)`` executes inc twice."""
    y, z, w, t = compiled["main"](str(tmp_path / "s.db"))
    assert (y, z, w, t) == (2, 3, 3, 12)
    assert compiled["CALLS"] == [1, 2, 10, 11]


def test_second_run_loads_everything(compiled: dict, tmp_path: Path) -> None:
    """Nothing executes again in a later block over the same storage."""
    compiled["main"](str(tmp_path / "s.db"))
    compiled["CALLS"].clear()
    assert compiled["main"](str(tmp_path / "s.db")) == (2, 3, 3, 12)
    assert compiled["CALLS"] == []
