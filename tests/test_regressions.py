"""Regression tests, one class per bug found in review (named after what went wrong)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import mandala_ast.runtime.compiled as rt
from mandala_ast import Storage, op
from mandala_ast.runtime.hashing import content_id

RUNS: list = []


@op
def sort_in_place(xs: list) -> int:
    xs.append(0)
    xs.sort()
    return sum(xs)


@op
def make() -> list:
    return [3, 1, 2]


@op
def inc(x):
    RUNS.append(x)
    return x + 1


@op
def dec(x):
    return x - 1


@op
def with_default(y=2):
    return y * 10


def spec(targets=None, pos=(None,)):
    return (targets, pos, None)


class TestMutatedArgumentStoredUnderOriginalContent:
    def test_the_original_value_is_what_is_stored(self, tmp_path):
        """An op that sorts its argument in place must not store the sorted list under the
        unsorted list's content id (make() would then load [0, 1, 2, 3])."""
        with Storage(tmp_path / "s.db"):
            sort_in_place([3, 1, 2])
            assert make() == [3, 1, 2]
        with Storage(tmp_path / "s.db") as storage:
            assert make() == [3, 1, 2]
        assert storage.df(sort_in_place)["xs"].tolist() == [[3, 1, 2]]


class TestFastPathKeptStaleDefault:
    def test_redefined_op_with_a_new_default_is_a_new_call(self, tmp_path):
        namespace: dict = {}
        source = "from mandala_ast import op\n@op\ndef f(x, scale={k}):\n    return x * scale\n"
        storage = Storage(tmp_path / "s.db")
        exec(source.format(k=2), namespace)
        with storage:
            assert namespace["f"](5) == 10
        exec(source.format(k=3), namespace)
        with storage:
            assert namespace["f"](5) == 15 and namespace["f"](x=5) == 15


class TestRawCallMissedCompiledHistory:
    def test_a_plain_call_loads_what_compiled_code_stored_by_content(self, tmp_path):
        """y = inc(1); w = inc(y) stores inc(2) under w's history; a plain inc(2) later (even
        in a new Storage object) must load it, not compute it again."""
        with Storage(tmp_path / "s.db"):
            y = rt.call(spec(("y@m",)), inc, 1)
            rt.call(spec(("w@m",), ("y@m",)), inc, y)
        RUNS.clear()
        with Storage(tmp_path / "s.db") as storage:
            assert inc(2) == 3
        assert RUNS == []
        assert storage.why(inc, 2).startswith("hit")

    def test_a_literal_argument_is_not_attributed_to_another_history(self, tmp_path):
        with Storage(tmp_path / "s.db") as storage:
            y = rt.call(spec(("y@m",)), inc, 1)
            rt.call(spec(("w@m",), ("y@m",)), inc, y)
            z = rt.call(spec(("z@m",)), inc, 2)  # raw 2, same content as y
            rt.call(spec(None, ("z@m",)), dec, z)
        prov = storage.provenance(dec)
        # dec's input came from the raw inc(2) call, whose own input is a raw value
        producer = prov["producer_call"].item()
        inputs = storage.provenance(inc).set_index("call")
        assert inputs.loc[producer, "producer_call"] is None or pd.isna(inputs.loc[producer, "producer_call"])


class TestDefaultedArgumentLostItsHistory:
    def test_equal_defaults_from_different_producers_are_different_calls(self, tmp_path):
        with Storage(tmp_path / "s.db") as storage:
            a = rt.call(spec(("a@m",)), inc, 1)  # 2
            c = rt.call(spec(("c@m",)), dec, 3)  # 2
            rt.call(spec(None, ("a@m",)), with_default, a)
            rt.call(spec(None, ("c@m",)), with_default, c)
        producers = set(storage.provenance(with_default)["producer_op"])
        assert producers == {inc.name, dec.name}


class TestStructuredAndIndexedValuesCollided:
    def test_structured_arrays_with_different_fields(self):
        a = np.zeros(2, dtype=[("x", "<i4"), ("y", "<i4")])
        b = np.zeros(2, dtype=[("p", "<f4"), ("q", "<f4")])
        assert content_id(a) != content_id(b)

    def test_frames_differing_in_index_name(self):
        frame = pd.DataFrame({"v": [1, 2]})
        named = frame.rename_axis("a")
        assert content_id(frame) != content_id(named)


