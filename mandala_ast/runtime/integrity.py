"""Is the storage intact? Damaged database pages as clear errors, and ``storage.verify()``.

SQLite reports a damaged page only when a statement reads it, as a bare
``sqlite3.DatabaseError: database disk image is malformed``, possibly long after the file was
opened. :func:`damage_as_error` turns that, wherever it surfaces, into a
:class:`StorageFormatError` that says the file is damaged and how to check it.
:func:`verify` checks everything at once: SQLite's own ``PRAGMA integrity_check``, every
value file against the digest recorded for it, files no row names, and rows that name a call
or value the file does not hold.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from .._errors import StorageFormatError
from .blobs import STRAY_AFTER_SECONDS, BlobFault
from .built import BUILD_OP_NAME
from .structures import ITEM_OP_NAME
from .value_rows import IN_VAL_BYTES

if TYPE_CHECKING:
    from .blobs import BlobDir
    from .store import SQLiteStore

__all__ = [
    "VerifyReport", "damage_as_error", "damaged_error", "describe_consumer", "describe_producer", "describe_value",
    "is_damage", "sqlite_error_is", "verify",
]

# SQLite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB.
_DAMAGE_CODES = (11, 26)
_DAMAGE_TEXTS = ("malformed", "not a database")
_CID_HEX = 64


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying the file's pages are damaged (not a lock or I/O error)."""
    return sqlite_error_is(exc, sqlite3.DatabaseError, _DAMAGE_CODES, _DAMAGE_TEXTS)


def sqlite_error_is(exc: BaseException, kind: type, codes: tuple[int, ...], texts: tuple[str, ...]) -> bool:
    """Whether ``exc`` is a ``kind`` of sqlite3 error with one of the primary result ``codes``
    (Python 3.11+ says which), or, before 3.11, a message holding one of ``texts``.

    >>> sqlite_error_is(sqlite3.OperationalError("disk I/O error"), sqlite3.OperationalError, (10,), ("disk I/O",))
    True
    """
    if not isinstance(exc, kind):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in codes
    return any(text in str(exc) for text in texts)


def damaged_error(path: object, exc: BaseException, doing: str, *, opened: bool = True) -> StorageFormatError:
    """The error to raise for damage met while ``doing`` something with the file at ``path``.

    >>> print(damaged_error("run.db", sqlite3.DatabaseError("database disk image is malformed"), "looking up a call"))
    run.db is damaged (SQLite: database disk image is malformed) while looking up a call. Check the whole file with storage.verify(); restore it from a backup, or salvage what is readable with `sqlite3 run.db .recover`.
    """
    check = "storage.verify()" if opened else f"`sqlite3 {path} 'PRAGMA integrity_check'`"
    return StorageFormatError(
        f"{path} is damaged (SQLite: {exc}) while {doing}. Check the whole file with {check}; "
        f"restore it from a backup, or salvage what is readable with `sqlite3 {path} .recover`."
    )


