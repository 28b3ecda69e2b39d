"""Recording: buffered rows, commits, and values stored as files (runtime/recording.py)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from mandala_ast import Storage, op
from mandala_ast.runtime import recording as recording_module


@op
def inc(x: int) -> int:
    return x + 1


@op
def big_array(n: int):
    return np.arange(n, dtype=np.float64)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "results.db"


class TestValueFiles:
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


def _stored_calls(path) -> int:
    return sqlite3.connect(path).execute("SELECT COUNT(*) FROM calls").fetchone()[0]
