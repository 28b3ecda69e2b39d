"""An expression over a whole column (query/vectorised.py) gives, element for element, what
the expression's own function gives row by row: same values, same types, same exception."""

from __future__ import annotations

import math
import operator

import pytest
from hypothesis import given, settings, strategies as st

from mandala_ast.runtime.query.operators import and_, compare_chain, or_
from mandala_ast.runtime.query.vectorised import Column, evaluate, numpy_column

#: The functions query expressions compile to that vectorised.py may compute with numpy.
BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
          operator.mod, operator.and_, operator.or_, operator.xor, and_, or_]
UNARY = [operator.neg, operator.pos, abs, operator.invert, operator.not_]
SYMBOLS = ["==", "!=", "<", "<=", ">", ">="]

INTS = st.one_of(st.integers(-5, 5), st.integers(-(2**70), 2**70),
                 st.sampled_from([2**31, 2**53, 2**53 + 1, 2**62, 2**63 - 1, -(2**63), 2**63]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 0.5]))
SCALARS = st.one_of(INTS, FLOATS, st.booleans(), st.none(), st.text(max_size=2))


def columns(count: int):
    """Mostly columns of one type (what numpy can take), sometimes mixed ones."""
    of = lambda values: st.lists(values, min_size=count, max_size=count)  # noqa: E731
    return st.one_of(of(INTS), of(st.integers(-1000, 1000)), of(FLOATS), of(st.booleans()),
                     of(st.one_of(st.integers(-3, 3), st.floats(-3, 3))), of(SCALARS))


def operands(count: int, arity: int):
    """``arity`` operands, at least one a column, the others columns or constants."""
    one = st.one_of(columns(count).map(Column), SCALARS)
    return st.tuples(columns(count).map(Column), *[one] * (arity - 1)).flatmap(st.permutations)


def outcome(compute):
    try:
        return "value", compute()
    except Exception as exc:  # the reference raises: so must the column
        return "raises", type(exc)


def same(found, expected) -> bool:
    """Equal as Python sees values, and of the same type: -0.0 is not 0.0, NaN is NaN."""
    if type(found) is not type(expected):
        return False
    if isinstance(found, float):
        return repr(found) == repr(expected) or (math.isnan(found) and math.isnan(expected))
    return found == expected


def check(fn, args: tuple, count: int) -> None:
    rows = [tuple(a.values[i] if isinstance(a, Column) else a for a in args) for i in range(count)]
    expected = outcome(lambda: [fn(*row) for row in rows])
    found = outcome(lambda: evaluate(fn, args, {}, count))
    assert found[0] == expected[0], (found, expected)
    if found[0] == "raises":
        assert found[1] is expected[1]
    else:
        assert len(found[1]) == count
        assert all(map(same, found[1], expected[1])), (found, expected)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), count=st.integers(1, 6), fn=st.sampled_from(BINARY))
def test_a_binary_operator_over_columns_is_pythons_row_by_row(data, count: int, fn) -> None:
    check(fn, data.draw(operands(count, 2)), count)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), count=st.integers(1, 6), fn=st.sampled_from(UNARY))
def test_a_unary_operator_over_a_column_is_pythons_row_by_row(data, count: int, fn) -> None:
    check(fn, data.draw(operands(count, 1)), count)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), count=st.integers(1, 6), symbols=st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3))
def test_a_comparison_chain_over_columns_is_pythons_row_by_row(data, count: int, symbols: list) -> None:
    args = data.draw(operands(count, len(symbols) + 1))
    check(compare_chain, (tuple(symbols), *args), count)


@pytest.mark.parametrize("fn, args", [
    (operator.add, (Column([1, -2, 3]), 10)),
    (operator.mul, (Column([1.5, float("nan"), -0.0]), 2)),
    (operator.floordiv, (Column([7, -7, 8]), -2)),
    (operator.truediv, (4, Column([1, 2, 3]))),
    (operator.xor, (Column([True, False, True]), True)),
    (compare_chain, (("<", "<="), 0, Column([1, 2, 3]), Column([1.0, 2.5, 2.0]))),
    (and_, (Column([True, False]), Column([True, True]))),
    (operator.not_, (Column([0.0, float("nan")]),)),
])
def test_numbers_of_one_type_are_computed_by_numpy(fn, args: tuple) -> None:
    # what the speed of a query's derived columns rests on: no Python call per row
    found = numpy_column(fn, args)
    assert found is not None
    check(fn, args, len(found))


def test_what_numpy_could_get_wrong_is_left_to_python() -> None:
    assert numpy_column(operator.add, (Column([2**62, 1]), 2**62)) is None  # int64 overflow
    assert numpy_column(operator.add, (Column([True, True]), True)) is None  # 2 in Python
    assert numpy_column(operator.truediv, (Column([1.0, 2.0]), Column([1.0, 0.0]))) is None  # raises
    assert numpy_column(compare_chain, (("==",), Column([2**53 + 1]), float(2**53))) is None  # rounded
    assert numpy_column(operator.mod, (Column([1.5, 2.5]), 1.0)) is None  # float % corner cases


def test_a_function_with_keywords_is_called_row_by_row_with_them() -> None:
    found = evaluate(round, (Column([1.234, 5.678]),), {"ndigits": Column([1, 2])}, 2)
    assert found == [1.2, 5.68]
