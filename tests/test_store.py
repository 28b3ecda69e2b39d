"""The SQLite layout (store.py): calls keyed by row ids in the order they were stored, inputs and
outputs keyed by those ids, and planner statistics that keep joins linear."""

from __future__ import annotations

import functools
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from formats import format_7_layout
from hypothesis import given, settings, strategies as st
from integrity import dangling_references

import mandala_ast
from mandala_ast import Storage, StorageFormatError, op
from mandala_ast.runtime import store as store_module
from mandala_ast.runtime.packing import pack_outputs


@op
def inc(x: int) -> int:
    return x + 1


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


def test_calls_get_row_ids_in_the_order_they_were_stored(path):
    storage = Storage(path)
    with storage.run():
        for x in (5, 3, 9):
            inc(x)
    with sqlite3.connect(path) as conn:
        inputs = conn.execute(
            "SELECT i.cid FROM calls c JOIN call_inputs i ON i.call_id = c.id ORDER BY c.id"
        ).fetchall()
    expected = [(mandala_ast.runtime.hashing.content_id(x),) for x in (5, 3, 9)]
    assert inputs == expected


def test_a_call_another_storage_stored_first_keeps_one_row_and_its_inputs(path):
    # Both Storages buffer the same call; the second commit's call row is ignored, so its
    # inputs and outputs must attach to the row the first commit stored, not to an id it
    # assigned itself.
    first, second = Storage(path), Storage(path)
    with second.run():
        assert inc(1) == 2  # buffered in second
        with first.run():
            assert inc(1) == 2  # first cannot see that buffer: computed, committed at exit
        inc(2)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM call_inputs").fetchone()[0] == 2
    assert dangling_references(path) == 0
    assert sorted(Storage(path).df(inc)["x"]) == [1, 2]


@pytest.mark.parametrize("count", [1, 49, 50, 51, 120])
def test_every_buffered_row_is_written_whatever_the_batch_size(path, count):
    # Rows go out 50 to a statement plus a shorter last one: no row may fall between them.
    storage = Storage(path)
    with storage.run():
        for x in range(count):
            inc(x)
    with sqlite3.connect(path) as conn:
        counts = [conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                  for table in ("calls", "call_inputs", "call_outputs")]
        values = conn.execute("SELECT COUNT(*) FROM vals").fetchone()[0]
    assert counts == [count] * 3
    assert values == len(set(range(count)) | set(range(1, count + 1)))
    assert dangling_references(path) == 0


def test_a_miss_buffers_field_values_not_row_tuples(path):
    # A row tuple buffered until the flush is one more object each garbage collection visits
    # (~8% of a miss in GC): the hot tables hold the fields of their rows one after another.
    storage = Storage(path)
    with storage.run():
        for x in range(3):
            inc(x)
        store = storage._store
        for table in ("calls", "inputs", "outputs", "vals"):
            assert not any(type(field) is tuple for field in store.rows[table])
        calls = store.buffered("calls")
        assert len(calls) == 3
        store.replace_buffered("calls", calls[1:])
        assert store.buffered("calls") == calls[1:]
        store.replace_buffered("calls", calls)
    assert sorted(Storage(path).df(inc)["x"]) == [0, 1, 2]


