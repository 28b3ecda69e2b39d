"""Rows another row stands for (runtime/query/holes.py)."""

from __future__ import annotations

from hypothesis import given, strategies as st

from mandala_ast.runtime.query.holes import filled_by


def test_a_row_with_a_hole_another_row_fills_is_filled_by_it() -> None:
    assert filled_by([(b"0", b"1", None), (b"0", b"1", b"2")]) == {0: 1}


def test_a_row_another_differs_from_where_both_have_values_stays() -> None:
    """(x=1, z=-1, y=None) beside (x=1, z=2, y=5): z tells them apart (two versions of the op
    computing z); y's hole is a tuple of its own."""
    assert filled_by([(b"1", b"-1", None), (b"1", b"2", b"5")]) == {}


def test_a_hole_no_row_fills_stays() -> None:
    """What a run interrupted before the guarded call leaves."""
    assert filled_by([(b"1", b"5"), (b"2", None)]) == {}


def test_rows_are_filled_by_the_fullest_row() -> None:
    keys = [(b"a", None, None), (b"a", b"b", None), (b"a", b"b", b"c")]
    assert filled_by(keys) == {0: 2, 1: 2}


def test_equal_rows_with_holes_do_not_fill_each_other() -> None:
    assert filled_by([(b"a", None), (b"a", None)]) == {}


values = st.one_of(st.none(), st.sampled_from([b"a", b"b"]))


@given(st.lists(st.tuples(values, values, values), max_size=12))
def test_filled_rows_are_exactly_those_some_other_row_fills(keys: list[tuple]) -> None:
    def fills(j: tuple, i: tuple) -> bool:
        return j != i and all(a is None or a == b for a, b in zip(i, j))

    found = filled_by(keys)
    assert set(found) == {i for i, key in enumerate(keys) if any(fills(other, key) for other in keys)}
    for i, j in found.items():
        assert fills(keys[j], keys[i]) and j not in found