@contextmanager
def damage_as_error(path: object, doing: str) -> Iterator[None]:
    """Raise :func:`damaged_error` in place of SQLite's damage errors inside the block."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        raise damaged_error(path, exc, doing) from exc


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Storage.verify` found; ``report.ok`` when nothing.

    >>> print(VerifyReport(path="run.db", sqlite=["ok"], files=3))
    run.db: OK (SQLite integrity check ok, 3 value files match their digests, no dangling rows)
    >>> print(VerifyReport(path="run.db", sqlite=["ok"], files=3, missing=["3f2a9c1b0d4e"]))
    run.db: 1 problem
      missing value file: 3f2a9c1b0d4e
    >>> print(VerifyReport(path="run.db", sqlite=["ok"], files=3, orphans=["run.db.blobs/ab/ab12"]))
    run.db: OK (SQLite integrity check ok, 3 value files match their digests, no dangling rows)
      orphan file (storage.gc() removes it): run.db.blobs/ab/ab12
    """

    #: the storage file checked
    path: object
    #: ``PRAGMA integrity_check``'s lines: ``["ok"]`` for an intact database
    sqlite: list[str]
    #: value files checked
    files: int = 0
    #: value files a row names but that are not there (cid hex prefixes)
    missing: list[str] = field(default_factory=list)
    #: value files whose bytes differ from those stored: ``"cid prefix: problem"``
    corrupt: list[str] = field(default_factory=list)
    #: files in the blob directory that no value row names, an hour old or more (paths): left
    #: by an interrupted write or deletion; harmless, and ``storage.gc()`` removes them
    orphans: list[str] = field(default_factory=list)
    #: rows naming a call or value the file does not hold: ``"table: what"``
    dangling: list[str] = field(default_factory=list)
    #: values the database holds whose bytes are not those stored: ``"cid prefix: where"``
    #: (checked for the codecs that decode without running code: JSON, bytes, arrays)
    damaged_values: list[str] = field(default_factory=list)
    #: of each missing value file (by cid prefix): the call that made or took its value, and
    #: its path, for the report's lines
    missing_files: dict[str, str] = field(default_factory=dict)
    #: files no value row names yet, written less than an hour ago (paths): a block still
    #: running writes its value files first and commits their rows later; not a problem
    in_progress: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the storage is intact (orphan files harm nothing, ``gc()`` removes them)."""
        return self.sqlite == ["ok"] and not (self.missing or self.corrupt or self.dangling or self.damaged_values)

    def problems(self) -> list[str]:
        """One line per problem found: what makes ``ok`` False."""
        lines = [f"SQLite: {line}" for line in self.sqlite if line != "ok"]
        lines += [f"missing value file: {cid}{self.missing_files.get(cid, '')}" for cid in self.missing]
        lines += [f"corrupt value file: {text}" for text in self.corrupt]
        lines += [f"dangling row: {text}" for text in self.dangling]
        lines += [f"corrupt value: {text}" for text in self.damaged_values]
        return lines

    def notes(self) -> list[str]:
        """One line per file found that is no problem: orphans, and files being written."""
        lines = [f"orphan file (storage.gc() removes it): {path}" for path in self.orphans]
        lines += [f"value file not committed yet (a block still running may be writing it): {path}"
                  for path in self.in_progress]
        return lines

    def __str__(self) -> str:
        problems = self.problems()
        if not problems:
            files = "1 value file matches its digest" if self.files == 1 else (
                f"{self.files} value files match their digests"
            )
            head = f"{self.path}: OK (SQLite integrity check ok, {files}, no dangling rows)"
        else:
            head = f"{self.path}: {len(problems)} problem{'' if len(problems) == 1 else 's'}"
        return "\n  ".join([head, *problems, *self.notes()])


def verify(store: SQLiteStore, blobs: BlobDir | None) -> VerifyReport:
    """Check the database pages, every value file and the references between rows.

    >>> print(verify(store, blobs))                 # doctest: +SKIP
    run.db: OK (SQLite integrity check ok, 3 value files match their digests, no dangling rows)
    """
    try:
        sqlite = [row[0] for row in store.conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:  # a page so damaged the check itself stops
        if not is_damage(exc):
            raise
        sqlite = [f"the integrity check stopped: {exc}"]
    try:
        files, missing, corrupt, named, missing_files = _check_files(store, blobs)
        dangling = _dangling_rows(store.conn)
        damaged = _damaged_values(store.conn)
    except sqlite3.DatabaseError as exc:  # too damaged to read the rows: integrity_check says why
        if not is_damage(exc):
            raise
        return VerifyReport(store.path or ":memory:", sqlite + [f"rows could not be read: {exc}"])
    orphans, in_progress = _files_without_a_row(blobs, named)
    return VerifyReport(store.path or ":memory:", sqlite, files, missing, corrupt, orphans, dangling, damaged,
                        missing_files, in_progress)


#: Codecs whose bytes decode without running code (no pickle) into a value whose content id is
#: the one it is stored under, exactly (a round trip changes nothing): verify checks them so.
#: A value file has a digest of its bytes; a value the database holds has only its id, and
#: SQLite's integrity check reads the pages' structure, not the bytes of their rows.
_CHECKED_CODECS = ("json", "bytes", "npy")
_HELD_VALUES_SQL = (
    f"SELECT cid, codec, data FROM vals WHERE external = 0 AND codec IN {_CHECKED_CODECS}"
)


def _damaged_values(conn: sqlite3.Connection) -> list[str]:
    """Values held in the database (in their own rows, and inline in their calls' rows, where
    loads read small ones) whose bytes do not give their content id."""
    from .packing import unpack_outputs

    damaged = [f"{cid.hex()[:12]}: its bytes in the database are not those stored"
               for cid, codec, data in conn.execute(_HELD_VALUES_SQL) if not _gives(cid, codec, data)]
    for row_id, packed in conn.execute("SELECT id, outputs FROM calls"):
        damaged += [f"{cid.hex()[:12]}: its bytes in the database (the row of call {row_id}) are not those stored"
                    for cid, codec, data in unpack_outputs(packed)
                    if data is not None and codec in _CHECKED_CODECS and not _gives(cid, codec, data)]
    return damaged


def _gives(cid: bytes, codec: str, data: bytes) -> bool:
    from .codecs import decode
    from .hashing import content_id

    try:
        return content_id(decode(codec, data)) == cid
    except Exception:  # bytes that no longer decode at all
        return False


def _check_files(
    store: SQLiteStore, blobs: BlobDir | None
) -> tuple[int, list[str], list[str], set[str], dict[str, str]]:
    rows = store.conn.execute("SELECT cid, data FROM vals WHERE external = 1").fetchall()
    faults = {}
    for cid, digest in rows:
        assert blobs is not None  # a value is external only in a storage with a blob directory
        try:
            blobs.check(cid, digest, again=True)
        except BlobFault as fault:
            faults[cid] = fault
    faults = _still_faulty(store, blobs, faults) if faults else faults
    missing = [cid.hex()[:12] for cid, fault in faults.items() if fault.missing]
    corrupt = [f"{cid.hex()[:12]}: {fault.problem} ({fault.path})" for cid, fault in faults.items() if not fault.missing]
    # A user months on finds a file gone: which computation it held says what to run again.
    described = {cid.hex()[:12]: f"{describe_value(store.conn, cid)}: {fault.path}"
                 for cid, fault in faults.items() if fault.missing}
    return len(rows), missing, corrupt, {cid.hex() for cid, _ in rows}, described


def _still_faulty(store: SQLiteStore, blobs: BlobDir | None, faults: dict[bytes, BlobFault]) -> dict[bytes, BlobFault]:
    """The faults that hold now. Files are checked long after the rows were listed: another
    process may have deleted a value meanwhile (its file goes too), or deleted and stored it
    again (its file rewritten just after the check). Such a value is no problem."""
    assert blobs is not None
    still: dict[bytes, BlobFault] = {}
    for cid, (_, digest, _) in store.find_values(list(faults)).items():
        try:
            blobs.check(cid, digest, again=True)
        except BlobFault as fault:
            still[cid] = fault
    return still


def _files_without_a_row(blobs: BlobDir | None, named: set[str]) -> tuple[list[str], list[str]]:
    """Files under the blob directory that are not the file of a value row: orphans, and those
    written within the hour gc leaves them (a block writes its value files before it commits
    their rows, and a temp file is there while its value file is written, whichever process
    or host writes it)."""
    if blobs is None or not blobs.root.is_dir():
        return [], []
    cutoff = time.time() - STRAY_AFTER_SECONDS
    orphans: list[str] = []
    in_progress: list[str] = []
    for path in sorted(blobs.root.rglob("*")):
        mtime = _mtime(path)
        if mtime is not None and not _is_named(path, named):
            (in_progress if mtime >= cutoff else orphans).append(str(path))
    return orphans, in_progress


def _mtime(path: Path) -> float | None:
    """A file's modification time; None for a directory, or a file gone meanwhile."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime if S_ISREG(stat.st_mode) else None


