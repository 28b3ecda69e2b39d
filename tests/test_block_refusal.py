"""Blocks refused while a command imports a user's module (runtime/block_refusal.py)."""

from __future__ import annotations

import pytest

from mandala_ast import MandalaError, Storage, op
from mandala_ast.runtime.block_refusal import blocks_refused

calls: list[int] = []


@op
def counted(x):
    calls.append(x)
    return x + 1


@pytest.mark.parametrize("enter", [lambda s: s.run(), lambda s: s.batch(), lambda s: s])
def test_a_block_entered_while_refused_raises_before_any_call(tmp_path, enter):
    storage = Storage(tmp_path / "s.db")
    with blocks_refused("mandala-ast why --import s.py"), pytest.raises(MandalaError) as info:
        with enter(storage):
            counted(1)
    assert "mandala-ast why --import s.py imports the module only to read its ops' code" in str(info.value)
    assert calls == [] and storage.df(counted).empty


def test_blocks_are_allowed_again_after_and_refusals_nest(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with blocks_refused("outer"):
        with blocks_refused("inner"):
            pass
        with pytest.raises(MandalaError, match="^outer imports"):
            storage.run().__enter__()
    with storage.run():
        assert counted(2) == 3
