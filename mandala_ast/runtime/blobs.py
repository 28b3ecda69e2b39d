"""Large values as content-addressed files beside the database, written atomically and
checked on every load.

A value's content id hashes its canonical encoding (hashing.py), not the codec bytes in its
file (a pickle, an ``.npy``): recomputing the id would mean decoding and re-encoding, and a
pickle of equal content is not always the same bytes. So the ``vals`` row of a file records
a blake3 digest of the file's own bytes, and a load compares it before decoding (blake3 reads
at GB/s, with every core for large files).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blake3 import blake3

from .._errors import StorageFormatError
from .hash_threads import large_hash_threads

__all__ = ["STRAY_AFTER_SECONDS", "BlobDir", "BlobFault", "blob_dir_of", "data_digest", "file_digest"]

#: Temp files and row-less value files younger than this may belong to a write in progress (a
#: block writes its value files before it commits their rows): gc leaves them, verify says so.
STRAY_AFTER_SECONDS = 3600.0

#: Files at least this large are hashed with every core (threads cost more below ~1 MiB).
_THREADED_BYTES = 1 << 20


class BlobFault(Exception):
    """A value's file is missing, or its bytes are not those whose digest was recorded."""

    def __init__(self, path: Path, problem: str, *, missing: bool = False) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
        self.missing = missing


def blob_dir_of(path: Path) -> BlobDir:
    """The value files of the storage at ``path``: beside the file itself, with any symlink to
    it followed, so that every name of one file (a link ``latest.db``, its own name) finds
    them. Value files an earlier version kept beside a link are still found through that
    link (read, rewritten, deleted where they are), also once the file itself has some.

    >>> blob_dir_of(Path("/results/latest.db")).root       # doctest: +SKIP
    PosixPath('/results/runs/run_7.db.blobs')
    """
    beside_name = Path(f"{path}.blobs")
    beside_file = Path(f"{os.path.realpath(path)}.blobs")
    earlier = beside_file != beside_name and beside_name.is_dir()
    return BlobDir(beside_file, earlier=beside_name if earlier else None)


def data_digest(data: bytes | memoryview) -> bytes:
    """blake3 of a file's bytes, as recorded in its ``vals`` row."""
    threads = large_hash_threads() if len(data) >= _THREADED_BYTES else 1
    return blake3(data, max_threads=threads).digest()


def file_digest(path: Path) -> bytes:
    """blake3 of the file at ``path``, memory-mapped (no copy through Python)."""
    return blake3(max_threads=large_hash_threads()).update_mmap(path).digest()


