"""Real file-system limits: a full disk (a small tmpfs) and read-only storages (a read-only
bind mount). We run as root, so chmod would not stop writes: only a real mount does."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from disks import tmpfs
from formats import format_7_layout, format_8_layout, format_9_layout
from integrity import dangling_references
from test_query import rows, run

from mandala_ast import (
    MandalaError,
    MandalaUnstoredWarning,
    MList,
    NewCallError,
    ReadOnlyStorageError,
    Storage,
    StorageFullError,
    op,
)
from mandala_ast.runtime import recording

RAN: list = []


@op
def inc(x: int) -> int:
    RAN.append(("inc", x))
    return x + 1


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


@op
def blobs(n: int) -> MList[bytes]:
    """A list stored element by element, each element a blob file."""
    RAN.append(("blobs", n))
    return [bytes([i]) * (1 << 20) + b"!" for i in range(n)]


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
    with tmpfs(tmp_path / "disk", "6m") as disk:
        yield disk


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


def test_a_miss_whose_value_file_fills_the_disk_returns_its_value_with_a_warning_naming_the_file(small_disk):
    """The value was computed (perhaps for hours): the block gets it, unstored, and goes on;
    the warning names the file that could not be written. Freed space, it is stored again."""
    path = small_disk / "s.db"
    storage = Storage(path)
    with storage.run():
        blob(0)
    filler = fill(small_disk)
    with pytest.warns(MandalaUnstoredWarning, match=rf"op .*blob: no space left on the disk holding {small_disk / 's.db.blobs'}"):
        with storage.run():
            value = blob(1)
            stored = blob(0)  # the block goes on
    assert value == bytes([1]) * (1 << 20) + b"!" and stored == bytes([0]) * (1 << 20) + b"!"
    assert not [p for p in (small_disk / "s.db.blobs").rglob("*") if p.name.endswith(".tmp")]
    filler.unlink()
    with storage.run():
        blob(2)
        blob(1)
    storage.close()
    assert RAN.count(("blob", 1)) == 2
    assert [loads(path, blob, i) for i in range(3)] == [True, True, True]
    assert dangling_references(path) == 0


def test_a_commit_inside_a_long_block_that_fills_the_disk_returns_the_calls_values_with_a_warning_naming_the_file(
        small_disk, monkeypatch):
    """Long blocks commit every few seconds from inside a miss: on a full disk that miss still
    returns its value (unstored, with a warning naming the file), and the block goes on."""
    monkeypatch.setattr(recording, "FLUSH_EVERY_SECONDS", 0.0)  # every miss commits
    path = small_disk / "s.db"
    storage = Storage(path)
    with storage.run():
        chunk(0)
    filler = fill(small_disk)
    got = []
    with pytest.warns(MandalaUnstoredWarning, match=rf"op .*chunk: no space left on the disk holding {path}"):
        with storage.run():
            got.append(chunk(1))
            got.append(chunk(2))
    assert got == [bytes([1]) * 300_000, bytes([2]) * 300_000]
    filler.unlink()
    monkeypatch.undo()
    with storage.run():
        chunk(1)
    storage.close()
    assert RAN.count(("chunk", 1)) == 2
    assert [loads(path, chunk, i) for i in range(3)] == [True, True, False]
    assert dangling_references(path) == 0


@pytest.mark.parametrize("executor", [None, "threads"])
def test_disk_full_while_a_batch_writes_a_blob_returns_that_calls_value_unstored(small_disk, executor):
    """A batch records a chunk of results at once: the call whose value file cannot be
    written is handed to the block unstored (with a warning naming the file), and nothing of
    it stays buffered for the commit; the others are stored."""
    path = small_disk / "s.db"
    storage = Storage(path)
    with storage.run():
        inc(0)
    room = small_disk / "room"
    room.write_bytes(b"\0" * (512 << 10))
    filler = fill(small_disk)
    room.unlink()  # room for rows, not for a 1 MiB value file
    with pytest.warns(MandalaUnstoredWarning, match=rf"blob.*no space left on the disk holding {small_disk / 's.db.blobs'}"):
        with storage.batch(executor=executor, progress=False):
            ys = [inc(x) for x in range(300)]
            big = blob(1)
    assert ys == list(range(1, 301)) and big == bytes([1]) * (1 << 20) + b"!"
    filler.unlink()
    storage.close()
    assert [loads(path, inc, x) for x in (1, 150, 299)] == [True, True, True]
    assert not loads(path, blob, 1)
    assert dangling_references(path) == 0


@pytest.mark.parametrize("executor", [None, "processes"])
def test_a_batch_whose_commit_fills_the_disk_leaves_plain_values_in_its_names(small_disk, executor):
    path = small_disk / "s.db"
    storage = Storage(path)
    with storage.run():
        chunk(0)
    filler = fill(small_disk)
    with pytest.raises(StorageFullError, match=str(path)):
        with storage.batch(executor=executor, progress=False):
            parts = [chunk(i) for i in range(1, 4)]
            one = chunk(5)
    assert type(one) is bytes and [type(part) for part in parts] == [bytes] * 3
    assert parts == [bytes([i]) * 300_000 for i in range(1, 4)]
    filler.unlink()
    storage.close()
    assert [loads(path, chunk, i) for i in (0, 1)] == [True, False]



@pytest.mark.parametrize("executor", [None, "threads"])
def test_a_single_flight_batch_whose_commit_fills_the_disk_returns_the_calls_values_with_a_warning(
        small_disk, executor):
    """With single flight a batch commits the results it records at once (processes waiting
    for a call look for it in the file): on a full disk that commit failed the calls, so
    their values were lost and the block's names stayed deferred."""
    path = small_disk / "s.db"
    storage = Storage(path, single_flight=True)
    with storage.run():
        chunk(0)
    room = small_disk / "room"
    room.write_bytes(b"\0" * (64 << 10))
    filler = fill(small_disk)
    room.unlink()  # room for the calls' lock files, not for their rows
    with pytest.warns(MandalaUnstoredWarning, match=rf"op .*chunk: no space left on the disk holding {path}"):
        with storage.batch(executor=executor, progress=False):
            parts = [chunk(i) for i in range(1, 4)]
    assert parts == [bytes([i]) * 300_000 for i in range(1, 4)]
    assert not list(Path(f"{path}.locks").glob("*"))  # and no call stays locked
    filler.unlink()
    storage.close()
    assert [loads(path, chunk, i) for i in (0, 1)] == [True, False]