def _is_named(path: Path, named: set[str]) -> bool:
    return len(path.name) == _CID_HEX and path.parent.name == path.name[:2] and path.name in named


# (what, SQL counting the offending rows, SQL listing a few)
_DANGLING = (
    ("call_inputs naming a call that is not stored",
     "FROM call_inputs i WHERE NOT EXISTS (SELECT 1 FROM calls c WHERE c.id = i.call_id)"),
    ("call_outputs naming a call that is not stored",
     "FROM call_outputs o WHERE NOT EXISTS (SELECT 1 FROM calls c WHERE c.id = o.call_id)"),
    ("call_inputs naming a value that is not stored",
     "FROM call_inputs i WHERE NOT EXISTS (SELECT 1 FROM vals v WHERE v.cid = i.cid)"),
    ("call_outputs naming a value that is not stored",
     "FROM call_outputs o WHERE NOT EXISTS (SELECT 1 FROM vals v WHERE v.cid = o.cid)"),
    # Source 0 is "some call, which one is lost" by design (store.py): not dangling.
    ("call_inputs whose source call is neither stored nor tombstoned",
     "FROM call_inputs i WHERE i.src_call IS NOT NULL AND i.src_call != 0"
     " AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.id = i.src_call)"
     " AND NOT EXISTS (SELECT 1 FROM call_tombstones t WHERE t.id = i.src_call)"),
)
# The same for the value tables of format 8 (a read-only format-7 file is read without them).
_DANGLING_BYTES = (
    ("values whose bytes are not stored (val_bytes)",
     f"FROM val_rows r WHERE r.external = {IN_VAL_BYTES}"
     " AND NOT EXISTS (SELECT 1 FROM val_bytes b WHERE b.id = r.data)"),
    ("val_bytes rows that no value names",
     f"FROM val_bytes b WHERE b.id NOT IN (SELECT data FROM val_rows WHERE external = {IN_VAL_BYTES})"),
)
_HAS_VAL_BYTES_SQL = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'val_bytes'"


