"""Batch blocks in several threads on one Storage: a call that one thread's batch computes, or
has queued, is not computed again by another thread's batch or run block; the waiting side
gets the stored result.

Bodies are counted in a side channel (a Counter under a lock). The overlap is forced by
events, never by sleeping: the owner's body holds until the other side has looked the call
up and missed (its wave runs ``opener`` first, whose body opens the gate, after the wave's
lookup), or until the other side's thread is seen blocked waiting for the call.
"""

from __future__ import annotations

import collections
import sys
import threading
import time

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


@op
def work(x: int) -> int:
    _ran(("work", x))
    return x * 3


@op
def outer(x: int) -> int:
    """An op whose body calls another op (``work``), from a batch's worker thread."""
    return work(x) + 1


@pytest.fixture(autouse=True)
def reset():
    RAN.clear()
    GATE.clear()
    STARTED.clear()
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


@pytest.mark.parametrize("executor", [None, "threads"])
def test_batches_in_two_threads_do_not_compute_the_same_call_twice(tmp_path, executor):
    storage = Storage(tmp_path / "s.db")
    first = in_thread(batch_of(storage, gated, executor))
    assert STARTED.wait(HANG)
    # The second batch looks gated(7) up while the first one's body runs, then opens the gate.
    second = in_thread(batch_of(storage, gated, executor, first=(opener,)))
    assert finished(*first) == ([], 107)
    assert finished(*second) == ([0], 107)
    assert RAN[("gated", 7)] == 1


def test_a_run_block_does_not_compute_a_call_another_threads_batch_computes(tmp_path):
    storage = Storage(tmp_path / "s.db")
    first = in_thread(batch_of(storage, gated, "threads"))
    assert STARTED.wait(HANG)

    def run_block():
        with storage.run():
            return gated(7)

    second = in_thread(run_block)
    until_blocked(second[0])  # waiting for the batch's call, or (the bug) stuck in its own body
    GATE.set()
    assert finished(*first) == ([], 107)
    assert finished(*second) == 107
    assert RAN[("gated", 7)] == 1


def test_a_batch_does_not_compute_a_call_another_threads_run_block_computes(tmp_path):
    storage = Storage(tmp_path / "s.db")

    def run_block():
        with storage.run():
            return gated(7)

    first = in_thread(run_block)
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


def test_a_run_block_waiting_for_another_threads_failing_batch_call_computes_it_itself(tmp_path):
    storage = Storage(tmp_path / "s.db")
    first = in_thread(batch_of(storage, gated_fails_first, "threads"))
    assert STARTED.wait(HANG)

    def run_block():
        with storage.run():
            return gated_fails_first(7)

    second = in_thread(run_block)
    until_blocked(second[0])
    GATE.set()
    assert isinstance(finished(*first), ConnectionError)
    assert finished(*second) == 107
    assert RAN[("gated_fails_first", 7)] == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_body_calling_an_op_its_batch_has_queued_computes_it_once(tmp_path, workers):
    # outer(1)'s body calls work(1), which the same wave queued behind it: waiting for the
    # queued call would hold the pool's only thread for ever; the body computes it instead.
    storage = Storage(tmp_path / "s.db")

    def target():
        with storage.batch(executor="threads", max_concurrency=workers):
            results = [outer(1), work(1)]
        return results

    assert finished(*in_thread(target)) == [4, 3]
    assert RAN[("work", 1)] == 1
    with Storage(tmp_path / "s.db").run(allow_new_calls=False):
        assert [outer(1), work(1)] == [4, 3]
