"""Pickle with its large buffers (numpy arrays) laid out raw after it, loadable memory-mapped.

Pickle protocol 5 hands contiguous numpy arrays to a ``buffer_callback`` instead of copying them
into the stream. They are written after the pickled rest, each 64-byte aligned, so loading
maps the file and gives each array a view of its bytes (copy-on-write, like ``.npy`` files):
a large value loads lazily, page by page, yet everything pickle keeps (coordinates, attrs,
names, dtypes) comes back exactly. Loading runs pickle, like the ``pickle`` codec.

Layout: magic, u64 length of the pickle, u64 count of buffers, (u64 offset, u64 length) per
buffer, the pickle, the buffers.
"""

from __future__ import annotations

import mmap
import pickle
import struct
from pathlib import Path
from typing import Any

__all__ = ["dumps", "load_file", "loads"]

_MAGIC = b"MNDLPB1\0"
_ALIGN = 64


def dumps(value: Any) -> bytes:
    """``value`` as one bytes object: its pickle, then its out-of-band buffers raw."""
    buffers: list[pickle.PickleBuffer] = []
    body = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    raws = [buffer.raw() for buffer in buffers]
    offset = _aligned(len(_MAGIC) + 16 + 16 * len(raws) + len(body))
    table: list[tuple[int, int]] = []
    for raw in raws:
        table.append((offset, raw.nbytes))
        offset = _aligned(offset + raw.nbytes)
    header = _MAGIC + struct.pack("<QQ", len(body), len(raws)) + b"".join(struct.pack("<QQ", *entry) for entry in table)
    parts: list[bytes | memoryview] = [header, body]
    end = len(header) + len(body)
    for (start, size), raw in zip(table, raws):
        parts += (bytes(start - end), raw)
        end = start + size
    return b"".join(parts)


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def loads(data: Any) -> Any:
    """Inverse of :func:`dumps`. Arrays view ``data`` when it is writable (a mapped file); bytes
    are copied once, as arrays read from read-only bytes could not be written to."""
    view = memoryview(data if not isinstance(data, bytes) else bytearray(data))
    if bytes(view[: len(_MAGIC)]) != _MAGIC:
        raise ValueError("not a pickled-buffers value")
    size, count = struct.unpack_from("<QQ", view, len(_MAGIC))
    table = [struct.unpack_from("<QQ", view, len(_MAGIC) + 16 + 16 * i) for i in range(count)]
    start = len(_MAGIC) + 16 + 16 * count
    buffers = [view[offset : offset + length] for offset, length in table]
    return pickle.loads(view[start : start + size], buffers=buffers)


def load_file(path: Path) -> Any:
    """Load from a file, memory-mapped copy-on-write: arrays are writable and load lazily."""
    with open(path, "rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
    return loads(mapped)
