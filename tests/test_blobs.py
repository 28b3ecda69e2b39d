"""Values stored as files (blobs.py): every load checks the file against the digest recorded
when it was stored. A damaged file is computed again inside a run block that may compute, and
is a CorruptValueError everywhere else (queries, tables, blocks without new calls)."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import sqlite3
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from mandala_ast import (
    CorruptValueError,
    MandalaRepairWarning,
    MList,
    Q,
    Storage,
    StorageFormatError,
    UnloadableValueError,
    op,
    register_type,
    transform_source,
)

RUNS: list = []
SIZE = 2 << 20  # past the 1 MiB threshold: stored as a file


@op
def blob(n: int) -> bytes:
    RUNS.append(n)
    return bytes([n]) * SIZE


@op
def array(n: int):
    RUNS.append(n)
    return np.full(SIZE // 8, n, dtype=np.float64)


@op
def rows(n: int) -> list:
    RUNS.append(n)
    return [str(i) * 8 for i in range(SIZE // 16)] + [n]


@pytest.fixture(autouse=True)
def clear_runs():
    RUNS.clear()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


def blob_file(path: Path, value) -> Path:
    """The file holding ``value`` (the only file of that size in the storage)."""
    from mandala_ast.runtime.hashing import content_id

    name = content_id(value).hex()
    return path.parent / f"{path.name}.blobs" / name[:2] / name


def flip_a_bit(file: Path, other: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))


def truncate(file: Path, other: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def replace_with_another(file: Path, other: Path) -> None:
    shutil.copyfile(other, file)


def delete(file: Path, other: Path) -> None:
    file.unlink()


FAULTS = [flip_a_bit, truncate, replace_with_another, delete]


def stored_with_fault(path: Path, fault) -> Path:
    with Storage(path):
        blob(1)
        blob(2)
    file = blob_file(path, bytes([1]) * SIZE)
    fault(file, blob_file(path, bytes([2]) * SIZE))
    RUNS.clear()
    return file


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_value_file_is_computed_again_in_a_run_block(path, fault):
    file = stored_with_fault(path, fault)
    storage = Storage(path)
    with pytest.warns(MandalaRepairWarning, match=rf"blob\(n=1\).*{file.name[:12]}") as warned:
        with storage.run():
            assert blob(1) == bytes([1]) * SIZE
    assert RUNS == [1] and len(warned) == 1
    assert storage.verify().ok
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Storage(path):  # repaired for good: loaded, not computed
            assert blob(1) == bytes([1]) * SIZE and blob(2) == bytes([2]) * SIZE
    assert RUNS == [1]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_value_file_is_an_error_naming_value_call_and_file_in_a_table(path, fault):
    file = stored_with_fault(path, fault)
    with pytest.raises(CorruptValueError) as caught:
        Storage(path).df(blob)
    message = str(caught.value)
    assert file.name[:12] in message and "blob(n=1)" in message and str(file) in message
    assert caught.value.path == file and caught.value.call == "test_blobs.blob(n=1)"
    assert RUNS == []


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_value_file_is_an_error_in_a_query(path, fault):
    file = stored_with_fault(path, fault)
    storage = Storage(path)
    code = transform_source(textwrap.dedent("""\
        import mandala_ast
        with storage.query() as q:
            b = blob(Q())
        """), "user_code.py").source
    namespace = {"storage": storage, "blob": blob, "Q": Q}
    exec(compile(code, "user_code.py", "exec"), namespace)
    with pytest.raises(CorruptValueError, match=file.name[:12]):
        namespace["q"].df()
    assert RUNS == []


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_value_file_is_an_error_where_new_calls_are_not_allowed(path, fault):
    file = stored_with_fault(path, fault)
    with pytest.raises(CorruptValueError, match=r"blob\(n=1\).*new calls are not allowed") as caught:
        with Storage(path).run(allow_new_calls=False):
            blob(1)
    assert caught.value.path == file and RUNS == []


def test_a_damaged_array_file_is_caught_before_it_is_memory_mapped(path):
    with Storage(path):
        array(3)
    flip_a_bit(blob_file(path, np.full(SIZE // 8, 3, dtype=np.float64)), None)
    with pytest.raises(CorruptValueError, match=r"array\(n=3\)"):
        Storage(path).df(array)
    with pytest.warns(MandalaRepairWarning):
        with Storage(path):
            loaded = array(3)
    assert type(loaded) is np.ndarray and isinstance(loaded.base, np.memmap) and (loaded == 3).all()


def test_a_damaged_pickled_value_is_not_unpickled(path):
    with Storage(path):
        expected = rows(4)
    file = blob_file(path, expected)
    truncate(file, None)
    with pytest.raises(CorruptValueError, match="rows"):
        Storage(path).df(rows)
    with pytest.warns(MandalaRepairWarning), Storage(path):
        assert rows(4) == expected


@op
def noisy(n: int) -> bytes:
    RUNS.append(n)
    return bytes([n + len(RUNS)]) * SIZE


def test_a_damaged_value_of_an_op_that_is_not_deterministic_is_an_error_not_another_value(path):
    with Storage(path):
        noisy(1)
    blob_file(path, bytes([2]) * SIZE).unlink()
    with pytest.raises(CorruptValueError, match="not deterministic.*delete_calls"):
        with Storage(path):
            noisy(1)


def test_a_value_file_stored_by_another_process_first_keeps_its_digest(path):
    # Another process wrote the file (bytes that decode to the same value) but not yet its
    # row: the row this process stores must describe the file that is there.
    value = [str(i) * 8 for i in range(SIZE // 16)] + [5]
    file = blob_file(path, value)
    file.parent.mkdir(parents=True)
    import pickle

    file.write_bytes(pickle.dumps(value, protocol=4))  # same content, other bytes
    with Storage(path):
        rows(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Storage(path).df(rows)["output"][0] == value
    assert Storage(path).verify().ok


@pytest.mark.parametrize("fault", [flip_a_bit, truncate, replace_with_another])
def test_a_damaged_value_file_whose_row_was_lost_is_rewritten_when_the_value_is_stored_again(path, fault):
    # Power lost before the commit: the row is gone, and the file, written but never flushed
    # to the disk, is half zeros. Stored again, the value must not be recorded as that file.
    file = stored_with_fault(path, fault)
    for lost in (path, *path.parent.glob(f"{path.name}-*")):
        lost.unlink()
    with Storage(path):
        blob(1)
    assert RUNS == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no repair: the file holds the value again
        assert Storage(path).df(blob)["output"].tolist() == [bytes([1]) * SIZE]
    assert file.read_bytes() == bytes([1]) * SIZE and Storage(path).verify().ok


class Fitted:
    """A value whose id changes in a pickle round trip (what it caches is not pickled) and whose
    pickle differs from process to process (a nonce): a fitted estimator's kind."""

    def __init__(self, n: int, nonce: bytes) -> None:
        self.n, self.nonce, self.payload = n, nonce, bytes([n]) * SIZE

    def __getstate__(self) -> dict:
        return {"n": self.n, "nonce": self.nonce, "payload": self.payload}

    def __setstate__(self, state: dict) -> None:
        self.n, self.payload, self.nonce = state["n"], state["payload"], None


