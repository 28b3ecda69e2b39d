"""Batch blocks in several threads on one Storage: a call that one thread's batch computes, or
has queued, is not computed again by another thread's batch or run block; the waiting side
gets the stored result.

Bodies are counted in a side channel (a Counter under a lock; files, for bodies in worker
processes). The overlap is forced by events, never by sleeping: the owner's body holds until
the other side has looked the call up and missed (its wave runs ``opener`` first, whose body
opens the gate, after the wave's lookup), until the other side's thread is seen blocked
waiting for the call, or (a coroutine) until it has reached its first wait.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures as cf
import os
import sys
import threading
import time
import uuid

import pytest

from mandala_ast import Storage, op

RAN: collections.Counter = collections.Counter()
_RAN_LOCK = threading.Lock()
GATE = threading.Event()
STARTED = threading.Event()
#: A thread blocked longer than this is a hang: the test fails rather than waits for ever.
HANG = 60


def _ran(key) -> int:
    with _RAN_LOCK:
        RAN[key] += 1
        return RAN[key]


@op
def gated(x: int) -> int:
    """Holds inside its body until the test (or the other thread's ``opener``) opens GATE."""
    _ran(("gated", x))
    STARTED.set()
    assert GATE.wait(HANG), "the gate was never opened"
    return x + 100


@op
def gated_fails_first(x: int) -> int:
    """Its first run holds at the gate, then fails (a flaky service); later runs answer."""
    runs = _ran(("gated_fails_first", x))
    if runs == 1:
        STARTED.set()
        assert GATE.wait(HANG), "the gate was never opened"
        raise ConnectionError(f"try {x} again")
    return x + 100


@op
def opener(x: int) -> int:
    """Run by the waiting side after its wave looked the gated call up: opens the gate."""
    GATE.set()
    return x


FIRST_DONE = threading.Event()


@op
def opener_then_wait(x: int) -> int:
    """Opens the gate, then holds until the other thread's block has ended (its call stored)."""
    GATE.set()
    assert FIRST_DONE.wait(HANG), "the other thread's block never ended"
    return x


@op
def work(x: int) -> int:
    _ran(("work", x))
    return x * 3


@op
def outer(x: int) -> int:
    """An op whose body calls another op (``work``), from a batch's worker thread."""
    return work(x) + 1


@op
def fails_first(x: int) -> int:
    """Fails its first run (a flaky service), answers later ones."""
    if _ran(("fails_first", x)) == 1:
        raise ConnectionError(f"try {x} again")
    return x * 10


@op
def tolerant(x: int) -> int:
    """An op whose body calls ``fails_first`` and gets on without it when it fails."""
    try:
        return fails_first(x)
    except ConnectionError:
        return -1


@pytest.fixture(autouse=True)
def reset():
    RAN.clear()
    GATE.clear()
    STARTED.clear()
    FIRST_DONE.clear()
    yield
    GATE.set()  # never leave a thread stuck in a gated body


def in_thread(target) -> tuple[threading.Thread, list]:
    """``target()`` started in a thread of its own; its result or exception lands in the list."""
    outcome: list = []

    def guarded():
        try:
            outcome.append(target())
        except BaseException as exc:  # collected: a thread's error must fail the test
            outcome.append(exc)

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    return thread, outcome


def finished(thread: threading.Thread, outcome: list):
    thread.join(HANG)
    assert not thread.is_alive(), "the thread hung"
    return outcome[0]


def run_block_of(storage, fn):
    """``fn(7)`` in a run block."""
    def target():
        with storage.run():
            return fn(7)
    return target


def batch_of(storage, fn, executor, first=()):
    """``fn(7)`` in a batch block, after (in the same wave) the calls ``first``."""
    def target():
        with storage.batch(executor=executor, max_concurrency=2):
            ran_first = [f(0) for f in first]
            result = fn(7)
        return ran_first, result
    return target


def until_blocked(thread: threading.Thread) -> None:
    """Wait until ``thread`` sits in a Condition's wait (a run block waiting for a call), or
    has ended. Seen too early (another wait), the gate opens before the thread looks the
    call up: it finds the call stored, and the test is weaker, never wrong."""
    deadline = time.monotonic() + HANG
    while thread.is_alive() and time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident)
        while frame is not None:
            if frame.f_code.co_name == "wait" and "threading" in frame.f_code.co_filename:
                return
            frame = frame.f_back
        time.sleep(0.001)
    assert not thread.is_alive(), "the thread never waited"


