"""Batch blocks on worker processes: ops run by name, a killed worker names its call, Ctrl-C
keeps what was computed. Crashes and signals are real (kill -9, SIGINT to a subprocess)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from batch_ops import (
    Shapes,
    add,
    die_if,
    ends_with,
    fails_if,
    inc,
    pid,
    raises_unsendable_if,
    rendezvous,
    unloadable_if,
    unpicklable_if,
)
from hypothesis import HealthCheck, given, settings
from test_batch import PROGRAMS, batch_equals_run

from mandala_ast import BatchWorkerError, MandalaUnstoredWarning, NewCallError, Storage, op

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def test_processes_compute_in_other_processes_and_the_coordinator_stores(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.batch(executor="processes", max_concurrency=2) as b:
        ys = [add(inc(x), x) for x in range(6)]
        pids = [pid(x) for x in range(4)]
    assert ys == [2 * x + 1 for x in range(6)]
    assert os.getpid() not in pids and b.stats.computed == 16
    with storage.run(allow_new_calls=False):
        assert [add(inc(x), x) for x in range(6)] == ys


def test_static_and_class_method_ops_run_in_worker_processes(tmp_path):
    """A class method's op, looked up by name in a worker, came bound to its class: it could
    not be sent (BatchWorkerError), though it is importable by its name."""
    with Storage(tmp_path / "s.db").batch(executor="processes", max_concurrency=2):
        squares = [Shapes.square(x) for x in range(3)]
        perimeter = Shapes.perimeter(2)
    assert squares == [0, 1, 4] and perimeter == 8


def test_processes_run_independent_calls_at_the_same_time(tmp_path):
    # Each call waits until both have started: only two workers at once get past.
    (tmp_path / "meet").mkdir()
    with Storage(tmp_path / "s.db").batch(executor="processes", max_concurrency=2):
        ys = [rendezvous(x, str(tmp_path / "meet"), 2) for x in range(2)]
    assert ys == [0, 1]


def test_an_op_that_cannot_be_imported_by_name_is_a_clear_error(tmp_path):
    @op
    def local_op(x):
        return x

    with pytest.raises(BatchWorkerError, match="local_op.*not importable"):
        with Storage(tmp_path / "s.db").batch(executor="processes", max_concurrency=1):
            local_op(1)


def test_an_output_that_cannot_be_sent_back_from_a_worker_names_its_call(tmp_path):
    """It came out as a bare `TypeError: cannot pickle '_thread.lock' object`."""
    storage = Storage(tmp_path / "s.db")
    with pytest.raises(BatchWorkerError) as caught:
        with storage.batch(executor="processes", max_concurrency=1):
            ys = [unpicklable_if(x, 1) for x in range(2)]
    message = str(caught.value)
    assert "unpicklable_if(x=1, bad=1)" in message and "could not be sent back from the worker process" in message
    assert "cannot pickle" in message  # pickle's own reason
    with storage.run(allow_new_calls=False):
        assert unpicklable_if(0, 1) == 0  # the other call is stored
    del ys


@pytest.mark.parametrize(("kind", "said"), [("lock", "HoldsALock: lock trouble at 2"), ("two", "TwoArguments: 2 and b")],
                         ids=["cannot be pickled", "cannot be unpickled"])
@pytest.mark.parametrize("calls", [4, 300], ids=["few calls", "hundreds"])
def test_an_exception_a_worker_cannot_send_back_names_the_op_and_says_what_it_was(tmp_path, kind, said, calls):
    """A body's exception that does not pickle came out as a bare `TypeError: cannot pickle
    '_thread.lock' object`; one that pickles but does not unpickle broke the pool and was
    reported, after two retries, as a worker process that died."""
    from batch_ops import TwoArguments

    storage = Storage(tmp_path / "s.db")
    with pytest.raises((BatchWorkerError, TwoArguments)) as caught:
        with storage.batch(executor="processes", max_concurrency=2, progress=False):
            ys = [raises_unsendable_if(x, 2, kind) for x in range(calls)]
    message = str(caught.value)
    assert any("raises_unsendable_if(x=2" in note for note in caught.value.__notes__)
    if caught.type is BatchWorkerError:
        assert "op batch_ops.raises_unsendable_if raised" in message and said in message, message
        assert "cannot be sent back from the worker process" in message
    else:  # tblib's pickling (dask.distributed installs it when imported) brings it back whole
        assert kind == "two" and "tblib" in sys.modules
    with storage.run(allow_new_calls=False):
        assert raises_unsendable_if(3, 2, kind) == 30  # the other calls are stored
    del ys


def test_a_killed_worker_names_its_call_and_the_rest_are_stored(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with pytest.raises(BatchWorkerError, match=r"die_if\(x=3, bad=3\)"):
        with storage.batch(executor="processes", max_concurrency=2):
            ys = [die_if(x, 3) for x in range(6)]
    with storage.run(allow_new_calls=False):
        assert [die_if(x, 3) for x in (0, 1, 2, 4, 5)] == [0, 10, 20, 40, 50]
        with pytest.raises(NewCallError):
            die_if(3, 3)
    del ys


# Hundreds of fast calls: the pool gets them several per task, and each still ends on its own.

@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_one_failing_call_among_many_fast_ones_fails_alone(tmp_path, executor):
    storage = Storage(tmp_path / "s.db")
    with pytest.raises(ValueError, match="bad 150"):
        with storage.batch(executor=executor, max_concurrency=2) as b:
            ys = [fails_if(x, 150) for x in range(300)]
    assert b.stats.computed == 299 and b.stats.failed == 1
    with storage.run(allow_new_calls=False):
        assert [fails_if(x, 150) for x in range(300) if x != 150] == [x * 10 for x in range(300) if x != 150]
    del ys


@pytest.mark.parametrize("executor", [None, "threads"])
def test_an_output_that_cannot_be_stored_is_handed_back_with_a_warning_as_in_a_run_block(tmp_path, executor):
    """It used to fail the batch with mandala_ast's internal UnstoredOutputs exception; a run
    block hands such an output back unstored, with a MandalaUnstoredWarning naming it."""
    storage = Storage(tmp_path / "s.db")
    with pytest.warns(MandalaUnstoredWarning, match=r"unpicklable_if, output 0"):
        with storage.batch(executor=executor, max_concurrency=2) as b:
            ys = [unpicklable_if(x, 150) for x in range(300)]
    assert type(ys[150]) is type(threading.Lock()) and ys[:3] == [0, 10, 20]
    assert b.stats.failed == 0 and b.stats.computed == 299
    with storage.run(allow_new_calls=False):  # the others are stored
        assert [unpicklable_if(x, 150) for x in range(300) if x != 150] == [x * 10 for x in range(300) if x != 150]


@pytest.mark.parametrize(
    ("bad_op", "named"),
    [(die_if, r"die_if\(x=150, bad=150\)"), (unpicklable_if, r"unpicklable_if\(x=150.*could not be sent back"),
     (unloadable_if, r"unloadable_if\(x=150, bad=150\).*could not be loaded.*cannot rebuild 150")],
    ids=["killed worker", "output that cannot come back", "output whose pickle cannot be loaded"],
)
def test_one_bad_call_among_many_fast_ones_is_named_and_the_rest_are_stored(tmp_path, bad_op, named):
    storage = Storage(tmp_path / "s.db")
    with pytest.raises(BatchWorkerError, match=named):
        with storage.batch(executor="processes", max_concurrency=2):
            ys = [bad_op(x, 150) for x in range(300)]
    with storage.run(allow_new_calls=False):
        assert [bad_op(x, 150) for x in (0, 149, 151, 299)] == [0, 1490, 1510, 2990]
    del ys


def _wait_until(condition, child: subprocess.Popen, seconds: float = 60) -> None:
    """Until ``condition()`` holds or ``child`` exits; an interrupt the child never handles
    fails the test instead of hanging the suite."""
    deadline = time.monotonic() + seconds
    while not condition() and child.poll() is None:
        assert time.monotonic() < deadline, "the child never got there (an interrupt not handled?)"
        time.sleep(0.01)


def _child(script: str, **options) -> subprocess.Popen:
    """A Python process running ``script`` (dedented) with the tests' ops importable, its
    output read as text."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def test_sigint_cancels_pending_calls_and_keeps_completed_ones(tmp_path):
    db, stop, interrupted = tmp_path / "s.db", tmp_path / "stop", tmp_path / "interrupted"
    script = f"""
        from batch_ops import hold, inc
        from mandala_ast import Storage

        {INTERRUPTER}
        raise_interrupts_marking({str(interrupted)!r})
        start_interrupter({str(tmp_path)!r})
        with Storage({str(db)!r}).batch(executor="processes", max_concurrency=2):
            done = [inc(x) for x in range(5)]
            held = hold(sum(done), {str(stop)!r})   # starts once the five are recorded
            never = inc(held)                        # pending when Ctrl-C comes
    """
    child = _child(script)
    try:
        assert child.stdout.readline().strip() == "holding 15"
        (tmp_path / "ask-1").write_text("")  # Ctrl-C, to the main thread (see INTERRUPTER)
        # Only once the interrupt is raised: on a busy machine the call could else finish
        # first, and the block end without one (the test failed so, now and then).
        _wait_until(interrupted.exists, child)
        stop.write_text("")  # the running call may finish; it is not kept
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert "KeyboardInterrupt" in err and child.returncode != 0
    from batch_ops import hold

    with Storage(db).run(allow_new_calls=False):
        assert [inc(x) for x in range(5)] == [1, 2, 3, 4, 5]
        with pytest.raises(NewCallError):
            inc(16)
    del hold


#: In a child's script: SIGINT to its main thread each time the test writes ``ask-1``, then
#: ``ask-2``, in ``folder``. A signal sent to the process may be handed by the kernel to any of
#: its threads; handed to a pool thread, it leaves the main thread's wait uninterrupted (its
#: handler runs when that wait ends, which, here, never comes): the test hung.
INTERRUPTER = """
import os, signal, threading, time

def raise_interrupts_marking(path):
    def interrupt(signum, frame):  # notes each interrupt as it is raised, then raises it
        with open(path, "a") as file:
            file.write("x")
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)

def interrupter(folder):
    for n in (1, 2):
        while not os.path.exists(os.path.join(folder, f"ask-{n}")):
            time.sleep(0.01)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

def start_interrupter(folder):
    threading.Thread(target=interrupter, args=(folder,), daemon=True).start()
""".replace("\n", "\n        ")


def test_sigint_keeps_a_running_call_whose_result_arrives_before_the_block_exits(tmp_path):
    """Ctrl-C while a call runs on threads: the pool's shutdown waits for it, so its result
    arrives before the block exits, and it was dropped all the same (computed again next
    time). (A process pool's shutdown does not wait: the block exits at once.)"""
    executor = "threads"
    db, stop, interrupted = tmp_path / "s.db", tmp_path / "stop", tmp_path / "interrupted"
    script = f"""
        from batch_ops import hold, inc
        from mandala_ast import Storage

        {INTERRUPTER}
        raise_interrupts_marking({str(interrupted)!r})
        start_interrupter({str(tmp_path)!r})
        with Storage({str(db)!r}).batch(executor={executor!r}, max_concurrency=2, progress=False):
            held = hold(15, {str(stop)!r})
            never = inc(held)                        # pending when Ctrl-C comes
    """
    child = _child(script)
    try:
        assert child.stdout.readline().strip() == "holding 15"
        (tmp_path / "ask-1").write_text("")  # Ctrl-C
        _wait_until(interrupted.exists, child)
        stop.write_text("")  # the running call finishes while the pool shuts down
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert "KeyboardInterrupt" in err and child.returncode != 0
    from batch_ops import hold

    with Storage(db).run(allow_new_calls=False):
        assert hold(15, str(stop)) == 15
        with pytest.raises(NewCallError):
            inc(15)


def test_a_second_sigint_while_the_pool_shuts_down_still_closes_the_block(tmp_path):
    """Ctrl-C twice (the second while the thread pool waits for a running call): the second
    interrupted the block's exit half way, so the batch block stayed open (op calls after it,
    in a notebook's next cells, were deferred into it and never ran) and its calls were not
    committed."""
    db, stop, marks = tmp_path / "s.db", tmp_path / "stop", tmp_path / "interrupts"
    script = f"""
        from batch_ops import hold, inc
        from mandala_ast import Storage

        {INTERRUPTER}
        raise_interrupts_marking({str(marks)!r})
        start_interrupter({str(tmp_path)!r})
        try:
            with Storage({str(db)!r}).batch(executor="threads", max_concurrency=2, progress=False):
                done = [inc(x) for x in range(5)]
                held = hold(sum(done), {str(stop)!r})
        except KeyboardInterrupt:
            pass
        print(type(inc(1)).__name__, flush=True)
    """
    child = _child(script)
    try:
        assert child.stdout.readline().strip() == "holding 15"
        for count in (1, 2):
            (tmp_path / f"ask-{count}").write_text("")  # Ctrl-C
            _wait_until(lambda count=count: marks.exists() and len(marks.read_text()) >= count, child)
            time.sleep(0.3)  # (makes it likelier that the second one comes while the pool waits)
        stop.write_text("")
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert out.split() == ["int"], err
    with Storage(db).run(allow_new_calls=False):
        assert [inc(x) for x in range(5)] == [1, 2, 3, 4, 5]



def test_ctrl_c_received_by_another_thread_stops_a_threads_batch_waiting_on_a_long_call(tmp_path):
    """A terminal's Ctrl-C goes to the process, and the kernel may hand it to any thread: one
    not the main thread only marks it for the main thread, which runs Python's handler when it
    next runs Python code. A batch waiting for its calls without a timeout ran none until a
    call finished: Ctrl-C was not seen while a call of hours ran (and the calls queued behind
    it were not cancelled). Here the main thread blocks SIGINT, so the signal lands on the
    helper thread every time."""
    stop, marks = tmp_path / "stop", tmp_path / "interrupts"
    script = f"""
        import os, signal, threading, time
        from batch_ops import hold
        from mandala_ast import Storage

        {INTERRUPTER}
        raise_interrupts_marking({str(marks)!r})

        def interrupt_later():
            while not os.path.exists({str(tmp_path / "ask")!r}):
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGINT)  # to the process: only this thread takes it

        threading.Thread(target=interrupt_later, daemon=True).start()
        signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGINT}})  # the pool's threads inherit it
        try:
            with Storage({str(tmp_path / "s.db")!r}).batch(executor="threads", progress=False):
                held = hold(1, {str(stop)!r})
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """
    child = _child(script)
    try:
        assert child.stdout.readline().strip() == "holding 1"
        (tmp_path / "ask").write_text("")  # Ctrl-C
        deadline = time.monotonic() + 10
        while not marks.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen_while_the_call_ran = marks.exists()
        stop.write_text("")
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert seen_while_the_call_ran, err
    assert out.split() == ["interrupted"], err


def test_ctrl_c_on_threads_keeps_the_running_calls_lock_so_other_processes_do_not_compute_it_again(tmp_path):
    """Ctrl-C with single flight: a call running on a thread is kept (the pool's shutdown
    waits for it), but its lock was let go at once, so another process that missed the call
    took the lock and computed it a second time while it still ran here."""
    from mandala_ast.runtime.batch.single_flight import SingleFlight

    db, stop, interrupted = tmp_path / "s.db", tmp_path / "stop", tmp_path / "interrupted"
    script = f"""
        from batch_ops import hold
        from mandala_ast import Storage

        {INTERRUPTER}
        raise_interrupts_marking({str(interrupted)!r})
        start_interrupter({str(tmp_path)!r})
        with Storage({str(db)!r}, single_flight=True).batch(executor="threads", progress=False):
            held = hold(15, {str(stop)!r})
    """
    child = _child(script)
    try:
        assert child.stdout.readline().strip() == "holding 15"
        (tmp_path / "ask-1").write_text("")  # Ctrl-C
        _wait_until(interrupted.exists, child)
        time.sleep(0.3)  # (the interrupt reaches the block's exit: the lock was let go there)
        locks = SingleFlight(Path(f"{db}.locks"))
        held_now = [name for name in os.listdir(locks.folder)] if locks.folder.exists() else []
        taken_here = [name for name in held_now if locks.acquire(bytes.fromhex(name))]
        stop.write_text("")  # the running call finishes while the pool shuts down
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert "KeyboardInterrupt" in err and child.returncode != 0
    assert len(held_now) == 1 and taken_here == [], "another process could take the running call's lock"
    from batch_ops import hold

    with Storage(db).run(allow_new_calls=False):  # kept, committed: another process loads it
        assert hold(15, str(stop)) == 15
    assert not os.listdir(locks.folder)


def test_ctrl_c_on_threads_with_a_call_queued_behind_a_running_one_does_not_hang_the_block(tmp_path):
    """Ctrl-C cancels a call the pool had queued (its task not started): the pool dropped the
    task, so the call's future, cancelled but never told so by a worker, was waited for
    forever once the running call finished (the block never exited)."""
    db, stop, interrupted = tmp_path / "s.db", tmp_path / "stop", tmp_path / "interrupted"
    script = f"""
        from batch_ops import hold, inc
        from mandala_ast import Storage

        {INTERRUPTER}
        raise_interrupts_marking({str(interrupted)!r})
        start_interrupter({str(tmp_path)!r})
        try:
            with Storage({str(db)!r}).batch(executor="threads", max_concurrency=1, progress=False):
                held = hold(1, {str(stop)!r})
                queued = inc(5)                    # in the pool's queue when Ctrl-C comes
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """
    child = _child(script)
    try:
        assert child.stdout.readline().strip() == "holding 1"
        (tmp_path / "ask-1").write_text("")  # Ctrl-C
        _wait_until(interrupted.exists, child)
        stop.write_text("")  # the running call finishes: the block exits
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert out.split() == ["interrupted"], err
    from batch_ops import hold

    with Storage(db).run(allow_new_calls=False):
        assert hold(1, str(stop)) == 1  # the running call, kept
        with pytest.raises(NewCallError):
            inc(5)


@pytest.mark.parametrize("executor", ["threads", None])
def test_an_op_body_raising_generator_exit_fails_its_call_naming_it_and_the_others_are_stored(tmp_path, executor):
    """A body's GeneratorExit (a BaseException, not an Exception) came out of the block bare,
    naming no call, and the calls run in the same task before it were dropped (on threads,
    where now and then the block never ended; in this process, the calls after it never ran)."""
    storage = Storage(tmp_path / "s.db")
    with pytest.raises(BatchWorkerError, match=r"ends_with\(.*x=2.*GeneratorExit") as raised:
        with storage.batch(executor=executor, max_concurrency=2, progress=False):
            ys = [ends_with(x, 2, "generator") for x in range(8)]
    assert isinstance(raised.value.__cause__, GeneratorExit)
    with storage.run(allow_new_calls=False):
        assert [ends_with(x, 2, "generator") for x in range(8) if x != 2] == [0, 10, 30, 40, 50, 60, 70]
    del ys


@pytest.mark.parametrize("kind", ["exit", "interrupt"])
def test_system_exit_or_keyboard_interrupt_raised_by_an_op_body_on_a_thread_ends_the_block_keeping_the_calls_before(
        tmp_path, kind):
    """As in a run block, the body's SystemExit or KeyboardInterrupt ends the block; the
    calls computed before it (in its own task too) were dropped, and now and then the block
    never ended."""
    storage = Storage(tmp_path / "s.db")
    with pytest.raises(SystemExit if kind == "exit" else KeyboardInterrupt):
        with storage.batch(executor="threads", max_concurrency=1, progress=False):
            ys = [ends_with(x, 3, kind) for x in range(6)]
    with storage.run(allow_new_calls=False):  # one thread: these ran before the call that ended it
        assert [ends_with(x, 3, kind) for x in range(3)] == [0, 10, 20]
        with pytest.raises(NewCallError):
            ends_with(3, 3, kind)
    del ys


@pytest.mark.parametrize("kind", ["exit", "generator"])
def test_another_process_finds_no_lock_left_by_a_call_whose_body_raised_system_exit_or_generator_exit(tmp_path, kind):
    """With single flight, the lock of a call whose body raised a BaseException that is not
    an Exception was never let go: the process went on (it caught the exception) and its
    heartbeat kept the lock fresh, so another process missing the call waited 10 minutes."""
    from mandala_ast.runtime.batch.single_flight import SingleFlight

    db, done = tmp_path / "s.db", tmp_path / "done"
    script = f"""
        import os, time
        from batch_ops import ends_with
        from mandala_ast import Storage

        try:
            # One thread: the calls after the third share its task (SystemExit: they never run).
            with Storage({str(db)!r}, single_flight=True).batch(executor="threads", max_concurrency=1,
                                                               progress=False):
                ys = [ends_with(x, 3, {kind!r}) for x in range(6)]
        except BaseException as exc:
            print("caught", type(exc).__name__, flush=True)
        while not os.path.exists({str(done)!r}):   # alive, as a notebook's kernel would be
            time.sleep(0.02)
    """
    child = _child(script)
    try:
        assert child.stdout.readline().split()[0] == "caught"
        locks = SingleFlight(Path(f"{db}.locks"))
        held_now = os.listdir(locks.folder) if locks.folder.exists() else []
        taken_here = [name for name in held_now if locks.acquire(bytes.fromhex(name))]
        done.write_text("")
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert held_now == taken_here == [], f"the holder, alive, still holds {held_now}: {err}"


class _InterruptedAsItSubmits(ThreadPoolExecutor):
    """Ctrl-C lands just as a call is handed to the pool: after the pool took it, before the
    batch noted it running (the window a real Ctrl-C hits now and then). Raised here, where
    the signal's handler would raise it: a real SIGINT sent from here is handled at the next
    check of the interpreter, which may fall a few instructions later (CI saw it land after
    the window once)."""

    def submit(self, *args, **kwargs):
        super().submit(*args, **kwargs)
        raise KeyboardInterrupt


def test_ctrl_c_as_calls_are_handed_to_the_pool_leaves_none_of_their_locks_behind(tmp_path):
    """The calls of a chunk were taken from the queue, then handed to the pool; Ctrl-C in
    between left them neither queued nor running: their single-flight locks were never let
    go (the heartbeat kept them fresh: running them again waited 10 minutes for this very
    process), and the calls stayed marked running."""
    db = tmp_path / "s.db"
    pool = _InterruptedAsItSubmits(max_workers=2)
    with pytest.raises(KeyboardInterrupt):
        with Storage(db, single_flight=True).batch(executor=pool, progress=False):
            for x in range(3):
                inc(x)
    pool.shutdown(wait=True)
    assert not list(Path(f"{db}.locks").glob("*"))

def test_ctrl_c_as_calls_are_handed_to_the_pool_stores_or_cancels_each_never_computes_and_drops_it(tmp_path):
    """The pool took the calls, then Ctrl-C came before it gave back their future: they ran,
    and their results were dropped (computed, never stored)."""
    import batch_ops

    db = tmp_path / "s.db"
    pool = _InterruptedAsItSubmits(max_workers=2)
    batch_ops.RUNS.clear()
    with pytest.raises(KeyboardInterrupt):
        with Storage(db).batch(executor=pool, progress=False):
            for x in range(3):
                inc(x)
    pool.shutdown(wait=True)
    computed = sorted(x for name, x in batch_ops.RUNS if name == "inc")
    with Storage(db).run(allow_new_calls=False):
        stored = [x for x in range(3) if _stored(inc, x)]
    assert computed == stored


def test_ctrl_c_as_a_process_pool_takes_a_call_stores_the_result_its_worker_computed(tmp_path):
    """A process pool's submit forks its workers on the first call: a Ctrl-C in it, after the
    pool had queued the task and before it gave back its future, left the call computed by a
    worker and its result dropped (never stored: computed again by the next run). Here the
    pool's submit waits, once the task is queued, for the test's SIGINT (to the coordinator
    alone, as a notebook's kernel interrupt) and the worker's body to have run."""
    db, ran, go = tmp_path / "s.db", tmp_path / "ran", tmp_path / "go"
    ran.mkdir()
    script = f"""
        import concurrent.futures as cf, os, time
        from batch_ops import rendezvous
        from mandala_ast import Storage

        queued = cf.ProcessPoolExecutor.submit

        def submit(self, *args, **kwargs):
            future = queued(self, *args, **kwargs)
            print("queued", flush=True)
            while not os.path.exists({str(go)!r}):  # the SIGINT lands here
                time.sleep(0.01)
            return future

        cf.ProcessPoolExecutor.submit = submit
        try:
            with Storage({str(db)!r}).batch(executor="processes", max_concurrency=1, progress=False):
                y = rendezvous(1, {str(ran)!r}, 1)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """
    out, err = _interrupted_once_the_body_ran(_child(script), "queued", ran, go, timeout=60)
    assert out.split() == ["interrupted"], err
    with Storage(db).run(allow_new_calls=False):
        assert _stored(rendezvous, 1, str(ran), 1), "computed by the worker, and not stored"


def test_ctrl_c_as_a_fresh_pool_takes_a_call_again_after_a_worker_died_stores_its_result(tmp_path):
    """A worker died: the batch starts a fresh pool and hands it the call again, alone. A
    Ctrl-C as that pool took it left the call to run with nobody holding its future: its
    result was dropped. Here the fresh pool's submit waits, once the task is queued, for
    the test's SIGINT and the call to have answered."""
    db, folder, go = tmp_path / "s.db", tmp_path / "marks", tmp_path / "go"
    folder.mkdir()
    script = f"""
        import concurrent.futures as cf, os, time
        from batch_ops import dies_once
        from mandala_ast import Storage

        queued, calls = cf.ProcessPoolExecutor.submit, []

        def submit(self, *args, **kwargs):
            future = queued(self, *args, **kwargs)
            calls.append(future)
            if len(calls) == 2:  # the call again, after its worker died
                print("queued again", flush=True)
                while not os.path.exists({str(go)!r}):  # the SIGINT lands here
                    time.sleep(0.01)
            return future

        cf.ProcessPoolExecutor.submit = submit
        try:
            with Storage({str(db)!r}).batch(executor="processes", max_concurrency=1, progress=False):
                y = dies_once(1, {str(folder)!r})
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """
    child = _child(script)
    try:
        assert child.stdout.readline().strip() == "queued again"
        _wait_until(lambda: (folder / "answered-1").exists(), child)
        child.send_signal(signal.SIGINT)
        time.sleep(0.3)  # (the interrupt is handled before submit returns)
        go.write_text("")
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert out.split() == ["interrupted"], err
    from batch_ops import dies_once

    with Storage(db).run(allow_new_calls=False):
        assert _stored(dies_once, 1, str(folder)), "computed by the fresh pool's worker, and not stored"


def test_ctrl_c_as_a_dask_client_takes_a_call_stores_the_result_its_worker_computed(tmp_path):
    """A Dask client's submit sends the task to the cluster before it gives back its future:
    a Ctrl-C in between left the call computed on the cluster with nobody holding its future
    (its result dropped, never stored). Here the client's submit waits, once the task is
    sent, for the test's SIGINT and the call to have answered (on a real LocalCluster)."""
    pytest.importorskip("distributed")
    db, ran, go = tmp_path / "s.db", tmp_path / "ran", tmp_path / "go"
    ran.mkdir()
    script = f"""
        import os, time
        import distributed
        from batch_ops import rendezvous
        from mandala_ast import Storage

        sent = distributed.Client.submit

        def submit(self, *args, **kwargs):
            future = sent(self, *args, **kwargs)
            print("sent", flush=True)
            while not (os.path.exists({str(go)!r}) and future.done()):  # the SIGINT lands here
                time.sleep(0.01)
            return future

        distributed.Client.submit = submit
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                           dashboard_address=None)
        with cluster, distributed.Client(cluster) as client:
            try:
                with Storage({str(db)!r}).batch(executor=client, progress=False):
                    y = rendezvous(1, {str(ran)!r}, 1)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
    """
    out, err = _interrupted_once_the_body_ran(_child(script), "sent", ran, go, timeout=120)
    assert out.split() == ["interrupted"], err
    with Storage(db).run(allow_new_calls=False):
        assert _stored(rendezvous, 1, str(ran), 1), "computed on the cluster, and not stored"


def test_ctrl_c_as_a_dask_call_is_chained_to_one_that_finished_cancels_it_on_the_cluster(tmp_path):
    """A call chained on the cluster to an input that has finished runs there at once (its
    task sent before the block looks it up): a Ctrl-C as that task was being sent left it
    running on the cluster, wanted by nobody the batch knew of, after the block ended."""
    states = _states_after_ctrl_c_on_dask(tmp_path, "a = inc(1)", interrupted_submit=2, answered=False)
    assert not {"processing", "waiting", "queued"} & set(states), states


def test_ctrl_c_before_a_dask_call_chained_to_a_finished_one_is_looked_up_cancels_it_on_the_cluster(tmp_path):
    """The chained task of a call whose input had finished (its result not yet handled) was
    never cancelled by Ctrl-C: it went on running on the cluster after the block ended."""
    states = _states_after_ctrl_c_on_dask(tmp_path, "a = inc(1)\nother = inc(100)", interrupted_submit=3,
                                          answered=True)
    assert not {"processing", "waiting", "queued"} & set(states), states
    with Storage(tmp_path / "s.db").run(allow_new_calls=False):
        assert inc(1) == 2 and inc(100) == 101  # finished before the block ended: kept


def test_ctrl_c_as_a_dask_client_sends_a_call_still_running_cancels_it_on_the_cluster(tmp_path):
    """A call whose task was sent as Ctrl-C came, and still runs: its mirror, cancelled as a
    call that never started, left the task running on the cluster, wanted by nobody, after
    the block ended."""
    states = _states_after_ctrl_c_on_dask(tmp_path, "a = 2", interrupted_submit=1, answered=False)
    assert not {"processing", "waiting", "queued"} & set(states), states


def _states_after_ctrl_c_on_dask(tmp_path, calls: str, interrupted_submit: int, answered: bool) -> list[str]:
    """Run ``calls`` then ``held = hold(a, ...)`` (chained to ``a`` on a real LocalCluster) in
    a child; once the chained call runs on the cluster, Ctrl-C lands in the
    ``interrupted_submit``-th task sent (the client's submit waits there for it, and, if
    ``answered``, for that task to finish). Returns the states of the tasks the cluster's
    scheduler holds after the block ended."""
    pytest.importorskip("distributed")
    db, stop, go = tmp_path / "s.db", tmp_path / "stop", tmp_path / "go"
    script = f"""
        import os, time
        import distributed
        from batch_ops import hold, inc
        from mandala_ast import Storage

        sent, count = distributed.Client.submit, [0]

        def submit(self, *args, **kwargs):
            future = sent(self, *args, **kwargs)
            count[0] += 1
            if count[0] == {interrupted_submit}:
                print("sent", flush=True)
                while not (os.path.exists({str(go)!r}) and (future.done() or not {answered})):  # the SIGINT lands here
                    time.sleep(0.01)
            return future

        def states(dask_scheduler):
            return sorted(task.state for task in dask_scheduler.tasks.values())

        distributed.Client.submit = submit
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                           dashboard_address=None)
        with cluster, distributed.Client(cluster) as client:
            try:
                with Storage({str(db)!r}).batch(executor=client, progress=False):
                    {textwrap.indent(calls, "                    ").strip()}
                    held = hold(a, {str(stop)!r})  # chained to a: runs on the cluster once a is done
            except KeyboardInterrupt:
                # The client sends cancellations without waiting for them; a task sent after
                # them is handled after them (one stream): its result says they were handled.
                client.submit(sum, [1, 2]).result()
                print("interrupted", *client.run_on_scheduler(states), flush=True)
            open({str(stop)!r}, "w").close()
    """
    child = _child(script)
    try:
        seen = ""  # (two threads print them: their lines may interleave)
        while not ("sent" in seen and "holding 2" in seen):
            line = child.stdout.readline()
            assert line, f"the child ended early, having printed {seen!r}"
            seen += line
        child.send_signal(signal.SIGINT)
        time.sleep(0.3)  # (the interrupt is handled before submit returns)
        go.write_text("")
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    words = out.split()
    assert words[:1] == ["interrupted"], err
    return words[1:]


def test_a_terminals_ctrl_c_still_stops_the_bodies_of_workers_forked_as_the_pool_took_a_call(tmp_path):
    """The pool forks its workers in its first submit, while the batch holds Ctrl-C back: a
    worker forked then must not inherit the handler that holds it back, or a terminal's
    Ctrl-C (to every process of the group) would leave its body running, and the block
    waiting for it, for as long as the call takes."""
    stop = tmp_path / "stop"
    script = f"""
        from batch_ops import hold
        from mandala_ast import Storage

        try:
            with Storage({str(tmp_path / "s.db")!r}).batch(executor="processes", max_concurrency=1, progress=False):
                held = hold(1, {str(stop)!r})
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """
    child = _child(script, start_new_session=True)
    try:
        assert child.stdout.readline().strip() == "holding 1"
        os.killpg(child.pid, signal.SIGINT)  # as a terminal sends it
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the worker's body went on after Ctrl-C, and the block waited for it")
    finally:
        stop.write_text("")
        child.kill()
    assert out.split() == ["interrupted"], err


def _stored(fn, *args) -> bool:
    try:
        fn(*args)
    except NewCallError:
        return False
    return True


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=PROGRAMS)
def test_batch_results_equal_run_results_on_processes(tmp_path, program):
    batch_equals_run(tmp_path, "processes", program)


def test_an_op_calling_an_op_on_processes_does_not_hang(tmp_path):
    # A worker forked while the batch was open inherited it as its open block: the inner call
    # was deferred into that copy, whose scheduler waited on the parent's pool lock forever.
    db = tmp_path / "s.db"
    script = f"""
        from batch_ops import inc, outer
        from mandala_ast import Storage

        storage = Storage({str(db)!r})
        with storage.batch(executor="processes", max_concurrency=2, progress=False):
            ys = [outer(x) for x in range(3)]
        print(ys)
    """
    child = _child(script, start_new_session=True)
    try:
        out, err = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # the hung workers too
        child.communicate()
        pytest.fail("the batch hung")
    assert child.returncode == 0, err
    assert out.split() == ["[10,", "20,", "30]"]
    from batch_ops import outer

    with Storage(db).run(allow_new_calls=False):
        assert [outer(x) for x in range(3)] == [10, 20, 30]


SPAWNED_AFTER_AN_EDIT = """
import multiprocessing, sys
from mandala_ast import BatchWorkerError, Storage, op
import helper_sp

@op
def scaled(x):
    return helper_sp.scale(x) + 1

if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    with open(helper_sp.__file__, "w") as file:  # edited on disk after this process imported it
        file.write("def scale(x):\\n    return 100 * x\\n")
    storage = Storage(sys.argv[1])
    try:
        with storage.batch(executor="processes", progress=False):
            ys = [scaled(x) for x in (1, 2)]
        print("batch", ys)
    except Exception as exc:  # one BatchWorkerError a call, in an ExceptionGroup
        errors = getattr(exc, "exceptions", [exc])
        print("batch refused" if all(isinstance(e, BatchWorkerError) for e in errors) else repr(exc))
    with storage.run():
        print("run", [scaled(x) for x in (1, 2)])
"""


def test_spawned_workers_importing_a_helper_edited_since_do_not_store_its_results(tmp_path):
    # Spawned (macOS; forkserver is Linux's default from 3.14) workers import the helper from
    # its file, edited since this process imported it: their results were stored under this
    # process's code, and the run block after served them.
    (tmp_path / "helper_sp.py").write_text("def scale(x):\n    return 10 * x\n")
    (tmp_path / "main.py").write_text(SPAWNED_AFTER_AN_EDIT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parent.parent)])}
    done = subprocess.run([sys.executable, "main.py", str(tmp_path / "s.db")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["batch refused", "run [11, 21]"]


def _children(parent: int) -> list[int]:
    """Pids of the live processes whose parent is ``parent`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc")
