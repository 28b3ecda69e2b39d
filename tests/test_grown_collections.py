"""Lists and dicts filled step by step in compiled code (``ys = []``, then ``ys.append(f(x))``
in a loop) and passed to an op.

The op consumed the appended outputs as surely as it consumes ``[f(x) for x in xs]``: deleting
one of the producing calls must delete it, and provenance must name each element's producer.
Where compiled code cannot know what the list holds (it went to a helper, an element is the
very object two calls returned), the elements are matched by content: never a wrong producer.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from types import ModuleType

import pytest
from integrity import dangling_references

import mandala_ast
from mandala_ast import Storage

# The inputs 1, 10 and 100 equal no output (2, 20, 200): content cannot take one for another.
MODULE = """\
from mandala_ast import op, workflow

RUNS = []
XS = (1, 10, 100)


@op
def double(x):
    RUNS.append(("double", x))
    return 2 * x


@op
def twice(x):
    RUNS.append(("twice", x))
    return x + x


@op
def total(xs):
    RUNS.append(("total",))
    return sum(xs.values()) if isinstance(xs, dict) else sum(xs)


def appended(storage):
    with storage.run():
        ys = []
        for x in XS:
            ys.append(double(x))
        t = total(ys)


def added_in_place(storage):
    with storage.run():
        ys = []
        for x in XS:
            ys += [double(x)]
        t = total(ys)


def extended_by_a_generator(storage):
    with storage.run():
        ys = []
        ys.extend(double(x) for x in XS)
        t = total(ys)


def extended_by_a_list(storage):
    with storage.run():
        ys = []
        ys.extend([double(x) for x in XS])
        t = total(ys)


def inserted(storage):
    with storage.run():
        ys = []
        for x in XS:
            ys.insert(0, double(x))
        t = total(ys)


def stored_under_keys(storage):
    with storage.run():
        d = {}
        for x in XS:
            d[str(x)] = double(x)
        t = total(d)


def filled_outside_the_block(storage):
    ys = []
    for x in XS:
        ys.append(x)
    with storage.run():
        ys.clear()
        for x in XS:
            ys.append(double(x))
        t = total(ys)


def sorted_and_popped(storage):
    with storage.run():
        ys = []
        for x in (1, 10, 100, 7):
            ys.append(double(x))
        ys.pop()
        ys.sort(reverse=True)
        t = total(ys)


def helper(ys):
    ys.reverse()


def given_to_a_helper(storage):
    with storage.run():
        ys = []
        for x in XS:
            ys.append(double(x))
        helper(ys)
        t = total(ys)


@workflow
def one_more(ys):
    ys.append(double(7))
    return double(8)


def given_to_a_workflow(storage):
    with storage.run():
        ys = []
        for x in XS:
            ys.append(double(x))
        one_more(ys)
        t = total(ys)


def aliased(storage):
    with storage.run():
        ys = []
        zs = ys
        for x in XS:
            zs.append(double(x))
        t = total(ys)


def one_object_two_producers(storage):
    with storage.run():
        ys = []
        ys.append(double(1))
        ys.append(twice(1))  # 2 as well: the very same int object
        ys.append(double(10))
        t = total(ys)


def begun_in_another_block(storage):
    with storage.run():
        ys = []
        ys.append(twice(1))
        t = total(ys)
    with storage.run():
        ys.append(double(1))  # 2 again, the same object as twice's
        ys.append(double(10))
        t = total(ys)


def plain_values(storage):
    with storage.run():
        ys = []
        for x in XS:
            ys.append(2 * x)
        t = total(ys)
