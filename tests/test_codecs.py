"""Codecs: chosen by type, recorded per value, inverse of each other."""

from __future__ import annotations

import numpy as np
import pytest

from mandala_ast.runtime.codecs import decode, decode_file, encode


@pytest.mark.parametrize(
    "value, codec",
    [(None, "json"), (True, "json"), (3, "json"), (2.5, "json"), ("héllo", "json"),
     (b"\x00raw", "bytes"), ({"a": [1, 2]}, "pickle"), ((1, "x"), "pickle")],
)
def test_round_trip_with_the_codec_for_its_type(value, codec):
    encoded = encode(value)
    assert encoded.codec == codec
    decoded = decode(encoded.codec, encoded.data)
    assert decoded == value and type(decoded) is type(value)


def test_arrays_are_stored_as_npy_without_pickle():
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    encoded = encode(array)
    assert encoded.codec == "npy" and encoded.data.startswith(b"\x93NUMPY")
    assert np.array_equal(decode("npy", encoded.data), array)


def test_object_arrays_fall_back_to_pickle():
    assert encode(np.array([{"a": 1}], dtype=object)).codec == "pickle"


def test_array_files_load_memory_mapped_and_writable(tmp_path):
    path = tmp_path / "value"
    path.write_bytes(encode(np.arange(1000.0)).data)
    loaded = decode_file("npy", path)
    assert type(loaded) is np.ndarray and isinstance(loaded.base, np.memmap)
    loaded[0] = 42.0  # copy-on-write: the file is untouched
    assert decode_file("npy", path)[0] == 0.0


def test_unknown_codec_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown codec 'zstd'"):
        decode("zstd", b"")


@pytest.mark.parametrize(
    "value", [10**5000, -(10**5000), 10**18, -(10**18), 10**18 - 1, -(10**18) + 1],
    ids=["huge", "huge-negative", "1e18", "-1e18", "1e18-1", "-1e18+1"],
)
def test_ints_of_any_size_and_sign_round_trip(value):
    # Beyond 4300 digits str(int) refuses: such ints must leave the decimal path, negative too.
    encoded = encode(value)
    assert decode(encoded.codec, encoded.data) == value


def test_a_memmap_and_its_slices_are_stored_as_npy_not_pickled(tmp_path):
    mapped = np.memmap(tmp_path / "a.bin", dtype=np.float32, mode="w+", shape=(1000,))
    mapped[:] = np.arange(1000)
    for value in (mapped, mapped[10:20]):
        encoded = encode(value)
        assert encoded.codec == "npy"
        back = decode(encoded.codec, encoded.data)
        assert type(back) is np.ndarray and back.dtype == np.float32 and (back == value).all()


def test_a_large_array_file_loads_as_a_plain_ndarray_on_its_memory_map(tmp_path):
    path = tmp_path / "a.npy"
    path.write_bytes(encode(np.arange(10.0)).data)
    loaded = decode_file("npy", path)
    assert type(loaded) is np.ndarray and isinstance(loaded.base, np.memmap)
    assert encode(loaded[2:5]).codec == "npy"


def test_a_value_its_native_format_cannot_hold_is_pickled():
    from mandala_ast import register_type

    register_type(Picky, key=lambda v: v.n, encode=Picky.to_bytes, decode=Picky.from_bytes, codec="user:picky")
    assert encode(Picky(1)).codec == "user:picky"
    fallback = encode(Picky(-1))
    assert fallback.codec == "pickle" and decode("pickle", fallback.data).n == -1


class Picky:
    """A format that holds only non-negative numbers."""

    def __init__(self, n):
        self.n = n

    def to_bytes(self):
        return self.n.to_bytes(4, "little")  # OverflowError when negative

    @classmethod
    def from_bytes(cls, data):
        return cls(int.from_bytes(data, "little"))


def _saved(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


_ARRAYS = [
    np.zeros(1000), np.arange(1000.0), np.arange(12, dtype=">i4").reshape(3, 4),
    np.arange(12, dtype=np.int16).reshape(3, 4).T, np.arange(20.0)[::3], np.array(2.5),
    np.zeros((0, 3)), np.array([True, False]), np.array(["ab", "c"]), np.array([1 + 2j]),
    np.array(["2024-01-01"], dtype="datetime64[s]"), np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
]


@pytest.mark.parametrize("array", _ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_an_array_is_stored_as_exactly_the_bytes_numpy_save_writes_every_time(array):
    # The npy header is built once per dtype and shape: a second array of the same kind with
    # other values must still get its own bytes under that header.
    other = array.copy()
    if other.size and other.dtype.kind in "fiuc":
        other.flat[0] += 1
    for value in (array, other, array):
        assert encode(value).data == _saved(value)
        assert np.array_equal(decode("npy", encode(value).data), value)


@pytest.mark.parametrize("value", [0.1, -0.0, 1e16, 5e-324, 1.7976931348623157e308, float("nan"),
                                   float("inf"), -float("inf")])
def test_a_float_is_stored_as_json_writes_it(value):
    import json

    assert encode(value).data == json.dumps(value).encode()
    decoded = decode("json", encode(value).data)
    assert decoded == value or (decoded != decoded and value != value)


@pytest.mark.parametrize("data", [b"12", b"-12", b"-0", b"100000000000000000000", b"1.5", b"-2.25e-300",
                                  b"1E5", b"1e+300", b"Infinity", b"-Infinity", b"NaN", b'"-1"', b"null"])
def test_json_values_decode_as_json_reads_them(data):
    # Numbers skip json.loads: digits alone are an int, other numbers a float, as JSON has it.
    import json

    decoded, expected = decode("json", data), json.loads(data)
    assert type(decoded) is type(expected)
    assert decoded == expected or (decoded != decoded and expected != expected)