def test_disk_full_while_writing_the_elements_of_a_list_returns_the_list_with_a_warning_naming_the_file(small_disk):
    path = small_disk / "s.db"
    storage = Storage(path)
    with storage.run():
        blobs(1)
    filler = fill(small_disk)
    with pytest.warns(MandalaUnstoredWarning, match=str(small_disk / "s.db.blobs")):
        with storage.run():
            assert blobs(2) == [bytes([i]) * (1 << 20) + b"!" for i in range(2)]
    filler.unlink()
    with storage.run():
        assert len(blobs(2)) == 2
    storage.close()
    assert RAN.count(("blobs", 2)) == 2
    assert [loads(path, blobs, n) for n in (1, 2)] == [True, True]
    assert dangling_references(path) == 0


def test_new_storage_on_a_full_disk_raises_storage_full_error(small_disk):
    fill(small_disk)
    with pytest.raises(StorageFullError, match="new.db"):
        Storage(small_disk / "new.db")


# -- read-only storages ------------------------------------------------------------------------


@pytest.fixture
def read_only(tmp_path: Path):
    """A storage written in ``src/``, then seen through a read-only bind mount ``ro/``."""
    yield from _read_only_view(tmp_path)


def _read_only_view(tmp_path: Path, fmt: str | None = None, *, fresh: bool = True):
    """``fresh=False``: ``src/s.db`` is there already; it gets inc's and blob's calls too."""
    source, view = tmp_path / "src", tmp_path / "ro"
    source.mkdir(exist_ok=not fresh)
    view.mkdir()
    storage = Storage(source / "s.db")
    run("with storage.run():\n    for x in [1, 2]:\n        y = inc(x)\n", storage, inc=inc)
    with storage.run():
        blob(3)
    storage.close()
    if fmt is not None:  # laid out as that earlier format wrote it
        with closing(sqlite3.connect(source / "s.db")) as conn:
            with conn:
                {"mandala_ast/9": format_9_layout, "mandala_ast/8": format_8_layout}.get(fmt, format_7_layout)(conn, fmt)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _mount(["--bind", str(source)], view)
    try:
        _mount(["-o", "remount,bind,ro"], view)
        yield view / "s.db"
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_storage_on_a_read_only_mount_opens_and_loads(read_only):
    assert not os.access(read_only.parent, os.W_OK)  # a real read-only mount, even for root
    storage = Storage(read_only)
    with storage.run():
        assert inc(1) == 2 and inc(2) == 3
        assert blob(3) == blob.fn(3)
    storage.close()
    assert sorted(os.listdir(read_only.parent)) == ["s.db", "s.db.blobs"]
    assert RAN == [("inc", 1), ("inc", 2), ("blob", 3), ("blob", 3)]  # the last: blob.fn(3) above


