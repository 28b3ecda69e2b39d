"""Reclaiming space: removing the values no call refers to any more, and their blob files.

Deleting calls (deletion.py) and garbage collection (garbage.py) both end here: deletion
offers the values the deleted calls used, gc offers every value. A value goes once no
``call_inputs``/``call_outputs`` row refers to it and no surviving structure (MList/MDict/MSet,
runtime/structures.py) holds it as an element. Value rows are removed inside the caller's
write transaction, their blob files only after it commits (:func:`remove_blob_files`), so a
rolled back transaction never loses a file.

Both report what they gave back as a :class:`ReclaimReport`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .codecs import STRUCTURE_CODECS
from .deletion_watch import mark_deleted
from .structures import element_cids
from .value_rows import delete_values

if TYPE_CHECKING:
    from .blobs import BlobDir
    from .store import SQLiteStore

__all__ = [
    "VALUE_REFERENCES",
    "ReclaimReport",
    "format_bytes",
    "plural",
    "remove_blob_files",
    "remove_unreferenced_values",
]

#: (table, column) pairs whose cids keep a ``vals`` row alive. A new table that refers to
#: values by content id must be listed here, or deletion and gc will remove its values.
VALUE_REFERENCES = (("call_inputs", "cid"), ("call_outputs", "cid"))


class ReclaimReport:
    """What removing data gave back; :class:`~mandala_ast.DeleteReport` and
    :class:`~mandala_ast.GcReport` are its two kinds. Each has ``values`` (value rows removed
    because no call refers to them any more) and ``bytes_freed``, and ``str()`` of it is one
    line for a person.

    >>> from mandala_ast import DeleteReport, GcReport
    >>> issubclass(DeleteReport, ReclaimReport) and issubclass(GcReport, ReclaimReport)
    True
    """

    __slots__ = ()

    if TYPE_CHECKING:  # each kind has them as dataclass fields or as properties

        @property
        def values(self) -> int: ...

        @property
        def bytes_freed(self) -> int: ...


def format_bytes(size: float) -> str:
    """Decimal units, one decimal place.

    >>> format_bytes(1234), format_bytes(512), format_bytes(3_500_000)
    ('1.2 kB', '512 B', '3.5 MB')
    """
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            break
    return f"{size:.1f} {unit}"


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, in the plural unless there is one.

    >>> plural(1, "call"), plural(3, "value")
    ('1 call', '3 values')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"


# -- value rows ------------------------------------------------------------------------------


def remove_unreferenced_values(
    conn: sqlite3.Connection, candidates_sql: str, blobs: BlobDir | None
) -> tuple[int, int, list[bytes]]:
    """Delete the ``vals`` rows among ``candidates_sql`` (a SELECT of cids) that nothing uses
    any more; returns ``(count, bytes, cids stored as blob files)``. Call inside a write
    transaction, then pass those cids to :func:`remove_blob_files` after it commits.

    >>> remove_unreferenced_values(conn, "SELECT cid FROM vals", blobs)   # doctest: +SKIP
    (2, 2097280, [b'...'])
    """
    conn.execute("DROP TABLE IF EXISTS temp.mandala_unused")
    conn.execute("CREATE TEMP TABLE mandala_unused (cid BLOB PRIMARY KEY) WITHOUT ROWID")
    try:
        conn.execute(f"INSERT OR IGNORE INTO temp.mandala_unused {candidates_sql}")
        conn.execute(_STILL_USED_SQL)
        _spare_elements(conn, blobs)
        count, size = conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM main.vals WHERE cid IN ({_UNUSED})"
        ).fetchone()
        files = conn.execute(f"SELECT cid FROM main.vals WHERE external = 1 AND cid IN ({_UNUSED})")
        external = [row[0] for row in files]
        delete_values(conn, _UNUSED)
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.mandala_unused")
    return count, size, external


def _spare_elements(conn: sqlite3.Connection, blobs: BlobDir | None) -> None:
    """Structures hold their elements by content id only (an MList argument's elements have
    no inputs/outputs row): a doomed structure's elements become candidates too, and the
    elements of every surviving structure stay. An element may itself be a structure (a list
    of lists whose inner list another op returned as an MList): both follow it down."""
    if conn.execute("SELECT 1 FROM temp.mandala_unused LIMIT 1").fetchone() is None:
        return
    codecs = ", ".join(f"'{codec}'" for codec in sorted(STRUCTURE_CODECS))
    expanded: set[bytes] = set()
    while True:
        doomed = [
            row
            for row in conn.execute(
                f"SELECT v.cid, v.codec, v.data, v.external FROM temp.mandala_unused u "
                f"CROSS JOIN main.vals v ON v.cid = u.cid WHERE v.codec IN ({codecs})"
            ).fetchall()
            if row[0] not in expanded
        ]
        if not doomed:
            break
        expanded.update(row[0] for row in doomed)
        # Elements whose item calls went with the structure's call are candidates already:
        # only the others are sent (a deleted 100,000-element list sends none).
        known = {cid for (cid,) in conn.execute(_UNUSED)}
        members = {cid for row in doomed for cid in _structure_elements(row, blobs)} - known
        if members:
            conn.executemany("INSERT OR IGNORE INTO temp.mandala_unused VALUES (?)", ((c,) for c in members))
            conn.execute(_STILL_USED_SQL)
    # No index leads from an element to its structures: read every surviving structure row
    # (a scan of vals that skips large values' overflow pages).
    rows = conn.execute(
        f"SELECT cid, codec, data, external FROM main.vals WHERE codec IN ({codecs}) "
        f"AND cid NOT IN ({_UNUSED})"
    ).fetchall()
    unused = {cid for (cid,) in conn.execute(_UNUSED)}
    while rows and unused:
        rescued = {cid for row in rows for cid in _structure_elements(row, blobs)} & unused
        unused -= rescued
        conn.executemany("DELETE FROM temp.mandala_unused WHERE cid = ?", ((cid,) for cid in rescued))
        # A rescued element that is a structure keeps its own elements in the next round.
        rows = [
            (cid, *row)
            for cid in rescued
            if (row := conn.execute(_STRUCTURE_ROW_SQL.format(codecs=codecs), (cid,)).fetchone())
        ]


_STRUCTURE_ROW_SQL = "SELECT codec, data, external FROM main.vals WHERE cid = ? AND codec IN ({codecs})"


def _structure_elements(row: tuple[Any, ...], blobs: BlobDir | None) -> list[bytes]:
    cid, codec, data, external = row
    if external and blobs is not None:
        try:
            data = blobs.path(cid).read_bytes()
        except FileNotFoundError:  # already lost: it holds nothing to keep
            return []
    return element_cids(codec, data or b"")


# -- blob files ------------------------------------------------------------------------------


def remove_blob_files(store: SQLiteStore, blobs: BlobDir | None, cids: Iterable[bytes]) -> int:
    """Remove the files of values whose rows are gone (call after the commit); returns how
    many were removed.

    Files are renamed aside, then, inside a write transaction (so no flush interleaves), any
    whose row was committed again meanwhile is put back; the rest are unlinked. A Storage that
    flushes later finds its buffered file missing and writes it again (deletion_watch.py).

    >>> remove_blob_files(store, blobs, [cid])         # doctest: +SKIP
    1
    """
    if blobs is None:
        return 0
    aside = {}
    for cid in cids:
        path = blobs.path(cid)
        moved = path.with_name(f".{path.name}.{os.getpid()}.deleting.tmp")
        try:
            os.replace(path, moved)
        except FileNotFoundError:
            continue
        aside[cid] = moved
    if not aside:
        return 0
    try:
        doomed = store.write_transaction(lambda conn: _keep_stored(conn, blobs, aside))
    except BaseException:  # cannot tell which are stored again: put every file back
        for cid, moved in aside.items():
            if not blobs.path(cid).exists():
                os.replace(moved, blobs.path(cid))
        raise
    for moved in doomed:
        moved.unlink(missing_ok=True)
    return len(doomed)


def _keep_stored(conn: sqlite3.Connection, blobs: BlobDir, aside: dict[bytes, Path]) -> list[Path]:
    doomed = []
    for cid, moved in aside.items():
        row = conn.execute("SELECT external FROM main.vals WHERE cid = ?", (cid,)).fetchone()
        if row is not None and row[0] and not blobs.path(cid).exists():
            os.replace(moved, blobs.path(cid))
        else:
            doomed.append(moved)
    if doomed:
        mark_deleted(conn)  # a Storage with one of these values buffered writes its file again
    return doomed


# -- SQL -------------------------------------------------------------------------------------

_UNUSED = "SELECT cid FROM temp.mandala_unused"
_STILL_USED_SQL = "DELETE FROM temp.mandala_unused WHERE " + " OR ".join(
    f"EXISTS (SELECT 1 FROM main.{table} r WHERE r.{column} = mandala_unused.cid)"
    for table, column in VALUE_REFERENCES
)
