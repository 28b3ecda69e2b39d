"""Delete blocks: the code that computed results removes them, with everything
computed from them, and re-running the code recomputes exactly what went."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from test_query import RUNS, add, blocks, inc, rows, run

from mandala_ast import ArgumentError, MList, QueryError, Storage, op
from mandala_ast.runtime.deletion import DeleteReport

# inc and add (test_query.py) record each execution in RUNS, as make does.


@op
def make(n: int) -> MList[int]:
    RUNS.append(("make", n))
    return [1000 + i for i in range(n)]


@op
def make_again(n: int) -> MList[int]:
    return [1000 + i for i in range(n)]


@op
def thousand() -> int:
    return 1000


OPS = {"make": make, "make_again": make_again, "thousand": thousand}
# Values chosen so that no input of one chain equals a value of another: deleting one chain
# cannot take another's values with it.
RUN_BLOCK = """\
import mandala_ast
with storage.run():
    for x in [10, 20, 30]:
        y = inc(x)
        z = add(y, 100)
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


@pytest.fixture
def storage(path: Path) -> Storage:
    RUNS.clear()
    storage = Storage(path)
    run(RUN_BLOCK, storage, **OPS)
    RUNS.clear()
    return storage


def delete(storage: Storage, body: str) -> DeleteReport:
    """Run a compiled ``with storage.delete() as q:`` block; its ``q.report``."""
    report = run(f"import mandala_ast\nwith storage.delete() as q:\n{body}", storage, **OPS)["q"].report
    assert isinstance(report, DeleteReport)
    return report


def rerun(storage: Storage) -> list[tuple]:
    """What the run block executes when run again."""
    RUNS.clear()
    run(RUN_BLOCK, storage, **OPS)
    return sorted(RUNS)


class TestDeleteBlock:
    def test_matched_call_and_its_dependents_go_and_come_back(self, storage, path, capsys) -> None:
        report = delete(storage, "    y = inc(20)\n")
        assert (report.calls, report.dependents, report.values) == (2, 1, 3)  # 20, 21, 121
        assert capsys.readouterr().out.strip() == str(report)
        remaining = Storage(path).df(add)
        assert sorted(zip(remaining.x, remaining.output)) == [(11, 111), (31, 131)]
        assert rerun(storage) == [("add", 21, 100), ("inc", 20)]

    def test_whole_chain_matched_by_the_same_code(self, storage) -> None:
        report = delete(storage, "    for x in [10, 30]:\n        y = inc(x)\n        z = add(y, 100)\n")
        assert (report.calls, report.matched, report.dependents) == (4, 4, 0)
        assert rerun(storage) == [("add", 11, 100), ("add", 31, 100), ("inc", 10), ("inc", 30)]

    def test_nothing_matched_deletes_nothing(self, storage) -> None:
        report = delete(storage, "    y = inc(99)\n")
        assert (report.calls, report.values) == (0, 0)
        assert rerun(storage) == []

    def test_deleting_a_list_deletes_what_uncompiled_code_computed_from_its_elements(self, path) -> None:
        storage = Storage(path)
        with storage:
            for e in make(2):
                inc(e)
        report = delete(storage, "    xs = make(2)\n")
        assert (report.matched, report.dependents) == (1, 4)  # two item calls, two inc calls
        RUNS.clear()
        with storage:
            for e in make(2):
                inc(e)
        assert sorted(RUNS) == [("inc", 1000), ("inc", 1001), ("make", 2)]

    def test_a_delete_block_over_the_elements_of_a_kept_list_deletes_what_was_computed_from_them(
        self, path
    ) -> None:
        """`xs = Q(); for e in xs: y = inc(e)` keeps the list and deletes the inc calls: its
        rows name the elements' calls without the list's, and deleting them alone is refused
        when asked for by id. A delete block's elements go with their list or not at all."""
        storage = Storage(path)
        code = "import mandala_ast\nwith storage.run():\n    for e in make(3):\n        y = inc(e)\n"
        run(code, storage, **OPS)
        report = delete(storage, "    xs = Q()\n    for e in xs:\n        if e > 1000:\n            y = inc(e)\n")
        assert (report.calls, report.dependents) == (2, 0)  # inc(1001), inc(1002)
        RUNS.clear()
        run(code, storage, **OPS)
        assert sorted(RUNS) == [("inc", 1001), ("inc", 1002)]

    def test_deleting_a_list_deletes_what_compiled_code_computed_from_its_elements(self, path) -> None:
        storage = Storage(path)
        code = "import mandala_ast\nwith storage.run():\n    for e in make(2):\n        y = inc(e)\n"
        run(code, storage, **OPS)
        delete(storage, "    xs = make(2)\n")
        RUNS.clear()
        run(code, storage, **OPS)
        assert sorted(RUNS) == [("inc", 1000), ("inc", 1001), ("make", 2)]


