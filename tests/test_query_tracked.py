"""A call under an ``if`` found from its producers by history alone (query/tracked.py), and by
content too wherever a call of its op was stored without history (uncompiled code)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from test_query import run as run_compiled

from mandala_ast import Storage, op
from mandala_ast.runtime.query import result, tracked
from mandala_ast.runtime.query.pattern import Pattern


@op
def inc(x: int) -> int:
    return x + 1


@op
def add(x: int, y: int) -> int:
    return x + y


GUARDED = """\
import mandala_ast
with storage.query() as q:
    x = Q()
    y = inc(x)
    if x % 2 == 0:
        z = add(y, x)
"""
GUARDED_POINT = """\
import mandala_ast
with storage.query() as q:
    for x in [4, 5]:
        y = inc(x)
        if x % 2 == 0:
            z = add(y, x)
"""


def run(source: str, storage: Storage) -> dict:
    """*source* compiled, executed with *storage* and this module's ops."""
    return run_compiled(source, storage, inc=inc, add=add)


def store_compiled(storage: Storage, xs: Iterable[int]) -> None:
    run(f"import mandala_ast\nwith storage.run():\n    for x in {list(xs)}:\n        z = add(inc(x), x)\n", storage)


def store_uncompiled(storage: Storage, xs: Iterable[int]) -> None:
    with storage.run():  # this test module is not compiled: no input's history is recorded
        for x in xs:
            add(inc(x), x)


def guarded_rows(storage: Storage) -> list[tuple]:
    """(x, y, z) of each row of the guarded query, z None where the `if` left it out."""
    return rows_of(run(GUARDED, storage)["q"])


def rows_of(q: Any) -> list[tuple]:
    """(x, y, z) of each row of ``q.df()`` (z NaN in the frame where the `if` left it out)."""
    found = q.df()[["x", "y", "z"]].itertuples(index=False)
    return sorted((int(x), int(y), None if pd.isna(z) else int(z)) for x, y, z in found)


def expected(xs: range) -> list[tuple]:
    return sorted((x, x + 1, 2 * x + 1 if x % 2 == 0 else None) for x in xs)


def guarded_plan(storage: Storage) -> str:
    """SQLite's plan for the guarded query's statement, its steps joined by " | "."""
    sql = run(GUARDED, storage)["q"].sql
    # (On the storage's own connection, which holds the temp tables the statement may name;
    # a plan does not depend on the values bound.)
    conn = storage.engine.store.conn
    return " | ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, [None] * sql.count("?")))


def test_a_guarded_call_over_compiled_calls_is_searched_by_its_producers_row_id(tmp_path: Path) -> None:
    # Searched by content in every row (a random page of idx_inputs_cid a row): 4.2 s for
    # 500k rows over 1M calls, against 2.5 s by the producer's row id.
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(40))
    plan = guarded_plan(storage)
    assert "idx_inputs_src" in plan
    assert "idx_inputs_cid" not in plan and "mandala_loose_" not in plan  # (history alone: one search)
    assert guarded_rows(storage) == expected(range(40))


def _read_steps(storage: Storage) -> tuple[int, tracked.Edges]:
    """SQLite VM steps the guarded query's check takes to read the guarded op's calls (its
    count of the first op's calls aside), and what it found."""
    q = run(GUARDED, storage)["q"]
    assert q.sql  # (compiled first: compiling commits)
    conn, counted = storage.engine.store.conn, [0]

    def count() -> int:
        counted[0] += 1
        return 0

    def counting(real: Any) -> Any:
        def read(*args: Any) -> Any:
            conn.set_progress_handler(count, 1)
            try:
                return real(*args)
            finally:
                conn.set_progress_handler(None, 0)
        return read

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracked, "_untracked", counting(tracked._untracked))
        patch.setattr(tracked, "_loose_table", counting(tracked._loose_table))
        with storage.engine.store.snapshot():
            edges = tracked.tracked_calls(conn, q.pattern)
    return counted[0], edges


