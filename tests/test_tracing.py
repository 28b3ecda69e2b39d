"""Tracing what an op body runs (dynamic dependencies)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mandala_ast.runtime.tracing import run_traced

REPO = Path(__file__).resolve().parent.parent


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
    assert ran.receivers[Base.score.__code__] == (Child,)
    assert ran.receivers[Base.make.__func__.__code__] == (Child,)
    assert helper.__code__ not in ran.receivers  # not a method: no receiver


def test_notes_each_class_a_method_ran_for_among_its_first_calls():
    """An ensemble: one inherited method run for several classes in one call."""
    _, ran = run_traced(lambda: [m.score(1) for m in [Base(), Base(), Child(), Base()]], (), {})
    assert ran.receivers[Base.score.__code__] == (Base, Child)


def test_stops_looking_at_receivers_after_its_first_calls():
    _, ran = run_traced(lambda: [m.score(1) for m in [Base()] * 100 + [Child()]], (), {})
    assert ran.receivers[Base.score.__code__] == (Base,)


def test_a_class_made_inside_the_body_is_no_receiver():
    """A class defined in the op body is a new object at each call: noted, it made every
    execution's dependencies a new cache entry (and kept each class alive)."""
    def body():
        class Local:
            def m(self):
                return 1
        return Local().m()

    _, ran = run_traced(body, (), {})
    assert ran.receivers == {} and any(code.co_name == "m" for code in ran.codes)


def test_a_receiver_whose_attributes_raise_is_noted_by_its_class():
    class Proxy:
        def __getattribute__(self, name):
            raise RuntimeError("no attributes here")

        def m(self):
            return 2

    class Named(Proxy):
        pass

    Named.__qualname__ = "Named"  # as if at module level
    _, ran = run_traced(lambda: Named.m(Named()), (), {})
    assert ran.receivers[Proxy.m.__code__] == (Named,)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring tracing: Python 3.12+")
def test_a_dask_batch_prints_no_exception_ignored_at_interpreter_exit(tmp_path):
    """The monitoring callback stays registered to the end: code first run while modules
    are torn down (logging's _removeHandlerRef, as Dask's handlers go) called it after its
    module's globals were cleared, and the process printed "Exception ignored in
    _removeHandlerRef ... 'NoneType' object has no attribute 'monitoring'" as it exited."""
    pytest.importorskip("distributed")
    (tmp_path / "traced_ops.py").write_text(textwrap.dedent("""
        from mandala_ast import op

        def helper(x):
            return x + 1

        @op
        def inc(x):
            return helper(x)  # user code: the body is traced
    """))
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(f"""
        import distributed
        from mandala_ast import Storage
        from traced_ops import inc

        if __name__ == "__main__":
            cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                               dashboard_address=None)
            with cluster, distributed.Client(cluster) as client:
                with Storage({str(tmp_path / "s.db")!r}).batch(executor=client, progress=False):
                    ys = [inc(x) for x in range(3)]
            print(ys, flush=True)
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["[1,", "2,", "3]"], done.stderr
    assert "Exception ignored" not in done.stderr, done.stderr
