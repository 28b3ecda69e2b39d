"""Query blocks (issue 5): the code that computed results retrieves them as a table.

Blocks are compiled with the real transform and executed in a namespace holding the ops of
this module; every storage is a real SQLite file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mandala_ast import Q, QueryError, Storage, op, transform_source, workflow
from mandala_ast.runtime.hashing import content_id

RUNS: list[tuple] = []


@op
def inc(x: int) -> int:
    RUNS.append(("inc", x))
    return x + 1


@op
def add(x: int, y: int) -> int:
    RUNS.append(("add", x, y))
    return x + y


@op
def mul(x: int, y: int = 2) -> int:
    return x * y


@op
def load(n: int) -> list:
    return list(range(n))


@op
def train(data: list, alpha: float = 0.1) -> float:
    return sum(data) * alpha


@op
def evaluate(model: float, data: list) -> float:
    return model / (1 + len(data))


SCALE = 2


@op
def scaled(x: int) -> int:
    return x * SCALE


@workflow
def pipeline(n, alpha):
    data = load(n)
    model = train(data, alpha=alpha)
    return evaluate(model, data)


class Session:
    """Another library's object with a ``query()`` block: compiled code must run it as written."""

    def query(self) -> Session:
        return self

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False


def run(source: str, storage: Storage, **names: Any) -> dict:
    """Compile *source* as a module (query form included) and execute it with *storage*."""
    result = transform_source(textwrap.dedent(source), "user_code.py")
    namespace = {
        "__name__": "user_code",
        "storage": storage,
        "inc": inc, "add": add, "mul": mul, "load": load, "train": train,
        "evaluate": evaluate, "pipeline": pipeline, "Q": Q, "Session": Session,
        **names,
    }
    exec(compile(result.source, "user_code.py", "exec"), namespace)
    return namespace


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "results.db")


def rows(frame) -> list[tuple]:
    return [tuple(row) for row in frame.itertuples(index=False)]


class TestMatching:
    def test_history_sensitive_pattern_matches_only_the_nested_call(self, storage: Storage) -> None:
        """w reuses z's content, yet inc(inc(Q())) is w's call alone."""
        run("""\
            import mandala_ast
            with storage.run():
                y = inc(1)
                z = inc(2)
                w = inc(y)
            with storage.query() as q:
                w = inc(inc(Q()))
            """, storage)
        ns = run("""\
            import mandala_ast
            with storage.query() as q:
                w = inc(inc(Q()))
            """, storage)
        assert rows(ns["q"].df()) == [(3,)]
        assert len(ns["q"].df()) == 1

    def test_partial_computation_gives_nulls_under_if(self, storage: Storage) -> None:
        code = """\
            import mandala_ast
            with storage.{block}:
                for x in range(5):
                    y = inc(x)
                    if x % 2 == 0:
                        z = add(x, y)
            """
        run(code.format(block="run()"), storage)
        ns = run(code.format(block="query() as q"), storage)
        frame = ns["q"].df()
        assert list(frame.columns) == ["x", "y", "z"]
        assert rows(frame) == [(0, 1, 1), (1, 2, None), (2, 3, 5), (3, 4, None), (4, 5, 9)]

    def test_run_block_example_of_the_design_round_trips_without_printing(self, storage, capsys) -> None:
        code = """\
            import mandala_ast
            with storage.{block}:
                for n in [10, 100]:
                    for alpha in [0.1, 0.2]:
                        data = load(n)
                        model = train(data, alpha=alpha)
                        acc = evaluate(model, data)
                        if acc > 0.9:
                            print(n, acc)
            """
        ran = run(code.format(block="run()"), storage)
        printed = capsys.readouterr().out
        assert printed  # the run block printed the good ones
        frame = run(code.format(block="query() as q"), storage)["q"].df()
        assert capsys.readouterr().out == ""
        assert list(frame.columns) == ["n", "alpha", "data", "model", "acc"]
        assert len(frame) == 4
        expected = {(n, a, evaluate.fn(train.fn(list(range(n)), a), list(range(n)))) for n in (10, 100) for a in (0.1, 0.2)}
        assert set(zip(frame.n, frame.alpha, frame.acc)) == expected
        assert ran["acc"] == frame.acc.iloc[-1]

    def test_free_variable_and_omitted_argument(self, storage: Storage) -> None:
        run("""\
            import mandala_ast
            with storage.run():
                for x in [1, 2, 3]:
                    m = mul(x, 3)
                m = mul(5)
            """, storage)
        ns = run("""\
            import mandala_ast
            with storage.query() as everything:
                x = Q()
                m = mul(x)
            with storage.query() as by_three:
                x = Q()
                m = mul(x, y=3)
            """, storage)
        assert sorted(rows(ns["everything"].df())) == [(1, 3), (2, 6), (3, 9), (5, 10)]
        assert sorted(rows(ns["by_three"].df())) == [(1, 3), (2, 6), (3, 9)]

    def test_workflow_is_matched_through(self, storage: Storage) -> None:
        run("""\
            import mandala_ast
            with storage.run():
                for n in [3, 4]:
                    acc = pipeline(n, 0.5)
            """, storage)
        ns = run("""\
            import mandala_ast
            with storage.query() as q:
                n = Q()
                acc = pipeline(n, 0.5)
            """, storage)
        frame = ns["q"].df()
        assert sorted(rows(frame)) == [(3, pipeline.fn(3, 0.5)), (4, pipeline.fn(4, 0.5))]

    def test_tuple_targets_keep_items_together(self, storage: Storage) -> None:
        code = """\
            import mandala_ast
            with storage.{block}:
                for x, y in [(1, 10), (2, 20)]:
                    s = add(x, y)
            """
        run(code.format(block="run()"), storage)
        run("import mandala_ast\nwith storage.run():\n    s = add(1, 20)\n", storage)
        frame = run(code.format(block="query() as q"), storage)["q"].df()
        assert sorted(rows(frame)) == [(1, 10, 11), (2, 20, 22)]

    def test_only_calls_of_the_current_code_are_seen(self, storage: Storage) -> None:
        ns = run("""\
            import mandala_ast
            with storage.run():
                y = inc(1)
            """, storage)
        from mandala_ast import op as make_op

        def inc(x: int) -> int:  # same name, new code: a new version
            return x + 100

        inc.__module__ = __name__
        inc.__qualname__ = "inc"
        changed = make_op(inc)
        ns = run("""\
            import mandala_ast
            with storage.query() as q:
                y = inc(Q())
            """, storage, inc=changed)
        assert len(ns["q"].df()) == 0

    def test_calls_made_before_a_constant_they_read_changed_are_not_seen(self, storage, monkeypatch) -> None:
        """Same op version, another dependency state: the stored call is stale for today's code."""
        run("import mandala_ast\nwith storage.run():\n    y = scaled(1)\n", storage, scaled=scaled)
        query = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = scaled(x)\n"
        monkeypatch.setattr(sys.modules[__name__], "SCALE", 3)
        assert rows(run(query, storage, scaled=scaled)["q"].df()) == []
        monkeypatch.undo()  # reverted: the stored call is valid again
        assert rows(run(query, storage, scaled=scaled)["q"].df()) == [(1, 2)]

    def test_rows_computed_under_a_helper_redefined_since_the_block_are_not_shown(
        self, storage: Storage, tmp_path: Path, monkeypatch
    ) -> None:
        """A query block entered, then a helper redefined (a notebook cell), then ``q.df()``:
        the rows computed under the old helper were shown as current, though a run block
        entered now would compute them again."""
        import importlib

        monkeypatch.syspath_prepend(str(tmp_path))
        (tmp_path / "query_helpers.py").write_text("def helper(x):\n    return x + 1\n")
        helpers = importlib.import_module("query_helpers")
        runs = []

        @op
        def uses(x: int) -> int:
            runs.append(x)
            return helpers.helper(x)

        block = "import mandala_ast\nwith storage.run():\n    y = uses(1)\n"
        run(block, storage, uses=uses)
        run(block, storage, uses=uses)  # a hit: the call's validity is known now
        q = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = uses(x)\n", storage, uses=uses)["q"]
        exec("def helper(x):\n    return x + 2\n", helpers.__dict__)
        assert rows(q.df()) == []
        run(block, storage, uses=uses)
        assert runs == [1, 1]

    def test_a_literal_typed_in_compiled_code_is_not_taken_for_an_equal_op_output(self, storage) -> None:
        """add(2, v) has 2 typed in, equal to v = inc(1): it is not add(v, v)."""
        run("import mandala_ast\nwith storage.run():\n    v = inc(1)\n    w = add(2, v)\n    u = add(v, v)\n", storage)
        q = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x)\n    z = add(y, y)\n", storage)["q"]
        assert len(q.df()) == 1 and len(q.matched_calls()) == 2

    def test_rows_come_in_the_order_their_last_calls_were_computed(self, storage) -> None:
        """inc(1) before inc(2), but add(inc(2), 10) before add(inc(1), 10): the last call leads."""
        run("""\
            import mandala_ast
            with storage.run():
                a = inc(1)
                b = inc(2)
                add(b, 10)
                add(a, 10)
            """, storage)
        q = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x)\n    z = add(y, 10)\n", storage)["q"]
        assert rows(q.df("x", "z")) == [(2, 13), (1, 12)]


