"""The type-handler registry (runtime/types/): lazy library handlers and user registrations."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import mandala_ast
from mandala_ast import Storage, op
from mandala_ast.runtime.hashing import content_id


def test_hashing_builtin_values_imports_no_library_of_a_handler():
    code = (
        "import sys\nfrom mandala_ast.runtime.hashing import content_id\n"
        "from mandala_ast.runtime.codecs import encode\n"
        "class Plain:\n    pass\n"
        "for v in (1, 'a', 2.5, (1, [2]), {'k': {3}}, Plain()):\n    content_id(v); encode(v)\n"
        "print(sorted(m for m in ('pandas', 'torch', 'polars', 'pyarrow', 'scipy', 'xarray', 'PIL', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class Grid:
    def __init__(self, cells, cache=None):
        self.cells, self.cache = cells, cache

    def __eq__(self, other):
        return type(other) is Grid and self.cells == other.cells


mandala_ast.register_type(
    Grid,
    key=lambda grid: grid.cells,
    encode=lambda grid: repr(grid.cells).encode(),
    decode=lambda data: Grid(eval(data.decode())),  # noqa: S307 (test data written just above)
)


@op
def widen(grid):
    return Grid([row + [0] for row in grid.cells])


def test_a_registered_type_is_keyed_by_its_key_and_stored_by_its_codec(tmp_path):
    assert content_id(Grid([[1]], cache=object())) == content_id(Grid([[1]], cache=object()))
    assert content_id(Grid([[1]])) != content_id(Grid([[2]]))
    with Storage(tmp_path / "s.db"):
        widen(Grid([[1]]))
    with Storage(tmp_path / "s.db"):
        assert widen(Grid([[1]], cache=object())) == Grid([[1, 0]])


def test_register_type_wants_encode_and_decode_together():
    with pytest.raises(TypeError, match="both"):
        mandala_ast.register_type(Grid, key=lambda g: g.cells, encode=repr)


def test_a_subclass_of_a_registered_type_is_keyed_apart_from_it():
    class Finer(Grid):
        pass

    assert content_id(Finer([[1]])) != content_id(Grid([[1]]))


def test_a_handler_that_fails_is_an_unhashable_value():
    class Broken:
        pass

    mandala_ast.register_type(Broken, key=lambda value: 1 / 0)
    with pytest.raises(mandala_ast.ValueEncodingError, match="widen, argument 'grid'.*division by zero"):
        with Storage():
            widen(Broken())


def test_numpy_arrays_inside_records_hash_in_place():
    import dataclasses

    @dataclasses.dataclass
    class Pair:
        left: np.ndarray
        meta: dict

    a = Pair(np.arange(3), {"a": 1, "b": 2})
    assert content_id(a) == content_id(Pair(np.arange(3), {"b": 2, "a": 1}))
    assert content_id(a) != content_id(Pair(np.arange(3.0), {"a": 1, "b": 2}))


@op
def first_row(frame):
    return frame.iloc[:1]


def test_an_unhashable_frame_argument_is_a_value_encoding_error_naming_op_and_argument():
    import pandas as pd

    frame = pd.DataFrame({"f": [lambda: 1, lambda: 2]})
    with pytest.raises(mandala_ast.ValueEncodingError, match=r"first_row, argument 'frame'.*DataFrame"):
        with Storage():
            first_row(frame)


@op
def with_callbacks(n):
    import pandas as pd

    return pd.DataFrame({"f": [lambda: n]})


def test_a_frame_output_that_cannot_be_stored_is_returned_with_one_warning(tmp_path):
    with pytest.warns(mandala_ast.MandalaUnstoredWarning, match=r"with_callbacks, output 0.*DataFrame") as caught:
        with Storage(tmp_path / "s.db"):
            frame = with_callbacks(3)
    assert len(caught) == 1 and frame["f"][0]() == 3


@dataclasses.dataclass(eq=False)
class Node:
    name: str
    children: list
    parent: object = None


def tree(leaf: str) -> Node:
    root = Node("root", [])
    root.children.append(Node(leaf, [], root))
    return root


def test_a_record_whose_fields_lead_back_to_it_is_hashed_through_pickle():
    assert content_id(tree("a")) == content_id(tree("a"))
    assert content_id(tree("a")) != content_id(tree("b"))
    assert content_id([tree("a")]) == content_id([tree("a")])
    assert content_id(tree("a").children[0]) == content_id(tree("a").children[0])


@dataclasses.dataclass
class Model:
    alpha: float

    def fit(self, weights):
        self.weights_ = weights
        return self


def test_records_that_differ_in_attributes_outside_their_fields_differ():
    assert content_id(Model(0.1).fit(np.ones(3))) != content_id(Model(0.1).fit(np.zeros(3)))
    assert content_id(Model(0.1).fit(np.ones(3))) == content_id(Model(0.1).fit(np.ones(3)))
    assert content_id(Model(0.1)) != content_id(Model(0.1).fit(np.ones(3)))


def test_a_byte_stream_is_keyed_as_the_flat_array_of_its_bytes_and_must_give_its_length():
    from mandala_ast.runtime.hashing import UnhashableError
    from mandala_ast.runtime.types import ByteStream

    whole = ("key", np.frombuffer(b"abcdef", np.uint8))
    assert content_id(("key", ByteStream(6, iter([b"ab", memoryview(b"cde"), b"f"])))) == content_id(whole)
    assert content_id(("key", ByteStream(6, iter([b"abcdeg"])))) != content_id(whole)
    with pytest.raises(UnhashableError, match="announced 6 bytes and gave 5"):
        content_id(("key", ByteStream(6, iter([b"abcde"]))))


def _unhashable(kind: str):
    """A value of ``kind`` that holds a function (which has no content to hash or pickle)."""
    function = lambda: 1  # noqa: E731
    if kind == "pandas":
        import pandas as pd

        return pd.Series([function, 2], dtype=object)
    if kind == "xarray":
        xr = pytest.importorskip("xarray")
        return xr.DataArray(np.array([function, 2], dtype=object), dims=("x",))
    if kind == "PIL":
        image = pytest.importorskip("PIL.Image").new("L", (2, 2))
        image.info["callback"] = function
        return image
    if kind == "polars":
        pl = pytest.importorskip("polars")
        return pl.DataFrame({"f": [function]}, schema={"f": pl.Object})
    if kind == "dataclass":
        return Model(function)
    raise AssertionError(kind)


UNHASHABLE_KINDS = ["pandas", "xarray", "PIL", "polars", "dataclass"]


@op
def keep(value):
    return 1


@op
def build(kind):
    return _unhashable(kind)


@pytest.mark.parametrize("kind", UNHASHABLE_KINDS)
def test_an_unhashable_argument_of_a_handled_type_is_a_value_encoding_error_naming_op_and_argument(kind):
    value = _unhashable(kind)
    with pytest.raises(mandala_ast.ValueEncodingError, match=r"keep, argument 'value'"):
        with Storage():
            keep(value)


@pytest.mark.parametrize("kind", UNHASHABLE_KINDS)
def test_an_unhashable_output_of_a_handled_type_is_returned_with_one_warning(tmp_path, kind):
    expected = type(_unhashable(kind))
    with pytest.warns(mandala_ast.MandalaUnstoredWarning, match=r"build, output 0") as caught:
        with Storage(tmp_path / "s.db"):
            value = build(kind)
    assert len(caught) == 1 and type(value) is expected


def test_a_hashable_value_that_cannot_be_stored_is_named_as_argument_and_returned_as_output(tmp_path):
    xr = pytest.importorskip("xarray")

    @op
    def with_encoding(n):
        array = xr.DataArray(np.arange(n), dims=("x",))
        array.encoding["writer"] = lambda: n  # not in the id; stored with the value
        return array

    with pytest.warns(mandala_ast.MandalaUnstoredWarning, match=r"with_encoding, output 0.*DataArray") as caught:
        with Storage(tmp_path / "s.db"):
            array = with_encoding(3)
    assert len(caught) == 1 and array.encoding["writer"]() == 3
    with pytest.raises(mandala_ast.ValueEncodingError, match=r"keep, argument 'value'.*DataArray"):
        with Storage(tmp_path / "s.db"):
            keep(array)
