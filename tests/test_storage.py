"""Run blocks (uncompiled half): compute once per storage, ever; load otherwise."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mandala_ast import NewCallError, Storage, op
from mandala_ast.runtime import recording as recording_module

RUNS: list = []


@op
def inc(x: int) -> int:
    RUNS.append(x)
    return x + 1


@op
def make_list(n: int) -> list:
    return list(range(n))


@op
def big_array(n: int):
    return np.arange(n, dtype=np.float64)


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

    def test_large_values_live_in_files_and_load_lazily(self, path):
        n = 300_000  # 2.4 MB
        with Storage(path):
            big_array(n)
        files = list((path.parent / "results.db.blobs").rglob("*"))
        assert any(f.is_file() and f.stat().st_size > n * 8 for f in files)
        with Storage(path):
            loaded = big_array(n)
        # A plain ndarray (the type that went in) viewing the file's memory map.
        assert type(loaded) is np.ndarray and isinstance(loaded.base, np.memmap) and loaded[-1] == n - 1
        row = sqlite3.connect(path).execute("SELECT data, external FROM vals WHERE size > ?", (n,)).fetchone()
        assert row[1] == 1 and len(row[0]) == 32  # the file's digest, not its bytes


    @pytest.mark.parametrize(("size", "in_a_file"), [((1 << 20) - 1, False), (1 << 20, True)])
    def test_values_of_one_mib_or_more_live_in_files(self, path, size, in_a_file):
        """The README's limit is inclusive: a value of exactly 1 MiB is a file."""
        @op
        def blob(n):
            return b"x" * n

        with Storage(path):
            blob(size)
        files = [f for f in (path.parent / "results.db.blobs").rglob("*") if f.is_file()]
        assert len(files) == in_a_file
        with Storage(path):
            assert blob(size) == b"x" * size


class TestCommits:
    def test_block_exit_commits(self, path):
        with Storage(path):
            inc(1)
            assert _stored_calls(path) == 0
        assert _stored_calls(path) == 1

    def test_long_blocks_commit_periodically(self, path, monkeypatch):
        monkeypatch.setattr(recording_module, "FLUSH_EVERY_CALLS", 10)
        with Storage(path):
            for i in range(25):
                inc(i)
            assert _stored_calls(path) == 20

    def test_exception_keeps_the_calls_before_it(self, path):
        @op
        def fails(x):
            raise KeyError(x)

        with pytest.raises(KeyError) as info:
            with Storage(path):
                inc(1)
                fails(2)
        assert info.value.args == (2,)
        assert _stored_calls(path) == 1


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
        assert list(df.columns) == ["x", "output", "version", "duration_s", "created_at", "call"]
        assert sorted(zip(df["x"], df["output"])) == [(0, 1), (1, 2), (2, 3)]
        assert (df["duration_s"] >= 0).all()

    def test_content_provenance_in_uncompiled_code(self, path):
        storage = Storage(path)
        with storage:
            inc(inc(1))
        prov = storage.provenance(inc)
        assert prov["producer_op"].isna().tolist() == [True, False]
        assert prov["producer_op"].iloc[1] == inc.name
        assert not prov["exact"].any()


def _stored_calls(path) -> int:
    return sqlite3.connect(path).execute("SELECT COUNT(*) FROM calls").fetchone()[0]


class TestInProcessMemo:
    def test_equal_scalars_of_different_types_are_different_calls(self, path):
        # The in-process memo keys plain ints and strs without their types; 1 == 1.0 == True
        # must still be three calls, whichever comes first, in one block and the next.
        seen = []

        @op
        def kind(x):
            seen.append(x)
            return type(x).__name__

        storage = Storage(path)
        for _ in range(2):
            with storage.run():
                results = [kind(v) for v in (1, True, 1.0, "1", b"1", None, 1, "1", (1,))]
        assert results == ["int", "bool", "float", "str", "bytes", "NoneType", "int", "str", "tuple"]
        assert [type(v) for v in seen] == [int, bool, float, str, bytes, type(None), tuple]

    def test_zero_and_negative_zero_are_different_calls(self, path):
        # 0.0 == -0.0 and both hash alike, so a dict keyed by the arguments takes one for the
        # other; their content ids differ, and so must the calls, in one block and the next.
        @op
        def sign(x):
            return math.copysign(1.0, x)

        storage = Storage(path)
        for _ in range(2):
            with storage.run():
                assert [sign(0.0), sign(-0.0), sign(0.0), sign(-0.0)] == [1.0, -1.0, 1.0, -1.0]
        assert len(storage.df(sign)) == 2
