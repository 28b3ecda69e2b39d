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


def same(a, b) -> bool:
    """Exactly equal: type, dtype, shape, values, index, names and attrs."""
    if type(a) is not type(b):
        return False
    module = type(a).__module__.partition(".")[0]
    if module == "pandas":
        return _same_pandas(a, b)
    if module == "numpy":
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))
    if module == "torch":
        import torch

        return a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad and torch.equal(a, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def _same_pandas(a, b) -> bool:
    pd = _pandas()
    check = pd.testing.assert_frame_equal if isinstance(a, pd.DataFrame) else pd.testing.assert_series_equal
    try:
        check(a, b, check_exact=True, check_index_type=True, check_names=True)
    except AssertionError:
        return False
    return a.attrs == b.attrs


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
