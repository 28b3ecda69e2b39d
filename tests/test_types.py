"""Values of the ML ecosystem's types through real processes with different hash seeds.

For each case (tests/typecases.py): the first process computes the base value and every value
that differs from it, and hits for values equal to it; two more processes, with other
``PYTHONHASHSEED``s, compute nothing, and every value comes back exactly as it went in.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typecases

#: Frames are stored as Arrow where their column labels are Arrow text: pandas 3's `str`.
PANDAS_3 = int(importlib.metadata.version("pandas").split(".")[0]) >= 3

TESTS = Path(__file__).resolve().parent
#: Case name prefix -> the optional libraries it needs (torch is not in the dev extra: its tests
#: run where it is installed). polars values are keyed through pyarrow.
NEEDS = {
    "torch": ("torch",), "polars": ("polars", "pyarrow"), "arrow": ("pyarrow",), "sparse": ("scipy",),
    "xarray": ("xarray",), "pil": ("PIL",), "attrs": ("attrs",),
}


def run_case(path: Path, case: str, seed: str) -> dict:
    # The repository this test is in, not whatever copy is installed: a scratch copy
    # (benchmarks/mutants.py) must be what the child processes import too.
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    done = subprocess.run(
        [sys.executable, str(TESTS / "typecases.py"), str(path), case],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(typecases.CASES))
def test_equal_values_hit_from_new_processes_and_every_difference_misses(tmp_path, case):
    for prefix, modules in NEEDS.items():
        if case.startswith(prefix):
            for module in modules:
                pytest.importorskip(module)
    path = tmp_path / "types.db"
    first = run_case(path, case, "1")
    assert first["base"] == 1 and first["equal"] == [0] * len(first["equal"])
    assert [k for k, n in first["differ"].items() if n != 1] == [], "these differences collided"
    assert first["changed"] == []
    for seed in ("2", "3"):
        again = run_case(path, case, seed)
        assert again["base"] == 0 and set(again["equal"]) <= {0} and set(again["differ"].values()) <= {0}
        assert again["changed"] == [], "these values came back different"


def test_a_slice_of_a_loaded_large_array_returned_by_the_next_op_is_stored_as_npy(tmp_path):
    import sqlite3

    import numpy as np

    from mandala_ast import Storage, op

    @op
    def ramp(n):
        return np.arange(n, dtype=np.float64)

    @op
    def head(values):
        return values[: len(values) // 2]

    path = tmp_path / "s.db"
    with Storage(path):
        ramp(400_000)  # 3.2 MB: a file, loaded memory-mapped
    with Storage(path):
        loaded = ramp(400_000)
        half = head(loaded)
    assert type(loaded) is np.ndarray and type(half) is np.ndarray
    codecs = {row[0] for row in sqlite3.connect(path).execute("SELECT codec FROM vals")}
    assert "pickle" not in codecs and "npy" in codecs


def test_an_image_packed_piece_by_piece_has_the_id_of_its_tobytes_bytes_in_every_mode():
    pytest.importorskip("PIL")
    import numpy as np
    from PIL import Image

    from mandala_ast.runtime.hashing import content_id
    from mandala_ast.runtime.types.pil_types import pixel_bytes

    pixels = (np.arange(6 * 5 * 3, dtype=np.uint8) * 7).reshape(6, 5, 3)
    modes = ("1", "L", "P", "LA", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "I;16", "I;16B")
    images = [Image.fromarray(pixels).convert(mode) if mode[:2] != "I;" else Image.new(mode, (5, 6), 7) for mode in modes]
    images.append(Image.fromarray(np.arange(2500 * 2400 * 3, dtype=np.uint32).astype(np.uint8).reshape(2500, 2400, 3)))
    images.append(Image.new("RGB", (0, 4)))
    for image in images:
        whole = np.frombuffer(image.tobytes(), np.uint8)
        assert content_id(("pixels", pixel_bytes(image))) == content_id(("pixels", whole)), image.mode


def test_a_large_sparse_matrix_with_unsorted_indices_or_a_stored_zero_keys_as_its_canonical_form():
    # A million entries and more are checked on two threads: each check must still decide.
    pytest.importorskip("scipy")
    import numpy as np
    import scipy.sparse as sparse

    from mandala_ast.runtime.hashing import content_id

    rows, columns = 1100, 2000  # 2.2M entries, all stored
    canonical = sparse.csr_matrix(np.arange(1.0, rows * columns + 1).reshape(rows, columns))
    unsorted = canonical.copy()
    unsorted.indices[:2], unsorted.data[:2] = unsorted.indices[1::-1].copy(), unsorted.data[1::-1].copy()
    assert not unsorted.has_canonical_format and (unsorted != canonical).nnz == 0
    with_zero = canonical.copy()
    with_zero.data[7] = 0.0
    without_zero = with_zero.copy()
    without_zero.eliminate_zeros()
    assert with_zero.nnz == without_zero.nnz + 1
    assert content_id(unsorted) == content_id(canonical)
    assert content_id(with_zero) == content_id(without_zero) != content_id(canonical)


def _stripe_keys_as_its_pixels(width: int) -> None:
    """An RGB image ``width`` pixels wide with a 40-pixel stripe of zero padding pasted down it
    (a resized patch) keys as the same pixels made by fromarray."""
    import numpy as np
    from PIL import Image

    from mandala_ast.runtime.hashing import content_id

    pixels = (np.arange(2600 * width * 3, dtype=np.uint32) * 7).astype(np.uint8).reshape(2600, width, 3)
    image = Image.fromarray(pixels)
    stripe = Image.fromarray(pixels[:, 300:341]).resize((40, 2600))  # resize leaves padding 0
    image.paste(stripe, (300, 0))
    assert image.tobytes("raw", "RGBX")[300 * 4 + 3] == 0
    rebuilt = Image.fromarray(np.asarray(image))
    assert content_id(image) == content_id(rebuilt)


def test_a_narrow_stripe_of_zero_padding_down_a_power_of_two_wide_image_keys_as_its_pixels():
    # The padding is read one pixel in a prime number: in a 2048-wide image the pixels read move
    # from row to row, so a 40-pixel stripe (a resized patch pasted down the image) is found,
    # its padding set, and the image keys as the same pixels made by fromarray.
    pytest.importorskip("PIL")
    _stripe_keys_as_its_pixels(2048)


@pytest.mark.parametrize("multiple", [2, 3])
def test_a_narrow_stripe_of_zero_padding_keys_as_its_pixels_where_the_width_is_a_multiple_of_the_sample_step(multiple):
    # In an image whose width is a multiple of the step between the pixels read, every read
    # fell in the same few columns, and a stripe between them was never found.
    pytest.importorskip("PIL")
    from mandala_ast.runtime.types.pil_types import sample_step

    _stripe_keys_as_its_pixels(multiple * sample_step(2048))


def test_an_rgb_image_with_a_small_patch_of_zero_padding_keeps_one_id_and_shares_it_with_no_other():
    # A patch too small for the sample keeps its zero padding in the key (a recompute against
    # equal pixels made another way): the id is still the image's own, and every pixel counts.
    pytest.importorskip("PIL")
    import numpy as np
    from PIL import Image

    from mandala_ast.runtime.hashing import content_id

    pixels = (np.arange(2500 * 2400 * 3, dtype=np.uint32) * 7).astype(np.uint8).reshape(2500, 2400, 3)
    image = Image.fromarray(pixels)
    image.paste(Image.fromarray(pixels[:2, :3]).resize((2, 2)), (1000, 1000))
    assert image.tobytes("raw", "RGBX")[(1000 * 2400 + 1000) * 4 + 3] == 0
    assert content_id(image) == content_id(image.copy())
    changed = image.copy()
    changed.putpixel((1001, 1001), (1, 2, 3))
    assert changed.getpixel((1001, 1001)) != image.getpixel((1001, 1001))
    assert content_id(changed) != content_id(image)


def test_an_rgb_image_is_keyed_by_its_rgba_bytes_whatever_pil_left_in_its_padding_byte():
    # PIL holds RGB in four bytes a pixel and leaves the fourth 255 (fromarray) or 0 (resize):
    # the key sets it, so equal pixels key alike, in one block, in several, or a mix of both.
    pytest.importorskip("PIL")
    import numpy as np
    from PIL import Image

    from mandala_ast.runtime.hashing import content_id
    from mandala_ast.runtime.types import ByteSegments
    from mandala_ast.runtime.types.pil_types import key_pixels

    for height, width in ((6, 5), (2500, 2400)):  # 2500 x 2400 x 4 bytes: more than PIL's 16 MB block
        pixels = (np.arange(height * width * 3, dtype=np.uint32) * 7).astype(np.uint8).reshape(height, width, 3)
        resized = Image.fromarray(pixels).resize((width + 1, height))
        rebuilt = Image.fromarray(np.asarray(resized))
        mixed = rebuilt.copy()
        mixed.paste(resized.crop((0, 0, width + 1, height // 2)), (0, 0))  # half the rows padded with 0
        assert resized.tobytes("raw", "RGBX")[3] == 0 and rebuilt.tobytes("raw", "RGBX")[3] == 255
        assert mixed.tobytes("raw", "RGBX")[3] == 0 and mixed.tobytes("raw", "RGBX")[-1] == 255
        assert content_id(resized) == content_id(rebuilt) == content_id(mixed)
        rgba = np.frombuffer(rebuilt.convert("RGBA").tobytes(), np.uint8)
        assert content_id(("pixels", key_pixels(resized))) == content_id(("pixels", ByteSegments(rgba.size, [rgba])))
        changed = rebuilt.copy()
        changed.putpixel((width, height - 1), (1, 2, 3))
        assert content_id(changed) != content_id(rebuilt)


def test_hashing_an_image_made_from_an_array_never_asks_pillow_for_its_arrow_export(tmp_path):
    # Pillow 11.2-12.x crash (SIGSEGV) exporting an image that borrows its memory (made by
    # Image.fromarray) to Arrow: hashing one killed the process. The export is made to abort
    # here, so the test fails whatever Pillow this is if hashing still reaches it.
    pytest.importorskip("PIL")
    script = """
