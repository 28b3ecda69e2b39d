"""The operators a query block's expressions compile to that Python cannot overload on a
query variable: comparison chains and ``and``/``or``, as plain functions of values.

hooks.py builds derived variables on them; vectorised.py recognises them to compute a whole
column at once.
"""

from __future__ import annotations

import operator
from typing import Any

__all__ = ["COMPARE", "and_", "compare_chain", "or_"]

COMPARE = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge, "is": operator.is_, "is not": operator.is_not,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}


def compare_chain(symbols: tuple, *operands: Any) -> Any:
    """``a < b <= c`` of values: ``compare_chain(("<", "<="), a, b, c)``.

    >>> compare_chain(("<", "<="), 1, 2, 2), compare_chain(("<",), 2, 1)
    (True, False)
    """
    result: Any = True
    for index, (symbol, left, right) in enumerate(zip(symbols, operands, operands[1:])):
        if index and not result:  # as Python: the last result is returned as it is
            return result
        result = COMPARE[symbol](left, right)
    return result


def and_(*values: Any) -> Any:
    """``a and b`` of values. ``and_(0, 2) == 0``"""
    for value in values:
        if not value:
            return value
    return values[-1]


def or_(*values: Any) -> Any:
    """``a or b`` of values. ``or_(0, 2) == 2``"""
    for value in values:
        if value:
            return value
    return values[-1]