class TestOrdinaryPython:
    def test_derived_columns_and_filters(self, storage: Storage) -> None:
        run("""\
            import mandala_ast
            with storage.run():
                for x in range(4):
                    y = inc(x)
            """, storage)
        frame = run("""\
            import mandala_ast
            with storage.query() as q:
                x = Q()
                y = inc(x)
                twice = y * 2
                big = twice if False else twice
                if y > 2 and not x == 3:
                    flag = x + y
            """, storage)["q"].df("x", "twice", "flag")
        assert rows(frame) == [(0, 2, None), (1, 4, None), (2, 6, 5), (3, 8, None)]

    def test_expression_passed_to_an_op_is_a_filter(self, storage: Storage) -> None:
        run("""\
            import mandala_ast
            with storage.run():
                for x in range(4):
                    y = add(x, x + 1)
                y = add(9, 9)
            """, storage)
        frame = run("""\
            import mandala_ast
            with storage.query() as q:
                x = Q()
                y = add(x, x + 1)
            """, storage)["q"].df()
        assert rows(frame) == [(0, 1), (1, 3), (2, 5), (3, 7)]

    def test_selection_and_ids(self, storage: Storage) -> None:
        from mandala_ast.runtime.hashing import content_id

        run("import mandala_ast\nwith storage.run():\n    y = inc(7)\n", storage)
        q = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x)\n", storage)["q"]
        assert list(q.df("y").columns) == ["y"]
        assert rows(q.df(values="ids")) == [(content_id(7).hex(), content_id(8).hex())]
        with pytest.raises(KeyError, match="no variable 'nope'"):
            q.df("nope")

    def test_an_unknown_column_is_a_mandala_error_and_still_a_key_error(self, storage: Storage) -> None:
        """`q.df("nope")` raised a bare KeyError, whose text Python shows in quotes."""
        from mandala_ast import UnknownColumnError

        run("import mandala_ast\nwith storage.run():\n    y = inc(7)\n", storage)
        q = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x)\n", storage)["q"]
        with pytest.raises(UnknownColumnError) as caught:
            q.df("x", "nope")
        assert isinstance(caught.value, (KeyError, QueryError))
        assert str(caught.value) == "no variable 'nope' in the query block; its variables: ['x', 'y']"

    def test_columns_given_as_a_list_select_them_as_pandas_does(self, storage: Storage) -> None:
        """`q.df(["x", "y"])`, as one selects pandas columns, raised a raw `TypeError: unhashable type: 'list'`."""
        from mandala_ast import ArgumentError

        run("import mandala_ast\nwith storage.run():\n    y = inc(7)\n", storage)
        q = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x)\n", storage)["q"]
        assert rows(q.df(["y", "x"])) == rows(q.df("y", "x")) == [(8, 7)]
        assert list(q.df(("y",)).columns) == ["y"]
        with pytest.raises(ArgumentError, match=r"q.df: columns are variable names \(str\), not 3"):
            q.df("x", 3)

    def test_asking_for_an_argument_given_q_inline_says_how_to_make_it_a_column(self, storage: Storage) -> None:
        """`train(data, alpha=Q())` then `q.df("alpha")` said only that there is no variable 'alpha'."""
        from mandala_ast import UnknownColumnError

        run("import mandala_ast\nwith storage.run():\n    m = train(load(3), alpha=0.5)\n", storage)
        q = run("import mandala_ast\nwith storage.query() as q:\n    m = train(load(3), alpha=Q())\n", storage)["q"]
        with pytest.raises(UnknownColumnError, match=r"'alpha'.*alpha=Q\(\) .* in the call to test_query.train.*`alpha = Q\(\)`"):
            q.df("m", "alpha")
        with pytest.raises(UnknownColumnError, match=r"'data'.*data of the call to test_query.train .*assign it to a name"):
            q.df("data")

    def test_an_unknown_values_kind_is_a_mandala_error_naming_the_argument(self, storage: Storage) -> None:
        """`q.df(values="id")` raised a bare ValueError."""
        from mandala_ast import ArgumentError

        run("import mandala_ast\nwith storage.run():\n    y = inc(7)\n", storage)
        q = run("import mandala_ast\nwith storage.query() as q:\n    y = inc(Q())\n", storage)["q"]
        with pytest.raises(ArgumentError, match=r"q\.df: values= must be 'objs' or 'ids', not 'id'"):
            q.df(values="id")

    @pytest.mark.parametrize("derived", ["", "    w = x + 0\n"], ids=["plain", "derived"])
    def test_a_rebound_name_shows_and_dedupes_by_its_last_value(self, storage: Storage, derived: str) -> None:
        """`y = inc(x); y = mul(y, 0)`: y is the last call's output, 0 in every row. Its ids
        are 0's, and y alone is one distinct row (the first y differs in every row). A
        derived column takes the row-by-row path instead of the plain table's."""
        from mandala_ast.runtime.hashing import content_id

        body = "    y = inc(x)\n    y = mul(y, 0)\n"
        run("import mandala_ast\nwith storage.run():\n    for x in [1, 2, 3]:\n" + textwrap.indent(body, "    "), storage)
        q = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n" + body + derived, storage)["q"]
        assert rows(q.df("x", "y")) == [(1, 0), (2, 0), (3, 0)]
        zero, xs = content_id(0).hex(), [content_id(x).hex() for x in (1, 2, 3)]
        assert rows(q.df("x", "y", values="ids")) == [(x, zero) for x in xs]
        assert rows(q.df("y")) == [(0,)]
        assert rows(q.df("y", values="ids")) == [(zero,)]

    def test_other_librarys_query_block_runs_as_written(self) -> None:
        ns = run("""\
            import mandala_ast

            session = Session()
            seen = []
            with session.query() as s:
                i = 0
                while i < 3:
                    i += 1
                for k in [1, 2]:
                    if k == 1:
                        seen.append("one")
                    elif k > 1 and k < 3:
                        seen.append("two")
                    else:
                        seen.append("never")
                seen.append(not False)
            """, Storage())
        assert ns["seen"] == ["one", "two", True]
        assert ns["i"] == 3


