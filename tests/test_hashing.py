"""Content ids: type-sensitive, canonical, process-independent, and copy-free for arrays."""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from forked import answer_of_forked_child
from hypothesis import given, settings, strategies as st

from mandala_ast.runtime.hashing import UnhashableError, content_id


class TestTypeSensitivity:
    def test_equal_looking_values_of_different_types_differ(self):
        """1, 1.0, True, "1" and b"1" must never share a cache entry (Hamilton #1616)."""
        ids = {content_id(v) for v in (1, 1.0, True, "1", b"1", (1,), [1], {1}, frozenset({1}))}
        assert len(ids) == 9

    def test_the_scalar_cache_keeps_equal_values_of_different_types_apart(self):
        # ints and strs are cached under themselves, the other scalars under (type, value).
        values = (1, True, 1.0, "1", b"1", 0, False, "", b"")
        first = [content_id(v) for v in values]
        again = [content_id(v) for v in reversed(values)][::-1]
        assert first == again and len(set(first)) == len(values)

    def test_zero_and_negative_zero_differ(self):
        assert content_id(0.0) != content_id(-0.0)
        # Asking twice (the scalar cache path) gives the same answer.
        assert content_id(-0.0) == content_id(-0.0) != content_id(0.0)

    def test_nan_is_stable(self):
        assert content_id(float("nan")) == content_id(float("nan"))

    def test_huge_int_beyond_str_digit_limit(self):
        assert content_id(10**5000) != content_id(10**5000 + 1)


def _spec_encoding(value) -> bytes:
    """The canonical encoding as the storage format defines it, written out plainly: a stored
    id must never change when the encoder is made faster."""
    def put(tag: bytes, payload: bytes) -> bytes:
        return tag + struct.pack("<Q", len(payload)) + payload

    kind = type(value)
    if value is None:
        return b"N"
    if kind is bool:
        return b"B1" if value else b"B0"
    if kind is int:
        return put(b"I", format(value, "x").encode())
    if kind is float:
        return put(b"F", value.hex().encode())
    if kind is str:
        return put(b"S", value.encode("utf-8", "surrogatepass"))
    if kind is bytes:
        return put(b"Y", value)
    if kind in (list, tuple):
        return put(b"L" if kind is list else b"T", b"".join(_spec_encoding(item) for item in value))
    if kind in (set, frozenset):
        return put(b"E" if kind is set else b"e", b"".join(sorted(_spec_encoding(item) for item in value)))
    assert kind is dict
    return put(b"D", b"".join(sorted(_spec_encoding(k) + _spec_encoding(v) for k, v in value.items())))


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary()
_KEYS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
_NESTED = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner) | st.lists(inner).map(tuple) | st.dictionaries(_KEYS, inner)
    | st.frozensets(_KEYS),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(_NESTED)
def test_containers_of_scalars_encode_as_the_format_defines(value):
    from mandala_ast.runtime.hashing import digest, encode_canonical

    assert encode_canonical(value) == _spec_encoding(value)
    assert content_id(value) == digest(_spec_encoding(value))