import os
import numpy as np
from PIL import Image
from mandala_ast.runtime.hashing import content_id
from mandala_ast.runtime.types.pil_types import pixel_bytes
Image.Image.__arrow_c_array__ = lambda self, requested_schema=None: os.abort()
shapes = {"L": (300, 200), "RGBA": (300, 200, 4), "RGB": (300, 200, 3), "F": (300, 200)}
for mode, shape in shapes.items():
    dtype = np.float32 if mode == "F" else np.uint8
    image = Image.fromarray(np.arange(np.prod(shape)).astype(dtype).reshape(shape))
    content_id(image)
    whole = np.frombuffer(image.tobytes(), np.uint8)
    assert content_id(("p", pixel_bytes(image))) == content_id(("p", whole)), mode
print("hashed")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    assert done.returncode == 0 and done.stdout.split() == ["hashed"], done.stderr[-2000:]


def test_an_image_read_in_place_has_the_id_a_pillow_that_only_copies_gives_it():
    # Without Image.getim (Pillow < 11) nor pyarrow, every image's pixels are copied by PIL's
    # encoder: the ids must not change.
    pytest.importorskip("PIL")
    script = """
import sys
import numpy as np
from PIL import Image
if sys.argv[1] == "copies":
    sys.modules["pyarrow"] = None
    del Image.Image.getim
from mandala_ast.runtime.hashing import content_id
small = (np.arange(6 * 5 * 3, dtype=np.uint8) * 7).reshape(6, 5, 3)
large = (np.arange(2500 * 2400 * 3, dtype=np.uint32) * 7).astype(np.uint8).reshape(2500, 2400, 3)
images = [Image.fromarray(p).convert(m) for p in (small, large) for m in ("L", "RGB", "RGBA", "I", "F")]
images.append(Image.fromarray(large).resize((2401, 2500)))
print(",".join(content_id(image).hex() for image in images))
"""
    ids = {}
    for how in ("in place", "copies"):
        done = subprocess.run([sys.executable, "-c", script, how], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        ids[how] = done.stdout.strip().split(",")
    assert ids["in place"] == ids["copies"] and len(set(ids["copies"])) == 11


@pytest.mark.skipif(not PANDAS_3, reason="before pandas 3 column labels are objects, and frames are pickled")
def test_arrow_exact_frames_and_object_text_are_stored_as_arrow_and_the_rest_pickled(tmp_path):
    pytest.importorskip("pyarrow")
    import sqlite3

    import numpy as np
    import pandas as pd

    from mandala_ast import Storage

    path = tmp_path / "s.db"
    with Storage(path).run():
        typecases.echo(pd.DataFrame({"x": [1.0, 2.0], "t": ["a", "b"]}))
        typecases.echo(pd.Series([1, 2], name="n"))
        typecases.echo(pd.DataFrame({"o": [{"k": 1}, None]}))
        typecases.echo(pd.Series(["a", None, "c"], dtype=object))
        typecases.echo(pd.DataFrame({"t": pd.Series(["a", np.nan], dtype=object)}))
        typecases.echo(pd.Series(["a", None, np.nan], dtype=object))  # Arrow has one kind of null
    codecs = sorted(row[0] for row in sqlite3.connect(path).execute("SELECT codec FROM vals"))
    # echo's output is its input's value
    assert codecs == ["pandas:frame", "pandas:frame", "pandas:series", "pandas:series", "pickle", "pickle"]


@pytest.mark.skipif(not PANDAS_3, reason="before pandas 3 column labels are objects, and frames are pickled")
def test_a_frame_with_an_object_index_of_text_is_stored_as_arrow_not_pickled(tmp_path):
    pytest.importorskip("pyarrow")
    import sqlite3

    import pandas as pd

    from mandala_ast import Storage

    path = tmp_path / "s.db"
    with Storage(path).run():
        typecases.echo(pd.DataFrame({"x": [1.0, 2.0]}, index=pd.Index(["a", None], dtype=object, name="k")))
        typecases.echo(pd.Series([1, 2], index=pd.Index(["p", "q"], dtype=object)))
        typecases.echo(pd.DataFrame({"x": [1.0]}, index=pd.Index([b"a"], dtype=object)))  # not text
    codecs = sorted(row[0] for row in sqlite3.connect(path).execute("SELECT codec FROM vals"))
    assert codecs == ["pandas:frame", "pandas:series", "pickle"]


def test_a_state_dict_is_stored_tensor_by_tensor_and_loads_mapped_writable_with_tied_weights_shared(tmp_path):
    torch = pytest.importorskip("torch")
    import sqlite3

    from mandala_ast import Storage

    path = tmp_path / "s.db"
    torch.manual_seed(0)
    state = torch.nn.Linear(800, 800).state_dict()  # 2.6 MB: a file
    state["tied.weight"] = state["weight"]  # one tensor under two names
    with Storage(path).run():
        typecases.echo(state)
    with Storage(path).run():
        loaded = typecases.echo(state)
        assert list(loaded) == list(state) and loaded._metadata == state._metadata
        assert loaded["tied.weight"] is loaded["weight"]
        assert _mapped_file(loaded["weight"].data_ptr()).startswith(f"{path}.blobs"), "views the mapped file"
        loaded["bias"][0] = -100.0
    with Storage(path).run():
        again = typecases.echo(state)
        assert all(torch.equal(again[name], state[name]) for name in state)
    codecs = {row[0] for row in sqlite3.connect(path).execute("SELECT codec FROM vals")}
    assert "torch:state_dict" in codecs and "pickle" not in codecs


def _mapped_file(address: int) -> str:
    """The file mapped at ``address`` in this process ("" if none), from /proc/self/maps."""
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc/self/maps")
    for line in Path("/proc/self/maps").read_text().splitlines():
        span, *rest = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in span.split("-"))
        if start <= address < end:
            return rest[-1] if len(rest) == 5 else ""
    return ""