class TestHugeIntsCouldNotBeStored:
    def test_int_beyond_the_digit_limit_round_trips(self, tmp_path):
        @op
        def big(n):
            return 10**n

        with Storage(tmp_path / "s.db"):
            big(5000)
        with Storage(tmp_path / "s.db", ) as storage:
            storage.allow_new_calls(False)
            assert big(5000) == 10**5000


CONFIG = {"scale": 2}


@op
def scaled(x):
    return x * CONFIG["scale"]


class TestConstantMutatedInPlaceWasNotNoticed:
    def test_same_storage_object_sees_the_new_content(self, tmp_path):
        storage = Storage(tmp_path / "s.db")
        with storage:
            assert scaled(5) == 10
        CONFIG["scale"] = 3
        try:
            with storage:
                assert scaled(5) == 15 and scaled(x=5) == 15
        finally:
            CONFIG["scale"] = 2


@dataclasses.dataclass
class Settings:
    scale: int


SETTINGS = Settings(scale=2)


@op
def settings_scaled(x):
    return x * SETTINGS.scale


class TestConfigObjectMutatedInPlaceWasNotNoticed:
    def test_same_storage_object_sees_the_new_attribute(self, tmp_path):
        """``SETTINGS.scale = 3`` in a notebook cell, then the block again: a stale 10."""
        storage = Storage(tmp_path / "s.db")
        with storage:
            assert settings_scaled(5) == 10
        SETTINGS.scale = 3
        try:
            with storage:
                assert settings_scaled(5) == 15
        finally:
            SETTINGS.scale = 2


class TestFirstLookupCountedEveryStoredCall:
    """The first lookup of an op in a process ran COUNT(*) over all its stored calls (134 ms
    at 500k calls); a handful of hits must not count at all."""

    def test_a_few_hits_never_count(self, tmp_path, monkeypatch):
        path = tmp_path / "r.db"
        with Storage(path):
            for x in range(200):
                inc(x)
        reopened = Storage(path)

        def refuse(self, version_id):
            raise AssertionError("counted the stored calls")

        monkeypatch.setattr(type(reopened._store), "count_calls", refuse)
        RUNS.clear()
        with reopened:
            assert [inc(x) for x in range(10)] == list(range(1, 11))
        assert RUNS == []


@dataclasses.dataclass
class Holder:
    value: object


@op
def square(m):
    return m * m  # a matrix product for np.matrix, elementwise for an array


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
class TestNumpyMatrixTakenForAnArray:
    def test_a_matrix_and_an_array_of_the_same_numbers_are_two_arguments(self, tmp_path):
        """``np.matrix`` (what scipy.sparse's ``todense()`` returns) multiplies as matrices:
        served the array's stored result, ``square`` returned the elementwise square."""
        numbers = [[1, 2], [3, 4]]
        with Storage(tmp_path / "s.db"):
            elementwise = square(np.array(numbers))
            product = square(np.matrix(numbers))
        assert product.tolist() == [[7, 10], [15, 22]] and elementwise.tolist() == [[1, 4], [9, 16]]

    def test_a_matrix_comes_back_a_matrix_from_a_new_storage(self, tmp_path):
        with Storage(tmp_path / "s.db"):
            square(np.matrix([[1, 2], [3, 4]]))
        with Storage(tmp_path / "s.db") as storage:
            storage.allow_new_calls(False)
            loaded = square(np.matrix([[1, 2], [3, 4]]))
        assert type(loaded) is np.matrix and loaded.tolist() == [[7, 10], [15, 22]]

    def test_inside_a_list_or_an_object_too(self):
        numbers = [[1, 2], [3, 4]]
        assert content_id([np.matrix(numbers)]) != content_id([np.array(numbers)])
        assert content_id(Holder(np.matrix(numbers))) != content_id(Holder(np.array(numbers)))

    def test_a_memmap_and_an_array_stay_one_argument(self):
        array = np.arange(5.0)
        assert content_id(array.view(np.memmap)) == content_id(array)
