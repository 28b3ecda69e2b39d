"""Before/after tests for the run-form rewrite (``_run_form.py``), libcst-codemod style."""

from __future__ import annotations

import textwrap

import pytest
from cstutil import rewrite

RT_IMPORT = "import mandala_ast.runtime.compiled as __mandala_rt__; __mandala_callee__ = __mandala_rt__.callee_at"
HEAD = f"{RT_IMPORT}; import mandala_ast\n"


def check(before: str, after: str) -> None:
    """*before* rewrites to exactly *after* (both dedented) and stays line-stable."""
    result = rewrite(before)
    assert result.source == textwrap.dedent(after).replace("<HEAD>", HEAD)
    assert result.changed


def d(f: str, spec: str, args: str) -> str:
    """The dispatch form the contract specifies: the callee and the arguments, each once."""
    return f"__mandala_callee__({spec}, {f})({args})"


class TestCalls:
    def test_single_call_assigned(self) -> None:
        """``y = inc(1)``: the target's key and a None key for the literal."""
        check(
            """\
            import mandala_ast
            with storage.run():
                y = inc(1)
            """,
            f"""\
            <HEAD>with storage.run():
                y = {d("inc", "'<module>', (('y',), (None,), None)", "1")}
            """,
        )

    def test_contract_example(self) -> None:
        """The example of docs/compiled-runtime-contract.md (the inner call names its parent's site)."""
        inner = d("inc", "'<module>', (None, (None,), None, None, (1, 1))", "2")
        # y's key, and `...` for a call: whatever it is, only an op's hand-over gives its history
        check(
            """\
            import mandala_ast
            with storage.run():
                w = add(y, inc(2))
                print(w)
            """,
            f"""\
            <HEAD>with storage.run():
                w = {d("add", "'<module>', (('w',), ('y', ...), None, 1, None)", f"y, {inner}")}
                print(w)
            """,
        )

    def test_tuple_targets_keywords_and_attribute_callee(self) -> None:
        """``a, b = m.split(x, frac=f)`` names both targets and the keyword's key."""
        spec = "'<module>', (('a', 'b'), ('x',), (('frac', 'f'),))"
        check(
            """\
            import mandala_ast
            with self.storage:
                a, b = m.split(x, frac=f)
            """,
            f"""\
            <HEAD>with self.storage:
                a, b = {d("m.split", spec, "x, frac=f")}
            """,
        )

    @pytest.mark.parametrize("opener", ["Storage(path)", "mandala_ast.Storage('r.db')"])
    def test_with_storage_constructor_is_a_block(self, opener: str) -> None:
        """``with Storage(path):`` runs the block in a fresh storage: a candidate too."""
        spec = "'<module>', (('y',), (None,), None)"
        check(
            f"""\
            import mandala_ast
            with {opener}:
                y = inc(1)
            """,
            f"""\
            <HEAD>with {opener}:
                y = {d("inc", spec, "1")}
            """,
        )

    def test_other_context_managers_are_left_alone(self) -> None:
        source = "import mandala_ast\nwith open(path) as f:\n    y = inc(1)\n"
        assert rewrite(source).source == source

    def test_indexed_name_argument_has_a_key_and_index(self) -> None:
        """``mul(b[0], k=b[1])``: output i of an op with several outputs assigned to ``b``;
        ``b[x]`` may be an op's output too, whose history the runtime cannot know: ``...``."""
        check(
            """\
            import mandala_ast
            with storage:
                mul(b[0], b[x], k=b[1])
            """,
            f"""\
            <HEAD>with storage:
                {d("mul", "'<module>', (None, (('b', 0), ...), (('k', ('b', 1)),))", "b[0], b[x], k=b[1]")}
            """,
        )

    def test_star_args_have_no_positional_keys(self) -> None:
        """``*args`` makes positions unknown: ``pos_keys`` is ``...``; ``**kw`` adds ``('**',
        ...)``, and every keyword written is listed (None: raw), so the others came from it."""
        check(
            """\
            import mandala_ast
            with storage:
                f(*xs, k=v, **kw)
            """,
            f"""\
            <HEAD>with storage:
                {d("f", "'<module>', (None, ..., (('k', 'v'), ('**', ...)))", "*xs, k=v, **kw")}
            """,
        )

    @pytest.mark.parametrize("call", ["print(x)", "len(x)", "isinstance(x, int)", "range(3)", "str.join(s, x)"])
    def test_builtins_are_not_rewritten(self, call: str) -> None:
        """Builtins the module does not rebind are called as written."""
        source = f"import mandala_ast\nwith storage:\n    {call}\n"
        result = rewrite(source)
        assert result.source == source and not result.changed

    def test_rebound_builtin_is_rewritten(self) -> None:
        """``from numpy import *`` or ``def sum`` may turn a builtin name into anything."""
        result = rewrite("import mandala_ast\ndef len(x): ...\nwith storage:\n    len(x)\n")
        assert "__mandala_callee__('<module>', (None, ('x',), None), len)(x)" in result.source

    @pytest.mark.parametrize("call", ["super().f()", "locals()", "vars()", "eval('1')"])
    def test_frame_sensitive_calls_never_rewritten(self, call: str) -> None:
        """``super()``, ``locals()``... depend on the calling frame: never moved."""
        source = f"import mandala_ast\nsuper = locals = vars = eval = 1\nwith storage:\n    {call}\n"
        result = rewrite(source)
        assert result.source == source

    def test_deep_nesting_is_rewritten_without_copies(self) -> None:
        """Nothing is copied, so every level is rewritten and the text grows linearly."""
        result = rewrite("import mandala_ast\nwith storage:\n    f1(f2(f3(f4(f5(f6(x))))))\n")
        line = result.source.splitlines()[2]
        assert line.count("__mandala_callee__(") == 6
        assert line.count("(x)") == 1

    def test_with_items_of_the_block_are_not_rewritten(self) -> None:
        """``storage.run(...)`` itself is not an op call."""
        result = rewrite("import mandala_ast\nwith storage.run(opt=make()):\n    pass\n")
        assert not result.changed

    def test_query_and_delete_blocks_get_the_query_form_not_the_run_form(self) -> None:
        """Even nested in a run block, a query/delete body is never in the run form."""
        source = textwrap.dedent(
            """\
            import mandala_ast
            with storage.query() as q:
                y = inc(x)
            with storage.run():
                with storage.delete():
                    y = inc(x)
            """
        )
        lines = rewrite(source).source.splitlines()
        expected = "y = __mandala_rt__.q_name('y', __mandala_rt__.q_call(inc)(x))"
        assert lines[2].strip() == lines[5].strip() == expected

    def test_rebinding_type_changes_nothing(self) -> None:
        """The runtime, not the compiled code, tests the callee's type."""
        result = rewrite("import mandala_ast\ntype = 'x'\nwith storage:\n    f(1)\n")
        assert "__mandala_callee__('<module>', (None, (None,), None), f)(1)" in result.source

    def test_decorators_annotations_defaults_and_fstrings_untouched(self) -> None:
        """Not data flow, or unsafe to rewrite (postponed annotations, f-string quotes)."""
        source = textwrap.dedent(
            """\
            import mandala_ast
            with storage:
                @deco(arg())
                def g(x: T(1) = d()) -> R(): ...
                s = f"{h(x)}"
            """
        )
        assert rewrite(source).source == source


