"""Static dependency discovery: user code and constants, never library code or state."""

from __future__ import annotations

import textwrap

import pytest

from mandala_ast.runtime.dependencies import (
    hands_work_off,
    may_run_user_code,
    op_dependency,
    static_dependencies,
)
from mandala_ast.runtime.fingerprints import fingerprint


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Import a real user module written to tmp_path."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(name: str, source: str):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return __import__(name)

    return make


def test_helpers_transitively_constants_and_not_libraries(module):
    mod = module("deps_a", """
        import json
        SCALE = 3
        RESULTS = []

        def inner(x):
            return x * SCALE

        def helper(x):
            return inner(x) + 1

        def op_body(x):
            RESULTS.append(x)
            return json.dumps(helper(x))
    """)
    found = static_dependencies(mod.op_body)
    assert set(found) == {"deps_a:helper", "deps_a:inner", "deps_a:SCALE"}
    assert found["deps_a:SCALE"].kind == "constant" and found["deps_a:helper"].kind == "code"


def test_helpers_in_other_user_modules(module):
    module("deps_helpers", "def scale(x):\n    return x * 2\n")
    mod = module("deps_b", "import deps_helpers\n\ndef body(x):\n    return deps_helpers.scale(x)\n")
    assert set(static_dependencies(mod.body)) == {"deps_helpers:scale"}


def test_a_plain_op_cannot_run_user_code(module):
    mod = module("deps_c", "import math\n\ndef body(x):\n    return math.sqrt(x) + len([x])\n")
    assert may_run_user_code(mod.body) is False


@pytest.mark.parametrize(
    "setup, call",
    [
        ("def helper(x):\n    return x\n", "helper(x)"),
        ("class Model:\n    def run(self, x):\n        return x\nMODEL = Model()\n", "MODEL.run(x)"),
        ("import functools\nSCALE = functools.partial(int, base=10)\n", "SCALE(x)"),
        ("import json\nREGISTRY = {'dump': json.dumps, 'mine': lambda v: v}\n", "REGISTRY['mine'](x)"),
    ],
    ids=["helper", "user object", "partial", "registry"],
)
def test_code_that_may_reach_user_code_is_traced(module, setup, call):
    mod = module(f"deps_{abs(hash(call))}", f"{setup}\ndef body(x):\n    return {call}\n")
    assert may_run_user_code(mod.body) is True


def test_a_called_op_is_a_code_dependency_that_includes_its_version(module):
    mod = module("deps_ops", """
        from mandala_ast import op

        @op
        def plain(x):
            return x

        @op(version=2)
        def bumped(x):
            return x

        def make():
            @op
            def local(x):
                return x
            return local
    """)
    found = op_dependency(mod.plain)
    assert (found.name, found.kind) == ("deps_ops:plain", "code")
    assert found.state == fingerprint(mod.plain.fn).digest  # version 0: the state stored so far
    assert op_dependency(mod.bumped).state != fingerprint(mod.bumped.fn).digest
    assert op_dependency(mod.make()) is None  # no name reaches it: its enclosing code covers it


def _ran(fn) -> dict:
    """The code objects ``fn`` entered, traced as an op body is."""
    from mandala_ast.runtime.tracing import run_traced

    return run_traced(fn, (), {})[1].codes


def test_a_body_using_a_pool_or_starting_a_thread_hands_work_off():
    import concurrent.futures
    import threading

    def pooled():
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(len, "ab").result()

    def threaded():
        thread = threading.Thread(target=len, args=("ab",))
        thread.start()
        thread.join()

    assert hands_work_off(_ran(pooled)) and hands_work_off(_ran(threaded))


def test_a_body_using_locks_and_queues_in_its_own_thread_does_not_hand_work_off():
    import queue
    import threading

    def local():
        with threading.Lock():
            box: queue.Queue = queue.Queue()
            box.put(1)
            return box.get()

    assert not hands_work_off(_ran(local))


def test_an_object_whose_attributes_the_code_sets_is_state_not_a_dependency(tmp_path):
    """An op that counts into a module-level object of the user's changes it: taken for a
    dependency, its content after the body would never match a new process's, and every
    new process would compute the call again."""
    import importlib
    import sys

    (tmp_path / "counting.py").write_text(textwrap.dedent("""
        class Stats:
            def __init__(self):
                self.calls = 0

        STATS = Stats()
        LIMITS = Stats()

        def count(x):
            STATS.calls += 1
            return x * LIMITS.calls
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        counting = importlib.import_module("counting")
        names = set(static_dependencies(counting.count))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("counting", None)
    assert "counting:LIMITS" in names and "counting:STATS" not in names


def test_a_standard_library_module_half_imported_by_another_thread_is_no_error(monkeypatch):
    # Another thread importing decimal leaves it in sys.modules without Decimal for a moment:
    # a block entering then raised a raw AttributeError (found by the stress test).
    import sys
    import types

    from mandala_ast.runtime.dependencies import is_data

    monkeypatch.setitem(sys.modules, "decimal", types.ModuleType("decimal"))  # not yet initialised
    assert is_data(object()) is False and is_data({"lr": 0.1}) is True