register_type(Fitted, key=lambda fitted: (fitted.n, fitted.payload, fitted.nonce is None))


@op
def fit_a(n: int) -> Fitted:
    return Fitted(n, b"process a")


@op
def fit_b(n: int) -> Fitted:
    return Fitted(n, b"process b")


def test_a_value_file_of_equal_content_in_other_bytes_is_kept_though_its_id_changes_in_a_round_trip(path):
    # Another process's file for the same value: decoded, it is not the id the value had
    # before pickling (neither is this process's own), but it is the same value: kept, and
    # the row the other process committed still describes the file.
    with Storage(path):
        fit_a(1)
    with Storage(path):
        fit_b(1)  # the same id: written to the same file
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no repair of a "corrupt" file
        assert Storage(path).df(fit_a)["output"][0].payload == bytes([1]) * SIZE
    assert Storage(path).verify().ok


def test_verify_reports_each_kind_of_damage(path):
    with Storage(path):
        for n in range(1, 5):
            blob(n)
    one, two, three, four = (blob_file(path, bytes([n]) * SIZE) for n in range(1, 5))
    flip_a_bit(one, None)
    truncate(two, None)
    four.unlink()
    orphan = three.parent.parent / "ff" / ("ff" * 32)
    orphan.parent.mkdir()
    orphan.write_bytes(b"x")
    an_hour_ago = orphan.stat().st_mtime - 3700  # younger, it may be a write in progress
    os.utime(orphan, (an_hour_ago, an_hour_ago))
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO call_outputs VALUES (999, 0, x'00')")
    report = Storage(path).verify()
    assert not report.ok
    assert report.missing == [four.name[:12]]
    assert sorted(text[:12] for text in report.corrupt) == sorted([one.name[:12], two.name[:12]])
    assert report.orphans == [str(orphan)]
    assert report.dangling == [
        "1 call_outputs naming a call that is not stored",
        "1 call_outputs naming a value that is not stored",
    ]
    text = str(report)
    # An orphan is no problem (report.ok says so too): listed after the problems.
    assert text.startswith(f"{path}: 5 problems") and four.name[:12] in text and str(orphan) in text


