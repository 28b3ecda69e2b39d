"""The SQLite file: opening it safely, its schema, point lookups and buffered, retried writes.

Writes are buffered in memory and flushed in one ``BEGIN IMMEDIATE`` transaction (at block exit
and periodically), so a miss costs microseconds, not an fsync. WAL mode lets readers in other
processes proceed during a flush, and the busy timeout plus a bounded retry keeps "database is
locked" from ever reaching the user. Every row is ``INSERT OR IGNORE`` by content or history id,
so two processes that compute the same call store it once.
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import sqlite3
import stat
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

from .._errors import (
    ReadOnlyStorageError,
    StorageBusyError,
    StorageClosedError,
    StorageFormatError,
    StorageFullError,
)
from . import file_deps, migrations, renames, value_rows
from .integrity import damage_as_error, damaged_error, is_damage, sqlite_error_is
from .packing import unpack_outputs

__all__ = [
    "IN_CHUNK",
    "ClosedConnection",
    "SQLiteStore",
    "full_disk_error",
    "is_file_trouble",
    "is_lock_error",
    "read_only_connection",
    "retry_locked",
    "unusable_files_error",
    "value_file_error",
]

# Format 6: the ``vals`` row of a value stored as a file holds the blake3 digest of the
# file's bytes in ``data`` (runtime/blobs.py); format 5 left it NULL. Format 7 adds the
# tables that record renamed ops and arguments (runtime/renames.py) and the stat cache of
# data files ops read (runtime/file_deps.py). Format 8 keeps the bytes of medium values
# apart from their keys (runtime/value_rows.py).
FORMAT = "mandala_ast/9"
_BUSY_TIMEOUT_MS = 60_000
_PAGE_SIZE = 4096
_READ_CACHE = "PRAGMA cache_size = -2000"
#: A transaction keeps every page it changes in the cache until it commits, and inserts keyed
#: by hashes change a page each: in a 2 MB cache the pages of a few hundred misses spill to
#: the log before the commit, and some are written twice (100k stored calls: 18.7 kB written
#: a miss instead of 11.6).
_WRITE_CACHE = "PRAGMA cache_size = -65536"
_LOCK_RETRIES = 20

# Candidates for a call: every stored row with this history id (lkey; one per dependency
# state), or with its cid. (A row whose history is raw has lkey == cid and is found through the key; the partial
# index on cid holds only rows with a history of their own.)
_CANDIDATES_SQL = (
    "SELECT hid, lkey, deps_id, outputs FROM calls "
    "WHERE (version_id = ? AND lkey IN (?, ?)) OR (cid = ? AND lkey != cid) ORDER BY id"
)
# Oldest first, sorted here: the history index orders a key's rows by dependency state, and
# SQLite's sorter costs ~0.8 us a lookup for the one row there nearly always is.
_HISTORY_SQL = "SELECT hid, deps_id, outputs, id FROM calls WHERE lkey = ? AND version_id = ?"
# The last term of _CANDIDATES_SQL alone: for a call whose history is its content, the first
# asks again for the rows the query by history found (see find_by_content).
_CONTENT_SQL = "SELECT id, hid, lkey, deps_id, outputs FROM calls WHERE cid = ? AND lkey != cid"
# By the history index (lkey, deps_id): a build call's dependency state is empty.
_COLLECTION_SQL = (
    "SELECT o.cid FROM calls c CROSS JOIN call_outputs o ON o.call_id = c.id AND o.idx = 0"
    " WHERE c.lkey = ? AND c.deps_id = X''"
)
_VALUE_SQL = "SELECT codec, data, external FROM vals WHERE cid = ?"
_VALUES_SQL = "SELECT cid, codec, data, external FROM vals WHERE cid IN ({marks})"
#: Ids per ``IN (...)`` list, for every chunked query of the package: below SQLite's oldest
#: limit on bound parameters (999).
IN_CHUNK = 900
_COUNT_SQL = "SELECT COUNT(*) FROM calls WHERE version_id = ?"
# The ends of a version's range of the version index, one probe each (SQLite optimises a
# lone MIN or MAX over an index prefix into a seek; both in one SELECT would scan the range).
_SPAN_SQL = (
    "SELECT (SELECT MAX(id) FROM calls WHERE version_id = ?) - (SELECT MIN(id) FROM calls WHERE version_id = ?) + 1"
)
_ANY_SQL = "SELECT 1 FROM calls WHERE version_id = ? LIMIT 1"
# Calls of a version given one input (name and content): through the index on input content.
_SHARING_SQL = (
    "SELECT i.call_id FROM call_inputs i JOIN calls c ON c.id = i.call_id "
    "WHERE i.cid = ? AND i.name = ? AND c.version_id = ? LIMIT ?"
)
_INPUTS_OF_SQL = "SELECT name, cid FROM call_inputs WHERE call_id = ?"
# A range of the version index, whose entries sit in row-id (= insertion) order.
_INDEX_SQL = "SELECT lkey, cid, hid, deps_id, outputs FROM calls WHERE version_id = ?"
# The next free row id, and whether any call is tombstoned (see _CALL_TABLES): ids of
# tombstoned calls are never handed to other calls, whose inputs would then name them.
_NEXT_ID_SQL = (
    "SELECT COALESCE(MAX(c, t), c, t, 0) + 1, t IS NOT NULL FROM"
    " (SELECT (SELECT MAX(id) FROM calls) AS c, (SELECT MAX(id) FROM call_tombstones) AS t)"
)
#: Connections this process has open, by the file's real path. Closing *any* descriptor of
#: a file drops every POSIX lock the process holds on it, SQLite's included, and another
#: process could then take the WAL away from a connection still using it. SQLite defers
#: such closes while its locks are held; plain file I/O does not, so the header is read that
#: way only while no connection here has the file open (the SQLite-level check still runs).
_OPEN: Counter[str] = Counter()
#: Re-entrant: the garbage collector may free another store (its finalizer takes this lock)
#: in the middle of an open, on the thread that holds it.
_OPENING = threading.RLock()


def _closed(real: str) -> None:
    with _OPENING:
        _OPEN[real] -= 1


_TOMBSTONES_SQL = "SELECT hid, id FROM call_tombstones WHERE hid IN ({marks})"
_IDS_SQL = "SELECT hid, id FROM calls WHERE hid IN ({marks})"
_HIDS_SQL = "SELECT id, hid FROM calls WHERE id IN ({marks})"
#: SQLiteStore.known_keys is dropped whole past this many (~15 MB).
_KNOWN_KEYS_MAX = 100_000
#: How stale our knowledge of other processes' commits may get (PRAGMA data_version polling).
_FRESHNESS_SECONDS = 0.05


class ClosedConnection:
    """The connection of a closed store: any use is a StorageClosedError naming the file,
    not sqlite3's "Cannot operate on a closed database" from wherever it was used."""

    def __init__(self, where: str) -> None:
        self.where = where

    def close(self) -> None:
        """Closing again does nothing."""

    def __getattr__(self, name: str) -> Any:
        raise StorageClosedError(f"{self.where} was closed (storage.close()): open it again with Storage(path)")