class TestCanonical:
    @pytest.mark.parametrize("value", [0, 1, -1, 255, -256, 2**63, -(2**64) - 5, pytest.param(10**5000, id="huge")])
    def test_ints_hash_as_their_canonical_encoding(self, value):
        # Ints take a shortcut past encode_canonical; stored ids must not depend on it.
        from mandala_ast.runtime import hashing

        hashing._scalar_cids.clear()
        expected = hashing.digest(hashing.encode_canonical(value))
        assert content_id(value) == expected
        assert content_id(value) == expected  # from the cache
        assert content_id([value]) != expected  # a container encodes it inside its own tag

    @pytest.mark.parametrize("value", [0.1, -2.5e-300, 1e300, 31.622776601683793, float("inf"), -float("inf"), float("nan"),
                                       -0.0, 0.0])
    def test_floats_hash_as_their_canonical_encoding(self, value):
        # Floats take a shortcut past encode_canonical too.
        from mandala_ast.runtime import hashing

        hashing._scalar_cids.clear()
        expected = hashing.digest(hashing.encode_canonical(value))
        assert content_id(value) == expected
        assert content_id(value) == expected  # from the cache

    def test_dict_insertion_order_does_not_matter(self):
        assert content_id({"a": 1, "b": 2}) == content_id({"b": 2, "a": 1})

    def test_nested_containers_distinguish_structure(self):
        assert content_id([[1, 2], [3]]) != content_id([[1], [2, 3]])
        assert content_id(("ab", "c")) != content_id(("a", "bc"))

    def test_same_in_every_process_whatever_the_hash_seed(self):
        code = (
            "from mandala_ast.runtime.hashing import content_id;"
            "print(content_id({'x': {1, 2, 'a', 'b'}, 'y': frozenset('hello'), 3: [None]}).hex())"
        )
        outputs = {
            subprocess.run(
                [sys.executable, "-c", code],
                env={"PYTHONHASHSEED": seed, "PATH": ""},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for seed in ("0", "1", "12345")
        }
        assert len(outputs) == 1

    def test_unknown_objects_fall_back_to_pickle(self):
        assert content_id(Point(1, 2)) == content_id(Point(1, 2))
        assert content_id(Point(1, 2)) != content_id(Point(2, 1))

    def test_unpicklable_value_raises(self):
        with pytest.raises(UnhashableError, match="generator"):
            content_id(x for x in range(3))

    def test_a_lambda_argument_says_to_define_the_function_at_module_level(self):
        # pickle's own "attribute lookup <lambda> on __main__ failed" said nothing of the fix.
        def local(v):
            return v

        for function in (lambda v: v * 3, local):
            with pytest.raises(UnhashableError, match=r"by its module and name.*at module level with `def`"):
                content_id(function)
        assert content_id(content_id) == content_id(content_id)  # a module-level one still is


    def test_an_object_holding_what_cannot_be_pickled_names_where_it_holds_it(self):
        """A model whose wrapper holds a lock (a logger, a connection) deep inside said only
        "cannot pickle '_thread.lock' object": the user had to search the object for it."""
        model = Point(1, {"cache": [0, Point(threading.Lock(), 2)]})
        with pytest.raises(UnhashableError) as info:
            content_id(model)
        message = str(info.value)
        assert "cannot hash a value of type Point: cannot pickle '_thread.lock' object" in message
        assert ".y['cache'][1].x holds it (a lock)" in message
        assert "__getstate__" in message and "register_type" in message


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


class TestNumpy:
    def test_equal_arrays_equal_ids(self):
        assert content_id(np.arange(10)) == content_id(np.arange(10))

    def test_dtype_and_shape_matter(self):
        a = np.zeros(8, dtype=np.float64)
        assert content_id(a) != content_id(a.astype(np.float32))
        assert content_id(a) != content_id(a.reshape(2, 4))
        assert content_id(a) != content_id(a.view(np.int64))

    def test_non_contiguous_view_hashes_like_its_copy(self):
        a = np.arange(100).reshape(10, 10)
        assert content_id(a[:, 1]) == content_id(np.ascontiguousarray(a[:, 1]))

    def test_large_array_is_hashed_without_a_copy(self):
        big = np.ones(4_000_000)  # 32 MB
        tracemalloc.start()
        content_id(big)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < big.nbytes / 100

    @pytest.mark.parametrize("size", [0, 1, 19, 1005, 1024, 1025, 8000, 8192, 262_143, 262_144, (1 << 20) + 3])
    def test_array_id_is_blake3_of_its_header_and_bytes_at_any_size(self, size):
        # Small arrays are hashed in one piece with their header, large ones in two: either
        # way the id is the hash of the same bytes (chunk and threshold edges included).
        from blake3 import blake3

        array = (np.arange(size) % 251).astype(np.uint8)
        expected = blake3(f"ndarray||u1|{(size,)}".encode() + array.tobytes()).digest()
        assert content_id(array) == expected
        assert content_id(array.astype(np.int64)) != expected

    @pytest.mark.parametrize(("name", "array", "expected"), [
        ("f8", np.arange(1000.0), "3b8f1c7570fc93d5579721290b82d154507dd38f30b23c92f03f8a82c3bf311b"),
        ("f4-2d", np.arange(1200, dtype=np.float32).reshape(30, 40),
         "89b2ce0a387b4bf99b48effd60a609f37039972bb51781fe5a389a208a27309d"),
        ("strided", np.arange(200.0).reshape(20, 10)[:, 3],
         "8884e54dcfd3397cba1e7ecefee0ab42dbb15ce04285605409150e3e5347316c"),
        ("datetime", np.arange(5).astype("M8[s]"), "64f4d76ef03848d6b12e2fe24a9cbcd44a4c8f5eaebff08875842737d9753c21"),
        ("structured", np.zeros(4, dtype=[("t", "M8[s]"), ("x", "f8")]),
         "bb569cc110b996dd08f61c485aa9d5574bcf0e5325e2e1c2070fa80f7bb8b68d"),
        ("u1-300k", (np.arange(300_000) % 251).astype(np.uint8),
         "47c39441f6992ef7225714d798c07c4fd044aa6e6854f7be019b23556f3f6409"),
    ], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "x")
    def test_array_ids_are_the_ones_stored_files_know_them_by(self, name, array, expected):
        # Stored calls are found by these ids: a faster way to compute them must give the same.
        assert content_id(array).hex() == expected
        assert content_id(array).hex() == expected  # the header built once is the same

    def test_numpy_scalars_differ_from_python_scalars(self):
        assert content_id(np.float64(1.0)) != content_id(1.0)
        assert content_id(np.float32(1.0)) != content_id(np.float64(1.0))


class TestPandas:
    def test_equal_frames_equal_ids(self):
        make = lambda: pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})  # noqa: E731
        assert content_id(make()) == content_id(make())

    def test_values_columns_and_index_matter(self):
        base = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
        changed_value = base.copy()
        changed_value.loc[1, "b"] = 2.5
        assert content_id(base) != content_id(changed_value)
        assert content_id(base) != content_id(base.rename(columns={"a": "c"}))
        assert content_id(base) != content_id(base.set_index(pd.Index([5, 6])))

    def test_series_differs_from_single_column_frame(self):
        s = pd.Series([1, 2], name="a")
        assert content_id(s) != content_id(s.to_frame())


