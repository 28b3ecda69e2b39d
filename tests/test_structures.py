"""MList, MDict, MSet: elements stored one by one, with their provenance."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest

import mandala_ast as ma
import mandala_ast.runtime.compiled as rt
from mandala_ast import MDict, MList, MSet, Storage, ValueEncodingError, op
from mandala_ast.runtime import identity
from mandala_ast.runtime.hashing import content_id
from mandala_ast.runtime.structures import (
    ITEM_OP_NAME,
    ITEM_VERSION_ID,
    item_content_id,
    item_history_id,
    item_row_id,
)

RUNS: list = []


@op
def squares(n: int) -> MList[int]:
    RUNS.append(n)
    return [i * i for i in range(n)]


@op
def words(start: int, stop: int) -> MList[str]:
    return [f"word {i}" * 20 for i in range(start, stop)]


@op
def lengths(names: list) -> MDict[str, int]:
    return {name: len(name) for name in names}


@op
def letters(word: str) -> MSet[str]:
    return set(word)


@op
def total(xs: MList[int]) -> int:
    RUNS.append(xs)
    return sum(xs)


@op
def plain_total(xs: list) -> int:
    return sum(xs)


@op
def inc(x: int) -> int:
    return x + 1


@op
def split(n: int) -> tuple[MList[int], int]:
    return list(range(n)), n


@op
def qualified(n: int) -> ma.MList[int]:
    return list(range(n))


@op
def unresolvable(n: int) -> MList[NotDefinedAnywhere]:  # noqa: F821  (text fallback)
    return list(range(n))


@op
def later(n: int) -> MSet[DefinedLater]:  # resolved at first call, not at decoration
    return set(range(n))


class DefinedLater:
    pass


@op
def not_a_list(n: int) -> MList[int]:
    return tuple(range(n))


@op
def not_a_set(n: int) -> MSet[int]:
    return list(range(n))


@op
def tuple_keys(n: int) -> MDict[str, int]:
    return {(i, i): i for i in range(n)}


@op
def arrays(n: int) -> MList:
    return [np.full(n, float(i)) for i in range(2)]


@pytest.fixture(autouse=True)
def clear_runs():
    RUNS.clear()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


def rows(path: Path, sql: str, *params) -> list[tuple]:
    return sqlite3.connect(path).execute(sql, params).fetchall()


def item_calls(path: Path) -> list[tuple]:
    """(row hid, lkey, cid, exact, struct cid, producer, output index, key cid, element cid)."""
    return rows(
        path,
        "SELECT c.hid, c.lkey, c.cid, c.exact, s.cid, s.src_call, s.src_index, k.cid, o.cid "
        "FROM calls c JOIN inputs s ON s.call_hid = c.hid AND s.name = 'struct' "
        "JOIN inputs k ON k.call_hid = c.hid AND k.name = 'key' "
        "JOIN outputs o ON o.call_hid = c.hid AND o.idx = 0 WHERE c.version_id = ?",
        ITEM_VERSION_ID,
    )


class TestAnnotations:
    def test_inputs_and_outputs_are_read_from_string_annotations(self):
        """This module uses `from __future__ import annotations`: every annotation is text."""
        assert squares.structure_outputs == {0: "list"} and squares.structure_inputs == {}
        assert total.structure_inputs == {"xs": "list"} and total.structure_outputs == {}
        assert lengths.structure_outputs == {0: "dict"} and letters.structure_outputs == {0: "set"}
        assert split.structure_outputs == {0: "list"}
        assert qualified.structure_outputs == {0: "list"}
        assert later.structure_outputs == {0: "set"}

    def test_unresolvable_annotation_falls_back_to_its_text(self):
        assert unresolvable.structure_outputs == {0: "list"}

    def test_plain_ops_have_no_structures(self):
        assert not inc.has_structures and not plain_total.has_structures
        assert plain_total.structure_inputs == {} and inc.structure_outputs == {}

    def test_markers_are_annotations_not_containers(self):
        with pytest.raises(TypeError, match="annotation"):
            MList()


class TestRoundTrip:
    MODULE = '''
        from mandala_ast import MDict, MList, MSet, Storage, op

        RUNS = []


        @op
        def make(n: int) -> tuple[MList[int], MDict[str, float], MSet[str]]:
            RUNS.append(n)
            return list(range(n)), {str(i): i / 2 for i in range(n)}, {f"e{i}" for i in range(n)}
    '''
    SCRIPT = '''
        import user_ops
        from mandala_ast import Storage
        with Storage("s.db"):
            xs, d, s = user_ops.make(4)
        print(repr((xs, d, sorted(s), type(s).__name__, user_ops.RUNS)))
    '''

    def test_outputs_load_in_a_new_process(self, py):
        py.write("user_ops.py", self.MODULE)
        first, second = (eval(py.run(self.SCRIPT, prelude=False).stdout) for _ in range(2))
        expected = ([0, 1, 2, 3], {"0": 0.0, "1": 0.5, "2": 1.0, "3": 1.5}, ["e0", "e1", "e2", "e3"], "set")
        assert first == (*expected, [4])
        assert second == (*expected, [])  # loaded, not recomputed

    def test_values_are_plain_and_loaded_copies_are_independent(self, path):
        with Storage(path):
            squares(3).append("oops")
        with Storage(path):
            loaded = squares(3)
            assert loaded == [0, 1, 4] and type(loaded) is list
            assert lengths(["ab"]) == {"ab": 2} and letters("aab") == {"a", "b"}
        assert RUNS == [3]

    def test_df_shows_the_whole_structure_in_one_cell(self, path):
        storage = Storage(path)
        with storage:
            squares(3)
            total([1, 2, 3])
        assert storage.df(squares)["output"].tolist() == [[0, 1, 4]]
        assert storage.df(total)["xs"].tolist() == [[1, 2, 3]]

    def test_large_elements_go_to_files(self, path):
        n = 200_000  # 1.6 MB per element
        with Storage(path):
            arrays(n)
        with Storage(path):
            loaded = arrays(n)
        assert [a[-1] for a in loaded] == [0.0, 1.0]
        assert len(rows(path, "SELECT cid FROM vals WHERE external = 1")) == 2


class TestSharedStorage:
    def test_overlapping_lists_store_each_element_once(self, path):
        with Storage(path):
            first = words(0, 5)
            second = words(3, 8)
        element_rows = rows(path, f"SELECT size FROM vals WHERE cid IN ({','.join('?' * 8)})",
                            *(content_id(w) for w in {*first, *second}))
        assert len(element_rows) == 8  # not 10: words 3 and 4 are shared
        lists = rows(path, "SELECT size FROM vals WHERE codec = 'mlist'")
        assert sorted(lists) == [(5 * 32,), (5 * 32,)]  # the lists hold content ids only

    def test_a_plain_list_argument_shares_the_elements_of_an_mlist(self, path):
        storage = Storage(path)
        with storage:
            xs = squares(4)
            assert plain_total(xs) == 14 and total(xs) == 14
        assert storage.df(plain_total)["xs"].tolist() == [[0, 1, 4, 9]]

    def test_loading_a_structure_reads_its_elements_in_bulk(self, path):
        with Storage(path):
            words(0, 2000)
        storage = Storage(path)
        statements: list[str] = []
        storage._store.conn.set_trace_callback(statements.append)
        with storage:
            assert len(words(0, 2000)) == 2000
        assert sum("FROM vals" in s for s in statements) <= 4  # the list, then chunks


class TestItemCalls:
    def test_one_item_call_per_list_element(self, path):
        storage = Storage(path)
        with storage:
            xs = squares(3)
        producer = bytes.fromhex(storage.df(squares)["call"].item())
        struct = content_id(xs)
        found = sorted(item_calls(path), key=lambda row: row[8])
        expected = []
        for i, x in enumerate(xs):
            key = content_id(i)
            lkey = item_history_id(producer, 0, key)
            expected.append((item_row_id(lkey), lkey, item_content_id(struct, key), 0, struct, producer, 0, key, content_id(x)))
        assert found == sorted(expected, key=lambda row: row[8])

    def test_dict_keys_and_set_elements_are_the_keys(self, path):
        with Storage(path):
            lengths(["a", "bcd"])
            letters("xy")
        keys = {(key, element) for *_, key, element in item_calls(path)}
        assert keys == {
            (content_id("a"), content_id(1)),
            (content_id("bcd"), content_id(3)),
            (content_id("x"), content_id("x")),
            (content_id("y"), content_id("y")),
        }

    def test_item_op_is_registered_once(self, path):
        with Storage(path):
            squares(2)
            squares(3)
        assert rows(path, "SELECT op_name FROM versions WHERE version_id = ?", ITEM_VERSION_ID) == [(ITEM_OP_NAME,)]
        assert rows(path, "SELECT nout FROM ops WHERE name = ?", ITEM_OP_NAME) == [(1,)]

    def test_only_structure_outputs_get_item_calls(self, path):
        with Storage(path):
            inc(1)
            split(2)
            total([5, 6])
        assert {row[6] for row in item_calls(path)} == {0}
        assert len(item_calls(path)) == 2  # split's list; total's argument has none

    def test_a_new_history_of_a_stored_call_gets_its_own_item_calls(self, path):
        with Storage(path):
            squares(3)
            n = rt.call((("n@m",), (None,), None), inc, 2)
            rt.call((None, ("n@m",), None), squares, n)  # same content, new history
        producers = {row[5] for row in item_calls(path)}
        assert len(item_calls(path)) == 6 and len(producers) == 2
        assert RUNS == [3]


class TestProvenance:
    MODULE = '''
        from mandala_ast import MList, Storage, op


        @op
        def squares(n: int) -> MList[int]:
            return [i * i for i in range(n)]


        @op
        def inc(x: int) -> int:
            return x + 1


        @op
        def total(xs: MList[int]) -> int:
            return sum(xs)


        def block(path):
            with Storage(path) as storage:
                xs = squares(3)
                for x in xs:
                    inc(x)
                total(xs)
            return storage
    '''
    SCRIPT = '''
        import mandala_ast; mandala_ast.install()
        import user_ops
        storage = user_ops.block("s.db")
        for op in (user_ops.inc, user_ops.total):
            for _, row in storage.provenance(op).iterrows():
                print(op.__name__, row.producer_op, row.exact)
    '''

    def test_compiled_module_through_the_import_hook(self, py):
        py.write("user_ops.py", self.MODULE)
        lines = py.run(self.SCRIPT, prelude=False).stdout.splitlines()
        assert lines == [f"inc {ITEM_OP_NAME} False"] * 3 + ["total user_ops.squares True"]

    def test_compiled_code_consuming_an_element_finds_its_item_call(self, path):
        storage = Storage(path)
        with storage:
            xs = rt.call((("xs@m",), (None,), None), squares, 3)
            for e in xs[2:]:  # a loop variable: compiled code knows no history for it
                rt.call((None, ("e@m",), None), inc, e)
            rt.call((None, ("xs@m",), None), total, xs)
        prov = storage.provenance(inc)
        assert prov["producer_op"].item() == ITEM_OP_NAME and not prov["exact"].item()
        item = bytes.fromhex(prov["producer_call"].item())
        (key,) = rows(path, "SELECT cid FROM inputs WHERE call_hid = ? AND name = 'key'", item)
        assert key == (content_id(2),)
        whole = storage.provenance(total)
        assert whole["producer_op"].item() == squares.name and whole["exact"].item()

    def test_an_element_indexed_by_compiled_code_still_finds_its_item_call(self, path):
        """``inc(xs[2])``, ``xs`` an MList output: the element's own ``__item__`` call, not an
        earlier call whose output happens to be equal."""
        storage = Storage(path)
        with storage:
            rt.call((None, (None,), None), inc, 3)  # also gives 4, earlier
            xs = rt.call((("xs@m",), (None,), None), squares, 3)
            rt.call((None, (("xs@m", 2),), None), inc, xs[2])
        prov = storage.provenance(inc)
        assert list(prov["producer_op"].fillna("raw")) == ["raw", ITEM_OP_NAME]
        assert list(prov["exact"]) == [True, False]

    def test_uncompiled_code_finds_the_element_by_content(self, path):
        storage = Storage(path)
        with storage:
            inc(squares(3)[1])
        assert storage.provenance(inc)["producer_op"].item() == ITEM_OP_NAME

    def test_compiled_raw_literal_without_a_matching_element_stays_raw(self, path):
        storage = Storage(path)
        with storage:
            rt.call((None, (None,), None), inc, 7)
        prov = storage.provenance(inc)
        assert prov["producer_call"].isna().item() and prov["exact"].item()


class TestIdentity:
    def test_structure_argument_keeps_the_plain_content_id(self, path):
        storage = Storage(path)
        with storage:
            assert total([1, 2, 3]) == 6 and total([1, 2, 3]) == 6
            assert total([1, 2, 4]) == 7
            assert total(squares(3)) == 5
            assert total([0, 1, 4]) == 5  # same content as squares(3): a hit
        assert RUNS == [[1, 2, 3], [1, 2, 4], 3, [0, 1, 4]]
        struct_cids = {row[0] for row in rows(path, "SELECT cid FROM inputs WHERE name = 'xs'")}
        assert struct_cids == {content_id([1, 2, 3]), content_id([1, 2, 4]), content_id([0, 1, 4])}
        version = storage._versions.version_id(total)
        stored = {row[0] for row in rows(path, "SELECT cid FROM calls WHERE version_id = ?", version)}
        assert identity.call_id(version, {"xs": content_id([1, 2, 3])}) in stored

    def test_non_list_argument_is_stored_whole(self, path):
        storage = Storage(path)
        with storage:
            assert total((1, 2)) == 3
        assert storage.df(total)["xs"].tolist() == [(1, 2)]


class TestBadValues:
    @pytest.mark.parametrize(
        ("bad", "message"),
        [(not_a_list, r"not_a_list, output 0: annotated MList\[...\] but returned a tuple"),
         (not_a_set, r"not_a_set, output 0: annotated MSet\[...\] but returned a list")],
    )
    def test_wrong_output_type_is_an_error_and_nothing_is_stored(self, path, bad, message):
        with pytest.raises(ValueEncodingError, match=message):
            with Storage(path):
                bad(3)
        assert rows(path, "SELECT COUNT(*) FROM calls") == [(0,)]
        assert rows(path, "SELECT COUNT(*) FROM vals") == [(0,)]

    def test_dict_with_other_keys_is_stored_whole_with_one_warning(self, path):
        with pytest.warns(ma.MandalaWarning, match="stored whole") as caught:
            with Storage(path):
                tuple_keys(2)
                tuple_keys(3)
        assert len(caught) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with Storage(path):
                assert tuple_keys(2) == {(0, 0): 0, (1, 1): 1}
        assert item_calls(path) == []


@op
def holds_itself(n: int) -> MList:
    xs: list = [n]
    xs.append(xs)
    return xs


@op
def knows_itself(n: int) -> MDict[str, object]:
    node: dict = {"n": n}
    node["self"] = node
    return node


@op
def each_holds_the_other(n: int) -> MList:
    first: list = [n]
    second = [first]
    first.append(second)
    return first


@op
def size_of(xs: MList) -> int:
    return len(xs)


class TestSelfReference:
    """A graph's node list whose entries lead back to it: elementwise, the structure's row
    named itself as an element (an element's id is the whole's, both keyed through canonical
    pickle), so every load recursed until a raw RecursionError: the call that stored it, every
    later hit, storage.df."""

    @pytest.mark.parametrize("producer", [holds_itself, knows_itself, each_holds_the_other])
    def test_a_structure_output_that_leads_back_to_itself_is_stored_whole_and_loads(self, path, producer):
        with Storage(path):
            made = producer(1)
        with Storage(path):
            again = producer(1)
        for value in (made, again, Storage(path).df(producer)["output"][0]):
            inner = value["self"] if isinstance(value, dict) else value[1]
            assert (inner is value) if producer is not each_holds_the_other else (inner[0] is value)
        assert item_calls(path) == []

    def test_a_structure_argument_that_holds_itself_is_stored_whole_and_loads(self, path):
        xs: list = [1]
        xs.append(xs)
        with Storage(path):
            assert size_of(xs) == 2
        stored = Storage(path).df(size_of)["xs"][0]
        assert stored[1] is stored and stored[0] == 1

    def test_a_self_referential_row_an_earlier_version_stored_is_an_error_naming_the_call(self, path):
        from mandala_ast import UnloadableValueError
        from mandala_ast.runtime.hashing import content_id

        with Storage(path):
            size_of([1, 2])
        (cid,) = rows(path, "SELECT cid FROM vals WHERE codec = 'mlist'")[0]
        with sqlite3.connect(path) as conn:  # as stored before: the list among its own elements
            conn.execute("UPDATE val_rows SET data = ? WHERE cid = ?", (cid + content_id(1), cid))
        with pytest.raises(UnloadableValueError, match=r"test_structures\.size_of.*storage\.delete_calls"):
            Storage(path).df(size_of)