WRITER = """
import sys, time
from mandala_ast import Storage, op
from mandala_ast.runtime import recording

recording.FLUSH_EVERY_SECONDS = 3600.0  # a slow machine would else commit big(7) before slow(1)

@op
def big(n):
    return bytes([n]) * (2 << 20)

@op
def slow(n):
    time.sleep(120)

with Storage(sys.argv[1]).run():
    big(7)                    # its value file is written now, its row at the block's end
    print("written", flush=True)
    slow(1)
"""


def test_verify_while_another_process_writes_a_value_file_says_ok_and_names_the_file_apart(path, tmp_path):
    """A block still running had written a value file whose row it commits at its end: verify
    said "1 problem: orphan file (storage.gc() removes it)" (gc leaves it for an hour) with
    report.ok True, and `mandala-ast verify` printed that problem and exited 0."""
    import subprocess
    import sys

    with Storage(path):
        blob(1)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "written\n"
        written = blob_file(path, bytes([7]) * SIZE)
        report = Storage(path).verify()
        assert report.ok and report.orphans == [] and report.in_progress == [str(written)]
        text = str(report)
        assert text.startswith(f"{path}: OK") and "problem" not in text and str(written) in text
        cli = Path(sys.executable).with_name("mandala-ast")
        proc = subprocess.run([str(cli), "verify", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.startswith(f"{path}: OK") and "problem" not in proc.stdout
    finally:
        writer.kill()
        writer.wait()


def test_verify_of_an_intact_storage_says_ok(path):
    with Storage(path):
        blob(1)
        rows(2)
    report = Storage(path).verify()
    assert report.ok and report.files == 2 and report.sqlite == ["ok"]
    assert str(report) == (
        f"{path}: OK (SQLite integrity check ok, 2 value files match their digests, no dangling rows)"
    )


@op
def chunks(n: int) -> MList[bytes]:
    RUNS.append(n)
    return [bytes([n + i]) * SIZE for i in range(3)]


def test_a_damaged_element_file_of_a_collection_is_computed_again_in_a_run_block(path):
    with Storage(path):
        chunks(10)
    flip_a_bit(blob_file(path, bytes([11]) * SIZE), None)
    RUNS.clear()
    with pytest.raises(CorruptValueError, match=r"chunks\(n=10\)"):
        Storage(path).df(chunks)
    with pytest.warns(MandalaRepairWarning, match=r"chunks\(n=10\)"), Storage(path):
        assert list(chunks(10)) == [bytes([10 + i]) * SIZE for i in range(3)]
    assert RUNS == [10] and Storage(path).verify().ok


def test_a_damaged_value_file_is_computed_again_in_compiled_code(path):
    stored_with_fault(path, flip_a_bit)
    code = transform_source(textwrap.dedent("""\
        import mandala_ast
        with storage.run():
            b = blob(1)
        """), "user_code.py").source
    namespace = {"storage": Storage(path), "blob": blob}
    with pytest.warns(MandalaRepairWarning, match=r"blob\(n=1\)") as warned:
        exec(compile(code, "user_code.py", "exec"), namespace)
    assert namespace["b"] == bytes([1]) * SIZE and RUNS == [1]
    assert warned[0].filename == "user_code.py"


def test_a_value_file_damaged_after_a_load_is_caught_at_the_next_load(path):
    with Storage(path):
        array(5)
    storage = Storage(path)
    assert (storage.df(array)["output"][0] == 5).all()  # checked once, found intact
    flip_a_bit(blob_file(path, np.full(SIZE // 8, 5, dtype=np.float64)), None)
    with pytest.raises(CorruptValueError, match=r"array\(n=5\)"):
        storage.df(array)
    assert not storage.verify().ok


class Picky:
    """A large value whose class, once "upgraded", refuses its old pickles with ValueError."""

    refuse = False

    def __init__(self, n: int) -> None:
        self.data = bytes([n]) * SIZE

    def __setstate__(self, state: dict) -> None:
        if Picky.refuse:
            raise ValueError("Picky refuses pickles of its old format")
        self.__dict__.update(state)


@op
def picky(n: int) -> Picky:
    RUNS.append(n)
    return Picky(n)


def test_an_intact_value_file_its_class_refuses_to_load_is_the_classs_error_not_a_corruption(path):
    """The file matches its digest, so the error is the user's class's (an UnloadableValueError
    naming the value and its call, from the class's own error): not called corrupt, and not
    'repaired' by computing the call again."""
    with Storage(path):
        picky(1)
    RUNS.clear()
    Picky.refuse = True
    try:
        with pytest.raises(UnloadableValueError, match=r"picky\(n=1\).*refuses pickles") as raised, Storage(path):
            picky(1)
    finally:
        Picky.refuse = False
    assert isinstance(raised.value.__cause__, ValueError) and RUNS == []


@op
def part(n: int) -> bytes:
    RUNS.append(("part", n))
    return bytes([n]) * (SIZE // 2)


@op
def pooled_blob(n: int) -> bytes:
    """Computed from op calls handed to a thread pool: the pool threads need the storage."""
    RUNS.append(("pooled_blob", n))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return b"".join(pool.map(part, [n, n + 1]))


def test_repairing_a_damaged_value_of_an_op_that_uses_a_thread_pool_does_not_hang(path):
    """The repair computes the call again: with the storage's lock held, the pool threads'
    op calls waited for it forever while the body waited for them."""
    with Storage(path):
        expected = pooled_blob(1)
    flip_a_bit(blob_file(path, expected), path)
    RUNS.clear()
    outcome: list = []

    def repair() -> None:
        with pytest.warns(MandalaRepairWarning), Storage(path):
            outcome.append(pooled_blob(1))

    worker = threading.Thread(target=repair, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert outcome == [expected]
    assert RUNS == [("pooled_blob", 1)]  # the parts were stored and intact: loaded


def test_a_file_in_place_of_a_value_files_directory_is_reported_missing_and_a_clear_error_naming_it(path):
    with Storage(path):
        blob(1)
    file = blob_file(path, bytes([1]) * SIZE)
    shutil.rmtree(file.parent)
    file.parent.write_bytes(b"in the way")
    storage = Storage(path)
    assert storage.verify().missing == [file.name[:12]]
    with pytest.raises(CorruptValueError, match=f"the file is missing.*{file}"):
        storage.df(blob)
    with pytest.raises(StorageFormatError, match=f"cannot write the value file {file}: {file.parent} is a file"):
        with storage.run():
            blob(1)


@pytest.mark.parametrize("executor", [None, "threads"])
@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_value_file_is_computed_again_in_a_batch_block(path, fault, executor):
    # A run block repaired it; a batch block, a run block too, raised CorruptValueError.
    file = stored_with_fault(path, fault)
    storage = Storage(path)
    with pytest.warns(MandalaRepairWarning, match=str(file)):
        with storage.batch(executor=executor, progress=False):
            one, two = blob(1), blob(2)
    assert one == bytes([1]) * SIZE and two == bytes([2]) * SIZE
    assert RUNS == [1]
    assert storage.verify().ok


def test_a_directory_in_place_of_a_value_file_is_an_error_naming_it_not_a_raw_isadirectoryerror(path):
    # The load called it missing, and the run block's repair (or a new value's write) then
    # met the directory: a raw IsADirectoryError naming a temp file, or naming nothing.
    with Storage(path):
        blob(1)
    stored = blob_file(path, bytes([1]) * SIZE)
    stored.unlink()
    stored.mkdir()
    new = blob_file(path, bytes([2]) * SIZE)
    new.mkdir(parents=True)
    storage = Storage(path)
    assert storage.verify().missing == [stored.name[:12]]
    for n, file in ((1, stored), (2, new)):
        with pytest.raises(StorageFormatError, match=f"cannot write the value file {file}: it is a directory"):
            with storage.run():
                blob(n)


@op
def outer_of_blob(n: int) -> int:
    return len(blob(n))


def test_a_storage_opened_through_a_symlink_keeps_its_value_files_beside_the_file_itself(tmp_path):
    """They went beside the link (``latest.db.blobs``): the file opened by its own name, or
    by another link, found them missing, and moving the link lost them."""
    real = tmp_path / "runs" / "run_1.db"
    Storage(real).close()
    link = tmp_path / "latest.db"
    link.symlink_to(real)
    with Storage(link).run():
        blob(1)
    with Storage(link).run():
        outer_of_blob(1)  # loads blob(1)'s file: no data file the body read
    assert not Path(f"{link}.blobs").exists()
    storage = Storage(real)
    with storage.run(allow_new_calls=False):
        assert blob(1) == bytes([1]) * SIZE and outer_of_blob(1) == SIZE
    assert storage.verify().ok and RUNS == [1]
    storage.delete_calls(storage.df(blob), dependents=False)  # its file goes too
    with Storage(link).run(allow_new_calls=False):
        assert outer_of_blob(1) == SIZE


def linked_with_files_beside_the_link(tmp_path, n: int) -> tuple[Path, Path]:
    """A storage and a symlink to it, blob(n)'s value file beside the link, where an earlier
    version kept the files of a storage opened through a link."""
    real = tmp_path / "runs" / "run_1.db"
    with Storage(real).run():
        blob(n)
    link = tmp_path / "latest.db"
    link.symlink_to(real)
    Path(f"{real}.blobs").rename(f"{link}.blobs")
    return real, link


def test_value_files_an_earlier_version_kept_beside_a_symlink_are_still_found_through_it(tmp_path):
    real, link = linked_with_files_beside_the_link(tmp_path, 2)
    with Storage(link).run(allow_new_calls=False):
        assert blob(2) == bytes([2]) * SIZE
    assert Storage(link).verify().ok


def test_value_files_kept_beside_a_symlink_are_found_through_it_after_the_file_itself_got_some(tmp_path):
    """Once a value file went beside the file itself (a job opening it by its own name), the
    link looked only there: each value an earlier version kept beside the link was missing,
    and its call computed again (an error where new calls are not allowed)."""
    real, link = linked_with_files_beside_the_link(tmp_path, 3)
    with Storage(real).run():
        blob(4)  # its file goes beside the file itself
    with Storage(link).run(allow_new_calls=False):
        assert blob(3) == bytes([3]) * SIZE and blob(4) == bytes([4]) * SIZE
    assert Storage(link).verify().ok and RUNS == [3, 4]
    storage = Storage(link)
    storage.delete_calls(storage.df(blob), dependents=False)  # both files go
    assert not any(path.is_file() for path in tmp_path.rglob("*.blobs/*/*"))


@op
def byte_sum(data: bytes) -> int:
    return sum(data[:8])


def test_a_lost_file_of_a_value_only_given_as_an_argument_says_which_call_took_it_and_what_to_do(path):
    """A researcher's data set, read from disk and passed to an op, is stored as a value file
    no op computed. The file went missing (a clean-up of large files). `storage.df` raised
    an error naming no call and advising a run block, which only finds the call stored and
    never writes the file again; verify's line named neither the call nor the file."""
    data = bytes([9]) * SIZE
    with Storage(path):
        byte_sum(data)
    file = blob_file(path, data)
    file.unlink()
    storage = Storage(path)
    with storage.run():
        assert byte_sum(data) == 72  # a hit: its input is not read
    with pytest.raises(CorruptValueError) as lost:
        storage.df(byte_sum)
    message = str(lost.value)
    assert "argument data of test_blobs.byte_sum(data=<value" in message and str(file) in message
    assert "run block computes it again" not in message and "storage.delete_calls" in message
    storage.delete_calls([bytes.fromhex(storage.provenance(byte_sum)["call"][0])])
    with storage.run():
        byte_sum(data)
    assert storage.verify().ok and storage.df(byte_sum)["output"].tolist() == [72]


def test_verify_names_the_call_and_the_file_of_a_missing_value_file(path):
    with Storage(path):
        blob(3)
        byte_sum(bytes([9]) * SIZE)
    made, given = blob_file(path, bytes([3]) * SIZE), blob_file(path, bytes([9]) * SIZE)
    made.unlink()
    given.unlink()
    text = str(Storage(path).verify())
    assert f"missing value file: {made.name[:12]} (output of test_blobs.blob(n=3)): {made}" in text
    assert f"missing value file: {given.name[:12]} (argument data of test_blobs.byte_sum(data=<value" in text
    assert str(given) in text