class TestObjectsHashedThroughPickle:
    """Objects we have no encoder for are pickled for hashing, canonically."""

    NESTED = (
        "import types\n"
        "from mandala_ast.runtime.hashing import content_id\n"
        "words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta']\n"
        "inner = types.SimpleNamespace(attrs={'tags': set(words), 'frozen': frozenset(words),"
        " 'order': {w: len(w) for w in set(words)}})\n"
        "print(content_id([inner]).hex())\n"
    )

    def test_object_holding_a_set_of_strings_keys_alike_whatever_the_hash_seed(self):
        """A set in a dict attribute of an object in a list, and a dict filled by iterating a
        set: both iterate in an order PYTHONHASHSEED decides, but the key must not."""
        outputs = {
            subprocess.run(
                [sys.executable, "-c", self.NESTED],
                env={"PYTHONHASHSEED": seed, "PATH": ""},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for seed in ("0", "1", "2", "12345")
        }
        assert len(outputs) == 1

    def test_fitted_estimator_keys_like_its_unpickled_copy(self):
        """Pickle shares a fitted estimator's parameter names with its attribute names by
        identity; the unpickled copy's names are separate objects: same content, other bytes."""
        from sklearn.datasets import make_classification
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(n_estimators=3, random_state=0).fit(*make_classification(random_state=0))
        assert content_id(pickle.loads(pickle.dumps(model))) == content_id(model)

    def test_object_with_set_and_dict_attributes_keys_like_its_unpickled_copy(self):
        value = Point({f"s{i}" for i in range(50)}, {"y": 1, "x": [Point(1, 2)]})
        value.x.discard("s3")  # a set's order depends on its history; its copy's does not
        assert content_id(pickle.loads(pickle.dumps(value))) == content_id(value)

    def test_frame_with_object_columns_keys_like_its_unpickled_copy(self):
        frame = pd.DataFrame({"a": ["x", "yy"], "b": [{"k": {1, 2}}, Point("x", None)]})
        assert content_id(pickle.loads(pickle.dumps(frame))) == content_id(frame)

    def test_dicts_and_sets_inside_objects_key_by_content_not_order(self):
        assert content_id(Point({"a": 1, "b": 2}, {3, 1})) == content_id(Point({"b": 2, "a": 1}, {1, 3}))
        assert content_id(Point({"a": 1}, None)) != content_id(Point({"a": 2}, None))

    def test_shared_and_self_referencing_objects_still_hash(self):
        shared = Point([1], {"k": "v"})
        looped = {"name": "loop"}
        looped["self"] = looped
        # Which mutable parts are one object is part of the value (pickle keeps it, too).
        assert content_id(Point(shared, shared)) != content_id(Point(shared, Point([1], {"k": "v"})))
        assert content_id(Point(looped, 1)) == content_id(Point(looped, 1))

    def test_a_string_never_keys_like_a_canonicalised_value(self):
        assert content_id(Point("\0nan", 1)) != content_id(Point(float("nan"), 1))
        assert content_id(Point(("\0set", []), 1)) != content_id(Point(set(), 1))

    def test_arrays_inside_objects_are_hashed_in_place_by_content(self):
        a = np.arange(12.0).reshape(3, 4)
        assert content_id(Point(a[:, 1], 0)) == content_id(Point(a[:, 1].copy(), 0))
        assert content_id(Point(a, 0)) != content_id(Point(a + 1, 0))


ATOMS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4), st.binary(max_size=4))
HASHABLE = st.recursive(ATOMS, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4), max_leaves=8)
VALUES = st.recursive(
    HASHABLE,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(HASHABLE, inner, max_size=4)
    | st.sets(HASHABLE, max_size=4)
    | st.builds(Point, inner, inner),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_any_value_keys_like_its_unpickled_copy(value):
    """Nested dicts, sets, frozensets, tuples and objects, with NaNs and shared strings: the
    copy pickle gives back is the same argument."""
    assert content_id(pickle.loads(pickle.dumps(Point(value, [value])))) == content_id(Point(value, [value]))


class TestDeepNesting:
    @staticmethod
    def deep(depth=100_000):
        value: list = []
        for _ in range(depth):
            value = [value]
        return value

    def test_deeply_nested_list_raises_unhashable_error_not_recursion_error(self):
        with pytest.raises(UnhashableError, match="nested too deeply"):
            content_id(self.deep())

    def test_deeply_nested_list_inside_an_object_raises_unhashable_error(self):
        with pytest.raises(UnhashableError, match="nested too deeply"):
            content_id(Point(self.deep(), 0))


    CYCLIC_GRAPH = (
        "import sys; from mandala_ast.runtime.hashing import content_id\n"
        "def graph(label):\n"
        "    a = {'name': label, 'tags': {'x', 'y', 'z'}, 'next': []}\n"
        "    b = {'name': 'b', 'next': [a]}\n"
        "    a['next'].append(b)\n"
        "    return a\n"
        "print(content_id(graph(sys.argv[1])).hex())\n"
    )

    def test_a_graph_of_dicts_that_leads_back_to_itself_is_keyed_not_called_too_deeply_nested(self):
        def key(label, seed):
            return subprocess.run([sys.executable, "-c", self.CYCLIC_GRAPH, label], env={"PYTHONHASHSEED": seed, "PATH": ""},
                                  capture_output=True, text=True, check=True).stdout

        assert key("a", "1") == key("a", "2") != key("c", "1")
        holder: list = [1]
        holder.append(holder)
        assert content_id(holder) != content_id([1, [1]])
        with pytest.raises(UnhashableError, match="nested too deeply"):  # still, once it is deep
            content_id([self.deep(), holder])


class TestFloatKeys:
    """What README's "NaN and signed zeros" says: Python floats key by value except that the
    sign of zero counts and every NaN is one key; numpy values key by their bytes."""

    NANS = (float("nan"), -float("nan"), float("inf") - float("inf"), struct.unpack("<d", b"\x01\0\0\0\0\0\xf8\x7f")[0])

    @pytest.mark.parametrize("wrap", [lambda x: x, lambda x: (x, 1), lambda x: [x], lambda x: {"k": x},
                                      lambda x: {x: 1}, lambda x: {x, "s"}, lambda x: Point(x, [x])],
                             ids=["float", "tuple", "list", "dict-value", "dict-key", "set", "object"])
    def test_every_float_nan_is_one_key_and_zero_keeps_its_sign(self, wrap):
        assert len({content_id(wrap(nan)) for nan in self.NANS}) == 1
        assert content_id(wrap(0.0)) != content_id(wrap(-0.0))
        assert content_id(wrap(0.0)) == content_id(wrap(0.0 * 1))

    def test_numpy_arrays_and_scalars_key_by_their_bytes(self):
        arrays = [np.array([nan]) for nan in self.NANS]
        assert len({content_id(a) for a in arrays}) == len({a.tobytes() for a in arrays}) > 1
        assert content_id(np.array([0.0])) != content_id(np.array([-0.0]))
        assert content_id(np.float64(0.0)) != content_id(np.float64(-0.0))
        assert content_id(np.float64(self.NANS[0])) != content_id(np.float64(self.NANS[1]))
        assert content_id(pd.Series([0.0])) != content_id(pd.Series([-0.0]))


def test_datetime_arrays_hash_by_their_bytes_alone_and_in_structured_records():
    """numpy refuses datetime64 in the buffer protocol; it raised a raw ValueError."""
    base = np.zeros(3, dtype=[("t", "M8[s]"), ("x", "f8")])
    later = base.copy()
    later["t"][0] = np.datetime64(1, "s")
    assert content_id(base) == content_id(base.copy()) != content_id(later)
    assert content_id(np.arange(3).astype("m8[D]")) != content_id(np.arange(3).astype("m8[s]"))


def test_equal_aligned_records_whose_padding_bytes_differ_are_one_argument():
    aligned = np.dtype([("flag", "u1"), ("x", "f8")], align=True)
    clean, dirty = np.zeros(2, aligned), np.full(2 * aligned.itemsize, 0xFF, np.uint8).view(aligned)
    dirty["flag"], dirty["x"] = 0, 0.0
    assert content_id(clean) == content_id(dirty) and content_id(clean[0]) == content_id(dirty[0])
    assert content_id(clean) != content_id(np.zeros(2, [("flag", "u1"), ("x", "f8")]))  # another dtype


def test_which_parts_are_one_object_counts_inside_objects_not_in_plain_containers():
    """What README says of aliasing: pickle's memo decides it inside an object only."""
    shared = [1]
    assert content_id(Point([shared, shared], 0)) != content_id(Point([shared, [1]], 0))
    assert content_id([shared, shared]) == content_id([shared, [1]])


def test_a_record_array_with_an_object_field_is_keyed_by_its_objects_not_a_raw_type_error():
    kind = [("label", "O"), ("n", "i8")]
    shared: list = [1]
    records = np.array([(shared, 1)], dtype=kind)
    before = content_id(records)
    shared.append(2)  # the same pointer, other content: another argument
    assert content_id(records) != before
    assert content_id(np.array([([1, 2], 1)], dtype=kind)) == content_id(records)


@pytest.mark.parametrize("size", [3, 300_001], ids=["small", "hashed in place"])
def test_equal_bool_arrays_holding_bytes_other_than_0_and_1_are_one_argument(size):
    """A bool array's byte is True when not 0: ``np.frombuffer(b"\\x02", bool)`` or a uint8
    array viewed as bool equals the array of 0s and 1s, but was hashed from its bytes, so
    it never hit it (nor it, another equal one)."""
    raw = np.resize(np.array([2, 0, 255], dtype=np.uint8), size)
    canonical = np.resize(np.array([True, False, True]), size)
    odd = [raw.view(bool), np.frombuffer(raw.tobytes(), dtype=bool), raw.view(bool)[::-1][::-1],
           np.asfortranarray(raw.view(bool).reshape(-1, 1))[:, 0]]
    for array in odd:
        assert (array == canonical).all()
        assert content_id(array) == content_id(canonical)
    assert content_id(pd.Series(odd[0])) == content_id(pd.Series(canonical))
    assert content_id(np.array([True, False])) != content_id(np.array([True, True]))


@pytest.mark.parametrize("field", ["?", ("?", (2,)), [("flag", "?"), ("w", "<i2")]],
                         ids=["bool field", "bool subarray field", "nested record"])
def test_equal_records_whose_bool_fields_hold_bytes_other_than_0_and_1_are_one_argument(field):
    """Records read from binary data (``np.fromfile`` of C structs, where true may be 0xFF):
    equal to the records holding 1s, but hashed from their bytes, so never a hit."""
    dtype = np.dtype([("a", field), ("b", "<f8")])
    canonical = np.zeros(3, dtype=dtype)
    canonical.view(np.uint8).reshape(3, -1)[:, 0] = 1  # the first bool of each record: True
    raw = canonical.copy()
    raw.view(np.uint8).reshape(3, -1)[:, 0] = [2, 255, 1]
    assert (raw == canonical).all()
    assert content_id(raw) == content_id(canonical)
    other = canonical.copy()
    other.view(np.uint8).reshape(3, -1)[0, 0] = 0
    assert content_id(other) != content_id(canonical)


def test_a_bool_array_holding_other_bytes_hits_the_equal_array_and_comes_back_equal(tmp_path):
    from mandala_ast import Storage, op

    runs = []

    @op
    def count(flags: np.ndarray) -> int:
        runs.append(1)
        return int(flags.sum())

    @op
    def passed_on(flags: np.ndarray) -> np.ndarray:
        return flags

    odd = np.array([2, 0, 7], dtype=np.uint8).view(bool)
    with Storage(tmp_path / "s.db").run():
        assert count(np.array([True, False, True])) == 2
        assert count(odd) == 2
        back = passed_on(odd)
    with Storage(tmp_path / "s.db").run():
        again = passed_on(odd)
    assert runs == [1] and (back == odd).all() and (again == odd).all() and again.dtype == bool


def _import_fresh(folder, name: str, source: str, monkeypatch):
    """``name`` imported anew from ``source`` (kept in sys.modules, as an imported module is)."""
    import importlib

    (folder / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, name, raising=False)
    importlib.invalidate_caches()
    return importlib.import_module(name)


class TestFunctionValues:
    """A user's function given as a value is keyed by its code and what that code refers to:
    keyed by module and name alone, an op given it served the result of its old code wherever
    the call could not be traced (a worker process, an async op)."""

    SOURCE = "SCALE = {scale}\n\ndef transform(x):\n    return step(x) * SCALE\n\ndef step(x):\n    return x + {shift}\n"

    def test_a_user_function_is_keyed_by_its_code_and_what_it_refers_to(self, tmp_path, monkeypatch):
        def cid(scale: int, shift: int) -> bytes:
            module = _import_fresh(tmp_path, "user_fns_h", self.SOURCE.format(scale=scale, shift=shift), monkeypatch)
            return content_id(module.transform)

        first = cid(2, 1)
        assert cid(2, 1) == first  # the same code, imported again
        assert cid(3, 1) != first  # a constant it reads
        assert cid(2, 5) != first  # a helper it calls
        assert content_id([pickle.dumps]) == content_id([pickle.dumps])  # library code: by name

    def test_a_user_functions_key_is_the_same_in_every_process(self, tmp_path):
        (tmp_path / "user_fns_p.py").write_text(self.SOURCE.format(scale=2, shift=1))
        code = "import sys, user_fns_p; from mandala_ast.runtime.hashing import content_id; print(content_id(user_fns_p.transform).hex())"
        outputs = {
            subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONHASHSEED": seed, "PYTHONPATH": f"{tmp_path}:{_REPO}"},
                           capture_output=True, text=True, check=True).stdout
            for seed in ("0", "1")
        }
        assert len(outputs) == 1