class TestErrors:
    @pytest.mark.parametrize(
        ("statement", "what"),
        [
            ("while x:\n        pass", "`while` loop"),
            ("try:\n        y = inc(x)\n    except ValueError:\n        pass", "`try` statement"),
            ("y = inc(x)\n    y += 1", "in-place update"),
            ("y = inc(x)\n    y.append(3)", "mutates a query variable"),
            ("y = inc(x)\n    y[0] = 1", "assignment into an object"),
            # An unpacking was refused as "an assignment into an object (`x[i] = ...`)".
            ("y, *rest = inc(x)", "unpacking into a starred or nested target"),
            ("(y, z), w = inc(x)", "unpacking into a starred or nested target"),
        ],
    )
    def test_what_a_query_cannot_mean_names_the_line(self, storage, statement: str, what: str) -> None:
        source = f"import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    {statement}\n"
        with pytest.raises(QueryError, match=what) as info:
            run(source, storage)
        assert "user_code.py:4" in str(info.value) or "user_code.py:5" in str(info.value)

    def test_unpacking_a_one_output_op_in_a_query_names_the_op_and_nout(self, storage) -> None:
        # `X, y = featurize(df)` runs (the op returns a tuple) but its stored output is one
        # value; the query said only "cannot unpack <query variable _2> into X, y".
        source = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    a, b = load(x)\n"
        with pytest.raises(QueryError, match=r"load.*one output.*nout=2.*tuple\[") as info:
            run(source, storage)
        assert any(str(entry.path) == "user_code.py" and entry.lineno + 1 == 4 for entry in info.traceback)

    def test_uncompiled_query_block_says_how_to_compile(self, storage: Storage) -> None:
        with pytest.raises(QueryError, match="mandala-ast run"):
            with storage.query():
                pass

    def test_a_query_block_in_a_module_never_naming_mandala_ast_says_why_it_was_not_compiled(
        self, storage: Storage, tmp_path: Path
    ) -> None:
        """`from mylib import Q` (mylib re-exporting mandala_ast's names) under `mandala-ast run`:
        the error said to run the script with `mandala-ast run`, which the user had done."""
        import importlib.util

        path = tmp_path / "exp_reexported.py"
        path.write_text("def main(storage, Q):\n    with storage.query():\n        Q()\n")
        spec = importlib.util.spec_from_file_location("exp_reexported", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with pytest.raises(QueryError, match=f"{path} never mentions `mandala_ast`"):
            module.main(storage, Q)

    @pytest.mark.parametrize("inner", ["storage.run()", "storage.batch()", "storage.query() as q2", "storage.delete()"])
    @pytest.mark.parametrize("outer", ["query() as q", "delete()"])
    def test_a_storage_block_inside_a_query_block_is_refused_naming_the_line(self, storage: Storage, outer: str, inner: str) -> None:
        """The nested block was compiled as a block of its own and the query block around it
        was left uncompiled: "a query block must be compiled", of a script run compiled."""
        run("import mandala_ast\nwith storage.run():\n    y = inc(7)\n", storage)
        code = f"import mandala_ast\nwith storage.{outer}:\n    x = Q()\n    with {inner}:\n        y = inc(7)\n"
        with pytest.raises(QueryError, match=r"user_code.py:4: a query block cannot contain a storage block") as info:
            run(code, storage)
        assert "must be compiled" not in str(info.value)
        assert len(storage.df(inc)) == 1

    def test_a_with_lock_inside_a_query_block_is_part_of_the_query(self, storage: Storage) -> None:
        """`with lock:` may be a storage block (`with storage:`), so it was compiled as one and
        the query around it left uncompiled: "a query block must be compiled"."""
        import threading

        run("import mandala_ast\nwith storage.run():\n    y = inc(7)\n", storage)
        code = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    with lock:\n        y = inc(x)\n"
        assert rows(run(code, storage, lock=threading.Lock())["q"].df()) == [(7, 8)]

    def test_a_variable_given_only_to_an_arithmetic_expression_is_not_told_to_make_it_a_workflow(self, storage: Storage) -> None:
        """`x = Q(); y = inc(x * 2)`: the error told to make the function `x * 2` a @workflow."""
        run("import mandala_ast\nwith storage.run():\n    for x in range(3):\n        y = inc(x * 2)\n", storage)
        with pytest.raises(QueryError, match=r"x = Q\(\) is not an argument of any op call") as info:
            run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x * 2)\n", storage)["q"].df()
        assert "@workflow" not in str(info.value) and "for x in [" in str(info.value)
        with pytest.raises(QueryError, match=r"only used in `len\(x\)`"):
            run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(len(x))\n", storage)["q"].df()

    def test_a_variable_given_only_to_a_plain_function_calling_ops_says_to_make_it_a_workflow(self, storage: Storage) -> None:
        """`y = prep(Q())` with `prep` calling `inc`: the error said the variable is no op's
        argument, though the user passed it to code calling an op."""
        with pytest.raises(QueryError, match=r"only passed to `prep\(_0\)`, computed row by row.*@workflow"):
            run("""\
                import mandala_ast
                def prep(v):
                    return inc(v)
                with storage.query() as q:
                    y = prep(Q())
                q.df()
                """, storage)

    def test_q_outside_a_query(self) -> None:
        with pytest.raises(QueryError, match="inside `with storage.query"):
            Q()

    def test_branching_on_a_variable_outside_if_is_explained(self, storage: Storage) -> None:
        with pytest.raises(QueryError, match="has no value while the query block runs"):
            run("""\
                import mandala_ast
                with storage.query() as q:
                    x = Q()
                    y = inc(x)
                    z = 1 if y else 2
                """, storage)

    def test_a_variable_passed_through_star_args_is_refused_naming_star_args(self, storage: Storage) -> None:
        """The message advised annotating the parameter as MList and iterating it: no help for
        `*args`, which a call stores as one tuple."""

        @op
        def total_of(*xs: int) -> int:
            return sum(xs)

        run("import mandala_ast\nwith storage.run():\n    total_of(inc(1), 2)\n", storage, total_of=total_of)
        with pytest.raises(QueryError, match=r"argument '\*xs': a query variable passed through \*args"):
            run("import mandala_ast\nwith storage.query() as q:\n    t = total_of(inc(Q()), 2)\n", storage, total_of=total_of)

    def test_unused_free_variable(self, storage: Storage) -> None:
        ns = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(3)\n", storage)
        with pytest.raises(QueryError, match="not an argument of any op call"):
            ns["q"].df()


# -- round trip: run, then query the same code ----------------------------------------------------

_OPS = ("inc", "add", "mul")


@st.composite
def blocks(draw) -> str:
    """A block of op calls with up to two nested literal loops, maybe ending in an ``if``; the
    innermost body records the names it sees (a statement the query skips: ordinary Python)."""
    names: list[str] = []
    lines: list[str] = []
    depth = 0

    def argument() -> str:
        if names and draw(st.booleans()):
            return draw(st.sampled_from(names))
        return str(draw(st.integers(0, 3)))

    def statements(indent: str, count: int) -> None:
        for _ in range(count):
            fn = draw(st.sampled_from(_OPS))
            args = argument() if fn == "inc" else f"{argument()}, {argument()}"
            target = f"v{len(lines)}"
            lines.append(f"{indent}{target} = {fn}({args})")
            names.append(target)

    def guarded_if(indent: str) -> None:
        """``if <name> > c:`` around op calls, their names set to None first: the run block
        then records None for them in the rows whose condition fails, as a query shows."""
        subject = draw(st.sampled_from(names))
        count = draw(st.integers(1, 2))
        first = len(lines) + count + 1  # the targets' numbers, once the None lines are in
        targets = [f"v{first + k}" for k in range(count)]
        lines.extend(f"{indent}{target} = None" for target in targets)
        lines.append(f"{indent}if {subject} > {draw(st.integers(0, 3))}:")
        statements(indent + "    ", count)
        assert names[-count:] == targets

    statements("    ", draw(st.integers(0, 2)))
    indent = "    "
    for level in range(draw(st.integers(0, 2))):
        var = f"i{level}"
        values = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
        lines.append(f"{indent}for {var} in {values}:")
        names.append(var)
        indent += "    "
        depth += 1
    statements(indent, draw(st.integers(1, 3)))
    if draw(st.booleans()):
        guarded_if(indent)
    record = ", ".join(f"{n!r}: {n}" for n in names)
    lines.append(f"{indent}ROWS.append({{{record}}})")
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=blocks())
def test_round_trip_run_then_query_gives_exactly_the_computed_tuples(tmp_path: Path, body: str) -> None:
    storage = Storage()
    computed: list[dict] = []
    run("import mandala_ast\nwith storage.run():\n" + body, storage, ROWS=computed)
    ns = run("import mandala_ast\nwith storage.query() as q:\n" + body, storage, ROWS=[])
    frame = ns["q"].df()
    names = list(computed[0])
    assert sorted(frame.columns) == sorted(names)
    expected = {tuple(row[n] for n in names) for row in computed}
    assert set(zip(*(frame[n] for n in names))) == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(other=blocks(), body=blocks())
