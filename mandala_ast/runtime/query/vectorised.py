"""One derived expression computed over a whole column: numpy where its result is certain to be
Python's, element for element; Python's own operator, row by row, everywhere else.

A query's guards and derived columns (``if y > 0``, ``w = z * 2 + x``) were computed a row at a
time, ~40 µs a row. numpy computes ``+``, ``*``, comparisons and ``and``/``or`` over a column in
nanoseconds a row, but only agrees with Python where no element leaves numpy's types: an int
beyond 64 bits, a bool in arithmetic (``True + True`` is 2 in Python, True in numpy), a division
by zero (Python raises), an int compared with a float beyond 2**53 (numpy rounds it first). So
numpy is used only for columns of one exact type (int, float or bool) whose bounds rule those
cases out; anything else (None, str, a mix of types, a user's function) is computed by the
expression's own function, row by row, raising where Python raises.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Any

from .operators import and_, compare_chain, or_
from .pattern import call_value, refuse_op

__all__ = ["Column", "evaluate", "numpy_column"]


class Column:
    """The values of an operand, one per row (as opposed to a constant operand)."""

    __slots__ = ("values",)

    def __init__(self, values: list) -> None:
        self.values = values


def evaluate(fn: Callable, args: tuple, kwargs: dict, count: int) -> list:
    """``[fn(*args_i, **kwargs_i) for each row i]`` where a :class:`Column` operand gives row
    i's value and anything else is the same in every row.

    >>> evaluate(operator.add, (Column([1, 2]), 10), {}, 2)
    [11, 12]
    """
    if fn is call_value and args and not isinstance(args[0], Column):
        refuse_op(args[0])  # one function for every row: checked once, then called directly
        fn, args = args[0], args[1:]
    if not kwargs:
        found = numpy_column(fn, args)
        if found is not None:
            return found
    return _row_by_row(fn, args, kwargs, count)


def _row_by_row(fn: Callable, args: tuple, kwargs: dict, count: int) -> list:
    columns = [a.values if isinstance(a, Column) else itertools.repeat(a, count) for a in args]
    if kwargs:
        names = list(kwargs)
        columns += [v.values if isinstance(v, Column) else itertools.repeat(v, count) for v in kwargs.values()]
        positional = len(args)
        return [fn(*row[:positional], **dict(zip(names, row[positional:]))) for row in zip(*columns)]
    if not columns:
        return [fn() for _ in range(count)]
    return list(map(fn, *columns))


# -- numpy ---------------------------------------------------------------------------------------

#: |int| below which + and - cannot leave int64; * needs the product of the bounds below 2**63.
_ADD_LIMIT = 2**62
#: Integers up to 2**53 convert to float64 exactly, so a float compares with them as Python does.
_EXACT_FLOAT = 2**53

_BINARY = {
    operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "truediv",
    operator.floordiv: "floordiv", operator.mod: "mod",
    operator.and_: "bits", operator.or_: "bits", operator.xor: "bits",
}
_UNARY = {operator.neg: "negative", operator.pos: "positive", abs: "absolute", operator.invert: "invert"}
_COMPARISONS = frozenset(("==", "!=", "<", "<=", ">", ">="))


class _Operand:
    """A numpy view of an operand: ``kind`` int, float or bool; ``array`` (or the constant
    itself); ``bound``, the largest magnitude among ints."""

    __slots__ = ("array", "bound", "kind")

    def __init__(self, kind: str, array: Any, bound: float) -> None:
        self.kind, self.array, self.bound = kind, array, bound


def numpy_column(fn: Callable, args: tuple) -> list | None:
    """The column by numpy, or None when numpy might differ from Python (or does not apply)."""
    if fn is compare_chain:
        if not args or not set(args[0]) <= _COMPARISONS:
            return None
        return _compute(_compare, args[0], args[1:])
    if fn in _BINARY and len(args) == 2:
        return _compute(_arithmetic, fn, args)
    if fn in _UNARY and len(args) == 1:
        return _compute(_unary, fn, args)
    if fn is operator.not_ and len(args) == 1:
        return _compute(_not, None, args)
    if (fn is and_ or fn is or_) and len(args) == 2:
        return _compute(_logic, fn, args)
    return None


def _compute(how: Callable, what: Any, args: tuple) -> list | None:
    if not any(isinstance(a, Column) for a in args):
        return None  # constants only: nothing to vectorise
    operands = [_operand(a) for a in args]
    if any(o is None for o in operands):
        return None
    import numpy as np

    with np.errstate(all="ignore"):
        result = how(what, operands)
    return None if result is None else result.tolist()


def _operand(value: Any) -> _Operand | None:
    import numpy as np

    if not isinstance(value, Column):
        kind = _KINDS.get(type(value))
        if kind is None or (kind == "int" and abs(value) >= 2**63):
            return None
        return _Operand(kind, value, abs(value) if kind == "int" else 0)
    values = value.values
    if not values:
        return None
    types = set(map(type, values))
    if len(types) != 1:
        return None
    kind = _KINDS.get(types.pop())
    if kind is None:
        return None
    try:
        array = np.array(values, dtype=_DTYPES[kind])
    except OverflowError:  # an int beyond int64
        return None
    bound = max(-int(array.min()), int(array.max())) if kind == "int" else 0
    return _Operand(kind, array, bound)


_KINDS = {int: "int", float: "float", bool: "bool"}
_DTYPES = {"int": "int64", "float": "float64", "bool": "bool"}


def _numeric(operands: list[_Operand]) -> bool:
    """Ints and floats only, and ints exact as floats wherever a float takes part."""
    kinds = {o.kind for o in operands}
    if not kinds <= {"int", "float"}:
        return False
    return kinds == {"int"} or all(o.bound <= _EXACT_FLOAT for o in operands if o.kind == "int")


def _compare(symbols: tuple, operands: list[_Operand]) -> Any:
    kinds = {o.kind for o in operands}
    if not (_numeric(operands) or kinds == {"bool"}):
        return None
    result = None
    for symbol, left, right in zip(symbols, operands, operands[1:]):
        step = _COMPARE_NUMPY[symbol](left.array, right.array)
        result = step if result is None else result & step  # a chain: every comparison holds
    return _full(result, operands)


def _arithmetic(fn: Callable, operands: list[_Operand]) -> Any:
    import numpy as np

    left, right = operands
    kind = _BINARY[fn]
    if kind == "bits":
        if left.kind != right.kind or left.kind == "float":
            return None
        return _full(fn(left.array, right.array), operands)
    if not _numeric(operands):
        return None
    ints = left.kind == right.kind == "int"
    if kind in ("add", "sub") and ints and max(left.bound, right.bound) >= _ADD_LIMIT:
        return None
    if kind == "mul" and ints and float(left.bound) * float(right.bound) >= _ADD_LIMIT:
        return None
    if kind in ("truediv", "floordiv", "mod"):
        if not np.all(right.array != 0):  # Python raises ZeroDivisionError
            return None
        if kind == "truediv" and ints and max(left.bound, right.bound) > _EXACT_FLOAT:
            return None
        if kind != "truediv" and not (ints and max(left.bound, right.bound) < _ADD_LIMIT):
            return None  # float // and % round differently in corner cases; int64 // -1 overflows
    return _full(fn(left.array, right.array), operands)


def _unary(fn: Callable, operands: list[_Operand]) -> Any:
    (operand,) = operands
    if operand.kind == "bool" or (fn is operator.invert and operand.kind != "int"):
        return None  # -True is -1 and ~True is -2 in Python
    if operand.kind == "int" and operand.bound >= _ADD_LIMIT:
        return None
    return getattr(_np(), _UNARY[fn])(operand.array)


def _not(_: Any, operands: list[_Operand]) -> Any:
    (operand,) = operands
    return _np().logical_not(operand.array)  # not x is x == 0 for numbers; nan is true


def _logic(fn: Callable, operands: list[_Operand]) -> Any:
    """``a and b`` is a bool only when both are: otherwise it is one of the operands."""
    if any(o.kind != "bool" for o in operands):
        return None
    left, right = operands
    both = left.array & right.array if fn is and_ else left.array | right.array
    return _full(both, operands)


def _full(result: Any, operands: list[_Operand]) -> Any:
    """A result of constants only is a scalar: make it a column as long as the operands'."""
    np = _np()
    if np.ndim(result):
        return result
    length = next(len(o.array) for o in operands if np.ndim(o.array))
    return np.full(length, result)


def _np() -> Any:
    import numpy as np

    return np


_COMPARE_NUMPY = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
