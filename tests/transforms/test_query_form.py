"""The query form as before/after source strings (transforms/_query_form.py)."""

from __future__ import annotations

import textwrap

from mandala_ast.transforms import TransformResult, check_line_stable, transform_source

RT = "__mandala_rt__"


def rewrite(source: str) -> TransformResult:
    """Transform and check line stability. (Statement kinds may change here: `if` becomes a
    `for` over its branch; so no per-statement check as in cstutil.)"""
    result = transform_source(source, "m.py")
    check_line_stable(source, result.source)
    return result


def body(source: str) -> list[str]:
    """The rewritten lines of a query block's body, stripped (import line excluded)."""
    result = rewrite("import mandala_ast\nwith storage.query() as q:\n" + textwrap.indent(textwrap.dedent(source), "    "))
    assert result.changed
    return [line.strip() for line in result.source.splitlines()[2:]]


class TestStatements:
    def test_header_marks_the_block_compiled(self) -> None:
        result = rewrite("import mandala_ast\nwith storage.query() as q, open('f') as f:\n    pass\n")
        assert result.source.splitlines()[1] == f"with {RT}.query_block(storage.query()) as q, open('f') as f:"

    def test_delete_block_header(self) -> None:
        result = rewrite("import mandala_ast\nwith storage.delete():\n    y = inc(1)\n")
        assert result.source.splitlines()[1] == f"with {RT}.query_block(storage.delete()):"

    def test_assignment_names_its_value(self) -> None:
        assert body("y = inc(x)\n") == [f"y = {RT}.q_name('y', {RT}.q_call(inc)(x))"]

    def test_subscript_with_a_variable_key_wraps_its_value(self) -> None:
        """A list cannot take a query variable as an index or slice bound: ``q_item`` sees it first."""
        assert body("t = total(xs[:k])\n") == [f"t = {RT}.q_name('t', {RT}.q_call(total)({RT}.q_item(xs)[:k]))"]
        assert body("t = d[k, 1]\n") == [f"t = {RT}.q_name('t', {RT}.q_item(d)[k, 1])"]

    def test_subscript_with_literal_keys_stays_as_written(self) -> None:
        assert body("c = mul(b[0], b[-1], d['a'], xs[1:], xs[::2])\n") == [
            f"c = {RT}.q_name('c', {RT}.q_call(mul)(b[0], b[-1], d['a'], xs[1:], xs[::2]))"
        ]

    def test_tuple_assignment(self) -> None:
        assert body("a, b = split(x)\n") == [f"a, b = {RT}.q_names(('a', 'b'), {RT}.q_call(split)(x))"]

    def test_expression_statement_is_deferred(self) -> None:
        assert body("print(y, 'x')\n") == [
            f"{RT}.q_stmt_runs(__mandala_f__ := print) and {RT}.q_call(__mandala_f__)(y, 'x')"
        ]

    def test_bare_value_statement_is_left_as_it_is(self) -> None:
        assert body("'a note'\n") == ["'a note'"]

    def test_for_loop_names_its_targets(self) -> None:
        assert body("for n, a in pairs:\n    pass\n")[0] == f"for n, a in {RT}.q_for(('n', 'a'), pairs):"

    def test_if_elif_else_become_branch_loops_on_their_lines(self) -> None:
        lines = body("if a:\n    x = 1\nelif b:\n    x = 2\nelse:\n    x = 3\n")
        assert lines[0] == f"for __mandala_b in (__mandala_c1 := {RT}.q_if(a)):"
        assert lines[2] == "for __mandala_b in (__mandala_c1.elif_(b) if __mandala_c1.open() else ()):"
        assert lines[4] == "for __mandala_b in __mandala_c1.else_():"
        assert lines[5] == f"x = {RT}.q_name('x', 3)"

    def test_nested_functions_are_left_alone(self) -> None:
        lines = body("def helper(v):\n    return f(v) < 2\ny = helper(x)\n")
        assert lines[:2] == ["def helper(v):", "return f(v) < 2"]


class TestExpressions:
    def test_comparison_chain(self) -> None:
        assert body("z = a < b <= c\n") == [f"z = {RT}.q_name('z', {RT}.q_cmp(a, '<', b, '<=', c))"]

    def test_later_operands_of_a_comparison_chain_are_evaluated_only_if_it_holds(self) -> None:
        assert body("z = a < f(b) < g(c) < d\n") == [
            f"z = {RT}.q_name('z', {RT}.q_cmp(a, '<', {RT}.q_call(f)(b), '<*', lambda: {RT}.q_call(g)(c), '<', d))"
        ]

    def test_membership_and_identity(self) -> None:
        assert body("z = a not in b\n") == [f"z = {RT}.q_name('z', {RT}.q_cmp(a, 'not in', b))"]
        assert body("z = a is not None\n") == [f"z = {RT}.q_name('z', {RT}.q_cmp(a, 'is not', None))"]

    def test_boolean_operators_and_not(self) -> None:
        assert body("z = a and not b\n") == [
            f"z = {RT}.q_name('z', {RT}.q_bool_end({RT}.q_bool_start(a, 'and') and {RT}.q_not(b), 'and'))"
        ]

    def test_arithmetic_is_left_to_the_variables(self) -> None:
        assert body("z = x * 2 + 1\n") == [f"z = {RT}.q_name('z', x * 2 + 1)"]


class TestRefusals:
    def test_while_refuses_the_block_and_leaves_its_body(self) -> None:
        result = rewrite("import mandala_ast\nwith storage.query() as q:\n    while x:\n        y = inc(x)\n")
        lines = result.source.splitlines()
        assert lines[1].startswith(f"with {RT}.query_refused(storage.query(), 'm.py:3: a query block cannot contain a `while` loop")
        assert lines[3] == "        y = inc(x)"

    def test_mutating_a_variable_is_refused(self) -> None:
        result = rewrite("import mandala_ast\nwith storage.query() as q:\n    y = inc(x)\n    y.append(1)\n")
        assert "m.py:4: a query block cannot contain `y.append(...)`" in result.source

    def test_mutating_an_outside_object_is_just_skipped(self) -> None:
        """``log.append(y)`` on a name the block does not bind is ordinary Python: skipped."""
        assert body("y = inc(x)\nlog.append(y)\n")[1] == (
            f"{RT}.q_stmt_runs(__mandala_f__ := log.append) and {RT}.q_call(__mandala_f__)(y)"
        )

    def test_break_is_refused(self) -> None:
        result = rewrite("import mandala_ast\nwith storage.query() as q:\n    for x in xs:\n        break\n")
        assert "m.py:4: a query block cannot contain `break`" in result.source


class TestRegressions:
    def test_line_breaks_inside_conditions_stay_on_their_lines(self) -> None:
        """A comparison, `and`/`or` or `not` spanning lines was rebuilt on one line: the
        rewrite moved lines and the whole module fell back to running uncompiled."""
        source = (
            "if (x > 1\n"
            "        and y\n"
            "        < 3):\n"
            "    z = inc(x)\n"
            "c = (x <\n"
            "     3 < f(\n"
            "     y))\n"
            "d = (not\n"
            "     x) or (x\n"
            "            in ys)\n"
            "e = x >= 1 and \\\n"
            "    x < 3\n"
        )
        lines = body(source)
        assert lines[0].endswith(f"{RT}.q_bool_start({RT}.q_cmp(x, '>', 1), 'and')")
        assert lines[1] == f"and {RT}.q_cmp(y,"
        assert lines[2] == "'<', 3), 'and')))):"
        assert lines[4].endswith(f"{RT}.q_cmp(x, '<',")
        assert lines[7].endswith(f"{RT}.q_not(")

