"""Tracing what an op body runs (dynamic dependencies)."""

from __future__ import annotations

import sys

from mandala_ast.runtime.tracing import run_traced


def helper(x):
    return x * 2


def other(x):
    return x


def body(x):
    return helper(x) if x % 2 == 0 else other(x)


def test_records_exactly_the_functions_that_ran():
    _, even = run_traced(body, (2,), {})
    _, odd = run_traced(body, (3,), {})
    assert helper.__code__ in even.codes and other.__code__ not in even.codes
    assert other.__code__ in odd.codes and helper.__code__ not in odd.codes
    assert even.complete and odd.complete


def test_returns_the_result_and_records_module_globals():
    result, ran = run_traced(body, (4,), {})
    assert result == 8
    assert ran.codes[helper.__code__] is globals()


def test_nested_runs_both_see_inner_code():
    def outer(x):
        inner_result, inner = run_traced(body, (x,), {})
        outer.inner = inner
        return inner_result

    _, ran = run_traced(outer, (2,), {})
    assert helper.__code__ in ran.codes and helper.__code__ in outer.inner.codes


def test_leaves_no_hook_behind():
    before = (sys.gettrace(), sys.getprofile())
    run_traced(body, (2,), {})
    assert (sys.gettrace(), sys.getprofile()) == before


def test_an_exception_in_the_body_propagates_and_unhooks():
    def failing(x):
        raise ValueError(x)

    before = (sys.gettrace(), sys.getprofile())
    try:
        run_traced(failing, (1,), {})
    except ValueError as exc:
        assert exc.args == (1,)
    assert (sys.gettrace(), sys.getprofile()) == before


def test_runs_in_two_threads_each_see_the_code_both_of_them_run():
    """Another thread running the same function first must not hide it from this one
    (Python 3.12+: one monitoring tool serves every thread)."""
    import threading

    first_started, second_ran = threading.Event(), threading.Event()
    seen = {}

    def first():
        first_started.set()
        assert second_ran.wait(30)
        return helper(1)

    def second():
        assert first_started.wait(30)
        try:
            return helper(2)
        finally:
            second_ran.set()

    def trace(name, fn):
        seen[name] = run_traced(fn, (), {})[1]

    threads = [threading.Thread(target=trace, args=(n, f)) for n, f in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert helper.__code__ in seen["a"].codes and helper.__code__ in seen["b"].codes
    assert first.__code__ not in seen["b"].codes and second.__code__ not in seen["a"].codes


class Base:
    def score(self, x):
        return x

    @classmethod
    def make(cls):
        return cls()


class Child(Base):
    pass


def test_notes_the_class_an_inherited_method_ran_for():
    _, ran = run_traced(lambda: Child.make().score(1), (), {})
    assert ran.receivers[Base.score.__code__] is Child
    assert ran.receivers[Base.make.__func__.__code__] is Child
    assert helper.__code__ not in ran.receivers  # not a method: no receiver


def test_notes_the_first_class_a_method_ran_for():
    _, ran = run_traced(lambda: [Base().score(1), Child().score(2)], (), {})
    assert ran.receivers[Base.score.__code__] is Base