def test_a_dict_of_tensors_and_other_values_is_pickled_and_comes_back_equal(tmp_path):
    torch = pytest.importorskip("torch")
    import sqlite3

    from mandala_ast import Storage

    path = tmp_path / "s.db"
    mixed = {"weight": torch.ones(3), "step": 3}
    sparse = {"weight": torch.ones(3).to_sparse()}
    with Storage(path).run():
        typecases.echo(mixed)
        typecases.echo(sparse)
    with Storage(path).run():
        assert typecases.same(typecases.echo(mixed), mixed)
        assert torch.equal(typecases.echo(sparse)["weight"].to_dense(), torch.ones(3))
    assert {row[0] for row in sqlite3.connect(path).execute("SELECT codec FROM vals")} == {"pickle"}


def test_a_large_xarray_value_loads_writable_and_writing_to_it_leaves_the_stored_value_alone(tmp_path):
    xr = pytest.importorskip("xarray")
    import numpy as np

    from mandala_ast import Storage

    path = tmp_path / "s.db"
    array = xr.DataArray(np.arange(300_000.0), dims=("t",), name="v")
    with Storage(path).run():
        typecases.echo(array)
    with Storage(path).run():
        loaded = typecases.echo(array)
        loaded.values[0] = -1.0
    with Storage(path).run():
        assert typecases.echo(array).identical(array)


