"""Object columns of text: keyed and stored without a Python step per element.

A column (an object ndarray) is text when every element is a ``str`` (a subclass such as
``numpy.str_`` is keyed as its text, as it compares equal to it) or a null of one of three kinds: ``None``, a float NaN, ``pd.NA``.
Such a column is keyed as where each element's UTF-8 bytes end (the byte lengths summed),
their bytes, and, if it has nulls, each element's kind (0 text, 1 None, 2 NaN, 3 NA): ``None``,
``NaN`` and ``"nan"`` are three values. Any other column is keyed value by value (see ``pandas_types``).

No Python step per element: a column whose objects repeat (``read_csv`` makes one object per
distinct value) has its elements grouped by object identity (``pd.factorize`` of the pointers,
in C), each distinct object looked at once in Python, and the UTF-8 bytes of the whole column
gathered by pyarrow from the distinct strings (``take``); a column of distinct objects is
checked by ``infer_dtype`` and converted by pyarrow, both in C. Either way gives the same key,
and so does Python's encoder where pyarrow is missing or refuses a string (a lone surrogate).
"""

from __future__ import annotations

import ctypes
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["NA", "NAN", "NONE", "TEXT", "TextColumn", "storable_nulls", "text_column"]

TEXT, NONE, NAN, NA = 0, 1, 2, 3


class TextColumn:
    """A text column's parts: its key, and what storing it needs (kinds of its nulls)."""

    __slots__ = ("data", "ends", "kinds")

    def __init__(self, ends: np.ndarray, data: np.ndarray, kinds: np.ndarray | None) -> None:
        #: Where each element's bytes end in ``data`` (int64): its lengths, summed as they come.
        self.ends, self.data, self.kinds = ends, data, kinds

    def key(self) -> tuple:
        return ("text", self.ends, self.data, self.kinds)

    def null_kinds(self) -> set:
        return set() if self.kinds is None else set(np.unique(self.kinds[self.kinds != TEXT]).tolist())


def text_column(values: np.ndarray) -> TextColumn | None:
    """The column as text (see the module's docstring), or None if it is not text.

    >>> column = text_column(np.array(["ab", None, "é"], dtype=object))
    >>> column.ends.tolist(), bytes(column.data), column.kinds.tolist()
    ([2, 2, 4], b'ab\\xc3\\xa9', [0, 1, 0])
    >>> text_column(np.array(["ab", 1], dtype=object)) is None
    True
    """
    values = np.ascontiguousarray(values, dtype=object).reshape(-1)
    if _mostly_distinct(values):
        text = _distinct_text(values)
        if text is not False:
            return text
    return _grouped_text(values)


def storable_nulls(values: np.ndarray) -> int | None:
    """For storing a text column as Arrow strings, which have one kind of null: the kind its
    nulls are (TEXT if it has none), or None if it cannot come back exactly (a ``str``
    subclass, two kinds of nulls, ``pd.NA``, anything not text)."""
    values = np.ascontiguousarray(values, dtype=object).reshape(-1)
    uniques = values[_first_appearances(_identity_codes(values))].tolist()
    if not all(type(value) is str or _kind(value) in (NONE, NAN) for value in uniques):
        return None
    kinds = {_kind(value) for value in uniques} - {TEXT}
    return TEXT if not kinds else kinds.pop() if len(kinds) == 1 else None


def _mostly_distinct(values: np.ndarray) -> bool:
    # Which way is faster (both give one key): grouping by object pays off when objects repeat.
    sample = values[:4096]
    return len(set(map(id, sample))) > len(sample) // 2


def _distinct_text(values: np.ndarray) -> TextColumn | None | Literal[False]:
    """The column converted by pyarrow element by element (in C); False: ask ``_grouped_text``
    (no pyarrow, or a string it cannot encode)."""
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None  # something other than text and nulls (bytes, which pyarrow would take too)
    try:
        import pyarrow as pa

        column = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (ImportError, UnicodeEncodeError, ValueError, TypeError):  # Arrow's errors are these
        return False
    kinds = None
    if column.null_count:
        positions = np.flatnonzero(np.asarray(column.is_null()))
        null_kinds = [_kind(value) for value in values[positions].tolist()]
        if -1 in null_kinds:
            return None
        kinds = np.zeros(len(values), np.int8)
        kinds[positions] = null_kinds
    return TextColumn(*_buffers(column), kinds)


def _grouped_text(values: np.ndarray) -> TextColumn | None:
    codes = _identity_codes(values)
    uniques = values[_first_appearances(codes)].tolist()
    unique_kinds = [_kind(value) for value in uniques]
    if -1 in unique_kinds:
        return None
    strings = [value if kind == TEXT else "" for value, kind in zip(uniques, unique_kinds)]
    ends, data = _utf8(strings, codes, len(uniques) == len(values))
    kinds = np.asarray(unique_kinds, np.int8)[codes] if any(unique_kinds) else None
    return TextColumn(ends, data, kinds)


def _identity_codes(values: np.ndarray) -> np.ndarray:
    """For each element, the number of the distinct object it is (in order of appearance).
    numpy refuses to view an object array as integers; ctypes reads its pointers as they are
    (``values`` keeps the objects alive while they are read)."""
    if not len(values):
        return np.empty(0, np.intp)
    pointers = np.ctypeslib.as_array((ctypes.c_ssize_t * len(values)).from_address(values.ctypes.data))
    codes, _ = pd.factorize(pointers)
    return codes


def _first_appearances(codes: np.ndarray) -> np.ndarray:
    # factorize numbers objects in order of appearance: the running maximum reaches each code
    # first where that code first appears, found by binary search (one search per object).
    if not len(codes):
        return np.empty(0, np.intp)
    running = np.maximum.accumulate(codes)
    return np.searchsorted(running, np.arange(running[-1] + 1))


def _kind(value: Any) -> int:
    if isinstance(value, str):  # a subclass (numpy.str_) is keyed as its text, as it compares
        return TEXT
    if value is None:
        return NONE
    if type(value) is float and value != value:
        return NAN
    return NA if value is pd.NA else -1


def _utf8(strings: list, codes: np.ndarray, distinct: bool) -> tuple[np.ndarray, np.ndarray]:
    """Ends (int64) and UTF-8 bytes of ``strings[code]`` for every code."""
    try:
        import pyarrow as pa

        column = pa.array(strings, type=pa.large_string())
        if not distinct:
            column = column.take(pa.array(codes))
    except (ImportError, UnicodeEncodeError):  # a lone surrogate: Python's encoder takes it
        return _utf8_python(strings, codes)
    return _buffers(column)


def _buffers(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ends and UTF-8 bytes of an Arrow large_string array (a null's length is 0)."""
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[column.offset : column.offset + len(column) + 1]
    data = np.frombuffer(data_buffer, np.uint8)[offsets[0] : offsets[-1]] if data_buffer is not None else np.empty(0, np.uint8)
    # A new array's offsets start at 0: they are the ends, viewed in place.
    return (offsets[1:] - offsets[0]) if offsets[0] else offsets[1:], data


def _utf8_python(strings: list, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    encoded = [text.encode("utf-8", "surrogatepass") for text in strings]
    sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    data = b"".join([encoded[code] for code in codes.tolist()])
    return np.cumsum(sizes[codes], dtype=np.int64), np.frombuffer(data, np.uint8)
