"""Object columns of text (runtime/types/pandas_text.py): one key however it is computed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from mandala_ast.runtime.hashing import content_id  # noqa: E402
from mandala_ast.runtime.types.pandas_text import storable_nulls, text_column  # noqa: E402


def objects(values) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def key_id(values) -> bytes:
    text = text_column(objects(values))
    return content_id(text.key() if text is not None else "not text")


def test_a_column_sharing_its_string_objects_keys_as_one_made_of_distinct_objects():
    words = objects(["x" * 3, "y", None])
    shared = words[np.arange(9000) % 3]  # three objects: grouped by identity
    distinct = objects(["".join(["x", "xx"]) if i % 3 == 0 else ("y" if i % 3 == 1 else None) for i in range(9000)])
    assert key_id(shared) == key_id(distinct)


def test_none_nan_na_and_their_spellings_are_different_text_columns():
    variants = [["a", last] for last in (None, np.nan, pd.NA, "nan", "None", "", "<NA>")]
    assert len({key_id(values) for values in variants}) == len(variants)


def test_columns_holding_anything_but_text_and_nulls_are_not_text():
    for last in (1, 1.5, b"a", np.float64("nan"), pd.NaT, ("a",)):
        for size in (2, 6000):  # both ways of computing the key
            assert text_column(objects(["a"] * (size - 1) + [last])) is None, (last, size)


def test_a_lone_surrogate_is_text_keyed_like_the_rest():
    assert key_id(["a", "\ud800"]) != key_id(["a", "\ud801"])
    assert key_id(["a", "\ud800"]) == key_id(["a", "\ud800"])


def test_the_key_is_the_same_without_pyarrow():
    script = """
import sys
if sys.argv[1] == "without":
    sys.modules["pyarrow"] = None
import numpy as np
from mandala_ast.runtime.hashing import content_id
from mandala_ast.runtime.types.pandas_text import text_column
words = np.empty(3, dtype=object); words[:] = ["é", "", None]
columns = [words[np.arange(n) % 3] for n in (5, 7000)] + [np.array([f"w{i}" for i in range(7000)], dtype=object)]
print(",".join(content_id(text_column(c).key()).hex() for c in columns))
"""
    ids = [subprocess.run([sys.executable, "-c", script, how], capture_output=True, text=True, check=True).stdout for how in ("with", "without")]
    assert ids[0] == ids[1] and ids[0].count(",") == 2


def test_only_exact_strs_with_one_kind_of_null_are_storable_as_arrow_text():
    assert storable_nulls(objects(["a", "b"])) == 0
    assert storable_nulls(objects(["a", None])) == 1 and storable_nulls(objects(["a", np.nan])) == 2
    for values in (["a", None, np.nan], ["a", pd.NA], [np.str_("a")], ["a", 1]):
        assert storable_nulls(objects(values)) is None, values
