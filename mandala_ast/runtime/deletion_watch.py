"""Keeping every Storage on a file consistent with deletions made through another one.

A Storage remembers what the file holds: calls it looked up, values it knows are stored (so
it does not write them again), rows buffered for its next commit. A deletion in another
process (or another Storage object) invalidates all of that. Each deletion or gc bumps a
counter in ``mandala_meta`` inside its own write transaction, and :class:`DeletionWatch`
compares it at two moments:

- at block entry: the Storage drops its caches;
- inside every flush transaction (serialised with deletions by ``BEGIN IMMEDIATE``): buffered
  calls that refer to a value or a call deleted meanwhile are dropped instead of written (they
  will simply be computed again), and a blob file removed under a buffered value is written
  again from the encoding still in memory.

So no committed row ever refers to a value or call that is gone, however deletions and blocks
interleave; the price is one point query per block entry and per commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .codecs import STRUCTURE_CODECS
from .store import IN_CHUNK, value_file_error
from .structures import element_cids

if TYPE_CHECKING:
    from .blobs import BlobDir
    from .store import SQLiteStore

__all__ = ["DeletionWatch", "deletion_epoch", "mark_deleted"]

_EPOCH_KEY = "deletions"


class DeletionWatch:
    """Notices deletions committed by any connection to the same file.

    ``unflushed``: the Storage's encodings of buffered values (cid -> EncodedValue), used to
    write a blob file again if a deletion removed it before this Storage committed its row.

    >>> watch = DeletionWatch(store, blobs, {})     # doctest: +SKIP
    >>> watch.changed()                             # doctest: +SKIP
    False
    """

    def __init__(self, store: SQLiteStore, blobs: BlobDir | None, unflushed: dict) -> None:
        self._store, self._blobs, self._unflushed = store, blobs, unflushed
        # Two marks: what the caches have seen (changed) and what the buffered rows have been
        # checked against (before_flush). Block entry may happen while rows are buffered (a
        # nested block, a query block inside a run block): it must not mark those rows checked.
        self._seen = self._flushed = deletion_epoch(store.conn)
        self._noticed = False
        # Row ids of buffered calls dropped so far: compiled code may still hold their outputs'
        # histories (Refs) and record later calls as computed from them.
        self._dropped: set[bytes] = set()

    def changed(self) -> bool:
        """Whether a deletion was committed since the last look (by this or by
        :meth:`before_flush`). One point query. Buffered rows are still checked at the next
        flush."""
        epoch = deletion_epoch(self._store.conn)
        changed = epoch != self._seen or self._noticed
        self._seen, self._noticed = epoch, False
        return changed

    def own_deletion(self) -> None:
        """After this Storage's own deletion (made right after a commit): nothing to report,
        and buffered rows, if any, are still checked at the next flush."""
        self._seen = epoch = deletion_epoch(self._store.conn)
        self._noticed = False
        if not any(self._store.rows.values()):
            self._flushed = epoch

    def recheck(self) -> None:
        """Treat what happened as a deletion by another Storage (calls that were running in
        other threads meanwhile may refer to what is gone): the next look reports a change, and
        the next flush checks the buffered rows."""
        self._seen = self._flushed = _UNKNOWN

    def noticed(self) -> bool:
        """Whether :meth:`before_flush` saw a deletion since the last look (no query)."""
        noticed, self._noticed = self._noticed, False
        return noticed

    def before_flush(self, conn: sqlite3.Connection) -> None:
        """Inside the flush transaction: if anything was deleted since the last look, drop
        the buffered rows that refer to what is gone (see the module docstring)."""
        epoch = deletion_epoch(conn)
        store = self._store
        if epoch != self._flushed:
            self._dropped |= drop_rows_of_deleted(conn, store, self._blobs, self._unflushed)
            self._flushed, self._noticed = epoch, True
        elif self._dropped and any(row[3] in self._dropped for row in store.buffered("inputs")):
            # Computed from a call dropped at an earlier flush: its src_call would dangle.
            self._dropped |= drop_rows_of_deleted(conn, store, self._blobs, self._unflushed)


#: An epoch no file holds: compared with it, the file's always looks changed.
_UNKNOWN = object()


def mark_deleted(conn: sqlite3.Connection) -> None:
    """Record, inside the caller's write transaction, that stored rows or files were removed.

    >>> mark_deleted(store.conn)                    # doctest: +SKIP
    """
    conn.execute(
        "INSERT INTO mandala_meta (key, value) VALUES (?, '1') "
        "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (_EPOCH_KEY,),
    )


def drop_rows_of_deleted(
    conn: sqlite3.Connection, store: SQLiteStore, blobs: BlobDir | None, unflushed: dict
) -> set[bytes]:
    """Remove from the rows ``store`` buffers every call that refers to a value or call no
    longer stored (and, transitively, the buffered calls computed from those); returns their
    row ids.

    >>> drop_rows_of_deleted(conn, store, blobs, {})   # doctest: +SKIP
    set()
    """
    rows = {table: store.buffered(table) for table in ("calls", "inputs", "outputs", "vals", "versions")}
    missing = _missing_values(conn, rows, blobs, unflushed)
    buffered_calls = {row[0] for row in rows["calls"]}
    sources = {row[3] for row in rows["inputs"] if row[3] is not None} - buffered_calls
    gone = sources - _existing(conn, "calls", "hid", sources)
    bad = {row[0] for row in rows["inputs"] if row[2] in missing or row[3] in gone}
    bad |= {row[0] for row in rows["outputs"] if row[2] in missing}
    while True:  # buffered calls computed from a dropped one
        more = {row[0] for row in rows["inputs"] if row[3] in bad} - bad
        if not more:
            break
        bad |= more
    for table in ("calls", "inputs", "outputs"):
        store.replace_buffered(table, [row for row in rows[table] if row[0] not in bad])
    store.replace_buffered("vals", [row for row in rows["vals"] if row[0] not in missing])
    return bad


def _missing_values(
    conn: sqlite3.Connection, rows: dict[str, list[tuple]], blobs: BlobDir | None, unflushed: dict
) -> set[bytes]:
    """Value cids the buffered rows refer to that are neither buffered nor stored, plus the
    buffered structures with such an element, plus buffered blobs that cannot be restored."""
    buffered = {row[0]: row for row in rows["vals"]}
    members = {
        cid: _elements(row, blobs, unflushed) for cid, row in buffered.items() if row[1] in STRUCTURE_CODECS
    }
    wanted = {row[2] for row in rows["inputs"]} | {row[2] for row in rows["outputs"]}
    wanted.update(cid for elements in members.values() for cid in elements)
    unknown = wanted - buffered.keys()
    missing = unknown - _existing(conn, "vals", "cid", unknown)
    missing |= {cid for cid, row in buffered.items() if row[4] and not _restored(conn, rows, row, blobs, unflushed)}
    missing |= {cid for cid, elements in members.items() if not missing.isdisjoint(elements)}
    return missing


def _elements(row: tuple, blobs: BlobDir | None, unflushed: dict) -> list[bytes]:
    cid, codec, data, _, external = row
    if external:
        assert blobs is not None  # a value is external only in a storage with a blob directory
        encoded = unflushed.get(cid)
        try:
            data = encoded.data if encoded is not None else blobs.path(cid).read_bytes()
        except FileNotFoundError:  # gone for good: _restore_blob reports the structure missing
            return []
    return element_cids(codec, data)


def _restored(conn: sqlite3.Connection, rows: dict[str, list[tuple]], row: tuple, blobs: BlobDir | None,
              unflushed: dict) -> bool:
    """:func:`_restore_blob` of a buffered value; a file that cannot be written (a full disk, a
    read-only mount) is a StorageFullError or ReadOnlyStorageError naming it and the ops of
    the buffered calls it belongs to (the commit fails; the calls stay buffered on a
    read-only mount, and are committed once it is writable)."""
    cid = row[0]
    try:
        return _restore_blob(cid, row[2], blobs, unflushed)
    except OSError as exc:
        assert blobs is not None  # only a storage with value files restores one
        error = value_file_error(exc, blobs.path(cid))
        if error is None:
            raise
        raise type(error)(f"{_ops_of(conn, rows, cid)}: {error}") from exc


def _ops_of(conn: sqlite3.Connection, rows: dict[str, list[tuple]], cid: bytes) -> str:
    """``op NAME`` (or ``ops A, B``) of the buffered calls that take or give the value ``cid``."""
    calls = {row[0] for table in ("inputs", "outputs") for row in rows[table] if row[2] == cid}
    versions = sorted({row[3] for row in rows["calls"] if row[0] in calls})
    marks = ", ".join("?" * len(versions))
    names = {name for (name,) in conn.execute(f"SELECT op_name FROM versions WHERE version_id IN ({marks})", versions)}
    names.update(row[1] for row in rows["versions"] if row[0] in versions)  # new in this block
    return ("op " if len(names) == 1 else "ops ") + ", ".join(sorted(names))


def _restore_blob(cid: bytes, digest: bytes, blobs: BlobDir | None, unflushed: dict) -> bool:
    """Make sure a buffered value's blob file exists; False if it is gone for good."""
    if blobs is None or blobs.path(cid).exists():
        return True
    encoded = unflushed.get(cid)
    if encoded is None:
        return False
    # The buffered row records the digest of the file there when it was buffered, perhaps
    # another process's pickle of equal content: other bytes cannot be put back under it.
    return blobs.write(cid, encoded.data) == digest


def _existing(conn: sqlite3.Connection, table: str, column: str, ids: Iterable[bytes]) -> set[bytes]:
    ids = list(ids)
    found: set[bytes] = set()
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT {column} FROM {table} WHERE {column} IN ({marks})"
        found.update(row[0] for row in conn.execute(query, chunk))
    return found


def deletion_epoch(conn: sqlite3.Connection) -> Any:
    """What the file says of its deletions: changed by each one committed since (any process).

    >>> deletion_epoch(store.conn)                  # doctest: +SKIP
    '3'
    """
    row = conn.execute("SELECT value FROM mandala_meta WHERE key = ?", (_EPOCH_KEY,)).fetchone()
    return row[0] if row else None

