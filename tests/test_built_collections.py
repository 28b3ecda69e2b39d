"""Lists, tuples and dicts built by hand in compiled code from op outputs, and passed to an op.

``total([double(x) for x in xs])`` consumed the doubles' outputs: deleting one of those calls
must delete the ``total`` call too, through a real storage file and from a fresh process. A
collection of plain values keeps the identity it always had.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from integrity import dangling_references

from mandala_ast import Storage

REPO = Path(__file__).resolve().parent.parent

# The inputs 1, 10 and 100 equal no output (2, 20, 200): content cannot take one for another.
MODULE = """\
from mandala_ast import op

RUNS = []


@op
def double(x):
    RUNS.append(("double", x))
    return 2 * x


def _flat(xs):
    if isinstance(xs, dict):
        xs = list(xs.values())
    return [y for x in xs for y in (_flat(x) if isinstance(x, (list, tuple, dict)) else [x])]


@op
def total(xs):
    RUNS.append(("total",))
    return sum(_flat(xs))


def comprehension(storage):
    with storage.run():
        ys = [double(x) for x in (1, 10, 100)]
        t = total(ys)


def inline(storage):
    with storage.run():
        t = total([double(x) for x in (1, 10, 100)])


def display(storage):
    with storage.run():
        a = double(1)
        b = double(10)
        c = double(100)
        t = total([a, b, c])


def a_tuple(storage):
    with storage.run():
        a = double(1)
        b = double(10)
        c = double(100)
        t = total((a, b, c))


def a_dict(storage):
    with storage.run():
        a = double(1)
        b = double(10)
        c = double(100)
        t = total({"a": a, "b": b, "c": c})


def dict_comprehension(storage):
    with storage.run():
        t = total({str(x): double(x) for x in (1, 10, 100)})


def nested(storage):
    with storage.run():
        a = double(1)
        b = double(10)
        c = double(100)
        t = total([a, [b, c]])


def calls_in_place(storage):
    with storage.run():
        t = total([double(1), (double(10), double(100))])


def plain_values(storage):
    with storage.run():
        ys = [2, 20, 200]
        t = total(ys)
        u = total([2, 20])


def helper(y):
    return y


def with_a_helpers_result(storage):
    with storage.run():
        a = double(1)
        b = double(10)
        t = total([a, helper(b), 7])


def changed_after_it_was_built(storage):
    with storage.run():
        ys = [double(1), double(10)]
        ys.append(double(100))
        t = total(ys)


def append_a_double(ys):
    ys.append(double(100))


def changed_by_a_helper(storage):
    with storage.run():
        ys = [double(1), double(10)]
        append_a_double(ys)
        t = total(ys)


def delete_ten(storage):
    with storage.delete():
        double(10)
