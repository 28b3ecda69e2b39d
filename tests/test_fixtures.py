"""The cached-fixture engine (runtime/fixtures.py) on real storage files, without pytest: each
FixtureCache stands for one pytest session (or one xdist worker)."""

from __future__ import annotations

import doctest
import gc
import time
import weakref

import pytest

import mandala_ast.pytest
from mandala_ast import ValueEncodingError
from mandala_ast.runtime import fixtures
from mandala_ast.runtime.fixtures import FixtureCache, FixtureOp, reason_from_why

CALLS: list[str] = []


def dataset():
    CALLS.append("dataset")
    return list(range(5))


def total(dataset):
    CALLS.append("total")
    return sum(dataset)


class Request:
    def __init__(self, param):
        self.param = param


def sized(request):
    CALLS.append(f"sized{request.param}")
    return [0] * request.param


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def session(tmp_path, **options) -> FixtureCache:
    return FixtureCache(tmp_path / "fixtures.db", **options)


def test_a_second_session_loads_what_the_first_computed(tmp_path):
    first = session(tmp_path)
    assert first.get(FixtureOp(dataset), "dataset", {}) == [0, 1, 2, 3, 4]
    first.close()
    second = session(tmp_path)
    assert second.get(FixtureOp(dataset), "dataset", {}) == [0, 1, 2, 3, 4]
    assert CALLS == ["dataset"]
    assert [o.status for o in second.outcomes] == ["reused"]
    assert second.outcomes[0].seconds >= 0


def test_each_reuse_is_a_fresh_copy(tmp_path):
    cache = session(tmp_path)
    first = cache.get(FixtureOp(dataset), "dataset", {})
    first.append("mutated by a test")
    assert cache.get(FixtureOp(dataset), "dataset", {}) == [0, 1, 2, 3, 4]


def test_the_param_is_part_of_the_key_but_not_the_request(tmp_path):
    cache = session(tmp_path)
    op = FixtureOp(sized)
    assert cache.get(op, "sized", {"request": Request(2)}) == [0, 0]
    assert cache.get(op, "sized", {"request": Request(3)}) == [0, 0, 0]
    assert cache.get(op, "sized", {"request": Request(2)}) == [0, 0]
    assert CALLS == ["sized2", "sized3"]
    assert [o.label for o in cache.outcomes] == ["sized[2]", "sized[3]", "sized[2]"]


def test_a_received_cached_value_keys_the_receiver_on_its_call(tmp_path):
    cache = session(tmp_path)
    data = cache.get(FixtureOp(dataset), "dataset", {})
    assert cache.get(FixtureOp(total), "total", {"dataset": data}) == 10
    provenance = cache.storage.provenance(FixtureOp(total))
    assert provenance["producer_op"].tolist() == [FixtureOp(dataset).name]
    assert provenance["exact"].tolist() == [True]


def test_a_refresh_recomputes_once_per_session_even_across_workers(tmp_path):
    session(tmp_path).get(FixtureOp(dataset), "dataset", {})
    started = time.time()
    worker_a = session(tmp_path, refresh={"dataset"}, started=started)
    worker_b = session(tmp_path, refresh={"dataset"}, started=started)
    worker_a.get(FixtureOp(dataset), "dataset", {})
    worker_b.get(FixtureOp(dataset), "dataset", {})
    assert CALLS == ["dataset", "dataset"]
    assert [o.status for o in worker_a.outcomes + worker_b.outcomes] == ["recomputed", "reused"]
    assert worker_a.outcomes[0].reason == "refresh requested"


def test_a_refresh_of_another_name_reuses(tmp_path):
    session(tmp_path).get(FixtureOp(dataset), "dataset", {})
    other = session(tmp_path, refresh={"model"})
    other.get(FixtureOp(dataset), "dataset", {})
    assert CALLS == ["dataset"]


def test_an_unhashable_received_value_names_the_argument_and_how_to_leave_it_out(tmp_path):
    def uses_lock(lock):
        return 1

    import threading

    cache = session(tmp_path)
    with pytest.raises(ValueEncodingError, match=r"argument 'lock'.*@cached_fixture\(ignore=\('lock',\)\)"):
        cache.get(FixtureOp(uses_lock), "uses_lock", {"lock": threading.Lock()})
    assert cache.get(FixtureOp(uses_lock, ignore=("lock",)), "uses_lock", {"lock": threading.Lock()}) == 1


def test_the_hint_names_the_unhashable_argument_not_an_ignored_one_nor_an_op_the_body_calls(tmp_path):
    import threading

    from mandala_ast import op

    def uses_both(lock, conn):
        return 1

    @op
    def locked(lock):
        return 2

    def calls_an_op(n):
        return locked(threading.Lock())

    cache = session(tmp_path)
    with pytest.raises(ValueEncodingError, match=r"argument 'conn'.*ignore=\('conn',\)") as caught:
        cache.get(FixtureOp(uses_both, ignore=("lock",)), "uses_both", {"lock": threading.Lock(), "conn": threading.Lock()})
    assert "'lock'" not in str(caught.value)
    with pytest.raises(ValueEncodingError) as caught:
        cache.get(FixtureOp(calls_an_op), "calls_an_op", {"n": 1})
    assert "cached_fixture(ignore=" not in str(caught.value)


class Box:
    pass


def box():
    return Box()


def test_a_torn_down_value_is_no_longer_kept_alive(tmp_path):
    cache = session(tmp_path)
    value = cache.get(FixtureOp(box), "box", {})
    alive = weakref.ref(value)
    cache.forget(value)
    del value
    gc.collect()
    assert alive() is None


def test_reasons_read_from_why():
    assert reason_from_why("miss: f() was never computed in Storage('x')") == fixtures.NOT_STORED
    two = "miss: f() was computed before, but\ndependency a.norm changed:\n-\ndependency a.SCALE changed:\n+"
    assert reason_from_why(two) == "helpers norm, SCALE changed"


@pytest.mark.parametrize("module", [fixtures, mandala_ast.pytest])
def test_docstring_examples(module):
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
