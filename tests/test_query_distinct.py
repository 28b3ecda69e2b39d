"""Distinct rows of a query's table (query/distinct.py), and the calls each row keeps."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import numpy  # noqa: F401  (loaded, as in a query that builds a DataFrame: the sorted-hash path)
from hypothesis import given, settings, strategies as st
from test_query import run
from test_query_columns import half, parity

from mandala_ast import Storage
from mandala_ast.runtime.query import table as table_module
from mandala_ast.runtime.query.distinct import Distinct, distinct_rows, repeated_rows
from mandala_ast.runtime.query.row_calls import RowCalls

IDS = [hashlib.blake2b(bytes([i]), digest_size=32).digest() for i in range(3)]
#: Keys a table's columns hold: content ids, None (no assignment held), other hashables,
#: and -1 / -2, whose hash() is the same number (a row only compared for nothing).
KEYS = st.sampled_from([*IDS, None, -1, -2, 7])


def reference(keys: list[tuple], calls: list[tuple], filled: dict[int, int]) -> tuple[list[int], list[tuple]]:
    """A row at a time: the first row of each key, with the calls of every row equal to it,
    then those of the rows it fills."""
    position: dict[tuple, int] = {}
    rows: list[int] = []
    merged: list[tuple] = []
    for i, (key, found) in enumerate(zip(keys, calls)):
        if i in filled:
            continue
        at = position.setdefault(key, len(rows))
        if at == len(rows):
            rows.append(i)
            merged.append(found)
        else:
            merged[at] = tuple(dict.fromkeys((*merged[at], *found)))
    for i, j in filled.items():
        at = position[keys[j]]
        merged[at] = tuple(dict.fromkeys((*merged[at], *calls[i])))
    return rows, merged


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[list], int, dict[int, int]]:
    count = draw(st.integers(0, 25))
    width = draw(st.integers(0, 3))
    columns = [draw(st.lists(KEYS, min_size=count, max_size=count)) for _ in range(width)]
    filled: dict[int, int] = {}
    for i in draw(st.lists(st.integers(0, max(count - 1, 0)), max_size=3, unique=True)) if count > 1 else []:
        j = draw(st.integers(0, count - 1))
        if j != i and j not in filled and i not in filled.values():
            filled[i] = j
    return columns, count, filled


@settings(max_examples=300, deadline=None)
@given(tables())
def test_kept_rows_and_their_calls_are_those_found_a_row_at_a_time(table: tuple[list[list], int, dict[int, int]]) -> None:
    columns, count, filled = table
    calls = [(f"a{i}".encode(), f"b{i % 3}".encode()) for i in range(count)]
    expected_rows, expected_calls = reference(list(zip(*columns)) if columns else [()] * count, calls, filled)
    found = distinct_rows(columns, count, filled)
    if found is None:
        assert (expected_rows, expected_calls) == (list(range(count)), calls)
    else:
        assert found.keep == expected_rows
        assert list(RowCalls.from_rows(calls).kept(found)) == expected_calls
        assert list(RowCalls(list(zip(*calls)) if calls else []).kept(found)) == expected_calls


@settings(max_examples=200, deadline=None)
@given(tables())
def test_a_process_without_numpy_keeps_the_same_rows_and_calls(table: tuple[list[list], int, dict[int, int]]) -> None:
    columns, count, filled = table
    calls = RowCalls([[f"a{i}".encode() for i in range(count)]])
    with_numpy = distinct_rows(columns, count, filled)
    with mock.patch.dict(sys.modules):
        del sys.modules["numpy"]
        without = distinct_rows(columns, count, filled)
        assert "numpy" not in sys.modules
    assert without == with_numpy
    if without is not None:
        assert list(calls.kept(without)) == list(calls.kept(with_numpy))


def test_rows_sharing_only_a_hash_are_all_distinct() -> None:
    assert hash(-1) == hash(-2)
    assert repeated_rows([[-1, -2, 5]], 3) == [0, 1]  # suspects, compared by their full keys
    assert distinct_rows([[-1, -2, 5]], 3) is None


def test_a_repeated_row_far_from_its_first_is_kept_once_in_its_first_place() -> None:
    column = [IDS[0], IDS[1], *(i.to_bytes(32, "big") for i in range(3, 1000)), IDS[1]]
    assert distinct_rows([column], len(column)) == Distinct(keep=list(range(len(column) - 1)), stands_for={1: [1, len(column) - 1]})


def test_suspects_given_are_the_only_rows_compared() -> None:
    # table.py passes the rows whose stored ids repeat; rows differing in one are distinct.
    assert distinct_rows([[IDS[0], IDS[0], IDS[0]]], 3, suspects=[0, 2]) == Distinct(keep=[0, 1], stands_for={0: [0, 2]})


def test_sparse_calls_of_merged_rows_leave_out_the_calls_not_matched() -> None:
    calls = RowCalls([[b"f1", b"f2", b"f3"], [None, b"g2", None]], sparse=True)
    kept = calls.kept(Distinct(keep=[0, 1], stands_for={0: [0, 2]}))
    assert list(kept) == [(b"f1", b"f3"), (b"f2", b"g2")]


PLAIN = "    y = half(x)\n    z = parity(y)\n"
GUARDED = "    y = half(x)\n    if x >= 0:\n        z = parity(y)\n"


def test_a_query_shows_a_value_computed_twice_once_with_both_calls(tmp_path: Path) -> None:
    """The same z stored by two calls (one from code the compiler did not see, which names
    its input by content: a call of its own) is one row holding both calls, in a plain and in
    a guarded query, in its first place."""
    storage = Storage(tmp_path / "store.db")
    run(f"import mandala_ast\nwith storage.run():\n    for x in range(40):\n{textwrap.indent(PLAIN, '    ')}", storage, parity=parity, half=half)
    with storage.run():
        assert parity(half(24)) == 0  # this module is not compiled
    for body in (PLAIN, GUARDED):
        frame = run(f"import mandala_ast\nwith storage.query() as q:\n    x = Q()\n{body}", storage, parity=parity, half=half)["q"].df("x", "y", "z")
        assert list(frame["x"]) == list(range(40)) and list(frame["z"]) == [x // 2 % 2 for x in range(40)]
        calls = frame.attrs["mandala_ast.calls"]
        # parity(12) uncompiled matches any call whose output is 12: half(24) and half(25).
        assert [len(set(calls[i])) for i in range(40)] == [3 if i in (24, 25) else 2 for i in range(40)]


def test_derived_ids_are_computed_only_for_the_rows_whose_stored_ids_repeat(tmp_path: Path) -> None:
    """A derived value's id costs ~1 µs: 1.5 s for 3 derived columns over 500k rows when one
    stored row repeated. Rows that differ in a stored id differ whatever they derive."""
    storage = Storage(tmp_path / "store.db")
    run(f"import mandala_ast\nwith storage.run():\n    for x in range(40):\n{textwrap.indent(PLAIN, '    ')}", storage, parity=parity, half=half)
    with storage.run():
        parity(half(24))  # (uncompiled: the rows of x = 24 and 25 repeat)
    body = PLAIN + "    w = x * 3\n    if w > 9:\n        v = [w]\n"
    ids: list = []
    real = table_module._value_id
    with mock.patch.object(table_module, "_value_id", lambda value: ids.append(value) or real(value)):
        frame = run(f"import mandala_ast\nwith storage.query() as q:\n    x = Q()\n{body}", storage, parity=parity, half=half)["q"].df()
    assert list(frame["x"]) == list(range(40)) and list(frame["w"]) == [3 * x for x in range(40)]
    assert [v for v in frame["v"] if v is not None] == [[3 * x] for x in range(4, 40)]
    assert sorted(ids, key=repr) == sorted([72, 75, 72, 75, [72], [75], [72], [75]], key=repr)  # rows 24, 25 (+ their repeats)


def test_a_delete_block_does_not_import_numpy(tmp_path: Path) -> None:
    """A delete block builds no DataFrame: finding its distinct rows must not cost numpy's
    import (~0.1 s) in a script that never needed numpy."""
    script = textwrap.dedent(f"""
        import sys
        from mandala_ast import Q, Storage, op, transform_source

        @op
        def half(x: int) -> int:
            return x // 2

        storage = Storage({str(tmp_path / "store.db")!r})
        def run(source):
            code = transform_source(source, "user_code.py").source
            exec(compile(code, "user_code.py", "exec"), {{"storage": storage, "half": half, "Q": Q}})
        run("import mandala_ast\\nwith storage.run():\\n    for x in range(20):\\n        y = half(x)\\n")
        run("import mandala_ast\\nwith storage.delete():\\n    x = Q()\\n    y = half(x)\\n")
        import sqlite3
        print(sqlite3.connect(storage.path).execute("SELECT count(*) FROM calls").fetchone()[0], "numpy" in sys.modules)
    """)
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert found.stdout.split()[-2:] == ["0", "False"], found.stdout + found.stderr
