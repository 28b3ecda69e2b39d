"""Transformed code behaves like the original (import-hooks.md §8.5), run on a fake runtime."""

from __future__ import annotations

import sys
import textwrap

from cstutil import FakeBlock, FakeOp, FakeRuntime, execute, rewrite
from hypothesis import given, settings, strategies as st


def run_both(source: str, make_names) -> tuple[dict, dict, FakeRuntime]:  # type: ignore[no-untyped-def]
    """Execute the original and the transformed *source*; the names come fresh for each."""
    source = textwrap.dedent(source)
    original = execute(source, FakeRuntime(), **make_names())
    rt = FakeRuntime()
    compiled = execute(rewrite(source).source, rt, **make_names())
    return original, compiled, rt


def names_with_log() -> dict:
    log: list = []

    def tick(label):  # an argument with a side effect
        log.append(("arg", label))
        return label

    def plain(*args):
        log.append(("plain", sys._getframe(1).f_code.co_name))
        return sum(a if isinstance(a, int) else len(a) for a in args)

    def body(*args, **kwargs):
        log.append(("body", args, kwargs))
        return sum(args) + len(kwargs) + 1

    return {"log": log, "tick": tick, "plain": plain, "inc": FakeOp(body, log), "storage": FakeBlock()}


class TestDispatch:
    def test_ops_go_through_the_runtime_with_keys(self, rt: FakeRuntime) -> None:
        """An op call reaches ``call`` with the contract's spec; results are plain values."""
        source = rewrite("import mandala_ast\nwith storage.run():\n    y = inc(1)\n    w = inc(y)\n").source
        ns = execute(source, rt, **names_with_log())
        assert ns["w"] == 3
        assert rt.log == [
            ("call", "body", ("<module>", ("y",), (None,), None)),
            ("call", "body", ("<module>", ("w",), ("y",), None)),
        ]

    def test_non_op_callee_is_called_from_the_users_frame(self) -> None:
        """No runtime frame in between: the caller of ``plain`` is the module itself."""
        original, compiled, rt = run_both(
            "import mandala_ast\nwith storage:\n    y = plain(1, 2)\n", names_with_log
        )
        assert compiled["log"] == original["log"] == [("plain", "<module>")]
        assert rt.log == []

    def test_direct_argument_uses_ref(self, rt: FakeRuntime) -> None:
        """``inc(inc(1))``: the inner op returns a Ref to the outer call (unwrapped for the body)."""
        ns = execute(rewrite("import mandala_ast\nwith storage:\n    y = inc(inc(1))\n").source, rt, **names_with_log())
        assert ns["y"] == 3
        assert [entry[0] for entry in rt.log] == ["ref", "call"]


    def test_append_to_a_local_list_stays_plain_and_its_argument_is_an_op_call(self) -> None:
        """``out.append(inc(x))`` on a function's own list: the append is called as written,
        ``inc`` still through the runtime, and the list ends up the same."""
        original, compiled, rt = run_both(
            """\
            import mandala_ast
            def main(xs):
                out = {}
                with storage:
                    for x in xs:
                        out.setdefault(x, inc(x))
                return out
            result = main([1, 2])
            """,
            names_with_log,
        )
        assert compiled["result"] == original["result"] == {1: 2, 2: 3}
        assert [entry[:2] for entry in rt.log] == [("call", "body"), ("call", "body")]


class TestEvaluation:
    def test_order_and_single_evaluation(self) -> None:
        """Arguments run once, in the original order, whichever branch runs."""
        original, compiled, _ = run_both(
            """\
            import mandala_ast
            with storage:
                y = inc(tick(1), plain(tick(2), inc(tick(3))), k=tick(4))
                z = plain(inc(tick(5)), [inc(tick(i)) for i in range(2)])
            """,
            names_with_log,
        )
        assert compiled["log"] == original["log"]
        assert (compiled["y"], compiled["z"]) == (original["y"], original["z"])

    def test_super_lambdas_comprehensions_and_classes(self) -> None:
        """``super()`` still works; nested scopes compile and run."""
        source = """\
            import mandala_ast
            class Base:
                def f(self, x):
                    return x
            with storage:
                class Child(Base):
                    scale = inc(1)
                    def f(self, x):
                        return super().f(inc(x)) * self.scale
                out = [Child().f(i) for i in range(3)]
                g = lambda q: inc(q)
                total = sum(map(g, out))
                gen = list(inc(e) for e in out if inc(e) > 2)
            """
        original, compiled, rt = run_both(source, names_with_log)
        for name in ("out", "total", "gen"):
            assert compiled[name] == original[name]
        assert any(entry[0] == "call" for entry in rt.log)

    def test_workflow_and_forget(self) -> None:
        """Workflow bodies and forget wrappers return exactly the original values."""
        source = """\
            from mandala_ast import workflow
            @workflow
            def pipe(n):
                y = inc(n)
                for y in range(y):
                    y += inc(y)
                return y
            with storage:
                r = pipe(2)
            """
        original, compiled, rt = run_both(source, names_with_log)
        assert compiled["r"] == original["r"]
        assert ("ret", "y@pipe") in rt.log
        assert ("forget", "y@pipe") in rt.log


_CALLEES = st.sampled_from(["inc", "plain", "helper.inc", "helper.plain"])


@st.composite
def call_expressions(draw, depth: int = 0):  # type: ignore[no-untyped-def]
    """Random nested calls mixing ops and plain functions, with side-effecting arguments."""
    args = []
    for index in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["tick", "call", "expr"] if depth < 5 else ["tick"]))
        if kind == "tick":
            args.append(f"tick({index})")
        elif kind == "call":
            args.append(draw(call_expressions(depth + 1)))
        else:
            args.append(f"({draw(call_expressions(depth + 1))} + tick(9))")
    return f"{draw(_CALLEES)}({', '.join(args)})"


class TestDifferential:
    @settings(max_examples=40, deadline=None)
    @given(call_expressions())
    def test_random_nested_calls(self, expression: str) -> None:
        """Same result and same evaluation log as the original, for any nesting."""

        def make_names() -> dict:
            names = names_with_log()
            names["helper"] = type("H", (), {"inc": names["inc"], "plain": staticmethod(names["plain"])})
            return names

        source = f"import mandala_ast\nwith storage:\n    y = {expression}\n"
        original, compiled, _ = run_both(source, make_names)
        assert compiled["y"] == original["y"]
        assert compiled["log"] == original["log"]
