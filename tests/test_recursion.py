"""Recursive ops reach the depth plain Python functions reach (recursion.py)."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mandala_ast import Storage, ValueEncodingError, op
from mandala_ast.runtime import recursion


@op
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@op
def chain(n: int, tag: str) -> int:
    return 0 if n == 0 else chain(n - 1, tag) + 1


@functools.cache
def _cached_chain(n: int) -> int:
    return 0 if n == 0 else _cached_chain(n - 1) + 1


def _cached_depth() -> int:
    """How deep a function memoized by ``functools.cache`` recurses here (a callable object
    called through C, as an op is): about 500 levels under the default limit."""
    deepest, n = 0, 50
    while True:
        _cached_chain.cache_clear()
        try:
            _cached_chain(n)
        except RecursionError:
            _cached_chain.cache_clear()
            return deepest
        deepest, n = n, n + 10


def test_a_recursive_op_reaches_the_depth_a_plain_function_reaches(tmp_path):
    # Each nested call runs through a dozen frames of the library: under Python's default
    # limit a memoized fib(100) raised RecursionError, where a plain one goes past 900.
    # Python 3.12 bounds the C stack apart (its calls of callable objects, as an op is, count
    # there: 1,500 units on 3.12.1, 3 a level): there an op goes as deep as plain Python's
    # memoized function, less the room the library keeps for its own frames.
    limit = sys.getrecursionlimit()
    depth = limit - 150 if sys.version_info < (3, 12) else min(limit - 150, _cached_depth() - 30)
    with Storage(tmp_path / "s.db"):
        assert chain(depth, "deep") == depth
        assert fib(300) == 222232244629420445529739893461909967206666939096499764990979600
    assert sys.getrecursionlimit() == limit


def test_an_op_that_recurses_forever_raises_a_recursion_error_naming_it_and_the_limit_comes_back(tmp_path):
    # Not a crash of the C stack (the library's frames are not counted), nor a
    # ValueEncodingError about an int (the library meets the limit hashing the argument), nor
    # Python's bare RecursionError met somewhere in the library's frames, naming no op (Python
    # 3.12: raised inside the tracer's callback, its C stack full).
    script = textwrap.dedent(f"""
        import sys
        from mandala_ast import Storage, op

        @op
        def forever(n):
            return forever(n + 1)

        @op
        def countdown(n):
            return 0 if n == 0 else countdown(n - 1) + 1

        limit = sys.getrecursionlimit()
        try:
            with Storage({str(tmp_path / "s.db")!r}):
                forever(0)
        except RecursionError as error:
            print(type(error).__name__, "names forever:", "forever" in str(error), sys.getrecursionlimit() == limit)
        with Storage({str(tmp_path / "s.db")!r}):  # every level unwound: nothing left counted
            print(countdown(400))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["OpRecursionError", "names", "forever:", "True", "True", "400"]


@op
def deep_then_set_limit(n: int, limit: int) -> int:
    if n == 0:
        sys.setrecursionlimit(limit)
        return 0
    return deep_then_set_limit(n - 1, limit) + 1


def test_a_limit_a_body_sets_itself_is_left_as_it_set_it(tmp_path):
    limit = sys.getrecursionlimit()
    try:
        with Storage(tmp_path / "s.db"):
            deep_then_set_limit(200, limit + 12345)  # set where the library had raised it
        assert sys.getrecursionlimit() == limit + 12345
    finally:
        sys.setrecursionlimit(limit)


def test_shallow_bodies_leave_the_limit_alone():
    limit = sys.getrecursionlimit()
    recursion.deeper("inc")
    assert sys.getrecursionlimit() == limit
    recursion.shallower()
    assert sys.getrecursionlimit() == limit


@op
def held_deep(n: int, barrier_id: int, thread: int) -> int:
    if n == 0:
        BARRIERS[barrier_id].wait(timeout=30)  # both threads this deep at once
        return 0
    return held_deep(n - 1, barrier_id, thread) + 1


BARRIERS: dict = {}


def test_two_threads_deep_at_once_give_the_limit_back_as_they_found_it(tmp_path):
    # The limit is the process's: kept per thread, each thread restored the other's raised
    # limit, and it climbed round after round until an op recursing forever crashed.
    limit = sys.getrecursionlimit()
    storage = Storage(tmp_path / "s.db")
    for round_ in range(3):
        BARRIERS[round_] = threading.Barrier(2)

        def deep(tag: int, round_: int = round_) -> int:
            with storage.run():
                return held_deep(300 + tag, round_, tag)

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(deep, (0, 1))) == [300, 301]
        assert sys.getrecursionlimit() == limit


def test_a_deeply_nested_value_is_still_a_value_error_naming_the_op(tmp_path):
    nested: list = []
    for _ in range(sys.getrecursionlimit() * 2):
        nested = [nested]
    with pytest.raises(ValueEncodingError, match="chain.*nested too deeply"), Storage(tmp_path / "s.db"):
        chain(1, nested)
