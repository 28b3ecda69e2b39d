"""Run blocks (uncompiled half): compute once per storage, ever; load otherwise."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mandala_ast import NewCallError, Storage, StorageClosedError, op

RUNS: list = []


@op
def inc(x: int) -> int:
    RUNS.append(x)
    return x + 1


@op
def make_list(n: int) -> list:
    return list(range(n))


@pytest.fixture(autouse=True)
def clear_runs():
    RUNS.clear()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "results.db"


class TestComputeOnce:
    def test_second_call_in_a_block_loads(self, path):
        with Storage(path).run():
            assert inc(1) == 2 and inc(1) == 2
        assert RUNS == [1]

    def test_later_block_and_new_storage_object_load(self, path):
        with Storage(path):
            inc(1)
        with Storage(path):
            assert inc(1) == 2
        assert RUNS == [1]

    def test_another_process_loads(self, path):
        with Storage(path):
            inc(41)
        script = textwrap.dedent(
            f"""
            import sys; sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
            import test_storage as t
            from mandala_ast import Storage
            with Storage({str(path)!r}):
                print(t.inc(41), t.RUNS)
            """
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        assert out.stdout.split() == ["42", "[]"]

    def test_with_storage_is_the_same_as_run(self, path):
        storage = Storage(path)
        with storage:
            inc(1)
        with storage.run():
            inc(1)
        assert RUNS == [1]

    def test_in_memory_storage(self):
        storage = Storage()
        with storage:
            inc(1)
            inc(1)
        assert RUNS == [1] and len(storage.df(inc)) == 1

    def test_blocks_nest(self, path):
        outer, inner = Storage(path), Storage()
        with outer:
            inc(1)
            with inner:
                inc(1)  # inner is active: a new storage computes again
            inc(1)
        assert RUNS == [1, 1]

    def test_values_are_plain(self, path):
        with Storage(path):
            value = inc(1)
        assert type(value) is int


class TestReturnedValues:
    def test_mutating_a_loaded_value_does_not_change_the_stored_one(self, path):
        with Storage(path):
            make_list(3).append("oops")
            assert make_list(3) == [0, 1, 2]


class TestAllowNewCalls:
    def test_storage_setting(self, path):
        storage = Storage(path)
        with storage:
            inc(1)
        storage.allow_new_calls(False)
        with storage:
            assert inc(1) == 2
            with pytest.raises(NewCallError, match=r"inc has no stored call for \(x=2\)"):
                inc(2)

    def test_block_setting(self, path):
        with pytest.raises(NewCallError):
            with Storage(path).run(allow_new_calls=False):
                inc(5)
        assert RUNS == []


class TestTables:
    def test_df_has_a_row_per_call_with_inputs_outputs_version_timing(self, path):
        storage = Storage(path)
        with storage:
            for i in range(3):
                inc(i)
            inc(0)
        df = storage.df(inc)
        assert list(df.columns) == ["x", "output", "version", "current", "duration_s", "created_at", "call"]
        assert df["current"].all()
        assert sorted(zip(df["x"], df["output"])) == [(0, 1), (1, 2), (2, 3)]
        assert (df["duration_s"] >= 0).all()

    def test_df_shows_a_none_output_as_none_and_an_int_argument_as_an_int(self, path):
        """Beside a float, a None output showed as NaN (as a NaN output does), and an int
        argument beside a None one as a float (3.0), unlike the query's table of the same calls."""
        import math

        @op
        def maybe(x: int, b=None):
            return {2: None, 3: math.nan}.get(x, x * 1.5)

        storage = Storage(path)
        with storage:
            for x in range(5):
                maybe(x)
            maybe(5, b=3)
        df = storage.df(maybe).sort_values("x")
        outputs = df["output"].tolist()
        assert outputs[2] is None and math.isnan(outputs[3]) and outputs[:2] == [0.0, 1.5]
        assert df["b"].tolist() == [None] * 5 + [3] and type(df["b"].tolist()[5]) is int
        assert df["x"].dtype == "int64"

    def test_df_of_an_op_never_called_stores_nothing(self, path):
        import sqlite3

        @op
        def never_called(x: int, k: int = 3) -> int:
            return x

        storage = Storage(path)
        with storage:
            inc(1)
        assert storage.df(never_called).empty
        storage.close()
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM versions WHERE op_name LIKE '%never_called'").fetchone() == (0,)

    def test_arguments_named_like_the_tables_own_columns_keep_their_names_and_values(self, path):
        """An op taking `version`, `output`, `call` or `created_at` made `storage.df` raise
        pandas' "cannot assemble with duplicate keys", after its row had lost those arguments
        to the output and the table's own columns."""

        @op
        def release(version: int, output: str, call: int, created_at: int) -> int:
            return version * 100 + call

        storage = Storage(path)
        with storage:
            release(3, "out.csv", 7, 2020)
        df = storage.df(release)
        assert list(df.columns) == ["version", "output", "call", "created_at", "output_", "version_",
                                    "current", "duration_s", "created_at_", "call_"]
        assert df.iloc[0][["version", "output", "call", "created_at", "output_", "version_"]].tolist() == [
            3, "out.csv", 7, 2020, 307, 0]
        assert storage.delete_calls(df).calls == 1

    def test_selecting_current_rows_of_an_empty_table_keeps_its_columns(self, path):
        """`df[df.current]` of an op with no calls (an object column) picked columns, not rows:
        the result had no column x."""
        df = Storage(path).df(inc)
        assert list(df[df["current"]].columns) == list(df.columns)

    def test_content_provenance_in_uncompiled_code(self, path):
        storage = Storage(path)
        with storage:
            inc(inc(1))
        prov = storage.provenance(inc)
        assert prov["producer_op"].isna().tolist() == [True, False]
        assert prov["producer_op"].iloc[1] == inc.name
        assert not prov["exact"].any()

    def test_an_op_returning_its_input_is_not_named_the_producer_of_its_own_input(self, path):
        """Uncompiled `same(1)` returns 1: the content match took the call's own output, made
        "at or before" it, for its input, and provenance said the call produced its argument."""

        @op
        def same(x):
            return x

        storage = Storage(path)
        with storage:
            same(1)
        prov = storage.provenance(same)
        assert prov["producer_call"].isna().tolist() == [True], prov.to_string()
        picture = str(storage.draw(same))  # the op's picture drew an edge from its output back into it
        assert [line for line in picture.splitlines() if '"out:' in line and '-> "op:' in line] == [], picture


