"""Removing unused values and their blob files (runtime/reclaim.py), shared by deletion and gc.

The functions run on real storage files written through ``Storage``, over a second connection
(a ``SQLiteStore`` of the same file), as deletion and gc run them; what is checked is which
rows and files remain.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from mandala_ast import DeleteReport, GcReport, MList, Storage, op
from mandala_ast.runtime.blobs import BlobDir
from mandala_ast.runtime.hashing import content_id
from mandala_ast.runtime.reclaim import (
    ReclaimReport,
    format_bytes,
    remove_blob_files,
    remove_unreferenced_values,
)
from mandala_ast.runtime.store import SQLiteStore

BIG = 1 << 18  # float64 elements: 2 MiB, stored as a file


@op
def ones(n: int) -> np.ndarray:
    return np.ones(n)


@op
def total(xs: MList[int]) -> int:
    return sum(xs)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


def reclaim_all(path: Path) -> tuple[int, int, list[bytes]]:
    """What gc's first step does: offer every value, in one write transaction."""
    store, blobs = SQLiteStore(path), BlobDir(Path(f"{path}.blobs"))
    return store.write_transaction(lambda conn: remove_unreferenced_values(conn, "SELECT cid FROM main.vals", blobs))


def stored_cids(path: Path) -> set[bytes]:
    with sqlite3.connect(path) as conn:
        return {cid for (cid,) in conn.execute("SELECT cid FROM vals")}


def add_unused_value(path: Path, cid: bytes, *, external: int = 0) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO val_rows VALUES (?, 'json', '1', 1, ?)", (cid, external))


class TestValueRows:
    def test_only_values_no_call_refers_to_are_removed(self, path):
        storage = Storage(path)
        with storage.run():
            ones(3)
        kept = stored_cids(path)
        add_unused_value(path, b"\x01" * 32)
        count, size, external = reclaim_all(path)
        assert (count, size, external) == (1, 1, [])
        assert stored_cids(path) == kept

    def test_elements_of_a_stored_list_are_kept_though_no_call_names_them(self, path):
        storage = Storage(path)
        with storage.run():
            total([1001, 1002, 1003])
        assert {content_id(x) for x in (1001, 1002, 1003)} <= stored_cids(path)
        assert reclaim_all(path)[0] == 0
        assert Storage(path).df(total)["xs"][0] == [1001, 1002, 1003]

    def test_a_value_stored_as_a_file_is_named_for_removal_after_the_commit(self, path):
        cid = b"\x02" * 32
        Storage(path)  # creates the file and its tables
        add_unused_value(path, cid, external=1)
        assert reclaim_all(path) == (1, 1, [cid])


class TestBlobFiles:
    def test_the_file_of_a_removed_row_is_unlinked(self, path):
        storage = Storage(path)
        with storage.run():
            ones(BIG)
        blobs = BlobDir(Path(f"{path}.blobs"))
        cid = content_id(np.ones(BIG))
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM call_outputs")
        assert reclaim_all(path)[2] == [cid]
        assert remove_blob_files(SQLiteStore(path), blobs, [cid]) == 1
        assert not blobs.path(cid).exists()

    def test_a_file_whose_row_is_still_there_is_put_back(self, path):
        storage = Storage(path)
        with storage.run():
            ones(BIG)
        blobs = BlobDir(Path(f"{path}.blobs"))
        cid = content_id(np.ones(BIG))
        assert remove_blob_files(SQLiteStore(path), blobs, [cid]) == 0
        assert blobs.path(cid).exists()
        assert np.array_equal(Storage(path).df(ones)["output"][0], np.ones(BIG))

    def test_a_memory_storage_has_no_files_to_remove(self):
        assert remove_blob_files(SQLiteStore(None), None, [b"\x03" * 32]) == 0


class TestReports:
    @pytest.mark.parametrize("report, line", [
        (DeleteReport(calls=3, dependents=1, values=2, bytes_freed=1500),
         "deleted 3 calls (2 matched, 1 computed from them) and 2 values (1.5 kB)"),
        (GcReport(values=2, files=1, bytes_before=5000, bytes_after=3500),
         "removed 2 unused values and 1 stray file; 5.0 kB -> 3.5 kB on disk"),
    ])
    def test_delete_and_gc_reports_share_the_reclaim_shape(self, report, line):
        assert isinstance(report, ReclaimReport)
        assert (report.values, report.bytes_freed) == (2, 1500)
        assert str(report) == line

    def test_each_report_keeps_its_fields_in_order(self):
        """Positional construction (DeleteReport(0, 0, 0, 0)) keeps working (a field added
        later comes last, with a default)."""
        fields = ["calls", "dependents", "values", "bytes_freed", "collections"]
        assert [f.name for f in dataclasses.fields(DeleteReport)] == fields
        assert DeleteReport(0, 0, 0, 0).collections == 0
        assert [f.name for f in dataclasses.fields(GcReport)] == ["values", "files", "bytes_before", "bytes_after"]

    def test_sizes_read_in_decimal_units(self):
        assert [format_bytes(n) for n in (999, 1000, 1_250_000, 3 * 10**12, 4 * 10**15)] == [
            "999 B", "1.0 kB", "1.2 MB", "3.0 TB", "4000.0 TB"
        ]
