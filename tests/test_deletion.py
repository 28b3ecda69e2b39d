"""Deleting calls and reclaiming space: ``storage.delete_calls`` and ``storage.gc``.

Every test uses a real storage file in tmp_path and checks what a user can observe: which op
bodies run again, what ``storage.df`` lists, which files exist, what another process sees.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from integrity import dangling_references

import mandala_ast
from mandala_ast import ArgumentError, DeleteReport, GcReport, Storage, StorageBusyError
from mandala_ast.runtime import deletion as deletion_module, store as store_module

REPO = Path(__file__).resolve().parent.parent
BIG = 1 << 18  # float64 elements: 2 MiB, stored as a blob file

# One user module, run compiled (exact history) or as written (content identity only).
MODULE = """\
import numpy as np
from mandala_ast import MList, op

RUNS = []
#: inc(x) = x + 1 and add(., 10) over these: no output equals another call's argument, so
#: content identity cannot take one call's input for another's output.
SPACED = (0, 100, 200, 300, 400)


@op
def inc(x):
    RUNS.append(("inc", x))
    return x + 1


@op
def add(y, z):
    RUNS.append(("add", y, z))
    return y + z


@op
def dec(x):
    RUNS.append(("dec", x))
    return x - 1


@op
def ones(n):
    RUNS.append(("ones", n))
    return np.ones(n)


@op
def total(arr):
    RUNS.append(("total",))
    return float(arr.sum())


@op
def length(arr):
    RUNS.append(("length",))
    return len(arr)


@op
def make(n: int) -> MList[int]:
    return [1000 + i for i in range(n)]


@op
def total_of(xs: MList[int]) -> int:
    return sum(xs)


@op
def count_of(xs: MList[int]) -> int:
    return len(xs)


@op
def indices(n: int) -> MList[int]:
    return list(range(n))


def two_lists(storage):
    with storage.run():
        indices(3)  # elements 0, 1 and 2
        for e in make(3):  # keys 0, 1 and 2
            inc(e)


def pipeline(storage, xs=SPACED):
    with storage.run():
        for x in xs:
            y = inc(x)
            add(y, 10)


def pipeline_over_range(storage, n):
    with storage.run():
        for x in range(n):
            y = inc(x)
            add(y, 10)


def elements_then_a_literal(storage):
    with storage.run():
        make(3)  # elements 1000, 1001 and 1002
        y = inc(1001)  # a literal that merely equals an element
        add(y, 10)


def a_long_list(storage, n):
    with storage.run():
        xs = make(n)
        for e in xs[::100]:  # every 100th element: 1000, 1100, ...
            inc(e)
        total_of(xs)
        count_of([1000, 1001])  # a list of the user's own whose elements equal two of make's


def lists_of_outputs(storage):
    with storage.run():
        a = inc(100)
        b = inc(200)
        total_of([a, b])
        count_of([b])
        add(a, 10)


def two_producers(storage):
    with storage.run():
        a = add(inc(2), 10)
        b = add(dec(4), 10)


def use_after_a_dropping_commit(runner, delete):
    with runner.run():
        y = inc(200)
        delete()
        z = add(y, 20)  # 201 is gone: dropped at the commit
        runner.commit()
        return inc(z)