def test_a_guarded_query_finds_which_calls_lack_history_without_reading_the_others(tmp_path: Path) -> None:
    # It read every call of the guarded op's version for the few stored by uncompiled code
    # (~0.45 µs a call: 0.2 s of a guarded query at 1M calls, 0.45 s with such calls).
    steps = {}
    for n in (100, 1600):
        storage = Storage(tmp_path / f"{n}.db")
        store_compiled(storage, range(n))
        store_uncompiled(storage, range(n, n + 3))
        steps[n], edges = _read_steps(storage)
        assert edges.loose  # (those three, in a temp table)
        assert guarded_rows(storage) == expected(range(n + 3))
    assert steps[1600] < 2 * steps[100]  # 16x the calls: reading them all is ~16x the work


def test_a_guarded_query_on_a_file_without_the_index_of_calls_not_exact_finds_every_call(tmp_path: Path) -> None:
    # Format 9, read where it cannot be upgraded: the check reads every call of the version.
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(10))
    store_uncompiled(storage, range(10, 14))
    storage.close()
    with closing(sqlite3.connect(tmp_path / "s.db")) as conn:
        conn.execute("DROP INDEX idx_calls_inexact")
    storage = Storage(tmp_path / "s.db")
    assert guarded_rows(storage) == expected(range(14))
    assert _read_steps(storage)[1].loose


def test_a_guarded_query_finds_the_calls_uncompiled_code_stored_under_the_if(tmp_path: Path) -> None:
    # The few calls without history are searched in a temp table, by content (LOOSE_MAX).
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(10))
    store_uncompiled(storage, range(10, 20))
    plan = guarded_plan(storage)
    assert "idx_inputs_src" in plan and "USING INDEX mandala_loose_" in plan and "idx_inputs_cid" not in plan
    assert guarded_rows(storage) == expected(range(20))


def test_a_guarded_op_with_many_calls_without_history_is_searched_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracked, "LOOSE_MAX", 4)  # (10 such calls: a temp table would be large)
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(10))
    store_uncompiled(storage, range(10, 20))
    plan = guarded_plan(storage)
    assert "idx_inputs_cid" in plan and "mandala_loose_" not in plan
    assert guarded_rows(storage) == expected(range(20))


def test_a_guarded_call_over_calls_made_inside_functions_is_still_searched_by_row_id(tmp_path: Path) -> None:
    """Compiled code inside a function, ``add(inc(k), k)`` with ``k`` a parameter, stores add
    calls that are not exact (k may be any op's output) but whose first input's source is
    recorded: the edge from inc holds by history for them too."""
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(40))
    run("import mandala_ast\ndef at(storage, k):\n    with storage.run():\n        z = add(inc(k), k)\n"
        "for k in [4, 7, 100]:\n    at(storage, k)\n", storage)
    with closing(sqlite3.connect(storage.path)) as conn:
        loose = conn.execute("SELECT count(*) FROM calls c JOIN call_inputs i ON i.call_id = c.id AND i.name = 'x'"
                             " WHERE c.exact = 0 AND i.src_call IS NOT NULL").fetchone()[0]
    assert loose == 3  # (what this test is about: such calls are stored)
    plan = guarded_plan(storage)
    assert "idx_inputs_src" in plan and "idx_inputs_cid" not in plan and "mandala_loose_" not in plan
    assert guarded_rows(storage) == expected(range(40)) + [(100, 101, 201)]


def test_a_guarded_op_with_more_calls_than_the_budget_is_matched_by_content_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its calls past the budget are unread: one of them may lack history.
    monkeypatch.setattr(tracked, "_MIN_BUDGET", 0)
    storage = Storage(tmp_path / "s.db")
    run("import mandala_ast\nwith storage.run():\n    for x in range(100, 110):\n        z = add(x, x)\n", storage)
    store_uncompiled(storage, range(2))  # inc: 2 calls, a budget of 4 add calls, all exact
    assert guarded_rows(storage) == expected(range(2))


NARROWED = {
    # a loop's two values: the check would read every add call
    "first call": (GUARDED_POINT, ["y", "z"], [[5, 9.0], [6, None]]),
    # one row, found from add(y, 4): the check read every add call (up to twice inc's)
    "a later call": (GUARDED.replace("    y = inc(x)\n", "    y = inc(x)\n    v = add(y, 4)\n"), ["x", "y", "v", "z"],
                     [[4, 5, 9, 9]]),
}


