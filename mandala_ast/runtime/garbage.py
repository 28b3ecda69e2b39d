"""Garbage collection: values and blob files nothing refers to, stray temp files, then VACUUM.

Deleting calls already removes the values they leave unused (both through runtime/reclaim.py);
this sweeps what a crash or an older version left behind and gives the freed pages back to the
file system. A blob file without a row is removed only once it is an hour old: another process
writes a value's file before it commits the value's row (see ``Recorder._buffer_encoded`` in
recording.py).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import StorageFullError
from .blobs import STRAY_AFTER_SECONDS
from .deletion import busy_as_error
from .deletion_watch import mark_deleted
from .reclaim import (
    ReclaimReport,
    format_bytes,
    plural,
    remove_blob_files,
    remove_unreferenced_values,
)
from .store import full_disk_error, retry_locked

if TYPE_CHECKING:
    from .blobs import BlobDir
    from .store import SQLiteStore

__all__ = ["GcReport", "collect_garbage", "storage_bytes"]

_CID_HEX = 64


@dataclass(frozen=True)
class GcReport(ReclaimReport):
    """What :meth:`Storage.gc` removed, and the storage's size on disk before and after
    (database, WAL and blob files).

    >>> print(GcReport(values=3, files=2, bytes_before=12_000_000, bytes_after=1_100_000))
    removed 3 unused values and 2 stray files; 12.0 MB -> 1.1 MB on disk
    """

    #: ``vals`` rows no call referred to
    values: int
    #: blob files without a value row, and stale temp files
    files: int
    bytes_before: int
    bytes_after: int

    @property
    def bytes_freed(self) -> int:
        """How much smaller the storage is on disk (can be negative while others write)."""
        return self.bytes_before - self.bytes_after

    def __str__(self) -> str:
        return (
            f"removed {plural(self.values, 'unused value')} and {plural(self.files, 'stray file')}; "
            f"{format_bytes(self.bytes_before)} -> {format_bytes(self.bytes_after)} on disk"
        )


def collect_garbage(store: SQLiteStore, blobs: BlobDir | None) -> GcReport:
    """Remove unused values and stray files, then VACUUM the database.

    >>> print(collect_garbage(store, blobs))          # doctest: +SKIP
    removed 0 unused values and 0 stray files; 1.3 MB -> 41.0 kB on disk
    """
    from .progress import stages

    before = storage_bytes(store.path, blobs)
    with busy_as_error(store, "collect garbage"), stages("collecting garbage", 3) as steps:
        steps.step("removing unused values")
        values, _, external = store.write_transaction(lambda conn: _remove_unused_values(conn, blobs))
        steps.step("removing stray files")
        files = remove_blob_files(store, blobs, [*external, *_stray_blobs(store, blobs)])
        files += _remove_stale_temp_files(blobs)
        steps.step("compacting the file (VACUUM)")
        _vacuum(store, values, files)
    return GcReport(values, files, before, storage_bytes(store.path, blobs))


def storage_bytes(path: Path | None, blobs: BlobDir | None) -> int:
    """Bytes on disk: the database file, its WAL, and every file under the blob directory.

    >>> storage_bytes(None, None)
    0
    """
    if path is None:
        return 0
    total = sum(_size(Path(f"{path}{suffix}")) for suffix in ("", "-wal"))
    if blobs is not None and blobs.root.is_dir():
        total += sum(_size(file) for file in blobs.root.rglob("*") if file.is_file())
    return total


def _remove_unused_values(conn: sqlite3.Connection, blobs: BlobDir | None) -> tuple[int, int, list[bytes]]:
    removed = remove_unreferenced_values(conn, "SELECT cid FROM main.vals", blobs)
    if removed[0]:
        mark_deleted(conn)  # other Storages may hold these cids as "already stored"
    return removed


def _old_files(blobs: BlobDir | None) -> list[Path]:
    if blobs is None or not blobs.root.is_dir():
        return []
    cutoff = time.time() - STRAY_AFTER_SECONDS
    return [file for file in blobs.root.rglob("*") if file.is_file() and _mtime(file) < cutoff]


def _stray_blobs(store: SQLiteStore, blobs: BlobDir | None) -> list[bytes]:
    """Content ids of old value files without a row (remove_blob_files checks again, under
    the write lock, before removing any)."""
    stray = []
    for file in _old_files(blobs):
        name = file.name
        if len(name) != _CID_HEX or file.parent.name != name[:2]:
            continue  # a temp file, or not ours: leave it to _remove_stale_temp_files or alone
        try:
            cid = bytes.fromhex(name)
        except ValueError:
            continue
        row = store.find_value(cid)
        if row is None or not row[2]:
            stray.append(cid)
    return stray


def _remove_stale_temp_files(blobs: BlobDir | None) -> int:
    """Temp files of writes (or deletions) interrupted more than an hour ago."""
    removed = 0
    for file in _old_files(blobs):
        if file.name.endswith(".tmp"):
            file.unlink(missing_ok=True)
            removed += 1
    return removed


def _vacuum(store: SQLiteStore, values: int, files: int) -> None:
    # In WAL mode VACUUM writes the new pages to the WAL: checkpoint before (so it copies a
    # settled file) and after (so the main file actually shrinks). Readers in other processes
    # may go on; a writer makes VACUUM wait, and it is retried like any write.
    conn = store.conn
    try:
        retry_locked(lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
        retry_locked(lambda: conn.execute("VACUUM"))
        retry_locked(lambda: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    except sqlite3.OperationalError as exc:
        # VACUUM writes a whole copy of the file before it can free anything: on a full disk
        # the removals above are done (and kept: SQLite rolls VACUUM back whole), the
        # compacting is not.
        if full_disk_error(exc, store.path) is None:
            raise
        raise StorageFullError(
            f"garbage collection removed {plural(values, 'unused value')} and "
            f"{plural(files, 'stray file')}, but there was no room to compact {store.path} "
            f"({exc}): compacting writes a copy of the file, {format_bytes(storage_bytes(store.path, None))}; "
            "free that much space and run gc again"
        ) from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
