"""Codecs: how a value becomes bytes in the storage, chosen by type and recorded per value.

- ``json``: None, bool, int, float, str — readable in any SQLite browser, no pickle involved.
- ``npy``: numpy arrays of non-object dtype, via ``numpy.save(allow_pickle=False)``; large ones
  are stored as ``.npy`` files and loaded memory-mapped (copy-on-write), so they load lazily.
- ``bytes``: raw bytes.
- codecs of registered types (runtime/types/): ``pandas`` (Arrow IPC), ``xarray`` (pickle and
  raw buffers), ``torch``, ``torch:state_dict`` (a dict of tensors), ``arrow``, ``polars``,
  ``sparse``, ``pil``, and ``user:...`` for
  types registered with ``register_type``; their handler encodes and decodes them, and loads
  a large one from its file lazily where the format allows.
- ``pickle``: everything else (protocol 5). Loading such a value runs pickle: a storage file is
  code, and should be trusted like code. Nothing is unpickled when a storage is opened.
- ``mlist``, ``mdict``, ``mset``: MList/MDict/MSet values, whose data is their elements'
  content ids (runtime/structures.py). Their elements are values of their own, so the storage
  decodes them, not :func:`decode`.
"""

from __future__ import annotations

import copyreg
import io
import json
import pickle
import sys
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import moved_classes
from .types import dict_handlers, handler_for, handler_for_codec

__all__ = ["STRUCTURE_CODECS", "EncodedValue", "decode", "decode_file", "encode", "maps_file", "pickle_stored_as"]

#: Codecs of values stored element by element (see runtime/structures.py).
STRUCTURE_CODECS = frozenset({"mlist", "mdict", "mset"})
_BUILTIN_CODECS = frozenset({"json", "bytes", "npy", "pickle"}) | STRUCTURE_CODECS
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
    if kind is float and value - value == 0:  # finite: json.dumps writes its repr, 5x slower
        return EncodedValue("json", float.__repr__(value).encode())
    if kind in _JSON_TYPES:
        return EncodedValue("json", json.dumps(value).encode())
    if kind is bytes:
        return EncodedValue("bytes", value)
    if kind.__module__ == "numpy" and _is_plain_ndarray(value):
        return EncodedValue("npy", _npy_bytes(value))
    handler = handler_for(kind)
    if handler is not None and handler.encode is not None:
        data = _native(handler, value)
        if data is not None:
            return EncodedValue(handler.codec, data)
    if kind is dict or kind is OrderedDict:  # a state_dict: its tensors raw, loaded lazily
        for handler in dict_handlers():
            data = _native(handler, value)
            if data is not None:
                return EncodedValue(handler.codec, data)
    return EncodedValue("pickle", _pickled(value))


#: Types whose pickle in the storage is not their pickle elsewhere: type -> reducer, as
#: copyreg takes one. A ValuePointer in a pickled value is stored by its name alone, as it is
#: stored alone (runtime/pointers.py adds it once a pointer is made: until then a pickle is
#: pickle.dumps). Elsewhere (a batch's worker process) it is pickled with its object.
_STORED_AS: dict[type, Callable[[Any], tuple]] = {}


def pickle_stored_as(kind: type, reducer: Callable[[Any], tuple]) -> None:
    """Store values of ``kind`` inside pickled values as ``reducer`` gives them."""
    _STORED_AS[kind] = reducer


def _pickled(value: Any) -> bytes:
    moved = moved_classes.any_moved()
    if not _STORED_AS and not moved:
        return pickle.dumps(value, protocol=5)
    out = io.BytesIO()
    # (a class at a place another moved from is named apart: moved_classes.py)
    pickler = (moved_classes.Pickler if moved else pickle.Pickler)(out, protocol=5)
    # (a dict, which the C pickler reads without a Python call: copyreg's may change meanwhile)
    pickler.dispatch_table = {**copyreg.dispatch_table, **_STORED_AS}
    pickler.dump(value)
    return out.getvalue()