class SQLiteStore:
    """One storage file (or ``:memory:``) with the mandala_ast schema."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            _check_name_length(self.path)
        #: The log SQLite keeps beside the file (a symlink to it followed), while open.
        self.log = None if self.path is None else f"{os.path.realpath(self.path)}-wal"
        #: The file, its directory or its mount cannot be written (shared results on a
        #: cluster): stored calls load, and anything that would write raises ReadOnlyStorageError.
        self.read_only = self.path is not None and not _writable(self.path)
        if self.path is not None:
            file_deps.add_storage(self.path)  # (before its header is read: maybe in an op body)
            if not self.read_only:
                _prepare_path(self.path)
        try:
            with damage_as_error(self.path, "opening it"):
                self.conn = self._checked_connection()
        except sqlite3.OperationalError as exc:  # a new file on a full disk: WAL mode writes
            _raise_opening_error(exc, self.path)
            raise
        #: Held around every use of ``conn`` and ``rows`` that must not interleave with another
        #: thread's: one connection has one transaction, and a flush clears the buffers it wrote.
        #: Re-entrant: a Storage holds it around a call and flushes inside. (One connection
        #: serialised, not one per thread: the buffered rows are shared, and a lookup or a miss
        #: holds it for microseconds.)
        self.lock = threading.RLock()
        #: Rows buffered per table until the next flush, flat: ``rows["outputs"] += (row_id, i, cid)``
        #: appends one row's fields (FIELDS[table] per row). Hot paths extend these directly: a
        #: miss then leaves no row tuple alive for the garbage collector to visit until the flush.
        self.rows: dict[str, list] = {table: [] for table in _INSERTS}
        #: Row id -> integer key of the calls this store found or stored: the sources of
        #: later calls, resolved without a lookup by row id, which is a skip-scan of one
        #: probe per 16k stored calls (RANDOM_KEY_INDEXES). Checked against the file before
        #: use, so a call deleted meanwhile costs that lookup, never a wrong source.
        self.known_keys: dict[bytes, int] = {}
        try:
            with damage_as_error(self.path, "opening it"):
                self._ensure_schema()
                self._data_version = self._read_data_version()
        except BaseException as exc:
            # Not left to the garbage collector: a traceback kept alive (a notebook's, a
            # test runner's) would keep the file descriptor open with it.
            self.conn.close()
            _raise_opening_error(exc, self.path)
            raise
        self._checked_at = time.monotonic()

    # -- reading -------------------------------------------------------------------------

    def find_calls(self, version_id: bytes, history_id: bytes, cid: bytes) -> list[tuple]:
        """Stored rows of a call, by its history id or its content id, oldest first:
        ``[(row id, history id, deps_id, [(out cid, codec, small data), ...]), ...]``."""
        rows = self.conn.execute(_CANDIDATES_SQL, (version_id, history_id, cid, cid)).fetchall()
        return [(row_id, key, deps_id, unpack_outputs(packed)) for row_id, key, deps_id, packed in rows]

    def find_by_history(self, version_id: bytes, history_id: bytes) -> list[tuple]:
        """Stored rows of a call by its history id alone, oldest first: ``[(row id, deps_id,
        packed outputs, integer key), ...]``. One probe of one index, where :meth:`find_calls`
        takes two or three and a sort: most lookups are answered here."""
        rows = self.conn.execute(_HISTORY_SQL, (history_id, version_id)).fetchall()
        known = self._known_keys()
        for row in rows:
            known[row[0]] = row[3]
        if len(rows) > 1:
            rows.sort(key=itemgetter(3))
        return rows

    def find_by_content(self, cid: bytes) -> list[tuple]:
        """Stored rows with this content id under a history of their own: ``[(integer key,
        row id, history id, deps_id, [(out cid, codec, small data), ...]), ...]``.

        With :meth:`find_by_history` of a call whose history id is its content id (its
        arguments are plain values), these are :meth:`find_calls`' rows, with one probe of a
        small index instead of probing the history index a second time: in a large storage
        each probe of that index reads a leaf of its own (~5 µs of a miss at 1M calls).
        """
        rows = self.conn.execute(_CONTENT_SQL, (cid,)).fetchall()
        known = self._known_keys()
        for row in rows:
            known[row[1]] = row[0]
        return [(key, row_id, history, deps_id, unpack_outputs(packed)) for key, row_id, history, deps_id, packed in rows]

    def _known_keys(self) -> dict[bytes, int]:
        """``known_keys``, dropped whole first once past its bound: a process that only loads
        stored calls (no commit of new ones) remembers the key of each call it looks up."""
        if len(self.known_keys) > _KNOWN_KEYS_MAX:
            self.known_keys.clear()
        return self.known_keys

    def pending_source(self, state: bytes) -> tuple | None:
        """The source text of a fingerprint buffered but not yet flushed."""
        rows, width = self.rows["sources"], FIELDS["sources"]
        states = rows[::width]
        if state not in states:
            return None
        return (rows[states.index(state) * width + 2],)

    def has_calls(self, version_id: bytes) -> bool:
        """Whether any call of this op version is stored (one index probe, unlike a count)."""
        return self.conn.execute(_ANY_SQL, (version_id,)).fetchone() is not None

    def calls_sharing_inputs(self, version_id: bytes, inputs: dict[str, bytes], limit: int) -> dict[int, int]:
        """Of the version's stored calls given any of ``inputs`` (name -> content id), how many
        of them each was given (at most ``limit`` calls looked at per input), by row id."""
        shared: dict[int, int] = {}
        for name, cid in inputs.items():
            for (call_id,) in self.conn.execute(_SHARING_SQL, (cid, name, version_id, limit)):
                shared[call_id] = shared.get(call_id, 0) + 1
        return shared

    def inputs_of(self, call_id: int) -> dict[str, bytes]:
        """A stored call's inputs: name -> content id."""
        return dict(self.conn.execute(_INPUTS_OF_SQL, (call_id,)).fetchall())

    def count_calls(self, version_id: bytes) -> int:
        """How many calls of this op version are stored."""
        return self.conn.execute(_COUNT_SQL, (version_id,)).fetchone()[0]

    def calls_at_most(self, version_id: bytes) -> int:
        """An upper bound on the stored calls of a version, from two index probes: the span
        of their integer keys (the count itself when no other op's calls are interleaved).

        Counting reads every entry of the version: 0.1 s at 1M calls, paid by each process
        that only asks whether bulk-loading them would be worth it.

        >>> store.calls_at_most(version_id) >= store.count_calls(version_id)   # doctest: +SKIP
        True
        """
        span = self.conn.execute(_SPAN_SQL, (version_id, version_id)).fetchone()[0]
        return span or 0

    def version_index(self, version_id: bytes) -> list[tuple]:
        """``[(history id, cid, row id, deps_id, packed outputs), ...]`` for every stored call of a
        version, oldest first."""
        return self.conn.execute(_INDEX_SQL, (version_id,)).fetchall()

    def changed_elsewhere(self) -> bool:
        """Whether another connection committed since the last time this returned True.

        Polled at most every 50 ms: a call another process commits within that window may be
        computed twice, which the storage tolerates (it is stored once).
        """
        now = time.monotonic()
        if now - self._checked_at < _FRESHNESS_SECONDS:
            return False
        self._checked_at = now
        version = self._read_data_version()
        changed, self._data_version = version != self._data_version, version
        return changed

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see the file as of one moment (one read transaction): a deletion
        another process commits meanwhile is seen whole or not at all.

        >>> with store.snapshot():          # doctest: +SKIP
        ...     calls, values = read_calls(), read_values()
        """
        with self.lock:  # one connection, one transaction: no other thread's write inside
            if self.conn.in_transaction:  # inside a write: already one moment
                yield
                return
            self.conn.execute("BEGIN")
            try:
                yield
            finally:
                self.conn.execute("COMMIT")

    def _read_data_version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def find_value(self, cid: bytes) -> tuple | None:
        """``(codec, data, external)`` of a stored value."""
        return self.conn.execute(_VALUE_SQL, (cid,)).fetchone()

    def find_collection(self, history_id: bytes) -> bytes | None:
        """The content id of the collection a build call of this history id (and no
        dependencies) outputs: the record of a collection's elements (built.elements_rows)."""
        row = self.conn.execute(_COLLECTION_SQL, (history_id,)).fetchone()
        return None if row is None else row[0]

    def find_values(self, cids: list[bytes]) -> dict[bytes, tuple]:
        """``cid -> (codec, data, external)`` of the stored values among ``cids``: one query per
        chunk (the elements of a structure), not one per value."""
        return {cid: tuple(row) for cid, *row in _rows_in(self.conn, _VALUES_SQL, cids)}

    # -- writing -------------------------------------------------------------------------

    def add(self, table: str, row: tuple) -> None:
        """Buffer one row; it reaches the file at the next :meth:`flush`."""
        self.rows[table] += row

    def buffered(self, table: str) -> list[tuple]:
        """The rows buffered for ``table``, as tuples (for the rare readers that filter them)."""
        flat, width = self.rows[table], FIELDS[table]
        return list(zip(*(flat[field::width] for field in range(width))))

    def replace_buffered(self, table: str, rows: list[tuple]) -> None:
        """Buffer exactly ``rows`` (tuples, as from :meth:`buffered`) for ``table``."""
        self.rows[table][:] = itertools.chain.from_iterable(rows)

    def flush(self, before: Callable[[sqlite3.Connection], Any] | None = None) -> None:
        """Write every buffered row in one transaction (retried while another writer holds it).

        ``before(conn)`` runs first inside that transaction; it may edit the buffered rows
        (deletion_watch.py drops those that refer to rows deleted meanwhile). A read-only
        storage buffers no calls, only what describes the ops it was asked about: dropped.
        """
        with self.lock:
            if not any(self.rows.values()):
                return
            if self.read_only:
                for rows in self.rows.values():
                    rows.clear()
                return

            def insert(conn: sqlite3.Connection) -> None:
                if before:
                    before(conn)
                self._insert_pending(conn)

            self.write_transaction(insert)
            for rows in self.rows.values():
                rows.clear()

    def write_transaction(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``body(conn)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``, retrying on lock errors."""
        if self.read_only:
            raise ReadOnlyStorageError(
                f"{self.path} is read-only (its file, directory or mount cannot be written): "
                "stored calls load, but nothing can be written, deleted or collected"
            )
        with self.lock:
            self.conn.execute(_WRITE_CACHE)
            try:
                return self._in_write_transaction(body)
            finally:
                self.conn.execute(_READ_CACHE)

    def _in_write_transaction(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
        # BEGIN inside the try: an interrupt right after it must roll back too, else the
        # transaction stays open and every later BEGIN fails.
        try:
            retry_locked(lambda: self.conn.execute("BEGIN IMMEDIATE"))  # (a -shm SQLite cannot write, say)
            result = body(self.conn)
            self.conn.execute("COMMIT")  # may fail too (a full disk): then roll back
        except BaseException as exc:
            if self.conn.in_transaction:  # SQLite rolls back by itself on some errors
                self.conn.execute("ROLLBACK")
            self._raise_write_error(exc)
            raise
        if self.log is not None and not os.path.exists(self.log):
            _save_a_deleted_log(self.conn)
        return result

    def _raise_write_error(self, exc: BaseException) -> None:
        """Raise, for ``exc`` met in a write, an error naming the file where SQLite's names
        none: a full disk, files SQLite cannot use. Anything else (lock errors too: their
        callers retry them, or say the file is busy) is left to the caller to raise as it is."""
        full = full_disk_error(exc, self.path)
        if full is not None:
            raise full from exc
        if is_file_trouble(exc):
            raise unusable_files_error(exc, self.path, "writing") from exc

    def buffer_marks(self) -> tuple[int, ...]:
        """Where each table's buffer ends now: :meth:`truncate_buffers` goes back to it."""
        return tuple(map(len, self.rows.values()))

    def truncate_buffers(self, marks: tuple[int, ...]) -> list[bytes]:
        """Drop the rows buffered since ``marks``; returns the cids of the values dropped."""
        vals = self.rows["vals"][marks[_VALS_AT] :: FIELDS["vals"]]
        for rows, mark in zip(self.rows.values(), marks):
            del rows[mark:]
        return vals

    def drop_rows_of(self, row_id: bytes | None) -> None:
        """Drop the rows of call ``row_id`` buffered last, however many of them were (a
        KeyboardInterrupt may stop the buffering of a call between any two of its rows)."""
        for table in _BY_CALL_ID:
            rows, width = self.rows[table], FIELDS[table]
            while len(rows) >= width and rows[-width] == row_id:
                del rows[-width:]

    def drop_call_rows(self) -> None:
        """Drop the buffered calls and values (after a failed flush); the rows describing ops,
        versions and dependencies stay buffered for the next one, which they are written with."""
        for table in (*_BY_CALL_ID, "vals"):
            self.rows[table].clear()

    def record_file_digest(self, cid: bytes, file_digest: bytes, size: int) -> None:
        """Record the digest of a value's rewritten file (a corrupt one, repaired)."""
        self.write_transaction(lambda conn: value_rows.record_file_digest(conn, cid, file_digest, size))

    def replace_placeholders(self, flat: list) -> None:
        """Store values in place of transient placeholders (value_rows.replace_placeholders)."""
        self.write_transaction(lambda conn: value_rows.replace_placeholders(conn, flat))

    def restore_value_bytes(self, cid: bytes, data: bytes) -> None:
        """Store again, in its row, the bytes of a value whose ``val_bytes`` row was lost."""
        self.write_transaction(lambda conn: value_rows.restore_bytes(conn, cid, data))

    def close(self) -> None:
        self.conn.close()
        self.conn = cast(sqlite3.Connection, ClosedConnection(str(self.path or "the in-memory storage")))
        if self.path is not None:
            self._release()

    def _insert_pending(self, conn: sqlite3.Connection) -> None:
        for table, rows in self.rows.items():
            if rows and table not in _BY_CALL_ID:
                if table == "vals":
                    _insert_values(conn, _in_key_order(rows, FIELDS[table]), set(self.rows["outputs"][2::3]))
                    continue
                _insert_rows(conn, table, rows)
        calls, inputs, outputs = self.rows["calls"], self.rows["inputs"], self.rows["outputs"]
        if not calls and not inputs and not outputs:
            return
        ids = _insert_calls(conn, calls)
        # Fields: inputs (row id, name, cid, src row id, src index), outputs (row id, idx, cid).
        in_calls, sources, out_calls = inputs[0::5], inputs[3::5], outputs[0::3]
        _resolve_ids(conn, ids, in_calls + out_calls + sources, self.known_keys)
        self._known_keys().update(ids)
        # Copies with the calls' integer keys in place of row ids: the buffer stays intact
        # should this fail.
        inputs, outputs = inputs.copy(), outputs.copy()
        inputs[0::5] = [ids[hid] for hid in in_calls]
        inputs[3::5] = [None if src is None else ids.get(src, 0) for src in sources]
        outputs[0::3] = [ids[hid] for hid in out_calls]
        _insert_rows(conn, "inputs", inputs)
        _insert_rows(conn, "outputs", outputs)

    # -- opening -------------------------------------------------------------------------

    def _checked_connection(self) -> sqlite3.Connection:
        if self.path is None:
            return self._connect()
        real = os.path.realpath(self.path)
        with _OPENING:  # no thread reads the header while another connects (see _OPEN)
            if not self.read_only:  # (before any connection here, which would make a new -shm)
                _refuse_a_deleted_log(Path(real), open_here=_OPEN[real] > 0)
            _check_existing_file(self.path, header=not _OPEN[real])
            if not self.read_only:
                _refuse_a_deleted_files_log(self.path, open_here=_OPEN[real] > 0)
            conn = self._connect()
            _OPEN[real] += 1
        self._release = weakref.finalize(self, _closed, real)
        return conn

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False: the
        # threads that share a Storage use its connection in turn (under self.lock).
        options: dict[str, Any] = dict(isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000)
        if self.path is not None and self.read_only:  # (read-only implies a path)
            if not self.path.exists():
                self._refuse_read_only("does not exist")
            conn = read_only_connection(self.path, **options)
        else:
            conn = sqlite3.connect(":memory:" if self.path is None else str(self.path), **options)
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        # SQLite's default page cache (2 MB) for reading: a cold process looking calls up
        # reuses its few hundred page buffers, where a 64 MB cache touched fresh memory for
        # every page read (a page fault each). Writes take a larger one: see _WRITE_CACHE.
        conn.execute(_READ_CACHE)
        # No mmap: a page fault per page read cost more than the pread() it replaces (with
        # 4 KiB pages), and in a 6 GB file of 10M calls three times more (65 µs a new-process
        # hit against 21).
        conn.execute("PRAGMA mmap_size = 0")
        # 4 KiB pages. What of a row does not fit in its page goes to overflow pages, each a
        # whole page: with 16 KiB pages an 8 kB value (1,000 float64s) took 19.6 kB of file,
        # with 4 KiB 8.7 kB. And a commit writes every page its inserts touched, which for
        # inserts scattered by hash keys is a page per insert: smaller pages write less. Only
        # takes effect on a new file, before WAL mode is set; existing files keep theirs.
        conn.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
        if self.path is not None and not self.read_only:
            retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            # NORMAL in WAL mode survives process crashes (kill -9); only power loss can drop the
            # last transactions, and then the file is still consistent.
            conn.execute("PRAGMA synchronous = NORMAL")
            # Hash indexes scatter inserts, so each commit dirties many pages; a longer log (40
            # MB, not SQLite's 4 MB default) lets one checkpoint copy a page dirtied by several
            # commits once, instead of checkpointing inside nearly every large commit.
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA wal_autocheckpoint = {40_000_000 // page_size}")

    def _ensure_schema(self) -> None:
        if self.read_only:
            self._check_readable()
        elif not self._has_schema():
            self.write_transaction(lambda conn: self._create_schema())
        elif _read_format(self.conn) != FORMAT:
            self.write_transaction(lambda conn: self._upgrade())
        elif not _has_index(self.conn, INEXACT_INDEX_NAME):
            self.write_transaction(lambda conn: self._add_inexact_index())

    def _check_readable(self) -> None:
        """A read-only file must be complete as it is: creating or upgrading it writes."""
        if not self._has_schema():
            self._refuse_read_only("is still being created by another process")
        readable = (FORMAT, *migrations.READABLE_AS_IS)
        if _read_format(self.conn) not in readable or not _has_table(self.conn, "call_tombstones"):
            found = _read_format(self.conn)
            self._refuse_read_only(f"has storage format {found!r}, to be upgraded to {FORMAT!r}")

    def _refuse_read_only(self, problem: str) -> None:
        raise ReadOnlyStorageError(
            f"{self.path} {problem}, but its file, directory or mount is read-only; "
            "open it once where it can be written"
        )

    def _upgrade(self) -> None:
        found = _read_format(self.conn)  # again, under the write lock: another process may be done
        if found != FORMAT:
            migrations.upgrade(
                self.conn, self.path, found, FORMAT, _create_call_tables,
                migrations.Rekeying(BUCKET_COLUMNS, RANDOM_KEY_INDEXES, _write_planner_statistics, INEXACT_INDEX),
            )
            _add_tombstones(self.conn)  # format 5 as first written lacked them

    def _add_inexact_index(self) -> None:
        if _has_index(self.conn, INEXACT_INDEX_NAME):  # again, under the write lock
            return
        sys.stderr.write(f"mandala_ast: adding an index of the calls not exact to {self.path} (once) ...\n")
        self.conn.execute(INEXACT_INDEX)
        _write_planner_statistics(self.conn)

    def _has_schema(self) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mandala_meta'"
        return self.conn.execute(query).fetchone() is not None

    def _create_schema(self) -> None:
        if self._has_schema():  # another process created it meanwhile
            return
        # Plain SQL, not sqlite-utils: it imports pandas (0.4 s, 40k objects), which made
        # every later garbage collection of a memoizing process six times slower.
        for statement in _SMALL_TABLES:
            self.conn.execute(statement)
        renames.add_tables(self.conn)
        self.conn.execute(file_deps.TABLE)
        # Every miss writes these: each b-tree an insert touches costs microseconds. WITHOUT
        # ROWID keeps values, inputs and outputs in their primary-key b-tree alone, and the
        # partial indexes skip the rows that would add nothing.
        for statement in value_rows.SCHEMA:
            self.conn.execute(statement)
        _create_call_tables(self.conn)
        self.conn.execute("INSERT INTO mandala_meta VALUES ('format', ?)", (FORMAT,))


_SMALL_TABLES = (
    "CREATE TABLE mandala_meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE ops (name TEXT PRIMARY KEY, nout INTEGER, signature TEXT)",
    "CREATE TABLE versions (version_id BLOB PRIMARY KEY, op_name TEXT, version INTEGER,"
    " created_at REAL, fingerprint BLOB,"
    " canonical BLOB)",  # set by accept_change: calls are stored under that version
    "CREATE TABLE dep_sets (deps_id BLOB, name TEXT, kind TEXT, state BLOB, PRIMARY KEY (deps_id, name))",
    "CREATE TABLE sources (state BLOB PRIMARY KEY, name TEXT, source TEXT, created_at REAL)",
    "CREATE INDEX idx_sources_name ON sources (name)",
    "CREATE TABLE defaults (op_name TEXT, param TEXT, cid BLOB, PRIMARY KEY (op_name, param))",
    "CREATE TABLE accepted (name TEXT, old_state BLOB, new_state BLOB, PRIMARY KEY (name, old_state, new_state))",
)
# A call deleted while inputs of surviving calls name it as their source (delete_calls with
# dependents=False) keeps its integer key here. Computed again (same row id, column hid), it
# gets that key back, so those calls are computed from it again, as when sources were row ids
# (format 4): else queries, provenance and deletions lost the link for good. And no other
# call ever gets that key.
_TOMBSTONES_TABLE = "CREATE TABLE call_tombstones (id INTEGER PRIMARY KEY, hid BLOB NOT NULL UNIQUE)"
# A source that is not stored is still a call (never a literal, NULL): its row id if known.
_INPUTS_VIEW = (
    "CREATE VIEW inputs AS SELECT c.hid AS call_hid, i.name AS name, i.cid AS cid,"
    " COALESCE(s.hid, t.hid) AS src_call, i.src_index AS src_index"
    " FROM call_inputs i JOIN calls c ON c.id = i.call_id LEFT JOIN calls s ON s.id = i.src_call"
    " LEFT JOIN call_tombstones t ON t.id = i.src_call"
)
#: Calls per bucket of the index of row ids (2 ** 14).
BUCKET_BITS = 14
#: The indexes format 9 keyed anew. Once a b-tree keyed by random 32-byte hashes has many
#: more leaves than a commit has calls, every entry dirties a leaf of its own, written to the
#: log and again into the file: at 1M calls five such trees made a miss 5x dearer than at 1k
#: (docs/architecture.md, "Why a miss costs more in a large file"). Two of them go:
#:
#: - the unique index of row ids: a row id hashes the history id and the dependency state,
#:   so the history index, unique over both, keeps each call once;
#: - the index of row ids, looked up by no miss or hit, leads with the call's integer key
#:   over 2 ** BUCKET_BITS (the generated column ``bucket``: BUCKET_COLUMNS). New entries
#:   land in the last bucket's few hundred leaves, which stay in the cache, and a lookup by
#:   row id alone becomes a skip-scan, one probe per bucket (~0.9 ms at 1M calls, warm;
#:   SQLite picks it from _PLANNER_STATISTICS). It serves what users name by row id
#:   (provenance, delete_calls, a call's times) and sources stored earlier (which the store
#:   resolves from the keys it has seen first: SQLiteStore.known_keys).
#:
#: The history index, which every lookup probes, and the indexes of input and output
#: contents, which queries, provenance and deletion probe once a row or a value (calls that
#: uncompiled code stored name their inputs by content), stay keyed by the hash alone; so do
#: values (val_rows).
RANDOM_KEY_INDEXES = (
    "CREATE UNIQUE INDEX idx_calls_key ON calls (lkey, deps_id)",
    "CREATE INDEX idx_calls_hid ON calls (bucket, hid)",
)
#: The ``bucket`` column of the calls table, by the integer key it divides. A column,
#: not an index on the expression: SQLite 3.40 joins through a Bloom filter on such an index
#: and finds no row (test_store.py's deletion by row id). Nor does the column let a join probe
#: these indexes by hash from an inner loop: SQLite 3.40 filters that skip-scan through a
#: Bloom filter keyed by the bucket too, and finds no call past the first 16,384; statements
#: look the hash up in a subquery of its own instead (deletion.py, lone_elements.py).
#: VIRTUAL, so a format-8 file gets it by ALTER TABLE without rewriting a row (migrations.py).
BUCKET_COLUMNS = {"calls": f"bucket INTEGER GENERATED ALWAYS AS (id >> {BUCKET_BITS}) VIRTUAL"}
#: A version's calls stored without every input's history (uncompiled code): the few a
#: store made by compiled code has are found without reading its other calls, as a query
#: with a call under an ``if`` asks (query/tracked.py; at 1M calls, 0.3 ms instead of 0.2-0.4 s).
#: Appended to in order, as idx_calls_version is. Not a format of its own: a file of the
#: previous release gets it when this one first opens it where it can write (an index is
#: invisible to that release's statements and kept up to date by its writes, so it still
#: opens the file); migrations.py adds it to the files it upgrades.
INEXACT_INDEX_NAME = "idx_calls_inexact"
INEXACT_INDEX = f"CREATE INDEX {INEXACT_INDEX_NAME} ON calls (version_id) WHERE exact = 0"
_CALL_TABLES = (
    # Calls get integer keys (id) in the order they are stored; their hashes live only in
    # indexes. Inputs and outputs are keyed by those ids, so calls computed together
    # (a run block) sit together in every table, and a query joining a million of them walks
    # the files nearly in order instead of searching a b-tree of random 32-byte keys per row.
    "CREATE TABLE calls ("
    " id INTEGER PRIMARY KEY,"
    " version_id BLOB NOT NULL,"
    " lkey BLOB NOT NULL,"  # the call's history id: op version + input histories
    " deps_id BLOB NOT NULL,"  # the dependency state it was computed under
    " hid BLOB NOT NULL,"  # the call's row id: lkey + deps_id
    " cid BLOB NOT NULL,"  # the call's content id: op version + input contents
    " created_at REAL, duration REAL,"
    " exact INTEGER,"  # 1: recorded by compiled code, which knows each input's history
    " outputs BLOB,"  # output cids and small values, packed (runtime/packing.py)
    f" {BUCKET_COLUMNS['calls']})",
    *RANDOM_KEY_INDEXES,
    # Entries sort by (version_id, id): a version's calls come out in the order they were made.
    "CREATE INDEX idx_calls_version ON calls (version_id)",
    INEXACT_INDEX,
    # Lookup by content: a row whose history id equals its content id is found through lkey.
    "CREATE INDEX idx_calls_cid ON calls (cid) WHERE lkey != cid",
    # An input's history is explicit: the call and output index it came from (NULL when raw
    # or unknown), so creator and consumer lookups need no hash of histories.
    "CREATE TABLE call_inputs (call_id INTEGER, name TEXT, cid BLOB, src_call INTEGER, "
    "src_index INTEGER, PRIMARY KEY (call_id, name)) WITHOUT ROWID",
    "CREATE TABLE call_outputs (call_id INTEGER, idx INTEGER, cid BLOB, PRIMARY KEY (call_id, idx)) "
    "WITHOUT ROWID",
    "CREATE INDEX idx_inputs_src ON call_inputs (src_call, src_index) WHERE src_call IS NOT NULL",
    # Queries look calls up by an input's content once a row (a guarded call, a shared
    # variable): that index stays keyed by the hash alone (RANDOM_KEY_INDEXES).
    "CREATE INDEX idx_inputs_cid ON call_inputs (cid)",
    # Output contents too: calls stored by uncompiled code name their inputs by content, and
    # queries, provenance and deletion find each such input's producer by it, once a value.
    "CREATE INDEX idx_outputs_cid ON call_outputs (cid)",
    _TOMBSTONES_TABLE,
    # The same rows named by call hashes, for the readers that think in hids (provenance,
    # tables); SQLite flattens these joins into their queries.
    _INPUTS_VIEW,
    "CREATE VIEW outputs AS SELECT c.hid AS call_hid, o.idx AS idx, o.cid AS cid"
    " FROM call_outputs o JOIN calls c ON c.id = o.call_id",
)

# What SQLite's planner assumes about our tables, written once with the schema instead of
# measured by ANALYZE: without statistics it takes every index for selective, so an op's
# calls (thousands per version) looked as cheap to rescan per row as a lookup by id, and a
# 2-op query over 1M calls ran for minutes. These describe the shape of any storage: many
# calls per version, one row per hash, a few per content id. Fixed numbers also keep plans
# from changing as a storage grows.
_PLANNER_STATISTICS = (
    ("calls", None, "1000000"),
    # The bucketed index (RANDOM_KEY_INDEXES): at least 18 rows a bucket is what makes the
    # planner skip-scan an index whose first column a query does not name. Two buckets, not
    # the 61 of a million calls: it then prices a skip-scan near the lookup it replaced and
    # keeps the plans it made for that. (Bucketing input contents too, priced at 61 probes,
    # made a query with a literal put a Bloom filter over every call before its first row,
    # test_query_plans.py; the suite's plans over row ids are the same either way.)
    ("calls", "idx_calls_key", "1000000 1 1"),
    ("calls", "idx_calls_hid", "1000000 500000 1"),
    ("calls", "idx_calls_version", "1000000 100000"),
    ("calls", "idx_calls_inexact", "1000 100"),  # (few: a store of compiled calls has none)
    ("calls", "idx_calls_cid", "1000000 1"),
    ("call_inputs", "call_inputs", "2000000 2 1"),
    ("call_inputs", "idx_inputs_cid", "2000000 10 2 1"),
    ("call_inputs", "idx_inputs_src", "1000000 2 1"),
    ("call_outputs", "call_outputs", "1000000 1 1"),
    ("call_outputs", "idx_outputs_cid", "1000000 2 1 1"),
    ("val_rows", "val_rows", "1000000 1"),
)


def _add_tombstones(conn: sqlite3.Connection) -> None:
    """Add call_tombstones to a format-5 file written before it existed."""
    if not _has_table(conn, "call_tombstones"):  # again, under the write lock
        conn.execute(_TOMBSTONES_TABLE)
        conn.execute("DROP VIEW IF EXISTS inputs")
        conn.execute(_INPUTS_VIEW)


def _has_index(conn: sqlite3.Connection, name: str) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
    return conn.execute(query, (name,)).fetchone() is not None


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(query, (name,)).fetchone() is not None


def _create_call_tables(conn: sqlite3.Connection) -> None:
    for statement in _CALL_TABLES:
        conn.execute(statement)
    _write_planner_statistics(conn)


def _write_planner_statistics(conn: sqlite3.Connection) -> None:
    conn.execute("ANALYZE sqlite_master")  # creates sqlite_stat1 (nothing to measure yet)
    conn.execute("DELETE FROM sqlite_stat1")
    conn.executemany("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", _PLANNER_STATISTICS)
    conn.execute("ANALYZE sqlite_master")  # loads them into this connection's planner


_INSERTS = {
    "ops": "INSERT OR REPLACE INTO ops (name, nout, signature) VALUES (?, ?, ?)",
    "versions": "INSERT OR IGNORE INTO versions VALUES (?, ?, ?, ?, ?, ?)",
    "sources": "INSERT OR IGNORE INTO sources VALUES (?, ?, ?, ?)",
    "dep_sets": "INSERT OR IGNORE INTO dep_sets VALUES (?, ?, ?, ?)",
    "accepted": "INSERT OR IGNORE INTO accepted VALUES (?, ?, ?)",
    "defaults": "INSERT OR IGNORE INTO defaults VALUES (?, ?, ?)",
    "vals": "INSERT INTO val_rows VALUES (?, ?, ?, ?, ?)",  # bytes placed first; see _insert_values
    "calls": "INSERT OR IGNORE INTO calls (id, hid, lkey, cid, version_id, deps_id, created_at, "
    "duration, exact, outputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "inputs": "INSERT OR IGNORE INTO call_inputs VALUES (?, ?, ?, ?, ?)",
    "outputs": "INSERT OR IGNORE INTO call_outputs VALUES (?, ?, ?)",
    "file_stats": file_deps.INSERT_SQL,
}
#: Fields per buffered row (SQLiteStore.rows): a call's integer key is added when it is written.
FIELDS = {table: sql.count("?") - (table == "calls") for table, sql in _INSERTS.items()}
_ROWS_PER_STATEMENT = 50
#: Bound parameters per statement: SQLite before 3.32 allows no more than 999.
_MAX_PARAMETERS = 999
#: Buffered with the row ids of their calls; written with the calls' integer keys (see
#: _insert_calls).
_BY_CALL_ID = ("calls", "inputs", "outputs")
_VALS_AT = list(_INSERTS).index("vals")  # the vals buffer's place in SQLiteStore.rows


def _insert_calls(conn: sqlite3.Connection, calls: list) -> dict[bytes, int]:
    """Insert the buffered calls (flat) with the next free integer keys (``calls.id``); return
    ``row id -> key``.

    Ids are handed out here, under the write lock, rather than left to SQLite: an
    ``executemany`` cannot say which ids it assigned. A call another process stored first is
    ignored, and then the ids of the rows that *are* stored are read back.
    """
    width = FIELDS["calls"]
    count = len(calls) // width
    first, tombstones = conn.execute(_NEXT_ID_SQL).fetchone()
    ids: Sequence[int] = range(first, first + count)
    if tombstones:
        ids = _revive(conn, calls[0::width], ids)
    # Each row's fields with its id in front, a column at a time (no tuple per row).
    params: list[Any] = [None] * (count * (width + 1))
    params[0 :: width + 1] = ids
    for field in range(width):
        params[field + 1 :: width + 1] = calls[field::width]
    before = conn.total_changes
    _insert_rows(conn, "calls", params)
    if conn.total_changes - before == count:
        return dict(zip(calls[0::width], ids))
    return {}  # some were stored already, perhaps under other ids: _resolve_ids reads them


def _revive(conn: sqlite3.Connection, hids: list[bytes], ids: Sequence[int]) -> Sequence[int]:
    """``ids`` with the old row id of each tombstoned call among ``hids`` (computed again):
    the inputs that still name that id as their source are computed from it again."""
    found: dict[bytes, int] = dict(_rows_in(conn, _TOMBSTONES_SQL, hids))
    if not found:
        return ids
    conn.executemany("DELETE FROM call_tombstones WHERE id = ?", ((old,) for old in found.values()))
    return [found.get(hid, new) for hid, new in zip(hids, ids)]


def _insert_values(conn: sqlite3.Connection, flat: list, outputs: set[bytes]) -> None:
    """Insert the buffered value rows (fields one after another, in key order); ``outputs``:
    the cids of the buffered calls' outputs. An output's row takes the place of a transient
    op's placeholder under its cid; an argument's does not (value_rows.OVER_PLACEHOLDERS and
    KEEP_ROWS): whether a row there is a placeholder, the Storage that buffered an argument
    may not know, and a transient output passed on must stay unstored."""
    flat = value_rows.place_bytes(conn, flat, outputs)
    width = FIELDS["vals"]
    starts = range(0, len(flat), width)
    if all(flat[start] in outputs for start in starts):  # (a miss's outputs, nothing else)
        _insert_rows(conn, "vals", flat, value_rows.OVER_PLACEHOLDERS)
        return
    for tail, output in ((value_rows.OVER_PLACEHOLDERS, True), (value_rows.KEEP_ROWS, False)):
        rows = [field for start in starts if (flat[start] in outputs) is output for field in flat[start : start + width]]
        _insert_rows(conn, "vals", rows, tail)


def _insert_rows(conn: sqlite3.Connection, table: str, flat: list, tail: str = "") -> None:
    """Insert the rows whose fields ``flat`` lists one after another, one statement per 50
    rows (``VALUES (...), (...)``): each executed statement costs its own step and reset,
    ~2 µs of a ~30 µs miss. The parameters are slices of ``flat``: no tuple per row.
    ``tail`` follows the rows (an upsert clause)."""
    if not flat:
        return
    head, values = _INSERTS[table].split(" VALUES ")
    width = values.count("?")
    step = width * min(_ROWS_PER_STATEMENT, _MAX_PARAMETERS // width)
    whole = len(flat) - len(flat) % step
    if whole:
        statement = f"{head} VALUES {', '.join([values] * (step // width))}{tail}"
        conn.executemany(statement, [flat[start : start + step] for start in range(0, whole, step)])
    if whole < len(flat):
        rest = flat[whole:]
        conn.execute(f"{head} VALUES {', '.join([values] * (len(rest) // width))}{tail}", rest)


def _in_key_order(flat: list, width: int) -> list:
    """Rows (fields one after another, ``width`` per row) sorted by their first field, stably.

    Values are keyed by their content ids, which scatter over the table's b-tree: inserted
    in key order, each insert descends next to the last one instead of anywhere in the file
    (8 kB arrays: ~7 µs less per stored value at 50k values).
    """
    keys = flat[0::width]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ordered: list = [None] * len(flat)
    for field in range(width):
        column = flat[field::width]
        ordered[field::width] = [column[i] for i in order]
    return ordered


def _resolve_ids(conn: sqlite3.Connection, ids: dict[bytes, int], hids: list[bytes | None],
                 known: dict[bytes, int]) -> None:
    """Add the row ids of the stored calls among ``hids`` that ``ids`` lacks: those in
    ``known`` that the file still holds under the same key, then the rest by row id. (Should
    a source call be missing all the same, its inputs row records source 0: some call, never
    a literal.)"""
    missing = list({hid for hid in hids if hid is not None and hid not in ids})
    ids.update(_checked_keys(conn, {known[hid]: hid for hid in missing if hid in known}))
    ids.update(_rows_in(conn, _IDS_SQL, [hid for hid in missing if hid not in ids]))


def _checked_keys(conn: sqlite3.Connection, guessed: dict[int, bytes]) -> Iterator[tuple[bytes, int]]:
    """``(row id, key)`` for each guess ``key -> row id`` that the file holds: one probe by
    integer key each, where a lookup by row id probes every bucket."""
    for key, hid in _rows_in(conn, _HIDS_SQL, list(guessed)):
        if guessed[key] == hid:
            yield hid, key


def _rows_in(conn: sqlite3.Connection, sql: str, items: list) -> Iterator[tuple]:
    """The rows of ``sql``, whose ``IN ({marks})`` takes ``items``, IN_CHUNK at a time."""
    for start in range(0, len(items), IN_CHUNK):
        chunk = items[start : start + IN_CHUNK]
        yield from conn.execute(sql.format(marks=", ".join("?" * len(chunk))), chunk)


def full_disk_error(exc: BaseException, path: Path | None) -> StorageFullError | None:
    """The StorageFullError for ``exc`` if it says the disk (or quota) is full, else None.

    >>> full_disk_error(OSError(errno.ENOSPC, "No space left on device"), Path("x.db"))
    StorageFullError('no space left on the disk holding x.db ([Errno 28] No space left on device); ...')
    """
    if isinstance(exc, StorageFullError):
        return exc
    if isinstance(exc, OSError):
        full = exc.errno in _FULL_ERRNOS
    elif isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
        full = code == sqlite3.SQLITE_FULL if code is not None else "disk is full" in str(exc)  # type: ignore[attr-defined]
    else:
        return None
    if not full:
        return None
    return StorageFullError(
        f"no space left on the disk holding {path or 'the storage'} ({exc}); nothing of this "
        "write was stored, earlier commits are intact: free space and run again"
    )


_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
#: Errors of a value file that cannot be written where the database can (a read-only mount).
_CANNOT_WRITE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def value_file_error(exc: OSError, path: Path) -> StorageFullError | ReadOnlyStorageError | None:
    """The error naming ``path`` for a value file that could not be written: a full disk, or a
    directory that cannot be written (a read-only mount); None for any other ``exc``.

    >>> print(value_file_error(OSError(errno.EROFS, "Read-only file system"), Path("run.db.blobs/ab/ab12")))
    cannot write the value file run.db.blobs/ab/ab12 (Read-only file system): the database is writable, its value files' directory is not
    """
    full = full_disk_error(exc, path)
    if full is not None:
        return full
    if exc.errno in _CANNOT_WRITE:
        return ReadOnlyStorageError(
            f"cannot write the value file {path} ({exc.strerror}): the database is writable, its "
            "value files' directory is not"
        )
    return None


def _raise_opening_error(exc: BaseException, path: Path | None) -> None:
    """Raise an error naming the file for SQLite's ``exc`` met while opening the storage at
    ``path`` (a full disk, a lock held through every retry, files it cannot use); anything
    else is left to the caller to raise as it is."""
    full = full_disk_error(exc, path)
    if full is not None:
        raise full from exc
    if isinstance(exc, sqlite3.OperationalError) and is_lock_error(exc):
        raise StorageBusyError(
            f"{path} stayed locked by other processes through every retry while opening it ({exc}); try again"
        ) from exc
    if is_file_trouble(exc):
        raise unusable_files_error(exc, path, "opening it") from exc


#: SQLite's primary result codes for files it cannot use: SQLITE_PERM, SQLITE_READONLY,
#: SQLITE_IOERR, SQLITE_CANTOPEN; and their messages, for Pythons without ``sqlite_errorcode``.
_FILE_TROUBLE_CODES = (3, 8, 10, 14)
_FILE_TROUBLE_TEXTS = ("disk I/O error", "unable to open database file", "readonly database", "access permission denied")


def is_file_trouble(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite failing to use the file or its log (not a lock, not a
    mistake in a statement).

    >>> is_file_trouble(sqlite3.OperationalError("disk I/O error"))
    True
    """
    return sqlite_error_is(exc, sqlite3.OperationalError, _FILE_TROUBLE_CODES, _FILE_TROUBLE_TEXTS)


def unusable_files_error(exc: BaseException, path: Path | None, doing: str) -> StorageFormatError:
    """SQLite could not use the file or its log (a directory in place of ``-wal`` or
    ``-shm``, an I/O error): its own message names no file.

    >>> print(unusable_files_error(sqlite3.OperationalError("disk I/O error"), Path("run.db"), "writing"))
    cannot use the storage run.db while writing (SQLite: disk I/O error): check that run.db, run.db-wal and run.db-shm are regular files this process may read and write
    """
    return StorageFormatError(
        f"cannot use the storage {path} while {doing} (SQLite: {exc}): check that {path}, {path}-wal "
        f"and {path}-shm are regular files this process may read and write"
    )


def read_only_connection(path: Path, **options: Any) -> sqlite3.Connection:
    """A connection that never writes to ``path`` or beside it.

    A WAL-mode file is read through its ``-shm`` index: when that cannot be created (a
    read-only directory or mount, and no writer has the file open), the file is opened as
    immutable, a snapshot of what was last checkpointed into it.
    """
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, **options)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if not path.exists():
            raise
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, **options)


#: The longest file name most file systems take (ext4, XFS, APFS, NTFS, tmpfs), in bytes.
_NAME_MAX = 255
#: The longest suffix of the files kept beside a storage's (SQLite's while it creates one).
_LONGEST_SUFFIX = "-journal"


def _check_name_length(path: Path) -> None:
    """Refuse a file name with no room for the files SQLite keeps beside it (``-journal``,
    ``-wal``) and the value files' directory (``.blobs``): SQLite says only "unable to open
    database file", and a name longer than the file system takes is a raw OSError."""
    length = len(os.fsencode(path.name))
    if length + len(_LONGEST_SUFFIX) > _NAME_MAX:
        raise StorageFormatError(
            f"cannot use the storage {path}: its file name is {length} bytes long, and the files "
            f"kept beside it add up to {len(_LONGEST_SUFFIX)} ({path.name}{_LONGEST_SUFFIX}); file names "
            f"take {_NAME_MAX} bytes at most: choose a name of at most {_NAME_MAX - len(_LONGEST_SUFFIX)} bytes"
        )


def _writable(path: Path) -> bool:
    """Whether the storage can be written: its file and its directory (for -wal, -shm and
    blobs). os.access honours read-only mounts even for root, whom chmod does not stop."""
    if path.exists() and not os.access(path, os.W_OK):
        return False
    directory = path.parent
    return os.access(directory, os.W_OK) or not directory.exists()


def _prepare_path(path: Path) -> None:
    """Create the missing directories of a new storage's path, as ``Storage("results/run.db")``
    reads; refuse a path whose directory cannot be one (a file is in the way)."""
    parent = path.parent
    if parent.is_dir():
        return
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        in_the_way = next(p for p in (parent, *parent.parents) if p.exists())
        raise StorageFormatError(
            f"cannot create the storage {path}: {in_the_way} is a file, not a directory"
        ) from exc
    except OSError as exc:  # read-only file system, permissions, ...
        raise StorageFormatError(
            f"cannot create the storage {path}: cannot create {exc.filename} ({exc.strerror})"
        ) from exc


#: Tables every flat file `mandala-ast export` writes has (export.py), a storage none of.
_FLAT_EXPORT_TABLES = frozenset({"call_index", "edges", "ops", "values"})


def _check_existing_file(path: Path, *, header: bool = True) -> None:
    """Refuse corrupt or foreign files before anything could write to them. ``header``:
    also read the first bytes with plain file I/O (never while this process has the file
    open through SQLite, see _OPEN)."""
    if path.is_dir():
        raise StorageFormatError(f"{path} is a directory, not a storage file")
    if not path.exists():
        return
    if not stat.S_ISREG(path.stat().st_mode):  # SQLite would block on a pipe, misuse a device
        raise StorageFormatError(f"{path} is not a regular file (a device, pipe or socket), not a storage file")
    if path.stat().st_size == 0:
        return
    if header:
        _check_header(path)
    try:
        conn = read_only_connection(path)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            fmt = _read_format(conn) if "mandala_meta" in tables else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if is_damage(exc) and "not a database" not in str(exc):
            raise damaged_error(path, exc, "opening it", opened=False) from exc
        raise StorageFormatError(f"{path} is not a mandala_ast storage ({exc}); left untouched") from exc
    if not tables:  # no schema yet: another process is creating this storage right now
        return
    if "mandala_meta" not in tables and _FLAT_EXPORT_TABLES <= tables:
        raise StorageFormatError(
            f"{path} is a flat export (written by `mandala-ast export`), not a storage: its calls are "
            "in the storage it was exported from; left untouched"
        )
    if "mandala_meta" not in tables:
        raise StorageFormatError(
            f"{path} is a SQLite database of another program (tables: {', '.join(sorted(tables)) or 'none'}); "
            "left untouched. Give Storage a new file name."
        )
    if fmt != FORMAT and fmt not in migrations.UPGRADABLE:
        raise StorageFormatError(f"{path} has storage format {fmt!r}; this mandala_ast reads {FORMAT!r}{_newer(fmt)}")


def _newer(fmt: Any) -> str:
    """Which side is old, where a newer release wrote the file (a colleague's, a cluster's)."""
    kind, _, number = str(fmt).rpartition("/")
    if kind != "mandala_ast" or not number.isdigit() or int(number) <= int(FORMAT.rpartition("/")[2]):
        return ""
    return (": it was written by a newer release of mandala_ast; upgrade this one "
            "(`pip install -U mandala_ast`) to read it. It is left untouched")


def _refuse_a_deleted_files_log(path: Path, *, open_here: bool) -> None:
    """Refuse to make a storage where a deleted one is still open (``rm results.db`` while a
    job runs): its ``-wal`` and ``-shm`` stay behind in use, and SQLite would read that job's
    log as the new file's pages ("disk I/O error", or rows of the deleted file), and the job
    would go on writing into it. A log nobody holds (its process was killed) is only stale:
    SQLite starts it afresh.

    A live storage is never empty: WAL mode is set by writing its first page, before its
    ``-wal`` or ``-shm`` exist. So ``-shm`` beside a missing or empty file is a deleted one's.
    ``open_here``: this process has a file at that path open (a Storage not yet collected):
    not checked, as before. Looking would open and close the ``-shm``, and closing any
    descriptor of a file drops every POSIX lock the process holds on it, that Storage's too;
    and within one process SQLite resets the log for the new file anyway.
    """
    shm = Path(f"{path}-shm")
    if open_here or not shm.exists() or not _empty(path):
        return
    if _held_by_another_process(shm) and _empty(path):  # (created meanwhile: fine)
        raise StorageBusyError(
            f"{path} was deleted while a process still has it open: its log {path}-wal and "
            f"{shm} are still in use by it, and a new storage there would mix its pages with "
            "that process's. Let that process finish (or stop it), or choose another file name"
        )


def _refuse_a_deleted_log(path: Path, *, open_here: bool) -> None:
    """Refuse to open a storage whose ``-wal`` or ``-shm`` was deleted while another process
    has it open (a clean-up script, ``rm results.db-*``); ``path`` is the file's real path
    (SQLite keeps them beside the file a symlink leads to). That process goes on logging into
    the deleted files; a new connection would start a log of its own over the same pages, and
    whichever checkpointed last would overwrite the other's commits.

    While open, a connection holds a shared lock on the database file and on its ``-shm``.
    Either lock without the file beside it is also seen for a moment while a connection opens
    or the last one closes: it is looked at again before refusing. ``open_here``: as for
    :func:`_refuse_a_deleted_files_log` (and SQLite shares this process's log between its
    connections).
    """
    if open_here or not path.is_file() or _empty(path):
        return
    for _ in range(_LOG_LOOKS):
        if not _log_deleted_under_another_process(path):
            return
        time.sleep(0.05)
    raise StorageBusyError(
        f"{path}-wal or {path}-shm was deleted while a process still has {path} open: it goes on "
        "using the deleted files, and a storage opened beside it would overwrite that process's "
        "calls (or lose its own). Let that process finish (its calls are then in the file), or stop it"
    )


#: How many times a deleted log is seen before it is believed (see _refuse_a_deleted_log).
_LOG_LOOKS = 5


def _log_deleted_under_another_process(path: Path) -> bool:
    shm = Path(f"{path}-shm")
    if not shm.exists():
        return _locked_by_another_process(path, _DB_SHARED_BYTES, _DB_SHARED_FIRST)
    return not Path(f"{path}-wal").exists() and _held_by_another_process(shm)


#: The bytes of a database file every connection holds a shared lock on while it reads, which
#: a connection in WAL mode never lets go of while open (os_unix.c: SHARED_FIRST, SHARED_SIZE).
_DB_SHARED_FIRST, _DB_SHARED_BYTES = 0x40000000 + 2, 510


def _save_a_deleted_log(conn: sqlite3.Connection) -> None:
    """After a commit whose log is no longer beside the file (deleted while open, see
    :func:`_refuse_a_deleted_log`): copy the log into the file, where the next process finds
    its calls; otherwise they die with this process (a kill -9 loses every call the log
    held). A checkpoint that cannot copy everything now (a reader) leaves the rest to the next
    commit's, as does one that fails: the commit itself is done."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.OperationalError:
        pass


def _empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except FileNotFoundError:
        return True


def _held_by_another_process(shm: Path) -> bool:
    """Whether a connection in another process has this ``-shm`` open: each holds a shared
    POSIX lock on its "dead man switch" byte (SQLite's unix VFS, byte 128) while it does."""
    return _locked_by_another_process(shm, 1, _SHM_DMS_BYTE)


def _locked_by_another_process(path: Path, length: int, start: int) -> bool:
    """Whether another process holds a POSIX lock on these bytes of the file (never asked
    while this process has it open: see the caller)."""
    try:
        import fcntl
    except ImportError:  # Windows: SQLite locks there another way; not checked
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # gone meanwhile, or read-only: SQLite will not reset it either
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start)
    except OSError as exc:  # (a file system without locks says ENOLCK: not held, as far as anyone knows)
        return exc.errno in (errno.EAGAIN, errno.EACCES)
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, length, start)
        return False
    finally:
        os.close(fd)  # drops this process's locks on the file: it has none (see the caller)


#: The byte of a ``-shm`` file every connection using it holds a shared lock on (os_unix.c:
#: UNIX_SHM_DMS = (22 + SQLITE_SHM_NLOCK) * 4 + SQLITE_SHM_NLOCK, with SQLITE_SHM_NLOCK = 8).
_SHM_DMS_BYTE = 128


def _check_header(path: Path) -> None:
    """Refuse non-SQLite and truncated files from the 100-byte header alone: even a read-only
    connection leaves -wal/-shm files beside a WAL-mode file, and SQLite ignores a partial page."""
    with open(path, "rb") as handle:
        header = handle.read(100)
    size = path.stat().st_size
    page_size = int.from_bytes(header[16:18], "big") if len(header) == 100 else 0
    page_size = 65536 if page_size == 1 else page_size
    if not header.startswith(b"SQLite format 3\x00") or page_size < 512 or page_size & (page_size - 1):
        raise StorageFormatError(f"{path} is not a mandala_ast storage (not a SQLite database); left untouched")
    pages = int.from_bytes(header[28:32], "big")  # valid when the two change counters agree
    journal = Path(f"{path}-wal").exists() or Path(f"{path}-journal").exists()
    if size % page_size or (header[24:28] == header[92:96] and pages * page_size > size and not journal):
        raise StorageFormatError(
            f"{path} is truncated or corrupt ({size} bytes, header says {pages} pages of "
            f"{page_size}); left untouched"
        )


def _read_format(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM mandala_meta WHERE key = 'format'").fetchone()
    return row[0] if row else None


def is_lock_error(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is SQLite saying another connection holds the lock ("database is
    locked", "database table is locked", SQLITE_BUSY): worth retrying, not a failure.

    >>> is_lock_error(sqlite3.OperationalError("database is locked"))
    True
    """
    text = str(exc)
    return "locked" in text or "busy" in text


def retry_locked(action: Callable[[], Any]) -> Any:
    """``action()``, tried again after a short random pause while another connection holds
    the lock (SQLite's busy timeout does not cover every statement, e.g. a WAL switch)."""
    for attempt in range(_LOCK_RETRIES):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not is_lock_error(exc) or attempt == _LOCK_RETRIES - 1:
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))

