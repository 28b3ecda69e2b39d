"""DataFrames and Series in the Arrow IPC file format, for those Arrow gives back exactly.

Whether a frame (a plain DataFrame or Series, not a subclass) goes to Arrow is decided from its
dtypes and labels (no trial round trip): numbers and booleans, datetimes (with or without a time
zone), timedeltas, pandas' nullable Int/Float/boolean, pyarrow-backed text (pandas' default
``str``) and categoricals of numpy numbers, naive datetimes, timedeltas and ``str`` come back
with the same dtype, values, index and names.
Object columns of text come back too, as object columns of ``str``: those whose elements are
all ``str`` (not a subclass) with at most one kind of null, ``None`` or ``NaN`` (Arrow has one
null; the kind is kept in the metadata); so does an object index of text (not a MultiIndex's). Telling takes one look at each distinct object
(``pandas_text``). Other object columns (any Python object), ``string[python]`` (it comes back
pyarrow-backed), a Datetime/Timedelta index with a ``freq`` (Arrow drops it), a MultiIndex
whose level values are not sorted (Arrow sorts them), a nullable
(``Int64``...) index, non-text, duplicate or index-like column labels and frames without
columns do not: ``encode_*`` returns None and the value is pickled.

``attrs``, a Series' name (``None``, ``0`` and ``"0"`` are three names) and the null kinds of
object text columns are pickled into the schema metadata, as pandas' own metadata is JSON and
would lose their types.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .pandas_text import NAN, storable_nulls

__all__ = ["arrow_exact", "decode_frame", "decode_series", "encode_frame", "encode_series", "load_frame", "load_series"]

_ATTRS = b"mandala_ast.attrs"
_NAME = b"mandala_ast.series_name"
_TEXT = b"mandala_ast.object_text"
_INDEX_TEXT = b"mandala_ast.object_text_index"
_SERIES_COLUMN = "values"


def arrow_exact(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` comes back from Arrow exactly (see the module's docstring)."""
    return _object_text(frame) is not None


def _index_text(index: pd.Index) -> int | None:
    """For a plain index of dtype object holding text: the kind of its nulls (as for text
    columns); None for any other index."""
    if type(index) is not pd.Index or index.dtype != object:
        return None
    return storable_nulls(index.to_numpy())


def _object_text(frame: pd.DataFrame) -> dict[str, int] | None:
    """None if ``frame`` does not come back from Arrow exactly; else its object columns (all
    text) by name, with the kind of their nulls."""
    columns = frame.columns
    if not len(columns) or isinstance(columns, pd.MultiIndex) or not _text_dtype(columns.dtype):
        return None
    if not columns.is_unique or any(str(c).startswith("__index_level_") for c in columns):
        return None
    if not _index_exact(frame.index):
        return None
    text = {}
    for position, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, np.dtype) and dtype.kind == "O":
            nulls = storable_nulls(frame.iloc[:, position].to_numpy())
            if nulls is None:
                return None
            text[columns[position]] = nulls
        elif not _dtype_exact(dtype):
            return None
    return text


def _index_exact(index: pd.Index) -> bool:
    if getattr(index, "freq", None) is not None:
        return False
    if any(name is not None and type(name) is not str for name in index.names):
        return False
    if _index_text(index) is not None:
        return True
    if isinstance(index, pd.MultiIndex):
        from .pandas_types import level_orders  # (pandas_types imports this module)

        # Arrow rebuilds each level sorted: an order of their own (stack()'s) is pickled.
        return all(_label_dtype_exact(level.dtype) for level in index.levels) and level_orders(index) is None
    return isinstance(index, pd.RangeIndex) or _label_dtype_exact(index.dtype)


def _label_dtype_exact(dtype: Any) -> bool:
    # An Int64 (nullable) index comes back as an Index of another class: pickled.
    return _dtype_exact(dtype) and type(dtype).__name__ not in _MASKED