def test_memoizing_does_not_import_pandas(tmp_path):
    # Creating the schema through sqlite-utils imported pandas: 0.4 s, and 40k more objects
    # for every garbage collection of a memoizing process to walk (a miss cost ~1 µs more).
    script = textwrap.dedent(f"""
        import sys
        from mandala_ast import Storage, op

        @op
        def inc(x):
            return x + 1

        storage = Storage({str(tmp_path / "fresh.db")!r})
        with storage.run():
            inc(1)
        with storage.run():
            inc(1)
        print(sorted(name for name in ("pandas", "numpy", "sqlite_utils", "libcst") if name in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_format_5_file_written_before_call_tombstones_gets_them_on_open(path):
    storage = Storage(path)
    with storage.run():
        inc(1)
    storage.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP VIEW inputs")
        conn.execute("DROP TABLE call_tombstones")
        conn.execute(
            "CREATE VIEW inputs AS SELECT c.hid AS call_hid, i.name AS name, i.cid AS cid,"
            " s.hid AS src_call, i.src_index AS src_index FROM call_inputs i"
            " JOIN calls c ON c.id = i.call_id LEFT JOIN calls s ON s.id = i.src_call"
        )
        format_7_layout(conn, "mandala_ast/5")
    storage = Storage(path)
    with storage.run():
        inc(5)
    storage.delete_calls(storage.df(inc).query("x == 1"))
    assert sorted(Storage(path).df(inc)["x"]) == [5]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM call_tombstones").fetchone()[0] == 0


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_storage_in_a_missing_directory_creates_the_directory(tmp_path):
    path = tmp_path / "results" / "2026" / "run.db"
    with Storage(path):
        inc(1)
    assert path.is_file() and sorted(Storage(path).df(inc)["x"]) == [1]


def test_a_storage_whose_directory_is_a_file_is_an_error_naming_the_path(tmp_path):
    (tmp_path / "results").write_text("not a directory")
    before = open_fds()
    for path in (tmp_path / "results" / "run.db", tmp_path / "results" / "2026" / "run.db"):
        with pytest.raises(StorageFormatError, match=f"{path}: {tmp_path / 'results'} is a file"):
            Storage(path)
    assert open_fds() == before


def test_a_storage_path_that_is_a_directory_is_an_error_naming_the_path(tmp_path):
    before = open_fds()
    with pytest.raises(StorageFormatError, match=f"{tmp_path} is a directory"):
        Storage(tmp_path)
    assert open_fds() == before


def test_a_storage_path_that_is_a_device_is_an_error_naming_it_and_leaves_no_file_open():
    before = open_fds()
    with pytest.raises(StorageFormatError, match="/dev/null is not a regular file"):
        Storage("/dev/null")
    assert open_fds() == before


def test_a_failed_open_leaves_no_file_open(path):
    Storage(path).close()
    before = open_fds()
    with pytest.raises(ValueError, match="on_change"):  # refused once the file is open
        Storage(path, on_change="sometimes")
    assert open_fds() == before


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A directory on a read-only file system (a real tmpfs mount)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_storage_whose_directory_cannot_be_created_is_an_error_naming_the_path(read_only_dir):
    path = read_only_dir / "results" / "run.db"
    with pytest.raises(StorageFormatError, match=rf"{path}: cannot create {path.parent} \(Read-only file system\)"):
        Storage(path)


CLOSER = """
import sys
from mandala_ast import Storage, op

@op
def other(x: int) -> int:
    return x - 1

for k in range(150):
    storage = Storage(sys.argv[1])
    with storage.run():
        other(k)
    storage.close()  # the last connection out checkpoints and removes the WAL, if it is last
"""


def test_opening_a_storage_while_another_thread_writes_keeps_the_file_intact(path):
    # Checking a file's header opened and closed it with plain file I/O, and closing any
    # descriptor of a file drops every POSIX lock the process holds on it: a Storage opened
    # in one thread took the SQLite locks of another thread's Storage away, and a process
    # closing its last connection removed the WAL under it ("disk I/O error", lost commits,
    # "row missing from index").
    Storage(path).close()
    closer = subprocess.Popen([sys.executable, "-c", CLOSER, str(path)], stderr=subprocess.PIPE, text=True)
    errors, done = [], threading.Event()

    def open_again() -> None:
        while not done.is_set():
            try:
                Storage(path).close()
            except Exception as exc:
                errors.append(exc)
                return

    opener = threading.Thread(target=open_again)
    opener.start()
    writer = Storage(path)
    try:
        for block in range(100):
            with writer.run():
                for x in range(block * 20, block * 20 + 20):
                    inc(x)
    finally:
        done.set()
        opener.join()
        _, err = closer.communicate(timeout=120)
    assert not errors and closer.returncode == 0, (errors, err)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with Storage(path).run(allow_new_calls=False):
        assert [inc(x) for x in range(2000)] == list(range(1, 2001))


GARBAGE_DURING_OPEN = """
import gc, sys
from mandala_ast import Storage

gc.set_threshold(5)  # collect often: some collection lands while a Storage is being opened
for k in range(300):
    garbage = Storage(sys.argv[1])
    garbage.cycle = garbage  # only the garbage collector frees it, at a moment of its choosing
    del garbage
    Storage(sys.argv[1]).close()
print("opened", k + 1)
"""


def test_opening_a_storage_while_the_collector_frees_another_does_not_hang(path):
    # Freeing a Storage takes the lock that guards opening one; the collector may free one
    # in the middle of an open, on the same thread, which then waited for itself forever.
    Storage(path).close()
    done = subprocess.run(
        [sys.executable, "-c", GARBAGE_DURING_OPEN, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "opened 300", done.stderr


def test_a_commit_that_meets_database_is_locked_is_retried_and_lands(path, monkeypatch):
    """SQLite gives up waiting after its busy timeout and says "database is locked"; the write
    must then be retried, not lost or raised. A short timeout (the real one is a minute) lets
    another connection's write lock outlast it: it is released from a thread a moment later."""
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT_MS", 20)
    storage = Storage(path)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    with storage.run():
        inc(41)
        holder.execute("BEGIN IMMEDIATE")  # held while the block commits at its exit
        release = threading.Thread(target=lambda: (time.sleep(0.5), holder.execute("COMMIT")))
        release.start()
    release.join()
    holder.close()
    assert Storage(path).df(inc)["x"].tolist() == [41]
    assert dangling_references(path) == 0


def test_a_block_loads_stored_calls_while_another_connection_holds_an_exclusive_write(path, monkeypatch):
    """Readers never wait for writers (WAL): a long commit elsewhere must not stall loading.
    With a rollback journal the read would wait out the busy timeout (shortened here, as a
    minute of waiting would look like a hang) and fail."""
    with Storage(path).run():
        inc(1)
    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT_MS", 20)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("DELETE FROM mandala_meta WHERE key = 'no such key'")
    try:
        with Storage(path).run(allow_new_calls=False):
            assert inc(1) == 2
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_write_interrupted_midway_leaves_nothing_half_done_and_the_file_writable(path):
    """A Ctrl-C (or any error) inside a write transaction must roll it back: left open, the
    connection refused every later write ("cannot start a transaction within a transaction")."""
    Storage(path).close()
    store = store_module.SQLiteStore(path)

    def interrupted(conn):
        conn.execute("INSERT INTO mandala_meta VALUES ('half', 'done')")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.write_transaction(interrupted)
    store.write_transaction(lambda conn: conn.execute("INSERT INTO mandala_meta VALUES ('next', 'ok')"))
    store.close()
    keys = {key for (key,) in sqlite3.connect(path).execute("SELECT key FROM mandala_meta")}
    assert "half" not in keys and "next" in keys


def test_a_write_transaction_keeps_its_pages_in_a_large_cache_and_reads_go_back_to_the_small_one(path):
    """Inserts keyed by hashes change a page each: a transaction must hold them all until it
    commits (a small cache spills them to the log early, some twice), while reads in a cold
    process are cheapest with a small cache whose page buffers are reused."""
    Storage(path).close()
    store = store_module.SQLiteStore(path)

    def cache_pages(conn) -> int:
        return conn.execute("PRAGMA cache_size").fetchone()[0]

    reading = cache_pages(store.conn)
    inside = store.write_transaction(cache_pages)
    with pytest.raises(KeyboardInterrupt):
        store.write_transaction(lambda conn: (_ for _ in ()).throw(KeyboardInterrupt))
    after = cache_pages(store.conn)
    store.close()
    assert inside <= -32_000 < -4_000 <= reading == after  # negative: KiB


def _steps(conn: sqlite3.Connection, action) -> int:
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0

    conn.set_progress_handler(count, 1)
    try:
        action()
    finally:
        conn.set_progress_handler(None, 0)
    return counted[0]


def test_bounding_a_versions_stored_calls_does_not_read_them_all(tmp_path):
    # Each process that hits a version counted its calls once to decide whether to bulk-load
    # them: a scan of the version index, 0.1 s per million calls, on top of every first block.
    steps, bounds = {}, {}
    for n in (100, 3000):
        storage = Storage(tmp_path / f"{n}.db")
        with storage:
            for x in range(n):
                inc(x)
        store = store_module.SQLiteStore(tmp_path / f"{n}.db")
        vid = store.conn.execute("SELECT version_id FROM calls LIMIT 1").fetchone()[0]
        bounds[n] = store.calls_at_most(vid)
        steps[n] = _steps(store.conn, functools.partial(store.calls_at_most, vid))
        store.close()
        storage.close()
    assert bounds == {100: 100, 3000: 3000}
    assert steps[3000] <= steps[100] + 10


def test_the_bound_on_a_versions_calls_covers_calls_of_other_ops_stored_between(path):
    @op
    def dec(x: int) -> int:
        return x - 1

    with Storage(path):
        for x in range(5):
            inc(x)
            dec(x)
    store = store_module.SQLiteStore(path)
    vid = store.conn.execute("SELECT version_id FROM calls ORDER BY id LIMIT 1").fetchone()[0]
    assert store.count_calls(vid) == 5 <= store.calls_at_most(vid) == 9
    assert store.calls_at_most(b"no such version") == 0
    store.close()


def test_arrays_of_a_few_kilobytes_take_little_more_than_their_bytes_in_the_file(path):
    # With 16 KiB pages the 8 kB of 1,000 float64s took 19.6 kB: what of a row does not fit
    # its page goes to overflow pages, each a whole page.
    np = pytest.importorskip("numpy")

    @op
    def norm(a):
        return float((a * a).sum() ** 0.5)

    arrays = np.random.default_rng(0).standard_normal((500, 1000))
    with Storage(path) as storage:
        for a in arrays:
            norm(a)
    storage.close()
    used = sum(os.path.getsize(f) for f in path.parent.iterdir() if f.name.startswith(path.name))
    assert used <= 1.25 * arrays.nbytes


def test_lock_errors_are_told_from_other_sqlite_errors(path):
    """The one check behind retries (store.py) and StorageBusyError (deletion, gc)."""
    Storage(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as missing:
            holder.execute("SELECT * FROM no_such_table")
    finally:
        holder.execute("ROLLBACK")
    assert store_module.is_lock_error(locked.value)
    assert not store_module.is_lock_error(missing.value)


def test_rows_of_one_history_under_several_dependency_states_come_oldest_first():
    # The lookup takes the oldest row it may serve; the history index orders a key's rows by
    # dependency state, not by when they were stored.
    store = store_module.SQLiteStore(None)
    key = bytes(32)
    for call_id, deps in enumerate((b"\x09", b"\x01", b"\x05"), start=1):
        store.conn.execute(
            "INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, 0, 0, 1, ?)",
            (call_id, b"v", key, deps * 32, bytes([call_id]) * 32, key, pack_outputs((key,), None)),
        )
    assert [row[3] for row in store.find_by_history(b"v", key)] == [1, 2, 3]
    store.close()


def test_a_lookup_by_history_reads_fewer_steps_than_by_history_or_content(path):
    # A new process's hit in a large storage reads index pages no other lookup read yet: the
    # history-only query probes one index, the wider one two or three and sorts.
    with Storage(path):
        for x in range(200):
            inc(x)
    store = store_module.SQLiteStore(path)
    vid, key, cid = store.conn.execute("SELECT version_id, lkey, cid FROM calls WHERE id = 100").fetchone()
    rows = store.find_by_history(vid, key)
    assert [row[0] for row in rows] == [row[0] for row in store.find_calls(vid, key, cid)]
    assert store.find_by_history(b"other version", key) == []
    by_history = _steps(store.conn, functools.partial(store.find_by_history, vid, key))
    assert by_history < _steps(store.conn, functools.partial(store.find_calls, vid, key, cid)) * 0.75
    store.close()


def test_a_miss_of_plain_arguments_probes_the_history_index_once(path):
    # In a large storage every probe of idx_calls_key reads a leaf no other lookup read; a
    # call of plain values has its content id as history, so after the query by history the
    # query by history or content probed the same key again (~5 µs a miss at 1M calls).
    with Storage(path):
        for x in range(200):
            inc(x)
    storage = Storage(path)
    statements: list[str] = []
    storage._store.conn.set_trace_callback(statements.append)
    with storage:
        assert inc(1000) == 1001
    probes = [s for s in statements if s.startswith("SELECT") and ("lkey = x'" in s or "lkey IN" in s)]
    assert len(probes) == 1, probes
    storage.close()


_KEYS = [bytes([k]) * 32 for k in range(1, 5)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_KEYS), st.sampled_from(_KEYS), st.sampled_from((b"v1", b"v2")), st.integers(0, 2)),
        max_size=12,
    )
)
def test_rows_by_history_and_by_content_are_the_rows_by_history_or_content(rows):
    """For a call whose history id is its content id, the lookup takes find_calls' rows as
    find_by_history's and find_by_content's, in the order stored (lookup.py)."""
    store = store_module.SQLiteStore(None)
    for key, (lkey, cid, version, deps) in enumerate(rows, start=1):
        hid = bytes([key]) * 32
        store.conn.execute(  # a row id hashes its history and deps: one row per pair
            "INSERT OR IGNORE INTO calls VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, ?)",
            (key, version, lkey, bytes([deps]) * 32, hid, cid, pack_outputs((hid,), None)),
        )
    for key in _KEYS:
        merged = [(n, hid, key, deps, None) for hid, deps, _, n in store.find_by_history(b"v1", key)]
        merged += store.find_by_content(key)
        merged.sort(key=lambda row: row[0])
        wanted = store.find_calls(b"v1", key, key)
        assert [row[1:4] for row in merged] == [row[:3] for row in wanted]
        assert [row[4] for row in merged if row[4] is not None] == [row[3] for row in wanted if row[1] != key]
    store.close()