def test_an_arrow_dictionary_array_under_another_dictionary_is_not_served_the_first_ones_result(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from mandala_ast import Storage, op

    @op
    def categories(array):
        return array.to_pandas().cat.categories.tolist()

    def encoded(indices, dictionary):
        return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(dictionary))

    with Storage(tmp_path / "s.db").run():
        assert categories(encoded([0, 1, 0], ["a", "b"])) == ["a", "b"]
        assert categories(encoded([1, 0, 1], ["b", "a"])) == ["b", "a"]
        assert categories(encoded([0, 1, 0], ["a", "b", "c"])) == ["a", "b", "c"]
        two_dictionaries = pa.chunked_array([encoded([0], ["a"]), encoded([0, 1], ["b", "a"])])
        assert categories(two_dictionaries) == ["a", "b"]
        assert categories(pa.chunked_array([encoded([0], ["b"]), encoded([1, 0], ["b", "a"])])) == ["b", "a"]


def test_a_categorical_whose_categories_arrow_cannot_give_back_keeps_their_dtype_and_time_zone(tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    from mandala_ast import Storage

    categories = {
        "zoned": pd.DatetimeIndex(["2024-01-01", "2024-01-02"], tz="Asia/Tokyo"),
        "Int64": pd.Index([1, 2], dtype="Int64"), "boolean": pd.Index([True, False], dtype="boolean"),
        "Float64": pd.Index([0.5, 1.5], dtype="Float64"), "string": pd.Index(["a", "b"], dtype="string[pyarrow]"),
    }
    with Storage(tmp_path / "s.db").run():
        for name, index in categories.items():
            series = pd.Series(pd.Categorical(list(index), categories=index))
            frame = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.CategoricalIndex(list(index), categories=index))
            assert typecases.echo(series).cat.categories.dtype == index.dtype, name
            assert typecases.echo(frame).index.categories.dtype == index.dtype, name
            assert typecases.same(typecases.echo(series), series) and typecases.same(typecases.echo(frame), frame), name


