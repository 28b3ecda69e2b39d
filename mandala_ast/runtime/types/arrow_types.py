"""pyarrow Tables, RecordBatches, ChunkedArrays and Arrays: keyed independently of chunking.

A Table re-chunked, or sliced back to equal values, holds other buffers (offsets, chunk
boundaries, the bytes behind null slots) for the same values, so buffers are not the key.
The key is the schema (field names, types, nullability, metadata) and, per column, its null mask
and its values with nulls filled: numbers and times as one numpy buffer, text and binary as
lengths and bytes, a dictionary column as its dictionary and its indices (the dictionary's order
and unused entries show in ``to_pandas()``'s categories), other types (lists, structs,
decimals) value by value.

Stored in the Arrow IPC file format (codec ``arrow:<kind>``); a large one is read memory-mapped
from its file, zero-copy.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from . import TypeHandler, add

__all__ = ["column_key", "schema_key"]


def schema_key(schema: pa.Schema) -> tuple:
    fields = tuple((f.name, str(f.type), f.nullable, f.metadata) for f in schema)
    return (fields, schema.metadata)


def column_key(column: pa.ChunkedArray | pa.Array) -> tuple:
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    kind = column.type
    nulls = sum(chunk.null_count for chunk in chunks)
    mask = _joined([np.asarray(c.is_null()) for c in chunks], np.bool_) if nulls else None
    if nulls:
        chunks = [_filled(c) for c in chunks]
    return (str(kind), mask, _values_key(kind, chunks))


def _values_key(kind: pa.DataType, chunks: list) -> Any:
    if pa.types.is_dictionary(kind):
        return _dictionary_key(chunks)
    if _fixed_width(kind):
        return _joined([c.to_numpy(zero_copy_only=False) for c in chunks], None)
    if pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
        return _text_key(kind, chunks)
    return [value for chunk in chunks for value in chunk.to_pylist()]


def _dictionary_key(chunks: list) -> tuple:
    """The dictionary and every value's index in it. Chunks with dictionaries of their own are
    keyed as unified into one, as ``to_pandas()`` and ``combine_chunks()`` see them: chunking
    is no part of a column's key."""
    if any(not chunk.dictionary.equals(chunks[0].dictionary) for chunk in chunks[1:]):
        chunks = pa.chunked_array(chunks).unify_dictionaries().chunks
    dictionary = column_key(chunks[0].dictionary) if chunks else None
    indices = [chunk.indices.fill_null(0).to_numpy(zero_copy_only=False) for chunk in chunks]
    return ("dictionary", dictionary, _joined(indices, None))


def _fixed_width(kind: pa.DataType) -> bool:
    types = pa.types
    return types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind) or types.is_timestamp(kind) or types.is_duration(kind) or types.is_date(kind)


def _text_key(kind: pa.DataType, chunks: list) -> tuple:
    """Where each value ends, counted from the column's first byte (int64), and the bytes of
    every value: what slicing and chunking leave unchanged."""
    wide = pa.types.is_large_string(kind) or pa.types.is_large_binary(kind)
    offset_type = np.int64 if wide else np.int32
    ends, datas, total = [], [], 0
    for chunk in chunks:
        if not len(chunk):
            continue
        _, offsets_buffer, data_buffer = chunk.buffers()
        offsets = np.frombuffer(offsets_buffer, offset_type)[chunk.offset : chunk.offset + len(chunk) + 1]
        first = int(offsets[0])
        if wide and first == total == 0:
            ends.append(offsets[1:])  # already the key (pandas' str columns): no pass over it
        else:
            ends.append(offsets[1:].astype(np.int64) + (total - first))
        total += int(offsets[-1]) - first
        if data_buffer is not None:
            datas.append(memoryview(data_buffer)[first : int(offsets[-1])])
    # As numpy arrays, which are hashed in place: bytes in a key would be copied into it.
    data = np.frombuffer(datas[0], np.uint8) if len(datas) == 1 else np.frombuffer(b"".join(datas), np.uint8)
    return ("text", _joined(ends, np.int64), data)


def _filled(chunk: pa.Array) -> pa.Array:
    """The chunk with nulls replaced by a fixed value: the bytes behind a null are arbitrary."""
    kind = chunk.type
    if _fixed_width(kind):
        return chunk.fill_null(pa.scalar(0 if not pa.types.is_boolean(kind) else False).cast(kind))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return chunk.fill_null("")
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return chunk.fill_null(b"")
    return chunk  # kept value by value: a null is None


def _joined(parts: list, dtype) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return np.empty(0, dtype or np.int8)
    return np.concatenate(parts)


def table_key(table: pa.Table | pa.RecordBatch) -> tuple:
    return (schema_key(table.schema), table.num_rows, tuple(column_key(c) for c in table.columns))


def _ipc(table: pa.Table | pa.RecordBatch) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write(table)
    return sink.getvalue()


def _read(source) -> pa.Table:
    return pa.ipc.open_file(source).read_all()


def _register(kind, codec: str, to_table, from_table) -> None:
    def encode(value):
        return _ipc(to_table(value))

    def decode(data):
        return from_table(_read(pa.py_buffer(data)))

    def load(path: Path):
        return from_table(_read(pa.memory_map(str(path))))

    add(TypeHandler(kind, _keys[kind], encode, decode, codec, load))


_keys = {
    pa.Table: table_key,
    pa.RecordBatch: table_key,
    pa.ChunkedArray: lambda column: ("column", column_key(column)),
    pa.Array: lambda array: ("array", column_key(array)),
}


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    if batches:
        return batches[0]
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in table.schema], schema=table.schema)


_register(pa.Table, "arrow:table", lambda t: t, lambda t: t)
_register(pa.RecordBatch, "arrow:batch", lambda b: b, _one_batch)
_register(pa.ChunkedArray, "arrow:chunked", lambda c: pa.table({"c": c}), lambda t: t.column(0))
_register(pa.Array, "arrow:array", lambda a: pa.table({"a": a}), lambda t: t.column(0).combine_chunks())
