"""polars DataFrames and Series: keyed through Arrow, stored in the Arrow IPC format.

The key is each column's name, its polars dtype (which names a Categorical's ordering, a
Datetime's unit and time zone) and its values as pyarrow sees them (see arrow_types: independent
of chunking, nulls by mask). Stored with ``write_ipc`` (codec ``polars:frame`` / ``polars:series``);
a large one is read from its file by polars' own IPC reader. Needs pyarrow (in the ``dev`` extra); without it
polars values are pickled.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from . import TypeHandler, add
from .arrow_types import column_key

__all__ = ["frame_key", "series_key"]


def series_key(series: pl.Series) -> tuple:
    return (series.name, str(series.dtype), column_key(series.to_arrow()))


def frame_key(frame: pl.DataFrame) -> tuple:
    return tuple(series_key(column) for column in frame.get_columns())


def _ipc(frame: pl.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.write_ipc(sink, compression="uncompressed")
    return sink.getvalue()


add(TypeHandler(
    pl.DataFrame, frame_key, _ipc, lambda data: pl.read_ipc(io.BytesIO(data)), "polars:frame",
    lambda path: pl.read_ipc(Path(path)),
))
add(TypeHandler(
    pl.Series, series_key, lambda series: _ipc(series.to_frame()),
    lambda data: pl.read_ipc(io.BytesIO(data)).to_series(), "polars:series",
    lambda path: pl.read_ipc(Path(path)).to_series(),
))
