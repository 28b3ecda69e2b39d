"""Recording: buffered rows, commits, and values stored as files (runtime/recording.py)."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import sys
from collections.abc import Callable
from types import FrameType

import numpy as np
import pytest

from mandala_ast import Storage, op
from mandala_ast.runtime import recording as recording_module
from mandala_ast.runtime.recording import Recorder
from mandala_ast.runtime.store import SQLiteStore


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


class TestInterrupts:
    """Ctrl-C (a notebook's kernel interrupt) lands between any two lines of the library: one
    landing while a call's rows were being buffered left some of them behind, and every later
    commit of that Storage raised a raw KeyError, losing the calls of every later block."""

    def test_an_interrupt_while_buffering_a_call_keeps_the_storage_committing(self, tmp_path):
        for k in itertools.count(1):
            storage, interrupt = Storage(tmp_path / f"{k}.db"), Interrupt(Recorder._buffer_rows, k)
            with contextlib.suppress(KeyboardInterrupt), storage.run():
                inc(1)
                with interrupt:
                    inc(2)
            if not interrupt.fired:
                break
            _check_still_committing(storage)

    def test_an_interrupt_while_committing_keeps_the_storage_committing(self, tmp_path):
        for k in itertools.count(1):
            storage, interrupt = Storage(tmp_path / f"{k}.db"), Interrupt(SQLiteStore._in_write_transaction, k)
            with contextlib.suppress(KeyboardInterrupt), interrupt, storage.run():
                inc(1)
            if not interrupt.fired:
                break
            _check_still_committing(storage)


def _check_still_committing(storage: Storage) -> None:
    """The interrupted Storage stores a new call, and a new one loads it and inc(1)."""
    with storage.run():
        assert inc(3) == 4
    storage.close()
    with Storage(storage.path).run(allow_new_calls=False):
        assert (inc(1), inc(3)) == (2, 4)


class Interrupt:
    """Within it, a KeyboardInterrupt is raised at the k-th line run of ``function``, as a
    signal arriving there would be; ``fired`` says whether it ran that many lines."""

    def __init__(self, function: Callable, k: int) -> None:
        self.code, self.k, self.lines, self.fired = function.__code__, k, 0, False

    def __enter__(self) -> None:
        sys.settrace(self._call)

    def __exit__(self, *exc_info: object) -> None:
        sys.settrace(None)

    def _call(self, frame: FrameType, event: str, arg: object) -> Callable | None:
        return self._line if frame.f_code is self.code and not self.fired else None

    def _line(self, frame: FrameType, event: str, arg: object) -> Callable | None:
        self.lines += event == "line"
        if self.lines == self.k and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        return self._line
