"""Blocks: the Block protocol, nesting on one per-thread stack, lent blocks (runtime/blocks.py)."""

from __future__ import annotations

import pytest

from mandala_ast import NewCallError, Storage, op
from mandala_ast.runtime import blocks
from mandala_ast.runtime.blocks import Block, RunBlock
from mandala_ast.runtime.query.block import QueryBlock


@op
def inc(x: int) -> int:
    return x + 1


def test_run_and_query_blocks_declare_the_block_protocol():
    assert Block in RunBlock.__mro__ and Block in QueryBlock.__mro__
    assert QueryBlock.allow_new_calls is False


def test_nested_blocks_restore_the_outer_block_on_exit():
    first, second = Storage(), Storage()
    outer = first.run()
    with outer:
        inner = second.run()
        with inner:
            assert blocks.state.block is inner
        assert blocks.state.block is outer
    assert blocks.state.block is None and blocks.state.stack == []


def test_with_storage_exits_the_block_it_entered():
    storage = Storage()
    with storage:
        entered = blocks.state.block
        with storage.run():
            pass
        assert blocks.state.block is entered
    assert blocks.state.block is None


def test_a_block_entered_twice_stays_open_until_its_last_exit():
    block = Storage().run()
    with block:
        with block:
            pass
        assert block.is_open
    assert not block.is_open


def test_a_blocks_own_rule_on_new_calls_wins_over_the_storages(tmp_path):
    storage = Storage(tmp_path / "rule.db")
    storage.allow_new_calls(False)
    with storage.run(allow_new_calls=True):
        assert inc(1) == 2
    with pytest.raises(NewCallError, match="op .*inc has no stored call"):
        with storage.run():
            inc(2)
    storage.allow_new_calls(True)
    with pytest.raises(NewCallError):
        with storage.run(allow_new_calls=False):
            inc(3)
