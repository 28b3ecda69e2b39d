"""Stored values described without loading: what the command line and the export show."""

from __future__ import annotations

import collections
import io

import numpy as np
import pytest

from mandala_ast import MList, Storage, op
from mandala_ast.runtime.catalog import Catalog
from mandala_ast.runtime.codecs import encode
from mandala_ast.runtime.described import Opaque, describe, is_scalar

CID = bytes(range(32))


@pytest.mark.parametrize("value", [None, True, 3, -2.5, "text", 10**17])
def test_json_scalars_are_themselves(value):
    encoded = encode(value)
    described = describe(encoded.codec, encoded.data, CID)
    assert described == value and type(described) is type(value) and is_scalar(described)


@pytest.mark.parametrize(
    "value, kind",
    [
        (np.zeros((3, 4), dtype="int32"), "ndarray int32 (3, 4)"),
        (np.zeros(0, dtype="float64"), "ndarray float64 (0,)"),
        (np.array(["ab"]), "ndarray str2 (1,)"),
        (np.zeros(2, dtype=bool), "ndarray bool (2,)"),
        (collections.OrderedDict(a=1), "collections.OrderedDict"),
        ([1, 2], "list"),
        ((1, [2]), "tuple"),
        (b"abc", "bytes 3 B"),
    ],
)
def test_others_are_described_by_type(value, kind):
    encoded = encode(value)
    described = describe(encoded.codec, encoded.data, CID)
    assert isinstance(described, Opaque) and described.kind.startswith(kind)
    assert str(described).endswith(" 00010203>")


def test_garbage_pickle_is_just_a_pickle():
    assert describe("pickle", b"\x80\x05garbage", CID).kind.startswith("pickle ")


class _StandingAt:
    """An object pickled as codecs does one of a class standing where another moved from:
    the class through moved_classes.class_at(module, qualname), not by its global name."""

    def __reduce__(self):
        from mandala_ast.runtime import moved_classes

        return (moved_classes.class_at, ("collections", "OrderedDict"))


def test_an_object_of_a_class_at_a_moved_class_s_old_place_is_described_by_that_class():
    # storage.df and the flat export showed such objects' type as
    # mandala_ast.runtime.moved_classes.class_at, the function that finds their class.
    import pickle

    data = pickle.dumps(_StandingAt(), protocol=5)
    assert describe("pickle", data, CID).kind.startswith("collections.OrderedDict ")


def _only_call(path, op_name: str):
    """The one stored call of op ``op_name``, as the command line's catalog describes it."""
    catalog = Catalog.open(path)
    try:
        [call] = catalog.calls(catalog.find_op(op_name))
    finally:
        catalog.close()
    return call


def test_large_array_file_described_from_its_header(tmp_path):
    @op
    def big() -> np.ndarray:
        return np.ones((512, 300))  # 1.2 MB: stored as a file

    storage = Storage(tmp_path / "s.db")
    with storage.run():
        big()
    storage.close()
    call = _only_call(tmp_path / "s.db", "big")
    assert call.values["output"].kind == "ndarray float64 (512, 300)"


def test_collections_by_length(tmp_path):
    @op
    def squares(n: int) -> MList[int]:
        return [i * i for i in range(n)]

    storage = Storage(tmp_path / "s.db")
    with storage.run():
        squares(5)
    storage.close()
    catalog = Catalog.open(tmp_path / "s.db")
    try:
        assert [op.short_name for op in catalog.ops()] == ["squares"]  # not the elements' op
    finally:
        catalog.close()
    call = _only_call(tmp_path / "s.db", "squares")
    assert call.values == {"n": 5, "output": call.values["output"]}
    assert call.values["output"].kind == "mlist of 5"


def test_npy_header_of_version_2():
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros((2, 2)), version=(2, 0))
    assert describe("npy", buffer.getvalue(), CID).kind == "ndarray float64 (2, 2)"


def test_a_pointer_is_described_by_its_name(tmp_path):
    # It showed as "<pointer 8 B …>": the name, all a pointer stores, was left out.
    from mandala_ast import ValuePointer

    @op
    def rows(data: list) -> int:
        return len(data)

    storage = Storage(tmp_path / "s.db")
    with storage.run():
        rows(ValuePointer("imagenet", [1, 2, 3]))
    storage.close()
    call = _only_call(tmp_path / "s.db", "rows")
    assert call.values["data"].kind == "ValuePointer 'imagenet'"
    assert str(call.values["data"]).startswith("<ValuePointer 'imagenet' ")