class TestLineStability:
    def test_multiline_call_keeps_its_arguments_on_their_lines(self) -> None:
        """Nothing is copied: comments, arguments and the closing bracket stay where they are."""
        source = """\
            import mandala_ast
            with storage:
                y = f(a,  # first
                      g(b),
                )
            """
        lines = rewrite(source).source.splitlines()
        assert lines[2].endswith(", f)(a,  # first")
        assert lines[3].strip() == "__mandala_callee__('<module>', (None, ('b',), None, None, (1, 1)), g)(b),"
        assert lines[4].strip() == ")"

    def test_multiline_strings_stay_as_written(self) -> None:
        """Triple-quoted and f-string arguments spanning lines are left in place."""
        for argument in ('"""a\n b\n"""', 'f"""{a}\n"""'):
            result = rewrite(f"import mandala_ast\nwith storage:\n    y = f({argument})\n")
            assert f", f)({argument})" in result.source and not result.diagnostics

    def test_parenthesized_multiline_value(self) -> None:
        """User parentheses spanning lines stay in place."""
        rewrite("import mandala_ast\nwith storage:\n    y = (\n        f(x)\n    )\n")

    def test_backslash_continuation(self) -> None:
        """A callee continued with a backslash stays as written, inside the runtime call."""
        result = rewrite("import mandala_ast\nwith storage:\n    y = obj.\\\n        f(x)\n")
        assert "__mandala_callee__('<module>', (('y',), ('x',), None), obj.\\\n        f)(x)" in result.source
        compile(result.source, "m.py", "exec")

    def test_generator_argument_stays_the_sole_argument(self) -> None:
        """``f(x for x in y)`` is valid only as the sole argument: the call keeps it so."""
        result = rewrite("import mandala_ast\nwith storage:\n    f(x for x in y)\n")
        compile(result.source, "m.py", "exec")
        assert ", f)(x for x in y)" in result.source