def test_worker_processes_do_not_outlive_a_batch_killed_with_kill_9(tmp_path):
    """A job killed mid-batch (kill -9, an out-of-memory kill, a cluster's time limit): its
    pool's workers, each holding a copy of its memory, waited forever for work that would
    never come (each holds the end of the work queue the others read)."""
    stop = tmp_path / "stop"
    child = _child(f"""
        from batch_ops import hold
        from mandala_ast import Storage
        with Storage({str(tmp_path / "s.db")!r}).batch(executor="processes", max_concurrency=2):
            held = [hold(x, {str(stop)!r}) for x in (1, 2)]
    """)
    workers: list[int] = []
    try:
        said = ""  # (the two workers' lines may interleave)
        while not ("holding 1" in said and "holding 2" in said) and child.poll() is None:
            said += child.stdout.readline()
        assert child.poll() is None, child.communicate()
        workers = _children(child.pid)
        assert len(workers) >= 2
        child.kill()
        child.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if _alive(w)]
    finally:
        stop.write_text("")
        child.kill()
        for worker in workers:  # only where the test failed
            if _alive(worker):
                os.kill(worker, signal.SIGKILL)
        child.communicate()


FUNCTION_ARGUMENT = """
import sys
from mandala_ast import Storage, op
import transforms_fa

@op
def apply(fn, x):
    return fn(x)

if __name__ == "__main__":
    storage = Storage(sys.argv[1])
    with storage.batch(executor=sys.argv[2], progress=False):
        y = apply(transforms_fa.transform, 1)
    print(y)
"""


