"""Plain query tables (runtime/query/columns.py) take shortcuts for the usual case, a column of
small ints; every other value must come out as decoding it alone would give it.

Each test stores ``echo(v)`` calls and queries ``y = echo(x)``: y is decoded from the call
rows, x looked up by content id (values shared from y, or loaded from the values table).
"""

from __future__ import annotations

import copy
import textwrap
from typing import Any

import pandas as pd
import pytest
from test_query import rows, run

from mandala_ast import Storage, op
from mandala_ast.runtime.packing import INLINE_LIMIT
from mandala_ast.runtime.query.row_calls import RowCalls

BIG = "s" * (INLINE_LIMIT + 1)  # travels outside the call row


@op
def echo(x: Any) -> Any:
    return x


@op(nout=2)
def split(x: Any) -> tuple:
    return x, [x]


@op
def parity(x: int) -> int:
    return x % 2


@op
def half(x: int) -> int:
    return x // 2


@op
def kind(x: Any) -> str:
    return type(x).__name__


OPS = {"echo": echo, "split": split, "parity": parity, "half": half, "kind": kind}


def query(storage: Storage, values: list, body: str = "    y = echo(x)\n") -> Any:
    """Run ``body`` for each of ``values`` as x, then query it with x = Q()."""
    run(f"import mandala_ast\nwith storage.run():\n    for x in {values!r}:\n{textwrap.indent(body, '    ')}", storage, **OPS)
    return run(f"import mandala_ast\nwith storage.query() as q:\n    x = Q()\n{body}", storage, **OPS)["q"]


def typed(frame: pd.DataFrame) -> list[tuple]:
    return [tuple((type(v), v) for v in row) for row in rows(frame)]


@pytest.fixture
def storage(tmp_path) -> Storage:
    return Storage(tmp_path / "results.db")


class TestValues:
    def test_ints_give_int64_columns(self, storage: Storage) -> None:
        frame = query(storage, [3, -4, 0, 10**17]).df()
        assert sorted(rows(frame)) == [(-4, -4), (0, 0), (3, 3), (10**17, 10**17)]
        assert list(frame.dtypes) == ["int64", "int64"]

    @pytest.mark.parametrize("values", [
        [1, 2.5, -3.0, "12", True, False],  # json that int() refuses, or bools
        [1, None],  # None: an object column
        [b"12", b"-7", 4],  # bytes that look like json ints stay bytes
        [1, BIG, -2, [1, 2]],  # a value outside the row, and a pickled one
        [2**63, 1],  # an int pickled, beyond int64: pandas makes it uint64
        [10**30, -(10**30), 1],  # and beyond uint64: object
        [*range(20), BIG],  # ints parsed in bulk, but for one value outside the row
        [*range(20), [1, 2], -5],  # and for a pickled one, decoded on its own
        [*range(20), "7"],  # a json str among the ints: every row decoded as its codec says
    ], ids=["json", "none", "bytes", "outside", "uint64", "huge", "ints-outside", "ints-pickled", "ints-str"])
    def test_other_values_come_out_as_stored(self, storage: Storage, values: list) -> None:
        frame = query(storage, values).df()
        assert sorted(typed(frame), key=repr) == sorted((((type(v), v), (type(v), v)) for v in values), key=repr)
        if None in values:
            assert list(frame.dtypes) == [object, object]
        if all(type(v) is int for v in values):
            assert frame["y"].dtype == pd.Series(values).dtype

    def test_values_only_outside_the_rows_are_loaded(self, storage: Storage) -> None:
        frame = query(storage, [BIG, BIG + "t"]).df("y")
        assert sorted(frame["y"]) == [BIG, BIG + "t"]

    def test_a_later_output_and_a_first_output_of_two(self, storage: Storage) -> None:
        frame = query(storage, [1, BIG, 2.5], "    a, b = split(x)\n").df()
        expected = [((type(v), v), (type(v), v), (list, [v])) for v in [1, BIG, 2.5]]
        assert sorted(typed(frame), key=repr) == sorted(expected, key=repr)

    @pytest.mark.parametrize("values", [[0, 1, 2, 5], [1, BIG, 2.5]])
    def test_x_takes_values_from_any_column_that_holds_them(self, storage: Storage, values: list) -> None:
        """x's values are in z (and some in y): the first decoded column lends all of its
        values, the later ones only those still missing (BIG from the values table)."""
        body = "    y = kind(x)\n    z = echo(x)\n    w = kind(z)\n" if BIG in values else \
            "    y = parity(x)\n    z = echo(x)\n    w = half(x)\n"
        frame = query(storage, values, body).df()
        assert sorted(typed(frame[["x", "z"]]), key=repr) == sorted((((type(v), v), (type(v), v)) for v in values), key=repr)

    def test_equal_rows_show_once_with_every_call(self, storage: Storage) -> None:
        q = query(storage, [1, 3, 2], "    y = parity(x)\n")
        frame = q.df("y")
        assert sorted(zip(frame["y"], map(len, frame.attrs["mandala_ast.calls"]))) == [(0, 1), (1, 2)]

    def test_rows_are_distinct_by_their_values_together(self, storage: Storage) -> None:
        frame = query(storage, [0, 1, 2, 3], "    y = parity(x)\n    z = half(x)\n").df("y", "z")
        assert sorted(rows(frame)) == [(0, 0), (0, 1), (1, 0), (1, 1)]


@op(transient=True)
def spread(n: int) -> list:
    return list(range(n))


@op(nout=2)
def count_to(n: int) -> tuple:
    return n, list(range(n))


@op
def pair(xs: list, m: list) -> int:
    return len(xs) + len(m)


@pytest.mark.parametrize(("body", "name"), [
    ("    xs = spread(n)\n    a, b = count_to(n)\n", "b"),  # a later output, inline in its rows
    ("    xs = spread(n)\n    for m in [[0], [0, 1]]:\n        k = pair(xs, m)\n", "m"),  # loop values
    ("    xs = spread(n)\n    a, b = count_to(n)\n    if a > 1:\n        c = 1\n", "b"),  # (table.py)
], ids=["later-output", "loop-value", "guarded"])
def test_a_value_another_op_stored_as_transient_still_shows_where_it_is_known(storage: Storage, body: str, name: str) -> None:
    """spread's outputs [0] and [0, 1] are transient: their values rows hold no value. The same
    values are count_to's second outputs (inline in its call rows) and the query's own loop
    values: there they show, though spread's column, decoded first, marks them as outside
    its rows. They showed as not stored."""
    ops = {"spread": spread, "count_to": count_to, "pair": pair}
    run("import mandala_ast\nwith storage.run():\n    for n in (1, 2):\n        pair(spread(n), list(range(n)))\n"
        "        count_to(n)\n", storage, **ops)
    frame = run(f"import mandala_ast\nwith storage.query() as q:\n    n = Q()\n{body}", storage, **ops)["q"].df()
    assert sorted(frame[name], key=repr) == [[0, 1], [0]]


class TestRowCalls:
    def test_copies_share_the_calls_and_deleting_a_filtered_frame_works(self, storage: Storage) -> None:
        frame = query(storage, list(range(10))).df()
        calls = frame.attrs["mandala_ast.calls"]
        assert isinstance(calls, RowCalls) and len(calls) == 10
        assert frame.head().attrs["mandala_ast.calls"] is calls and copy.deepcopy(calls) is calls
        assert calls == list(calls) and pd.concat([frame[:2], frame[2:]]).attrs["mandala_ast.calls"] is calls
        assert storage.delete_calls(frame[frame.x >= 7]).calls == 3
        assert sorted(storage.df(echo)["x"]) == list(range(7))
