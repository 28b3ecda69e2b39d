"""Call identity: content ids, history ids and row ids of calls (runtime/identity.py)."""

from __future__ import annotations

import math

import pytest

from mandala_ast import Storage, op
from mandala_ast.runtime.hashing import content_id
from mandala_ast.runtime.identity import (
    call_id,
    fast_key,
    hash_inputs,
    identify,
    identify_many,
    output_history_id,
)
from mandala_ast.runtime.refs import InexactRefs, Ref


@op
def add(x: int, y: int = 2) -> int:
    return x + y


@pytest.fixture
def path(tmp_path):
    return tmp_path / "results.db"


def _identity(storage: Storage, args: tuple, refs=None):
    return identify(add, hash_inputs(add, args, {}, {}), refs, storage.engine.versions)


def test_a_call_without_known_producers_has_its_cid_as_history_id():
    call = _identity(Storage(), (1, 5))
    assert call.history_id == call.cid
    assert call.cids == {"x": content_id(1), "y": content_id(5)}


def test_a_known_producer_changes_the_history_id_not_the_cid():
    storage = Storage()
    plain = _identity(storage, (1, 5))
    produced = Ref(1, content_id(1), output_history_id(b"r" * 32, 0), (b"r" * 32, 0))
    traced = _identity(storage, (1, 5), {"x": produced})
    assert traced.cid == plain.cid
    assert traced.history_id != plain.history_id
    assert traced.sources == {"x": (b"r" * 32, 0)}


def test_a_ref_whose_value_changed_since_is_matched_by_content():
    stale = Ref(7, content_id(7), output_history_id(b"r" * 32, 0), (b"r" * 32, 0))
    call = _identity(Storage(), (1, 5), {"x": stale})
    # Inexact, and not the call of raw values 1 and 5 (whose history id is its cid).
    assert call.sources == {} and not call.exact and call.history_id != call.cid


def test_an_argument_left_at_its_default_is_not_part_of_the_cid():
    storage = Storage()
    call = _identity(storage, (1,))
    version_id = storage.engine.versions.version_id(add)
    assert call.cid == call_id(version_id, {"x": content_id(1)})


def test_the_row_id_depends_on_the_dependency_state():
    call = _identity(Storage(), (1, 5))
    assert call.row_id is None
    call.set_state(b"a" * 32)
    first = call.row_id
    call.set_state(b"b" * 32)
    assert first is not None and call.row_id != first


def test_fast_keys_tell_equal_numbers_of_different_types_apart():
    keys = {fast_key(add, (1,)), fast_key(add, (1.0,)), fast_key(add, (True,))}
    assert len(keys) == 3
    assert fast_key(add, (0.0,)) is None  # 0.0 == -0.0: left to the content id
    assert fast_key(add, ([1],)) is None


class TestInProcessMemo:
    def test_equal_scalars_of_different_types_are_different_calls(self, path):
        # The in-process memo keys plain ints and strs without their types; 1 == 1.0 == True
        # must still be three calls, whichever comes first, in one block and the next.
        seen = []

        @op
        def kind(x):
            seen.append(x)
            return type(x).__name__

        storage = Storage(path)
        for _ in range(2):
            with storage.run():
                results = [kind(v) for v in (1, True, 1.0, "1", b"1", None, 1, "1", (1,))]
        assert results == ["int", "bool", "float", "str", "bytes", "NoneType", "int", "str", "tuple"]
        assert [type(v) for v in seen] == [int, bool, float, str, bytes, type(None), tuple]

    def test_zero_and_negative_zero_are_different_calls(self, path):
        # 0.0 == -0.0 and both hash alike, so a dict keyed by the arguments takes one for the
        # other; their content ids differ, and so must the calls, in one block and the next.
        @op
        def sign(x):
            return math.copysign(1.0, x)

        storage = Storage(path)
        for _ in range(2):
            with storage.run():
                assert [sign(0.0), sign(-0.0), sign(0.0), sign(-0.0)] == [1.0, -1.0, 1.0, -1.0]
        assert len(storage.df(sign)) == 2


@op
def nothing() -> int:
    return 0


@op
def mixed(b, a, *rest, c=1, **more):
    return b


def test_identifying_many_calls_at_once_gives_each_its_identity_alone():
    storage = Storage()
    versions = storage.engine.versions
    produced = Ref(1, content_id(1), output_history_id(b"r" * 32, 0), (b"r" * 32, 0))
    calls = [
        (add, (1, 5), {}, None), (add, (1,), {}, None), (add, (3, 5), {}, {}), (add, (1, 5), {}, {"x": produced}),
        (add, (1, 5), {}, InexactRefs()), (nothing, (), {}, None), (mixed, (1, 2, 3), {"c": 4, "d": 5}, None),
        (mixed, (2, 1), {}, None), (mixed, (), {"a": 1, "b": 2}, None),
    ]
    items = [(f, hash_inputs(f, args, kwargs, {}), refs) for f, args, kwargs, refs in calls]
    many = identify_many(items, versions)
    alone = [identify(f, hashed, refs, versions) for f, hashed, refs in items]
    fields = ("version_id", "bound", "cids", "cid", "history_id", "sources", "exact")
    assert [[getattr(c, f) for f in fields] for c in many] == [[getattr(c, f) for f in fields] for c in alone]