@pytest.mark.parametrize("method", ["df", "provenance", "versions", "why"])
def test_a_plain_function_given_for_an_op_is_an_error_naming_it(tmp_path, method):
    """`storage.why(y)` (a value) or `storage.df(f)` (f not decorated) used to be a raw
    AttributeError ('function' object has no attribute 'name') from inside the storage."""
    import mandala_ast

    def plain(x):
        return x

    storage = Storage(tmp_path / "s.db")
    with pytest.raises(mandala_ast.NotAnOpError, match=rf"storage\.{method} needs an op .*@op.*plain") as info:
        getattr(storage, method)(plain)
    assert isinstance(info.value, TypeError)
    with pytest.raises(mandala_ast.NotAnOpError, match="float"):
        getattr(storage, method)(1.5)


def test_a_closed_storage_says_so_naming_its_file(tmp_path):
    """Not sqlite3's "Cannot operate on a closed database", from deep inside."""

    @op
    def inc(x):
        return x + 1

    storage = Storage(tmp_path / "closed.db")
    with storage:
        inc(1)
    storage.close()
    storage.close()  # again: nothing to do
    for use in (lambda: storage.df(inc), lambda: storage.run().__enter__() and inc(2)):
        with pytest.raises(StorageClosedError, match=r"closed\.db.*closed"):
            use()


SETTINGS = {"k": 1}


@op
def configured(config: dict, xs: list) -> int:
    RUNS.append(("configured", config["n"]))
    return config["n"] * SETTINGS["k"] + sum(xs)


class TestHitsOfContainerArguments:
    """Calls with a dict or list argument hit from memory once found (by the arguments' content
    ids), and only until something they depend on changes."""

    def test_repeated_calls_compute_once_and_return_the_result(self, tmp_path):
        RUNS.clear()
        with Storage(tmp_path / "s.db"):
            results = [configured({"n": 2}, [1, 2]) for _ in range(3)]
            other = configured({"n": 3}, [1, 2])
            spelled = configured(xs=[1, 2], config={"n": 2})
        assert results == [5, 5, 5] and other == 6 and spelled == 5
        assert RUNS == [("configured", 2), ("configured", 3)]

    def test_a_value_equal_in_python_but_another_argument_is_another_call(self, tmp_path):
        RUNS.clear()
        with Storage(tmp_path / "s.db"):
            configured({"n": 2}, [1, 2])
            assert configured({"n": 2.0}, [1, 2]) == 5.0  # 2 == 2.0, but not the same argument
        assert RUNS == [("configured", 2), ("configured", 2.0)]

    def test_a_constant_changed_between_blocks_recomputes(self, tmp_path):
        RUNS.clear()
        storage = Storage(tmp_path / "s.db")
        with storage:
            configured({"n": 2}, [1])
        SETTINGS["k"] = 10
        try:
            with storage:
                assert configured({"n": 2}, [1]) == 21
        finally:
            SETTINGS["k"] = 1
        assert RUNS == [("configured", 2), ("configured", 2)]


def op_of_version(n: int):
    """A new version of one op for each ``n``: each starts with no stored call."""

    @op
    def scaled(x: int) -> int:
        return x * n

    return scaled


@pytest.mark.parametrize("block", ["run", "batch"])
def test_a_call_another_storage_just_stored_loads_where_new_calls_are_not_allowed(tmp_path, block):
    """A miss is answered from memory until the file is next seen to change (polled every few
    tens of milliseconds); a call another Storage (or process) committed meanwhile is stored
    all the same, and a block that may not compute (run or batch) must load it, not report it
    missing."""
    path = tmp_path / "shared.db"
    reader, writer = Storage(path), Storage(path)
    strict = getattr(reader, block)
    for n in range(1, 6):
        scaled = op_of_version(n)
        with pytest.raises(NewCallError), strict(allow_new_calls=False):
            scaled(3)
        with writer.run():
            scaled(3)
        with strict(allow_new_calls=False):
            y = scaled(3)
        assert y == 3 * n
