"""Real file-system limits: a full disk (a small tmpfs) and read-only storages (a read-only
bind mount). We run as root, so chmod would not stop writes: only a real mount does."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from integrity import dangling_references
from mandala_ast import MandalaError, NewCallError, Storage, StorageFullError, op

RAN: list = []


@op
def chunk(i: int) -> bytes:
    """300 kB: stored inline in the SQLite file, so a full disk fails the row write."""
    RAN.append(("chunk", i))
    return bytes([i % 256]) * 300_000


@op
def blob(i: int) -> bytes:
    """Just over 1 MiB: stored as a file in <db>.blobs/."""
    RAN.append(("blob", i))
    return bytes([i % 256]) * (1 << 20) + b"!"


@pytest.fixture(autouse=True)
def clear_runs():
    RAN.clear()


def _mount(args: list[str], target: Path) -> None:
    result = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here (needs root and mount(8)): {result.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 6 MiB tmpfs: room for the storage and a few blobs until filled up."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=6m", "tmpfs"], mount_point)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; returns the filler file to delete."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def loads(path: Path, fn, i) -> bool:
    """Whether a fresh Storage that may not compute has fn(i) stored (and its value intact)."""
    with Storage(path).run(allow_new_calls=False):
        try:
            value = fn(i)
        except NewCallError:
            return False
    assert value == fn.fn(i)
    return True


def test_disk_full_while_committing_rows_raises_storage_full_error_and_storage_recovers(small_disk):
    path = small_disk / "s.db"
    storage = Storage(path)
    with storage.run():
        chunk(0)
    filler = fill(small_disk)
    with pytest.raises(StorageFullError, match=str(path)) as raised:
        with storage.run():
            chunk(1)
            chunk(2)
    assert isinstance(raised.value, OSError) and isinstance(raised.value, MandalaError)
    filler.unlink()
    with storage.run():
        chunk(3)
        chunk(1)  # dropped by the failed commit: computed again
    storage.close()
    assert RAN.count(("chunk", 1)) == 2
    assert [loads(path, chunk, i) for i in range(4)] == [True, True, False, True]
    assert dangling_references(path) == 0


def test_disk_full_while_writing_a_blob_raises_storage_full_error_and_storage_recovers(small_disk):
    path = small_disk / "s.db"
    storage = Storage(path)
    with storage.run():
        blob(0)
    filler = fill(small_disk)
    with pytest.raises(StorageFullError, match=str(small_disk / "s.db.blobs")):
        with storage.run():
            blob(1)
    assert not [p for p in (small_disk / "s.db.blobs").rglob("*") if p.name.endswith(".tmp")]
    filler.unlink()
    with storage.run():
        blob(2)
        blob(1)
    storage.close()
    assert [loads(path, blob, i) for i in range(3)] == [True, True, True]
    assert dangling_references(path) == 0

