"""DataFrames and Series in the Arrow IPC file format, for those Arrow gives back exactly.

Whether a frame (a plain DataFrame or Series, not a subclass) goes to Arrow is decided from its
dtypes and labels alone (no trial round trip,
no pass over the data): numbers and booleans, datetimes (with or without a time zone),
timedeltas, pandas' nullable Int/Float/boolean, pyarrow-backed text (pandas' default ``str``)
and categoricals of those come back with the same dtype, values, index and names. Object columns
(any Python object), ``string[python]`` (it comes back pyarrow-backed), a Datetime/Timedelta
index with a ``freq`` (Arrow drops it), a nullable (``Int64``...) index, non-text, duplicate or index-like column labels and
frames without columns do not: ``encode_*`` returns None and the value is pickled.

``attrs`` and a Series' name (``None``, ``0`` and ``"0"`` are three names) are pickled into the
schema metadata, as pandas' own metadata is JSON and would lose their types.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["arrow_exact", "decode_frame", "decode_series", "encode_frame", "encode_series", "load_frame", "load_series"]

_ATTRS = b"mandala_ast.attrs"
_NAME = b"mandala_ast.series_name"
_SERIES_COLUMN = "values"


def arrow_exact(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` comes back from Arrow exactly, judged by dtypes and labels only."""
    columns = frame.columns
    if not len(columns) or isinstance(columns, pd.MultiIndex) or not _text_dtype(columns.dtype):
        return False
    if not columns.is_unique or any(str(c).startswith("__index_level_") for c in columns):
        return False
    return _index_exact(frame.index) and all(_dtype_exact(dtype) for dtype in frame.dtypes)


def _index_exact(index: pd.Index) -> bool:
    if getattr(index, "freq", None) is not None:
        return False
    if any(name is not None and type(name) is not str for name in index.names):
        return False
    if isinstance(index, pd.MultiIndex):
        return all(_label_dtype_exact(level.dtype) for level in index.levels)
    return isinstance(index, pd.RangeIndex) or _label_dtype_exact(index.dtype)


def _label_dtype_exact(dtype: Any) -> bool:
    # An Int64 (nullable) index comes back as an Index of another class: pickled.
    return _dtype_exact(dtype) and type(dtype).__name__ not in _MASKED


def _dtype_exact(dtype: Any) -> bool:
    if isinstance(dtype, np.dtype):
        return dtype.kind in "biufmM"
    if isinstance(dtype, pd.CategoricalDtype):
        return _dtype_exact(dtype.categories.dtype)
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    return isinstance(dtype, pd.DatetimeTZDtype) or type(dtype).__name__ in _MASKED


_MASKED = frozenset(f"{kind}Dtype" for kind in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64", "Boolean"))


def _text_dtype(dtype: Any) -> bool:
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def encode_frame(frame: pd.DataFrame) -> bytes | None:
    # A subclass (a GeoDataFrame...) would come back as a plain DataFrame: pickled.
    if type(frame) is not pd.DataFrame or not arrow_exact(frame):
        return None
    return _ipc(frame, {_ATTRS: pickle.dumps(frame.attrs, protocol=5)})


def encode_series(series: pd.Series) -> bytes | None:
    if type(series) is not pd.Series:
        return None
    frame = series.to_frame(_SERIES_COLUMN)
    if not arrow_exact(frame):
        return None
    return _ipc(frame, {_ATTRS: pickle.dumps(series.attrs, protocol=5), _NAME: pickle.dumps(series.name, protocol=5)})


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
    return frame, metadata


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