class TestScopesAndKeys:
    def test_function_scope_and_global(self) -> None:
        """A spec names the call's scope, and the keys of that scope's own variables by their
        bare names; a variable of another scope (``global`` included) gets its whole key."""
        result = rewrite(
            """\
            import mandala_ast
            def main():
                global g
                with storage:
                    y = inc(x)
                    g = inc(y)
            """
        )
        assert "'main', (('y',), ('x@<module>',), None)" in result.source
        assert "'main', (('g@<module>',), ('y',), None)" in result.source

    def test_methods_nested_functions_lambdas_comprehensions(self) -> None:
        """Qualnames follow ``__qualname__``: ``C.m``, ``f.<locals>.g``, ``<lambda>``..."""
        result = rewrite(
            """\
            import mandala_ast
            class C:
                def m(self, x):
                    with self.storage:
                        def g(z):
                            return inc(z, x)
                        h = lambda q: inc(q)
                        ys = [inc(e) for e in x]
            """
        )
        source = result.source
        assert "'C.m.<locals>.g', (None, ('z', 'x@C.m'), None)" in source
        assert "'C.m.<locals>.<lambda>', (None, ('q',), None)" in source
        assert "'C.m.<locals>.<listcomp>', (None, ('e',), None, None, (1, '*'))" in source
        assert "'C.m', (('h',)" not in source  # a lambda is not a call

    def test_class_body_inside_block(self) -> None:
        """Class-level names get the class's scope."""
        result = rewrite("import mandala_ast\nwith storage:\n    class K:\n        y = inc(1)\n")
        assert "'K', (('y',), (None,), None)" in result.source


class TestContainerStores:
    """``xs.append(...)`` on a function's list, dict or set that nothing rebinds is never an op
    call: only its arguments are rewritten."""

    def test_append_to_a_list_bound_once_is_not_rewritten(self) -> None:
        check(
            """\
            import mandala_ast
            def main(xs):
                scores, seen, best = [], set(), {}
                results = []
                with storage:
                    for x in xs:
                        results.append(inc(x))
                        results.extend([x])
                        results.insert(0, x)
                        results.index(x)
            """,
            f"""\
            <HEAD>def main(xs):
                scores, seen, best = [], set(), {{}}
                results = []
                with storage:
                    for x in xs:
                        results.append({d("inc", "'main', (None, ('x',), None)", "x")})
                        results.extend([x])
                        results.insert(0, x)
                        {d("results.index", "'main', (None, ('x',), None)", "x")}
            """,
        )

    @pytest.mark.parametrize("container", ["{}", "{1}", "[x for x in xs]", "{x: 1 for x in xs}"])
    def test_dict_and_set_displays_and_comprehensions(self, container: str) -> None:
        result = rewrite(
            f"import mandala_ast\ndef main(xs):\n    d = {container}\n    with storage:\n"
            "        d.update(xs)\n        d.add(xs)\n        d.setdefault(xs)\n"
        )
        assert "__mandala_callee__" not in result.source

    def test_from_a_nested_function_lambda_or_comprehension(self) -> None:
        """The variable is the enclosing function's: still a list."""
        result = rewrite(
            """\
            import mandala_ast
            def main(xs):
                out = []
                with storage:
                    def keep(x):
                        out.append(x)
                    [out.append(x) for x in xs]
                    f = lambda x: out.add(x)
            """
        )
        assert "__mandala_callee__" not in result.source

    @pytest.mark.parametrize(
        "binding",
        [
            "out = []\n    out = make()",  # bound twice
            "out = make()",  # not a display
            "out: list = []\n    out += [1]",  # augmented assignment rebinds
            "global out\n    out = []",  # a global: other code may rebind it
            "out = []\n    def g():\n        nonlocal out\n        out = make()",
            "out = []\n    del out",
            "out = []\n    for out in xs: pass",
        ],
    )
    def test_rebindable_names_are_still_rewritten(self, binding: str) -> None:
        result = rewrite(f"import mandala_ast\ndef main(xs):\n    {binding}\n    with storage:\n        out.append(1)\n")
        assert "__mandala_callee__('main', (None, (None,), None), out.append)(1)" in result.source

    def test_module_level_and_parameter_containers_are_still_rewritten(self) -> None:
        """A module's variable can be rebound from anywhere; a parameter can be anything."""
        result = rewrite(
            "import mandala_ast\nout = []\ndef main(acc=[]):\n    with storage:\n        acc.append(1)\n"
            "with storage:\n    out.append(1)\n"
        )
        assert result.source.count("__mandala_callee__(") == 2