@pytest.mark.parametrize("narrowed", list(NARROWED))
def test_a_guarded_query_narrowed_by_a_literal_reads_no_other_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, narrowed: str
) -> None:
    source, columns, rows = NARROWED[narrowed]
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(40))
    checked: list[bytes] = []
    monkeypatch.setattr(tracked, "_untracked", lambda conn, version_id, names, budget: checked.append(version_id))
    frame = run(source, storage)["q"].df()
    shown = frame[columns].astype(object).where(frame[columns].notna(), None).values.tolist()
    assert sorted(shown, key=str) == sorted(rows, key=str)
    assert checked == []


@settings(max_examples=25, deadline=None)
@given(
    compiled=st.sets(st.integers(0, 30), max_size=12),
    uncompiled=st.sets(st.integers(0, 30), max_size=12),
    modulus=st.integers(1, 3),
    uncompiled_first=st.booleans(),
)
def test_a_guarded_query_over_calls_of_compiled_and_uncompiled_code_gives_the_computed_rows(
    tmp_path_factory: pytest.TempPathFactory, compiled: set, uncompiled: set, modulus: int, uncompiled_first: bool
) -> None:
    storage = Storage(tmp_path_factory.mktemp("mixed") / "s.db")
    stores = [(store_compiled, sorted(compiled)), (store_uncompiled, sorted(uncompiled))]
    for store, xs in reversed(stores) if uncompiled_first else stores:
        if xs:
            store(storage, xs)
    if not compiled | uncompiled:
        return
    source = GUARDED.replace("x % 2 == 0", f"x % {modulus} == 0")
    frame = run(source, storage)["q"].df()
    found = frame[["x", "y", "z"]].itertuples(index=False)
    got = sorted((int(x), int(y), None if pd.isna(z) else int(z)) for x, y, z in found)
    want = sorted((x, x + 1, 2 * x + 1 if x % modulus == 0 else None) for x in compiled | uncompiled)
    assert got == want


TWO_EDGES = """\
import mandala_ast
with storage.query() as q:
    x = Q()
    y = inc(x)
    v = inc(y)
    if x % 2 == 0:
        z = add(y, v)
"""


def test_a_guarded_call_fed_by_two_calls_finds_the_calls_uncompiled_code_stored(tmp_path: Path) -> None:
    """Both edges of add lack history in an uncompiled call: no temp table of one edge's."""
    storage = Storage(tmp_path / "s.db")
    run("import mandala_ast\nwith storage.run():\n    for x in range(6):\n        y = inc(x)\n        z = add(y, inc(y))\n", storage)
    with storage.run():  # (not compiled)
        for x in range(6, 12):
            y = inc(x)
            add(y, inc(y))
    frame = run(TWO_EDGES, storage)["q"].df()
    found = frame[["x", "z"]].itertuples(index=False)
    assert sorted((int(x), None if pd.isna(z) else int(z)) for x, z in found) == [
        (x, 2 * x + 3 if x % 2 == 0 else None) for x in range(12)]


def test_a_guarded_query_whose_sql_was_shown_before_uncompiled_code_stored_calls_finds_them(tmp_path: Path) -> None:
    # The check ran when q.sql compiled the statement, and its answer was kept: the add calls
    # stored since without history were missed, their rows shown without z.
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(6))
    q = run(GUARDED, storage)["q"]
    assert "idx_inputs_cid" not in q.sql
    store_uncompiled(storage, range(6, 10))
    assert rows_of(q) == expected(range(10))


def test_a_guarded_query_read_again_after_a_deletion_finds_the_calls_uncompiled_code_stored_since(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(6))
    q = run(GUARDED, storage)["q"]
    assert rows_of(q) == expected(range(6))
    store_uncompiled(storage, range(6, 10))
    frame = q.df()  # the rows of its first read
    storage.delete_calls(frame[frame["x"] == 1])  # q's rows are read again
    assert rows_of(q) == [row for row in expected(range(10)) if row[0] != 1]