class TestGuards:
    def test_only_rows_where_the_if_holds(self, storage) -> None:
        report = delete(storage, "    for x in [10, 20, 30]:\n        if x >= 20:\n            y = inc(x)\n")
        assert (report.calls, report.matched) == (4, 2)
        assert rerun(storage) == [("add", 21, 100), ("add", 31, 100), ("inc", 20), ("inc", 30)]

    def test_calls_outside_the_if_are_matched_in_every_row(self, storage) -> None:
        """As in a query: a row whose condition fails keeps what the block computes before it."""
        run("import mandala_ast\nwith storage.run():\n    for x in [10, 20]:\n        w = mul(x, 3)\n", storage, **OPS)
        report = delete(storage, "    for x in [10, 20]:\n        y = inc(x)\n        if x > 10:\n            w = mul(x, 3)\n")
        assert report.matched == 3  # inc(10), inc(20), mul(20, 3)
        q = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    w = mul(x, 3)\n", storage, **OPS)["q"]
        assert rows(q.df()) == [(10, 30)]


class TestErrors:
    def test_uncompiled_delete_block_says_how_to_compile(self, storage) -> None:
        with pytest.raises(QueryError, match="a delete block must be compiled.*mandala-ast run"):
            with storage.delete():
                inc(20)
        assert rerun(storage) == []

    def test_a_failing_block_deletes_nothing(self, storage) -> None:
        with pytest.raises(ZeroDivisionError):
            run("import mandala_ast\nwith storage.delete() as q:\n    y = inc(20)\n    1 / 0\n", storage, **OPS)
        assert rerun(storage) == []


class TestRegressions:
    def test_rows_with_equal_values_delete_every_matched_call(self, path) -> None:
        """Rows are shown once per distinct values; the calls of the duplicates were lost, so
        `inc(add(Q(), Q()))` left one of two matched add calls behind."""
        storage = Storage(path)
        run("import mandala_ast\nwith storage.run():\n    a = inc(add(1, 2))\n    b = inc(add(0, 3))\n", storage)
        assert len(storage.df(add)) == 2
        delete(storage, "    w = inc(add(Q(), Q()))\n")
        assert len(storage.df(add)) == 0 and len(storage.df(inc)) == 0

    def test_a_block_without_names_deletes_every_match(self, path) -> None:
        """With no column, every row looked like the first one."""
        storage = Storage(path)
        run("import mandala_ast\nwith storage.run():\n    for x in [1, 2, 3]:\n        y = add(x, 10)\n", storage)
        delete(storage, "    add(Q(), 10)\n")
        assert len(storage.df(add)) == 0

    def test_delete_calls_of_a_frame_with_merged_rows(self, path) -> None:
        storage = Storage(path)
        run("import mandala_ast\nwith storage.run():\n    a = inc(add(1, 2))\n    b = inc(add(0, 3))\n", storage)
        ns = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    w = inc(add(x, Q()))\n"
                 "with storage.query() as g:\n    s = add(Q(), Q())\n    if s > 0:\n        w = inc(s)\n", storage)
        assert len(ns["q"].df()) == 2 and len(ns["g"].df()) == 1  # g's rows have equal values
        storage.delete_calls(ns["g"].df())
        assert len(storage.df(add)) == 0 and len(storage.df(inc)) == 0

    def test_deleting_elements_of_one_list_keeps_those_of_an_equal_list(self, path) -> None:
        """Item calls of equal lists share a content id, and a matched call takes every row
        of its content: make_again's item calls went too, and its elements matched nothing."""
        storage = Storage(path)
        code = "    for e in make(2):\n        y = inc(e)\n"
        run(f"import mandala_ast\nwith storage.run():\n{code}    xs = make_again(2)\n", storage, **OPS)
        report = delete(storage, code)
        assert (report.matched, report.dependents) == (3, 2)  # make and two inc; make's item calls
        ns = run("import mandala_ast\nwith storage.query() as q:\n    for e in make_again(2):\n        pass\n",
                 storage, **OPS)
        assert sorted(ns["q"].df()["e"]) == [1000, 1001]

    def test_deleting_a_list_follows_compiled_element_consumers_an_earlier_op_returned_too(self, path) -> None:
        """provenance gives inc(1000) to make's item call, but deletion asked for the earliest
        producer of 1000 of any op (thousand()) and left inc(1000) behind."""
        storage = Storage(path)
        code = "    a = thousand()\n    for e in make(2):\n        y = inc(e)\n"
        run(f"import mandala_ast\nwith storage.run():\n{code}", storage, **OPS)
        assert set(storage.provenance(inc)["producer_op"]) == {"mandala_ast.__item__"}
        storage.delete_calls(storage.df(make))
        assert len(storage.df(inc)) == 0 and len(storage.df(thousand)) == 1