class BlobDir:
    """``<db>.blobs/ab/abcdef…``: one file per content id, never rewritten once present
    (except by :meth:`rewrite`, which repairs a corrupt one)."""

    def __init__(self, root: Path, *, earlier: Path | None = None) -> None:
        self.root = root
        #: where an earlier version kept them (beside a symlink): a file missing from root
        #: is looked for there (see blob_dir_of)
        self.earlier = earlier
        # cid -> (file identity, digest) of files found intact: loading the same unchanged
        # file again (a large array op hit in a loop) need not hash it again. Any write to
        # the file changes its identity (ctime cannot be set back), so it is checked again.
        self._intact: dict[bytes, tuple] = {}

    def path(self, cid: bytes) -> Path:
        name = cid.hex()
        path = self.root / name[:2] / name
        if self.earlier is not None and not path.exists():
            kept = self.earlier / name[:2] / name
            if kept.exists():
                return kept
        return path

    def write(self, cid: bytes, data: bytes, holds: Callable[[bytes], bool] | None = None) -> bytes:
        """Write once; return the digest the value's row records.

        If the file is there already (another process stored the same content, perhaps not
        yet its row), its bytes are kept and *its* digest is returned: a pickle of equal
        content may differ in bytes, and the row must describe the file that is there. The
        first writer wins atomically (a hard link fails if the name exists), so two
        processes writing at once cannot leave one's bytes under the other's digest.

        Unless the file there holds other bytes and ``holds(its bytes)`` says they are not
        this value: a file whose row was lost with the power, never flushed to the disk
        (zeros where the data should be), would else be recorded as the value, digest and all.
        It is replaced by ``data``.
        """
        target = self.path(cid)
        if target.exists():
            _refuse_a_directory(target)
            kept = self._kept(target, data, holds)
            if kept is not None:
                return kept
        _make_parent(target)
        temp = self._temp(target, data)
        try:
            os.link(temp, target)
        except FileExistsError:  # another process's, written whole a moment ago
            return file_digest(target)
        except OSError:  # a file system without hard links: last writer wins
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return data_digest(data)

    def _kept(self, target: Path, data: bytes, holds: Callable[[bytes], bool] | None) -> bytes | None:
        """The digest of the file at ``target`` if it is kept; None if it is gone. A file of
        other bytes that ``holds`` refuses is replaced by ``data`` (whose digest is returned)."""
        try:
            found = file_digest(target)
        except FileNotFoundError:  # removed meanwhile (gc of an unused value): write it
            return None
        if holds is None or found == data_digest(data) or holds(target.read_bytes()):
            return found
        self._replace(target, data)
        return data_digest(data)

    def rewrite(self, cid: bytes, data: bytes) -> bytes:
        """Replace the file (a corrupt one) with ``data``; return its digest."""
        self._replace(self.path(cid), data)
        return data_digest(data)

    def read(self, cid: bytes, digest: bytes | None) -> bytes:
        """The file's bytes, checked against ``digest`` (None: written before digests were
        recorded, and the file was missing then; not checked)."""
        path = self.path(cid)
        try:
            with open(path, "rb") as handle:  # identity and bytes of the same file
                identity = _identity(os.fstat(handle.fileno()))
                data = handle.read()
        except _NOT_THERE:
            raise BlobFault(path, "the file is missing", missing=True) from None
        if digest is not None and self._intact.get(cid) != (identity, digest):
            if data_digest(data) != digest:
                raise _differs(path, len(data))
            self._intact[cid] = (identity, digest)
        return data

    def check(self, cid: bytes, digest: bytes | None, *, again: bool = False) -> Path:
        """The file's path, once its bytes are checked against ``digest`` (for files loaded
        memory-mapped, which :meth:`read` would copy). ``again``: even if found intact and
        unchanged before."""
        path = self.path(cid)
        try:
            identity = _identity(path.stat())
            if digest is None or (not again and self._intact.get(cid) == (identity, digest)):
                return path
            actual = file_digest(path)
        except _NOT_THERE:
            raise BlobFault(path, "the file is missing", missing=True) from None
        if actual != digest:
            raise _differs(path, identity[2])
        self._intact[cid] = (identity, digest)
        return path

    def open_checked(self, cid: bytes, digest: bytes | None, use: Callable[[Path], Any]) -> Any:
        """``use(path)`` once the file is checked (:meth:`check`). A file removed between the
        check and ``use`` opening it (another process deleting the value's call) is the same
        :class:`BlobFault` as one the check found gone, not ``use``'s own FileNotFoundError.

        >>> blobs.open_checked(cid, digest, np.load)     # doctest: +SKIP
        """
        path = self.check(cid, digest)
        try:
            return use(path)
        except _NOT_THERE:
            raise BlobFault(path, "the file is missing", missing=True) from None

    def _replace(self, target: Path, data: bytes) -> None:
        """temp file + ``os.replace``, so readers never see a partial file."""
        _make_parent(target)
        temp = self._temp(target, data)
        try:
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    @staticmethod
    def _temp(target: Path, data: bytes) -> Path:
        """``data`` in a durable temp file beside ``target``, to be linked or moved there."""
        temp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp


#: A value file that is not there: gone, or a file where one of its directories should be
#: (``<db>.blobs`` or its ``ab/`` replaced by a file), or a directory in its place.
_NOT_THERE = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def _make_parent(target: Path) -> None:
    """Create the directories of a value file; a file in the way of one, or a directory in
    place of the value file, is an error naming it."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        in_the_way = next((p for p in (target.parent, *target.parents) if p.exists() and not p.is_dir()), target.parent)
        raise StorageFormatError(
            f"cannot write the value file {target}: {in_the_way} is a file, not a directory (move it away)"
        ) from exc
    _refuse_a_directory(target)


def _refuse_a_directory(target: Path) -> None:
    """A directory where a value file goes: loads call the value missing, and writing it
    would fail with an error naming a temp file (or, from blake3, nothing)."""
    if target.is_dir():
        raise StorageFormatError(f"cannot write the value file {target}: it is a directory (move it away)")


def _identity(stat: os.stat_result) -> tuple:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _differs(path: Path, size: int) -> BlobFault:
    return BlobFault(path, f"its {size:,} bytes are not those stored: their blake3 digest differs")
