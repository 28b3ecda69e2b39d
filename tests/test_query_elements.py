"""Queries over elements: a list-valued op's elements are iterable in a
query, with their indices; dicts give keys and values, sets their elements.

Run blocks record an element passed to an op by content (``for e in xs: y = inc(e)``), so the
query's ``inc(e)`` matches calls whose input has the element's content.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_query import rows, run
from test_structures import lengths, letters

from mandala_ast import MList, QueryError, Storage, op


@op
def make(n: int) -> MList[int]:
    return [100 + 10 * i for i in range(n)]


@op
def shout(s: str) -> str:
    return s.upper()


OPS = {"make": make, "lengths": lengths, "letters": letters, "shout": shout}


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "results.db")


def block(kind: str, body: str) -> str:
    """A compiled module with one ``storage.run()`` or ``storage.query() as q`` block."""
    header = "with storage.run():" if kind == "run" else "with storage.query() as q:"
    return f"import mandala_ast\n{header}\n{body}"


def query(storage: Storage, body: str, *columns: str) -> list[tuple]:
    """The rows of a query block with this body, sorted."""
    return sorted(rows(run(block("query", body), storage, **OPS)["q"].df(*columns)))


class TestLists:
    RUN = "    xs = make(3)\n    for e in xs:\n        y = inc(e)\n"

    def test_enumerate_gives_indices_elements_and_what_was_computed_from_them(self, storage: Storage) -> None:
        run(block("run", self.RUN), storage, **OPS)
        body = "    n = Q()\n    xs = make(n)\n    for i, e in enumerate(xs):\n        y = inc(e)\n"
        assert query(storage, body, "n", "i", "e", "y") == [(3, 0, 100, 101), (3, 1, 110, 111), (3, 2, 120, 121)]

    def test_elements_alone(self, storage: Storage) -> None:
        run(block("run", "    xs = make(3)\n"), storage, **OPS)
        body = "    xs = make(Q())\n    for e in xs:\n        pass\n"
        assert query(storage, body, "e") == [(100,), (110,), (120,)]

    def test_same_code_round_trips_with_nulls_where_the_if_failed(self, storage: Storage) -> None:
        body = (
            "    for n in [2, 3]:\n        xs = make(n)\n        for i, e in enumerate(xs):\n"
            "            if i % 2 == 0:\n                y = inc(e)\n"
        )
        run(block("run", body), storage, **OPS)
        assert query(storage, body, "n", "i", "e", "y") == [
            (2, 0, 100, 101), (2, 1, 110, None), (3, 0, 100, 101), (3, 1, 110, None), (3, 2, 120, 121),
        ]

    def test_expression_argument_under_if_keeps_rows_where_the_if_failed(self, storage: Storage) -> None:
        body = (
            "    xs = make(3)\n    for i, e in enumerate(xs):\n"
            "        if i % 2 == 0:\n            y = inc(e + i)\n"
        )
        run(block("run", body), storage, **OPS)
        assert query(storage, body, "i", "e", "y") == [(0, 100, 101), (1, 110, None), (2, 120, 123)]

    def test_a_call_given_a_literal_equal_to_an_element_is_not_matched_as_the_elements_consumer(
        self, storage: Storage
    ) -> None:
        """`inc(110)` typed in beside `make(3)` (elements 100, 110, 120): compiled code recorded
        the 110 raw. The query matched it as inc of make's element, and a delete block written
        the same way deleted it."""
        run(block("run", "    xs = make(3)\n    y = inc(110)\n"), storage, **OPS)
        body = "    xs = make(Q())\n    for e in xs:\n        y = inc(e)\n"
        assert query(storage, body, "e", "y") == []

    def test_elements_of_a_list_from_uncompiled_code(self, storage: Storage) -> None:
        from test_query import inc

        with storage:
            for e in make(2):
                inc(e)
        body = "    xs = make(2)\n    for e in xs:\n        y = inc(e)\n"
        assert query(storage, body, "e", "y") == [(100, 101), (110, 111)]

    def test_a_list_from_a_free_variable(self, storage: Storage) -> None:
        run(block("run", self.RUN), storage, **OPS)
        body = "    xs = Q()\n    for i, e in enumerate(xs):\n        y = inc(e)\n"
        assert query(storage, body, "i", "y") == [(0, 101), (1, 111), (2, 121)]


class TestDictsAndSets:
    def test_dict_items_keys_and_values(self, storage: Storage) -> None:
        run(block("run", "    d = lengths(['ab', 'cde'])\n"), storage, **OPS)
        start = "    d = lengths(Q())\n"
        assert query(storage, start + "    for k, v in d.items():\n        pass\n", "k", "v") == [("ab", 2), ("cde", 3)]
        assert query(storage, start + "    for k in d.keys():\n        pass\n", "k") == [("ab",), ("cde",)]
        assert query(storage, start + "    for v in d.values():\n        pass\n", "v") == [(2,), (3,)]

    def test_for_over_a_dict_binds_its_keys_as_python_does(self, storage: Storage) -> None:
        body = "    d = lengths(['ab', 'cde'])\n    for k in d:\n        s = shout(k)\n"
        run(block("run", body), storage, **OPS)
        assert query(storage, body, "k", "s") == [("ab", "AB"), ("cde", "CDE")]

    def test_set_elements(self, storage: Storage) -> None:
        body = "    s = letters('abca')\n    for c in s:\n        u = shout(c)\n"
        run(block("run", body), storage, **OPS)
        assert query(storage, body, "c", "u") == [("a", "A"), ("b", "B"), ("c", "C")]


class TestRefused:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("    s = letters('ab')\n    for i, c in enumerate(s):\n        pass\n", "a set has no order"),
            ("    d = lengths(['a'])\n    for i, k in enumerate(d):\n        pass\n", r"iterate d.items\(\) instead"),
            ("    xs = make(2)\n    for k, v in xs.items():\n        pass\n", r"xs.items\(\).*a list has no .items\(\)"),
            ("    xs = make(2)\n    for a, b in xs:\n        pass\n", r"use enumerate\(xs\)"),
        ],
    )
    def test_iterations_python_would_not_mean_are_explained(self, storage, body: str, message: str) -> None:
        with pytest.raises(QueryError, match=message):
            run(block("query", body), storage, **OPS)


@op
def plain_list(n: int) -> list:
    return list(range(n))


@op
def msum(xs: MList[int]) -> int:
    return sum(xs)


class TestRegressions:
    def test_a_list_of_variables_for_an_mlist_argument_is_refused_without_asking_to_annotate_it(self, storage: Storage) -> None:
        """`msum([a, b])` with `xs: MList[int]` was refused with "annotate the parameter as
        MList/MDict/MSet": it was annotated so; what works is binding the list to one variable."""
        run(block("run", "    a = inc(1)\n    b = inc(2)\n    t = msum([a, b])\n"), storage, msum=msum)
        with pytest.raises(QueryError, match="argument 'xs'") as info:
            run(block("query", "    a = inc(1)\n    b = inc(2)\n    t = msum([a, b])\n"), storage, msum=msum)
        assert "annotate" not in str(info.value) and "xs = Q()" in str(info.value)
        found = run(block("query", "    xs = Q()\n    t = msum(xs)\n"), storage, msum=msum)["q"].df("xs", "t")
        assert rows(found) == [([2, 3], 5)]

    def test_iterating_an_output_whose_elements_are_not_stored_is_explained(self, storage: Storage) -> None:
        """A loop over a plain `list` output (or an expression) matched nothing, silently."""
        code = "    xs = plain_list(3)\n    for e in xs:\n        y = inc(e)\n"
        run(block("run", code), storage, plain_list=plain_list)
        with pytest.raises(QueryError, match="output 0 of op .*plain_list is stored as one value"):
            run(block("query", code), storage, plain_list=plain_list)
        run(block("run", TestLists.RUN), storage, **OPS)
        with pytest.raises(QueryError, match=r"cannot iterate xs\[.*\] in a query: .*not an expression"):
            run(block("query", "    xs = make(3)\n    for e in xs[:2]:\n        y = inc(e)\n"), storage, **OPS)