def test_a_guarded_query_while_another_storage_stores_uncompiled_calls_shows_them_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between the check and the statement another connection stores inc and add calls without
    # history: the statement saw the inc calls, and missed the add calls the check had not.
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(6))
    q = run(GUARDED, storage)["q"]
    check = result.tracked_calls

    def check_then_store(conn: sqlite3.Connection, pattern: Pattern) -> frozenset[int]:
        found = check(conn, pattern)
        if not found:
            return found
        store_uncompiled(Storage(tmp_path / "s.db"), range(6, 10))
        return found

    monkeypatch.setattr(result, "tracked_calls", check_then_store)
    assert rows_of(q) in (expected(range(6)), expected(range(10)))


def test_a_query_without_a_call_under_an_if_counts_no_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The count of its first op's calls (tens of ms at 500k) bought nothing there.
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(4))
    monkeypatch.setattr(tracked, "_COUNT_SQL", "SELECT count(*) FROM no_such_table WHERE ?")  # fails if run
    plain = GUARDED.replace("    if x % 2 == 0:\n        z = add(y, x)\n", "    z = add(y, x)\n")
    frame = run(plain, storage)["q"].df()
    assert sorted(frame["z"]) == [1, 3, 5, 7]


def test_two_calls_of_one_op_under_an_if_and_its_else_read_its_calls_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(4))
    checked: list[bytes] = []
    real = tracked._untracked
    spy = lambda conn, version, names, budget: checked.append(version) or real(conn, version, names, budget)  # noqa: E731
    monkeypatch.setattr(tracked, "_untracked", spy)
    branches = GUARDED + "    else:\n        w = add(y, x)\n"
    frame = run(branches, storage)["q"].df()
    assert len(checked) == 1
    assert sorted(frame["z"].dropna()) == [1, 5] and sorted(frame["w"].dropna()) == [3, 7]


def test_a_guarded_query_read_while_another_thread_shows_its_sql_finds_the_calls_uncompiled_code_stored(
    tmp_path: Path,
) -> None:
    # q.sql fills the temp table of the calls without history (tracked.py) as a read does: on
    # the one connection threads share, it emptied the table while another thread's statement
    # was reading it (a race: each read of the loop below is a chance to lose those rows).
    import threading

    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(1500))
    store_uncompiled(storage, range(1500, 1700))
    shown, read = run(GUARDED, storage)["q"], run(GUARDED, storage)["q"]
    want = rows_of(read)
    assert sum(z is not None for _, _, z in want) == 850  # (100 of them found among the calls without history)
    stop = threading.Event()
    shower = threading.Thread(target=lambda: [shown.sql for _ in iter(stop.is_set, True)])
    shower.start()
    try:
        for _ in range(40):
            assert rows_of(run(GUARDED, storage)["q"]) == want
    finally:
        stop.set()
        shower.join()


def test_a_guarded_query_reading_calls_without_history_lets_another_process_write_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The temp table of those calls is written inside the read's snapshot: a write there to the
    # file itself would hold its write lock till the read ends, and writers would wait or fail.
    import subprocess
    import sys

    storage = Storage(tmp_path / "s.db")
    store_compiled(storage, range(6))
    store_uncompiled(storage, range(6, 10))
    writer = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE'); conn.execute('CREATE TABLE IF NOT EXISTS scratch (a)'); conn.execute('COMMIT')\n"
    )
    written: list[subprocess.CompletedProcess] = []
    epoch = result.deletion_epoch

    def write_then_epoch(conn: sqlite3.Connection) -> Any:  # (after the statement's temp table is filled)
        written.append(subprocess.run([sys.executable, "-c", writer, str(tmp_path / "s.db")], capture_output=True, text=True))
        return epoch(conn)

    monkeypatch.setattr(result, "deletion_epoch", write_then_epoch)
    q = run(GUARDED, storage)["q"]
    assert "temp.mandala_loose_" in q.sql
    assert rows_of(q) == expected(range(10))
    assert written and all(done.returncode == 0 for done in written), [done.stderr for done in written]