@pytest.mark.parametrize(("executor", "single_flight"), [(None, False), ("threads", False), ("threads", True)])
def test_batches_in_two_threads_do_not_compute_the_same_call_twice(tmp_path, executor, single_flight):
    storage = Storage(tmp_path / "s.db", single_flight=single_flight)
    first = in_thread(batch_of(storage, gated, executor))
    assert STARTED.wait(HANG)
    # The second batch looks gated(7) up while the first one's body runs, then opens the gate.
    second = in_thread(batch_of(storage, gated, executor, first=(opener,)))
    assert finished(*first) == ([], 107)
    assert finished(*second) == ([0], 107)
    assert RAN[("gated", 7)] == 1
    assert not list(tmp_path.glob("s.db.locks/*"))


def test_a_batch_that_looked_a_call_up_while_another_thread_computed_it_loads_it(tmp_path):
    # The second batch misses gated(7) in its wave's lookup; by the time it comes to compute
    # it the first batch has stored it and let go of it: it is looked up again, not computed.
    storage = Storage(tmp_path / "s.db")
    first_batch = batch_of(storage, gated, None)

    def first_then_done():
        try:
            return first_batch()
        finally:
            FIRST_DONE.set()

    first = in_thread(first_then_done)
    assert STARTED.wait(HANG)
    second = in_thread(batch_of(storage, gated, None, first=(opener_then_wait,)))
    assert finished(*first) == ([], 107)
    assert finished(*second) == ([0], 107)
    assert RAN[("gated", 7)] == 1


def test_a_batch_body_calling_an_op_its_own_batch_ran_but_has_not_recorded_does_not_hang(tmp_path):
    # Without an executor, work(1)'s result waits to be recorded (with others) by the very
    # thread whose next body, outer(1), calls work(1): waiting for it would wait for itself.
    storage = Storage(tmp_path / "s.db")

    def target():
        with storage.batch():
            results = [work(1), outer(1)]
        return results

    assert finished(*in_thread(target)) == [3, 4]


def test_a_run_block_does_not_compute_a_call_another_threads_batch_computes(tmp_path):
    storage = Storage(tmp_path / "s.db")
    first = in_thread(batch_of(storage, gated, "threads"))
    assert STARTED.wait(HANG)

    second = in_thread(run_block_of(storage, gated))
    until_blocked(second[0])  # waiting for the batch's call, or (the bug) stuck in its own body
    GATE.set()
    assert finished(*first) == ([], 107)
    assert finished(*second) == 107
    assert RAN[("gated", 7)] == 1


def test_a_batch_does_not_compute_a_call_another_threads_run_block_computes(tmp_path):
    storage = Storage(tmp_path / "s.db")

    first = in_thread(run_block_of(storage, gated))
    assert STARTED.wait(HANG)
    second = in_thread(batch_of(storage, gated, "threads", first=(opener,)))
    assert finished(*first) == 107
    assert finished(*second) == ([0], 107)
    assert RAN[("gated", 7)] == 1


@pytest.mark.parametrize("executor", [None, "threads"])
def test_a_batch_waiting_for_another_threads_failing_call_computes_it_itself(tmp_path, executor):
    storage = Storage(tmp_path / "s.db")
    first = in_thread(batch_of(storage, gated_fails_first, executor))
    assert STARTED.wait(HANG)
    second = in_thread(batch_of(storage, gated_fails_first, executor, first=(opener,)))
    assert isinstance(finished(*first), ConnectionError)
    assert finished(*second) == ([0], 107)
    assert RAN[("gated_fails_first", 7)] == 2


def test_a_batch_whose_call_failed_lets_another_threads_batch_compute_it_while_its_block_goes_on(tmp_path):
    # The first batch's block catches the failure where it uses the value and goes on until
    # the second batch has finished: the failed call must not stay claimed till its block ends.
    storage = Storage(tmp_path / "s.db")
    second_done = threading.Event()

    def first_batch():
        with storage.batch(executor="threads"):
            y = gated_fails_first(7)
            try:
                y + 0
            except ConnectionError:
                pass
            assert second_done.wait(HANG), "the other thread's batch never finished"
        return "went on"

    first = in_thread(first_batch)
    assert STARTED.wait(HANG)
    second_batch = batch_of(storage, gated_fails_first, "threads", first=(opener,))

    def second_then_done():
        try:
            return second_batch()
        finally:
            second_done.set()

    second = in_thread(second_then_done)
    assert finished(*second) == ([0], 107)
    assert finished(*first) == "went on"
    assert RAN[("gated_fails_first", 7)] == 2


