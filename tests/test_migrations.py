"""Upgrading format-4 storage files in place (migrations.py)."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import ModuleType

import pytest
from formats import format_7_layout, format_8_layout, format_9_layout

import mandala_ast
from mandala_ast import Storage
from mandala_ast.runtime import migrations
from mandala_ast.runtime.store import FORMAT

PIPELINE = """
from mandala_ast import op

RUNS = []

@op
def inc(x: int) -> int:
    RUNS.append(x)
    return x + 1

@op
def add(x: int, y: int) -> int:
    RUNS.append((x, y))
    return x + y

def pipeline(storage):
    with storage.run():
        return [add(inc(i), i) for i in range(5)]
"""


@pytest.fixture
def user(tmp_path: Path) -> Iterator[ModuleType]:
    """The user's module, compiled: add's first input has exact provenance (inc's output)."""
    (tmp_path / "upgraded_pipeline.py").write_text(PIPELINE)
    yield mandala_ast.compile_module(tmp_path / "upgraded_pipeline.py", name="upgraded_pipeline")
    sys.modules.pop("upgraded_pipeline", None)


# The call tables as format 4 laid them out (store.py at format 4), filled from a current file.
_DOWNGRADE = (
    "CREATE TABLE v4_calls (version_id BLOB NOT NULL, lkey BLOB NOT NULL, deps_id BLOB NOT NULL,"
    " hid BLOB NOT NULL, cid BLOB NOT NULL, created_at REAL, duration REAL, exact INTEGER,"
    " outputs BLOB, PRIMARY KEY (version_id, lkey, deps_id)) WITHOUT ROWID",
    "INSERT INTO v4_calls SELECT version_id, lkey, deps_id, hid, cid, created_at, duration, exact,"
    " outputs FROM calls",
    "CREATE TABLE v4_inputs (call_hid BLOB, name TEXT, cid BLOB, src_call BLOB, src_index INTEGER,"
    " PRIMARY KEY (call_hid, name)) WITHOUT ROWID",
    "INSERT INTO v4_inputs SELECT call_hid, name, cid, src_call, src_index FROM inputs",
    "CREATE TABLE v4_outputs (call_hid BLOB, idx INTEGER, cid BLOB, PRIMARY KEY (call_hid, idx))"
    " WITHOUT ROWID",
    "INSERT INTO v4_outputs SELECT call_hid, idx, cid FROM outputs",
    "DROP VIEW inputs",
    "DROP VIEW outputs",
    "DROP TABLE calls",
    "DROP TABLE call_inputs",
    "DROP TABLE call_outputs",
    "DROP TABLE IF EXISTS call_tombstones",
    "DELETE FROM sqlite_stat1",
    "ALTER TABLE v4_calls RENAME TO calls",
    "ALTER TABLE v4_inputs RENAME TO inputs",
    "ALTER TABLE v4_outputs RENAME TO outputs",
    "CREATE UNIQUE INDEX idx_calls_hid ON calls (hid)",
    "CREATE INDEX idx_inputs_src ON inputs (src_call, src_index) WHERE src_call IS NOT NULL",
    "CREATE INDEX idx_calls_cid ON calls (cid) WHERE lkey != cid",
    "CREATE INDEX idx_inputs_cid ON inputs (cid)",
    "CREATE INDEX idx_outputs_cid ON outputs (cid)",
    "UPDATE mandala_meta SET value = 'mandala_ast/4' WHERE key = 'format'",
)


@pytest.fixture
def v4_file(tmp_path: Path, user: ModuleType) -> Path:
    path = tmp_path / "old.db"
    user.pipeline(Storage(path))
    downgrade(path)
    user.RUNS.clear()
    return path


def downgrade(path: Path) -> None:
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("BEGIN")
        format_7_layout(conn)
        for statement in _DOWNGRADE:
            conn.execute(statement)
        conn.execute("COMMIT")


def stored_format(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT value FROM mandala_meta WHERE key = 'format'").fetchone()[0]


def test_a_format_4_file_is_upgraded_once_and_keeps_every_call(v4_file, user, capfd):
    storage = Storage(v4_file)
    assert "upgrading" in capfd.readouterr().err
    assert user.pipeline(storage) == [1, 3, 5, 7, 9]
    assert user.RUNS == []  # nothing recomputed: every call was found in the upgraded tables
    assert stored_format(v4_file) == FORMAT
    assert sorted(storage.df(user.inc)["x"]) == [0, 1, 2, 3, 4]
    Storage(v4_file)
    assert "upgrading" not in capfd.readouterr().err
    with sqlite3.connect(v4_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert not {name for name in tables if name.startswith("v4_")}


def test_an_upgrade_keeps_exact_provenance(v4_file):
    # add's first input came from inc's output: the source survives as a row id.
    with sqlite3.connect(v4_file) as conn:
        sources_before = conn.execute("SELECT COUNT(*) FROM inputs WHERE src_call IS NOT NULL").fetchone()[0]
    Storage(v4_file)
    with sqlite3.connect(v4_file) as conn:
        sources_after = conn.execute(
            "SELECT COUNT(*) FROM call_inputs i JOIN calls c ON c.id = i.src_call"
        ).fetchone()[0]
    assert sources_after == sources_before == 5


def test_a_failed_upgrade_lets_go_of_the_file_at_once(v4_file, user, monkeypatch):
    """The failed upgrade's write lock goes with it, though its exception (and the Storage in
    its traceback, as a notebook keeps it) lives on: the next open must not wait for it. The
    busy timeout is shortened so that waiting fails fast instead of taking minutes."""
    from mandala_ast.runtime import store as store_module

    monkeypatch.setattr(store_module, "_BUSY_TIMEOUT_MS", 20)
    copy = migrations._COPY_V4
    monkeypatch.setattr(migrations, "_COPY_V4", copy + ("SELECT no_such_function()",))
    with pytest.raises(sqlite3.OperationalError) as failed:
        Storage(v4_file)
    monkeypatch.setattr(migrations, "_COPY_V4", copy)
    assert user.pipeline(Storage(v4_file)) == [1, 3, 5, 7, 9]
    assert failed.value is not None


def test_a_failed_upgrade_leaves_the_format_4_file_as_it_was(v4_file, user, monkeypatch):
    monkeypatch.setattr(migrations, "_COPY_V4", migrations._COPY_V4 + ("SELECT no_such_function()",))
    with pytest.raises(sqlite3.OperationalError):
        Storage(v4_file)
    assert stored_format(v4_file) == "mandala_ast/4"
    with sqlite3.connect(v4_file) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 10
    monkeypatch.undo()
    assert user.pipeline(Storage(v4_file)) == [1, 3, 5, 7, 9]
    assert user.RUNS == []


def test_the_row_id_of_a_deleted_source_is_not_handed_to_another_call(v4_file, user):
    # Row ids follow format 4's creation times, and a producer can be newer than a consumer
    # (another process computed and committed it first): inc(4) got the highest id. Deleted
    # without its dependents, its id went to the next call stored (MAX(id) + 1), inc(99), and
    # add(5, 4) counted as computed from inc(99): deleting inc(99) took add(5, 4) with it.
    with sqlite3.connect(v4_file) as conn:
        conn.execute(
            "UPDATE calls SET created_at = created_at + 100 WHERE hid ="
            " (SELECT src_call FROM inputs WHERE src_call IS NOT NULL ORDER BY cid LIMIT 1)"
        )
    storage = Storage(v4_file)
    frame = storage.df(user.inc)
    newest = frame[frame.created_at == frame.created_at.max()]
    storage.delete_calls(newest, dependents=False)
    with storage.run():
        user.inc(99)
    report = storage.delete_calls(storage.df(user.inc).query("x == 99"))
    assert (report.calls, report.dependents) == (1, 0)
    assert len(storage.df(user.add)) == 5


def test_a_source_deleted_before_the_upgrade_is_the_source_again_once_computed_again(tmp_path, user):
    # Format 4 kept the hid of a source deleted without its dependents, and a source computed
    # again has the same hid: add(3, 2) was computed from inc(2) again. The upgrade turned such
    # a source into 0 ("some call"), so deleting inc(2) later left add(3, 2) behind.
    path = tmp_path / "old.db"
    storage = Storage(path)
    user.pipeline(storage)
    frame = storage.df(user.inc)
    storage.delete_calls(frame[frame.x == 2], dependents=False)
    storage.close()
    downgrade(path)
    storage = Storage(path)
    user.RUNS.clear()
    assert user.pipeline(storage) == [1, 3, 5, 7, 9]
    assert user.RUNS == [2]  # inc(2) again; add(3, 2) is found by its history
    frame = storage.df(user.inc)
    report = storage.delete_calls(frame[frame.x == 2])
    assert (report.calls, report.dependents) == (2, 1)


def test_a_format_5_value_file_gets_its_digest_on_upgrade_and_is_checked_from_then_on(tmp_path, capfd):
    from test_blobs import SIZE, blob, blob_file

    from mandala_ast import CorruptValueError

    path = tmp_path / "v5.db"
    with Storage(path):
        blob(7)
    with sqlite3.connect(path) as conn:  # as format 5 wrote it: no digest
        format_7_layout(conn, "mandala_ast/5")
        conn.execute("UPDATE vals SET data = NULL WHERE external = 1")
    storage = Storage(path)
    assert "upgrading" in capfd.readouterr().err and stored_format(path) == FORMAT
    assert storage.verify().ok
    file = blob_file(path, bytes([7]) * SIZE)
    file.write_bytes(file.read_bytes()[:-1] + b"\xff")
    with pytest.raises(CorruptValueError, match=file.name[:12]):
        Storage(path).df(blob)


@pytest.fixture
def v8_file(tmp_path: Path, user: ModuleType) -> Path:
    path = tmp_path / "v8.db"
    user.pipeline(Storage(path))
    with sqlite3.connect(path) as conn:
        format_8_layout(conn)
    user.RUNS.clear()
    return path


def test_a_format_8_file_is_upgraded_once_and_its_calls_hit_and_delete_by_row_id(v8_file, user, capfd):
    assert user.pipeline(Storage(v8_file)) == [2 * i + 1 for i in range(5)]
    assert user.RUNS == [] and "upgrading" in capfd.readouterr().err
    assert stored_format(v8_file) == FORMAT
    storage = Storage(v8_file)
    user.pipeline(storage)
    assert "upgrading" not in capfd.readouterr().err
    with sqlite3.connect(v8_file) as conn:
        indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
    assert "(bucket, hid)" in indexes["idx_calls_hid"] and "(lkey, deps_id)" in indexes["idx_calls_key"]
    doomed = storage.df(user.inc).query("x == 3")
    assert storage.delete_calls(doomed).calls == 2  # and add(4, 3), computed from it
    user.pipeline(storage)
    assert user.RUNS == [3, (4, 3)]


def _indexes(path: Path) -> dict[str, str]:
    with closing(sqlite3.connect(path)) as conn:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))


@pytest.mark.parametrize("layout", [format_9_layout, format_8_layout])
def test_an_earlier_file_gets_the_index_of_calls_not_exact_once_and_keeps_its_calls(tmp_path, user, capfd, layout):
    # (A format-9 file of the previous release keeps its format: that release still opens it.)
    path = tmp_path / "old.db"
    user.pipeline(Storage(path))
    with sqlite3.connect(path) as conn:
        layout(conn)
    user.RUNS.clear()
    assert "idx_calls_inexact" not in _indexes(path)
    assert user.pipeline(Storage(path)) == [2 * i + 1 for i in range(5)]
    assert user.RUNS == [] and "(once)" in capfd.readouterr().err
    assert stored_format(path) == FORMAT and "WHERE exact = 0" in _indexes(path)["idx_calls_inexact"]
    with closing(sqlite3.connect(path)) as conn:  # (what the planner assumes of it is written too)
        assert conn.execute("SELECT count(*) FROM sqlite_stat1 WHERE idx = 'idx_calls_inexact'").fetchone() == (1,)
    Storage(path)
    assert "(once)" not in capfd.readouterr().err


def test_a_call_stored_by_two_storages_at_once_is_stored_once(tmp_path, user):
    # The unique index of row ids is gone (format 9): the history index keeps a call once.
    first, second = Storage(tmp_path / "twice.db"), Storage(tmp_path / "twice.db")
    with first.run():
        user.inc(1)
        with second.run():  # sees nothing of first's: computes and commits it too
            user.inc(1)
    assert user.RUNS == [1, 1]
    with sqlite3.connect(tmp_path / "twice.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1


def test_a_format_8_file_with_two_rows_of_one_call_is_refused_and_left_as_it_was(v8_file):
    with sqlite3.connect(v8_file) as conn:  # a row id that is not the hash of lkey and deps_id
        conn.execute(
            "INSERT INTO calls (version_id, lkey, deps_id, hid, cid, created_at, duration, exact, outputs)"
            " SELECT version_id, lkey, deps_id, x'00' || hid, cid, created_at, duration, exact, outputs"
            " FROM calls LIMIT 1"
        )
    with pytest.raises(mandala_ast.StorageFormatError, match="two") as raised:
        Storage(v8_file)
    assert str(v8_file) in str(raised.value)
    assert stored_format(v8_file) == "mandala_ast/8"