@pytest.mark.parametrize("first", ["processes", "threads"])
def test_a_function_passed_to_an_op_on_processes_is_recomputed_when_its_code_changes(tmp_path, first):
    # Workers in other processes are not traced: a call's dependencies were its op's static
    # ones, which name no function given as an argument. After the function (or a helper it
    # calls) was edited, processes and then threads and run blocks served the stale result.
    helper = tmp_path / "transforms_fa.py"
    (tmp_path / "main.py").write_text(FUNCTION_ARGUMENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parent.parent)])}

    def run(executor: str) -> str:
        done = subprocess.run([sys.executable, "main.py", str(tmp_path / "s.db"), executor], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    helper.write_text("def transform(x):\n    return step(x) + 1\n\ndef step(x):\n    return x\n")
    assert run(first) == "2"
    helper.write_text("def transform(x):\n    return step(x) + 500\n\ndef step(x):\n    return x\n")
    assert run("processes") == "501"
    helper.write_text("def transform(x):\n    return step(x) + 500\n\ndef step(x):\n    return 10 * x\n")
    assert run("processes") == "510"
    assert run("threads") == "510"


def _other_apply(self, x):
    return self.factor * x + 1000


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_model_passed_to_an_op_on_processes_makes_its_call_depend_on_the_methods_it_ran(tmp_path, monkeypatch, start):
    # A worker process ran the body untraced, so the call depended on its op's static
    # dependencies only, which name no method of a model given as an argument: after the
    # model's class changed, the stored result was served (on processes, then everywhere).
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from batch_ops import Scaler, evaluate_model

    storage = Storage(tmp_path / "s.db")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(start)) as pool:
        with storage.batch(executor=pool, progress=False):
            y = evaluate_model(Scaler(3), 2)
    assert y == 7
    with storage.run(allow_new_calls=False):  # what the worker recorded resolves here: a hit
        assert evaluate_model(Scaler(3), 2) == 7
    monkeypatch.setattr(Scaler, "apply", _other_apply)
    with storage.run(allow_new_calls=False), pytest.raises(NewCallError, match="evaluate_model"):
        evaluate_model(Scaler(3), 2)


