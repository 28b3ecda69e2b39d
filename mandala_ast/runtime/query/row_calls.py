"""Each row's matched call ids, as a query result carries them in ``df.attrs``.

``storage.delete_calls(df)`` and delete blocks read them; most DataFrames are only looked at.
So a result keeps the SQL result's call-id columns and makes a tuple per row on first use:
building 500k tuples up front cost a fifth of ``q.df()`` on a 1M-call store.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .distinct import Distinct

__all__ = ["RowCalls", "RowValues"]


class RowCalls(Sequence):
    """A read-only list of tuples of call ids, one tuple per row (indexed like a list).

    Copies are the object itself: pandas deep-copies ``attrs`` into the result of nearly
    every operation (``df.head()``, ``df[mask]``), which for a list of 500k tuples took a
    second each time. Nothing changes it after the query, so sharing it is safe.
    """

    def __init__(self, columns: Sequence[Sequence[bytes | None]] = (), rows: list[tuple] | None = None,
                 *, sparse: bool = False, merged: dict[int, tuple] | None = None) -> None:
        self._columns = columns  # one column of call ids per call node, a row per position
        self._rows = rows  # the tuples, once built
        self._sparse = sparse  # the columns hold None where a row matched no call (under an `if`)
        self._merged = merged or {}  # rows whose tuple is not their columns' (kept())

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> RowCalls:
        return cls(rows=rows)

    def kept(self, distinct: Distinct) -> RowCalls:
        """The calls of the rows a table keeps, a kept row with the calls of every row it
        stands for (each once, in the order found).

        >>> from mandala_ast.runtime.query.distinct import Distinct
        >>> RowCalls([[b"f1", b"f2", b"f3"]]).kept(Distinct(keep=[0, 1], stands_for={0: [0, 2]}))[0]
        (b'f1', b'f3')
        """
        keep = distinct.keep
        merged = {bisect.bisect_left(keep, first): tuple(dict.fromkeys(itertools.chain.from_iterable(map(self._row, rows))))
                  for first, rows in distinct.stands_for.items()}
        if self._rows is not None:
            return RowCalls(rows=[*map(self._rows.__getitem__, keep)], merged=merged)
        return RowCalls([[*map(column.__getitem__, keep)] for column in self._columns], sparse=self._sparse, merged=merged)

    def _row(self, i: int) -> tuple:
        if self._rows is not None:
            return self._rows[i]
        row = tuple(column[i] for column in self._columns)
        return tuple(h for h in row if h is not None) if self._sparse else row

    def _all(self) -> list[tuple]:
        if self._rows is None:
            rows = zip(*self._columns)
            self._rows = [tuple(h for h in row if h is not None) for row in rows] if self._sparse else list(rows)
        if self._merged:
            for at, row in self._merged.items():
                self._rows[at] = row
            self._merged = {}
        return self._rows

    def __getitem__(self, index: Any) -> Any:  # a list's errors: IndexError, TypeError
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Any:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        # pd.concat keeps attrs only when its inputs' attrs are equal, as lists compared.
        if isinstance(other, RowCalls):
            return other is self or self._all() == list(other)
        if isinstance(other, list):
            return self._all() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list, so unhashable like one

    def __copy__(self) -> RowCalls:
        return self

    def __deepcopy__(self, memo: dict) -> RowCalls:
        return self

    def __repr__(self) -> str:
        return f"RowCalls({len(self)} rows)"


class RowValues:
    """The values a query result showed, by column name and row position: what its rows are
    checked against when they come back to ``storage.delete_calls``. A row's label is its
    position only while the index is the result's own; ``reset_index()`` after sorting or
    filtering numbers other rows 0, 1, ..., which would name other rows' calls.

    Shared, never copied (as :class:`RowCalls`), and equal only to itself: pandas compares
    ``attrs`` in ``pd.concat``, and values (arrays) cannot always be compared.

    >>> RowValues(["x"], [[1, 2]]).column("x")[1]
    2
    """

    def __init__(self, names: Sequence[str], columns: Sequence[Sequence[Any]]) -> None:
        self._columns = dict(zip(names, columns))

    def column(self, name: str) -> Sequence[Any] | None:
        return self._columns.get(name)

    def __eq__(self, other: object) -> bool:
        return other is self

    __hash__ = object.__hash__

    def __copy__(self) -> RowValues:
        return self

    def __deepcopy__(self, memo: dict) -> RowValues:
        return self

    def __repr__(self) -> str:
        return f"RowValues({list(self._columns)})"
