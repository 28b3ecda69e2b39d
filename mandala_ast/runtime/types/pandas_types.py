"""pandas DataFrames, Series and Index objects: keyed by everything that makes them unequal.

A key holds the kind (frame, series or index), the index and column labels with their names and
dtypes, each column's dtype and values, a Series' name (``None`` is not ``0``) and ``attrs``.
Categoricals are keyed by their categories, their order, ``ordered`` and their codes; numeric,
datetime and timedelta buffers are hashed in place; text by its characters and lengths (no
per-object work beyond one pass); other object columns value by value. ``flags`` are not part
of the key. Stored with pickle (protocol 5), which keeps every dtype, index and ``attrs`` exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import TypeHandler, add

__all__ = ["frame_key", "index_key", "series_key", "values_key"]


def frame_key(frame: pd.DataFrame) -> tuple:
    columns = tuple(values_key(frame.iloc[:, i].array) for i in range(frame.shape[1]))
    return ("frame", index_key(frame.index), index_key(frame.columns), columns, frame.attrs)


def series_key(series: pd.Series) -> tuple:
    return ("series", series.name, index_key(series.index), values_key(series.array), series.attrs)


def index_key(index: pd.Index) -> tuple:
    if isinstance(index, pd.MultiIndex):
        levels = tuple(values_key(index.get_level_values(i).array) for i in range(index.nlevels))
        return ("multi", tuple(index.names), levels)
    return ("index", tuple(index.names), values_key(index.array))


def values_key(values: Any) -> tuple:
    """The key of a column's (or an index's) values, whatever their dtype."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = values_key(dtype.categories.array)
        return ("category", categories, dtype.ordered, np.asarray(values.codes))
    if isinstance(dtype, np.dtype) and dtype != object:
        return (dtype.str, np.asarray(values))
    if hasattr(values, "asi8"):  # tz-aware datetimes, periods: int64 ticks, dtype names the tz
        return (str(dtype), np.asarray(values.asi8))
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if numpy_dtype is not None and numpy_dtype.kind in "iufcb":  # nullable Int64, Float64, boolean
        mask = np.asarray(values.isna())
        data = values.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0))
        return (str(dtype), mask, data)
    return (str(dtype), objects_key(np.asarray(values, dtype=object)))


def objects_key(values: np.ndarray) -> Any:
    """Object values by value: all-text arrays as lengths and characters (fast), others as a list."""
    if all(type(v) is str for v in values):
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        return ("text", lengths, "".join(values))
    return values.tolist()


add(TypeHandler(pd.DataFrame, frame_key))
add(TypeHandler(pd.Series, series_key))
add(TypeHandler(pd.Index, lambda index: ("index-object", type(index).__name__, index_key(index))))
