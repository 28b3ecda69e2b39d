"""Which rows of a query's table are distinct, and which rows each one shown stands for.

A table shows each distinct row of values once, and that row keeps the calls of every row
equal to it (what a delete block or ``storage.delete_calls(df)`` removes). Most tables repeat
no row, or a few. Telling them apart with a tuple of content ids per row, in a dict, cost
about a second for 500k rows (a tuple and a dict entry per row, the ids scattered over the
heap); one repeated row anywhere was enough to pay it.

So each row gets one 64-bit number: the hash() of each of its keys (content ids: bytes,
hashed with SipHash), mixed. numpy sorts those numbers, and only rows whose number repeats are
compared by their full keys. Equal keys always give equal numbers, so no repeat is missed;
two different rows with the same number are only compared for nothing. A process that has
not loaded numpy (a delete block builds no DataFrame) finds the repeats of a smaller table
with a dict of its keys instead: numpy's import alone costs ~0.1 s.
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

__all__ = ["Distinct", "distinct_rows", "repeated_rows"]

#: Rows from which numpy is imported to find repeats when no one has loaded it: a delete
#: block builds no DataFrame, and numpy's import (~0.1 s) costs more than a dict of fewer
#: rows' keys.
_NUMPY_FROM = 50_000

#: Odd 64-bit multipliers, one per key column (cycled): a row (a, b) and a row (b, a) mix
#: to different numbers.
_FACTORS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)


class Distinct(NamedTuple):
    """The rows a table keeps, and for those that stand for others, which ones.

    >>> distinct_rows([[b"a", b"b", b"a"]], 3)
    Distinct(keep=[0, 1], stands_for={0: [0, 2]})
    """

    keep: list[int]  # ascending: the first row of each distinct key, but rows another fills
    stands_for: dict[int, list[int]]  # a kept row -> every row it stands for, itself first


def distinct_rows(key_columns: Sequence[Any], count: int, filled: Mapping[int, int] | None = None,
                  suspects: Sequence[int] | None = None) -> Distinct | None:
    """None when the ``count`` rows (a key per row, given a column at a time) are all distinct
    and none fills another. ``filled`` maps a row to the row that fills it (holes.py): it is
    dropped and its calls go to that row's. ``suspects``: the only rows that may repeat one,
    when the caller already knows them (every other row is kept, standing for itself); then a
    column need only be indexable by row (table.py computes a derived value's id on demand)."""
    filled = filled or {}
    rows = set(repeated_rows(key_columns, count) if suspects is None else suspects)
    rows.update(filled, filled.values())
    stands_for = _grouped(key_columns, sorted(rows), filled)
    if not stands_for:
        return None
    dropped = {i for group in stands_for.values() for i in group[1:]}  # (each group has two rows or more)
    return Distinct([i for i in range(count) if i not in dropped], stands_for)


def _grouped(key_columns: Sequence[Any], rows: list[int], filled: Mapping[int, int]) -> dict[int, list[int]]:
    """The groups of equal keys among ``rows`` (ascending) with more than one row, and the
    rows ``filled`` adds to them, by their first row."""
    first: dict[tuple, int] = {}
    stands_for: dict[int, list[int]] = {}
    for i in rows:
        if i not in filled:
            at = first.setdefault(_key(key_columns, i), i)
            if at != i:
                stands_for.setdefault(at, [at]).append(i)
    for i, j in filled.items():
        at = first[_key(key_columns, j)]
        stands_for.setdefault(at, [at]).append(i)
    return stands_for


def _key(key_columns: Sequence[Any], i: int) -> tuple:
    return tuple(column[i] for column in key_columns)


def repeated_rows(key_columns: Sequence[Sequence[Any]], count: int) -> list[int]:
    """The rows (ascending) whose key may equal another row's: every row that has a repeat,
    and rarely one that only shares its mixed number. Empty when all keys are different."""
    if count < _NUMPY_FROM and "numpy" not in sys.modules:
        return _repeated_keys(key_columns, count)
    import numpy as np

    numbers = np.zeros(count, dtype=np.uint64)
    for factor, column in zip(itertools.cycle(_FACTORS), key_columns):
        numbers ^= _numbers(column, count) * np.uint64(factor)  # (wraps around, as meant)
    order = np.argsort(numbers)  # (not stable: the rows found are sorted at the end)
    ranked = numbers[order]
    same = ranked[1:] == ranked[:-1]
    repeated = np.zeros(count, dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    return np.sort(order[repeated]).tolist()


def _repeated_keys(key_columns: Sequence[Sequence[Any]], count: int) -> list[int]:
    """The rows whose key equals another row's, by a dict of the keys (no numpy)."""
    if any(len(set(column)) == count for column in key_columns):
        return []  # (a column of all different keys: no tuple per row)
    keys = list(zip(*key_columns)) if key_columns else [()] * count
    times = Counter(keys)
    return [i for i, key in enumerate(keys) if times[key] > 1]


def _numbers(column: Sequence[Any], count: int) -> Any:
    """Each key's hash(): random 64-bit numbers for content ids (bytes hash with SipHash), and
    defined for every key a table has (None, a derived value's stand-in in table.py)."""
    import numpy as np

    return np.fromiter(map(hash, column), dtype=np.int64, count=count).view(np.uint64)