def test_round_trip_beside_calls_other_code_stored_gives_exactly_the_computed_tuples(other: str, body: str) -> None:
    """Calls of other code stored first (compiled, or uncompiled: provenance by content) add
    no row to the query of a block and take none away."""
    for compiled in (True, False):
        storage = Storage()
        if compiled:
            run("import mandala_ast\nwith storage.run():\n" + other, storage, ROWS=[])
        else:  # no compiler: the plain block, as Python runs it
            exec("with storage.run():\n" + other, {"storage": storage, "inc": inc, "add": add, "mul": mul, "ROWS": []})
        computed: list[dict] = []
        run("import mandala_ast\nwith storage.run():\n" + body, storage, ROWS=computed)
        frame = run("import mandala_ast\nwith storage.query() as q:\n" + body, storage, ROWS=[])["q"].df()
        names = list(computed[0])
        got, want = set(zip(*(frame[n] for n in names))), {tuple(row[n] for n in names) for row in computed}
        assert got == want


class TestRegressions:
    def test_elif_whose_condition_is_none_is_not_taken_for_else(self, storage: Storage) -> None:
        """An `elif` condition that evaluates to None once ran like an `else`."""
        run("import mandala_ast\nwith storage.run():\n    a = inc(2)\n    b = inc(3)\n", storage)
        code = """\
            import mandala_ast

            with {block} as q:
                if False:
                    y = inc(1)
                elif None:
                    y = inc(2)
                else:
                    y = inc(3)
            """
        assert rows(run(code.format(block="storage.query()"), storage)["q"].df()) == [(4,)]
        assert run(code.format(block="Session().query()"), storage)["y"] == 4

    def test_a_literal_argument_does_not_match_a_call_whose_input_came_from_an_op(self, storage: Storage) -> None:
        """Constants and literal loop values matched inputs by content alone, so `inc(2)` also
        matched `inc(y)` with y == 2 computed by an op: a row the run block never made."""
        run("import mandala_ast\nwith storage.run():\n    y = inc(1)\n    z = inc(2)\n    w = inc(y)\n", storage)
        q = run("import mandala_ast\nwith storage.query() as q:\n    z = inc(2)\n", storage)["q"]
        assert len(q.matched_calls()) == 1
        code = """\
            import mandala_ast
            with storage.{block}:
                for x in range(6):
                    y = inc(x)
                    if x < 2:
                        z = add(x, 1)
                    elif x < 4:
                        z = mul(x, 3)
                    else:
                        z = inc(y)
            """
        run(code.format(block="run()"), storage)
        frame = run(code.format(block="query() as q"), storage)["q"].df()
        assert sorted(rows(frame)) == [(0, 1, 1), (1, 2, 2), (2, 3, 6), (3, 4, 9), (4, 5, 6), (5, 6, 7)]

    def test_a_loop_over_values_including_a_new_parameters_default_finds_the_older_calls(
        self, storage: Storage, tmp_path: Path, monkeypatch
    ) -> None:
        """A literal loop value equal to a later-added parameter's default did not match the
        calls stored before the parameter existed (only a constant did), so the run block
        found those calls but its query did not (round trip)."""
        import importlib

        monkeypatch.syspath_prepend(str(tmp_path))
        module = tmp_path / "query_defaults_ops.py"
        module.write_text("from mandala_ast import op\n\n@op\ndef fit(x):\n    return x * 2\n")
        ops = importlib.import_module("query_defaults_ops")
        run("import mandala_ast\nwith storage.run():\n    for x in [1, 2]:\n        y = fit(x)\n", storage, fit=ops.fit)
        module.write_text("from mandala_ast import op\n\n@op\ndef fit(x, alpha=0.5):\n    return x * 2\n")
        ops = importlib.reload(ops)
        storage = Storage(storage.path)  # as in a new process
        code = """\
            import mandala_ast
            with storage.{block}:
                for x in [1, 2]:
                    for alpha in [0.5, 0.7]:
                        y = fit(x, alpha=alpha)
            """
        run(code.format(block="run()"), storage, fit=ops.fit)
        assert len(storage.df(ops.fit)) == 4  # two old calls found, two new ones
        frame = run(code.format(block="query() as q"), storage, fit=ops.fit)["q"].df()
        assert sorted(rows(frame)) == [(1, 0.5, 2), (1, 0.7, 2), (2, 0.5, 4), (2, 0.7, 4)]

    def test_a_query_variable_for_a_parameter_added_later_matches_the_calls_stored_before_it(
        self, storage: Storage, tmp_path: Path, monkeypatch
    ) -> None:
        """`alpha=Q()` matches anything, yet calls stored before `alpha` existed (found by the
        run block as calls with its default) were missing from the result, and their row in
        storage.df had no alpha."""
        import importlib

        monkeypatch.syspath_prepend(str(tmp_path))
        module = tmp_path / "query_free_defaults_ops.py"
        module.write_text("from mandala_ast import op\n\n@op\ndef fit(x):\n    return x * 2\n")
        ops = importlib.import_module("query_free_defaults_ops")
        run("import mandala_ast\nwith storage.run():\n    y = fit(1)\n", storage, fit=ops.fit)
        module.write_text("from mandala_ast import op\n\n@op\ndef fit(x, alpha=0.5):\n    return x * 2\n")
        ops = importlib.reload(ops)
        storage = Storage(storage.path)  # as in a new process
        code = "import mandala_ast\nwith storage.run():\n    for x in [1, 2]:\n        y = fit(x)\n    z = fit(3, alpha=0.7)\n"
        run(code, storage, fit=ops.fit)
        query = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    a = Q()\n    y = fit(x, alpha=a)\n"
        frame = run(query, storage, fit=ops.fit, Q=Q)["q"].df()
        assert sorted(rows(frame)) == [(1, 0.5, 2), (2, 0.5, 4), (3, 0.7, 6)]
        table = storage.df(ops.fit)
        assert sorted(zip(table.x, table.alpha)) == [(1, 0.5), (2, 0.5), (3, 0.7)]

    def test_a_query_variable_given_to_an_ignored_argument_names_the_argument(self, storage: Storage) -> None:
        """It said the variable was "not an argument of any op call", naming neither."""

        @op(ignore=("verbose",))
        def noisy(x, verbose=False):
            return x + 1

        run("import mandala_ast\nwith storage.run():\n    y = noisy(1, verbose=True)\n", storage, noisy=noisy)
        query = "import mandala_ast\nwith storage.query() as q:\n    talk = Q()\n    y = noisy(Q(), verbose=talk)\n"
        with pytest.raises(QueryError, match=r"noisy, argument 'verbose': the op ignores it .* talk"):
            run(query, storage, noisy=noisy)

    def test_a_column_under_an_if_on_a_stored_value_shows_its_ids(self, storage: Storage) -> None:
        """Shown as ids, stored values were not loaded, so `if x:` read None for x: the column
        assigned under it was None in every row, and a delete block kept its calls."""
        from mandala_ast.runtime.hashing import content_id

        code = """\
            import mandala_ast
            with storage.{block}:
                for x in [0, 1]:
                    y = inc(x)
                    if x:
                        z = inc(y)
            """
        run(code.format(block="run()"), storage)
        q = run(code.format(block="query() as q"), storage)["q"]
        assert sorted(rows(q.df("x", "z", values="ids")), key=str) == sorted(
            [(content_id(0).hex(), None), (content_id(1).hex(), content_id(3).hex())], key=str)
        # the row-wise evaluation (any pattern the column-wise one cannot take) agrees
        assert list(q.row_table(["x", "z"], True)[0][1]) == q.df("x", "z", values="ids")["z"].tolist()

    def test_a_guarded_call_with_a_new_parameters_default_finds_the_older_calls(
        self, storage: Storage, tmp_path: Path, monkeypatch
    ) -> None:
        """A call under an `if` is looked up per row with its inputs joined one by one; an
        input the older calls have no row for must still read as the parameter's default."""
        import importlib

        monkeypatch.syspath_prepend(str(tmp_path))
        module = tmp_path / "query_guarded_defaults_ops.py"
        module.write_text("from mandala_ast import op\n\n@op\ndef fit(x):\n    return x * 2\n")
        ops = importlib.import_module("query_guarded_defaults_ops")
        code = """\
            import mandala_ast
            with storage.{block}:
                for x in [1, 2]:
                    y = inc(x)
                    for alpha in [0.5]:
                        if x > 1:
                            z = fit(y{alpha})
            """
        run(code.format(block="run()", alpha=""), storage, fit=ops.fit)
        module.write_text("from mandala_ast import op\n\n@op\ndef fit(x, alpha=0.5):\n    return x * 2\n")
        ops = importlib.reload(ops)
        storage = Storage(storage.path)  # as in a new process
        frame = run(code.format(block="query() as q", alpha=", alpha=alpha"), storage, fit=ops.fit)["q"].df()
        assert sorted(rows(frame), key=str) == [(1, 2, 0.5, None), (2, 3, 0.5, 6)]

    def test_an_elif_condition_is_evaluated_only_when_no_branch_ran(self, storage: Storage) -> None:
        """`elif x.attr > 0` was evaluated even after `if x is None` ran its branch."""
        code = """\
            import mandala_ast
            from types import SimpleNamespace

            for x in [None, SimpleNamespace(attr=2)]:
                with {block} as q:
                    n = 3
                    if x is None:
                        y = inc(1)
                    elif x.attr > 0:
                        y = inc(2)
                    elif x.missing:
                        y = inc(4)
                    if n > 2:
                        z = inc(5)
                    elif n.missing:
                        z = inc(6)
            """
        assert run(code.format(block="Session().query()"), storage)["y"] == 3
        run("import mandala_ast\nwith storage.run():\n    y = inc(2)\n    z = inc(5)\n", storage)
        assert rows(run(code.format(block="storage.query()"), storage)["q"].df("y", "z")) == [(3, 6)]

    def test_a_comparison_chain_stops_at_its_first_false_comparison(self, storage: Storage) -> None:
        """`0 < len(xs) < xs[0]` evaluated xs[0] although 0 < len(xs) was false."""
        code = """\
            import mandala_ast

            calls = []

            def seen(v):
                calls.append(v)
                return v

            xs = []
            with {block} as q:
                a = 0 < len(xs) < xs[0]
                b = seen(1) < seen(2) > seen(3) < seen(4)
                y = inc(1)
                if 0 < 1 < seen(5):
                    z = inc(2)
            """
        ns = run(code.format(block="Session().query()"), storage)
        assert (ns["a"], ns["b"], ns["calls"]) == (False, False, [1, 2, 3, 5])
        run("import mandala_ast\nwith storage.run():\n    y = inc(1)\n    z = inc(2)\n", storage)
        ns = run(code.format(block="storage.query()"), storage)
        assert (ns["calls"], rows(ns["q"].df("y", "z"))) == ([1, 2, 3, 5], [(2, 3)])

    def test_walrus_await_and_yield_keep_their_meaning_in_and_or_and_statements(self, storage: Storage) -> None:
        """`and`/`or` operands and statement arguments were lambdas: `(m := g()) and m` raised
        NameError, `await` in them made the module fail to compile, `yield` in them was lost."""
        import asyncio

        code = """\
            import mandala_ast

            async def five():
                return 5

            async def main(out):
                with Session().query():
                    out.append(True and await five())
                    out.append(await five())
                    out.append((m := 3) and m + 1)
                    out.append(m)
                return out

            def gen():
                with Session().query():
                    print((yield 1))
                    y = True and (yield 2)
                    z = False or (yield 3)
                yield (y, z)
            """
        ns = run(code, storage)
        assert asyncio.run(ns["main"]([])) == [5, 5, 4, 3]
        g = ns["gen"]()
        assert [next(g), g.send("a"), g.send("b"), g.send("c")] == [1, 2, 3, ("b", "c")]

    def test_conditions_spanning_lines_compile_and_run(self, storage: Storage) -> None:
        """They moved lines, so the module was not compiled at all."""
        code = """\
            import mandala_ast

            with {block} as q:
                for x in [1, 2, 9]:
                    y = inc(x)
                    if (y > 2
                            and not
                            x
                            > 5):
                        z = inc(y)
                c = (1 <
                     2)
            """
        ns = run(code.format(block="Session().query()"), storage)
        assert (ns["y"], ns["z"], ns["c"]) == (10, 4, True)
        run("import mandala_ast\nwith storage.run():\n    for x in [1, 2, 9]:\n        y = inc(x)\n        z = inc(y)\n", storage)
        frame = run(code.format(block="storage.query()"), storage)["q"].df("x", "z")
        assert rows(frame) == [(1, None), (2, 4), (9, None)]

    def test_a_method_op_of_a_query_variable_is_refused_not_run(self, storage: Storage) -> None:
        """`mm.predict(x)` with mm an op's output became a derived column: the query ran the op
        body per row and showed rows for calls that were never stored."""
        code = """\
            import mandala_ast
            with storage.{block}:
                mm = scaler(7)
                for x in {xs}:
                    y = mm.predict(x)
            """
        run(code.format(block="run()", xs=[1]), storage, scaler=_scaler)
        _Scaler.RAN.clear()
        q = run(code.format(block="query() as q", xs=[1, 2, 3]), storage, scaler=_scaler)["q"]
        with pytest.raises(QueryError, match="Scaler.predict: a query cannot call an op on a value it loaded"):
            q.df()
        assert _Scaler.RAN == []

    def test_a_list_of_variables_is_a_column_of_lists(self, storage: Storage) -> None:
        """`zs = [inc(v) for v in [1, 2]]` made the frame fail hashing query variables."""
        code = """\
            import mandala_ast
            with storage.{block}:
                zs = [inc(v) for v in [1, 2]]
            """
        run(code.format(block="run()"), storage)
        q = run(code.format(block="query() as q"), storage)["q"]
        assert rows(q.df()) == [([2, 3],)]
        assert len(q.matched_calls()) == 2

    def test_a_single_comparison_result_is_not_turned_into_a_truth_value(self, storage: Storage) -> None:
        """`arr > 1` called bool() on the result, which a numpy array refuses."""
        np = pytest.importorskip("numpy")
        code = """\
            import mandala_ast

            with {block} as q:
                a = arr(3)
                mask = a > 0
                both = 0 < 1 < a
            """
        names = {"arr": _array}
        ns = run(code.format(block="Session().query()"), storage, **names)
        assert ns["mask"].tolist() == ns["both"].tolist() == [True, True, True]
        run("import mandala_ast\nwith storage.run():\n    a = arr(3)\n", storage, **names)
        frame = run(code.format(block="storage.query()"), storage, **names)["q"].df("mask", "both")
        assert [(m.tolist(), b.tolist()) for m, b in rows(frame)] == [([True] * 3, [True] * 3)]
        assert isinstance(frame["mask"].iloc[0], np.ndarray)

    def test_a_numpy_array_column_does_not_break_the_frame(self, storage: Storage) -> None:
        """`None in column` compared each numpy array with None elementwise and raised."""
        np = pytest.importorskip("numpy")
        names = {"arr": _array}
        code = "import mandala_ast\nwith storage.{block}:\n    for n in [1, 2]:\n        a = arr(n)\n"
        run(code.format(block="run()"), storage, **names)
        frame = run(code.format(block="query() as q"), storage, **names)["q"].df()
        assert [(n, a.tolist()) for n, a in rows(frame)] == [(1, [1.0, 1.0, 1.0]), (2, [2.0, 2.0, 2.0])]
        assert isinstance(frame.a.iloc[0], np.ndarray)