class TestForget:
    def test_reassignments(self) -> None:
        """Non-op assignments to names that receive op outputs forget their provenance; those
        of a value no op produced say so (``raw``: such a y is raw, exactly). ``y += 1`` may
        grow an op's list in place: forgotten."""
        check(
            """\
            import mandala_ast
            with storage:
                y = inc(1)
                y = y + 1
                y += 1
                y: int = 2
                z = y
            """,
            f"""\
            <HEAD>with storage:
                y = __mandala_rt__.settle('y@<module>', {d("inc", "'<module>', (('y',), (None,), None)", "1")})
                y = __mandala_rt__.raw('y@<module>', y + 1)
                y += __mandala_rt__.forget('y@<module>', 1)
                y: int = __mandala_rt__.raw('y@<module>', 2)
                z = y
            """,
        )

    def test_for_target_and_walrus(self) -> None:
        """Loop targets are forgotten per iteration (a literal loop's are raw); walrus
        assignments like any other (at module level, where a walrus anywhere may rebind a name
        the runtime never hears of, nothing is said raw)."""
        check(
            """\
            import mandala_ast
            def f():
                with storage:
                    for y in ys:
                        y = inc(y)
                    for y in [8, 9]:
                        pass
                    if (y := 3):
                        pass
            with storage:
                x = inc(1)
                if (x := 3):
                    pass
            """,
            f"""\
            <HEAD>def f():
                with storage:
                    for y in (__mandala_rt__.forget('y@f', __mandala_item__) for __mandala_item__ in (ys)):
                        y = __mandala_rt__.settle('y@f', {d("inc", "'f', (('y',), ('y',), None)", "y")})
                    for y in (__mandala_rt__.raw('y@f', __mandala_item__) for __mandala_item__ in ([8, 9])):
                        pass
                    if (y := __mandala_rt__.raw('y@f', 3)):
                        pass
            with storage:
                x = {d("inc", "'<module>', (('x',), (None,), None)", "1")}
                if (x := __mandala_rt__.forget('x@<module>', 3)):
                    pass
            """,
        )

    def test_with_as_and_match_captures_forget_before_they_bind(self) -> None:
        """``with cm as y`` and ``case y`` rebind y: its op history was kept, and a plain value
        that is the same object (a small int, a string) was recorded as that op's output."""
        check(
            """\
            import mandala_ast
            with storage:
                y = inc(1)
                with nullcontext(2) as y, open(p) as f:
                    pass
                match a, b:
                    case [1, y] if y > 0:
                        pass
                    case {"k": 1, **y}:
                        pass
            """,
            f"""\
            <HEAD>with storage:
                y = __mandala_rt__.settle('y@<module>', {d("inc", "'<module>', (('y',), (None,), None)", "1")})
                with __mandala_rt__.forget('y@<module>', {d("nullcontext", "'<module>', (None, (None,), None)", "2")}) as y, open(p) as f:
                    pass
                match __mandala_rt__.forget('y@<module>', (a, b)):
                    case [1, y] if y > 0:
                        pass
                    case {{"k": 1, **y}}:
                        pass
            """,
        )

    def test_tuple_value_is_parenthesized(self) -> None:
        """``a, b = b, a`` keeps its meaning inside ``forget(...)``."""
        result = rewrite("import mandala_ast\nwith storage:\n    a, b = f(1)\n    a, b = b, a\n")
        assert "forget('a@<module>', __mandala_rt__.forget('b@<module>', (b, a)))" in result.source

    def test_no_forget_for_names_never_bound_by_ops(self) -> None:
        """Plain code stays plain."""
        source = "import mandala_ast\nwith storage:\n    y = 1\n    y += 2\n"
        assert rewrite(source).source == source


