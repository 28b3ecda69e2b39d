"""Codecs: how a value becomes bytes in the storage, chosen by type and recorded per value.

- ``json``: None, bool, int, float, str — readable in any SQLite browser, no pickle involved.
- ``npy``: numpy arrays of non-object dtype, via ``numpy.save(allow_pickle=False)``; large ones
  are stored as ``.npy`` files and loaded memory-mapped (copy-on-write), so they load lazily.
- ``bytes``: raw bytes.
- ``pickle``: everything else (protocol 5). Loading such a value runs pickle: a storage file is
  code, and should be trusted like code. Nothing is unpickled when a storage is opened.
- ``mlist``, ``mdict``, ``mset``: MList/MDict/MSet values, whose data is their elements'
  content ids (runtime/structures.py). Their elements are values of their own, so the storage
  decodes them, not :func:`decode`.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

__all__ = ["STRUCTURE_CODECS", "EncodedValue", "decode", "decode_file", "encode"]

#: Codecs of values stored element by element (see runtime/structures.py).
STRUCTURE_CODECS = frozenset({"mlist", "mdict", "mset"})
_JSON_TYPES = (type(None), bool, int, float, str)
_INT_FAST = 10**18


class EncodedValue:
    """A value's codec name and bytes."""

    __slots__ = ("codec", "data")

    def __init__(self, codec: str, data: bytes) -> None:
        self.codec = codec
        self.data = data


def encode(value: Any) -> EncodedValue:
    """Serialise ``value``; raises ``TypeError``/``pickle.PicklingError`` if it cannot be."""
    kind = type(value)
    if kind is int:
        if -_INT_FAST < value < _INT_FAST:
            return EncodedValue("json", b"%d" % value)  # json.dumps gives the same, 10x slower
        # Beyond 4300 digits str(int) refuses (Python 3.11+): store huge ints with pickle.
        return EncodedValue("pickle", pickle.dumps(value, protocol=5))
    if kind in _JSON_TYPES:
        return EncodedValue("json", json.dumps(value).encode())
    if kind is bytes:
        return EncodedValue("bytes", value)
    if kind.__module__ == "numpy" and _is_plain_ndarray(value):
        return EncodedValue("npy", _npy_bytes(value))
    return EncodedValue("pickle", pickle.dumps(value, protocol=5))


def decode(codec: str, data: bytes) -> Any:
    """Inverse of :func:`encode`."""
    if codec == "json":
        return _decode_json(data)
    if codec == "bytes":
        return bytes(data)
    if codec == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if codec == "pickle":
        return pickle.loads(data)
    if codec in STRUCTURE_CODECS:
        raise ValueError(f"a {codec!r} value is loaded through its Storage, which loads its elements")
    raise ValueError(f"unknown codec {codec!r} (was the storage written by a newer mandala_ast?)")


def _decode_json(data: bytes) -> Any:
    # Numbers are most of what is stored; int()/float() parse them 10x faster than json.loads
    # and agree with it on every JSON number (and on NaN/Infinity, which json.dumps writes).
    first = data[:1]
    if first.isdigit() or first == b"-":
        try:
            return int(data)
        except ValueError:
            try:
                return float(data)
            except ValueError:
                pass
    return json.loads(data)


def decode_file(codec: str, path: Path) -> Any:
    """Load a value stored as a file; arrays are memory-mapped copy-on-write (lazy, writable)."""
    if codec == "npy":
        import numpy as np

        return np.load(path, mmap_mode="c", allow_pickle=False)
    return decode(codec, path.read_bytes())


def _is_plain_ndarray(value: Any) -> bool:
    import numpy as np

    return type(value) is np.ndarray and value.dtype != object


def _npy_bytes(array: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
