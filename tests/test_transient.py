"""Transient ops: the call and its outputs' ids are stored, their values are not (transient.py)."""

from __future__ import annotations

import os
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest

from mandala_ast import ArgumentError, MandalaTransientWarning, MDict, MList, Storage, op
from mandala_ast.runtime.transient import NOT_STORED

RUNS: list[str] = []
SIZE = 2_000_000  # 16 MB of float64: a blob file, were it stored


@op(transient=True)
def load(n: int) -> np.ndarray:
    RUNS.append("load")
    return np.arange(float(SIZE)) * n


@op
def total(data: np.ndarray) -> float:
    RUNS.append("total")
    return float(data.sum())


@op
def report(n: int) -> float:
    RUNS.append("report")
    return total(load(n)) / 2


@pytest.fixture(autouse=True)
def _clear():
    RUNS.clear()


def _disk_bytes(path: Path) -> int:
    files = [path, *Path(f"{path}.blobs").rglob("*"), Path(f"{path}-wal")]
    return sum(f.stat().st_size for f in files if f.is_file())


def _value_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT codec, size FROM vals WHERE codec IN ('transient', 'npy')").fetchall()


def test_a_transient_value_is_not_stored(tmp_path):
    path = tmp_path / "s.db"
    storage = Storage(path)
    with storage.run():
        assert total(load(1)) == pytest.approx((SIZE - 1) * SIZE / 2)
    storage.close()
    assert _value_rows(path) == [("transient", 0)]
    assert _disk_bytes(path) < 1_000_000  # 16 MB computed, next to nothing on disk
    assert list(Storage(path).df(load)["output"]) == [NOT_STORED]


def test_a_block_that_uses_the_value_computes_it_again_once(tmp_path):
    path = tmp_path / "s.db"
    with Storage(path).run():
        total(load(1))
    RUNS.clear()
    with Storage(path).run():
        data = load(1)
        assert data[-1] == SIZE - 1
        assert total(data) == pytest.approx((SIZE - 1) * SIZE / 2)
    assert RUNS == ["load"]  # total is found by its input's content id: a hit


def test_a_downstream_hit_does_not_need_the_value(tmp_path):
    path = tmp_path / "s.db"
    with Storage(path).run():
        first = report(3)
    assert RUNS == ["report", "load", "total"]
    RUNS.clear()
    with Storage(path).run():
        assert report(3) == first
    assert RUNS == []


