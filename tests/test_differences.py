"""How a value differs from a stored one (runtime/differences.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mandala_ast.runtime.differences import difference, short_repr


class Config:
    def __init__(self, lr, created, extra=None):
        self.lr, self.created, self.extra = lr, created, extra


def test_an_objects_attribute_that_differs_is_named_with_both_values() -> None:
    assert difference(Config(0.1, 17.5), Config(0.1, 18.25)) == ".created differs (stored 17.5, here 18.25)"


def test_nested_parts_are_followed_to_the_difference() -> None:
    stored = Config(0.1, 1, {"layers": [64, 32], "act": "relu"})
    given = Config(0.1, 1, {"layers": [64, 16], "act": "relu"})
    assert difference(stored, given) == ".extra['layers'][1] differs (stored 32, here 16)"


def test_shapes_that_differ_are_said_as_such() -> None:
    assert difference({"a": 1}, {"a": 1, "b": 2}) == " has other keys: \"'b'\" only here"
    assert difference([1, 2], [1, 2, 3]) == " has 3 items here, 2 stored"
    assert difference(1, 1.0) == "it is a float here, a int stored"


def test_arrays_say_how_many_elements_differ_and_the_first() -> None:
    stored, given = np.zeros((2, 3)), np.zeros((2, 3))
    given[1, 2] = 5.0
    assert difference(stored, given) == "the array: 1 of 6 elements differ, first at [1, 2] (stored 0.0, here 5.0)"
    assert difference(stored, np.zeros(6)) == "the array is float64[6] here, float64[2, 3] stored"
    assert "its bytes" in difference(np.array([0.0]), np.array([-0.0]))


def test_at_most_three_places_are_named() -> None:
    found = difference(dict.fromkeys("abcde", 0), dict.fromkeys("abcde", 1))
    assert found.count("differs") == 3 and found.endswith("; and 2 more")


@pytest.mark.parametrize(("value", "shown"), [
    ("a" * 50, "'" + "a" * 38 + "…"),
    (Config(1, 2), "Config(lr=1, created=2, extra=None)"),
    (list(range(3)), "[0, 1, 2]"),
])
def test_short_reprs_are_cut_with_an_ellipsis_and_objects_show_their_attributes(value, shown) -> None:
    assert short_repr(value) == shown


def test_a_large_array_is_compared_without_copies_several_times_its_size() -> None:
    """why beside a stored 1e8-element array needed ~4x its size again (masks and an index
    per differing element): a 800 MB array took >3 GB more to say where it differs."""
    import tracemalloc

    stored, given = np.zeros((1500, 1500)), np.ones((1500, 1500))
    tracemalloc.start()
    try:
        said = difference(stored, given)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert said == "the array: 2250000 of 2250000 elements differ, first at [0, 0] (stored 0.0, here 1.0)"
    assert peak < stored.nbytes / 2


def test_an_object_array_difference_names_the_element() -> None:
    """An object array's element has no .item(): the AttributeError crashed why."""
    stored = np.array([{"a": 1}, 2], dtype=object)
    given = np.array([{"a": 2}, 2], dtype=object)
    assert difference(stored, given) == "the array: 1 of 2 elements differ, first at [0] (stored {'a': 1}, here {'a': 2})"
    records = np.dtype([("a", int), ("b", float)])
    assert difference(np.zeros(2, records), np.ones(2, records)).startswith("the array: 2 of 2 elements differ")
    arrays, other = np.empty(1, object), np.empty(1, object)
    arrays[0], other[0] = np.zeros(3), np.ones(3)
    assert difference(arrays, other) == "its content differs (its parts cannot be compared one by one)"


def test_a_data_frame_difference_names_the_column_and_row() -> None:
    """A DataFrame was compared by its internals: '._mgr differs (stored BlockManager…' and a
    weakref's address, which tell the user nothing."""
    import pandas as pd

    stored = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    given = stored.copy()
    given.loc[1, "x"] = 9
    assert difference(stored, given) == "['x']: 1 of 3 elements differ, first at [1] (stored 2, here 9)"
    assert difference(stored, stored.rename(columns={"y": "z"})) == " has other keys: \"'z'\" only here, \"'y'\" only stored"
    assert difference(pd.Series([1, 2]), pd.Series([1, 3])) == ".values: 1 of 2 elements differ, first at [1] (stored 2, here 3)"
