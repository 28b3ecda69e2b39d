"""pandas DataFrames, Series and Index objects: keyed by everything that makes them unequal.

A key holds the kind (frame, series or index), the index and column labels with their names and
dtypes, each column's dtype and values, a Series' name (``None`` is not ``0``) and ``attrs``.
Categoricals are keyed by their categories, their order, ``ordered`` and their codes; numeric,
datetime and timedelta buffers are hashed in place; object columns of text (strs and nulls) by
their UTF-8 bytes, lengths and null kinds without a Python step per element (``pandas_text``);
other object columns value by value. A DatetimeIndex's or TimedeltaIndex's ``freq`` is part of
the key where it is set, and so is the order of a MultiIndex's level values where it is not
sorted (unstack() orders columns by it). ``flags`` are not part of the key.

Stored in the Arrow IPC file format (codec ``pandas:frame``/``pandas:series``, read
memory-mapped from a file when large) when pyarrow is importable and every column and index
comes back from Arrow exactly (see ``pandas_storage``: object columns of text do); ``attrs``
and a Series' name travel in the schema metadata. Anything else (other object columns,
``string[python]``, a DatetimeIndex with a ``freq``, non-text column labels) is pickled
(protocol 5), which keeps every dtype exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import TypeHandler, add
from .pandas_text import text_column

__all__ = ["frame_key", "index_key", "level_orders", "series_key", "values_key"]


def frame_key(frame: pd.DataFrame) -> tuple:
    columns = tuple(values_key(frame.iloc[:, i].array) for i in range(frame.shape[1]))
    return ("frame", index_key(frame.index), index_key(frame.columns), columns, frame.attrs)


def series_key(series: pd.Series) -> tuple:
    return ("series", series.name, index_key(series.index), values_key(series.array), series.attrs)


def index_key(index: pd.Index) -> tuple:
    if isinstance(index, pd.MultiIndex):
        levels = tuple(values_key(index.get_level_values(i).array) for i in range(index.nlevels))
        key = ("multi", tuple(index.names), levels)
        orders = level_orders(index)
        return key if orders is None else (*key, ("levels", orders))
    as_range = _range_key(index)
    key = ("index", tuple(index.names), as_range or values_key(index.array))
    # A DatetimeIndex's or TimedeltaIndex's freq: equals() ignores it, but shift(), resample()
    # and freqstr read it. Only where there is one, so that every other index keeps its id.
    freq = getattr(index, "freq", None) if not isinstance(index.dtype, pd.PeriodDtype) else None
    return key if freq is None else (*key, ("freq", freq))


def level_orders(index: pd.MultiIndex) -> tuple | None:
    """The order of the values each level uses, where some level's is not sorted (a
    categorical's order, ``stack()``'s columns): ``unstack()`` orders its columns by it. None
    where every level is sorted, as set_index, from_arrays and from_tuples make them, which
    the values alone tell: every such MultiIndex keeps its id. Values a level holds but no
    row uses (left by a selection) show only in ``.levels``: not keyed."""
    orders, sorted_levels = [], True
    for level, codes in zip(index.levels, index.codes):
        codes = np.asarray(codes)
        used = level[np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(level)))]
        sorted_levels = sorted_levels and used.is_monotonic_increasing
        orders.append(used)
    return None if sorted_levels else tuple(values_key(used.array) for used in orders)


def _range_key(index: pd.Index) -> tuple | None:
    """``(start, step, length)`` of a RangeIndex, or of an int64 Index that equals one (as
    pandas deems them): a RangeIndex of 10M rows is not materialised to be hashed."""
    if isinstance(index, pd.RangeIndex):
        start, step, size = index.start, index.step, len(index)
    elif index.dtype == np.int64 and len(index) > 0:
        values = np.asarray(index)
        start, size = int(values[0]), len(values)
        step = int(values[1] - values[0]) if size > 1 else 1
        if size > 1 and (step == 0 or not (np.diff(values) == step).all()):
            return None
    else:
        return None
    if size <= 1:
        start, step = (start if size else 0), 1
    return ("range", int(start), int(step), size)


def values_key(values: Any) -> tuple:
    """The key of a column's (or an index's) values, whatever their dtype."""
    dtype = values.dtype
    if type(dtype).__name__ in ("NumpyEADtype", "PandasDtype"):
        # A plain numpy column's ``.array`` wraps its ndarray; unwrapped (no copy) it is hashed
        # in place, where the wrapper's dtype would take the nullable path (a mask, a copy).
        values = values.to_numpy()
        dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = values_key(dtype.categories.array)
        return ("category", categories, dtype.ordered, np.asarray(values.codes))
    if isinstance(dtype, np.dtype) and dtype.kind != "O":  # not object dtype
        return (dtype.str, np.asarray(values))
    if hasattr(values, "asi8"):  # tz-aware datetimes, periods: int64 ticks, dtype names the tz
        return (str(dtype), np.asarray(values.asi8))
    if getattr(dtype, "storage", None) == "pyarrow" or type(dtype).__name__ == "ArrowDtype":
        return (str(dtype), _arrow_key(values))
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if numpy_dtype is not None and numpy_dtype.kind in "iufcb":  # nullable Int64, Float64, boolean
        mask = np.asarray(values.isna())
        data = values.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0))
        return (str(dtype), mask, data)
    return (str(dtype), objects_key(np.asarray(values, dtype=object)))


def _arrow_key(values: Any) -> tuple:
    # pyarrow-backed text (pandas' default string dtype when pyarrow is installed): hashed from
    # its Arrow buffers, as pyarrow values are, not materialised as Python strings.
    import pyarrow as pa

    from .arrow_types import column_key

    return column_key(pa.chunked_array(values.__arrow_array__()))


def objects_key(values: np.ndarray) -> Any:
    """Object values by value: text (strs and None/NaN/NA) as byte lengths, bytes and null kinds
    (see ``pandas_text``), others as a list."""
    text = text_column(values)
    return text.key() if text is not None else values.tolist()


def _storage():
    # pyarrow is optional: without it frames are pickled (and cannot be loaded from Arrow files).
    try:
        from . import pandas_storage
    except ImportError:
        return None
    return pandas_storage


_native = _storage()
if _native is not None:
    add(TypeHandler(pd.DataFrame, frame_key, _native.encode_frame, _native.decode_frame, "pandas:frame", _native.load_frame))
    add(TypeHandler(pd.Series, series_key, _native.encode_series, _native.decode_series, "pandas:series", _native.load_series))
else:
    add(TypeHandler(pd.DataFrame, frame_key))
    add(TypeHandler(pd.Series, series_key))
add(TypeHandler(pd.Index, lambda index: ("index-object", type(index).__name__, index_key(index))))