class TestRowsOfAResult:
    """`storage.delete_calls(rows)` with rows of a query result: the calls of exactly those rows."""

    QUERY = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x)\n    z = add(y, 100)\n"

    def left(self, storage: Storage) -> list[int]:
        return sorted(storage.df(inc)["x"])

    def test_rows_relabeled_by_reset_index_are_refused_not_taken_for_the_rows_first_so_numbered(self, storage) -> None:
        """`q.df().sort_values("z", ascending=False).reset_index(drop=True).head(1)` shows x = 30;
        its label 0 was taken for the result's first row: x = 10's calls were deleted instead."""
        frame = run(self.QUERY, storage)["q"].df()
        top = frame.sort_values("z", ascending=False).reset_index(drop=True).head(1)
        assert list(top["x"]) == [30]
        with pytest.raises(ArgumentError, match="reset_index"):
            storage.delete_calls(top)
        with pytest.raises(ArgumentError, match="reset_index"):
            storage.delete_calls(frame.sort_values("z", ascending=False).reset_index(drop=True)[["x"]].iloc[2:3])
        assert self.left(storage) == [10, 20, 30]

    @pytest.mark.parametrize("select", [
        lambda f: f.sort_values("z", ascending=False).head(1),
        lambda f: f[f["x"] == 30],
        lambda f: f[["x"]].loc[[2]],
        lambda f: f.tail(1).copy(),
    ])
    def test_rows_selected_keeping_their_labels_delete_those_rows(self, storage, select) -> None:
        frame = run(self.QUERY, storage)["q"].df()
        report = storage.delete_calls(select(frame))
        assert report.calls == 2 and self.left(storage) == [10, 20]


@op(nout=2)
def gauge(x: int):
    # numpy's own missing values: a float32 NaN and a datetime64 NaT (not Python floats)
    import numpy as np

    return (np.float32("nan"), np.datetime64("NaT")) if x == 20 else (np.float32(x), np.datetime64(x, "D"))


def test_rows_showing_numpy_missing_values_are_deleted_not_refused_as_renumbered(storage) -> None:
    # The result shows such a value as nan/NaT, which equals nothing, not even itself: the
    # rows' check refused the result as it was handed out, saying it had been renumbered.
    code = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    f, t = gauge(x)\n"
    run("import mandala_ast\nwith storage.run():\n    for x in [10, 20]:\n        f, t = gauge(x)\n", storage, gauge=gauge)
    frame = run(code, storage, gauge=gauge)["q"].df()
    assert storage.delete_calls(frame[frame["x"] == 20]).calls == 1
    assert sorted(storage.df(gauge)["x"]) == [10]


class TestReadAfterDeleting:
    """A query result read before a deletion, read again after it."""

    QUERY = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x)\n    z = add(y, 100)\n"

    def test_a_query_read_before_delete_calls_no_longer_shows_the_deleted_rows(self, storage) -> None:
        """`storage.delete_calls(q.df()[...])` then `q.df()`: the deleted rows were still shown."""
        q = run(self.QUERY, storage)["q"]
        frame = q.df()
        storage.delete_calls(frame[frame.x == 20])
        assert rows(q.df()) == [(10, 11, 111), (30, 31, 131)]
        assert len(q.df(values="ids")) == 2

    def test_a_query_read_before_all_its_calls_were_deleted_is_empty_not_a_lookup_error(self, storage) -> None:
        """Its values were gone too: reading it again raised a raw LookupError."""
        q = run(self.QUERY, storage)["q"]
        storage.delete_calls(q.df())
        assert rows(q.df()) == []

    def test_a_query_read_before_another_storage_deleted_reads_the_file_again(self, storage, path) -> None:
        q = run(self.QUERY, storage)["q"]
        assert len(q.df()) == 3
        other = Storage(path)
        run("import mandala_ast\nwith storage.delete() as d:\n    y = inc(10)\n", other)
        assert rows(q.df("x")) == [(20,), (30,)]


def test_delete_block_carrying_a_value_across_loop_steps_deletes_nothing(storage) -> None:
    """The loop's body is one step of a pattern: `y = inc(y)` would have deleted inc(10) (and
    all computed from it) as if it were every step."""
    with pytest.raises(QueryError, match="carried from one step"):
        delete(storage, "    y = 10\n    for i in range(2):\n        y = inc(y)\n")
    assert rerun(storage) == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(other=blocks(), body=blocks())
def test_deleting_a_block_then_running_it_again_gives_the_same_query_and_spares_other_code(other: str, body: str) -> None:
    """The delete block of the run block's own code, then the run block again: the query shows
    what it showed, and the calls of other code stored beside it are whole again."""
    storage = Storage()

    def table(code: str) -> list[str]:
        frame = run("import mandala_ast\nwith storage.query() as q:\n" + code, storage, ROWS=[])["q"].df()
        return sorted(map(repr, frame.itertuples(index=False)))

    for code in (other, body):
        run("import mandala_ast\nwith storage.run():\n" + code, storage, ROWS=[])
    before, other_before = table(body), table(other)
    run("import mandala_ast\nwith storage.delete() as q:\n" + body, storage, ROWS=[])
    run("import mandala_ast\nwith storage.run():\n" + body, storage, ROWS=[])
    assert table(body) == before
    run("import mandala_ast\nwith storage.run():\n" + other, storage, ROWS=[])
    assert table(other) == other_before