@pytest.mark.parametrize("fmt", ["mandala_ast/7", "mandala_ast/8", "mandala_ast/9"])
def test_an_earlier_format_on_a_read_only_mount_opens_loads_and_verifies(tmp_path, fmt):
    # Format 8 changed only where new values are written, format 9 only how indexes are
    # keyed (and this release only adds an index, which keeps format 9: "mandala_ast/9" here is
    # a file without it): the previous release read such shared results; refusing
    # them until someone upgrades the file where it is writable broke every reader on the
    # cluster at once.
    for read_only in _read_only_view(tmp_path, fmt):
        storage = Storage(read_only)
        with storage.run():
            assert inc(1) == 2 and blob(3) == blob.fn(3)
        assert storage.verify().ok
        storage.close()
    assert RAN == [("inc", 1), ("inc", 2), ("blob", 3), ("blob", 3)]  # the last: blob.fn(3) above


@op
def first_word(path: str) -> str:
    RAN.append(("first_word", path))
    with open(path) as handle:
        return handle.read().split()[0]


def test_a_format_7_storage_on_a_read_only_mount_loads_a_call_that_read_a_data_file(tmp_path):
    """Format 7's stat cache of data files has no change times: reading its rows asked for
    a column it lacks (a raw 'no such column: ctime_ns' from the first call that read a file)."""
    data = tmp_path / "data.txt"
    data.write_text("alpha beta\n")
    source = tmp_path / "src"
    source.mkdir()
    with Storage(source / "s.db").run():
        first_word(str(data))
    for read_only in _read_only_view(tmp_path, "mandala_ast/7", fresh=False):
        with Storage(read_only).run():
            assert first_word(str(data)) == "alpha"
    assert RAN.count(("first_word", str(data))) == 1


def test_storage_on_a_read_only_mount_answers_df_queries_and_why(read_only):
    storage = Storage(read_only)
    assert sorted(storage.df(inc)["x"]) == [1, 2]
    query = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x)\n"
    found = run(query, storage, inc=inc)["q"]
    assert sorted(rows(found.df())) == [(1, 2), (2, 3)]
    assert storage.why(inc, 1).startswith("hit:")
    assert storage.why(inc, 7).startswith("miss:")


def test_new_call_on_a_read_only_storage_raises_read_only_storage_error_naming_the_call(read_only):
    storage = Storage(read_only)
    with pytest.raises(ReadOnlyStorageError, match=r"inc has no stored call for \(x=41\)") as raised:
        with storage.run():
            assert inc(1) == 2
            inc(41)
    assert str(read_only) in str(raised.value) and isinstance(raised.value, MandalaError)
    assert ("inc", 41) not in RAN
    with storage.run():  # the storage stays usable for what it holds
        assert inc(2) == 3


def test_deleting_from_a_read_only_storage_raises_read_only_storage_error(read_only):
    storage = Storage(read_only)
    with pytest.raises(ReadOnlyStorageError, match=str(read_only)):
        storage.delete_calls(storage.df(inc))
    with pytest.raises(ReadOnlyStorageError, match=str(read_only)):
        storage.gc()
    assert sorted(storage.df(inc)["x"]) == [1, 2]


def test_new_storage_in_a_read_only_directory_raises_read_only_storage_error(read_only):
    with pytest.raises(ReadOnlyStorageError, match="new.db"):
        Storage(read_only.parent / "new.db")


def test_read_only_view_sees_calls_a_writer_elsewhere_committed_since(read_only):
    writer = Storage(read_only.parent.parent / "src" / "s.db")
    with writer.run():
        inc(10)  # committed into the -wal, which the writer keeps open
    reader = Storage(read_only)
    with reader.run():
        assert inc(10) == 11
    with writer.run():
        inc(11)
    with reader.run():
        assert inc(11) == 12
    assert RAN.count(("inc", 10)) == RAN.count(("inc", 11)) == 1
    writer.close()



def test_read_only_storage_refuses_a_call_of_an_op_it_never_stored_and_stays_usable(read_only):
    """The op's description (its version) is new too, and cannot be written either: it stays
    in memory, so the error is the call's, and later blocks and the close do not fail."""
    storage = Storage(read_only)
    with pytest.raises(ReadOnlyStorageError, match=r"chunk has no stored call for \(i=1\)"):
        with storage.run():
            chunk(1)
    with storage.run():
        assert inc(1) == 2
    storage.close()
    assert sorted(os.listdir(read_only.parent)) == ["s.db", "s.db.blobs"]