@op
def _array(n: int) -> Any:
    import numpy as np

    return np.full(3, float(n))


class _Scaler:
    RAN: list = []

    def __init__(self, k: int) -> None:
        self.k = k

    @op
    def predict(self, x: int) -> int:
        _Scaler.RAN.append(x)
        return x * self.k


@op
def _scaler(k: int) -> _Scaler:
    return _Scaler(k)


@op
def np_value(x: int) -> Any:
    import numpy as np

    return np.float64(x)


class TestBranches:
    """What a query refuses or expands around `if` statements (regressions from review)."""

    def test_a_numpy_warning_in_rows_a_failing_if_leaves_out_is_not_emitted(self, storage: Storage) -> None:
        """`if x != 0: r = 8 / y` with y a numpy float: the column-wise evaluation computed 8 / 0.0
        for the row the `if` leaves out and numpy warned "divide by zero", which the query
        block's own logic never computes (a Python float raises there: numpy only warns)."""
        run("import mandala_ast\nwith storage.run():\n    for x in [0, 2, 4]:\n        y = np_value(x)\n", storage,
            np_value=np_value)
        code = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = np_value(x)\n{line}\n"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            guarded = run(code.format(line="    if x != 0:\n        r = 8 / y"), storage, np_value=np_value)["q"].df()
        assert [str(w.message) for w in caught] == []
        assert rows(guarded) == [(0, 0.0, None), (2, 2.0, 4.0), (4, 4.0, 2.0)]
        with pytest.warns(RuntimeWarning, match="divide by zero"):  # as the block's code warns
            unguarded = run(code.format(line="    r = 8 / y"), storage, np_value=np_value)["q"].df()
        assert rows(unguarded)[1:] == [(2, 2.0, 4.0), (4, 4.0, 2.0)]

    def test_an_expression_under_an_if_is_computed_only_where_the_if_holds(self, storage: Storage) -> None:
        """Columns are computed a column at a time; `1 / x` raises where x is 0, and only an
        `if x != 0:` around it keeps that row from computing it, as in a run block."""
        run("import mandala_ast\nwith storage.run():\n    for x in [0, 2, 4]:\n        y = inc(x)\n", storage)
        code = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = inc(x)\n{line}\n"
        guarded = run(code.format(line="    if x != 0:\n        r = 8 / x"), storage)["q"].df()
        assert rows(guarded) == [(0, 1, None), (2, 3, 4.0), (4, 5, 2.0)]
        with pytest.raises(ZeroDivisionError):
            run(code.format(line="    r = 8 / x"), storage)["q"].df()

    def test_workflow_comparing_a_variable_is_refused_not_misrouted(self, storage: Storage) -> None:
        """A @workflow body is compiled for run blocks: `n == 3` there compared the variable
        object (False), silently taking the wrong branch in a query."""

        @workflow
        def branchy(n):
            if n == 3:
                return inc(n)
            return add(n, 1)

        with pytest.raises(QueryError, match="compared in code compiled for run blocks only"):
            run("import mandala_ast\nwith storage.query() as q:\n    n = Q()\n    y = branchy(n)\n",
                storage, branchy=branchy)

    def test_value_from_an_if_used_after_it_is_refused(self, storage: Storage) -> None:
        """`if c: y = f(x) else: y = g(x)` then `h(y)` matched only the else-branch's rows."""
        code = """\
            import mandala_ast
            with storage.{block}:
                for x in [1, 2, 3]:
                    if x > 1:
                        y = inc(x)
                    else:
                        y = mul(x)
                    z = add(y, 10)
            """
        run(code.format(block="run()"), storage)
        with pytest.raises(QueryError, match="computed under an `if` and is used after it"):
            run(code.format(block="query() as q"), storage)

    @pytest.mark.parametrize("after", ["t = z + 1", "t = z", "t = abs(z)", "if z > 0:\n        t = 1", "if z:\n        t = 1"])
    def test_value_from_an_if_used_after_it_in_an_expression_is_refused(self, storage: Storage, after: str) -> None:
        """`if y > 2: z = add(y, 100)` then `t = z + 1`: the row whose y is 2 showed z None
        beside t = 103, computed from the add(2, 100) its `if` had left out (and an `else`
        assigning z made t None in the rows the `if` branch gave z)."""
        code = """\
            import mandala_ast
            with storage.{block}:
                for x in [1, 2, 3]:
                    y = inc(x)
                    z = add(y, 100)
            """
        run(code.format(block="run()"), storage)
        query = "import mandala_ast\nwith storage.query() as q:\n    y = inc(Q())\n    if y > 2:\n        z = add(y, 100)\n    {after}\n"
        with pytest.raises(QueryError, match="z was computed under an `if` and is used after it"):
            run(query.format(after=after), storage)["q"].df()

    def test_value_from_an_if_may_feed_expressions_inside_it(self, storage: Storage) -> None:
        run("import mandala_ast\nwith storage.run():\n    for x in [1, 2, 3]:\n        z = add(inc(x), 100)\n", storage)
        frame = run("""\
            import mandala_ast
            with storage.query() as q:
                y = inc(Q())
                if y > 2:
                    z = add(y, 100)
                    t = z + 1
                    if z > 103:
                        u = z
            """, storage)["q"].df()
        assert rows(frame) == [(2, None, None, None), (3, 103, 104, None), (4, 104, 105, 104)]

    def test_value_from_before_an_if_may_be_used_inside_it(self, storage: Storage) -> None:
        code = """\
            import mandala_ast
            with storage.{block}:
                for x in [1, 2, 3]:
                    y = inc(x)
                    if x > 1:
                        if y > 2:
                            z = add(y, 10)
            """
        run(code.format(block="run()"), storage)
        frame = run(code.format(block="query() as q"), storage)["q"].df()
        assert rows(frame) == [(1, 2, None), (2, 3, 13), (3, 4, 14)]

    def test_loop_variable_used_only_under_if_keeps_every_value(self, storage: Storage) -> None:
        """A loop variable only guarded calls use took its values from the calls that matched,
        so the rows whose condition failed were missing."""
        code = """\
            import mandala_ast
            with storage.{block}:
                a = inc(100)
                for x in [1, 2, 3]:
                    if x > 1:
                        y = add(a, x)
            """
        run(code.format(block="run()"), storage)
        frame = run(code.format(block="query() as q"), storage)["q"].df()
        assert sorted(rows(frame), key=lambda r: r[1]) == [(101, 1, None), (101, 2, 103), (101, 3, 104)]