def test_a_run_block_waiting_for_another_threads_failing_batch_call_computes_it_itself(tmp_path):
    storage = Storage(tmp_path / "s.db")
    first = in_thread(batch_of(storage, gated_fails_first, "threads"))
    assert STARTED.wait(HANG)

    second = in_thread(run_block_of(storage, gated_fails_first))
    until_blocked(second[0])
    GATE.set()
    assert isinstance(finished(*first), ConnectionError)
    assert finished(*second) == 107
    assert RAN[("gated_fails_first", 7)] == 2


@pytest.mark.parametrize(("workers", "single_flight"), [(1, False), (2, False), (1, True)])
def test_a_batch_body_calling_an_op_its_batch_has_queued_computes_it_once(tmp_path, workers, single_flight):
    # outer(1)'s body calls work(1), which the same wave queued behind it: waiting for the
    # queued call would hold the pool's only thread for ever; the body computes it instead
    # (with single flight, under the lock file the batch took for it: no wait for itself).
    storage = Storage(tmp_path / "s.db", single_flight=single_flight)

    def target():
        with storage.batch(executor="threads", max_concurrency=workers):
            results = [outer(1), work(1)]
        return results

    assert finished(*in_thread(target)) == [4, 3]
    assert RAN[("work", 1)] == 1
    assert not list(tmp_path.glob("s.db.locks/*"))  # every lock let go of
    with Storage(tmp_path / "s.db").run(allow_new_calls=False):
        assert [outer(1), work(1)] == [4, 3]


#: Two bodies that each wait here can only both pass if they run at the same time.
BOTH = threading.Barrier(2, timeout=HANG)


@op
def meets(x: int) -> int:
    """Runs only alongside another call of it (each batch's own), then is counted."""
    BOTH.wait()
    _ran(("meets", x))
    return x * 10


def test_two_batches_each_waiting_for_a_call_the_other_computes_compute_each_once(tmp_path):
    # Each batch claims one call and runs it (the barrier proves both run at once) while the
    # other call of its wave is the other batch's: each waits for the other's, neither stuck.
    storage = Storage(tmp_path / "s.db")
    BOTH.reset()

    def batch(order):
        def target():
            with storage.batch():
                results = [meets(x) for x in order]
            return results
        return target

    first, second = in_thread(batch([1, 2])), in_thread(batch([2, 1]))
    assert finished(*first) == [10, 20]
    assert finished(*second) == [20, 10]
    assert RAN[("meets", 1)] == RAN[("meets", 2)] == 1


def test_a_batch_call_taken_over_by_a_body_that_failed_is_computed_by_the_batch(tmp_path):
    # tolerant(1)'s body takes over fails_first(1), queued behind it, and its run fails: the
    # batch, which waited for it, computes the call itself.
    storage = Storage(tmp_path / "s.db")

    def target():
        with storage.batch(executor="threads", max_concurrency=1):
            results = [tolerant(1), fails_first(1)]
        return results

    assert finished(*in_thread(target)) == [-1, 10]
    assert RAN[("fails_first", 1)] == 2


class OneThread(cf.Executor):
    """An executor of one thread of this process that is no ThreadPoolExecutor: a batch sends
    it calls as to a process pool (by name), like a Dask cluster of threads."""

    def __init__(self) -> None:
        self.pool = cf.ThreadPoolExecutor(1)

    def submit(self, fn, /, *args, **kwargs):
        return self.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.pool.shutdown(wait, cancel_futures=cancel_futures)


def test_a_body_on_an_executor_calling_an_op_its_batch_sent_there_too_does_not_hang(tmp_path):
    # work(1) waits behind outer(1) on the executor's only thread, whose body calls it: waiting
    # for the batch's call would wait for itself.
    storage = Storage(tmp_path / "s.db")
    executor = OneThread()

    def target():
        with storage.batch(executor=executor):
            results = [outer(1), work(1)]
        return results

    try:
        assert finished(*in_thread(target)) == [4, 3]
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def until_exists(path: str) -> None:
    """Wait for a file another process makes (the gate between processes)."""
    deadline = time.monotonic() + HANG
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


