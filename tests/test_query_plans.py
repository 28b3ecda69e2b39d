"""Query plans (query/sql.py): SQLite's work grows with the rows a pattern matches, not with
every stored call. Counted in SQLite virtual-machine steps, not seconds, so no test can flake."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import mandala_ast
from mandala_ast import Storage

CHAIN = """
from mandala_ast import Q, op

@op
def inc(x: int) -> int:
    return x + 1

@op
def add(x: int, y: int) -> int:
    return x + y

@op
def dec(x: int) -> int:
    return x - 1

def build(storage, n):
    with storage.run():
        for i in range(n):
            y = inc(i)
            z = add(y, i)
            dec(i)

def pattern(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        z = add(y, x)
    return q

def loop_point(storage):
    with storage.query() as q:
        for x in [3, 5]:
            y = inc(x)
            z = add(y, x)
    return q

def producer_literal(storage):
    with storage.query() as q:
        y = inc(3)
        z = add(y, Q())
    return q

@op
def sub(x: int, y: int) -> int:  # never computed: the guarded call below matches nothing
    return x - y

def joined_by_a_guarded_call(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        w = dec(x)
        if y > 0:
            z = sub(y, w)
    return q

def with_an_unlinked_call(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        z = add(y, x)
        w = dec(x)
    return q

def build_branching(storage, n):
    with storage.run():
        for i in range(n):
            a = inc(i)
            b = inc(a)
            c = dec(a)
            d = add(b, i)

def branching(storage):
    with storage.query() as q:
        x = Q()
        a = inc(x)
        b = inc(a)
        c = dec(a)
        d = add(b, x)
    return q

def guarded_point(storage):
    with storage.query() as q:
        for x in [3, 4]:
            y = inc(x)
            if x % 2 == 0:
                z = add(y, x)
    return q

def guarded_everywhere(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        if x % 2 == 0:
            z = add(y, x)
    return q

def guarded(storage, n):
    with storage.query() as q:
        for x in range(n):
            y = inc(x)
            if x % 2 == 0:
                z = add(y, x)
    return q
"""


@pytest.fixture
def chain(tmp_path):
    (tmp_path / "chain_ops.py").write_text(textwrap.dedent(CHAIN))
    yield mandala_ast.compile_module(tmp_path / "chain_ops.py", name="chain_ops")
    sys.modules.pop("chain_ops", None)


def test_a_two_op_pattern_does_work_linear_in_the_calls(chain, tmp_path):
    # Without planner statistics SQLite took the version index for selective and rescanned
    # every add call once per inc call: quadratic, minutes at 1M calls.
    steps = {n: _query_steps(chain, chain.pattern, tmp_path / f"{n}.db", n, n) for n in (200, 800)}
    assert steps[800] < 6 * steps[200]  # 4x the calls; quadratic would be 16x


@pytest.mark.parametrize("block", ["loop_point", "producer_literal"])
def test_a_literal_on_the_producer_finds_its_consumers_without_scanning_them(chain, tmp_path, block):
    # Edges were indexable only from consumer to producer: with the literal on inc's side,
    # SQLite read every add call (2.4 s at 1M calls for a 2-value loop).
    rows = {"loop_point": 2, "producer_literal": 1}[block]
    steps = {n: _query_steps(chain, getattr(chain, block), tmp_path / f"{n}.db", n, rows) for n in (200, 3200)}
    assert steps[3200] < 2 * steps[200]  # 16x the calls; a scan would be ~16x the work


def _query_steps(module, block, path: Path, n: int, rows: int, build=None) -> int:
    storage = Storage(path)
    (build or module.build)(storage, n)
    query = block(storage)
    conn = storage._store.conn
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0

    compiled = query._compile()
    conn.set_progress_handler(count, 10)
    try:
        found = conn.execute(compiled.sql, compiled.params).fetchall()
    finally:
        conn.set_progress_handler(None, 0)
    assert len(found) == rows
    return counted[0] + 1




def test_a_guarded_call_is_not_rescanned_per_row(chain, tmp_path):
    # A call under an `if` is a materialized subquery; with the unary + on the variable it
    # shares with the loop, SQLite had no equality to index it by and scanned all of it for
    # every row: 405 s for range(1000) over 1M calls.
    steps = {
        n: _query_steps(chain, lambda storage, n=n: chain.guarded(storage, n), tmp_path / f"{n}.db", n, n)
        for n in (200, 800)
    }
    assert steps[800] < 6 * steps[200]  # 4x the calls and rows; quadratic would be 16x


def test_a_guarded_call_reads_only_the_calls_its_rows_lead_to(chain, tmp_path):
    # The right side of a LEFT JOIN, a guarded call's subquery was materialized whole: every
    # stored add call read (2.9 s at 1M calls for a 1000-value loop) for a handful of rows.
    steps = {n: _query_steps(chain, chain.guarded_point, tmp_path / f"{n}.db", n, 2) for n in (200, 3200)}
    assert steps[3200] < 2 * steps[200]  # 16x the calls; reading them all would be ~16x the work


def test_a_guarded_call_matched_in_every_row_costs_a_few_searches_a_row(chain, tmp_path):
    # Looked up per row by the content index on the shared x, its edge from inc checked only
    # from inc's side (35.5M steps for 500k rows over 1M calls; the 2-op pattern without the
    # `if` takes 32M), not found along that edge: an OR of two indexes, 71M.
    steps = {n: _query_steps(chain, chain.guarded_everywhere, tmp_path / f"{n}.db", n, n) for n in (200, 800)}
    assert steps[800] < 4.5 * steps[200]  # 4x the calls and rows
    assert steps[800] < 8 * 800  # (in tens of steps) a few index searches a row


def test_calls_linked_only_through_a_guarded_call_join_on_their_shared_variable(chain, tmp_path):
    # inc(x) and dec(x) share x; only sub(y, w), under an `if`, links them by edges. The unary
    # + meant for edge-linked calls kept SQLite from the content index on x, and ORDER BY row
    # ids let it walk both version indexes nested to skip a sort: it read every dec call for
    # each inc call (14 s for 6000 calls each; 0.2 s before row ids).
    steps = {n: _query_steps(chain, chain.joined_by_a_guarded_call, tmp_path / f"{n}.db", n, n) for n in (200, 800)}
    assert steps[800] < 6 * steps[200]  # 4x the calls and rows; quadratic would be 16x


def test_a_call_sharing_only_a_variable_with_a_chain_joins_on_it(chain, tmp_path):
    # dec(x) is linked to the inc/add chain by x alone. Ordered by row ids, SQLite planned
    # around that order and searched every inc call per add call (32 s for 4000 calls of each
    # op; 0.05 s when ordered by creation time).
    steps = {n: _query_steps(chain, chain.with_an_unlinked_call, tmp_path / f"{n}.db", n, n) for n in (200, 800)}
    assert steps[800] < 6 * steps[200]  # 4x the calls and rows; quadratic would be 16x


def test_a_branching_chain_joins_along_its_edges(chain, tmp_path):
    # One edge-linked group, but a() feeds both b and c: ordered by row ids, SQLite walked two
    # version indexes nested (2.5 s at 1000 calls of each op, before and after row ids). The
    # order no longer steers the plan.
    steps = {
        n: _query_steps(chain, chain.branching, tmp_path / f"{n}.db", n, n, chain.build_branching)
        for n in (200, 800)
    }
    assert steps[800] < 6 * steps[200]  # 4x the calls and rows; quadratic would be 16x