"""


def load(path: Path, name: str, *, compiled: bool) -> ModuleType:
    """Import the module at ``path`` as ``name``, through the compiler or as written."""
    if compiled:
        return mandala_ast.compile_module(path, name=name)
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["plain", "compiled"])
def both(request, tmp_path: Path) -> Iterator[ModuleType]:
    """The user module, once as written and once compiled."""
    yield from _module(request, tmp_path, compiled=request.param == "compiled")


@pytest.fixture
def plain(request, tmp_path: Path) -> Iterator[ModuleType]:
    yield from _module(request, tmp_path, compiled=False)


@pytest.fixture
def compiled(request, tmp_path: Path) -> Iterator[ModuleType]:
    yield from _module(request, tmp_path, compiled=True)


def _module(request, tmp_path: Path, *, compiled: bool) -> Iterator[ModuleType]:
    path = tmp_path / "user_pipeline.py"
    path.write_text(MODULE)
    name = "deletion_" + "".join(c if c.isalnum() else "_" for c in request.node.name)
    yield load(path, name, compiled=compiled)
    sys.modules.pop(name, None)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


def row_of(storage: Storage, fn, **where) -> pd.DataFrame:
    df = storage.df(fn)
    for column, value in where.items():
        df = df[df[column] == value]
    return df


def blob_files(db: Path) -> list[Path]:
    root = Path(f"{db}.blobs")
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def count_rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


class TestRecomputeAfterDelete:
    def test_a_block_recomputes_exactly_the_deleted_call_and_its_dependents(self, db, both):
        storage = Storage(db)
        both.pipeline(storage)
        report = storage.delete_calls(row_of(storage, both.inc, x=200))
        assert (report.calls, report.dependents) == (2, 1)
        both.RUNS.clear()
        both.pipeline(storage)
        assert both.RUNS == [("inc", 200), ("add", 201, 10)]

    def test_compiled_code_tells_an_equal_argument_from_a_deleted_output(self, db, compiled):
        """inc(3)'s argument equals inc(2)'s output, yet it stays: compiled code recorded that
        its 3 came from range(), not from inc(2). (A loop over a parameter, `for x in xs`,
        may be given op outputs: its calls are recorded inexact, as uncompiled code's are.)"""
        storage = Storage(db)
        compiled.pipeline_over_range(storage, 5)
        report = storage.delete_calls(row_of(storage, compiled.inc, x=2))
        assert (report.calls, report.dependents) == (2, 1)
        compiled.RUNS.clear()
        compiled.pipeline_over_range(storage, 5)
        assert compiled.RUNS == [("inc", 2), ("add", 3, 10)]

    def test_uncompiled_code_cannot_so_the_equal_argument_goes_too(self, db, plain):
        """Content identity only: inc(3) may have been called on inc(2)'s output."""
        storage = Storage(db)
        plain.pipeline(storage, range(5))
        report = storage.delete_calls(row_of(storage, plain.inc, x=2))
        assert (report.calls, report.dependents) == (6, 5)

    def test_compiled_consumer_of_an_equal_value_from_another_call_survives(self, db, compiled):
        """add(dec(4), 10) has the same content as add(inc(2), 10) but another history."""
        storage = Storage(db)
        compiled.two_producers(storage)
        report = storage.delete_calls(row_of(storage, compiled.inc, x=2))
        assert (report.calls, report.dependents) == (2, 1)
        assert storage.df(compiled.add)["y"].tolist() == [3]
        compiled.RUNS.clear()
        compiled.two_producers(storage)
        assert compiled.RUNS == [("inc", 2)]  # add(3, 10) is found by content

    def test_uncompiled_input_is_attributed_to_its_earliest_producer(self, db, plain):
        """As storage.provenance shows it: dec(4) also returns 3, but later than inc(2)."""
        storage = Storage(db)
        plain.two_producers(storage)
        assert storage.delete_calls(row_of(storage, plain.dec, x=4)).calls == 1
        assert storage.delete_calls(row_of(storage, plain.inc, x=2)).calls == 2

    def test_an_uncompiled_consumer_after_both_producers_goes_with_the_earliest_only(self, db, plain):
        """inc(2) and later dec(4) both return 3; add(3, 10), recorded after both, took it
        from inc(2) as provenance says: deleting dec(4) leaves it, deleting inc(2) does not."""
        storage = Storage(db)
        with storage.run():
            plain.inc(2)
        with storage.run():
            plain.dec(4)
        with storage.run():
            plain.add(3, 10)
        assert storage.delete_calls(row_of(storage, plain.dec, x=4)).calls == 1
        assert storage.delete_calls(row_of(storage, plain.inc, x=2)).calls == 2

    def test_uncompiled_consumer_recorded_before_the_equal_value_was_produced_survives(self, db, plain):
        """add(3, 10) took a raw 3 before inc(2) ever returned 3: content provenance cannot
        have taken inc(2)'s output for its input, so deleting inc(2) must leave it."""
        storage = Storage(db)
        with storage.run():
            plain.add(3, 10)
        with storage.run():
            plain.inc(2)
        report = storage.delete_calls(row_of(storage, plain.inc, x=2))
        assert (report.calls, report.dependents) == (1, 0)
        assert storage.df(plain.add)["y"].tolist() == [3]
        plain.RUNS.clear()
        with storage.run():
            plain.add(3, 10)
        assert plain.RUNS == []

    def test_without_dependents_only_the_matched_calls_go(self, db, both):
        storage = Storage(db)
        both.pipeline(storage)
        report = storage.delete_calls(row_of(storage, both.inc, x=200), dependents=False)
        assert (report.calls, report.dependents) == (1, 0)
        both.RUNS.clear()
        both.pipeline(storage)
        assert both.RUNS == [("inc", 200)]

    def test_a_call_deleted_without_dependents_and_computed_again_is_their_producer_again(self, db, compiled):
        """Format 5 keys an input's source by the producer's row id: the dependents kept the
        deleted row's id, the recomputed call got a new one, and add(inc(200), 10) was no
        longer computed from inc(200): provenance lost it and deleting inc(200) again left it."""
        storage = Storage(db)
        compiled.pipeline(storage)
        storage.delete_calls(row_of(storage, compiled.inc, x=200), dependents=False)
        with sqlite3.connect(db) as conn:  # a source that is gone is a call, not a literal
            assert conn.execute("SELECT COUNT(*) FROM inputs WHERE name = 'y' AND src_call IS NULL").fetchone()[0] == 0
        compiled.pipeline(storage)  # inc(200) again; add(201, 10) is found by its history
        provenance = storage.provenance(compiled.add)
        assert provenance[provenance.input == "y"].producer_op.tolist() == [compiled.inc.name] * 5
        report = storage.delete_calls(row_of(storage, compiled.inc, x=200))
        assert (report.calls, report.dependents) == (2, 1)
        compiled.RUNS.clear()
        compiled.pipeline(storage)
        assert compiled.RUNS == [("inc", 200), ("add", 201, 10)]

    def test_provenance_of_an_input_whose_producer_was_deleted_does_not_pass_it_for_raw(self, db, compiled):
        """After delete_calls(..., dependents=False), add(inc(200), 10)'s input showed no
        producer, as a literal typed in does: it names the deleted call instead."""
        storage = Storage(db)
        compiled.pipeline(storage)
        deleted = row_of(storage, compiled.inc, x=200)["call"].item()
        storage.delete_calls([deleted], dependents=False)
        provenance = storage.provenance(compiled.add)
        rows = provenance[(provenance.input == "y") & (provenance.producer_op != compiled.inc.name)]
        assert rows[["producer_op", "producer_call", "output_index", "exact"]].values.tolist() == [
            ["<deleted call>", deleted, 0, True]
        ]

    def test_every_row_of_the_matched_computation_goes(self, db, compiled):
        """add(inc(2), 10) and add(dec(4), 10) are two rows of one computation (the df shows
        one): deleting it leaves no row to serve it."""
        storage = Storage(db)
        compiled.two_producers(storage)
        report = storage.delete_calls(storage.df(compiled.add))
        assert (report.calls, report.dependents) == (2, 0)
        assert storage.df(compiled.add).empty
        compiled.RUNS.clear()
        compiled.two_producers(storage)
        assert compiled.RUNS == [("add", 3, 10)]


class TestValues:
    def test_a_value_still_used_by_a_surviving_call_is_kept(self, db, plain):
        arr = np.arange(BIG, dtype=np.float64)
        storage = Storage(db)
        with storage.run():
            plain.total(arr)
            plain.length(arr)
        assert len(blob_files(db)) == 1
        report = storage.delete_calls(storage.df(plain.total))
        assert report.values == 1  # total's output; arr is still length's input
        assert len(blob_files(db)) == 1
        assert np.array_equal(Storage(db).df(plain.length)["arr"][0], arr)
        report = storage.delete_calls(storage.df(plain.length))
        assert report.values == 2 and report.bytes_freed > arr.nbytes
        assert blob_files(db) == []

    def test_an_unused_output_and_its_blob_file_are_removed(self, db, plain):
        storage = Storage(db)
        with storage.run():
            plain.ones(BIG)
        assert len(blob_files(db)) == 1
        report = storage.delete_calls(storage.df(plain.ones))
        assert report.values == 2 and report.bytes_freed > BIG * 8
        assert blob_files(db) == []
        assert dangling_references(db) == 0


class TestStructures:
    """MList elements are values of their own, held by the list's row (runtime/structures.py)."""

    def test_elements_of_a_surviving_list_stay(self, db, plain):
        storage = Storage(db)
        xs = [1001, 1002, 1003]
        with storage.run():
            plain.total_of(xs)
            plain.count_of(xs)
        assert storage.delete_calls(storage.df(plain.total_of)).values == 1  # only the sum
        assert Storage(db).df(plain.count_of)["xs"][0] == xs
        report = storage.delete_calls(storage.df(plain.count_of))
        assert report.values == 5  # the list, its 3 elements, the count
        assert count_rows(db, "vals") == 0

    def test_deleting_the_producer_of_a_list_takes_its_elements(self, db, both):
        storage = Storage(db)
        with storage.run():
            xs = both.make(3)
            both.total_of(xs)
        report = storage.delete_calls(storage.df(both.make))
        assert (report.calls, report.dependents) == (5, 4)  # 3 element calls and total_of
        assert count_rows(db, "calls") == count_rows(db, "vals") == 0

    def test_delete_calls_given_an_element_call_id_names_it_and_the_collections_call(self, db, both):
        """provenance shows `inc(1001)` came from element 1 of make(3): passing that element's
        call id deleted nothing and said so only as "deleted 0 calls". An element is stored
        with its list and cannot go alone: the error names the id, the list's op and call."""
        storage = Storage(db)
        with storage.run():
            for e in both.make(3):
                both.inc(e)
        element = storage.provenance(both.inc).sort_values("call")["producer_call"].iloc[0]
        make_call = storage.df(both.make)["call"].item()
        with pytest.raises(ArgumentError) as raised:
            storage.delete_calls([element])
        message = str(raised.value)
        assert element[:12] in message and make_call[:12] in message and "make" in message
        assert len(storage.df(both.inc)) == 3 and len(storage.df(both.make)) == 1
        assert storage.delete_calls([element, make_call]).calls == 7  # with its list: no error

    def test_an_element_whose_list_was_deleted_without_dependents_is_deleted_by_its_id(self, db, both):
        """make(3) deleted with dependents=False leaves its element calls, which provenance
        still shows as the inc calls' producers. Given one's id, delete_calls said to pass the
        list's call, which is deleted: no way was left to delete the element and its inc."""
        storage = Storage(db)
        with storage.run():
            for e in both.make(3):
                both.inc(e)
        storage.delete_calls(storage.df(both.make), dependents=False)
        provenance = storage.provenance(both.inc)
        inc_1000 = row_of(storage, both.inc, x=1000)["call"].item()
        element = provenance[provenance["call"] == inc_1000]["producer_call"].item()
        report = storage.delete_calls([element])
        assert (report.calls, report.dependents) == (2, 1)  # the element's call and inc(1000)
        assert sorted(storage.df(both.inc)["x"]) == [1001, 1002]

    def test_deleting_a_list_of_thousands_of_elements_takes_exactly_what_was_computed_from_it(
        self, db, both, request
    ):
        """A list of 100,000 elements took 12 s to delete: the closure is now computed through
        the calls' integer keys, and element calls are asked for their consumers once. The
        same calls and values go: its element calls, the calls given its elements or itself;
        not another list holding equal literals in compiled code, nor those elements (uncompiled
        code, which matches by content, takes the call given it, as it takes a call given an
        equal value directly)."""
        plain = request.node.callspec.params["both"] == "plain"
        storage = Storage(db)
        both.a_long_list(storage, 3000)
        report = storage.delete_calls(storage.df(both.make))
        # 3000 elements, 30 inc, total_of (and count_of, by content)
        assert (report.calls, report.dependents) == (3032 + plain, 3031 + plain)
        assert report.collections == plain  # uncompiled code's record of count_of's elements
        assert storage.df(both.count_of)["xs"].tolist() == ([] if plain else [[1000, 1001]])
        assert count_rows(db, "vals") == (0 if plain else 4)  # that list, its two elements, and its count: 2
        assert storage.verify().ok
        assert storage.delete_calls(storage.df(both.count_of)).values == (0 if plain else 4)
        both.RUNS.clear()
        both.a_long_list(storage, 3000)
        assert sorted(both.RUNS) == [("inc", 1000 + 100 * i) for i in range(30)]

    def test_deleting_a_call_deletes_the_calls_given_its_output_as_an_element_of_an_mlist(self, db, both):
        """Uncompiled code: total_of([a, b]) was kept when inc(100), a's call, was deleted,
        though a call given a directly goes (compiled code records the list's elements)."""
        storage = Storage(db)
        both.lists_of_outputs(storage)
        report = storage.delete_calls(row_of(storage, both.inc, x=100))
        assert (report.calls, report.dependents, report.collections) == (3, 2, 1)  # inc, add, total_of
        assert storage.df(both.total_of).empty and storage.df(both.add).empty
        assert storage.df(both.count_of)["xs"].tolist() == [[201]]
        assert dangling_references(db) == 0 and storage.verify().ok
        both.RUNS.clear()
        both.lists_of_outputs(storage)
        assert both.RUNS == [("inc", 100), ("add", 101, 10)]  # and total_of (not listed), computed again
        assert len(storage.df(both.total_of)) == 1

    def test_deleting_a_call_deletes_the_uncompiled_calls_given_its_output_in_an_mdict_or_mset(self, db, plain):
        storage = Storage(db)
        with storage.run():
            a, b = plain.inc(100), plain.inc(200)
            by_key(dict(a=a, b=b))
            distinct({a, b})
            distinct({b})
        storage.delete_calls(row_of(storage, plain.inc, x=100))
        assert storage.df(by_key).empty
        assert storage.df(distinct)["xs"].tolist() == [{201}]

    def test_deleting_the_consumer_of_an_mlist_deletes_its_record_of_the_elements(self, db, plain):
        """The record that total_of's list held a and b goes with the last call given it, or
        it would keep the list and its elements stored for good."""
        storage = Storage(db)
        with storage.run():
            a, b = plain.inc(100), plain.inc(200)
            plain.total_of([a, b])
            plain.count_of([a, b])
        assert storage.delete_calls(storage.df(plain.total_of)).collections == 0  # count_of is given it
        report = storage.delete_calls(storage.df(plain.count_of))
        assert (report.calls, report.collections, report.values) == (1, 1, 2)  # the count, the list
        assert count_rows(db, "calls") == 2 and dangling_references(db) == 0

    def test_a_call_given_the_list_again_after_its_deletion_is_deleted_with_an_element_s_producer(self, db, plain):
        """The storage remembered the record of the list's elements it had written, which the
        deletion of total_of took: computed again, total_of got none, and outlived inc(100)."""
        storage = Storage(db)
        for _ in range(2):
            with storage.run():
                plain.total_of([plain.inc(100), plain.inc(200)])
            storage.delete_calls(storage.df(plain.total_of))
        with storage.run():
            plain.total_of([plain.inc(100), plain.inc(200)])
        storage.delete_calls(row_of(storage, plain.inc, x=100))
        assert storage.df(plain.total_of).empty

    def test_a_delete_block_deletes_the_uncompiled_calls_given_an_output_in_an_mlist(self, db, plain):
        storage = Storage(db)
        with storage.run():
            plain.total_of([plain.inc(100), plain.inc(200)])
        code = "import mandala_ast\nwith storage.delete():\n    y = inc(100)\n"
        namespace = {"__name__": "user_code", "storage": storage, "inc": plain.inc}
        exec(compile(mandala_ast.transform_source(code, "user_code.py").source, "user_code.py", "exec"), namespace)
        assert storage.df(plain.total_of).empty and storage.df(plain.inc)["x"].tolist() == [200]

    def test_deleting_a_list_keeps_a_later_call_whose_literal_equals_an_element(self, db, compiled):
        """A researcher deletes `make(3)`, an MList of 1000..1002, to recompute it. `inc(1001)`
        stored later took a literal that merely equals an element: compiled code recorded it
        raw, exactly. It went too (with every call computed from it, a whole pipeline when the
        elements are small ints such as seeds), and provenance named an element as its source."""
        storage = Storage(db)
        compiled.elements_then_a_literal(storage)
        provenance = storage.provenance(compiled.inc)
        assert provenance["exact"].tolist() == [True] and provenance["producer_call"].isna().all()
        report = storage.delete_calls(storage.df(compiled.make))
        assert (report.calls, report.dependents) == (4, 3)  # make(3) and its 3 element calls
        compiled.RUNS.clear()
        compiled.elements_then_a_literal(storage)
        assert compiled.RUNS == []

    def test_deleting_a_list_keeps_the_element_calls_of_a_later_list_whose_keys_equal_its_elements(
        self, db, both
    ):
        """`indices(3)` returned 0, 1, 2; `make(3)`, stored later, has keys 0, 1, 2. Deleting
        indices(3) took make(3)'s element calls (their key inputs equal the deleted elements)
        and the inc calls given its elements, leaving make(3) stored without the record of its
        elements: a query `for e in make(Q())` found nothing from then on."""
        storage = Storage(db)
        both.two_lists(storage)
        report = storage.delete_calls(storage.df(both.indices))
        assert (report.calls, report.dependents) == (4, 3)  # indices(3) and its 3 element calls
        both.RUNS.clear()
        both.two_lists(storage)
        assert both.RUNS == []
        assert list(storage.provenance(both.inc)["producer_op"]) == ["mandala_ast.__item__"] * 3

    def test_an_exact_call_stored_before_compiled_code_marked_elements_inexact_goes_with_the_element(
        self, db, compiled
    ):
        # Compiled code used to record `for e in xs: inc(e)` exact, the element raw: in calls it
        # stored then, such an input is taken as the element it equals.
        storage = Storage(db)
        compiled.elements_then_a_literal(storage)
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE calls SET created_at = created_at - 400 * 86400")
        report = Storage(db).delete_calls(storage.df(compiled.make))
        assert (report.calls, report.dependents) == (6, 5)  # inc(1001) and add(1002, 10) too


class TestVisibility:
    def test_df_and_a_new_storage_no_longer_see_deleted_calls(self, db, plain):
        storage = Storage(db)
        plain.pipeline(storage)
        storage.delete_calls(row_of(storage, plain.inc, x=200))
        assert 200 not in storage.df(plain.inc)["x"].tolist()
        assert 201 not in storage.df(plain.add)["y"].tolist()
        fresh = Storage(db)
        assert sorted(fresh.df(plain.inc)["x"]) == [0, 100, 300, 400]
        plain.RUNS.clear()
        plain.pipeline(fresh)
        assert plain.RUNS == [("inc", 200), ("add", 201, 10)]

    def test_a_storage_opened_before_the_deletion_recomputes_at_its_next_block(self, db, plain):
        first, second = Storage(db), Storage(db)
        plain.pipeline(first)
        plain.pipeline(second)  # loads: now in second's memory
        first.delete_calls(row_of(first, plain.inc, x=200))
        plain.RUNS.clear()
        plain.pipeline(second)
        assert plain.RUNS == [("inc", 200), ("add", 201, 10)]

    def test_a_deletion_that_frees_no_value_is_still_seen_by_other_storages(self, db, plain):
        # inc(1)'s values 1 and 2 stay in use by add(1, 2): deleting inc(1) frees no value.
        first, second = Storage(db), Storage(db)
        for storage in (first, second):  # second loads: now in its memory
            with storage.run():
                plain.inc(1)
                plain.add(1, 2)
        report = first.delete_calls(row_of(first, plain.inc, x=1), dependents=False)
        assert (report.calls, report.values) == (1, 0)
        plain.RUNS.clear()
        with second.run():
            assert plain.inc(1) == 2
        assert plain.RUNS == [("inc", 1)]
        assert Storage(db).df(plain.inc)["x"].tolist() == [1]


class TestDeletionDuringABlock:
    """Another Storage deletes while a block is running: its commit must not refer to rows
    that are gone (it would otherwise skip storing a value it believes stored)."""

    def test_a_call_on_a_deleted_value_is_not_committed(self, db, plain):
        deleter, runner = Storage(db), Storage(db)
        plain.pipeline(runner)
        with runner.run():
            y = plain.inc(200)  # a hit: runner knows 201 is stored
            deleter.delete_calls(row_of(deleter, plain.inc, x=200))  # 201 is used no more: gone
            plain.add(y, 20)
        assert dangling_references(db) == 0
        plain.RUNS.clear()
        plain.pipeline(runner)
        with runner.run():
            plain.add(plain.inc(200), 20)
        assert plain.RUNS == [("inc", 200), ("add", 201, 10), ("add", 201, 20)]

    def test_a_blob_file_deleted_under_a_buffered_value_is_written_again(self, db, plain):
        arr = np.ones(BIG)
        deleter, runner = Storage(db), Storage(db)
        with deleter.run():
            plain.ones(BIG)
        with runner.run():
            plain.total(arr)  # same content as ones' output: the file exists, the row is buffered
            deleter.delete_calls(deleter.df(plain.ones))
            assert blob_files(db) == []
        assert len(blob_files(db)) == 1
        assert np.array_equal(Storage(db).df(plain.total)["arr"][0], arr)
        assert dangling_references(db) == 0


def on_disk(db) -> int:
    """The database and its write-ahead log: where the rows are until a checkpoint."""
    wal = f"{db}-wal"
    return os.path.getsize(db) + (os.path.getsize(wal) if os.path.exists(wal) else 0)


class TestGc:
    def test_gc_shrinks_the_file_after_deleting_many_calls(self, db, plain):
        storage = Storage(db)
        plain.pipeline(storage, range(1, 15000, 3))  # 5000 calls of each op, no value collides
        storage.delete_calls(storage.df(plain.inc))
        before = on_disk(db)
        report = storage.gc()
        assert on_disk(db) < before / 4
        assert report.bytes_after < report.bytes_before
        assert report.bytes_freed == report.bytes_before - report.bytes_after

    def test_gc_removes_orphans_and_leaves_young_files(self, db, plain):
        storage = Storage(db)
        with storage.run():
            plain.ones(BIG)
        kept = blob_files(db)[0]
        with sqlite3.connect(db) as conn:  # leftovers of a crash or an older version
            conn.execute("INSERT INTO val_rows VALUES (?, 'json', '1', 1, 0)", (b"\x01" * 32,))
        hour_ago = time.time() - 7200
        old_orphan = _touch(kept.parent.parent / "ab" / ("ab" * 32), hour_ago)
        young_orphan = _touch(kept.parent.parent / "cd" / ("cd" * 32), None)
        old_tmp = _touch(kept.parent / f".{kept.name}.1.2.tmp", hour_ago)
        young_tmp = _touch(kept.parent / f".{kept.name}.3.4.tmp", None)
        os.utime(kept, (hour_ago, hour_ago))  # old, but its row exists
        report = storage.gc()
        assert (report.values, report.files) == (1, 2)
        assert blob_files(db) == sorted([kept, young_orphan, young_tmp])
        assert not old_orphan.exists() and not old_tmp.exists()
        assert np.array_equal(Storage(db).df(plain.ones)["output"][0], np.ones(BIG))

    def test_gc_of_a_memory_storage(self, plain):
        storage = Storage()
        plain.pipeline(storage)
        storage.delete_calls(storage.df(plain.inc))
        assert storage.gc() == GcReport(0, 0, 0, 0)

    def test_gc_waits_for_a_writer_and_then_says_busy(self, db, plain, monkeypatch):
        storage = Storage(db)
        plain.pipeline(storage)
        monkeypatch.setattr(store_module, "_LOCK_RETRIES", 2)
        storage._store.conn.execute("PRAGMA busy_timeout = 20")
        writer = sqlite3.connect(db, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageBusyError, match="try again later"):
            storage.gc()
        writer.execute("ROLLBACK")
        storage.gc()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert len(storage.df(plain.inc)) == 5


class TestTargets:
    def test_a_query_result_deletes_the_calls_of_its_remaining_rows(self, db, plain):
        storage = Storage(db)
        plain.pipeline(storage)
        incs = dict(zip(storage.df(plain.inc)["x"], storage.df(plain.inc)["call"]))
        adds = dict(zip(storage.df(plain.add)["y"], storage.df(plain.add)["call"]))
        frame = pd.DataFrame({"x": plain.SPACED})
        frame.attrs["mandala_ast.calls"] = [
            (bytes.fromhex(incs[x]), bytes.fromhex(adds[x + 1])) for x in plain.SPACED
        ]
        report = storage.delete_calls(frame[frame.x >= 300])
        assert (report.calls, report.dependents) == (4, 0)
        assert sorted(storage.df(plain.inc)["x"]) == [0, 100, 200]

    def test_ids_as_hex_strings_bytes_or_one_id(self, db, plain):
        storage = Storage(db)
        plain.pipeline(storage)
        ids = storage.df(plain.inc)["call"].tolist()
        assert storage.delete_calls(ids[0]).calls == 2
        assert storage.delete_calls([bytes.fromhex(ids[1])]).calls == 2
        assert storage.delete_calls(storage.df(plain.inc)["call"]).calls == 6

    def test_unknown_ids_delete_nothing(self, db, plain):
        storage = Storage(db)
        plain.pipeline(storage)
        report = storage.delete_calls(["00" * 32, b"\x02" * 32])
        assert report == DeleteReport(0, 0, 0, 0)
        assert str(report) == "deleted 0 calls (0 matched, 0 computed from them) and 0 values (0 B)"
        assert len(storage.df(plain.inc)) == 5

    @pytest.mark.parametrize("target", [42, None, 2.5, [1, 2], pd.DataFrame({"a": [1]})])
    def test_wrong_types_say_what_is_accepted(self, db, target):
        storage = Storage(db)
        with pytest.raises(ValueError, match="call ids .*DataFrame"):
            storage.delete_calls(target)

    def test_an_op_given_instead_of_call_ids_is_an_error_naming_the_op(self, db, plain):
        """`storage.delete_calls(inc)` said only "cannot delete 'Op'"; it takes call ids."""
        storage = Storage(db)
        plain.pipeline(storage)
        with pytest.raises(ArgumentError, match=r"delete_calls.* op .*\binc\b.*storage\.df") as caught:
            storage.delete_calls(plain.inc)
        assert isinstance(caught.value, ValueError)
        assert len(storage.df(plain.inc)) == 5  # nothing deleted

    def test_a_string_that_is_not_hex_is_not_a_call_id(self, db):
        with pytest.raises(ValueError, match="not a call id"):
            Storage(db).delete_calls(["not-a-call"])

    def test_report_reads_as_a_sentence(self):
        report = DeleteReport(calls=12, dependents=5, values=9, bytes_freed=1234)
        assert str(report) == "deleted 12 calls (7 matched, 5 computed from them) and 9 values (1.2 kB)"
        one = "deleted 1 call (1 matched, 0 computed from them) and 1 value (5 B)"
        assert str(DeleteReport(1, 0, 1, 5)) == one


WORKER = """
import importlib.util, sys, time
from mandala_ast import Storage

db, name, path = sys.argv[1:]
spec = importlib.util.spec_from_file_location(name, path)
user = sys.modules[name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(user)
storage = Storage(db)
user.pipeline(storage, range(1, 150, 3))
print("ready", flush=True)
blocks, end = 0, time.time() + 3
while time.time() < end:
    user.pipeline(storage, range(1, 150, 3))
    blocks += 1
print("blocks", blocks, flush=True)
"""


class TestConcurrency:
    def test_deleting_while_another_process_runs_blocks(self, db, plain):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        args = [str(db), plain.__name__, plain.__file__]
        worker = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert worker.stdout.readline().strip() == "ready"
            storage = Storage(db)
            rounds = 0
            while worker.poll() is None:
                storage.delete_calls(storage.df(plain.inc).iloc[::2])
                if rounds % 5 == 0:
                    storage.gc()
                rounds += 1
            out, err = worker.communicate(timeout=60)
        finally:
            worker.kill()
        assert worker.returncode == 0, err
        assert "locked" not in err and rounds > 1
        assert dangling_references(db) == 0
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert len(Storage(db).df(plain.add)) <= 50

    def test_df_while_another_process_deletes_raises_no_raw_error(self, db, plain):
        # The table was read in several statements, each seeing the file as it was then: a
        # deletion committed in between left a call whose outputs or values were gone
        # (KeyError, MissingValueError, FileNotFoundError for a blob).
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        args = [str(db), plain.__name__, plain.__file__]
        storage = Storage(db)
        plain.pipeline(storage, range(1, 150, 3))
        with storage.run():
            plain.ones(BIG)
        worker = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(DELETER), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert worker.stdout.readline().strip() == "ready"
            rounds = 0
            while worker.poll() is None:
                adds, arrays = storage.df(plain.add), storage.df(plain.ones)
                assert (adds["output"] == adds["y"] + adds["z"]).all()
                assert all(len(a) == n for a, n in zip(arrays["output"], arrays["n"]))
                rounds += 1
            out, err = worker.communicate(timeout=60)
        finally:
            worker.kill()
        assert worker.returncode == 0, err
        assert rounds > 1


DELETER = """
import importlib.util, sys, time
from mandala_ast import Storage

db, name, path = sys.argv[1:]
spec = importlib.util.spec_from_file_location(name, path)
user = sys.modules[name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(user)
storage = Storage(db)
print("ready", flush=True)
end = time.time() + 4
while time.time() < end:
    user.pipeline(storage, range(1, 150, 3))
    with storage.run():
        user.ones(1 << 18)
    storage.delete_calls(storage.df(user.inc).iloc[::2])
    storage.delete_calls(storage.df(user.ones))
"""


def _touch(path: Path, mtime: float | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@mandala_ast.op
def count_lists(xs: mandala_ast.MList[list]) -> int:
    return len(xs)


@mandala_ast.op
def by_key(xs: mandala_ast.MDict[str, int]) -> int:
    return sum(xs.values())


@mandala_ast.op
def distinct(xs: mandala_ast.MSet[int]) -> int:
    return len(xs)


class TestRegressions:
    def test_a_nested_block_does_not_mark_buffered_rows_checked(self, db, plain):
        # Entering a block (run or query) inside a running one noticed the deletion for the
        # caches and also marked the buffered rows as checked: total(arr) was committed with
        # an input row pointing at the deleted array.
        deleter, runner = Storage(db), Storage(db)
        with runner.run():
            arr = plain.ones(3)
            runner.commit()
            deleter.delete_calls(deleter.df(plain.ones))
            plain.total(arr)  # runner believes arr is stored: only the input row is buffered
            with runner.run():
                pass
        assert dangling_references(db) == 0
        assert len(Storage(db).df(plain.total)) == 0

    def test_elements_of_a_list_inside_a_surviving_list_stay(self, db, plain):
        # make(2)'s list is also the one element of an MList argument: its row survived the
        # deletion of make, but its own elements (1000, 1001) went, and loading failed.
        storage = Storage(db)
        with storage.run():
            xs = plain.make(2)
            count_lists([xs])
        storage.delete_calls(storage.df(plain.make), dependents=False)  # (with them, count_lists goes)
        storage.gc()
        assert Storage(db).df(count_lists)["xs"].tolist() == [[[1000, 1001]]]

    def test_a_nested_block_after_a_deletion_does_not_recompute_buffered_calls(self, db, plain):
        # Block entry forgot every lookup when another Storage had deleted something, though
        # this block's calls were only buffered: inc(100) ran a second time.
        deleter, runner = Storage(db), Storage(db)
        with runner.run():
            plain.inc(0)
        plain.RUNS.clear()
        with runner.run():
            plain.inc(100)
            deleter.delete_calls(deleter.df(plain.inc).iloc[:1])
            with runner.run():
                plain.inc(100)
        assert plain.RUNS == [("inc", 100)]
        assert dangling_references(db) == 0

    def test_a_hit_remembered_in_the_block_whose_value_was_deleted_is_computed_again(self, db, plain):
        # The block remembered ones(3) as stored; another Storage deleted it; the next call
        # was served from memory and loading its array raised LookupError.
        deleter, runner = Storage(db), Storage(db)
        with runner.run():
            plain.ones(3)
            runner.commit()
            deleter.delete_calls(deleter.df(plain.ones))
            plain.RUNS.clear()
            assert plain.ones(3).tolist() == [1.0, 1.0, 1.0]
        assert plain.RUNS == [("ones", 3)]
        assert dangling_references(db) == 0
        assert len(Storage(db).df(plain.ones)) == 1

    def test_a_call_on_the_output_of_a_dropped_call_does_not_point_at_it(self, db, compiled):
        # Once a commit had dropped add(y, 20), compiled code still held its output's history
        # and the next commit stored inc(z) computed from a call that does not exist.
        deleter, runner = Storage(db), Storage(db)
        compiled.pipeline(runner)
        compiled.use_after_a_dropping_commit(
            runner, lambda: deleter.delete_calls(row_of(deleter, compiled.inc, x=200))
        )
        assert dangling_references(db) == 0  # no source naming a call that is gone
        with sqlite3.connect(db) as conn:  # ... nor a tombstone standing in for one
            assert conn.execute("SELECT COUNT(*) FROM call_tombstones").fetchone()[0] == 0

    def test_listing_versions_inside_a_block_commits_through_the_deletion_watch(self, db, plain):
        # storage.versions(op) flushed the block's buffered rows without checking them
        # against deletions: total(arr) was committed pointing at the deleted array.
        deleter, runner = Storage(db), Storage(db)
        with runner.run():
            arr = plain.ones(3)
            runner.commit()
            deleter.delete_calls(deleter.df(plain.ones))
            plain.total(arr)
            runner.versions(plain.total)
            assert dangling_references(db) == 0


@mandala_ast.op
def halve(x):
    return x / 2


def test_why_after_a_deletion_does_not_say_the_call_was_never_computed(tmp_path):
    """It said "was never computed" of a call computed and deleted since."""
    storage = Storage(tmp_path / "s.db")
    with storage:
        halve(1), halve(2)
    assert "was never computed" in str(storage.why(halve, 5))
    df = storage.df(halve)
    storage.delete_calls(df[df.x == 1])
    assert str(Storage(tmp_path / "s.db").why(halve, 1)).startswith(
        "miss: test_deletion.halve(x=1) is not stored in Storage"
    ) and "never computed, or deleted since" in str(storage.why(halve, 1))


# Calls past the first 16,384 of a storage: format 9 indexes row ids behind bucket = key >> 14,
# and SQLite 3.40 joins through a Bloom filter on a skip-scan of such an index and finds nothing.
PAST_A_BUCKET = """
from mandala_ast import MList, Q, op

@op
def inc(x: int) -> int:
    return x + 1

@op
def double(x: int) -> int:
    return 2 * x

@op
def pair(x: int) -> MList[int]:
    return [x, x + 1]

def fill(storage, n):
    with storage.run():
        for i in range(n):
            double(inc(i))

def elements(storage, x):
    with storage.run():
        for e in pair(x):
            double(e)

def doubled(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        z = double(y)
    return q
"""


@pytest.fixture
def past_a_bucket(tmp_path: Path) -> Iterator[tuple[ModuleType, Storage]]:
    """A storage of 16,400 calls (two buckets of row ids) and the module that stored them."""
    (tmp_path / "past_a_bucket.py").write_text(PAST_A_BUCKET)
    module = mandala_ast.compile_module(tmp_path / "past_a_bucket.py", name="past_a_bucket")
    storage = Storage(tmp_path / "large.db")
    module.fill(storage, 8200)
    try:
        yield module, storage
    finally:
        storage.close()
        sys.modules.pop("past_a_bucket", None)


def test_delete_calls_of_a_call_stored_past_the_first_16384_deletes_it(past_a_bucket):
    module, storage = past_a_bucket
    calls = storage.df(module.inc)
    report = storage.delete_calls(calls[calls["x"] == 8199])
    assert (report.calls, report.dependents) == (2, 1)  # inc(8199) and double of it
    assert 8199 not in set(storage.df(module.inc)["x"])


def test_an_element_call_stored_past_the_first_16384_is_refused_alone(past_a_bucket):
    module, storage = past_a_bucket
    module.elements(storage, 10**6)
    element = storage.provenance(module.double).query("producer_op == 'mandala_ast.__item__'")
    assert len(element) == 2
    with pytest.raises(ArgumentError, match="cannot be deleted alone"):
        storage.delete_calls(list(element["producer_call"])[:1])
    assert len(storage.df(module.double)) == 8202


def test_no_statement_filters_a_lookup_of_row_ids_or_output_contents_through_a_bloom_filter(
    past_a_bucket, monkeypatch
):
    # What made the two tests above find nothing: a Bloom filter before a skip-scan of a
    # bucketed index (store.py's RANDOM_KEY_INDEXES), which SQLite 3.40 keys by the bucket too.
    module, storage = past_a_bucket
    module.elements(storage, 10**6)
    with traced(storage) as statements:
        calls = storage.df(module.inc)
        storage.delete_calls(calls[calls["x"] == 8199])
        element = storage.provenance(module.double).query("producer_op == 'mandala_ast.__item__'")
        with pytest.raises(ArgumentError):
            storage.delete_calls(list(element["producer_call"])[:1])
        storage.delete_calls(storage.df(module.pair))
        with monkeypatch.context() as patch:  # and the targets found by one scan of row ids
            patch.setattr(deletion_module, "SCANNED_PER_PROBE", 10**9)
            storage.delete_calls(calls[calls["x"] < 100])
        assert len(module.doubled(storage).df()) == 8099
    plans = {s: [step for _, _, step in plan] for s, plan in explained(storage, statements).items()}
    for statement, plan in plans.items():
        filtered = {step.split()[3] for step in plan if step.startswith("BLOOM FILTER ON")}
        bucketed = [step for step in plan if "idx_calls_hid" in step or "idx_outputs_cid" in step]
        assert not [step for step in bucketed if step.split()[1] in filtered], statement
    # the lookups of the targets both ways, then deletion's and the refusal's joins of them
    assert len([s for s in plans if "INTO temp.mandala_target_key" in s]) == 2
    assert len([s for s in plans if "FROM temp.mandala_target_key" in s]) >= 2


@pytest.mark.parametrize("scanned_per_probe", [0, 10**9], ids=["looked-up", "scanned"])
def test_no_statement_of_a_deletion_looks_a_row_id_up_from_an_inner_loop(
    past_a_bucket, monkeypatch, scanned_per_probe
):
    # The rule that keeps the Bloom filter above away whatever the planner prices: a row id is
    # looked up by the first loop of its statement or subquery, never by a join's inner loop
    # (SQLite 3.40 puts no Bloom filter before a covering lookup, but does before the others).
    module, storage = past_a_bucket
    monkeypatch.setattr(deletion_module, "SCANNED_PER_PROBE", scanned_per_probe)
    module.elements(storage, 10**6)
    calls = storage.df(module.inc)
    element = storage.provenance(module.double).query("producer_op == 'mandala_ast.__item__'")
    with traced(storage) as statements:
        with pytest.raises(ArgumentError):
            storage.delete_calls([*calls["call"][:50], *element["producer_call"][:1]])
        storage.delete_calls([*calls["call"][:50], *storage.df(module.pair)["call"]])
    plans = explained(storage, statements)
    assert _row_id_steps(plans)
    for statement, plan in plans.items():
        loops: dict[int, list[str]] = {}  # the loops of each statement and subquery, in order
        for _, parent, step in plan:
            if step.startswith(("SCAN", "SEARCH")):
                loops.setdefault(parent, []).append(step)
        inner = [step for steps in loops.values() for step in steps[1:] if "idx_calls_hid" in step]
        assert not inner, statement


@contextmanager
def traced(storage: Storage) -> Iterator[list[str]]:
    """The SQL statements the storage's connection runs inside the block."""
    statements: list[str] = []
    conn = storage._store.conn
    conn.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        conn.set_trace_callback(None)


def explained(storage: Storage, statements: list[str]) -> dict[str, list[tuple[int, int, str]]]:
    """The query plan (id, parent, step) of each SELECT, INSERT and DELETE among
    ``statements``, on a connection of its own holding the temporary tables they used."""
    conn = sqlite3.connect(storage.path)
    for statement in dict.fromkeys(s for s in statements if s.startswith("CREATE TEMP TABLE")):
        conn.execute(statement.replace("CREATE TEMP TABLE", "CREATE TEMP TABLE IF NOT EXISTS"))
    plans = {
        statement: [(row[0], row[1], row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}")]
        for statement in dict.fromkeys(statements)
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "DELETE"))
    }
    conn.close()
    return plans


def _row_id_steps(plans: dict[str, list[tuple[int, int, str]]]) -> list[str]:
    return [step for plan in plans.values() for _, _, step in plan if "idx_calls_hid" in step]


def test_deleting_thousands_of_calls_named_by_row_id_scans_the_row_ids_once_not_per_call(past_a_bucket):
    # Each lookup by row id alone probes every bucket of the index (16,384 calls each): 10,000
    # targets spent seconds at 1M calls, ten times that at 10M, before deleting anything.
    module, storage = past_a_bucket
    calls = storage.df(module.inc)  # 8,200 targets
    with traced(storage) as statements:
        storage.delete_calls(calls, dependents=False)
    steps = _row_id_steps(explained(storage, statements))
    assert steps and all(step.startswith("SCAN") for step in steps), steps
    assert len(steps) == 1, steps  # one pass over the index of row ids, in one statement


def test_deleting_a_few_calls_named_by_row_id_looks_each_up_instead_of_scanning(past_a_bucket):
    module, storage = past_a_bucket
    calls = storage.df(module.inc)
    with traced(storage) as statements:
        storage.delete_calls(calls[calls["x"].isin([3, 8199])])
    steps = _row_id_steps(explained(storage, statements))
    assert steps and all(step.startswith("SEARCH") for step in steps), steps


@pytest.mark.parametrize("scanned_per_probe", [0, 10**9], ids=["looked-up", "scanned"])
def test_many_calls_named_by_row_id_delete_exactly_them_and_their_dependents(
    past_a_bucket, monkeypatch, scanned_per_probe
):
    # The same deletion with the targets looked up one by one and found by one scan.
    module, storage = past_a_bucket
    monkeypatch.setattr(deletion_module, "SCANNED_PER_PROBE", scanned_per_probe)
    calls = storage.df(module.inc)
    doomed = calls[calls["x"] % 3 == 0]  # 2,734 calls, some past the first 16,384 of the file
    targets = [*doomed["call"], *doomed["call"][:5], "ab" * 32]  # repeated and unknown ids too
    report = storage.delete_calls(targets)
    assert (report.calls, report.dependents) == (2 * 2734, 2734)
    kept = {x for x in range(8200) if x % 3}
    assert set(storage.df(module.inc)["x"]) == kept
    assert set(storage.df(module.double)["x"]) == {x + 1 for x in kept}
    assert set(Storage(storage.path).df(module.inc)["x"]) == kept


@pytest.mark.parametrize("scanned_per_probe", [0, 10**9], ids=["looked-up", "scanned"])
def test_an_element_call_among_many_targets_is_refused_alone_and_goes_with_its_collection(
    past_a_bucket, monkeypatch, scanned_per_probe
):
    module, storage = past_a_bucket
    monkeypatch.setattr(deletion_module, "SCANNED_PER_PROBE", scanned_per_probe)
    module.elements(storage, 10**6)
    element = storage.provenance(module.double).query("producer_op == 'mandala_ast.__item__'")
    many = list(storage.df(module.inc)["call"][:3000])
    with pytest.raises(ArgumentError, match="cannot be deleted alone"):
        storage.delete_calls([*many, *element["producer_call"][:1]])
    assert len(storage.df(module.double)) == 8202
    report = storage.delete_calls([*many, *element["producer_call"], *storage.df(module.pair)["call"]])
    assert report.calls == 2 * 3000 + 1 + 2 + 2  # the pair's call, its elements' and their doubles
    assert len(storage.df(module.double)) == 8200 - 3000


def test_an_uncompiled_consumer_of_a_deleted_output_is_found_by_one_search_of_output_contents(tmp_path):
    # Calls that uncompiled code stored name their inputs by content only, so deletion (and
    # queries, provenance) look outputs up by content once per value. Keyed by the call's
    # bucket first, that lookup probed every 16,384 calls: ~0.9 ms a value at 1M calls, a
    # deletion of a 1M-call chain ran for minutes. Output contents stay keyed by the hash.
    storage = Storage(tmp_path / "uncompiled.db")
    conn = storage._store.conn
    deletion_module._create_temp_tables(conn)
    searches = [
        row[3] for statement in deletion_module._ROUND_SQL if "mandala_made" in statement
        for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}") if "idx_outputs_cid" in row[3]
    ]
    assert searches and not [step for step in searches if "ANY(" in step], searches
    storage.close()