_REPO = str(__import__("pathlib").Path(__file__).resolve().parent.parent)


COUNTED_SOURCE = (
    "HASHED = []\n\nclass Table:\n    def __getstate__(self):\n        HASHED.append(1)\n        return {'rows': 3}\n\n"
    "TABLE = Table()\n\ndef transform(x):\n    return x if TABLE else -x\n"
)


def _apply_in(tmp_path, monkeypatch, name: str):
    """(a module of COUNTED_SOURCE, an op applying a function given to it, a storage)."""
    from mandala_ast import Storage, op

    @op
    def apply(f, x):
        return f(x)

    return _import_fresh(tmp_path, name, COUNTED_SOURCE, monkeypatch), apply, Storage(tmp_path / "s.db")


def test_a_function_argument_does_not_hash_what_it_reads_again_at_every_hit(tmp_path, monkeypatch):
    # Keying the function by its code hashed the constants it reads at every call: a warm hit
    # given a function that reads a large table cost the table's hashing (ms, not us).
    module, apply, storage = _apply_in(tmp_path, monkeypatch, "user_fns_counted")
    with storage.run():
        for i in range(20):
            apply(module.transform, i)
    module.HASHED.clear()
    with storage.run():
        assert [apply(module.transform, i) for i in range(20)] == list(range(20))
    assert len(module.HASHED) <= 2