def test_a_non_deterministic_transient_op_warns_once(tmp_path):
    path = tmp_path / "s.db"
    counter = iter(range(100))

    @op(transient=True)
    def noisy(x: int) -> list:
        return [x, next(counter)]

    with Storage(path).run():
        noisy(1)
        noisy(3)
    with pytest.warns(MandalaTransientWarning, match="not deterministic"):
        with Storage(path).run():
            assert noisy(1)[0] == 1
            assert noisy(1)[0] == 1
    storage = Storage(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with storage.run():
            assert noisy(1)[0] == 1  # (a value not used is not computed: nothing to warn about)
            assert noisy(3)[0] == 3
    assert len([w for w in caught if w.category is MandalaTransientWarning]) == 1


def test_queries_and_deletion_see_a_transient_call(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        total(load(2))
    assert len(storage.df(load)) == 1 and len(storage.df(total)) == 1
    report_ = storage.delete_calls(storage.df(load))
    assert (report_.calls, report_.dependents) == (2, 1)  # load(2), and total computed from it
    assert len(storage.df(total)) == 0


QUERIED = """
from mandala_ast import Q, op

@op(transient=True)
def expand(n):
    return list(range(n))

@op
def length(xs):
    return len(xs)

def run(storage):
    with storage.run():
        return [length(expand(n)) for n in (2, 3)]

def query(storage):
    with storage.query() as q:
        n = Q()
        xs = expand(n)
        k = length(xs)
    return q.df()
"""


def test_a_query_matches_transient_calls_and_shows_their_values_as_not_stored(tmp_path):
    import sys

    import mandala_ast

    (tmp_path / "queried_transient.py").write_text(QUERIED)
    try:
        user = mandala_ast.compile_module(tmp_path / "queried_transient.py", name="queried_transient")
        storage = Storage(tmp_path / "s.db")
        assert user.run(storage) == [2, 3]
        frame = user.query(Storage(tmp_path / "s.db")).sort_values("n")
    finally:
        sys.modules.pop("queried_transient", None)
    assert list(frame["n"]) == [2, 3] and list(frame["k"]) == [2, 3]
    assert list(frame["xs"]) == [NOT_STORED, NOT_STORED]


@op(nout=2, transient=[0])
def split(n: int):
    RUNS.append("split")
    return list(range(n)), n * n


def test_one_output_can_be_transient_and_verify_and_gc_accept_it(tmp_path):
    path = tmp_path / "s.db"
    storage = Storage(path)
    with storage.run():
        assert split(3) == ([0, 1, 2], 9)
    frame = storage.df(split)
    assert list(frame["output_0"]) == [NOT_STORED] and list(frame["output_1"]) == [9]
    assert storage.verify().ok
    storage.gc()
    RUNS.clear()
    with Storage(path).run():
        assert split(3) == ([0, 1, 2], 9)
    assert RUNS == ["split"]


COUNTED = """
from mandala_ast import op

RUNS = []

@op(transient=True)
def load(n):
    RUNS.append(n)
    return [n] * 3

@op
def total(xs):
    return sum(xs)

def chained(storage):
    with storage.run():
        z = total(load(1))
    return z

def used(storage):
    with storage.run():
        y = load(1)
        shown = y[0] + 1
    return shown

def used_twice(storage):
    with storage.run():
        y = load(1)
        first = y[0] + 1
        second = len(y) + total(y)
        again = load(1)
        third = again[2]
    return first, second, third

def plain_after(storage):
    with storage.run():
        y = load(1)
        y[0]
    return type(y)
"""


@pytest.fixture(params=["compiled", "uncompiled"])
def counted(request, tmp_path):
    """The module above, compiled by mandala_ast or imported as plain Python."""
    import importlib.util
    import sys

    import mandala_ast

    name = f"counted_transient_{request.param}"
    source = tmp_path / f"{name}.py"
    source.write_text(COUNTED)
    try:
        if request.param == "compiled":
            module = mandala_ast.compile_module(source, name=name)
        else:
            spec = importlib.util.spec_from_file_location(name, source)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def _stored(module, path: Path) -> None:
    assert module.chained(Storage(path)) == 3
    module.RUNS.clear()


def test_a_downstream_hit_in_a_new_block_computes_no_transient_value(counted, tmp_path):
    _stored(counted, tmp_path / "s.db")
    assert counted.chained(Storage(tmp_path / "s.db")) == 3
    assert counted.RUNS == []


def test_a_transient_value_used_in_a_new_block_is_computed_once(counted, tmp_path):
    _stored(counted, tmp_path / "s.db")
    assert counted.used(Storage(tmp_path / "s.db")) == 2
    assert counted.RUNS == [1]


def test_a_transient_value_used_twice_is_computed_once(counted, tmp_path):
    _stored(counted, tmp_path / "s.db")
    assert counted.used_twice(Storage(tmp_path / "s.db")) == (2, 6, 1)
    assert counted.RUNS == [1]


def test_a_new_call_on_a_stored_transient_output_gets_its_value_computed_once(tmp_path):
    seen = []

    @op
    def kind_of(data) -> str:
        seen.append(type(data))
        return type(data).__name__

    path = tmp_path / "s.db"
    with Storage(path).run():
        load(1)
    RUNS.clear()
    with Storage(path).run():
        data = load(1)
        assert isinstance(data, np.ndarray) and RUNS == ["load"]  # (first use: computed)
        assert kind_of(data) == "ndarray" and seen == [np.ndarray]
        assert total(data) == pytest.approx((SIZE - 1) * SIZE / 2)
    assert RUNS == ["load", "total"]


def test_a_stored_transient_output_not_used_is_never_computed(tmp_path):
    path = tmp_path / "s.db"
    with Storage(path).run():
        load(2)
    RUNS.clear()
    with Storage(path).run():
        load(2)
        load(2)
    assert RUNS == []


def test_after_the_block_names_hold_plain_values_once_computed(tmp_path):
    path = tmp_path / "s.db"
    with Storage(path).run():
        load(1)
        load(2)
    RUNS.clear()
    with Storage(path).run():
        used = load(1)
        pair = [used[0], load(1)]
        unused = load(2)
        assert used[1] == 1.0
    assert type(used) is np.ndarray and type(pair[1]) is np.ndarray
    assert type(unused).__name__ == "LazyOutput" and RUNS.count("load") == 1  # not needed yet
    assert unused[1] == 2.0 and type(unused).__name__ == "LazyOutput"  # computed on use


def test_a_name_used_in_the_block_holds_the_plain_value_after_it(counted, tmp_path):
    _stored(counted, tmp_path / "s.db")
    assert counted.plain_after(Storage(tmp_path / "s.db")) is list
    assert counted.RUNS == [1]


def test_a_transient_value_changed_in_place_is_not_taken_for_the_stored_one(tmp_path):
    path = tmp_path / "s.db"
    with Storage(path).run():
        total(load(1))
    RUNS.clear()
    with Storage(path).run():
        data = load(1)
        data[0] = 1e9  # no longer the stored output
        assert total(data) == pytest.approx((SIZE - 1) * SIZE / 2 + 1e9)
        assert load(1)[0] == 0.0  # computed again: the changed array is not the output
    assert RUNS == ["load", "total", "load"]


def test_a_batch_block_getting_a_stored_transient_output_computes_it_instead_of_failing(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        total(load(2))
    RUNS.clear()
    with storage.batch():
        data = load(2)
        first = data[1]  # the value itself: computed again, once
        result = total(data)
    assert first == 2.0 and result == pytest.approx((SIZE - 1) * SIZE)
    assert RUNS == ["load"]


@pytest.mark.parametrize("transient", [[3], [0, 2], "yes"])
def test_a_transient_index_that_names_no_output_is_an_error_naming_the_op(transient):
    """`@op(transient=[3])` on an op of two outputs used to store every value, silently."""

    def pair(n):
        return n, n

    with pytest.raises(ValueError, match=r"op .*pair: transient= .*2 outputs"):
        op(nout=2, transient=transient)(pair)


@pytest.mark.parametrize("transient", [3, None, 1.5])
def test_a_transient_that_is_neither_bool_nor_indices_is_a_mandala_error_naming_the_op(transient):
    """`@op(transient=3)` raised a raw TypeError from frozenset ("'int' object is not iterable")."""

    def pair(n):
        return n, n

    with pytest.raises(ArgumentError, match=r"op .*pair: transient= must be True, False or output indices"):
        op(nout=2, transient=transient)(pair)


def test_a_transient_index_that_names_no_output_is_a_mandala_error():
    with pytest.raises(ArgumentError) as caught:
        op(nout=2, transient=[3])(lambda n: (n, n))
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("executor", [None, "threads"])
def test_a_batch_over_a_stored_transient_call_computes_it_again(tmp_path, executor):
    """A second batch block over a stored transient call used to fail with the internal
    TransientValue (raw bytes for a message) instead of computing the value again."""
    path = tmp_path / "s.db"
    for _ in range(2):
        RUNS.clear()
        with Storage(path).batch(executor=executor, progress=False):
            data = load(1)
            result = total(data)
        assert result == pytest.approx((SIZE - 1) * SIZE / 2) and data[-1] == SIZE - 1
    assert RUNS == ["load"]  # total is a hit; load's value was not stored


@op(transient=True)
async def fetch(n: int) -> list:
    RUNS.append("fetch")
    return list(range(n))


@op
def count(xs: list) -> int:
    RUNS.append("count")
    return len(xs)


def test_a_batch_over_a_stored_transient_async_call_awaits_it_again(tmp_path):
    """The async flavour of the above: the body was called without being awaited, and the
    coroutine object went on to the next op as the value."""
    path = tmp_path / "s.db"
    for _ in range(2):
        RUNS.clear()
        with Storage(path).batch(progress=False):
            xs = fetch(4)
            n = count(xs)
        assert (xs, n) == ([0, 1, 2, 3], 4)
    assert RUNS == ["fetch"]


@op(transient=True)
def spread(n: int) -> list:
    return list(range(n))


@op
def size_of(xs: list) -> int:
    return len(xs)


@pytest.mark.parametrize("line", ["m = len(xs)", "m = xs[0] + 1", "if xs:\n        m = size_of(xs)",
                                  "if len(xs) > 2:\n        m = 1"])
def test_a_query_computing_with_a_transient_output_is_an_error_naming_it(tmp_path, line):
    """`len(xs)` over a transient op's output raised "object of type 'NotStored' has no
    len()", naming no variable or op; `if xs:` took the stand-in for a true value."""
    from test_query import run

    from mandala_ast import QueryError

    storage = Storage(tmp_path / "s.db")
    with storage.run():
        for n in (0, 3):
            size_of(spread(n))
    query = "import mandala_ast\nwith storage.query() as q:\n    xs = spread(Q())\n    {line}\n"
    with pytest.raises(QueryError, match=r"xs is an output of transient op .*spread.*not stored"):
        run(query.format(line=line), storage, spread=spread, size_of=size_of)["q"].df()


# -- transient=True removed from an op whose calls are stored -------------------------------


def _ramp(n: int) -> np.ndarray:  # one function, decorated with and without transient=True
    RUNS.append("ramp")
    return np.arange(float(n))


def _output_codecs(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT v.codec FROM outputs o JOIN vals v ON v.cid = o.cid ORDER BY o.idx")
        return [row[0] for row in rows]


@pytest.mark.parametrize("n", [8, 1_000, 200_000], ids=["inline", "medium", "value file"])
@pytest.mark.parametrize("executor", ["run", None, "threads"])
def test_an_op_no_longer_transient_stores_its_stored_calls_values_at_the_next_run(tmp_path, n, executor):
    # Its stored calls were computed again at every run, their values never stored.
    path = tmp_path / "s.db"
    with Storage(path).run():
        op(transient=True)(_ramp)(n)
    stored = op(_ramp)

    def run() -> np.ndarray:
        storage = Storage(path)
        block = storage.run() if executor == "run" else storage.batch(executor=executor, progress=False)
        with block:
            value = stored(n)
        return np.asarray(value)

    assert np.array_equal(run(), np.arange(float(n)))
    assert _output_codecs(path) == ["npy"] and Storage(path).verify().ok
    for _ in range(2):
        assert np.array_equal(run(), np.arange(float(n)))
    assert RUNS == ["ramp", "ramp"]


def test_an_output_no_longer_transient_is_stored_and_one_still_transient_is_not(tmp_path):
    path = tmp_path / "s.db"

    def pair(n: int):
        RUNS.append("pair")
        return list(range(n)), n * n

    pair.__qualname__ = "pair_of_outputs"
    with Storage(path).run():
        op(nout=2, transient=True)(pair)(3)
    for _ in range(2):
        with Storage(path).run():
            assert op(nout=2, transient=[0])(pair)(3) == ([0, 1, 2], 9)
    assert _output_codecs(path) == ["transient", "json"]
    assert RUNS == ["pair", "pair", "pair"]  # output 0 is computed again when used, as any transient


DECODED: list[int] = []


class Loaded:
    """A stored output that notes each time it is decoded (unpickled)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __setstate__(self, state: dict) -> None:
        DECODED.append(state["n"])
        self.__dict__.update(state)


@op(nout=2, transient=[1])
def loaded_and_scratch(n: int) -> tuple[Loaded, list]:
    return Loaded(n), [n]


def test_a_hit_of_a_transient_op_does_not_decode_its_stored_output_to_see_it_is_stored(tmp_path):
    # Looking whether each output was stored decoded the stored ones to find out: a large
    # DataFrame output was unpickled once more at every hit.
    storage = Storage(tmp_path / "s.db")
    for _ in range(2):  # (the first hit also checks that the stored pickle loads back)
        with storage.run():
            loaded_and_scratch(3)
    DECODED.clear()
    with storage.run():
        kept, scratch = loaded_and_scratch(3)
        assert kept.n == 3 and scratch == [3]
    assert len(DECODED) <= 2  # loading the call's outputs (stopped by the unstored one), handing them back


SAMPLES: list[int] = []


def _sample(n: int) -> list[float]:  # not deterministic: another value every time
    SAMPLES.append(n)
    return [float(len(SAMPLES))] * n


def test_an_op_no_longer_transient_that_gives_another_value_says_it_is_computed_at_every_run(tmp_path):
    # Its value cannot be stored under the id its calls downstream used: it was computed at
    # every run, and the warning said the op "is transient" when it no longer was.
    from mandala_ast import MandalaUnstoredWarning

    SAMPLES.clear()
    with Storage(tmp_path / "s.db").run():
        op(transient=True)(_sample)(2)
    for _ in range(2):
        with pytest.warns(MandalaUnstoredWarning, match=r"_sample.*not stored.*computed again at every run.*delete"):
            with warnings.catch_warnings():
                warnings.simplefilter("error", MandalaTransientWarning)
                with Storage(tmp_path / "s.db").run():
                    assert op(_sample)(2) == [float(len(SAMPLES))] * 2
    assert SAMPLES == [2, 2, 2]


def _scratch(n: int) -> np.ndarray:
    return np.arange(float(n))


def _kept(n: int) -> np.ndarray:  # the same values as _scratch: the same content ids
    RUNS.append("kept")
    return np.arange(float(n))


# 100 floats travel in their value's own row, 400 in val_bytes, 200,000 in a value file.
@pytest.mark.parametrize("n", [100, 400, 200_000])
@pytest.mark.parametrize("same_storage", [True, False])
@pytest.mark.parametrize("block", ["run", "batch"])
def test_a_value_a_transient_op_left_unstored_is_stored_when_another_op_outputs_it(tmp_path, n, same_storage, block):
    # Its id's row was the transient op's placeholder, so the stored op's output was taken for
    # stored: computed twice (once more to store it over the placeholder) in the storage that
    # stored the placeholder; in another, shown as not stored and computed again at each load.
    first = Storage(tmp_path / "s.db")
    with first.run():
        op(transient=True)(_scratch)(n)
    second = first if same_storage else Storage(tmp_path / "s.db")
    with second.run():  # a hit: the value is known as not stored
        op(transient=True)(_scratch)(n)
    with second.run() if block == "run" else second.batch(progress=False):  # (batch: Recorder.record_many)
        op(_kept)(n)
    for storage in (second, Storage(tmp_path / "s.db")):
        assert np.array_equal(storage.df(op(_kept))["output"].iloc[0], np.arange(float(n)))
        with storage.run():
            assert np.array_equal(op(_kept)(n), np.arange(float(n)))
    assert RUNS == ["kept"]
    assert Storage(tmp_path / "s.db").verify().ok


def test_a_transient_output_equal_to_a_stored_value_keeps_the_value(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        op(_kept)(400)
    with storage.run():
        op(transient=True)(_scratch)(400)
    for reader in (storage, Storage(tmp_path / "s.db")):
        assert np.array_equal(reader.df(op(_kept))["output"].iloc[0], np.arange(400.0))



def _shard(n: int) -> np.ndarray:
    return np.arange(float(n))


def _sum_all(parts: list | tuple | dict) -> float:
    return float(sum(part.sum() for part in (parts.values() if isinstance(parts, dict) else parts)))


@pytest.mark.parametrize("holder", [list, tuple, dict])
def test_stored_transient_outputs_in_a_list_given_to_an_op_that_runs_give_it_their_values(tmp_path, holder):
    # A body is watched for the files its arguments name, one level into a list: a stored
    # transient output there is a stand-in, and its os.fspath raised AttributeError.
    with Storage(tmp_path / "s.db").run():
        op(transient=True)(_shard)(3)
        op(transient=True)(_shard)(4)
    with Storage(tmp_path / "s.db").run():
        parts = [op(transient=True)(_shard)(3), op(transient=True)(_shard)(4)]
        given = dict(enumerate(parts)) if holder is dict else holder(parts)
        assert op(_sum_all)(given) == 9.0


def _file_name(folder: str, n: int) -> str:
    return os.path.join(folder, f"{n}.txt")


def test_a_stored_transient_file_name_opens_its_file(tmp_path):
    (tmp_path / "1.txt").write_text("one")
    with Storage(tmp_path / "s.db").run():
        op(transient=True)(_file_name)(str(tmp_path), 1)
    with Storage(tmp_path / "s.db").run():
        name = op(transient=True)(_file_name)(str(tmp_path), 1)
        assert os.fspath(name) == str(tmp_path / "1.txt")
        with open(name) as file:
            assert file.read() == "one"


def _sum_elements(parts: MList[np.ndarray]) -> float:
    return float(sum(part.sum() for part in parts))


def _sum_values(parts: MDict[str, np.ndarray]) -> float:
    return float(sum(part.sum() for part in parts.values()))


@pytest.mark.parametrize("block", ["run", "batch"])
def test_a_transient_output_given_as_an_element_of_an_mlist_or_mdict_argument_is_not_stored(tmp_path, block):
    # Elements of a structure argument are stored one by one, and were taken for outputs
    # equal to a transient value: they were written over its placeholder.
    storage = Storage(tmp_path / "s.db")
    with storage.run() if block == "run" else storage.batch(progress=False):
        a, b = op(transient=True)(_shard)(3), op(transient=True)(_shard)(4)
        listed = op(_sum_elements)([a, b])
        named = op(_sum_values)({"a": a, "b": b})
    assert (listed, named) == (9.0, 9.0)
    storage.close()
    assert [codec for codec, _ in _value_rows(tmp_path / "s.db")] == ["transient", "transient"]
    assert list(Storage(tmp_path / "s.db").df(op(transient=True)(_shard))["output"]) == [NOT_STORED] * 2


def _ids_and_data(n: int) -> tuple[MList[int], np.ndarray]:
    RUNS.append("ids_and_data")
    return list(range(n)), np.arange(float(n))


def test_a_transient_output_beside_an_mlist_output_is_not_stored(tmp_path):
    # The outputs of an op with a structure output were all encoded as values: transient=[1]
    # was not heeded, and the array was stored.
    prepare = op(transient=[1])(_ids_and_data)
    with Storage(tmp_path / "s.db").run():
        ids, data = prepare(3)
        assert ids == [0, 1, 2] and np.array_equal(data, np.arange(3.0))
    assert _value_rows(tmp_path / "s.db") == [("transient", 0)]
    assert list(Storage(tmp_path / "s.db").df(prepare)["output_1"]) == [NOT_STORED]
    with Storage(tmp_path / "s.db").run():  # a hit: the list loads, the array is computed on use
        ids, data = prepare(3)
        assert ids == [0, 1, 2] and float(data.sum()) == 3.0
    assert RUNS == ["ids_and_data"] * 2


def _chunks(n: int) -> MList[np.ndarray]:
    return [np.arange(float(n))] * 2


def _chunks_and_size(n: int) -> tuple[MList[np.ndarray], int]:
    return [np.arange(float(n))] * 2, n


@pytest.mark.parametrize("case", ["all", "the mlist"])
def test_a_transient_mlist_output_is_an_error_naming_the_op_not_a_stored_value(tmp_path, case):
    # MList/MDict/MSet outputs are stored element by element (each element's provenance):
    # with transient= they were stored whole all the same, against what the op said.
    fn, nout, transient = (_chunks, 1, True) if case == "all" else (_chunks_and_size, 2, [0])
    storage = Storage(tmp_path / "s.db")
    with pytest.raises(ArgumentError, match=rf"op .*{fn.__name__}, output 0: .*MList.*transient="):
        with storage.run():
            op(nout=nout, transient=transient)(fn)(3)
    assert len(storage.df(op(nout=nout)(fn))) == 0


def _total(data: np.ndarray) -> float:
    RUNS.append("total")
    return float(data.sum())


# 100 floats travel in their value's own row, 400 in val_bytes.
@pytest.mark.parametrize("n", [100, 400])
@pytest.mark.parametrize("unknown", ["after a deletion", "by another storage"])
def test_a_transient_output_passed_on_by_a_storage_that_does_not_know_it_is_not_stored(tmp_path, n, unknown):
    # The process that computed it knows its row is a placeholder, until a deletion makes it
    # forget what the file holds (or another Storage is given the value): the argument's row
    # then took the placeholder's, storing the value the op said to leave out.
    path = tmp_path / "s.db"
    storage = Storage(path)
    with storage.run():
        data = op(transient=True)(_scratch)(n)
        op(_kept)(3)
    if unknown == "after a deletion":
        storage.delete_calls(storage.df(op(_kept)))
    else:
        storage = Storage(path)
    with storage.run():
        assert op(_total)(data) == float(np.arange(float(n)).sum())
    rows = _value_rows(path)  # (and _kept(3)'s, where it was not deleted)
    assert ("transient", 0) in rows and all(size < 8 * n for _, size in rows)
    assert list(Storage(path).df(op(_scratch))["output"]) == [NOT_STORED]
    assert Storage(path).verify().ok
    RUNS.clear()
    with Storage(path).run():  # the call downstream is found by its input's content id
        assert op(_total)(op(transient=True)(_scratch)(n)) == float(np.arange(float(n)).sum())
    assert RUNS == []


def _count(xs: MList[np.ndarray]) -> int:
    RUNS.append("count")
    return len(xs)


@pytest.mark.parametrize("n", [100, 400])
def test_a_transient_output_passed_on_in_a_list_is_not_stored_and_an_equal_output_later_is(tmp_path, n):
    # The list's elements were buffered as values of their own, a transient op's placeholder
    # taken for a value to store over: passed on, the value was stored after all (or, kept
    # out, this storage no longer knew its row for a placeholder, and took kept's output,
    # equal to it, for stored: shown as not stored, computed again at its next load).
    path = tmp_path / "s.db"
    storage = Storage(path)
    with storage.run():
        data = op(transient=True)(_scratch)(n)
    with storage.run():
        assert op(_count)([data, np.ones(3)]) == 2
    assert ("transient", 0) in _value_rows(path) and all(size < 8 * n for _, size in _value_rows(path))
    with storage.run():
        op(_kept)(n)
    assert np.array_equal(Storage(path).df(op(_kept))["output"].iloc[0], np.arange(float(n)))
    with Storage(path).run():
        assert np.array_equal(op(_kept)(n), np.arange(float(n)))
    assert RUNS == ["count", "kept"]
    assert Storage(path).verify().ok


def _outer(data: np.ndarray) -> float:
    RUNS.append("outer")
    op(transient=True)(_scratch)(len(data))  # a hit: its output, equal to data, is a placeholder
    return float(data.sum())


@pytest.mark.parametrize("block", ["run", "batch"])
def test_an_output_equal_to_a_transient_value_an_op_was_given_while_its_body_found_that_value_is_stored_once(tmp_path, block):
    # The argument, encoded before the body ran, was buffered over the placeholder the body
    # came to know of (and kept off it in the file, as any argument's row): this storage took
    # the placeholder for gone, and kept's equal output for stored, computing it again to store it.
    path = tmp_path / "s.db"
    with Storage(path).run():
        op(transient=True)(_scratch)(400)
    storage = Storage(path)
    with storage.run() if block == "run" else storage.batch(progress=False):  # (batch: Recorder.record_many)
        outer = op(_outer)(np.arange(400.0))
    assert outer == float(np.arange(400.0).sum())
    assert ("transient", 0) in _value_rows(path)
    with storage.run():
        op(_kept)(400)
    with Storage(path).run():
        assert np.array_equal(op(_kept)(400), np.arange(400.0))
    assert RUNS == ["outer", "kept"]


def _counted_shard(n: int) -> np.ndarray:
    RUNS.append("shard")
    return np.arange(float(n))


def _counted_sum(parts: list | tuple | dict) -> float:
    RUNS.append("sum")
    return _sum_all(parts)


def _counted_sum_elements(parts: MList[np.ndarray]) -> float:
    RUNS.append("sum")
    return _sum_elements(parts)


def _sum_of_shards(path: Path, holder: type, summed: object = None) -> float:
    """``sum([shard(3), shard(4)])`` in a run block of a new Storage (``holder``: how the list is held)."""
    shard = op(transient=True)(_counted_shard)
    with Storage(path).run():
        parts = [shard(3), shard(4)]
        given = dict(enumerate(parts)) if holder is dict else holder(parts)
        return op(summed or _counted_sum)(given)


@pytest.mark.parametrize("holder", [list, tuple, dict, "mlist"])
def test_stored_transient_outputs_in_a_list_given_to_a_stored_call_are_not_computed_again(tmp_path, holder):
    # The list was hashed by content, which computed every transient output in it again to
    # find a call stored with that list; a single one passed directly is found by its id.
    summed, holder = (_counted_sum_elements, list) if holder == "mlist" else (None, holder)
    assert _sum_of_shards(tmp_path / "s.db", holder, summed) == 9.0
    assert RUNS == ["shard", "shard", "sum"]
    RUNS.clear()
    assert _sum_of_shards(tmp_path / "s.db", holder, summed) == 9.0
    assert RUNS == []


def _drop_records(path: Path) -> None:
    """Take the records of collections' elements out of the file, as a store an earlier
    release wrote has none."""
    with sqlite3.connect(path) as conn:
        builds = "SELECT id FROM calls WHERE version_id IN (SELECT version_id FROM versions WHERE op_name = 'mandala_ast.__build__')"
        for table in ("call_inputs", "call_outputs"):
            conn.execute(f"DELETE FROM {table} WHERE call_id IN ({builds})")
        conn.execute(f"DELETE FROM calls WHERE id IN ({builds})")


def test_transient_outputs_in_a_list_without_a_record_are_computed_once_then_found_by_their_ids(tmp_path):
    path = tmp_path / "s.db"
    _sum_of_shards(path, list)
    _drop_records(path)
    RUNS.clear()
    assert _sum_of_shards(path, list) == 9.0
    assert RUNS == ["shard", "shard"]  # hashed as any list: computed, and its record written
    RUNS.clear()
    assert _sum_of_shards(path, list) == 9.0
    assert RUNS == [] and Storage(path).verify().ok


def test_a_list_of_transient_outputs_and_another_value_is_another_call(tmp_path):
    shard = op(transient=True)(_counted_shard)
    path = tmp_path / "s.db"
    for extra in (np.ones(2), np.ones(2), np.zeros(2)):
        with Storage(path).run():
            assert op(_counted_sum)([shard(3), extra]) == 3.0 + extra.sum()
    assert RUNS == ["shard", "sum", "shard", "sum"]  # the zeros: a list never given, computed


def test_deleting_a_transient_call_deletes_the_calls_given_its_output_in_a_list(tmp_path):
    path = tmp_path / "s.db"
    _sum_of_shards(path, list)
    storage = Storage(path)
    shard = op(transient=True)(_counted_shard)
    calls = storage.df(shard)
    report = storage.delete_calls(calls[calls["n"] == 3])
    assert (report.calls, report.collections) == (2, 1) and storage.df(op(_counted_sum)).empty
    assert storage.verify().ok


TRANSIENT_LIST = """\
import numpy as np
from mandala_ast import Storage, op

RUNS = []


@op(transient=True)
def shard(n: int) -> np.ndarray:
    RUNS.append("shard")
    return np.arange(float(n))


@op
def summed(parts: list) -> float:
    RUNS.append("sum")
    return float(sum(part.sum() for part in parts))


def run(path):
    with Storage(path).run():
        a = shard(3)
        b = shard(4)
        return summed([a, b])
"""


def test_compiled_code_finds_a_stored_call_given_a_list_of_transient_outputs_without_computing_them(
    tmp_path, compile_user
):
    module = compile_user(TRANSIENT_LIST, "transient_list")
    assert module.run(tmp_path / "s.db") == 9.0
    module.RUNS.clear()
    assert module.run(tmp_path / "s.db") == 9.0
    assert module.RUNS == []
    provenance = Storage(tmp_path / "s.db").provenance(module.summed)
    assert provenance["producer_op"].tolist()[1:] == [f"{module.__name__}.shard"] * 2  # parts[0], parts[1]


_DRAWN = [0]


def _drawn_shard(n: int) -> np.ndarray:
    RUNS.append("shard")
    _DRAWN[0] += 1
    return np.arange(float(n)) + _DRAWN[0]  # another value at each run: not deterministic


def test_transient_outputs_computed_again_to_other_values_leave_no_record_of_a_list_they_are_not(tmp_path):
    # Computed without a record, the list held other values than the stored outputs' ids say:
    # recording it under those ids would give a later list of those outputs this one's content.
    path, shard = tmp_path / "s.db", op(transient=True)(_drawn_shard)
    for run in range(3):
        with Storage(path).run(), warnings.catch_warnings():
            warnings.simplefilter("ignore", MandalaTransientWarning)
            op(_counted_sum)([shard(3), shard(4)])
        if run == 0:
            _drop_records(path)  # as an earlier release left the file: computed without one
    assert RUNS.count("shard") == 6  # each run computes them again: their list is another one


def _failing_sum(parts: list) -> float:
    raise ValueError("no sum today")


def test_a_list_of_transient_outputs_given_to_a_call_that_fails_leaves_no_record_naming_it(tmp_path):
    path = tmp_path / "s.db"
    _sum_of_shards(path, list)
    _drop_records(path)
    shard = op(transient=True)(_counted_shard)
    with pytest.raises(ValueError, match="no sum today"), Storage(path).run():
        op(_failing_sum)([shard(3), shard(4), shard(5)])
    assert Storage(path).verify().ok


def test_a_list_of_transient_outputs_a_batch_gave_to_an_op_is_found_by_their_ids_in_a_run_block(tmp_path):
    shard = op(transient=True)(_counted_shard)
    with Storage(tmp_path / "s.db").batch(progress=False):
        op(_counted_sum)([shard(3), shard(4)])
    assert sorted(RUNS) == ["shard", "shard", "sum"]
    RUNS.clear()
    assert _sum_of_shards(tmp_path / "s.db", list) == 9.0
    assert RUNS == []
