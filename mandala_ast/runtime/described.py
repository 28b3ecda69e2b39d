"""Stored values shown without loading them: scalars decoded, everything else described.

The command line and the flat export read storages that may not be trusted, so nothing here
unpickles. JSON-coded scalars are decoded (``json.loads`` runs no code); arrays are described
from their ``.npy`` header (shape, dtype); pickles from their first opcodes, read with
``pickletools`` (which parses, never executes): the class a pickle builds is named there.

>>> describe("json", b"1.5", bytes(32))
1.5
>>> str(describe("bytes", b"abc", bytes(32)))
'<bytes 3 B 00000000>'
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import codecs, parsing
from .codecs import STRUCTURE_CODECS
from .reclaim import format_bytes
from .structures import element_cids

if TYPE_CHECKING:
    from .blobs import BlobDir

__all__ = ["Opaque", "describe", "describe_row", "is_scalar"]

#: Bytes of a value's file read to describe it: an ``.npy`` header, a pickle's first opcodes.
_HEAD_BYTES = 4096
#: Opcodes of a pickle read, at most, once its first type is known.
_OPCODES = 10_000
_CONTAINERS = {
    "EMPTY_LIST": "list", "EMPTY_DICT": "dict", "EMPTY_TUPLE": "tuple", "TUPLE1": "tuple",
    "TUPLE2": "tuple", "TUPLE3": "tuple", "TUPLE": "tuple", "EMPTY_SET": "set",
    "FROZENSET": "frozenset", "BINBYTES": "bytes", "LONG1": "int", "LONG4": "int",
}
_SCALARS = (type(None), bool, int, float, str)
#: The codec of a ValuePointer (pointers.py's CODEC, spelled out: it imports the type registry).
_POINTER = "pointer"
#: Opcodes that build nothing: the last one that does is found past these.
_BOOKKEEPING = {"STOP", "MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT", "FRAME", "PROTO"}


@dataclass(frozen=True)
class Opaque:
    """A stored value that is not a scalar: its content id and a description of its type.

    >>> str(Opaque(bytes.fromhex("ab" * 32), "ndarray float64 (2, 3)"))
    '<ndarray float64 (2, 3) abababab>'
    """

    cid: bytes
    kind: str

    def __str__(self) -> str:
        return f"<{self.kind} {self.cid.hex()[:8]}>"


def is_scalar(value: Any) -> bool:
    """Whether a described value is a plain scalar (shown as itself)."""
    return type(value) in _SCALARS


def describe_row(row: tuple | None, cid: bytes, blobs: BlobDir | None) -> Any:
    """A ``vals`` row ``(codec, data, size, external)`` as a scalar or an :class:`Opaque`.
    ``blobs``: the storage's value files (``<db>.blobs``), where external values live."""
    if row is None:
        return Opaque(cid, "value not stored")
    codec, data, size, external = row
    if external:
        return Opaque(cid, _external_kind(codec, size, cid, blobs))
    return describe(codec, data, cid)


def describe(codec: str, data: bytes, cid: bytes) -> Any:
    """A value stored inline (``codec``, ``data``) as a scalar or an :class:`Opaque`."""
    if codec == "json":
        return codecs.decode("json", data)
    if codec in STRUCTURE_CODECS:
        return Opaque(cid, f"{codec} of {len(element_cids(codec, data))}")
    return Opaque(cid, _kind(codec, data, len(data)))


def _external_kind(codec: str, size: int | None, cid: bytes, blobs: BlobDir | None) -> str:
    try:
        if blobs is None:
            raise FileNotFoundError(cid.hex())
        with open(blobs.path(cid), "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return f"{codec} {format_bytes(size or 0)}, file missing"
    return _kind(codec, head, size or 0)


def _kind(codec: str, head: bytes, size: int) -> str:
    if codec == "npy":
        return _array_kind(head)
    if codec == _POINTER:  # (all a pointer stores is its name)
        return f"ValuePointer {head.decode('utf-8', 'replace')!r}"
    if codec == "pickle":
        return f"{_pickled_type(head)} {format_bytes(size)}"
    return f"{codec} {format_bytes(size)}"


def _array_kind(head: bytes) -> str:
    """``ndarray float64 (200, 20)`` from an ``.npy`` header (magic, version, length, dict)."""
    try:
        major = head[6]
        width = 2 if major == 1 else 4
        length = int.from_bytes(head[8 : 8 + width], "little")
        header = parsing.literal(head[8 + width : 8 + width + length].decode("latin1"))
        return f"ndarray {_dtype_name(header['descr'])} {tuple(header['shape'])}"
    except (IndexError, ValueError, SyntaxError, KeyError, TypeError, UnicodeDecodeError):
        return "ndarray (unreadable header)"


def _dtype_name(descr: Any) -> str:
    if not isinstance(descr, str):
        return "record"
    names = {"f": "float", "i": "int", "u": "uint", "b": "bool", "c": "complex", "U": "str", "S": "bytes"}
    kind, digits = descr[1:2], descr[2:]
    if kind == "b":
        return "bool"
    if kind in ("U", "S") or not digits.isdigit():
        return f"{names.get(kind, descr)}{digits}"
    bits = int(digits) * 8
    return f"{names[kind]}{bits}" if kind in names else descr


def _pickled_type(head: bytes) -> str:
    """The type a pickle builds, read from its opcodes (never executed): the first class or
    container it starts, unless its last step builds a tuple (made after its items)."""
    first: str | None = None
    last: str | None = None
    strings: list[str] = []
    named_at = -1  # where the two strings naming a class found through _CLASS_AT end
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(io.BytesIO(head))):
            if first is None:
                first = _opcode_type(opcode.name, arg, strings)
                if first == _CLASS_AT:  # the class is named by the next two strings
                    first, named_at = None, len(strings) + 2
            if isinstance(arg, str):
                strings.append(arg)
                if len(strings) == named_at and first is None:
                    first = f"{strings[-2]}.{strings[-1]}"
            if opcode.name not in _BOOKKEEPING:
                last = opcode.name
            if count > _OPCODES and first is not None:
                break
    except Exception:  # a truncated head or a foreign file: what was read so far
        pass
    if last is not None and last.startswith(("TUPLE", "EMPTY_TUPLE")):
        return "tuple"
    return first or "pickle"


#: What a pickle names for an object of a class standing where another moved from: that class
#: is found by module and name (moved_classes.class_at), and described by them.
_CLASS_AT = "mandala_ast.runtime.moved_classes.class_at"


def _opcode_type(name: str, arg: Any, strings: list) -> str | None:
    if name in ("GLOBAL", "INST"):
        return str(arg).replace(" ", ".")
    if name == "STACK_GLOBAL" and len(strings) >= 2:
        return f"{strings[-2]}.{strings[-1]}"
    return _CONTAINERS.get(name)