def test_a_constant_a_function_argument_reads_changed_between_blocks_is_seen(tmp_path, monkeypatch):
    # The state of a function given as an argument is kept for a block, not longer.
    module, apply, storage = _apply_in(tmp_path, monkeypatch, "user_fns_changed")
    with storage.run():
        assert apply(module.transform, 2) == 2
        before = content_id(module.transform)
    module.TABLE = 0
    with storage.run():
        assert apply(module.transform, 2) == -2
        assert content_id(module.transform) != before  # where a call is not traced, its key


def test_an_object_holding_itself_and_a_lock_names_the_lock_not_the_cycle():
    """A list holding itself and a lock said "its [0][0][0][0][0][0][0][0] holds it (a list)":
    the search walked the cycle until its depth ran out and named the cycle."""
    held = [threading.Lock()]
    held.insert(0, held)
    first, second = Point(1, 2), Point(3, threading.Lock())
    first.y = second
    second.x = first
    assert "its [1] holds it (a lock)" in str(_error_of(held))
    assert "its .y.y holds it (a lock)" in str(_error_of(first))


def _error_of(value):
    with pytest.raises(UnhashableError) as info:
        content_id(value)
    return info.value


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_hashes_large_values_and_files_after_its_parent_did(tmp_path):
    # blake3's threads for large buffers: a child forked after its parent used them (a process
    # pool's worker) must not hand its hash to threads it does not have (it waited forever).
    from PIL import Image

    from mandala_ast.runtime.blobs import data_digest, file_digest

    path = tmp_path / "data.bin"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 300_000, dtype=np.uint8).tobytes())
    array = np.arange(3 << 20, dtype=np.int32)  # 12 MB
    image = Image.new("RGB", (2000, 1500), (4, 5, 6))  # 12 MB as PIL holds it: one segment

    def ids() -> bytes:
        return content_id(array) + content_id(image) + data_digest(array.tobytes()[: 2 << 20]) + file_digest(path)

    expected = ids()
    got = answer_of_forked_child(ids)
    assert got == expected
