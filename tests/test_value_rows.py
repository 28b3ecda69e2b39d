"""Where the bytes of stored values live (runtime/value_rows.py): medium values apart from
their keys, in ``val_bytes``; small ones in their ``val_rows`` row; readers see ``vals``.

Everything runs on real storage files through ``Storage``; what is checked is what a new
Storage loads, and which rows the file holds afterwards.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from formats import format_7_layout
from integrity import dangling_references

from mandala_ast import CorruptValueError, MandalaRepairWarning, Storage, op
from mandala_ast.runtime.hashing import content_id
from mandala_ast.runtime.integrity import describe_producer
from mandala_ast.runtime.store import SQLiteStore
from mandala_ast.runtime.value_rows import MEDIUM_VALUE_BYTES

MEDIUM = MEDIUM_VALUE_BYTES // 8 + 10  # float64 elements: an array just above the threshold


@op
def scaled(n: int, k: float) -> np.ndarray:
    return np.arange(n, dtype=np.float64) * k


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


def count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchone()[0]


def bytes_rows(path: Path) -> int:
    return count(path, "SELECT COUNT(*) FROM val_bytes")


def test_a_medium_value_keeps_its_bytes_apart_and_loads_exactly_from_a_new_storage(path):
    with Storage(path).run():
        scaled(MEDIUM, 2.0)
        scaled(3, 2.0)  # small: its bytes stay in its row
    assert bytes_rows(path) == 1
    assert count(path, "SELECT COUNT(*) FROM val_rows WHERE external = 2") == 1
    with Storage(path).run():
        big, small = scaled(MEDIUM, 2.0), scaled(3, 2.0)
    np.testing.assert_array_equal(big, np.arange(MEDIUM) * 2.0)
    np.testing.assert_array_equal(small, [0.0, 2.0, 4.0])
    assert big.dtype == np.float64 and big.shape == (MEDIUM,)


def test_readers_see_a_medium_value_as_a_row_holding_its_bytes(path):
    with Storage(path).run():
        scaled(MEDIUM, 2.0)
    with sqlite3.connect(path) as conn:
        codec, data, size, external = conn.execute(
            "SELECT codec, data, size, external FROM vals WHERE size >= ?", (MEDIUM_VALUE_BYTES,)
        ).fetchone()
    assert (codec, len(data), external) == ("npy", size, 0)


def test_a_medium_value_two_processes_store_keeps_one_copy_of_its_bytes(path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_value_rows import scaled
        from mandala_ast import Storage
        with Storage({str(path)!r}).run():
            scaled({MEDIUM}, 3.0)
    """)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], check=True)
    assert bytes_rows(path) == 1 and dangling_references(path) == 0


def test_a_value_stored_by_another_storage_while_buffered_here_writes_no_second_copy(path):
    first, second = Storage(path), Storage(path)
    with first.run(), second.run():
        scaled(MEDIUM, 4.0)
        with second.run():
            scaled(MEDIUM, 4.0)
    assert count(path, "SELECT COUNT(*) FROM calls") == 1
    assert bytes_rows(path) == 1 and dangling_references(path) == 0


def test_one_buffer_naming_a_medium_value_twice_writes_its_bytes_once(path):
    data = b"x" * MEDIUM_VALUE_BYTES
    store = SQLiteStore(path)
    for _ in range(2):
        store.add("vals", (b"\x01" * 32, "bytes", data, len(data), 0))
    store.flush()
    store.close()
    assert bytes_rows(path) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT data FROM vals").fetchall() == [(data,)]


def test_deleting_calls_and_collecting_removes_the_bytes_of_their_values(path):
    storage = Storage(path)
    with storage.run():
        for k in range(3):
            scaled(MEDIUM, float(k))
    storage.delete_calls(storage.df(scaled).query("k < 2"))
    assert bytes_rows(path) == 1
    storage.delete_calls(storage.df(scaled))
    storage.gc()
    assert bytes_rows(path) == 0 and dangling_references(path) == 0
    assert storage.verify().ok


def test_a_format_7_file_keeps_its_values_where_they_are_and_stores_new_ones_apart(path, capfd):
    with Storage(path).run():
        scaled(MEDIUM, 5.0)
    with sqlite3.connect(path) as conn:
        format_7_layout(conn)
    storage = Storage(path)
    assert "upgrading" in capfd.readouterr().err
    with storage.run():
        old, new = scaled(MEDIUM, 5.0), scaled(MEDIUM, 6.0)
    np.testing.assert_array_equal(old, np.arange(MEDIUM) * 5.0)
    np.testing.assert_array_equal(new, np.arange(MEDIUM) * 6.0)
    assert bytes_rows(path) == 1  # the new value's; the old one is in its row
    assert storage.verify().ok and dangling_references(path) == 0