def _dtype_exact(dtype: Any) -> bool:
    if isinstance(dtype, np.dtype):
        return dtype.kind in "biufmM"
    if isinstance(dtype, pd.CategoricalDtype):
        return _categories_exact(dtype.categories.dtype)
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    return isinstance(dtype, pd.DatetimeTZDtype) or type(dtype).__name__ in _MASKED


def _categories_exact(dtype: Any) -> bool:
    """Arrow keeps a dictionary's values but not their pandas dtype: categories come back as
    numpy numbers, naive datetimes, timedeltas or pandas' ``str``. Time-zone-aware categories
    came back naive (in UTC), nullable and ``string`` ones as numpy's and ``str``."""
    if isinstance(dtype, np.dtype):
        return dtype.kind in "biufmM"
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow" and dtype.na_value is np.nan


_MASKED = frozenset(f"{kind}Dtype" for kind in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64", "Boolean"))


def _text_dtype(dtype: Any) -> bool:
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def encode_frame(frame: pd.DataFrame) -> bytes | None:
    # A subclass (a GeoDataFrame...) would come back as a plain DataFrame: pickled.
    text = _object_text(frame) if type(frame) is pd.DataFrame else None
    if text is None:
        return None
    extra = {_ATTRS: frame.attrs, _TEXT: text, _INDEX_TEXT: _index_text(frame.index)}
    return _ipc(frame, {key: pickle.dumps(value, protocol=5) for key, value in extra.items()})


def encode_series(series: pd.Series) -> bytes | None:
    if type(series) is not pd.Series:
        return None
    frame = series.to_frame(_SERIES_COLUMN)
    text = _object_text(frame)
    if text is None:
        return None
    extra = {_ATTRS: series.attrs, _NAME: series.name, _TEXT: text, _INDEX_TEXT: _index_text(series.index)}
    return _ipc(frame, {key: pickle.dumps(value, protocol=5) for key, value in extra.items()})


def _ipc(frame: pd.DataFrame, extra: dict) -> bytes:
    table = pa.Table.from_pandas(frame)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write(table)
    return sink.getvalue()


def _frame(source) -> tuple[pd.DataFrame, dict]:
    table = pa.ipc.open_file(source).read_all()
    metadata = table.schema.metadata or {}
    frame = table.to_pandas()  # copies into pandas' own (writable) memory
    frame.attrs = pickle.loads(metadata[_ATTRS])
    index_nulls = pickle.loads(metadata[_INDEX_TEXT]) if _INDEX_TEXT in metadata else None
    if index_nulls is not None:  # to_pandas makes it pandas' str dtype; it went in as objects
        frame.index = _object_index(frame.index, index_nulls)
    for name, nulls in (pickle.loads(metadata[_TEXT]) if _TEXT in metadata else {}).items():
        # to_pandas makes text columns pandas' str dtype; these went in as object columns.
        frame.isetitem(frame.columns.get_loc(name), _objects(table.column(name), nulls, frame.index))
    return frame, metadata


def _objects(column: pa.ChunkedArray, nulls: int, index: pd.Index) -> pd.Series:
    values = column.to_numpy(zero_copy_only=False)  # str objects, None for nulls
    if nulls == NAN:
        values[np.asarray(column.is_null())] = np.nan
    return pd.Series(values, index=index, dtype=object, copy=False)


def _object_index(index: pd.Index, nulls: int) -> pd.Index:
    values = np.asarray(index, dtype=object)
    missing = pd.isna(values)
    values[missing] = np.nan if nulls == NAN else None
    return pd.Index(values, dtype=object, name=index.name, copy=False)


def _series(source) -> pd.Series:
    frame, metadata = _frame(source)
    series = frame[_SERIES_COLUMN]
    series.name = pickle.loads(metadata[_NAME])
    series.attrs = frame.attrs
    return series


def decode_frame(data: bytes) -> pd.DataFrame:
    return _frame(pa.py_buffer(data))[0]


def load_frame(path: Path) -> pd.DataFrame:
    return _frame(pa.memory_map(str(path)))[0]


def decode_series(data: bytes) -> pd.Series:
    return _series(pa.py_buffer(data))


def load_series(path: Path) -> pd.Series:
    return _series(pa.memory_map(str(path)))
