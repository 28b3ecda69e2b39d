"""Batch blocks: deferred op calls, forcing, plain names after the block, the scheduler's
promises (stored calls never dispatched, duplicates once, independent calls in parallel, a
call dispatched as soon as its inputs are ready) and failures."""

from __future__ import annotations

import os
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from batch_ops import (
    RELEASED,
    RUNS,
    add,
    append_99,
    doubled,
    doubled_ignoring_verbose,
    fails,
    inc,
    listed,
    meet,
    pair,
    release,
    summed,
    summed_first,
    wait_for_release,
)
from hypothesis import HealthCheck, given, settings, strategies as st

from mandala_ast import MandalaUnstoredWarning, Storage, transform_source
from mandala_ast.runtime.batch import Deferred

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


@pytest.fixture(autouse=True)
def fresh_runs():
    RUNS.clear()
    RELEASED.clear()


def compiled(code: str) -> dict:
    """Run ``code`` compiled (as the import hook would) in a fresh namespace; its globals."""
    namespace = {"__name__": "user_code"}
    source = transform_source(textwrap.dedent(code), "user_code.py").source
    exec(compile(source, "user_code.py", "exec"), namespace)
    return namespace


# -- the form ----------------------------------------------------------------------------------


def test_op_calls_are_deferred_until_the_block_ends(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.batch():
        y = inc(1)
        assert type(y) is Deferred and RUNS == []
    assert y == 2 and type(y) is int


def test_a_non_op_use_forces_only_the_calls_it_needs(tmp_path):
    with Storage(tmp_path / "s.db").batch():
        y = inc(1)
        other = inc(100)
        assert y + 1 == 3
        assert RUNS == [("inc", 1)]
        if inc(y) > 2:
            assert RUNS == [("inc", 1), ("inc", 2)]
    assert other == 101


def test_names_are_plain_after_the_block_in_lists_dicts_and_tuples(tmp_path):
    with Storage(tmp_path / "s.db").batch():
        ys = [inc(x) for x in range(3)]
        by_name = {"a": inc(10)}
        both = (inc(20), inc(21))
        nested = [[inc(30)], {"k": (inc(31),)}]
        first, second = pair(5)
    assert [type(y) for y in ys] == [int, int, int] and ys == [1, 2, 3]
    assert type(by_name["a"]) is int and type(both[0]) is int and both == (21, 22)
    assert type(nested[0][0]) is int and type(nested[1]["k"][0]) is int
    assert (first, second) == (5, -5) and type(first) is int


def test_names_are_plain_at_module_level(tmp_path):
    namespace = {"inc": inc, "storage": Storage(tmp_path / "s.db")}
    exec("with storage.batch():\n    y = inc(1)\n    ys = [inc(2)]\n", namespace)
    assert type(namespace["y"]) is int and type(namespace["ys"][0]) is int


def test_uncompiled_plain_functions_receive_proxies_that_act_as_their_values(tmp_path):
    seen = []
    with Storage(tmp_path / "s.db").batch():
        y = inc(1)
        seen.append(isinstance(y, int))  # isinstance sees the value's class
        seen.append(str(y))
    assert seen == [True, "2"]


def test_compiled_plain_functions_receive_plain_values(tmp_path):
    ns = compiled(
        """
        import json
        from batch_ops import inc
        from mandala_ast import Storage

        def block(path):
            with Storage(path).batch():
                y = inc(1)
                types = [type(y).__name__]
                text = json.dumps({"y": inc(2)})     # the C encoder takes no proxies
                joined = ",".join([str(inc(3))])
            return types, text, joined
        """
    )
    assert ns["block"](tmp_path / "s.db") == (["int"], '{"y": 3}', "4")


def test_appending_to_a_list_does_not_force(tmp_path):
    ns = compiled(
        """
        from batch_ops import RUNS, inc
        from mandala_ast import Storage

        def block(path):
            with Storage(path).batch():
                ys = []
                for x in range(3):
                    ys.append(inc(x))
                ran_inside = list(RUNS)
            return ys, ran_inside
        """
    )
    ys, ran_inside = ns["block"](tmp_path / "s.db")
    assert ys == [1, 2, 3] and ran_inside == []


def test_compiled_batch_keeps_exact_provenance_like_a_run_block(tmp_path):
    code = """
        from batch_ops import inc
        from mandala_ast import Q, Storage

        def block(path, form):
            storage = Storage(path)
            with getattr(storage, form)():
                y = inc(1)
                z = inc(2)
                w = inc(y)
            with storage.query() as q:
                x = Q()
                w = inc(inc(x))
            return q.df().values.tolist()
        """
    ns = compiled(code)
    assert ns["block"](tmp_path / "run.db", "run") == ns["block"](tmp_path / "batch.db", "batch") == [[1, 3]]


def test_workflow_bodies_are_deferred_too(tmp_path):
    ns = compiled(
        """
        from batch_ops import RUNS, add, inc
        from mandala_ast import Storage, workflow

        @workflow
        def twice_plus(x):
            y = inc(x)
            return add(y, inc(y))

        def block(path):
            with Storage(path).batch():
                results = [twice_plus(x) for x in range(3)]
                ran_inside = list(RUNS)
            return results, ran_inside
        """
    )
    results, ran_inside = ns["block"](tmp_path / "s.db")
    assert results == [3, 5, 7] and ran_inside == []


# -- the scheduler -----------------------------------------------------------------------------


@pytest.mark.parametrize("executor", [None, "threads"])
def test_stored_calls_are_never_dispatched(tmp_path, executor):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        [inc(x) for x in range(20)]
    RUNS.clear()
    with storage.batch(executor=executor) as b:
        ys = [inc(x) for x in range(20)]
        zs = [inc(y) for y in ys]
    assert RUNS == [("inc", 20)]  # inc(19) -> 20 is the one new call
    assert b.stats.found == 39 and b.stats.dispatched == 1
    assert b.stats.lookups == 2  # one bulk lookup per wave
    assert zs == [x + 2 for x in range(20)]


@pytest.mark.parametrize("executor", [None, "threads"])
def test_identical_calls_run_once(tmp_path, executor):
    with Storage(tmp_path / "s.db").batch(executor=executor) as b:
        ys = [inc(1) for _ in range(10)]
    assert ys == [2] * 10 and RUNS == [("inc", 1)] and b.stats.dispatched == 1


def test_independent_calls_run_at_the_same_time(tmp_path):
    # Each call waits until the other has started: only parallel execution gets past.
    with Storage(tmp_path / "s.db").batch(executor="threads", max_concurrency=2):
        a, b = meet(1), meet(2)
    assert (a, b) == (1, 2)


def test_a_call_is_dispatched_as_soon_as_its_inputs_are_ready(tmp_path):
    # wait_for_release(0) runs until release() runs; release's input comes from inc(0),
    # which finishes at once: release must not wait for the first wave to end.
    with Storage(tmp_path / "s.db").batch(executor="threads", max_concurrency=2):
        waiting = wait_for_release(0)
        released = release(inc(0))
    assert (waiting, released) == (0, 1)


def test_batch_results_are_stored_for_run_blocks(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.batch(executor="threads"):
        ys = [add(inc(x), x) for x in range(5)]
    RUNS.clear()
    with Storage(tmp_path / "s.db").run():
        again = [add(inc(x), x) for x in range(5)]
    assert again == ys and RUNS == []


def test_a_user_executor_stays_open(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        with Storage(tmp_path / "s.db").batch(executor=pool):
            y = inc(1)
        assert pool.submit(lambda: 5).result() == 5
    assert y == 2


def test_an_unknown_executor_is_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="executor"):
        with Storage(tmp_path / "s.db").batch(executor="gpus"):
            pass


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", [None, "threads"])
def test_a_failing_call_loses_nothing_else_and_names_the_call(tmp_path, executor):
    storage = Storage(tmp_path / "s.db")
    with pytest.raises(ValueError, match="bad 3") as caught:
        with storage.batch(executor=executor):
            ok = [inc(x) for x in range(5)]
            bad = fails(3)
            after = inc(bad)  # needs the failed output: not run
    assert any("fails(x=3)" in note for note in caught.value.__notes__)
    RUNS.clear()
    with storage.run():
        assert [inc(x) for x in range(5)] == [1, 2, 3, 4, 5]
    assert RUNS == []
    del ok, after


def test_several_failures_are_an_exception_group(tmp_path):
    with pytest.raises(ExceptionGroup) as caught:
        with Storage(tmp_path / "s.db").batch():
            fails(1)
            fails(2)
            inc(1)
    messages = sorted(str(e) for e in caught.value.exceptions)
    assert messages == ["bad 1", "bad 2"]
    notes = [n for e in caught.value.exceptions for n in e.__notes__]
    assert any("fails(x=1)" in n for n in notes) and any("fails(x=2)" in n for n in notes)


@pytest.mark.parametrize("executor", [None, "threads", "processes"])
@pytest.mark.parametrize("source", ["an op", "the block"])
def test_an_op_changing_an_argument_other_calls_share_stores_no_wrong_result(tmp_path, executor, source):
    """In a batch, calls given the same object are identified before any of them runs: one
    that changes it in place (``xs.append``) hands the others a value they were not keyed
    on. Their results must not be stored under the value they were keyed on: the block gets
    them, unstored, with a warning naming the argument."""
    storage = Storage(tmp_path / "s.db")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with storage.batch(executor=executor):
            xs = listed(3) if source == "an op" else [0, 1, 2]
            length = append_99(xs)
            answer = summed(xs)
    unstored = [w for w in caught if issubclass(w.category, MandalaUnstoredWarning)]
    assert length == 4 and answer in (3, 102)  # 102: summed ran after append_99, as in a run block
    assert all("argument 'xs'" in str(w.message) for w in unstored)
    assert unstored or executor == "processes"  # a process pool sends each call its own copy
    RUNS.clear()
    with storage.run():
        assert summed([0, 1, 2]) == 3
        assert append_99([0, 1, 2]) == 4


@pytest.mark.parametrize("executor", [None, "threads"])
def test_an_op_changing_a_list_another_call_gets_inside_an_argument_stores_no_wrong_result(tmp_path, executor):
    # The other call is given [xs, "tag"], a new list each time, holding the shared xs: only
    # top-level arguments were checked, and summed_first([[0, 1, 2], "tag"]) = 102 was stored.
    storage = Storage(tmp_path / "s.db")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MandalaUnstoredWarning)
        with storage.batch(executor=executor):
            xs = [0, 1, 2]
            append_99(xs)
            summed_first([xs, "tag"])
    RUNS.clear()
    with storage.run():
        assert summed_first([[0, 1, 2], "tag"]) == 3


def test_forcing_a_failed_call_raises_where_the_value_is_used(tmp_path):
    with pytest.raises(ValueError, match="bad 7"):
        with Storage(tmp_path / "s.db").batch():
            y = fails(7)
            if y:  # the use needs the value
                pass


@pytest.mark.parametrize("executor", [None, "threads", "processes"])
def test_a_failure_the_block_caught_where_it_used_the_value_is_not_raised_again_at_its_end(tmp_path, executor):
    """The same code as a run block: a call fails, the block catches its error where it uses
    the value and calls again. The run block ends with every value; the batch raised the
    caught error again at its end (the retries' values lost with the block's names)."""
    from batch_ops import fails_once

    storage, folder = Storage(tmp_path / "s.db"), str(tmp_path)
    with storage.batch(executor=executor):
        ys = [fails_once(x, folder) for x in range(3)]
        values = []
        for x, y in enumerate(ys):
            try:
                values.append(y + 0)  # forces it
            except ConnectionError:
                values.append(fails_once(x, folder) + 0)  # try once more
        total = sum(values)
    assert values == [0, 10, 20] and total == 30
    with storage.run(allow_new_calls=False):
        assert [fails_once(x, folder) for x in range(3)] == [0, 10, 20]


def test_a_failure_the_block_never_used_is_still_raised_at_its_end_beside_one_it_caught(tmp_path):
    from batch_ops import fails_once

    with pytest.raises(ConnectionError, match="try 2 again"):
        with Storage(tmp_path / "s.db").batch():
            first = fails_once(1, str(tmp_path))
            fails_once(2, str(tmp_path))  # never used: its failure is raised at the end
            try:
                first + 0
            except ConnectionError:
                pass


def test_a_failure_the_block_caught_through_a_call_that_needed_the_failed_one_is_not_raised_again(tmp_path):
    # A call whose input failed is not run and raises that input's error where it is used:
    # caught there, the failure is the code's, as when the failed call's own value is used.
    from batch_ops import fails_once, inc

    folder = str(tmp_path)
    with Storage(tmp_path / "s.db").batch():
        parsed = inc(fails_once(1, folder))
        try:
            total = parsed + 0
        except ConnectionError:
            total = inc(fails_once(1, folder)) + 0
    assert total == 11


def test_a_caught_failure_does_not_hide_another_calls_failure_that_raised_the_same_error_object(tmp_path):
    # Failures the block's code met are told apart by call, not by error object: two calls of
    # an op raising one prepared error share it, and catching it for one must not make the
    # block end quietly while the other's name holds a failed call.
    from batch_ops import fails_with_the_shared_error

    with pytest.raises(LookupError, match="no such record"):
        with Storage(tmp_path / "s.db").batch():
            first = fails_with_the_shared_error(1)
            fails_with_the_shared_error(2)  # never used: its failure is raised at the end
            try:
                first + 0
            except LookupError:
                pass


# -- batch results equal run results -----------------------------------------------------------

#: One step of a program: a literal, an op on earlier values (chains, diamonds, duplicates),
#: or a plain use of an earlier value (which forces it inside a batch).
_STEP = st.one_of(
    st.tuples(st.just("lit"), st.integers(-3, 3)),
    st.tuples(st.just("inc"), st.integers(0, 50)),
    st.tuples(st.just("add"), st.integers(0, 50), st.integers(0, 50)),
    st.tuples(st.just("pair"), st.integers(0, 50)),
    st.tuples(st.just("force"), st.integers(0, 50)),
)
PROGRAMS = st.lists(_STEP, min_size=1, max_size=25)


def interpret(program: list) -> list:
    """Run ``program`` as ordinary code in whatever block is open; every value it made."""
    values: list = [0]
    for step in program:
        pick = [values[i % len(values)] for i in step[1:]]
        if step[0] == "lit":
            values.append(step[1])
        elif step[0] == "inc":
            values.append(inc(pick[0]))
        elif step[0] == "add":
            values.append(add(*pick))
        elif step[0] == "pair":
            values.extend(pair(pick[0]))
        else:
            values.append(pick[0] * 2 if pick[0] > 0 else pick[0] - 1)
    return values


def batch_equals_run(tmp_path, executor, program) -> None:
    run_db, batch_db = tmp_path / "run.db", tmp_path / "batch.db"
    for path in (run_db, batch_db):
        path.unlink(missing_ok=True)
    with Storage(run_db).run():
        expected = interpret(program)
    with Storage(batch_db).batch(executor=executor):
        got = interpret(program)
    assert got == expected and [type(v) for v in got] == [type(v) for v in expected]


@pytest.mark.parametrize("executor", [None, "threads"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=PROGRAMS)
def test_batch_results_equal_run_results(tmp_path, executor, program):
    batch_equals_run(tmp_path, executor, program)


#: What a block stores, without what differs from run to run (integer keys, timestamps,
#: durations): a batch must store exactly the rows a run block stores for the same calls.
_STORED_ROWS = {
    "calls": "SELECT hid, lkey, cid, version_id, deps_id, exact, outputs FROM calls",
    "inputs": "SELECT * FROM inputs",
    "outputs": "SELECT * FROM outputs",
    "vals": "SELECT cid, codec, data, size, external FROM vals",
    "dep_sets": "SELECT * FROM dep_sets",
    "defaults": "SELECT * FROM defaults",
}


def stored_rows(path) -> dict:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return {table: sorted(conn.execute(sql).fetchall()) for table, sql in _STORED_ROWS.items()}


def every_kind_of_call(n: int) -> list:
    """Calls along every recording path: plain, duplicated, several outputs, a structure out
    and in, a default, a transient output, a mutated argument, an op calling an op."""
    from batch_ops import appended, big, forgotten, outer, scaled, squares, total

    ys = [inc(x) for x in range(n)] + [inc(1), inc(1)]
    return [
        ys, [add(y, x) for x, y in enumerate(ys)], [pair(x) for x in range(3)], squares(4),
        total(squares(3)), [scaled(x) for x in range(3)], scaled(1, factor=4), forgotten(2),
        appended([1, 2]), [outer(x) for x in range(3)], [len(big(x)) for x in range(2)],
    ]


@pytest.mark.parametrize("executor", [None, "threads"])
@pytest.mark.parametrize("n", [3, 300])
def test_a_batch_stores_the_rows_a_run_block_stores(tmp_path, executor, n):
    with Storage(tmp_path / "run.db").run():
        expected = every_kind_of_call(n)
    with Storage(tmp_path / "batch.db").batch(executor=executor, progress=False):
        got = every_kind_of_call(n)
    assert str(got) == str(expected)
    assert stored_rows(tmp_path / "batch.db") == stored_rows(tmp_path / "run.db")


def test_a_compiled_batch_stores_the_rows_a_compiled_run_block_stores(tmp_path):
    ns = compiled(
        """
        from batch_ops import add, inc, pair
        from mandala_ast import Storage

        def block(path, form):
            with getattr(Storage(path), form)():
                ys = [inc(x) for x in range(50)]
                zs = [add(y, inc(y)) for y in ys]
                a, b = pair(zs[0])
                w = add(a, inc(b))
                same = add(1, inc(1))  # found by content under another history
            return w
        """
    )
    assert ns["block"](tmp_path / "run.db", "run") == ns["block"](tmp_path / "batch.db", "batch")
    assert stored_rows(tmp_path / "batch.db") == stored_rows(tmp_path / "run.db")


@pytest.mark.parametrize("executor", [None, "threads"])
def test_an_op_calling_an_op_in_a_batch_memoizes_both(tmp_path, executor):
    from batch_ops import outer

    storage = Storage(tmp_path / "s.db")
    with storage.batch(executor=executor):
        ys = [outer(x) for x in range(3)]
    assert ys == [10, 20, 30]
    RUNS.clear()
    with storage.run(allow_new_calls=False):
        assert [outer(x) for x in range(3)] == ys and [inc(x) for x in range(3)] == [1, 2, 3]
    assert RUNS == []


SHARED_DATASET = """
import resource, sys
import numpy as np
from batch_ops import first_item
from mandala_ast import Storage

data = np.arange(2_500_000, dtype=np.float64)  # 20 MB, given to every call
with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + (1200 << 20), resource.RLIM_INFINITY))
with Storage(sys.argv[1]).batch(progress=False):
    ys = [first_item(data, i) for i in range(150)]
print(sum(ys))
"""


def test_a_batch_of_calls_sharing_a_large_argument_does_not_run_out_of_memory(tmp_path):
    """Each call of a wave encoded its new argument values before any ran: 150 calls given
    one 20 MB array held 150 encodings of it (3 GB) at once, a MemoryError under 1.2 GB."""
    import subprocess

    (tmp_path / "run.py").write_text(SHARED_DATASET)
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)])}
    done = subprocess.run([sys.executable, "run.py", str(tmp_path / "s.db")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(sum(range(150)))]


@pytest.mark.parametrize("executor", [None, "threads", "processes"])
def test_a_batch_finds_calls_stored_before_ignore_named_an_argument_as_a_run_block_does(tmp_path, executor):
    with Storage(tmp_path / "s.db").run():
        assert [doubled(x, verbose=True) for x in range(3)] == [0, 2, 4]
    RUNS.clear()
    with Storage(tmp_path / "s.db").batch(executor=executor) as block:
        ys = [doubled_ignoring_verbose(x, verbose=True) for x in range(3)]
    assert ys == [0, 2, 4] and RUNS == []
    assert block.stats.found == 3 and block.stats.computed == 0
