"""Outputs packed into the call row: content ids plus small values inline."""

from __future__ import annotations

from mandala_ast.runtime.codecs import EncodedValue
from mandala_ast.runtime.packing import INLINE_LIMIT, pack_outputs, unpack_outputs


def test_round_trip_with_small_and_large_values():
    cids = [bytes([i]) * 32 for i in range(3)]
    encoded = [
        EncodedValue("json", b"42"),
        EncodedValue("pickle", b"x" * (INLINE_LIMIT + 1)),  # too big to travel inline
        EncodedValue("bytes", b""),
    ]
    assert unpack_outputs(pack_outputs(cids, encoded)) == [
        (cids[0], "json", b"42"),
        (cids[1], None, None),
        (cids[2], "bytes", b""),
    ]


def test_without_encoded_values_only_ids_are_packed():
    cids = [b"a" * 32, b"b" * 32]
    assert unpack_outputs(pack_outputs(cids, None)) == [(cids[0], None, None), (cids[1], None, None)]


def test_no_outputs():
    assert unpack_outputs(pack_outputs([], [])) == []