@op
def total(xs: list) -> int:
    return sum(xs)


@op
def pair(a: int) -> tuple[int, int]:
    return a, a + 1


@op
def pair_whole(a: int):
    """One output (no tuple annotation) that happens to be a tuple."""
    return a, a + 1


class TestValuesTakenApart:
    """The run block, then the same code as a query: the query gives the rows the block made."""

    def test_slice_bounded_by_a_loop_variable_gives_the_computed_rows(self, storage: Storage) -> None:
        """``xs[:k]`` with k a loop variable raised TypeError (slice indices must be integers)."""
        code = """\
            import mandala_ast
            with storage.{block}:
                xs = [1, 2, 3]
                for k in [1, 2]:
                    t = total(xs[:k])
                    seen.append((k, t))
            """
        seen: list = []
        run(code.format(block="run()"), storage, total=total, seen=seen)
        frame = run(code.format(block="query() as q"), storage, total=total, seen=[])["q"].df("k", "t")
        assert sorted(rows(frame)) == sorted(seen) == [(1, 1), (2, 3)]

    def test_variable_key_of_a_plain_dict_and_of_an_output(self, storage: Storage) -> None:
        code = """\
            import mandala_ast
            with storage.{block}:
                table = {{1: [5], 2: [6, 7]}}
                for k in [1, 2]:
                    xs = load(k + 1)
                    t = total(table[k])
                    u = total(xs[1:k + 1])
                    seen.append((k, t, u))
            """
        seen: list = []
        run(code.format(block="run()"), storage, total=total, seen=seen)
        frame = run(code.format(block="query() as q"), storage, total=total, seen=[])["q"].df("k", "t", "u")
        assert sorted(rows(frame)) == sorted(seen) == [(1, 5, 1), (2, 13, 3)]

    def test_outputs_of_a_two_output_op_taken_by_index_give_the_computed_rows(self, storage: Storage) -> None:
        """``b = pair(a); mul(b[0], b[1])`` returned no rows, even for the block's own code."""
        code = """\
            import mandala_ast
            with storage.{block}:
                for a in [1, 2]:
                    b = pair(a)
                    c = mul(b[0], b[1])
                    seen.append((a, c))
            """
        seen: list = []
        run(code.format(block="run()"), storage, pair=pair, seen=seen)
        frame = run(code.format(block="query() as q"), storage, pair=pair, seen=[])["q"].df("a", "c")
        assert sorted(rows(frame)) == sorted(seen) == [(1, 2), (2, 6)]

    def test_provenance_names_the_producer_of_each_indexed_output(self, storage: Storage) -> None:
        """provenance(mul) showed b[0] and b[1] with no producer and exact=True."""
        run("import mandala_ast\nwith storage.run():\n    b = pair(3)\n    c = mul(b[0], b[1])\n", storage, pair=pair)
        prov = storage.provenance(mul).sort_values("input")
        assert list(prov["producer_op"]) == [pair.name, pair.name]
        assert list(prov["output_index"]) == [0, 1]
        assert prov["exact"].all()

    def test_parts_of_a_one_output_tuple_give_the_computed_rows(self, storage: Storage) -> None:
        code = """\
            import mandala_ast
            with storage.{block}:
                for a in [1, 2]:
                    b = pair_whole(a)
                    c = mul(b[0], b[1])
                    seen.append((a, c))
            """
        seen: list = []
        run(code.format(block="run()"), storage, pair_whole=pair_whole, seen=seen)
        query = run(code.format(block="query() as q"), storage, pair_whole=pair_whole, seen=[])
        assert sorted(rows(query["q"].df("a", "c"))) == sorted(seen) == [(1, 2), (2, 6)]

    def test_provenance_of_parts_of_a_one_output_tuple_is_not_claimed_exact(self, storage: Storage) -> None:
        """provenance(mul) showed b[0] and b[1] with no producer and exact=True: compiled code
        does not know which call produced a part of a single tuple output."""
        run("import mandala_ast\nwith storage.run():\n    b = pair_whole(3)\n    c = mul(b[0], b[1])\n",
            storage, pair_whole=pair_whole)
        prov = storage.provenance(mul)
        assert len(prov) == 2 and not prov["exact"].any()