class TestWorkflows:
    @pytest.mark.parametrize(
        "imports, decorator",
        [
            ("from mandala_ast import workflow", "@workflow"),
            ("from mandala_ast import workflow as wf", "@wf"),
            ("import mandala_ast as ma", "@ma.workflow"),
            ("import mandala_ast", "@mandala_ast.workflow"),
            ("import mandala_ast.runtime", "@mandala_ast.workflow()"),
        ],
    )
    def test_aliases(self, imports: str, decorator: str) -> None:
        """The decorator is resolved through the module's imports."""
        result = rewrite(f"{imports}\n{decorator}\ndef pipe(x):\n    y = inc(x)\n    return y\n")
        assert "'pipe', (('y',), ('x',), None)" in result.source
        assert "return __mandala_rt__.ret('y@pipe', y)" in result.source

    def test_unrelated_workflow_decorator_is_ignored(self) -> None:
        """A ``workflow`` that does not come from mandala_ast is someone else's."""
        source = "import mandala_ast\nfrom elsewhere import workflow\n@workflow\ndef pipe(x):\n    return inc(x)\n"
        assert rewrite(source).source == source

    def test_ret_only_in_the_workflow_itself(self) -> None:
        """Nested functions return normally; non-name returns get a None key."""
        result = rewrite(
            """\
            from mandala_ast import workflow
            @workflow
            def pipe(x):
                def helper():
                    return x
                return inc(x), 2
            """
        )
        assert "return x\n" in result.source
        assert "return __mandala_rt__.ret_all(('<return0>@pipe', None), (__mandala_callee__('pipe', (('<return0>',)," in result.source

    def test_returned_op_calls_and_tuples_of_names_keep_their_history(self) -> None:
        """``return inc(x)`` and ``return a, b`` gave the caller's names no history (raw inputs)."""
        check(
            """\
            from mandala_ast import workflow
            @workflow
            def direct(x):
                return inc(x)
            @workflow
            def pair(x):
                a = inc(x)
                return a, a[0], 3
            """,
            f"""\
            {RT_IMPORT}; from mandala_ast import workflow
            @workflow
            def direct(x):
                return __mandala_rt__.ret('<return>@direct', {d("inc", "'direct', (('<return>',), ('x',), None)", "x")})
            @workflow
            def pair(x):
                a = {d("inc", "'pair', (('a',), ('x',), None)", "x")}
                return __mandala_rt__.ret_all(('a@pair', ('a@pair', 0), None), (a, a[0], 3))
            """,
        )


def put(spec: str, name: str, value: str) -> str:
    return f"__mandala_rt__.put({spec}, {name})({value})"


