"""Upgrading storage files written by earlier formats, in place and in one transaction.

Format 4 keyed calls, inputs and outputs by 32-byte hashes; format 5 gives calls integer row
ids in the order they were stored and keys inputs and outputs by those (store.py explains why).
Format 6 records, in the ``data`` field of a value stored as a file, the blake3 digest of the
file's bytes, which every load checks (blobs.py); upgrading hashes the files there (at GB/s),
and a file missing then stays without a digest (its loads report it missing).
Format 7 adds the (empty) tables that record renamed ops and arguments (renames.py) and the
stat cache of data files ops read (file_deps.py). Format 8 renames the ``vals`` table
``val_rows`` and adds ``val_bytes`` beside it, where new medium values keep their bytes
(value_rows.py); the values already stored stay where they are. It also starts the stat cache of data
files anew in a table that keys them by their change time too (file_deps.py).
Format 9 folds the unique index of row ids into the history index and keys the index of
row ids by the call's integer key first, in buckets (store.py's RANDOM_KEY_INDEXES says
why); upgrading adds the bucket column and builds those two indexes again.
Upgrading also adds the index of each version's calls stored without every input's history
(store.py's INEXACT_INDEX, ~0.1 s per million calls), which a query with a call under an ``if``
reads (query/tracked.py); a format-9 file of the previous release gets it when first opened
(store.py), as an index changes nothing that release reads.
Everything else (values, versions, dependency states) is unchanged. The upgrade runs inside one
``BEGIN IMMEDIATE`` transaction: a crash or an error leaves the format-4 file as it was, and a
second process that opens the file meanwhile waits, then finds it upgraded.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .._errors import StorageFormatError
from .blobs import BlobDir, blob_dir_of, file_digest
from .file_deps import TABLE as FILE_STATS_TABLE
from .renames import add_tables
from .value_rows import split_values_table

__all__ = ["READABLE_AS_IS", "UPGRADABLE", "Rekeying", "upgrade"]

#: Formats this version can upgrade from, to the current one.
UPGRADABLE = ("mandala_ast/4", "mandala_ast/5", "mandala_ast/6", "mandala_ast/7", "mandala_ast/8")
#: Formats this version also reads as they are, where they cannot be upgraded (a read-only
#: mount of shared results): format 8 changed only where new values are written, and
#: readers query ``vals``, which a format-7 file has as a table of the same columns; format
#: 9 changed only how two indexes are keyed, which no query names (nor does the index of calls
#: not exact, which query/tracked.py reads only where it exists).
READABLE_AS_IS = ("mandala_ast/7", "mandala_ast/8")

_RENAME_V4 = (
    "DROP INDEX IF EXISTS idx_calls_hid",
    "DROP INDEX IF EXISTS idx_calls_cid",
    "DROP INDEX IF EXISTS idx_inputs_src",
    "DROP INDEX IF EXISTS idx_inputs_cid",
    "DROP INDEX IF EXISTS idx_outputs_cid",
    "ALTER TABLE calls RENAME TO v4_calls",
    "ALTER TABLE inputs RENAME TO v4_inputs",
    "ALTER TABLE outputs RENAME TO v4_outputs",
)
# Row ids follow the old creation times, so the rows of one run block stay together.
_COPY_V4 = (
    "INSERT INTO calls (version_id, lkey, deps_id, hid, cid, created_at, duration, exact, outputs)"
    " SELECT version_id, lkey, deps_id, hid, cid, created_at, duration, exact, outputs"
    " FROM v4_calls ORDER BY created_at, hid",
    # A source whose call is gone (deleted without its dependents) is tombstoned with a row id
    # of its own, as deletion.py does: format 4 kept its hid, and the call, once computed
    # again, is their source again. (0 would say "some call" and lose which one for good.)
    "INSERT INTO call_tombstones (id, hid) SELECT (SELECT COALESCE(MAX(id), 0) FROM calls)"
    " + ROW_NUMBER() OVER (ORDER BY src), src FROM (SELECT DISTINCT i.src_call AS src FROM v4_inputs i"
    " WHERE i.src_call IS NOT NULL AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.hid = i.src_call))",
    "INSERT INTO call_inputs SELECT c.id, i.name, i.cid,"
    " CASE WHEN i.src_call IS NULL THEN NULL ELSE COALESCE(s.id, t.id, 0) END, i.src_index FROM v4_inputs i"
    " JOIN calls c ON c.hid = i.call_hid LEFT JOIN calls s ON s.hid = i.src_call"
    " LEFT JOIN call_tombstones t ON t.hid = i.src_call ORDER BY c.id",
    "INSERT INTO call_outputs SELECT c.id, o.idx, o.cid FROM v4_outputs o"
    " JOIN calls c ON c.hid = o.call_hid ORDER BY c.id",
    "DROP TABLE v4_calls",
    "DROP TABLE v4_inputs",
    "DROP TABLE v4_outputs",
)


class Rekeying(NamedTuple):
    """What format 9 adds to the call tables (store.py's BUCKET_COLUMNS: table -> column
    definition) and the indexes it creates again (RANDOM_KEY_INDEXES), the index of calls not
    exact it adds (INEXACT_INDEX), with the function that writes what the planner assumes of them."""

    bucket_columns: dict[str, str]
    indexes: tuple[str, ...]
    write_statistics: Callable[[sqlite3.Connection], None]
    inexact_index: str


def upgrade(conn: sqlite3.Connection, path: object, found: str | None, current: str,
            create_call_tables: Callable[[sqlite3.Connection], None],
            rekeying: Rekeying) -> None:
    """Upgrade the open file from format ``found`` to ``current``; the caller holds the write
    transaction. ``create_call_tables`` creates the current schema's call tables; ``rekeying``
    says how format 9 keys two indexes anew and which index it adds."""
    sys.stderr.write(f"mandala_ast: upgrading {path} from storage format {found} to {current} (once) ...\n")
    if found == "mandala_ast/4":
        _upgrade_v4(conn, create_call_tables)
    if path is not None and found in ("mandala_ast/4", "mandala_ast/5"):
        _record_file_digests(conn, blob_dir_of(Path(str(path))))
    if found != "mandala_ast/8":
        add_tables(conn)
        conn.execute(FILE_STATS_TABLE)
        split_values_table(conn)
    if found != "mandala_ast/4":  # whose call tables were made anew, with this format's indexes
        _rekey_indexes(conn, path, rekeying)
        conn.execute(rekeying.inexact_index.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
    rekeying.write_statistics(conn)  # (those of the indexes made anew or added)
    conn.execute("UPDATE mandala_meta SET value = ? WHERE key = 'format'", (current,))


def _upgrade_v4(conn: sqlite3.Connection, create_call_tables: Callable[[sqlite3.Connection], None]) -> None:
    for statement in _RENAME_V4:
        conn.execute(statement)
    create_call_tables(conn)
    for statement in _COPY_V4:
        conn.execute(statement)


def _record_file_digests(conn: sqlite3.Connection, blobs: BlobDir) -> None:
    """Format 5 to 6: the digest of every value file there (trusted as it is today)."""
    rows = conn.execute("SELECT cid FROM vals WHERE external = 1 AND data IS NULL").fetchall()
    for (cid,) in rows:
        try:
            digest = file_digest(blobs.path(cid))
        except FileNotFoundError:
            continue
        conn.execute("UPDATE vals SET data = ? WHERE cid = ?", (digest, cid))


def _rekey_indexes(conn: sqlite3.Connection, path: object, rekeying: Rekeying) -> None:
    """Format 8 to 9: the bucket columns (computed, no row rewritten) and the indexes keyed by
    hashes, each built anew in key order (~1 s per million calls each)."""
    for table, column in rekeying.bucket_columns.items():
        if not any(row[1] == "bucket" for row in conn.execute(f"PRAGMA table_xinfo({table})")):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    for statement in rekeying.indexes:
        name = statement.split(" ON ")[0].rsplit(" ", 1)[1]
        conn.execute(f"DROP INDEX IF EXISTS {name}")
        try:
            conn.execute(statement)
        except sqlite3.IntegrityError as exc:
            # Two calls under one history id and dependency state: their row ids differ, so
            # something wrote a row id that is not the hash of the two. No version writes such
            # rows; the file is left as it was (the transaction rolls back) rather than guessed at.
            raise StorageFormatError(
                f"{path} holds two calls of one history and dependency state ({exc}), which "
                "format 9 keeps once; the file was left at its format: open it with the release "
                "that wrote it"
            ) from exc