#: Stores held(0..499) and says so (the start of the scripts below).
HOLDING = """
import os, sys
from mandala_ast import Storage, op

@op
def held(x: int) -> int:
    return x * 2

storage = Storage(sys.argv[1])
with storage.run():
    for x in range(500):
        held(x)
print("open", flush=True)
"""

HOLDER = HOLDING + """
sys.stdin.read()  # keeps the file open until the test closes stdin
storage.close()
"""


def test_a_storage_made_where_a_deleted_file_is_still_open_elsewhere_is_a_clear_error_not_a_disk_io_error(path):
    # `rm results.db` while a job still has it open leaves its -wal and -shm, in use: a new
    # file there read that job's log as its own (sqlite3 "disk I/O error", or pages of the
    # deleted file), and the job's next checkpoint or close wrote into the new file's log.
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        path.unlink()
        with pytest.raises(mandala_ast.StorageBusyError, match=f"{path} was deleted while a process still has it open"):
            Storage(path)
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    with Storage(path).run():  # once that process is gone, the path takes a new storage
        assert inc(1) == 2
    assert Storage(path).verify().ok


def test_a_storage_made_where_a_killed_process_left_the_log_of_a_deleted_file_starts_empty(path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "open\n"
    holder.kill()
    holder.wait()
    path.unlink()
    assert Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    storage = Storage(path)
    with storage.run():
        assert inc(1) == 2
    assert storage.verify().ok and len(storage.df(inc)) == 1


@pytest.mark.parametrize(("log", "existing"), [("-wal", True), ("-shm", True), ("-wal", False)])
def test_a_directory_in_place_of_the_storages_log_is_an_error_naming_it_not_a_raw_sqlite_error(path, log, existing):
    # SQLite says "unable to open database file", "disk I/O error" or "attempt to write a
    # readonly database" (at the first commit), naming no file.
    if existing:
        first = Storage(path)
        with first.run():
            inc(1)
        first.close()
    Path(f"{path}{log}").mkdir()
    with pytest.raises(StorageFormatError, match=f"{path}.*{path}-wal and {path}-shm"):
        storage = Storage(path)
        with storage.run():
            inc(2)


#: Stores held(0..499), says so, deletes its own -wal and -shm when told (stdin "rm": a
#: clean-up script, a user tidying "temporary files"), stores held(500..999), says so, and
#: keeps the file open until stdin closes.
LOG_DELETED = HOLDING + """
if sys.stdin.readline() == "rm\\n":
    os.remove(sys.argv[1] + "-wal")
    os.remove(sys.argv[1] + "-shm")
with storage.run():
    for x in range(500, 1000):
        held(x)
print("stored", flush=True)
sys.stdin.read()
storage.close()
"""


def _holder_whose_log_was_deleted(path: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", LOG_DELETED, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "open\n"
    holder.stdin.write("rm\n")
    holder.stdin.flush()
    assert holder.stdout.readline() == "stored\n"
    return holder


def _stored_held(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT COUNT(*) FROM calls")]
    finally:
        conn.close()


@pytest.mark.parametrize("log", ["-wal -shm", "-shm"])
def test_a_storage_opened_while_another_process_has_the_file_open_with_its_log_deleted_is_refused(path, log):
    """The process goes on logging into the deleted files; a new storage started a log of its
    own beside them (over the same pages), and whichever checkpointed last overwrote the
    other's commits: the calls it stored were lost once both had closed."""
    holder = subprocess.Popen([sys.executable, "-c", LOG_DELETED, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        for suffix in log.split():
            os.remove(f"{path}{suffix}")
        with pytest.raises(mandala_ast.StorageBusyError, match=f"{path}-wal.*{path}-shm.*deleted"):
            Storage(path)
    finally:
        holder.communicate("keep\n")
    assert holder.returncode == 0
    assert _stored_held(path) == [1000] and Storage(path).verify().ok


def test_calls_a_process_stores_after_its_log_was_deleted_survive_its_kill_9(path):
    """They went to the deleted log only, which died with the process (the calls stored
    before the deletion too: they were in it, not yet in the file)."""
    holder = _holder_whose_log_was_deleted(path)
    holder.kill()
    holder.communicate()
    assert _stored_held(path) == [1000]
    assert Storage(path).verify().ok


@pytest.mark.parametrize("length", [250, 256, 300])
def test_a_storage_file_name_too_long_for_the_files_kept_beside_it_is_an_error_saying_so(tmp_path, length):
    """A name of more than 255 bytes was a raw OSError (File name too long); one SQLite's
    ``-journal`` beside it would not fit in, "unable to open database file", blaming the files."""
    path = tmp_path / ("r" * (length - 3) + ".db")
    with pytest.raises(StorageFormatError, match=f"{path.name}.* is {length} bytes long.*at most 247"):
        Storage(path)
    assert list(tmp_path.iterdir()) == []
    with Storage(tmp_path / ("r" * 244 + ".db")).run():  # the longest that fits
        assert inc(1) == 2


def test_a_storage_opened_through_a_symlink_while_another_process_has_the_file_open_opens(path):
    """SQLite keeps the log beside the file a symlink leads to; looked for beside the link,
    it seemed deleted, and the storage was refused as one whose log was."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        link = path.with_name("latest.db")
        link.symlink_to(path)
        storage = Storage(link)
        with storage.run():
            assert inc(41) == 42
        assert not Path(f"{link}-wal").exists() and storage.verify().ok
        storage.close()
    finally:
        holder.communicate("")


def test_a_file_of_a_newer_format_says_to_upgrade_mandala_ast(tmp_path):
    # It said only "has storage format 'mandala_ast/9'; this mandala_ast reads 'mandala_ast/8'",
    # leaving the user to guess which side is old (a colleague's newer release wrote it).
    path = tmp_path / "s.db"
    Storage(path).close()
    number = int(store_module.FORMAT.rpartition("/")[2])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE mandala_meta SET value = ? WHERE key = 'format'", (f"mandala_ast/{number + 1}",))
    conn.close()
    with pytest.raises(StorageFormatError, match=r"written by a newer release of mandala_ast.*pip install -U mandala_ast"):
        Storage(path)


_CHAINED = """
from mandala_ast import op

@op
def inc(x: int) -> int:
    return x + 1

@op
def double(x: int) -> int:
    return 2 * x

def first(storage):
    with storage.run():
        return [inc(i) for i in range(20)]

def then(storage):
    with storage.run():
        return [double(inc(i)) for i in range(20)]
"""


@pytest.fixture
def chained(tmp_path):
    """The compiled module of _CHAINED, with its 20 inc calls stored in ``chained.db``."""
    (tmp_path / "chained_ops.py").write_text(_CHAINED)
    module = mandala_ast.compile_module(tmp_path / "chained_ops.py", name="chained_ops")
    module.first(Storage(tmp_path / "chained.db"))
    yield module, tmp_path / "chained.db"
    sys.modules.pop("chained_ops", None)


def test_sources_found_in_earlier_commits_are_resolved_without_looking_up_row_ids(chained):
    # Row ids sit in buckets of 16k calls (format 9): a lookup by row id alone probes every
    # bucket (~165 us at 1M calls). The store keeps the keys of the calls it found instead.
    module, path = chained
    storage = Storage(path)
    statements: list[str] = []
    storage._store.conn.set_trace_callback(statements.append)
    assert module.then(storage) == [2 * (i + 1) for i in range(20)]
    assert not [s for s in statements if "FROM calls WHERE hid IN" in s]
    sources = storage._store.conn.execute(
        "SELECT COUNT(*) FROM call_inputs i JOIN calls s ON s.id = i.src_call").fetchone()[0]
    assert sources == 20  # each double's input names the inc call it came from
    storage.close()


def test_a_stale_key_of_a_source_is_never_recorded_as_its_source(chained):
    # known_keys may outlive its calls (a deletion elsewhere frees the largest key for the
    # next call): each key is checked against the file before it names a source.
    module, path = chained
    storage = Storage(path)
    with storage.run():
        assert module.inc(0) == 1
    known = storage._store.known_keys
    assert known
    for hid in known:
        known[hid] = known[hid] % 20 + 1  # another inc call's key
    module.then(storage)
    wrong = storage._store.conn.execute(
        "SELECT COUNT(*) FROM call_inputs i JOIN call_outputs o"
        " ON o.call_id = i.src_call AND o.idx = i.src_index WHERE i.cid != o.cid").fetchone()[0]
    assert wrong == 0
    storage.close()


def test_a_process_that_only_loads_stored_calls_remembers_a_bounded_number_of_their_keys(chained, monkeypatch):
    # Lookups remember each call's key (known_keys); only a commit of new calls dropped them
    # past the bound, so a process loading a large storage, hits only, grew without end.
    monkeypatch.setattr(store_module, "_KNOWN_KEYS_MAX", 30)
    module, path = chained
    module.then(Storage(path))  # 40 calls
    reader = Storage(path)
    assert module.then(reader) == [2 * (i + 1) for i in range(20)]  # 40 hits
    assert 0 < len(reader._store.known_keys) <= 31
    reader.close()
