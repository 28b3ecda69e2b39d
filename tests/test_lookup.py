"""The lookup step: finding stored calls one at a time and many at once (runtime/lookup.py)."""

from __future__ import annotations

import pytest

from mandala_ast import Storage, op
from mandala_ast.runtime.identity import hash_inputs, identify
from mandala_ast.runtime.lookup import PREFETCH_AFTER


@op
def inc(x: int) -> int:
    return x + 1


@op
def double(x: int) -> int:
    return 2 * x


def _identities(storage: Storage, calls: list[tuple]) -> list:
    engine = storage.engine
    return [identify(f, hash_inputs(f, args, {}, {}), None, engine.versions) for f, args in calls]


def _fresh(path) -> Storage:
    """A new Storage on the file: nothing of it in memory yet."""
    storage = Storage(path)
    storage.engine.enter_block()
    return storage


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "calls.db"
    with Storage(path):
        for i in range(200):
            inc(i)
        double(1)
    return path


def test_find_many_answers_each_call_in_order(path):
    storage = _fresh(path)
    calls = _identities(storage, [(inc, (5,)), (inc, (1000,)), (double, (1,)), (double, (2,))])
    found = storage.engine.index.find_many(calls)
    assert [f is not None for f in found] == [True, False, True, False]
    stored = storage.df(inc).set_index("x")
    assert found[0][0].hex() == stored.loc[5, "call"]  # the row id of the stored call


def test_find_many_agrees_with_find_one_at_a_time(path):
    wanted = [(inc, (i,)) for i in range(190, 210)] + [(double, (1,)), (double, (3,))]
    many = _fresh(path)
    one = _fresh(path)
    found = many.engine.index.find_many(_identities(many, wanted))
    assert found == [one.engine.index.find(call) for call in _identities(one, wanted)]


def test_find_many_reads_a_version_in_one_query_instead_of_one_per_call(path):
    storage = _fresh(path)
    calls = _identities(storage, [(inc, (i,)) for i in range(PREFETCH_AFTER)])
    statements: list[str] = []
    storage.engine.store.conn.set_trace_callback(statements.append)
    found = storage.engine.index.find_many(calls)
    assert all(f is not None for f in found)
    point_lookups = [s for s in statements if "lkey IN" in s]
    assert point_lookups == []
    assert len(statements) < 5


def test_find_many_of_calls_found_before_asks_the_file_nothing(path):
    storage = _fresh(path)
    calls = _identities(storage, [(inc, (1,)), (double, (1,))])
    storage.engine.index.find_many(calls)
    statements: list[str] = []
    storage.engine.store.conn.set_trace_callback(statements.append)
    again = storage.engine.index.find_many(_identities(storage, [(inc, (1,)), (double, (1,))]))
    assert all(f is not None for f in again)
    assert [s for s in statements if "FROM calls" in s] == []


def test_a_version_with_no_stored_call_is_a_miss_without_lookups(tmp_path):
    @op
    def never(x: int) -> int:
        return x

    storage = _fresh(tmp_path / "empty.db")
    calls = _identities(storage, [(never, (i,)) for i in range(3)])
    assert storage.engine.index.find_many(calls) == [None, None, None]