def lose_bytes(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM val_bytes")


def test_a_value_whose_bytes_were_lost_is_a_corrupt_value_error_naming_it_and_its_call(path):
    with Storage(path).run():
        scaled(MEDIUM, 7.0)
    lose_bytes(path)
    with pytest.raises(CorruptValueError, match=r"scaled\(.*missing from the database"):
        Storage(path).df(scaled)
    report = Storage(path).verify()
    assert not report.ok and "values whose bytes are not stored" in str(report)


def test_a_run_block_computes_a_value_whose_bytes_were_lost_again_and_stores_them(path):
    with Storage(path).run():
        scaled(MEDIUM, 8.0)
    lose_bytes(path)
    with pytest.warns(MandalaRepairWarning, match="stored its bytes again"), Storage(path).run():
        repaired = scaled(MEDIUM, 8.0)
    np.testing.assert_array_equal(repaired, np.arange(MEDIUM) * 8.0)
    assert Storage(path).verify().ok
    np.testing.assert_array_equal(Storage(path).df(scaled)["output"][0], repaired)


def test_verify_reports_bytes_that_no_value_names(path):
    with Storage(path).run():
        scaled(3, 1.0)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO val_bytes VALUES (7, x'00')")
    report = Storage(path).verify()
    assert not report.ok and "val_bytes rows that no value names" in str(report)


def test_processes_storing_overlapping_medium_values_at_once_keep_one_copy_of_each(path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_value_rows import scaled
        from mandala_ast import Storage
        first = int(sys.argv[1])
        storage = Storage({str(path)!r})
        for k in range(first, first + 40):
            with storage.run():  # a commit per call: the processes' writes interleave
                scaled({MEDIUM}, float(k))
    """)
    workers = [subprocess.Popen([sys.executable, "-c", script, str(first)]) for first in (0, 20, 30)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0, 0]
    assert bytes_rows(path) == count(path, "SELECT COUNT(*) FROM calls") == 70
    assert dangling_references(path) == 0 and Storage(path).verify().ok


def describing_steps(path: Path, n: int) -> int:
    """SQLite VM steps of naming the call that computed a value, in a storage of ``n`` medium values."""
    with Storage(path).run():
        for k in range(n):
            scaled(MEDIUM, float(k))
    with sqlite3.connect(path) as conn:
        cid = conn.execute("SELECT cid FROM call_outputs LIMIT 1").fetchone()[0]
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0

        conn.set_progress_handler(count, 1)
        assert "scaled(k=" in describe_producer(conn, cid)
        conn.set_progress_handler(None, 0)
    return counted[0]


def test_naming_the_call_of_a_corrupt_value_does_not_read_every_stored_value(tmp_path):
    # The call an error names is found by joining its inputs to their values: through the view
    # vals, a LEFT JOIN that SQLite cannot flatten, that copied every stored value first.
    steps = {n: describing_steps(tmp_path / f"{n}.db", n) for n in (10, 300)}
    assert steps[300] < 2 * steps[10]


def test_a_process_of_format_7_still_open_across_the_upgrade_keeps_storing_and_deleting_values(path):
    # A process of the previous version that opened the file before another upgraded it goes
    # on with the statements it knows: format 7 wrote and deleted values through vals itself.
    # Against the view they failed ("cannot modify vals because it is a view"), losing its work.
    with Storage(path).run():
        kept = scaled(MEDIUM, 9.0)
    with sqlite3.connect(path) as conn:
        format_7_layout(conn)
    old = sqlite3.connect(path, isolation_level=None)
    assert old.execute("SELECT COUNT(*) FROM vals WHERE size >= ?", (MEDIUM_VALUE_BYTES,)).fetchone() == (1,)
    with Storage(path).run():  # the upgrade; then a value stored apart
        scaled(MEDIUM, 10.0)
    data = b"y" * MEDIUM_VALUE_BYTES
    old.execute("BEGIN IMMEDIATE")
    old.execute("INSERT OR IGNORE INTO vals VALUES (?, 'bytes', ?, ?, 0)", (content_id(data), data, len(data)))
    call_id, cid = old.execute("SELECT call_id, cid FROM call_outputs ORDER BY call_id DESC LIMIT 1").fetchone()
    for table in ("call_inputs", "call_outputs"):  # deleting the new call as format 7 did
        old.execute(f"DELETE FROM {table} WHERE call_id = ?", (call_id,))
    old.execute("DELETE FROM calls WHERE id = ?", (call_id,))
    old.execute("DELETE FROM main.vals WHERE cid IN (?)", (cid,))
    old.execute("COMMIT")
    old.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT data FROM vals WHERE cid = ?", (content_id(data),)).fetchone() == (data,)
    assert bytes_rows(path) == 0 and dangling_references(path) == 0  # the value went with its bytes
    storage = Storage(path)
    assert storage.verify().ok
    np.testing.assert_array_equal(storage.df(scaled)["output"].iloc[0], kept)


def test_a_value_whose_bytes_were_lost_never_loads_the_bytes_of_a_value_stored_after(path):
    # Ids were handed out after the largest one left: the newest value's bytes lost, the next
    # value stored got its id, and the value whose bytes were lost loaded as that one.
    with Storage(path).run():
        scaled(MEDIUM, 1.0)
    lose_bytes(path)
    with Storage(path).run():
        scaled(MEDIUM, 2.0)
    assert not Storage(path).verify().ok
    with pytest.warns(MandalaRepairWarning, match="stored its bytes again"), Storage(path).run():
        np.testing.assert_array_equal(scaled(MEDIUM, 1.0), np.arange(MEDIUM) * 1.0)
    assert Storage(path).verify().ok


def test_a_value_whose_bytes_were_lost_is_an_error_naming_the_database_file_and_its_repair(path):
    # It named "Storage('…/s.db')" as its path (error.path a Path of that text, no file), and
    # said a run block would rewrite the value's file: a value in the database has none.
    with Storage(path).run():
        scaled(MEDIUM, 12.0)
    lose_bytes(path)
    with pytest.raises(CorruptValueError) as caught:
        Storage(path).df(scaled)
    assert caught.value.path == path and f"({path})" in str(caught.value)
    assert "stores its bytes again" in str(caught.value) and "rewrites the file" not in str(caught.value)