def test_a_query_read_after_another_storage_deleted_some_of_its_rows_shows_the_rows_left(storage, tmp_path):
    # The matched rows were kept from the first read; their values, deleted meanwhile, were
    # then looked up one by one: a raw LookupError ("value ... is missing").
    q = run("""\
        import mandala_ast
        with storage.run():
            for n in [10, 20, 30]:
                data = load(n)
        with storage.query() as q:
            n = Q()
            data = load(n)
    """, storage)["q"]
    assert sorted(q.df(values="ids")["n"]) == sorted(content_id(n).hex() for n in (10, 20, 30))
    other = Storage(tmp_path / "results.db")
    frame = other.df(load)
    other.delete_calls(frame[frame["n"] == 20])
    assert sorted(rows(q.df())) == [(10, list(range(10))), (30, list(range(30)))]


BIG = 3 << 20


@op
def big(n: int) -> bytes:
    return bytes([n]) * BIG


def test_queries_while_another_process_deletes_and_recomputes_only_see_whole_rows(storage, tmp_path):
    # Rows matched, then their values (value files too) deleted by another process before
    # they were read: a raw LookupError, or a CorruptValueError calling a deleted file corrupt.
    churn = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from mandala_ast import Storage
        from test_query import big
        storage = Storage(sys.argv[1])
        until = time.monotonic() + 6
        while time.monotonic() < until:
            with storage.run():
                for n in range(8):
                    big(n)
            frame = storage.df(big)
            storage.delete_calls(frame[frame["n"] % 2 == 0])
            time.sleep(0.05)
        print("done", flush=True)
    """)
    with storage.run():
        big(1)
    churner = subprocess.Popen([sys.executable, "-c", churn, str(tmp_path / "results.db")], stdout=subprocess.PIPE, text=True)
    found = 0
    while churner.poll() is None:
        q = run("""\
            import mandala_ast
            with storage.query() as q:
                n = Q()
                b = big(n)
        """, storage, big=big)["q"]
        for n, b in rows(q.df()):
            assert b == bytes([n]) * BIG
            found += 1
    assert churner.stdout.read() == "done\n" and churner.returncode == 0
    assert found


@op(nout=2)
def split_two(n: int) -> tuple[int, int]:
    return n, n + 1


def test_unpacking_an_op_into_more_names_than_its_outputs_in_a_query_names_the_op(storage) -> None:
    # `a, b, c = split_two(x)` said only "cannot unpack (<query variable _1>, <query variable
    # _2>) into a, b, c": no op, no count.
    source = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    a, b, c = split_two(x)\n"
    with pytest.raises(QueryError, match=r"outputs of .*split_two into a, b, c.*has 2 outputs, not 3"):
        run(source, storage, split_two=split_two)


class TestLoops:
    """A query runs a loop's body once, for every step at once: a value one step hands to the
    next cannot be a pattern (there is one node per call in the body, not one per step)."""

    CHAIN = """\
        import mandala_ast
        with storage.{block}:
            x = 0
            for i in range(3):
                x = inc(x)
        """

    def test_value_carried_from_one_loop_step_to_the_next_is_refused_not_matched_as_one_step(self, storage: Storage) -> None:
        """`x = inc(x)` in a loop computed inc(0), inc(1), inc(2); the same code as a query
        gave three rows of x = 1 (inc(0) once per i), none of the values the block ended with."""
        run(self.CHAIN.format(block="run()"), storage)
        with pytest.raises(QueryError, match=r"user_code.py:5: .*`x` .*carried from one step of the `for` loop"):
            run(self.CHAIN.format(block="query() as q"), storage)

    def test_value_carried_through_an_if_or_an_inner_loop_is_refused(self, storage: Storage) -> None:
        for body in ("if i > 0:\n            x = inc(x)", "for j in [1, 2]:\n            x = add(x, j)",
                     "y = inc(x)\n        x = add(y, 1)"):
            code = f"import mandala_ast\nwith storage.query() as q:\n    x = 0\n    for i in range(3):\n        {body}\n"
            with pytest.raises(QueryError, match="carried from one step"):
                run(code, storage)

    def test_value_assigned_before_its_use_in_the_same_step_is_matched(self, storage: Storage) -> None:
        """What each step computes afresh (and the loop variable itself, rebound) is no carry."""
        run("import mandala_ast\nwith storage.run():\n    for x in [1, 2]:\n        y = inc(x)\n        y = add(y, x)\n", storage)
        q = run("""\
            import mandala_ast
            with storage.query() as q:
                for x in [1, 2]:
                    y = inc(x)
                    y = add(y, x)
                    z = [v for v in (x, y)]
            """, storage)["q"]
        assert rows(q.df("x", "y")) == [(1, 3), (2, 5)]


def test_a_query_beside_an_uncompiled_call_of_equal_content_adds_no_row_without_the_if_branch() -> None:
    """`inc(0)` stored by uncompiled code first, then a compiled block computing inc(add(0, 0))
    and inc(0): its query also showed a row whose `if v1 > 0: v7 = inc(v1)` found no call (v7
    None), which the run block never computed: the uncompiled call matched v1 by content.
    (Found by test_round_trip_beside_calls_other_code_stored_gives_exactly_the_computed_tuples.)
    The row-wise evaluation agrees, and the row left out counts its calls in the row shown."""
    storage = Storage()
    exec("with storage.run():\n    inc(0)\n", {"storage": storage, "inc": inc})
    body = ("    v0 = add(0, 0)\n    v1 = inc(v0)\n    v2 = inc(0)\n    v7 = None\n    if v1 > 0:\n"
            "        v7 = inc(v1)\n    ROWS.append({'v0': v0, 'v1': v1, 'v2': v2, 'v7': v7})\n")
    computed: list[dict] = []
    run("import mandala_ast\nwith storage.run():\n" + body, storage, ROWS=computed)
    q = run("import mandala_ast\nwith storage.query() as q:\n" + body, storage, ROWS=[])["q"]
    frame = q.df()
    assert frame.to_dict("records") == computed == [{"v0": 0, "v1": 1, "v2": 1, "v7": 2}]
    columns, calls = q.row_table(list(frame.columns), False)
    assert [list(c) for c in columns] == [[0], [1], [1], [2]]
    assert len(calls[0]) == 4 and set(calls[0]) == set(frame.attrs["mandala_ast.calls"][0])  # add, inc x3


def _logged_double(x: int) -> int:  # one function, decorated with and without ignore_env
    return x * 2 + len(os.environ.get("MANDALA_TEST_LOG", ""))


def test_a_query_matches_calls_stored_before_ignore_env_after_the_ignored_variable_changed(tmp_path, monkeypatch):
    # They hold the variable as a dependency; the op ignores it now, so run blocks, storage.df
    # and why serve them: the query must find them too.
    monkeypatch.setenv("MANDALA_TEST_LOG", "a")
    code = "import mandala_ast\nwith storage.{block}:\n    for x in [1, 2]:\n        y = double(x)\n"
    run(code.format(block="run()"), Storage(tmp_path / "s.db"), double=op(_logged_double))
    monkeypatch.setenv("MANDALA_TEST_LOG", "bbb")
    storage, later = Storage(tmp_path / "s.db"), op(ignore_env="MANDALA_TEST_LOG")(_logged_double)
    assert "hit" in str(storage.why(later, 1))
    frame = run(code.format(block="query() as q"), storage, double=later)["q"].df()
    assert rows(frame) == [(1, 3), (2, 5)]


@op
async def fetch(x: int) -> int:
    return x * 10


def test_a_query_over_an_async_op_finds_the_calls_a_run_block_awaited(storage) -> None:
    """An async op in a query block was taken for a plain function: it was called (a coroutine
    never awaited), so `x = Q()` fed no op (a QueryError) and a chain through it found no row."""
    run("""\
        import asyncio, mandala_ast

        async def main():
            async with storage.run():
                for x in [1, 2]:
                    y = await fetch(x)
                    z = add(y, x)

        asyncio.run(main())
        """, storage, fetch=fetch)
    code = "import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = fetch(x)\n{more}"
    only = run(code.format(more=""), storage, fetch=fetch)["q"].df()
    chain = run(code.format(more="    z = add(y, x)\n"), storage, fetch=fetch)["q"].df()
    assert sorted(rows(only)) == [(1, 10), (2, 20)]
    assert sorted(rows(chain)) == [(1, 10, 11), (2, 20, 22)]


def test_a_delete_block_naming_an_async_op_deletes_its_calls(storage) -> None:
    """Taken for a plain function, the async op matched nothing and nothing was deleted."""
    run("import asyncio, mandala_ast\n"
        "async def main():\n    async with storage.run():\n        for x in [1, 2]:\n"
        "            y = await fetch(x)\n"
        "asyncio.run(main())\n", storage, fetch=fetch)
    ns = run("import mandala_ast\nwith storage.delete() as d:\n    y = fetch(2)\n", storage, fetch=fetch)
    assert ns["d"].report.calls == 1
    assert storage.df(fetch)["x"].tolist() == [1]


@op
async def split(x: int) -> tuple[int, int]:
    return x // 2, x % 2


def test_a_query_awaiting_async_ops_as_the_run_block_did_finds_its_calls(storage) -> None:
    """The run block's code word for word, `await` included, raised TypeError: a query
    variable could not be awaited."""
    code = """\
        import asyncio, mandala_ast

        async def main():
            {kind} storage.{block}:
                for x in [3, 4]:
                    y = await fetch(x)
                    a, b = await split(y)
                    z = add(a, b)
            return {result}

        out = asyncio.run(main())
        """
    run(code.format(kind="async with", block="run()", result="None"), storage, fetch=fetch, split=split)
    q = run(code.format(kind="with", block="query() as q", result="q"), storage, fetch=fetch, split=split)["out"]
    assert sorted(rows(q.df())) == [(3, 30, 15, 0, 15), (4, 40, 20, 0, 20)]


def test_an_async_with_query_block_written_as_the_run_block_finds_its_calls(storage) -> None:
    """`async with storage.query() as q:`, as the async function's run block was written,
    raised TypeError: the query block had no asynchronous context manager protocol."""
    code = """\
        import asyncio, mandala_ast

        async def main():
            async with storage.{block}:
                for x in [3, 4]:
                    y = await fetch(x)
            return {result}

        out = asyncio.run(main())
        """
    run(code.format(block="run()", result="None"), storage, fetch=fetch)
    q = run(code.format(block="query() as q", result="q"), storage, fetch=fetch)["out"]
    assert sorted(rows(q.df())) == [(3, 30), (4, 40)]
    run(code.format(block="delete() as q", result="q"), storage, fetch=fetch)
    assert storage.df(fetch).empty


def test_an_uncompiled_async_with_query_block_says_it_needs_compiling(storage) -> None:
    import asyncio

    async def main():
        async with storage.query():
            pass

    with pytest.raises(QueryError, match="compile"):
        asyncio.run(main())


@op
async def fetch_noted(x: int) -> int:
    RUNS.append(("fetch_noted", x))
    return x * 10


@workflow
async def fetched_sum(x: int) -> int:
    y = await fetch_noted(x)
    return add(y, x)


def test_a_query_through_an_async_workflow_matches_its_async_op_instead_of_running_it(storage) -> None:
    """The workflow's body called the async op as a plain function in the query block: its
    body ran on the query variable (formatting it raised; here, its rows came out of that
    run, not of the stored calls)."""
    code = """\
        import asyncio, mandala_ast

        async def main():
            async with storage.{block}:
                {x}
                z = await fetched_sum(x)
            return {result}

        out = asyncio.run(main())
        """
    names = dict(fetched_sum=fetched_sum)
    for x in [1, 2]:
        run(code.format(block="run()", x=f"x = {x}", result="None"), storage, **names)
    RUNS.clear()
    q = run(code.format(block="query() as q", x="x = Q()", result="q"), storage, **names)["out"]
    assert sorted(rows(q.df())) == [(1, 11), (2, 22)] and RUNS == []


def test_an_async_op_s_outputs_kept_under_one_name_show_as_a_plain_tuple(storage) -> None:
    """`pair = split(y)`, as a batch block writes it: its column held the query block's own
    awaitable tuple class, a private type, in the user's table."""
    code = "import mandala_ast\nwith storage.{block}:\n    x = {x}\n    y = fetch(x)\n    pair = split(y)\n"
    run(code.format(block="batch(progress=False)", x="3"), storage, fetch=fetch, split=split)
    frame = run(code.format(block="query() as q", x="Q()"), storage, fetch=fetch, split=split)["q"].df()
    assert rows(frame) == [(3, 30, (15, 0))] and type(frame["pair"][0]) is tuple
