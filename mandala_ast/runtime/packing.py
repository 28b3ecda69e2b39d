"""A call's outputs packed into its own row: content ids, and small values' bytes inline.

A hit then needs one indexed lookup of one row — no join through the outputs and values
tables, whose keys are hashes scattered over the file. The ``outputs`` table still holds the
same information, normalised and indexed, for provenance and queries.
"""

from __future__ import annotations

from collections.abc import Sequence

from .codecs import EncodedValue

__all__ = ["CODECS", "INLINE_LIMIT", "pack_outputs", "unpack_outputs"]

#: Values up to this many encoded bytes travel inside the call row.
INLINE_LIMIT = 254
#: Codecs that travel inline, by their code byte.
CODECS = ("json", "bytes", "npy", "pickle")
_CODE = {name: code for code, name in enumerate(CODECS)}
_NOT_INLINE = 255
_CID_BYTES = 32
#: ``codec name -> the codec and length bytes of an inline value, by its length``: made once
#: (every miss packs its outputs)
_HEADS = {name: [bytes((code, size)) for size in range(INLINE_LIMIT + 1)] for name, code in _CODE.items()}
_NOT_INLINE_HEAD = bytes((_NOT_INLINE, 0))


def pack_outputs(cids: Sequence[bytes], encoded: Sequence[EncodedValue | None] | None) -> bytes:
    """``cid | codec byte | length byte | data`` per output (codec 255: not inline)."""
    parts: list[bytes] = []
    for i, cid in enumerate(cids):
        value = encoded[i] if encoded is not None else None
        if value is not None and len(value.data) <= INLINE_LIMIT and value.codec in _CODE:
            parts += (cid, _HEADS[value.codec][len(value.data)], value.data)
        else:
            parts += (cid, _NOT_INLINE_HEAD)
    return b"".join(parts)


def unpack_outputs(blob: bytes) -> list[tuple[bytes, str | None, bytes | None]]:
    """Inverse of :func:`pack_outputs`: ``(cid, codec, data)``, codec and data None when the
    value is not inline."""
    unpacked: list[tuple[bytes, str | None, bytes | None]] = []
    position = 0
    while position < len(blob):
        end = position + _CID_BYTES
        cid, code, length = blob[position:end], blob[end], blob[end + 1]
        position = end + 2
        if code == _NOT_INLINE:
            unpacked.append((cid, None, None))
        else:
            unpacked.append((cid, CODECS[code], blob[position : position + length]))
            position += length
    return unpacked
