"""Noop blocks: ops run as plain calls, the storage is not touched (noop.py)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mandala_ast import ArgumentError, Storage, ValuePointer, op
from mandala_ast.runtime import blocks
from mandala_ast.runtime.noop import NoopBlock

RUNS: list[int] = []


@op
def inc(x: int) -> int:
    RUNS.append(x)
    return x + 1


@op
def twice_inc(x: int) -> int:
    return inc(inc(x))


def _files(path: Path) -> dict[str, str]:
    found = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in found if p.is_file()}


def test_a_noop_block_computes_every_call_and_leaves_the_file_byte_identical(tmp_path):
    path = tmp_path / "s.db"
    storage = Storage(path)
    with storage.run():
        inc(1)
    storage.close()
    before = _files(path)
    RUNS.clear()
    storage = Storage(path)
    with storage.run(mode="noop"):
        assert inc(1) == 2 and inc(5) == 6 and twice_inc(7) == 9
        assert inc(ValuePointer("one", 1)) == 2
    storage.close()
    assert RUNS == [1, 5, 7, 8, 1]
    assert _files(path) == before


def test_an_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="noop"):
        Storage(tmp_path / "s.db").run(mode="dry")


def test_a_misspelled_mode_is_a_mandala_error_naming_the_argument(tmp_path):
    """`storage.run(mode="nop")` raised a plain ValueError, not one of the library's errors."""
    with pytest.raises(ArgumentError, match=r"storage\.run: mode= must be 'run' or 'noop', not 'nop'") as caught:
        Storage(tmp_path / "s.db").run(mode="nop")
    assert isinstance(caught.value, ValueError)


PIPE = """
from mandala_ast import op

RUNS = []

@op
def inc(x):
    RUNS.append(x)
    return x + 1

def run(storage):
BLOCK
"""


def _run_pipe_twice_under_the_variable(tmp_path, block: str, compiled: bool) -> str:
    """pipe.py with ``block`` as run()'s body, run twice in a new process with
    MANDALA_AST_NOOP=1: prints both results and the bodies run, and leaves the storage's
    files byte for byte as they were."""
    path = tmp_path / "s.db"
    (tmp_path / "pipe.py").write_text(PIPE.replace("BLOCK", textwrap.indent(textwrap.dedent(block), "    ")))
    Storage(path).close()
    before = _files(path)
    load = (f"pipe = mandala_ast.compile_module({str(tmp_path / 'pipe.py')!r}, name='pipe')" if compiled
            else f"sys.path.insert(0, {str(tmp_path)!r}); import pipe")
    code = (
        f"import sys, mandala_ast\n{load}\n"
        f"print(pipe.run(mandala_ast.Storage({str(path)!r})), pipe.run(mandala_ast.Storage({str(path)!r})), sorted(pipe.RUNS))"
    )
    env = {**os.environ, "MANDALA_AST_NOOP": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert _files(path) == before
    return out.stdout


def test_the_environment_variable_makes_every_block_noop_in_compiled_code(tmp_path):
    out = _run_pipe_twice_under_the_variable(tmp_path, """
        with storage:
            y = inc(1)
            z = inc(y)
        return z
    """, compiled=True)
    assert out.split("[")[0].split() == ["3", "3"] and "[1, 1, 2, 2]" in out


def test_with_storage_under_the_environment_variable_leaves_no_block_open(tmp_path, monkeypatch):
    monkeypatch.setenv("MANDALA_AST_NOOP", "1")
    storage = Storage(tmp_path / "s.db")
    with storage:
        assert inc(1) == 2
    assert blocks.state.block is None
    with storage.run(mode="run") as same:  # the variable wins over the argument
        assert same is storage and isinstance(blocks.state.block, NoopBlock)
    assert blocks.state.block is None


@pytest.mark.parametrize("compiled", [False, True])
def test_batch_blocks_under_the_environment_variable_run_plain_calls_and_store_nothing(tmp_path, compiled):
    """A debugging run with MANDALA_AST_NOOP=1 stored what its batch blocks computed, and
    loaded stored results instead of running the bodies one meant to step through."""
    out = _run_pipe_twice_under_the_variable(tmp_path, """
        with storage.batch(executor="threads"):
            ys = [inc(x) for x in range(3)]
            total = sum(ys)
        return total
    """, compiled)
    assert out.split()[:2] == ["6", "6"] and "[0, 0, 1, 1, 2, 2]" in out


def test_a_noop_batch_block_is_the_block_with_empty_stats(tmp_path, monkeypatch):
    monkeypatch.setenv("MANDALA_AST_NOOP", "1")
    with Storage(tmp_path / "s.db").batch() as batch:
        assert inc(1) == 2
    assert batch.stats.dispatched == batch.stats.computed == 0
    assert blocks.state.block is None