def _native(handler: Any, value: Any) -> bytes | None:
    """The value in its handler's format, or None to pickle it: a format may not hold every
    value of its type (polars Object columns, Arrow extension types), pickle may."""
    try:
        return handler.encode(value)
    except Exception:  # the format's writer may raise anything; pickle says if it is hopeless
        return None


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
        if moved_classes.any_moved():  # a class's old place names it where it moved to
            return moved_classes.loads(data)
        return pickle.loads(data)
    if codec in STRUCTURE_CODECS:
        raise ValueError(f"a {codec!r} value is loaded through its Storage, which loads its elements")
    if codec == "transient":  # an output of a transient op: no value stored (transient.py)
        from .transient import NOT_STORED

        return NOT_STORED
    handler = handler_for_codec(codec)
    if handler is not None:
        return handler.decode(data)
    raise ValueError(f"unknown codec {codec!r} (was the storage written by a newer mandala_ast?)")


def _decode_json(data: bytes) -> Any:
    # Numbers are most of what is stored; int()/float() parse them 10x faster than json.loads
    # and agree with it on every JSON number (and on NaN/Infinity, which json.dumps writes).
    # Digits alone are an int; anything else is tried as a float without trying int first:
    # the ValueError int() raised for every float cost more than the parse (~1 µs).
    first = data[:1]
    if first.isdigit() or first == b"-":
        if (data[1:] if first == b"-" else data).isdigit():
            return int(data)
        try:
            return float(data)
        except ValueError:
            pass
    return json.loads(data)


def maps_file(codec: str) -> bool:
    """Whether values of ``codec`` stored as files are loaded from the file lazily (mapped)."""
    if codec == "npy":
        return True
    handler = handler_for_codec(codec) if codec not in _BUILTIN_CODECS else None
    return handler is not None and handler.load is not None


def decode_file(codec: str, path: Path) -> Any:
    """Load a value stored as a file. Arrays are memory-mapped copy-on-write (lazy, writable)
    and come back as a plain ``numpy.ndarray`` (viewing the map), the type that was stored: a
    ``numpy.memmap`` would be a type of its own to every op it is passed to."""
    if codec == "npy":
        import numpy as np

        return np.load(path, mmap_mode="c", allow_pickle=False).view(np.ndarray)
    handler = handler_for_codec(codec) if codec not in _BUILTIN_CODECS else None
    if handler is not None and handler.load is not None:
        return handler.load(path)
    return decode(codec, path.read_bytes())


def _is_plain_ndarray(value: Any) -> bool:
    # A memmap (or a slice of a loaded array) is stored as the array it is; np.matrix is
    # pickled, to come back a matrix (it multiplies as one). (A type of numpy's is in hand:
    # numpy is imported, and no import statement is run a value.)
    np = sys.modules["numpy"]

    # Objects (a record's object field too, numpy 2's StringDType) are pointers: .npy cannot
    # hold them without pickle, so they are pickled.
    return isinstance(value, np.ndarray) and not value.dtype.hasobject and type(value).__module__ == "numpy" \
        and type(value) is not np.matrix


def _npy_bytes(array: Any) -> bytes:
    """The bytes ``numpy.save`` writes. Its header depends only on the dtype and the shape of
    a C-ordered array, and building it (a dict's repr, padded) cost 20 µs of a 1,000-float
    array's ~30 µs: it is built once per dtype and shape."""
    np = sys.modules["numpy"]  # (an array is in hand)

    dtype = array.dtype
    plain = array.flags.c_contiguous and dtype.fields is None and dtype.subdtype is None
    key = (dtype.str, array.shape)
    header = _NPY_HEADERS.get(key) if plain else None
    if header is not None:
        if dtype.kind in "Mm":  # datetimes export no buffer
            return header + array.tobytes()
        return b"".join((header, array))  # from the array's own buffer: one copy, not two
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    if plain:
        if len(_NPY_HEADERS) >= _NPY_HEADER_LIMIT:
            _NPY_HEADERS.clear()
        _NPY_HEADERS[key] = data[: len(data) - array.nbytes]
    return data


#: ``(dtype.str, shape) -> numpy.save header`` of C-ordered arrays of plain dtypes.
_NPY_HEADERS: dict[tuple, bytes] = {}
_NPY_HEADER_LIMIT = 256