class TestFilledStepByStep:
    """``ys = []`` then ``ys.append(op(x))`` (``insert``, ``extend``, ``+=``, ``d[k] = ...``):
    the adding hands the element's history to the runtime (an odd-length spec ``(scope, list
    key, element key, site, form)``: the callee's or ``put``'s); a call given the list says so
    (a last item ``1``); the list's key is ``?ys`` (runtime/grown.py)."""

    def test_each_way_of_adding_hands_its_elements_history_to_the_runtime(self) -> None:
        one = d("double", "'<module>', (None, ('x',), None, None, (1, 0))", "x")
        listed = d("double", "'<module>', (None, ('x',), None, None, (2, 0))", "x")
        built = f"__mandala_rt__.built(('<module>', None, (...,), None, 2, (3, 0)), 'd')([{listed}])"
        keyed = d("double", "'<module>', (None, ('x',), None, None, (4, 0))", "x")
        step = d("double", "'<genexpr>', (None, ('x',), None, None, (5, '*'))", "x")
        check(
            """\
            import mandala_ast
            with storage.run():
                ys = []
                d = {}
                for x in xs:
                    ys.append(double(x))
                    ys += [double(x)]
                    d[x] = double(x)
                    ys.insert(0, x)
                ys.extend(double(x) for x in xs)
                helper(ys)
                t = total(ys, d)
                print(len(ys))
            """,
            f"""\
            <HEAD>with storage.run():
                ys = []
                d = {{}}
                for x in xs:
                    {d("ys.append", "'<module>', ('ys', ..., 1)", one)}
                    ys += {put("('<module>', 'ys', ..., 3, 'e')", "ys", built)}
                    d[x] = {put("('<module>', 'd', ..., 4, 'a')", "d", keyed)}
                    {d("ys.insert", "'<module>', ('ys', 'x')", "0, x")}
                {d("ys.extend", "'<module>', ('ys', ..., 5)", f"{step} for x in xs")}
                {d("helper", "'<module>', (None, ('?ys',), None, True)", "ys")}
                t = {d("total", "'<module>', (('t',), ('?ys', '?d'), None, True)", "ys, d")}
                print(len(ys))
            """,
        )

    def test_a_list_filled_out_of_sight_gets_its_key_and_no_hooks(self) -> None:
        """``zs = ys``: what ``zs.append`` adds, ``ys`` holds; neither is followed, the op given
        ``ys`` records its elements as of unknown producer."""
        check(
            """\
            import mandala_ast
            def main(xs):
                ys = []
                zs = ys
                with storage:
                    for x in xs:
                        zs.append(inc(x))
                    total(ys)
            """,
            f"""\
            <HEAD>def main(xs):
                ys = []
                zs = ys
                with storage:
                    for x in xs:
                        {d("zs.append", "'main', (None, (...,), None, 1, None)", d("inc", "'main', (None, ('x',), None, None, (1, 0))", "x"))}
                    {d("total", "'main', (None, ('?ys',), None)", "ys")}
            """,
        )

    @pytest.mark.parametrize(
        "use",
        ["ys = [0]", "ys[1:] = [inc(1)]", "ys[0] += 1", "out = [ys]", "f = lambda: ys", "ys[0], b = inc(1), 2",
         "ys[0]: int = inc(1)", "for ys[0] in xs: pass", "with cm as ys[0]: pass", "ys.update(xs)", "fs[0](ys)",
         "other.append(ys)"],
    )
    def test_a_use_that_may_add_out_of_sight_leaves_the_list_unfollowed(self, use: str) -> None:
        result = rewrite(f"import mandala_ast\ndef main(xs):\n    ys = []\n    {use}\n    with storage:\n"
                         "        ys.append(inc(1))\n        total(ys)\n")
        assert "('?ys',), None)" in result.source and "'ys', " not in result.source

    def test_a_list_of_plain_values_is_left_as_it_was(self) -> None:
        check(
            """\
            import mandala_ast
            def main(xs):
                ys = []
                with storage:
                    for x in range(3):
                        ys.append(x * 2)
                    total(ys)
            """,
            f"""\
            <HEAD>def main(xs):
                ys = []
                with storage:
                    for x in range(3):
                        ys.append(x * 2)
                    {d("total", "'main', (None, (None,), None)", "ys")}
            """,
        )


BUILT_Y = "__mandala_rt__.built(('<module>', None, ('y',), None, None, (1, 2)), 'd')([y])"