def test_read_only_storage_lists_no_versions_of_an_op_it_never_stored(read_only):
    versions = Storage(read_only).versions(chunk)
    assert len(versions) == 0 and "calls" in versions.columns


def test_storage_file_mounted_read_only_in_a_writable_directory_opens_and_loads(tmp_path):
    """Only the file is read-only (a bind mount of it alone), its directory is writable:
    still a read-only storage, which loads what it holds and refuses new calls up front."""
    source = tmp_path / "src" / "s.db"
    storage = Storage(source)
    with storage.run():
        inc(1)
    storage.close()
    view = tmp_path / "view" / "s.db"
    view.parent.mkdir()
    view.touch()
    _mount(["--bind", str(source)], view)
    try:
        _mount(["-o", "remount,bind,ro"], view)
        readonly = Storage(view)
        with readonly.run():
            assert inc(1) == 2
        with pytest.raises(ReadOnlyStorageError, match=r"inc has no stored call for \(x=5\)"):
            with readonly.run():
                inc(5)
        readonly.close()
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)
    assert RAN == [("inc", 1)]


def test_gc_on_a_full_disk_removes_what_it_can_and_raises_storage_full_error_naming_the_file(small_disk):
    """VACUUM needs room for a copy of the file: on a full disk the unused values and blob
    files are still removed (space the user gets back), then a StorageFullError says the
    file could not be compacted, and the storage stays intact and usable."""
    path = small_disk / "s.db"
    storage = Storage(path)
    with storage.run():
        for i in range(6):
            chunk(i)
        blob(0)
    storage.delete_calls([row for row in storage.df(chunk)["call"]][:5])
    storage.delete_calls(list(storage.df(blob)["call"]))
    filler = fill(small_disk)
    with pytest.raises(StorageFullError, match=str(path)) as raised:
        storage.gc()
    assert "compact" in str(raised.value)
    assert not list((small_disk / "s.db.blobs").rglob("*.npy")) and not any(
        p.is_file() for p in (small_disk / "s.db.blobs").rglob("*")
    )
    filler.unlink()
    assert [loads(path, chunk, i) for i in range(6)] == [False] * 5 + [True]
    assert "removed 0 unused values" in str(storage.gc())
    storage.close()
    assert dangling_references(path) == 0


@op
async def blob_later(i: int) -> bytes:
    RAN.append(("blob_later", i))
    return bytes([i % 256]) * (1 << 20) + b"!"


def test_an_awaited_miss_whose_value_file_fills_the_disk_returns_its_value_with_a_warning_naming_the_file(small_disk):
    path = small_disk / "s.db"
    storage = Storage(path)

    async def main() -> bytes:
        with storage.run():
            await blob_later(0)
        filler = fill(small_disk)
        with pytest.warns(MandalaUnstoredWarning, match=f"no space left on the disk holding {small_disk / 's.db.blobs'}"):
            async with storage.run():
                value = await blob_later(1)
        filler.unlink()
        return value

    assert asyncio.run(main()) == bytes([1]) * (1 << 20) + b"!"
    storage.close()
    assert list(Storage(path).df(blob_later)["i"]) == [0] and dangling_references(path) == 0


def test_a_miss_whose_value_file_cannot_be_written_returns_its_value_with_a_warning_naming_the_file(tmp_path):
    """The value files' directory on a read-only mount (the database writable): a raw
    OSError from the miss lost the computed value."""
    path = tmp_path / "s.db"
    storage = Storage(path)
    with storage.run():
        blob(0)
    blobs_dir = tmp_path / "s.db.blobs"
    _mount(["--bind", str(blobs_dir)], blobs_dir)
    try:
        _mount(["-o", "remount,bind,ro"], blobs_dir)
        with pytest.warns(MandalaUnstoredWarning, match=rf"op .*blob: cannot write the value file {blobs_dir}/"):
            with storage.run():
                value = blob(1)
                small = inc(1)
        assert value == bytes([1]) * (1 << 20) + b"!" and small == 2
    finally:
        subprocess.run(["umount", "-l", str(blobs_dir)], check=False)
    with storage.run():
        blob(1)
    storage.close()
    assert RAN.count(("blob", 1)) == 2 and loads(path, inc, 1)
    assert dangling_references(path) == 0