SPAWNED_MAIN_MODEL = """
import multiprocessing, sys
from mandala_ast import Storage, op

class Model:
    def apply(self, x):
        return x + 1

@op
def evaluate(model, x):
    return model.apply(x)

if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    with Storage(sys.argv[1]).batch(executor="processes", progress=False) as b:
        y = evaluate(Model(), 1)
    print(y, b.stats.dispatched)
"""


def test_a_script_run_twice_on_spawned_workers_hits_the_second_time(tmp_path):
    # A spawned worker imports the script as __mp_main__: the methods it traced must be
    # recorded under the script's name here, __main__, or they never resolve, and the
    # script's calls were computed again at every run.
    (tmp_path / "main.py").write_text(SPAWNED_MAIN_MODEL)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

    def run() -> str:
        done = subprocess.run([sys.executable, "main.py", str(tmp_path / "s.db")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    assert run() == "2 1"
    assert run() == "2 0"


def test_ctrl_c_as_a_dask_call_that_already_finished_is_sent_keeps_it_and_raises_keyboard_interrupt():
    """A Ctrl-C held back while the client sent a call whose task had finished by then (its
    mirror settled at once): marking the mirror running raised "Future in unexpected state:
    FINISHED" in place of the KeyboardInterrupt, and the block never ended."""
    from mandala_ast.runtime.batch.executors import DaskBackend

    class Finished:  # a Dask future whose task is done: callbacks run at once
        status = "finished"

        def result(self):
            return "value"

        def done(self):
            return True

        def add_done_callback(self, callback):
            callback(self)

    class Client:
        def submit(self, *args, **kwargs):
            signal.raise_signal(signal.SIGINT)  # Ctrl-C as the client sends the call
            return Finished()

    backend = DaskBackend(Client())
    with pytest.raises(KeyboardInterrupt):
        backend.submit(inc, (1,), {})
    kept = backend.cut_short()
    assert kept is not None and kept.result() == "value"


def _interrupted_once_the_body_ran(child, marker: str, ran: Path, go: Path, timeout: float) -> tuple[str, str]:
    """Once ``child`` printed ``marker`` (its submit now waits for ``go``) and the body ran
    (a file in ``ran``), Ctrl-C it there, let the submit return, and give back its output."""
    try:
        assert child.stdout.readline().strip() == marker
        _wait_until(lambda: os.listdir(ran), child)  # the worker ran the body
        child.send_signal(signal.SIGINT)
        time.sleep(0.3)  # (the interrupt is handled before submit returns)
        go.write_text("")
        return child.communicate(timeout=timeout)
    finally:
        child.kill()