def test_a_numpy_string_dtype_array_is_keyed_and_stored_not_a_raw_buffer_error(tmp_path):
    np = pytest.importorskip("numpy")
    if not hasattr(np.dtypes, "StringDType"):
        pytest.skip("numpy 1 has no StringDType")
    from mandala_ast import Storage, op

    @op
    def lengths(words):
        return [len(w) for w in words]

    words = np.array(["a", "bb", "ccc"], dtype=np.dtypes.StringDType())
    with Storage(tmp_path / "s.db").run():
        assert lengths(words) == [1, 2, 3]
        back = typecases.echo(words)
    assert back.dtype == words.dtype and back.tolist() == ["a", "bb", "ccc"]


def test_a_tensor_sliced_with_a_step_is_an_argument_and_an_empty_one_loads(tmp_path):
    torch = pytest.importorskip("torch")
    from mandala_ast import Storage, op

    @op
    def total(values):
        return float(values.sum())

    with Storage(tmp_path / "s.db").run():
        assert total(torch.arange(10.0)[::2]) == 20.0
        assert typecases.echo(torch.empty(0, 3)).shape == (0, 3)


def test_image_stacks_sharing_their_first_page_get_their_own_results(tmp_path):
    pytest.importorskip("PIL")
    import io

    from PIL import Image

    def tiff(*levels):
        data = io.BytesIO()
        pages = [Image.new("L", (2, 2), level) for level in levels]
        pages[0].save(data, format="TIFF", save_all=True, append_images=pages[1:])
        return Image.open(io.BytesIO(data.getvalue()))

    from mandala_ast import Storage

    with Storage(tmp_path / "s.db").run():
        assert typecases.frame_pixels(tiff(10, 20)) == [10, 20]
        assert typecases.frame_pixels(tiff(10, 40)) == [10, 40]
        assert typecases.frame_pixels(tiff(10)) == [10]


def test_multi_index_frames_whose_levels_are_in_another_order_are_not_served_one_anothers_unstack(tmp_path):
    pd = pytest.importorskip("pandas")
    from mandala_ast import Storage

    def series(levels, codes):
        return pd.Series([1.0, 2.0], index=pd.MultiIndex(levels=[levels, [1]], codes=[codes, [0, 0]]))

    with Storage(tmp_path / "s.db").run():
        assert typecases.unstacked_columns(series(["a", "b"], [0, 1])) == ["a", "b"]
        assert typecases.unstacked_columns(series(["b", "a"], [1, 0])) == ["b", "a"]


def test_a_multi_index_whose_levels_are_not_sorted_comes_back_with_their_order(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    import numpy as np

    from mandala_ast import Storage

    stacked = pd.DataFrame(np.ones((2, 2)), columns=["y", "x"], index=["q", "p"]).stack().to_frame("v")
    with Storage(tmp_path / "s.db").run():
        back = typecases.echo(stacked)
    assert [list(level) for level in back.index.levels] == [["q", "p"], ["y", "x"]]
    assert back["v"].unstack(0).columns.tolist() == ["q", "p"]