def test_a_damaged_value_file_on_a_read_only_mount_is_an_error_naming_it_not_a_raw_oserror(tmp_path):
    path = tmp_path / "s.db"
    storage = Storage(path)
    with storage.run():
        blob(0)
    storage.close()
    blobs_dir = tmp_path / "s.db.blobs"
    (damaged,) = [file for file in blobs_dir.rglob("*") if file.is_file()]
    damaged.write_bytes(b"damaged")
    _mount(["--bind", str(blobs_dir)], blobs_dir)
    try:
        _mount(["-o", "remount,bind,ro"], blobs_dir)
        with pytest.raises(ReadOnlyStorageError, match=f"cannot write the value file {damaged}"):
            with Storage(path).run():
                blob(0)
    finally:
        subprocess.run(["umount", "-l", str(blobs_dir)], check=False)


@op
def same_blob(i: int) -> bytes:
    """blob's value under another op: a second call storing the same value file."""
    RAN.append(("same_blob", i))
    return bytes([i % 256]) * (1 << 20) + b"!"


def test_a_value_file_a_deletion_removed_that_cannot_be_written_again_is_an_error_naming_it(tmp_path):
    """A commit puts back a value file another Storage's deletion removed under a buffered
    call; on a read-only mount a raw OSError came out of the commit (from the temp file's
    clean-up, naming neither the value file nor the op)."""
    path = tmp_path / "s.db"
    with Storage(path).run():
        blob(0)
    blobs_dir = tmp_path / "s.db.blobs"
    storage = Storage(path)
    try:
        with pytest.raises(ReadOnlyStorageError, match=rf"op test_storage_limits.same_blob: cannot write the value file {blobs_dir}/\w\w/\w+ "):
            with storage.run():
                assert same_blob(0) == blob.fn(0)  # its file is there: the row is buffered
                other = Storage(path)
                other.delete_calls(list(other.df(blob)["call"]))  # removes the file
                other.close()
                _mount(["--bind", str(blobs_dir)], blobs_dir)
                _mount(["-o", "remount,bind,ro"], blobs_dir)
    finally:
        subprocess.run(["umount", "-l", str(blobs_dir)], check=False)
    storage.commit()  # writable again: the buffered call is committed, its file put back
    storage.close()
    assert RAN.count(("same_blob", 0)) == 1  # (blob.fn(0) ran in the block, as a plain function)
    assert loads(path, same_blob, 0) and dangling_references(path) == 0


def test_a_miss_under_single_flight_on_a_full_disk_returns_its_value_with_a_warning_not_a_raw_oserror(small_disk):
    """Its call's lock file could not be written: a raw OSError (No space left on device)
    before the body ran, where a lock may cost time but never a result; and the empty lock
    file left behind made other processes wait for it."""
    path = small_disk / "s.db"
    storage = Storage(path, single_flight=True)
    with storage.run():
        inc(0)
    filler = fill(small_disk)
    with pytest.warns(MandalaUnstoredWarning, match=str(path)), storage.run():
        assert inc(1) == 2
    assert list((small_disk / "s.db.locks").iterdir()) == []
    filler.unlink()
    with storage.run():
        assert inc(1) == 2
    storage.close()
    assert loads(path, inc, 1)


def _scratch(n: int) -> bytes:
    RAN.append(("scratch", n))
    return bytes([n]) * 2000  # in val_bytes


@op(nout=2)
def scratch_and_blob(n: int) -> tuple[bytes, bytes]:
    RAN.append(("scratch_and_blob", n))
    return bytes([n]) * 2000, bytes([n]) * (1 << 20) + b"!"  # the first a transient op's output too


@pytest.mark.parametrize("block", ["run", "batch"])
def test_an_output_equal_to_a_transient_value_whose_call_a_full_disk_left_unstored_is_stored_next_time(small_disk, block):
    # Its row had been buffered over the transient op's placeholder when the value file of the
    # call's next output filled the disk: the call was dropped, and with it what this storage
    # knew of the placeholder. Computed again with room, its output was taken for stored: the
    # call showed it as not stored and computed it once more at its next load.
    path = small_disk / "s.db"
    storage = Storage(path)
    with storage.run():
        op(transient=True)(_scratch)(3)
        scratch_and_blob(2)  # (the op's rows are stored: the full disk fails only the value file)
    filler = fill(small_disk)
    with pytest.warns(MandalaUnstoredWarning, match="no space left"):
        with storage.run() if block == "run" else storage.batch(progress=False):  # (Recorder.record_many)
            scratch_and_blob(3)
    filler.unlink()
    with storage.run():
        scratch_and_blob(3)
    table = Storage(path).df(scratch_and_blob)
    assert list(table[table["n"] == 3]["output_0"]) == [bytes([3]) * 2000]
    with Storage(path).run():
        assert scratch_and_blob(3)[0] == bytes([3]) * 2000
    assert RAN.count(("scratch_and_blob", 3)) == 2
    assert Storage(path).verify().ok and dangling_references(path) == 0
