"""Values of the ML ecosystem's types, for test_types.py's subprocesses.

Each case builds, freshly in every process, a base value, values equal to it (built another way),
and values that differ from it in one respect each. ``run(path, case)`` memoizes an op over all of
them and prints what it computed and whether what came back is exactly what went in.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing

import numpy as np

from mandala_ast import Storage, op

COMPUTED: list = []


@op
def echo(value):
    COMPUTED.append(1)
    return value


@op
def count_categories(series):
    COMPUTED.append(1)
    return len(series.cat.categories)


def _pandas():
    import pandas as pd

    return pd


def case_pandas_categorical():
    pd = _pandas()
    base = pd.Series(pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"]))
    return dict(
        base=base,
        equal=[pd.Series(pd.Categorical(["a", "b", "a"], categories=list("abc")))],
        differ={
            "categories": pd.Series(pd.Categorical(["a", "b", "a"], categories=["a", "b"])),
            "category order": pd.Series(pd.Categorical(["a", "b", "a"], categories=["c", "b", "a"])),
            "ordered": pd.Series(pd.Categorical(["a", "b", "a"], categories=list("abc"), ordered=True)),
            "values": pd.Series(pd.Categorical(["a", "b", "b"], categories=list("abc"))),
        },
        op=count_categories,
    )


def _frame(pd):
    return pd.DataFrame(
        {
            "x": np.arange(4, dtype=np.float64),
            "when": pd.date_range("2024-01-01", periods=4),
            "zoned": pd.date_range("2024-01-01", periods=4, tz="Europe/Paris"),
            "gap": pd.to_timedelta(np.arange(4), unit="s"),
            "text": ["a", "bb", "", "é"],
            "kind": pd.Categorical(["u", "v", "u", "v"]),
            "maybe": pd.array([1, None, 3, 4], dtype="Int64"),
        },
        index=pd.Index([10, 11, 12, 13], name="row"),
    )


def case_pandas_frame():
    pd = _pandas()
    base = _frame(pd)
    base.attrs = {"source": "train"}
    equal = _frame(pd)[list(base.columns)]
    equal.attrs = {"source": "train"}
    renamed = base.copy().rename(columns={"x": "y"})
    reindexed = base.copy().set_axis(pd.Index([10, 11, 12, 14], name="row"))
    index_named = base.copy().rename_axis("other")
    tagged = base.copy()
    tagged.attrs = {"source": "test"}
    as_float32 = base.copy().astype({"x": np.float32})
    later = base.copy()
    later["when"] = later["when"] + pd.Timedelta("1s")
    other_zone = base.copy()
    other_zone["zoned"] = other_zone["zoned"].dt.tz_convert("UTC")
    texts = base.copy()
    texts["text"] = ["a", "b", "b", "é"]
    missing = base.copy()
    missing["maybe"] = pd.array([1, 2, 3, 4], dtype="Int64")
    return dict(
        base=base,
        equal=[equal],
        differ={
            "column name": renamed, "index values": reindexed, "index name": index_named,
            "attrs": tagged, "dtype": as_float32, "dates": later, "time zone": other_zone,
            "text": texts, "missing values": missing,
        },
    )


def case_pandas_series_name():
    pd = _pandas()
    return dict(
        base=pd.Series([1.0, 2.0]),
        equal=[pd.Series(np.array([1.0, 2.0]))],
        differ={"name 0": pd.Series([1.0, 2.0], name=0), "name 'a'": pd.Series([1.0, 2.0], name="a")},
    )


def case_pandas_datetime_and_multi_index():
    pd = _pandas()

    def series(start="2024-01-01", tz=None, name="when", levels=("a", "b")):
        dates = pd.date_range(start, periods=4, tz=tz, name=name)
        frame = pd.DataFrame({"v": [1.0, 2.0, 3.0, 4.0], "k": list(levels) * 2}, index=dates)
        return frame.set_index("k", append=True)["v"]

    return dict(
        base=series(),
        equal=[series(start="2024-01-01 00:00:00")],
        differ={
            "dates": series(start="2024-01-02"), "time zone": series(tz="UTC"), "level name": series(name="day"),
            "level values": series(levels=("a", "c")),
        },
    )


@op
def index_frequency(frame):
    COMPUTED.append(1)
    return frame.index.freqstr


@op
def unstacked_columns(series):
    COMPUTED.append(1)
    return series.unstack(0).columns.tolist()


def case_pandas_multi_index_levels():
    # A MultiIndex's levels, in their order, decide unstack()'s columns: keyed by its tuples
    # alone, a level order was served another's results.
    pd = _pandas()

    def series(first_level=("a", "b"), codes=(0, 1)):
        index = pd.MultiIndex(levels=[list(first_level), [1]], codes=[list(codes), [0, 0]], names=["k", "n"])
        return pd.Series([1.0, 2.0], index=index)

    return dict(
        base=series(),
        equal=[pd.Series([1.0, 2.0], index=pd.MultiIndex.from_tuples([("a", 1), ("b", 1)], names=["k", "n"])),
               series(("a", "b", "c"))],  # a value no row uses shows only in .levels
        differ={"level order": series(("b", "a"), (1, 0))},
        op=unstacked_columns,
    )


def case_pandas_index_frequency():
    # pandas' equals() ignores an index's freq, but shift(), resample() and freqstr read it: a
    # frame with one was served the result computed for the same frame without.
    pd = _pandas()
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]

    def frame(index):
        return pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=index)

    return dict(
        base=frame(pd.DatetimeIndex(days)),
        equal=[frame(pd.to_datetime(pd.Series(days)).rename(None).values)],
        differ={
            "freq 'D'": frame(pd.date_range("2024-01-01", periods=3)),
            "freq '24h'": frame(pd.date_range("2024-01-01", periods=3, freq="24h")),
        },
        op=index_frequency,
    )


def case_pandas_stored_natively_or_pickled():
    # Arrow-exact frames are stored as Arrow IPC (a large one as a file, read memory-mapped); the
    # others are pickled: each must come back with its dtypes, index, names and attrs.
    pd = _pandas()
    large = pd.DataFrame({"a": np.arange(300_000, dtype=np.float64), "b": np.arange(300_000) % 7}, index=pd.RangeIndex(5, 300_005, name="i"))
    large.attrs = {"split": ("train", 1)}
    objects = pd.DataFrame({"o": [{"k": 1}, (1, 2), None]})
    python_text = pd.DataFrame({"s": pd.array(["x", None, "z"], dtype="string[python]")})
    with_freq = pd.DataFrame({"v": [1.0, 2.0]}, index=pd.date_range("2024-01-01", periods=2, freq="D"))
    int_labels = pd.DataFrame({0: [1, 2], 1: [3, 4]})
    named = pd.Series(pd.array([1, None], dtype="Int64"), name=0, index=pd.Index(["p", "q"], name="k"))
    named.attrs = {"unit": "m"}
    return dict(
        base=large, equal=[large.copy()],
        differ={
            "objects": objects, "string[python]": python_text, "freq": with_freq, "int labels": int_labels,
            "series named 0": named, "no columns": pd.DataFrame(index=[1, 2]),
            "nullable index": pd.DataFrame({"v": [1.0, 2.0]}, index=pd.array([1, None], dtype="Int64")),
            "categorical index": pd.DataFrame({"v": [1.0, 2.0]}, index=pd.CategoricalIndex(["x", "y"], name="k")),
            "subclass": TaggedFrame({"v": [1.0, 2.0]}),
        },
    )


try:
    import pandas as _pd

    class TaggedFrame(_pd.DataFrame):
        @property
        def _constructor(self):
            return TaggedFrame
except ImportError:  # only the pandas cases need it
    pass


def case_pandas_object_text():
    pd = _pandas()

    def frame(*last, big=False):
        words = ["a", "bb", "", "é"] * (30_000 if big else 1)  # big: 1 MB+, stored as a file
        column = pd.Series(words[:-1] + list(last), dtype=object)
        return pd.DataFrame({"word": column, "n": np.arange(len(words))})

    return dict(
        base=frame(None),
        equal=[frame(None)],
        differ={
            "NaN for None": frame(np.nan), "'nan' for None": frame("nan"), "'None' for None": frame("None"),
            "'' for None": frame(""), "NA for None": frame(pd.NA), "an int": frame(1), "bytes": frame(b"a"),
            "NaN and None": pd.DataFrame({"word": pd.Series(["a", None, np.nan], dtype=object), "n": np.arange(3)}),
            "big": frame(None, big=True), "big with NaN": frame(np.nan, big=True),
        },
    )


def case_pandas_object_text_index():
    pd = _pandas()

    def frame(*last, big=False, dtype=object):
        words = ["a", "bb", "", "é"] * (30_000 if big else 1)  # big: 1 MB+, stored as a file
        return pd.DataFrame({"n": np.arange(len(words))}, index=pd.Index(words[:-1] + list(last), dtype=dtype, name="k"))

    differ = {
        "NaN for None": frame(np.nan), "'nan' for None": frame("nan"),
        "series": pd.Series(np.arange(4), index=pd.Index(["a", "bb", "", None], dtype=object)),
        "big": frame(None, big=True), "big with NaN": frame(np.nan, big=True),
    }
    if pd.Index(["a"], dtype="str").dtype != object:  # pandas 3 (before it, "str" is object)
        differ["str dtype"] = frame(None, dtype="str")
    return dict(base=frame(None), equal=[frame(None)], differ=differ)


def case_numpy_datetimes():
    base = np.arange(5).astype("datetime64[s]")
    return dict(
        base=base,
        equal=[np.array(base.tolist(), dtype="datetime64[s]")],
        differ={
            "unit": np.arange(5).astype("datetime64[ms]"),
            "values": np.arange(1, 6).astype("datetime64[s]"),
            "timedelta": np.arange(5).astype("timedelta64[s]"),
        },
    )


def case_torch_tensor():
    import torch

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return dict(
        base=base,
        equal=[torch.tensor([float(i) for i in range(12)]).reshape(3, 4), base.clone()],
        differ={
            "dtype": base.double(), "shape": base.reshape(4, 3), "values": base + 1,
            "requires_grad": base.clone().requires_grad_(True),
        },
    )


def case_torch_strided_and_empty_tensors():
    # A tensor sliced with a step (a view whose last axis is not contiguous) could not be
    # hashed, and an empty one was stored but raised torch's RuntimeError when loaded.
    import torch

    base = torch.arange(10, dtype=torch.float32)[::2]
    return dict(
        base=base,
        equal=[torch.tensor([0.0, 2.0, 4.0, 6.0, 8.0]), torch.arange(20, dtype=torch.float32).reshape(2, 10)[0, ::2]],
        differ={
            "values": torch.arange(10, dtype=torch.float32)[1::2], "empty": torch.empty(0, 3), "empty 1-d": torch.zeros(0),
            "empty int": torch.empty(0, 3, dtype=torch.int64), "columns": torch.arange(12.0).reshape(3, 4)[:, ::2],
        },
    )


def case_torch_large_tensor_with_grad():
    import torch

    base = torch.linspace(0, 1, 600_000).requires_grad_(True)  # 2.4 MB: stored as a file
    return dict(
        base=base,
        equal=[torch.linspace(0, 1, 600_000).requires_grad_(True)],
        differ={"requires_grad": torch.linspace(0, 1, 600_000), "dtype": base.detach().half()},
    )


def case_torch_state_dict():
    import torch

    def weights(seed):
        torch.manual_seed(seed)
        return torch.nn.Linear(3, 2).state_dict()

    return dict(base=weights(0), equal=[weights(0)], differ={"weights": weights(1)})


def case_torch_large_state_dict():
    import torch

    def weights(seed, version=1):  # 2.6 MB: stored as a file, its tensors loaded memory-mapped
        torch.manual_seed(seed)
        state = torch.nn.Sequential(torch.nn.Linear(800, 800), torch.nn.BatchNorm1d(800)).state_dict()
        state._metadata[""]["version"] = version
        return state

    plain = dict(weights(0))
    return dict(
        base=weights(0),
        equal=[weights(0)],
        differ={"weights": weights(1), "a plain dict": plain, "metadata": weights(0, version=2)},
    )


def case_arrow_table():
    import pyarrow as pa

    def table(n=6, names=("x", "s")):
        return pa.table({names[0]: pa.array([0.5 * i for i in range(n)]), names[1]: [None if i == 2 else "v" * i for i in range(n)]})

    base = table()
    rechunked = pa.concat_tables([base.slice(0, 2), base.slice(2)])
    sliced = table(8).slice(1, 7).slice(0, 6)
    sliced = pa.table({"x": base.column("x"), "s": pa.array([None, "", "z", None, "vvvv", "vvvvv"]).slice(0, 6)})
    sliced = pa.table({"x": base.column("x"), "s": pa.concat_arrays([pa.array(["", "v"]), pa.array(["q", None, "vvv"]).slice(1), pa.array(["vvvv", "vvvvv"])])})
    return dict(
        base=base,
        equal=[rechunked, sliced, base.combine_chunks()],
        differ={
            "name": table(names=("y", "s")), "rows": table(5), "type": base.cast(pa.schema([("x", pa.float32()), ("s", pa.string())])),
            "metadata": base.replace_schema_metadata({"k": "v"}),
            "null": pa.table({"x": base.column("x"), "s": ["", "v", "", "vvv", "vvvv", "vvvvv"]}),
        },
    )


def case_arrow_dictionary():
    # A dictionary array's dictionary (its order, entries no value uses) shows in .dictionary,
    # .indices and to_pandas()'s categories: the same decoded values under another dictionary
    # were served the first one's results.
    import pyarrow as pa

    def encoded(indices, dictionary, index_type=None):
        return pa.DictionaryArray.from_arrays(pa.array(indices, index_type or pa.int32()), pa.array(dictionary))

    base = encoded([0, 1, None, 0], ["a", "b"])
    return dict(
        base=base,
        equal=[pa.array(["a", "b", None, "a"]).dictionary_encode(), encoded([1, 0, 1, None, 0], ["a", "b"])[1:]],
        differ={
            "dictionary order": encoded([1, 0, None, 1], ["b", "a"]),
            "unused entry": encoded([0, 1, None, 0], ["a", "b", "c"]),
            "plain text": pa.array(["a", "b", None, "a"]),
            "index type": encoded([0, 1, None, 0], ["a", "b"], pa.int8()),
        },
    )


def case_arrow_large_table():
    import pyarrow as pa

    base = pa.table({"x": np.arange(300_000, dtype=np.float64)})  # 2.4 MB: a memory-mapped file
    return dict(base=base, equal=[pa.concat_tables([base.slice(0, 7), base.slice(7)])], differ={"values": pa.table({"x": np.arange(1, 300_001, dtype=np.float64)})})


def case_polars_frame():
    import polars as pl

    def frame(**changes):
        columns = {"a": [1, 2, 3], "s": ["x", None, "zz"], "c": pl.Series(["u", "v", "u"], dtype=pl.Categorical)}
        return pl.DataFrame({**columns, **changes})

    return dict(
        base=frame(),
        equal=[pl.concat([frame().head(1), frame().tail(2)], rechunk=False)],
        differ={
            "values": frame(a=[1, 2, 4]), "dtype": frame(a=pl.Series([1, 2, 3], dtype=pl.Int32)),
            "null": frame(s=["x", "", "zz"]), "name": frame().rename({"a": "b"}),
            "category": frame(c=pl.Series(["u", "v", "v"], dtype=pl.Categorical)),
        },
    )


def case_polars_large_frame():
    import polars as pl

    base = pl.DataFrame({"x": np.arange(300_000, dtype=np.float64)})  # 2.4 MB: stored as a file
    return dict(base=base, equal=[pl.concat([base.head(5), base.tail(299_995)], rechunk=False)], differ={"values": base + 1})


def case_polars_series():
    import polars as pl

    return dict(base=pl.Series("a", [1.0, 2.0]), equal=[pl.Series("a", np.array([1.0, 2.0]))], differ={"name": pl.Series("b", [1.0, 2.0])})


def case_sparse_csr():
    import scipy.sparse as sparse

    dense = np.array([[0, 1.0, 0], [2.0, 0, 3.0]])
    base = sparse.csr_matrix(dense)
    from_coo = sparse.coo_matrix(([3.0, 1.0, 2.0], ([1, 0, 1], [2, 1, 0])), shape=(2, 3)).tocsr()
    from_coo.has_sorted_indices  # noqa: B018 (reading it caches a flag)
    return dict(
        base=base,
        equal=[from_coo],
        differ={
            "values": sparse.csr_matrix(dense * 2), "shape": sparse.csr_matrix(dense.T),
            "dtype": sparse.csr_matrix(dense.astype(np.float32)), "format": sparse.csc_matrix(dense),
            "array class": sparse.csr_array(dense),
        },
    )


def case_xarray_data_array():
    import xarray as xr

    def array(values=(1.0, 2.0, 3.0), name="t", attrs=None, x=(10, 20, 30), dims=("x",)):
        return xr.DataArray(np.array(values), dims=dims, coords={dims[0]: list(x)}, name=name, attrs=attrs or {"units": "K"})

    return dict(
        base=array(),
        equal=[array(values=[1.0, 2.0, 3.0])],
        differ={
            "values": array(values=(1.0, 2.0, 4.0)), "name": array(name="u"), "attrs": array(attrs={"units": "C"}),
            "coords": array(x=(10, 20, 31)), "dims": array(dims=("y",)),
        },
    )


def case_xarray_dataset():
    import xarray as xr

    def dataset(b=2.0, attrs=None):
        return xr.Dataset({"a": ("x", [1.0, 2.0]), "b": ("x", [b, 3.0])}, coords={"x": [0, 1]}, attrs=attrs or {"run": 1})

    reordered = xr.Dataset({"b": ("x", [2.0, 3.0]), "a": ("x", [1.0, 2.0])}, coords={"x": [0, 1]}, attrs={"run": 1})
    return dict(base=dataset(), equal=[reordered], differ={"values": dataset(b=2.5), "attrs": dataset(attrs={"run": 2})})


def case_xarray_large_dataset():
    # 4.8 MB: stored as a file whose variables are read memory-mapped.
    import xarray as xr

    def dataset(scale=1.0, unit="m"):
        values = np.linspace(0, scale, 600_000).reshape(1000, 600)
        return xr.Dataset(
            {"v": (("t", "x"), values, {"unit": unit}), "w": ("t", np.arange(1000, dtype=np.int16))},
            coords={"t": np.arange(1000), "label": ("x", [f"x{i}" for i in range(600)])}, attrs={"run": 1},
        )

    return dict(base=dataset(), equal=[dataset()], differ={"values": dataset(scale=2.0), "variable attrs": dataset(unit="s")})


def case_pil_image():
    import io

    from PIL import Image

    pixels = (np.arange(48, dtype=np.uint8) * 5).reshape(4, 4, 3)
    base = Image.fromarray(pixels)
    png = io.BytesIO()
    base.save(png, format="PNG")
    opened = Image.open(io.BytesIO(png.getvalue()))
    opened.load()
    opened.info.clear()
    return dict(
        base=base,
        equal=[opened, Image.fromarray(pixels.copy())],
        differ={"pixels": Image.fromarray(pixels + 1), "mode": base.convert("RGBA"), "size": Image.fromarray(pixels[:3])},
    )


def case_pil_palette_image():
    from PIL import Image

    def paletted(alpha=0, transparency=3):
        image = Image.frombytes("P", (4, 3), bytes(range(12)))
        image.putpalette([7, 8, 9, alpha] * 256, "RGBA")
        image.info["transparency"] = transparency
        return image

    return dict(
        base=paletted(),
        equal=[paletted()],
        differ={"palette alpha": paletted(alpha=255), "info": paletted(transparency=4)},
    )


@op
def frame_pixels(image):
    from PIL import ImageSequence

    COMPUTED.append(1)
    return [frame.convert("L").getpixel((0, 0)) for frame in ImageSequence.Iterator(image)]


def case_pil_multi_frame_image():
    # An animated GIF or a multi-page TIFF (a microscopy stack) was keyed by its current frame
    # alone: stacks sharing their first page were served one another's results.
    import io

    from PIL import Image

    def stack(*levels, format="GIF", at=0):
        frames = [Image.new("L", (2, 2), level) for level in levels]
        data = io.BytesIO()
        frames[0].save(data, format=format, save_all=True, append_images=frames[1:])
        image = Image.open(io.BytesIO(data.getvalue()))
        image.seek(at)
        return image

    return dict(
        base=stack(10, 20),
        equal=[stack(10, 20)],
        differ={"second frame": stack(10, 30), "one frame": stack(10), "three frames": stack(10, 20, 30), "at the second frame": stack(10, 20, at=1),
                "tiff pages": stack(10, 20, format="TIFF"), "tiff pages differ": stack(10, 40, format="TIFF")},
        op=frame_pixels,
    )


def case_pil_large_image():
    from PIL import Image

    def image(offset=0):  # 18 MB: more than PIL's 16 MB block, so packed piece by piece
        pixels = np.arange(2500 * 2400 * 3, dtype=np.uint32).astype(np.uint8).reshape(2500, 2400, 3)
        pixels[-1, -1, -1] += offset
        return Image.fromarray(pixels)

    return dict(base=image(), equal=[image()], differ={"last pixel": image(1)})


@dataclasses.dataclass
class Batch:
    features: np.ndarray
    meta: dict
    label: str = "train"


class Pair(typing.NamedTuple):
    left: np.ndarray
    right: np.ndarray


def case_records():
    base = Batch(np.arange(6.0), {"a": 1, "b": 2})
    return dict(
        base=base,
        equal=[Batch(np.arange(6.0), {"b": 2, "a": 1})],
        differ={"array": Batch(np.arange(6), {"a": 1, "b": 2}), "dict": Batch(np.arange(6.0), {"a": 1}), "label": Batch(np.arange(6.0), {"a": 1, "b": 2}, "test")},
    )


def case_named_tuple():
    base = Pair(np.zeros(3), np.ones(3))
    return dict(base=base, equal=[Pair(np.zeros(3), np.ones(3))], differ={"tuple": (np.zeros(3), np.ones(3)), "swapped": Pair(np.ones(3), np.zeros(3))})


def case_attrs_class():
    import attrs  # noqa: F401  (without attrs the case fails with ImportError, not NameError)

    return dict(base=Box(np.arange(3), "a"), equal=[Box(np.arange(3), "a")], differ={"tag": Box(np.arange(3), "b")})


try:
    import attrs as _attrs

    @_attrs.define(eq=False)
    class Box:
        values: np.ndarray
        tag: str

        def __eq__(self, other):
            return type(other) is Box and self.tag == other.tag and np.array_equal(self.values, other.values)
except ImportError:  # only case_attrs_class needs it
    pass


def case_numpy_string_dtype():
    # numpy 2's variable-width text: its buffer holds pointers, so it is keyed by its text.
    if not hasattr(np.dtypes, "StringDType"):
        return dict(base=np.array(["numpy 1"]), equal=[], differ={})

    def text(*items, na_object=None):
        return np.array(items, dtype=np.dtypes.StringDType(na_object=na_object))

    base = text("a", "bb", None)
    return dict(
        base=base,
        equal=[text("a", "bb", None), np.concatenate([text("a"), text("bb", None)])],
        differ={
            "text": text("a", "b", None), "missing": text("a", "bb", ""), "shape": text("a", "bb", None).reshape(3, 1),
            "na_object": text("a", "bb", "", na_object=float("nan")), "fixed width": np.array(["a", "bb", ""]),
            "list": ["a", "bb", None],
        },
    )


def case_numpy_record_padding():
    # An aligned record dtype has padding bytes between fields, which np.empty leaves as they
    # were in memory: equal records must not miss for bytes no field holds.
    fields = [("flag", "u1"), ("x", "f8"), ("inner", [("k", "u1"), ("t", "M8[s]")])]
    aligned = np.dtype(fields, align=True)

    def records(x=1.5, dtype=aligned, fill=None):
        array = np.zeros(2, dtype) if fill is None else np.full(2 * dtype.itemsize, fill, np.uint8).view(dtype)
        array["flag"], array["x"], array["inner"]["k"] = 1, x, 7
        array["inner"]["t"] = np.datetime64("2024-01-01T00:00:00")
        return array

    return dict(
        base=records(),
        equal=[records(fill=0xFF), records(fill=0x5A)],
        differ={"field": records(x=2.5), "packed dtype": records(dtype=np.dtype(fields)), "one record": records()[0]},
    )


def case_numpy_record_with_objects():
    # A record dtype with an object field holds pointers: it was hashed as bytes, a raw
    # TypeError (numpy refuses to view references as bytes).
    kind = [("label", "O"), ("n", "i8")]
    base = np.array([("x", 1), (None, 2)], dtype=kind)
    return dict(
        base=base,
        equal=[np.array([("x", 1), (None, 2)], dtype=kind)],
        differ={"object field": np.array([("y", 1), (None, 2)], dtype=kind), "number field": np.array([("x", 1), (None, 3)], dtype=kind),
                "object array": np.array(["x", None], dtype=object)},
    )


def case_numpy_memmap_round_trip():
    base = np.linspace(0, 1, 300_000)  # 2.4 MB: stored as a file, loaded memory-mapped
    return dict(base=base, equal=[np.linspace(0, 1, 300_000)], differ={"values": np.linspace(0, 2, 300_000)})


def same(a, b) -> bool:
    """Exactly equal: type, dtype, shape, values, index, names and attrs."""
    if type(a) is not type(b) and type(a).__module__.partition(".")[0] != "PIL":
        return False
    module = type(a).__module__.partition(".")[0]
    if any(kind.__module__.startswith("pandas.") for kind in type(a).__mro__):  # subclasses too
        return _same_pandas(a, b)
    if module == "numpy":
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))
    if module == "torch":
        import torch

        return a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad and torch.equal(a, b)
    if isinstance(a, dict):  # an OrderedDict's order is part of its equality, a dict's is not
        keys_match = list(a) == list(b) if type(a) is not dict else a.keys() == b.keys()
        attributes = getattr(a, "__dict__", {}) == getattr(b, "__dict__", {})  # a state_dict's _metadata
        return keys_match and attributes and all(same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and not isinstance(a, Pair):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if module == "pyarrow":
        return a.equals(b) and a.schema.equals(b.schema, check_metadata=True) if hasattr(a, "schema") else a.equals(b)
    if module == "polars":
        return a.equals(b) and a.schema == b.schema if hasattr(a, "schema") else a.equals(b) and a.name == b.name and a.dtype == b.dtype
    if module == "scipy":
        return a.format == b.format and a.dtype == b.dtype and a.shape == b.shape and (a != b).nnz == 0
    if module == "xarray":
        return a.identical(b)
    if module == "PIL":
        palettes = [image.getpalette(None) if image.mode in ("P", "PA") else None for image in (a, b)]
        same_image = a.mode == b.mode and a.size == b.size and a.info == b.info and palettes[0] == palettes[1]
        return same_image and a.tobytes() == b.tobytes()
    if isinstance(a, (Batch, Pair)):
        return all(same(x, y) for x, y in zip(dataclasses.astuple(a) if isinstance(a, Batch) else a, dataclasses.astuple(b) if isinstance(b, Batch) else b))
    return bool(a == b)


def _same_pandas(a, b) -> bool:
    pd = _pandas()
    check = pd.testing.assert_frame_equal if isinstance(a, pd.DataFrame) else pd.testing.assert_series_equal
    try:
        check(a, b, check_exact=True, check_index_type=True, check_names=True)
    except AssertionError:
        return False
    columns = [a] if isinstance(a, pd.Series) else [a.iloc[:, i] for i in range(a.shape[1])]
    others = [b] if isinstance(b, pd.Series) else [b.iloc[:, i] for i in range(b.shape[1])]
    # assert_*_equal takes None for NaN in object columns: the element types must match too.
    kinds = all(list(map(type, x)) == list(map(type, y)) for x, y in zip(columns, others) if x.dtype == object)
    index_kinds = a.index.dtype != object or list(map(type, a.index)) == list(map(type, b.index))
    return kinds and index_kinds and a.attrs == b.attrs


CASES = {name[5:]: fn for name, fn in dict(globals()).items() if name.startswith("case_")}


def run(path: str, case_name: str) -> dict:
    """Call the case's op on every value; what was computed, and values that came back changed."""
    case = CASES[case_name]()
    fn = case.get("op", echo)
    report = {"base": None, "equal": [], "differ": {}, "changed": []}
    with Storage(path).run():
        report["base"] = _call(fn, case["base"], "base", report)
        report["equal"] = [_call(fn, v, f"equal {i}", report) for i, v in enumerate(case["equal"])]
        report["differ"] = {k: _call(fn, v, k, report) for k, v in case["differ"].items()}
    return report


def _call(fn, value, label: str, report: dict) -> int:
    before = len(COMPUTED)
    result = fn(value)
    if fn is echo and not same(result, value):
        report["changed"].append(label)
    return len(COMPUTED) - before


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], sys.argv[2])))