"""

FORMS = ["comprehension", "inline", "display", "a_tuple", "a_dict", "dict_comprehension", "nested", "calls_in_place"]


@pytest.fixture
def user(compile_user) -> ModuleType:
    return compile_user(MODULE, "lineage")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


def rerun(user: ModuleType, form: str, storage: Storage) -> list[tuple]:
    user.RUNS.clear()
    getattr(user, form)(storage)
    return sorted(user.RUNS)


@pytest.mark.parametrize("form", FORMS)
def test_deleting_a_call_deletes_the_op_that_consumed_a_list_built_by_hand_from_its_output(db, user, form):
    storage = Storage(db)
    getattr(user, form)(storage)
    doubles = storage.df(user.double)
    storage.delete_calls(doubles[doubles.x == 10])
    assert len(storage.df(user.total)) == 0
    assert len(Storage(db).df(user.total)) == 0  # in the file, for every reader
    assert dangling_references(db) == 0
    assert rerun(user, form, Storage(db)) == [("double", 10), ("total",)]


@pytest.mark.parametrize("form", FORMS)
def test_a_collection_built_by_hand_is_hit_again_without_running_anything(db, user, form):
    getattr(user, form)(Storage(db))
    assert rerun(user, form, Storage(db)) == []


def test_a_delete_block_naming_a_call_deletes_the_consumer_of_a_list_holding_its_output(db, user):
    storage = Storage(db)
    user.comprehension(storage)
    user.delete_ten(storage)
    assert len(storage.df(user.total)) == 0
    assert sorted(storage.df(user.double).x) == [1, 100]


def python(tmp_path: Path, code: str) -> str:
    """Run ``code`` in a fresh interpreter with the user module compiled as ``user``."""
    prelude = (
        "import mandala_ast\n"
        "from mandala_ast import Storage\n"
        f"user = mandala_ast.compile_module({str(tmp_path / 'lineage_user.py')!r}, name='user')\n"
        f"storage = Storage({str(tmp_path / 's.db')!r})\n"
    )
    env = {"PYTHONPATH": str(REPO), "MANDALA_AST_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_a_deletion_in_a_fresh_process_deletes_the_consumer_a_block_of_another_recorded(tmp_path, user):
    python(tmp_path, "user.comprehension(storage)")
    python(tmp_path, "user.delete_ten(storage)")
    assert python(tmp_path, "print(len(storage.df(user.total)))") == "0"
    assert python(tmp_path, "user.comprehension(storage); print(sorted(user.RUNS))") == "[('double', 10), ('total',)]"


def test_a_list_of_plain_values_keeps_its_raw_identity(db, user):
    """No producer to record: the call's history id is its content id, as it always was, and
    no call of another op stands for the list."""
    user.plain_values(Storage(db))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls WHERE lkey != cid").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM call_inputs WHERE src_call IS NOT NULL").fetchone()[0] == 0


def test_calls_stored_by_content_are_hit_by_compiled_code_building_the_list(db, user, tmp_path):
    """A storage whose total call was stored with the list as a plain value (uncompiled code,
    or compiled code before it recorded the list's producers) is found again by content: no
    body runs, and the new history is recorded beside it."""
    storage = Storage(db)
    with storage.run():
        total_of = user.total([user.double(1), user.double(10), user.double(100)])
    assert total_of == 222
    assert rerun(user, "comprehension", Storage(db)) == []
    assert rerun(user, "comprehension", Storage(db)) == []


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.mark.parametrize("dependents", [True, False])
def test_deleting_the_consumer_of_a_list_built_by_hand_leaves_no_record_of_the_list(db, user, dependents):
    """The build call stands for the list only as the consumer's input: with the consumer
    gone, it and the list's value go too (else the value stayed for good)."""
    storage = Storage(db)
    user.nested(storage)
    report = storage.delete_calls(storage.df(user.total), dependents=dependents)
    assert (report.calls, report.collections) == (1, 2)  # total; the two build calls
    assert count(db, "SELECT COUNT(*) FROM calls") == 3  # the doubles
    assert count(db, "SELECT COUNT(*) FROM vals") == 6  # their inputs and outputs
    assert dangling_references(db) == 0


def test_a_deletion_report_counts_the_users_op_calls_only_and_names_the_collections_apart(db, user):
    """Deleting ``double(10)`` takes ``total`` and the two build calls of ``[a, [b, c]]``:
    the user deleted two op calls, not four; the collections' records are said for what they are."""
    storage = Storage(db)
    user.nested(storage)
    doubles = storage.df(user.double)
    report = storage.delete_calls(doubles[doubles.x == 10])
    assert (report.calls, report.matched, report.dependents, report.collections) == (2, 1, 1, 2)
    assert str(report).startswith("deleted 2 calls (1 matched, 1 computed from them) and ")
    assert str(report).endswith("; 2 collections built by hand that only they were given went with them")


def edges(dot: str) -> list[tuple[str, str, str]]:
    """``(source, target, label)`` of a picture's DOT text, node ids as drawn."""
    found = re.findall(r'^  "([^"]+)" -> "([^"]+)"(?: \[label="([^"]*)"\])?;$', dot, re.MULTILINE)
    return [(a, b, label) for a, b, label in found]


def labels(dot: str) -> dict[str, str]:
    return dict(re.findall(r'^  "([^"]+)" \[label="([^"]*)"', dot, re.MULTILINE))


def test_the_picture_of_an_op_given_a_list_built_by_hand_draws_the_list_not_a_build_op(db, user):
    """``total([a, [b, c]])``: double's outputs go into a collection, the inner one into the
    outer, which goes into total; no op named ``__build__`` (there is none of the user's)."""
    storage = Storage(db)
    user.nested(storage)
    dot = str(storage.draw(user.total))
    assert "__build__" not in dot
    named, drawn = labels(dot), edges(dot)
    into_total = [a for a, b, _ in drawn if b == f"op:{user.total.name}"]
    assert [named[a] for a in into_total] == ["collection\\nbuilt by hand"]
    into_outer = {(named[a], label) for a, b, label in drawn if b == into_total[0]}
    assert into_outer == {("output", "elements ×1"), ("collection\\nbuilt by hand", "elements ×1")}
    inner = next(a for a, b, _ in drawn if b == into_total[0] and named[a] != "output")
    assert [(a, label) for a, b, label in drawn if b == inner] == [(f"out:{user.double.name}:0", "elements ×1")]


def test_the_picture_of_a_value_draws_a_list_built_by_hand_as_the_list_its_elements_went_into(db, user):
    storage = Storage(db)
    user.nested(storage)
    dot = str(storage.draw(222))
    assert "__build__" not in dot
    named = labels(dot)
    into = {(named[a], label, named[b]) for a, b, label in edges(dot) if named[b].startswith("[")}
    assert into == {("2", "[0]", "[2, [20, 200]]"), ("[20, 200]", "[1]", "[2, [20, 200]]"),
                    ("20", "[0]", "[20, 200]"), ("200", "[1]", "[20, 200]")}


def test_provenance_shows_the_producer_of_each_element_of_a_collection_built_by_hand(db, user):
    storage = Storage(db)
    user.nested(storage)
    provenance = storage.provenance(user.total)
    doubles = storage.df(user.double).set_index("x")["call"]
    rows = provenance[["input", "producer_op", "producer_call", "exact"]].values.tolist()
    assert [row[:2] for row in rows] == [
        ["xs", "mandala_ast.__build__"],
        ["xs[0]", user.double.name],
        ["xs[1]", "mandala_ast.__build__"],
        ["xs[1][0]", user.double.name],
        ["xs[1][1]", user.double.name],
    ]
    assert [row[2] for row in rows if row[1] == user.double.name] == [doubles[1], doubles[10], doubles[100]]
    assert all(row[3] for row in rows)


def test_the_command_line_lists_the_users_ops_only(db, user):
    """The build op is internal, as the element op is: `mandala-ast ops` does not list it."""
    from mandala_ast.runtime.catalog import Catalog

    user.nested(Storage(db))
    assert [op.name for op in Catalog.open(db).ops()] == sorted([user.double.name, user.total.name])


def test_an_element_whose_producer_compiled_code_cannot_know_is_matched_by_content(db, user):
    """``helper(b)`` may return an op's output (here it does): the build call records it
    inexact, and its producer is found by content, as for uncompiled code."""
    storage = Storage(db)
    user.with_a_helpers_result(storage)
    provenance = storage.provenance(user.total).set_index("input")
    assert provenance.loc["xs[0]", "exact"] and not provenance.loc["xs[1]", "exact"]
    assert provenance.loc["xs[1]", "producer_op"] == user.double.name
    assert "xs[2]" not in provenance.index  # a literal: no producer
    doubles = storage.df(user.double)
    storage.delete_calls(doubles[doubles.x == 10])
    assert len(storage.df(user.total)) == 0


def test_a_list_changed_after_it_was_built_is_not_claimed_exact(db, user):
    """``ys.append(double(100))`` after ``ys = [...]``: what was known of its elements no
    longer says what it holds; each is matched by content, none claimed exact, and deleting
    the appended call still deletes the call given the list."""
    storage = Storage(db)
    user.changed_after_it_was_built(storage)
    provenance = storage.provenance(user.total)
    elements = provenance[provenance.input != "xs"]
    assert len(elements) == 3 and not elements.exact.any()
    assert rerun(user, "changed_after_it_was_built", Storage(db)) == []
    doubles = storage.df(user.double)
    storage.delete_calls(doubles[doubles.x == 100])
    assert len(storage.df(user.total)) == 0


def test_a_list_a_helper_changed_after_it_was_built_is_not_claimed_exact(db, user):
    """The helper appended to ``ys`` out of the compiler's sight: the call given it is
    inexact, and names no producer for elements it knows nothing of."""
    storage = Storage(db)
    user.changed_by_a_helper(storage)
    provenance = storage.provenance(user.total)
    assert len(storage.df(user.total)) == 1 and not provenance.exact.any()


def test_hits_stay_hits_from_a_fresh_process(tmp_path, user):
    python(tmp_path, "user.plain_values(storage); user.comprehension(storage)")
    code = "user.plain_values(storage); user.comprehension(storage); print(user.RUNS)"
    assert python(tmp_path, code) == "[]"
