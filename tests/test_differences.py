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
