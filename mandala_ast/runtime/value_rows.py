"""How stored values are laid out in the database file (format 8).

Every value has a row in ``val_rows``, keyed by its content id. A content id is a hash, so
consecutive inserts land anywhere in that b-tree, and each dirties a page of its own that the
commit writes to the log and the checkpoint writes again. A value of a few kB (an array of
1,000 floats) held in that row spilled into overflow pages and split the b-tree's leaves
every few inserts: storing 50,000 such arrays cost ~60-110 µs a value in SQLite, growing
with the file. Such values now keep only their key in ``val_rows``; their bytes go to
``val_bytes``, a table keyed by integers handed out in the order values are stored, so the
bytes of one commit are appended together at the end of its b-tree (~10 µs a value, flat).
Values of 1 MiB and more are files (blobs.py); small ones (ints, short strings, encoded
structures of a few elements) stay in their row, where a load finds them with no second
lookup.

Readers see one relation, the view ``vals (cid, codec, data, size, external)``, as before
format 8: ``data`` holds the bytes wherever they are, ``external`` is 1 for a value file.
Only the writers here (:func:`place_bytes`, :func:`delete_values` and the repairs) and the
checks of the layout itself (integrity.py) name the tables.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

__all__ = [
    "IN_VAL_BYTES",
    "KEEP_ROWS",
    "MEDIUM_VALUE_BYTES",
    "OVER_PLACEHOLDERS",
    "SCHEMA",
    "delete_values",
    "place_bytes",
    "record_file_digest",
    "replace_placeholders",
    "restore_bytes",
    "split_values_table",
]

#: Encoded values of this many bytes or more keep their bytes in ``val_bytes``. Below it a
#: value fits its ``val_rows`` leaf (SQLite keeps up to ~1,000 bytes of an index entry in
#: the page with 4 KiB pages), and a second table would only add a lookup to its load.
MEDIUM_VALUE_BYTES = 1000
#: ``val_rows.external`` of a value whose ``data`` is the id of its ``val_bytes`` row (0: the
#: bytes are in the row; 1: a value file, ``data`` its digest).
IN_VAL_BYTES = 2

_VAL_ROWS_TABLE = (
    "CREATE TABLE val_rows (cid BLOB PRIMARY KEY, codec TEXT, data BLOB, size INTEGER, external INTEGER) "
    "WITHOUT ROWID"
)
_VAL_BYTES_TABLE = "CREATE TABLE val_bytes (id INTEGER PRIMARY KEY, data BLOB)"
# The join probes val_bytes only for the rows whose bytes are there (the ON term on
# r.external alone skips the probe for the others).
_VALS_VIEW = (
    "CREATE VIEW vals AS SELECT r.cid AS cid, r.codec AS codec,"
    f" CASE WHEN r.external = {IN_VAL_BYTES} THEN b.data ELSE r.data END AS data, r.size AS size,"
    f" CASE WHEN r.external = {IN_VAL_BYTES} THEN 0 ELSE r.external END AS external"
    f" FROM val_rows r LEFT JOIN val_bytes b ON r.external = {IN_VAL_BYTES} AND b.id = r.data"
)
# A process of format 7 that had the file open when another upgraded it goes on writing and
# deleting values through vals, the table it knows: these make the view take those writes
# (this package never writes through it). Bytes written so stay in their row, as before
# format 8; a value deleted or changed so loses its val_bytes row with it.
_FORGET_BYTES = f"DELETE FROM val_bytes WHERE id = (SELECT data FROM val_rows WHERE cid = OLD.cid AND external = {IN_VAL_BYTES});"
_VALS_WRITES = (
    "CREATE TRIGGER vals_insert INSTEAD OF INSERT ON vals BEGIN"
    " INSERT OR IGNORE INTO val_rows VALUES (NEW.cid, NEW.codec, NEW.data, NEW.size, NEW.external); END",
    f"CREATE TRIGGER vals_delete INSTEAD OF DELETE ON vals BEGIN {_FORGET_BYTES}"
    " DELETE FROM val_rows WHERE cid = OLD.cid; END",
    f"CREATE TRIGGER vals_update INSTEAD OF UPDATE ON vals BEGIN {_FORGET_BYTES}"
    " UPDATE val_rows SET cid = NEW.cid, codec = NEW.codec, data = NEW.data, size = NEW.size,"
    " external = NEW.external WHERE cid = OLD.cid; END",
)
#: The statements that create the value tables of a new file, in order.
SCHEMA = (_VAL_ROWS_TABLE, _VAL_BYTES_TABLE, _VALS_VIEW, *_VALS_WRITES)

#: The codec of a transient output's row without bytes (transient.py's CODEC, spelled out:
#: this module depends on nothing else of the runtime).
_PLACEHOLDER = "transient"
#: What follows the rows of outputs in an ``INSERT INTO val_rows VALUES …``: an output stored
#: under a cid whose row is a transient op's placeholder takes its place (another op's output
#: equal to a value a transient op left out: else that op's calls would show their value as
#: not stored and compute it again at every load); any other row there is kept.
OVER_PLACEHOLDERS = (
    " ON CONFLICT (cid) DO UPDATE SET codec = excluded.codec, data = excluded.data, size = excluded.size,"
    f" external = excluded.external WHERE val_rows.codec = '{_PLACEHOLDER}' AND excluded.codec != '{_PLACEHOLDER}'"
)
#: What follows the rows of arguments: any row there is kept, a placeholder too. A transient
#: output passed on stays unstored though the storage passing it does not know its row is a
#: placeholder (it forgot what the file holds after a deletion, or another Storage computed it).
KEEP_ROWS = " ON CONFLICT (cid) DO NOTHING"
# Each cid found, and whether its row is a placeholder (no stored value: an output's bytes
# are not dropped as stored already there, an argument's are).
_STORED_SQL = f"SELECT cid, codec = '{_PLACEHOLDER}' FROM val_rows WHERE cid IN ({{marks}})"
# Ids are never handed out twice, even after the largest one left: a value whose bytes were
# lost (a damaged page, a salvaged file) still names its id, and would load the bytes of the
# next value stored under it. The largest id handed out is kept in mandala_meta.
_LAST_ID_KEY = "val_bytes_last_id"
_NEXT_BYTES_ID_SQL = (
    "SELECT MAX(COALESCE((SELECT MAX(id) FROM val_bytes), 0),"
    f" COALESCE((SELECT CAST(value AS INTEGER) FROM mandala_meta WHERE key = '{_LAST_ID_KEY}'), 0)) + 1"
)
_LAST_ID_SQL = (
    f"INSERT INTO mandala_meta VALUES ('{_LAST_ID_KEY}', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
#: Ids per ``IN (...)`` list: below SQLite's oldest limit on bound parameters (999).
_IN_CHUNK = 900


def place_bytes(conn: sqlite3.Connection, flat: list, outputs: Collection[bytes] = ()) -> list:
    """Value rows ``(cid, codec, data, size, external)`` whose fields ``flat`` lists one after
    another, as they go into ``val_rows``: each medium value's bytes written to ``val_bytes``
    first, its row naming them. The caller inserts the rows: a value stored already is left
    as it is, and so is a placeholder, but under the cids of ``outputs`` (KEEP_ROWS and
    OVER_PLACEHOLDERS).

    >>> place_bytes(conn, [cid, "npy", data, len(data), 0])     # doctest: +SKIP
    [cid, 'npy', 1, 8128, 2]
    """
    # (the rows' data and external fields a column at a time: no call per row)
    medium = [
        start for start, data, external in zip(range(0, len(flat), 5), flat[2::5], flat[4::5])
        if not external and data is not None and len(data) >= MEDIUM_VALUE_BYTES
    ]
    return _with_bytes_apart(conn, flat, medium, outputs) if medium else flat


def _with_bytes_apart(conn: sqlite3.Connection, flat: list, medium: list[int], outputs: Collection[bytes]) -> list:
    """``flat`` (a copy: the caller's buffer stays as it is should the write fail) with the
    medium values' bytes written to ``val_bytes`` and their rows naming them. A medium value
    stored already (by another process) is dropped instead, as is a cid buffered twice: no
    bytes are written that no row names. Only the medium rows are visited."""
    found = _stored(conn, [flat[start] for start in medium])
    next_id = conn.execute(_NEXT_BYTES_ID_SQL).fetchone()[0]
    rows = flat.copy()
    apart: list[tuple[int, bytes]] = []
    dropped: list[int] = []
    for start in medium:
        placeholder = found.get(rows[start])
        if placeholder is not None and not (placeholder and rows[start] in outputs):
            dropped.append(start)  # its row stays: no bytes that no row names
            continue
        found[rows[start]] = False
        apart.append((next_id, rows[start + 2]))
        rows[start + 2], rows[start + 4], next_id = next_id, IN_VAL_BYTES, next_id + 1
    if dropped:
        gone = set(dropped)
        rows = [field for start in range(0, len(rows), 5) if start not in gone for field in rows[start : start + 5]]
    if apart:
        conn.executemany("INSERT INTO val_bytes VALUES (?, ?)", apart)
        conn.execute(_LAST_ID_SQL, (str(next_id - 1),))
    return rows


def _stored(conn: sqlite3.Connection, cids: list[bytes]) -> dict[bytes, bool]:
    """Those of ``cids`` with a row: whether it is a transient op's placeholder."""
    found: dict[bytes, bool] = {}
    for start in range(0, len(cids), _IN_CHUNK):
        chunk = cids[start : start + _IN_CHUNK]
        found.update(conn.execute(_STORED_SQL.format(marks=", ".join("?" * len(chunk))), chunk))
    return found


def delete_values(conn: sqlite3.Connection, cids_sql: str) -> None:
    """Delete the values whose cids ``cids_sql`` (a SELECT) lists, with their bytes."""
    conn.execute(
        f"DELETE FROM main.val_bytes WHERE id IN (SELECT data FROM main.val_rows"
        f" WHERE external = {IN_VAL_BYTES} AND cid IN ({cids_sql}))"
    )
    conn.execute(f"DELETE FROM main.val_rows WHERE cid IN ({cids_sql})")


def record_file_digest(conn: sqlite3.Connection, cid: bytes, file_digest: bytes, size: int) -> None:
    """Record the digest of a value file written again (blobs.py: a corrupt one, repaired)."""
    conn.execute("UPDATE val_rows SET data = ?, size = ? WHERE cid = ? AND external = 1", (file_digest, size, cid))


def replace_placeholders(conn: sqlite3.Connection, flat: list) -> None:
    """Store value rows ``(cid, codec, data, size, external)`` (fields one after another, as
    :func:`place_bytes` takes them) in place of transient placeholders (rows of codec
    ``transient``, no bytes) under their cids: an op that no longer says ``transient=`` stores
    the values of the calls it stored while it did. A real value stored already is kept."""
    cids = flat[0::5]
    for start in range(0, len(cids), _IN_CHUNK):
        chunk = cids[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        conn.execute(f"DELETE FROM val_rows WHERE codec = '{_PLACEHOLDER}' AND cid IN ({marks})", chunk)
    rows = place_bytes(conn, flat)
    conn.executemany("INSERT OR IGNORE INTO val_rows VALUES (?, ?, ?, ?, ?)",
                     [rows[start : start + 5] for start in range(0, len(rows), 5)])


def restore_bytes(conn: sqlite3.Connection, cid: bytes, data: bytes) -> None:
    """Put ``data`` back as the bytes of ``cid``, whose ``val_bytes`` row was lost: in its own
    row, as a value stored before format 8 (a repair is rare; no id to hand out)."""
    conn.execute(f"UPDATE val_rows SET data = ?, external = 0 WHERE cid = ? AND external = {IN_VAL_BYTES}", (data, cid))


def split_values_table(conn: sqlite3.Connection) -> None:
    """Upgrade a file's ``vals`` table (formats 4 to 7) to this layout, in place: the table
    becomes ``val_rows`` as it is (values stored before keep their bytes in their rows, which
    readers see the same way), and new medium values go to ``val_bytes``."""
    conn.execute("ALTER TABLE vals RENAME TO val_rows")
    for statement in SCHEMA[1:]:
        conn.execute(statement)
    # The planner's fixed statistics (store.py) name the table.
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        conn.execute("UPDATE sqlite_stat1 SET tbl = 'val_rows', idx = 'val_rows' WHERE tbl = 'vals'")