class TestUnprovenArguments:
    """An argument without a history the runtime can know is raw (None) only if no op can have
    produced it; else it keeps its key or gets ``...``, and the call is recorded inexact."""

    def test_an_output_through_a_helper_an_await_or_a_list_is_not_raw(self) -> None:
        """``y = helper(make(1))``, ``await``, ``for e in ys``, ``ys[i]``, ``obj.attr``, ``+y``,
        ``y or 2``, ``f"{y}"`` and ``str(y)`` may all be an op's very output. (``a = await
        fetch(y)`` binds ``a`` as a plain op call would: the spec names it.)"""
        helper = d("helper", "'f', (('y',), (...,), None, 1, None)", d("make", "'f', (None, (None,), None, None, (1, 0))", "1"))
        check(
            """\
            import mandala_ast
            async def f():
                with storage:
                    y = helper(make(1))
                    a = await fetch(y)
                    for e in ys:
                        use(y, a, e)
                    use(ys[i], obj.attr, +y, y or 2, f"{y}", str(y))
            """,
            f"""\
            <HEAD>async def f():
                with storage:
                    y = {helper}
                    a = await {d("fetch", "'f', (('a',), ('y',), None)", "y")}
                    for e in ys:
                        {d("use", "'f', (None, ('y', 'a', 'e'), None)", "y, a, e")}
                    {d("use", "'f', (None, (..., ..., ..., ..., ..., ...), None)", 'ys[i], obj.attr, +y, y or 2, f"{y}", str(y)')}
            """,
        )

    def test_literals_literal_loops_and_computed_values_are_raw(self) -> None:
        """A literal loop's value, a module constant, an operator's result, a new container,
        ``len()``, a formatted text: no op's output. (The new container ``[y]`` hands the
        call its element's history, if any: runtime/built.py.)"""
        check(
            """\
            import mandala_ast
            N = 3
            with storage:
                for n, s in [(1, "a"), (2, "b")]:
                    for i in range(N):
                        use(n, s, i, N)
                use(y + 1, -y, [y], len(ys), f"n={y}", None)
            """,
            f"""\
            <HEAD>N = 3
            with storage:
                for n, s in [(1, "a"), (2, "b")]:
                    for i in range(N):
                        {d("use", "'<module>', (None, (None, None, None, None), None)", "n, s, i, N")}
                {d("use", "'<module>', (None, (None, None, None, None, None, None), None, 1, None)", 'y + 1, -y, ' + BUILT_Y + ', len(ys), f"n={y}", None')}
            """,
        )

    def test_a_name_bound_elsewhere_too_is_not_raw(self) -> None:
        """A module name a function rebinds (``global``), a walrus rebinds, or bound to a list
        (which code may fill with outputs) and looped over; a parameter."""
        check(
            """\
            import mandala_ast
            G = 1
            W = 2
            XS = [1, 2]
            def g():
                global G
                G = make(1)
            def f(p):
                with storage:
                    if (W := make(2)):
                        for x in XS:
                            use(G, W, x, p)
            """,
            f"""\
            <HEAD>G = 1
            W = 2
            XS = [1, 2]
            def g():
                global G
                G = make(1)
            def f(p):
                with storage:
                    if (W := {d("make", "'f', (('W',), (None,), None)", "2")}):
                        for x in XS:
                            {d("use", "'f', (None, ('G@<module>', 'W', 'x', 'p'), None)", "G, W, x, p")}
            """,
        )

    def test_a_name_code_outside_the_blocks_may_rebind_is_never_said_raw(self) -> None:
        """``G = 0`` in a block, where a function elsewhere sets ``global G`` to anything (the
        very same 0 an op returned): ``raw`` would vouch for what G holds then; forgotten."""
        check(
            """\
            import mandala_ast
            def setter():
                global G
                G = helper()
            with storage:
                G = make(1)
                G = 0
            """,
            f"""\
            <HEAD>def setter():
                global G
                G = helper()
            with storage:
                G = __mandala_rt__.settle('G@<module>', {d("make", "'<module>', (('G',), (None,), None)", "1")})
                G = __mandala_rt__.forget('G@<module>', 0)
            """,
        )

    def test_an_operator_result_that_may_be_an_operand_itself_is_not_raw(self) -> None:
        """``y + 1`` is new whatever y is; ``"" + s``, ``y * 1``, ``"%s" % s`` may be the operand
        itself (a str, a tuple); ``y % 2`` may equal y; ``i + j`` of raw names is raw."""
        check(
            """\
            import mandala_ast
            with storage:
                for i in range(3):
                    use(y + 1, -y, i + i, "" + s, y * 1, "%s" % s, y % 2)
            """,
            f"""\
            <HEAD>with storage:
                for i in range(3):
                    {d("use", "'<module>', (None, (None, None, None, ..., ..., ..., ...), None)", 'y + 1, -y, i + i, "" + s, y * 1, "%s" % s, y % 2')}
            """,
        )