def _dangling_rows(conn: sqlite3.Connection) -> list[str]:
    found = []
    checks = _DANGLING + (_DANGLING_BYTES if conn.execute(_HAS_VAL_BYTES_SQL).fetchone() else ())
    for what, rows_sql in checks:
        count = conn.execute(f"SELECT COUNT(*) {rows_sql}").fetchone()[0]
        if count:
            found.append(f"{count} {what}")
    return found


#: Longest JSON argument a description shows; longer ones are named by content id.
_SHOWN_BYTES = 40
_PRODUCER_SQL = (
    "SELECT c.id, v.op_name FROM call_outputs o JOIN calls c ON c.id = o.call_id"
    " JOIN versions v ON v.version_id = c.version_id WHERE o.cid = ? ORDER BY c.id LIMIT 1"
)
_CONSUMER_SQL = (
    "SELECT c.id, v.op_name, i.name FROM call_inputs i JOIN calls c ON c.id = i.call_id"
    " JOIN versions v ON v.version_id = c.version_id WHERE i.cid = ? ORDER BY c.id LIMIT 1"
)
# One lookup of each input's value (only a short one's bytes are read). Not a LEFT JOIN of
# vals: a view over a join, SQLite cannot flatten it into one and copies all of it first.
_INPUTS_SQL = (
    "SELECT i.name, (SELECT v.codec FROM vals v WHERE v.cid = i.cid),"
    f" (SELECT v.data FROM vals v WHERE v.cid = i.cid AND v.size <= {_SHOWN_BYTES}), i.cid"
    " FROM call_inputs i WHERE i.call_id = ? ORDER BY i.name"
)


def describe_producer(conn: sqlite3.Connection, cid: bytes) -> str | None:
    """``op(arg=…, …)`` for the earliest stored call that output the value ``cid``, or None.
    Arguments stored as JSON are shown; others by content id prefix (loading them could
    unpickle, or meet another damaged value). An element of a collection (MList...) names
    the call that returned the collection.

    >>> describe_producer(store.conn, cid)          # doctest: +SKIP
    'train(alpha=0.1, data=<value 3f2a9c1b0d4e>)'
    """
    found = _call_of(conn, _PRODUCER_SQL, cid)
    if found is None:
        return None
    row, inputs = found
    if row[1] == BUILD_OP_NAME:  # a collection built by hand is no op's output: the calls given it tell
        return None
    if row[1] == ITEM_OP_NAME:  # an element: its collection's producer is the user's call
        struct = next((arg[3] for arg in inputs if arg[0] == "struct"), None)
        outer = struct and describe_producer(conn, struct)
        if outer:
            return f"{outer}, an element of its output"
    return _call_text(row[1], inputs)


def _call_of(conn: sqlite3.Connection, sql: str, cid: bytes) -> tuple[tuple[Any, ...], list[Any]] | None:
    """The first call ``sql`` finds for ``cid`` (its row and inputs), or None."""
    try:
        row = conn.execute(sql, (cid,)).fetchone()
        if row is None:
            return None
        return row, conn.execute(_INPUTS_SQL, (row[0],)).fetchall()
    except sqlite3.DatabaseError:  # only a description: the error it explains matters more
        return None


def _call_text(op_name: str, inputs: list[Any]) -> str:
    """``op(a=…, b=…)`` from a call's op name and the rows of ``_INPUTS_SQL``."""
    return f"{op_name}({', '.join(_show(*arg) for arg in inputs)})"


def describe_consumer(conn: sqlite3.Connection, cid: bytes) -> str | None:
    """``argument a of op(a=…)`` for the earliest stored call given the value ``cid``, or None.

    >>> describe_consumer(store.conn, cid)          # doctest: +SKIP
    'argument data of train(alpha=0.1, data=<value 3f2a9c1b0d4e>)'
    """
    found = _call_of(conn, _CONSUMER_SQL, cid)
    if found is None:
        return None
    row, inputs = found
    return f"argument {row[2]} of {_call_text(row[1], inputs)}"


def describe_value(conn: sqlite3.Connection, cid: bytes) -> str:
    """Where the value ``cid`` is used, for a report: `` (output of op(…))``, `` (argument a of
    op(…))`` for a value no call computed, or nothing."""
    call = describe_producer(conn, cid)
    if call:
        return f" (output of {call})"
    given = describe_consumer(conn, cid)
    return f" ({given})" if given else ""


def _show(name: str, codec: str | None, data: bytes | None, cid: bytes) -> str:
    if codec == "json" and data is not None and len(data) <= _SHOWN_BYTES:
        return f"{name}={data.decode(errors='replace')}"
    return f"{name}=<value {cid.hex()[:12]}>"