"""

FORMS = [
    "appended",
    "added_in_place",
    "extended_by_a_generator",
    "extended_by_a_list",
    "inserted",
    "stored_under_keys",
    "filled_outside_the_block",
]


@pytest.fixture
def user(compile_user) -> ModuleType:
    return compile_user(MODULE, "grown")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


def rerun(user: ModuleType, form: str, storage: Storage) -> list[tuple]:
    user.RUNS.clear()
    getattr(user, form)(storage)
    return sorted(user.RUNS)


def delete_double_of(storage: Storage, user: ModuleType, x: int) -> None:
    doubles = storage.df(user.double)
    storage.delete_calls(doubles[doubles.x == x])


@pytest.mark.parametrize("form", FORMS)
def test_deleting_a_call_whose_output_was_appended_to_a_list_deletes_the_op_given_the_list(db, user, form):
    storage = Storage(db)
    getattr(user, form)(storage)
    delete_double_of(storage, user, 10)
    assert len(Storage(db).df(user.total)) == 0
    assert dangling_references(db) == 0
    assert rerun(user, form, Storage(db)) == [("double", 10), ("total",)]


@pytest.mark.parametrize("form", FORMS)
def test_provenance_names_the_producer_of_each_element_appended_to_a_list(db, user, form):
    storage = Storage(db)
    getattr(user, form)(storage)
    provenance = storage.provenance(user.total)
    elements = provenance[provenance.input != "xs"]
    doubles = storage.df(user.double).set_index("call")["x"]
    assert sorted(doubles[call] for call in elements.producer_call) == [1, 10, 100]
    assert elements.exact.all() and provenance.exact.all()


@pytest.mark.parametrize("form", FORMS)
def test_a_list_filled_step_by_step_is_hit_again_without_running_anything(db, user, form):
    getattr(user, form)(Storage(db))
    assert rerun(user, form, Storage(db)) == []


def test_a_list_sorted_and_popped_after_filling_names_each_remaining_elements_producer(db, user):
    storage = Storage(db)
    user.sorted_and_popped(storage)
    provenance = storage.provenance(user.total).set_index("input")
    doubles = storage.df(user.double).set_index("x")["call"]
    assert provenance.loc[["xs[0]", "xs[1]", "xs[2]"], "producer_call"].tolist() == [doubles[100], doubles[10], doubles[1]]
    assert provenance.exact.all()


@pytest.mark.parametrize("form", ["given_to_a_helper", "given_to_a_workflow", "aliased"])
def test_a_list_compiled_code_cannot_follow_is_matched_by_content_never_claimed_exact(db, user, form):
    """A helper may have added anything to it (here it reversed it); an alias may have been
    filled out of sight: each element is matched by content, and the calls are inexact."""
    storage = Storage(db)
    getattr(user, form)(storage)
    provenance = storage.provenance(user.total)
    elements = provenance[provenance.input != "xs"]
    assert len(elements) >= 3 and not elements.exact.any()
    delete_double_of(storage, user, 10)
    assert len(storage.df(user.total)) == 0
    assert rerun(user, form, Storage(db)) == [("double", 10), ("total",)]


def test_an_element_two_calls_returned_as_the_same_object_is_not_claimed_for_either(db, user):
    """``double(1)`` and ``twice(1)`` both return the int 2, one object: which of them gave
    ``ys[0]`` and which ``ys[1]`` cannot be told; content decides for both, the third is exact."""
    storage = Storage(db)
    user.one_object_two_producers(storage)
    provenance = storage.provenance(user.total).set_index("input")
    assert not provenance.loc["xs[0]", "exact"] and not provenance.loc["xs[1]", "exact"]
    assert provenance.loc["xs[2]", "exact"]


def test_an_element_added_before_the_block_began_is_not_claimed_for_a_call_of_the_block(db, user):
    """The second block knows nothing of what the first added: ``ys[0]`` (twice's 2) is the
    very object double(1) returns, yet not double's; content decides. ``ys[2]`` is exact."""
    storage = Storage(db)
    user.begun_in_another_block(storage)
    provenance = storage.provenance(user.total)
    last = provenance[provenance.call == provenance.call.iloc[-1]].set_index("input")
    if len(last) < 4:
        last = provenance[provenance.call == provenance.call.iloc[0]].set_index("input")
    assert not last.loc["xs[0]", "exact"] and not last.loc["xs[1]", "exact"]
    assert last.loc["xs[2]", "exact"]


def test_a_list_filled_with_plain_values_keeps_its_raw_identity(db, user):
    user.plain_values(Storage(db))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls WHERE lkey != cid").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1


SCRIPT = """\
import os
from mandala_ast import Storage, op

RUNS = []


@op
def double(x):
    RUNS.append(("double", x))
    return 2 * x


@op
def total(xs):
    RUNS.append(("total",))
    return sum(xs)


storage = Storage(os.environ["GROWN_DB"])
with storage.run():
    ys = []
    for x in (1, 10, 100):
        ys.append(double(x))
    t = total(ys)
"""


def test_a_list_filled_in_a_block_at_module_level_gets_its_elements_producers(tmp_path, db, monkeypatch):
    """The way a script is written: the block and the list at the module's top level."""
    monkeypatch.setenv("GROWN_DB", str(db))
    (tmp_path / "grown_script.py").write_text(SCRIPT)
    script = mandala_ast.compile_module(tmp_path / "grown_script.py", name="grown_script")
    try:
        storage = Storage(db)
        delete_double_of(storage, script, 10)
        assert len(storage.df(script.total)) == 0
    finally:
        sys.modules.pop("grown_script", None)
