"""Storage files as earlier formats laid them out, made from current files: what upgrade
tests start from (migrations.py upgrades them in place)."""

from __future__ import annotations

import sqlite3

#: The call tables as the previous release of format 9 wrote them: without the index of calls
#: not exact (store.py's INEXACT_INDEX).
FORMAT_9_LAYOUT = (
    "DROP INDEX idx_calls_inexact",
    "DELETE FROM sqlite_stat1 WHERE idx = 'idx_calls_inexact'",
)

#: Format 9's call tables as format 8 had them: the indexes keyed by hashes alone, no buckets.
FORMAT_8_LAYOUT = (
    "DROP INDEX idx_calls_key",
    "DROP INDEX idx_calls_hid",
    "ALTER TABLE calls DROP COLUMN bucket",
    "CREATE INDEX idx_calls_key ON calls (lkey)",
    "CREATE UNIQUE INDEX idx_calls_hid ON calls (hid)",
    "UPDATE sqlite_stat1 SET stat = '1000000 1' WHERE idx IN ('idx_calls_key', 'idx_calls_hid')",
)

#: Format 8's value tables (value_rows.py) joined back into format 7's one ``vals`` table, and
#: its stat cache of data files without the change times format 8 keys them by (file_deps.py).
FORMAT_7_LAYOUT = (
    "CREATE TABLE v7_vals (cid BLOB PRIMARY KEY, codec TEXT, data BLOB, size INTEGER, external INTEGER)"
    " WITHOUT ROWID",
    "INSERT INTO v7_vals SELECT cid, codec, data, size, external FROM vals",
    "DROP VIEW vals",
    "DROP TABLE val_rows",
    "DROP TABLE val_bytes",
    "ALTER TABLE v7_vals RENAME TO vals",
    "UPDATE sqlite_stat1 SET tbl = 'vals', idx = 'vals' WHERE tbl = 'val_rows'",
    "DROP TABLE data_file_stats",
    "CREATE TABLE file_stats (path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, inode INTEGER, state BLOB)",
)


def format_7_layout(conn: sqlite3.Connection, fmt: str = "mandala_ast/7") -> None:
    """Lay the open file out as format 7 did, and call its format ``fmt``."""
    format_8_layout(conn, fmt)
    for statement in FORMAT_7_LAYOUT:
        conn.execute(statement)
    conn.execute("UPDATE mandala_meta SET value = ? WHERE key = 'format'", (fmt,))


def format_8_layout(conn: sqlite3.Connection, fmt: str = "mandala_ast/8") -> None:
    """Lay the open file out as format 8 did, and call its format ``fmt``."""
    format_9_layout(conn, fmt)
    for statement in FORMAT_8_LAYOUT:
        conn.execute(statement)
    conn.execute("UPDATE mandala_meta SET value = ? WHERE key = 'format'", (fmt,))


def format_9_layout(conn: sqlite3.Connection, fmt: str = "mandala_ast/9") -> None:
    """Lay the open file out as the previous release of format 9 did, and call its format ``fmt``."""
    for statement in FORMAT_9_LAYOUT:
        conn.execute(statement)
    conn.execute("UPDATE mandala_meta SET value = ? WHERE key = 'format'", (fmt,))