@op
def gated_in_a_process(x: int, folder: str) -> int:
    """Counted by a file of its own (it may run in a worker process); holds until ``gate``."""
    open(os.path.join(folder, f"ran-{uuid.uuid4().hex}"), "w").close()
    until_exists(os.path.join(folder, "gate"))
    return x + 100


@op
def opens_the_gate(x: int, folder: str) -> int:
    open(os.path.join(folder, "gate"), "w").close()
    return x


def test_batches_on_process_pools_in_two_threads_do_not_compute_the_same_call_twice(tmp_path):
    storage = Storage(tmp_path / "s.db")
    folder = str(tmp_path)

    def batch(first):
        def target():
            with storage.batch(executor="processes", max_concurrency=2):
                ran_first = [f(0, folder) for f in first]
                result = gated_in_a_process(7, folder)
            return ran_first, result
        return target

    first = in_thread(batch(()))
    deadline = time.monotonic() + HANG
    while not list(tmp_path.glob("ran-*")):  # its body runs in a worker: the call is claimed
        assert time.monotonic() < deadline, "the first batch's call never started"
        time.sleep(0.005)
    second = in_thread(batch((opens_the_gate,)))
    assert finished(*first) == ([], 107)
    assert finished(*second) == ([0], 107)
    assert len(list(tmp_path.glob("ran-*"))) == 1


@op
async def gated_async(x: int) -> int:
    """An async op held inside its body until GATE opens (its event loop runs on meanwhile)."""
    _ran(("gated_async", x))
    STARTED.set()
    assert await asyncio.to_thread(GATE.wait, HANG), "the gate was never opened"
    return x + 100


def test_batches_in_two_threads_do_not_compute_the_same_async_call_twice(tmp_path):
    storage = Storage(tmp_path / "s.db")
    first = in_thread(batch_of(storage, gated_async, None))
    assert STARTED.wait(HANG)
    second = in_thread(batch_of(storage, gated_async, None, first=(opener,)))
    assert finished(*first) == ([], 107)
    assert finished(*second) == ([0], 107)
    assert RAN[("gated_async", 7)] == 1


async def _open_gate() -> None:
    GATE.set()


def test_an_async_call_awaited_in_a_run_block_waits_for_another_threads_batch_computing_it(tmp_path):
    storage = Storage(tmp_path / "s.db")
    first = in_thread(batch_of(storage, gated_async, None))
    assert STARTED.wait(HANG)

    async def awaits_it():
        # The call's coroutine runs first, up to its first wait; only then is the gate opened.
        result, _ = await asyncio.gather(gated_async(7), _open_gate())
        return result

    def run_block():
        with storage.run():
            return asyncio.run(awaits_it())

    second = in_thread(run_block)
    assert finished(*first) == ([], 107)
    assert finished(*second) == 107
    assert RAN[("gated_async", 7)] == 1


def test_a_batch_waits_for_an_async_call_another_threads_run_block_awaits(tmp_path):
    storage = Storage(tmp_path / "s.db")

    def run_block():
        with storage.run():
            return asyncio.run(gated_async(7))

    first = in_thread(run_block)
    assert STARTED.wait(HANG)
    second = in_thread(batch_of(storage, gated_async, None, first=(opener,)))
    assert finished(*first) == 107
    assert finished(*second) == ([0], 107)
    assert RAN[("gated_async", 7)] == 1


@op
async def holds_async(x: int) -> int:
    """Holds the batch's only async slot until GATE opens."""
    assert await asyncio.to_thread(GATE.wait, HANG), "the gate was never opened"
    return x


@op
async def inner_async(x: int) -> int:
    _ran(("inner_async", x))
    return x * 3


@op
async def outer_async(x: int) -> int:
    return await inner_async(x) + 1


def test_an_async_body_awaiting_a_call_its_batch_has_queued_on_its_one_slot_does_not_hang(tmp_path):
    # Every call of the wave is claimed before opener's body opens the gate: then outer_async(1)
    # takes the only slot, and inner_async(1) waits for it behind outer, whose body awaits it.
    storage = Storage(tmp_path / "s.db")

    def target():
        with storage.batch(max_concurrency=1):
            results = [holds_async(0), outer_async(1), inner_async(1), opener(0)]
        return results

    assert finished(*in_thread(target)) == [0, 4, 3, 0]

