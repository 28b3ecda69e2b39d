"""Builders for the text the compiled code contains (docs/compiled-runtime-contract.md).

Everything generated here is single-line, so inserting it never moves original code to another
line. Copies of user expressions (the op branch of a call) go through :func:`one_line`, which
flattens line breaks inside brackets, drops comments and turns multi-line string literals into
equivalent one-line literals.
"""

from __future__ import annotations

import ast
import functools
import warnings
from typing import Sequence, Union

import libcst as cst

__all__ = [
    "RT",
    "as_argument",
    "dispatch",
    "forget",
    "forget_each",
    "literal",
    "one_line",
    "ret",
    "rt_call",
]

#: The global name compiled code uses for ``mandala_ast.runtime.compiled``.
RT = "__mandala_rt__"
#: The loop variable of the generator that forgets ``for`` targets (a dunder: never mangled).
_ITEM = "__mandala_item__"

Literal = Union[None, str, tuple]


@functools.lru_cache(maxsize=4096)
def literal(value: Literal) -> cst.BaseExpression:
    """A constant ``None`` / string / (nested) tuple as a node (specs and keys)."""
    if value is None:
        return cst.Name("None")
    if isinstance(value, str):
        return cst.SimpleString(repr(value))
    return cst.Tuple([cst.Element(literal(item)) for item in value])


def rt_call(function: str, args: Sequence[cst.Arg]) -> cst.Call:
    """``__mandala_rt__.<function>(*args)``."""
    return cst.Call(cst.Attribute(cst.Name(RT), cst.Name(function)), args)


def as_argument(node: cst.BaseExpression) -> cst.BaseExpression:
    """*node*, parenthesised if it is not valid as one argument among several.

    An unparenthesised tuple (``a, b = x, y``), ``yield`` or sole-argument generator expression
    (``f(x for x in y)``) must gain brackets once it becomes one argument of a runtime call.
    """
    if isinstance(node, (cst.Tuple, cst.GeneratorExp, cst.Yield)) and not node.lpar:
        return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return node


def dispatch(
    function: str,
    spec: Literal,
    func: cst.BaseExpression,
    op_args: Sequence[cst.Arg],
    plain: cst.BaseExpression,
    *,
    class_test: bool,
) -> cst.IfExp:
    """``(__mandala_rt__.<function>(spec, f, ...) if type(f) in __mandala_rt__.OPS else <plain>)``.

    *class_test* spells the test ``f.__class__ in ...`` for scopes that rebind ``type``.
    """
    op_call = rt_call(function, [cst.Arg(literal(spec)), cst.Arg(func), *op_args])
    if class_test:
        kind: cst.BaseExpression = cst.Attribute(func, cst.Name("__class__"))
    else:
        kind = cst.Call(cst.Name("type"), [cst.Arg(func)])
    test = cst.Comparison(
        kind, [cst.ComparisonTarget(cst.In(), cst.Attribute(cst.Name(RT), cst.Name("OPS")))]
    )
    return cst.IfExp(
        test=test, body=op_call, orelse=plain, lpar=[cst.LeftParen()], rpar=[cst.RightParen()]
    )


def forget(keys: Sequence[str], value: cst.BaseExpression) -> cst.BaseExpression:
    """``__mandala_rt__.forget(k1, __mandala_rt__.forget(k2, value))``."""
    for key in reversed(keys):
        value = rt_call("forget", [cst.Arg(literal(key)), cst.Arg(as_argument(value))])
    return value


def ret(key: str | None, value: cst.BaseExpression) -> cst.Call:
    """``__mandala_rt__.ret(key, value)`` for ``return value`` in a workflow."""
    return rt_call("ret", [cst.Arg(literal(key)), cst.Arg(as_argument(value))])


def forget_each(keys: Sequence[str], iterable: cst.BaseExpression, *, is_async: bool) -> cst.GeneratorExp:
    """``(forget(k, __mandala_item__) for __mandala_item__ in (iterable))`` for loop targets.

    A generator keeps the loop's own line and semantics (``iter()`` is called once, up front)
    while forgetting the targets' provenance before every iteration.
    """
    if not iterable.lpar:
        iterable = iterable.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    comp_for = cst.CompFor(
        target=cst.Name(_ITEM),
        iter=iterable,
        asynchronous=cst.Asynchronous() if is_async else None,
    )
    return cst.GeneratorExp(forget(keys, cst.Name(_ITEM)), comp_for)


# -- one-line copies ---------------------------------------------------------------------------


def one_line(node: cst.CSTNodeT) -> cst.CSTNodeT | None:
    """A copy of *node* that renders on one line, or None if that is impossible.

    Impossible only for f-strings (and t-strings) that themselves span lines.
    """
    flattener = _OneLine()
    flat = node.visit(flattener)
    return None if flattener.failed else flat  # type: ignore[return-value]


class _OneLine(cst.CSTTransformer):
    """Replace every line break (and comment) inside an expression by a single space."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def leave_ParenthesizedWhitespace(
        self, original_node: cst.ParenthesizedWhitespace, updated_node: cst.ParenthesizedWhitespace
    ) -> cst.SimpleWhitespace:
        return cst.SimpleWhitespace(" ")

    def leave_SimpleWhitespace(
        self, original_node: cst.SimpleWhitespace, updated_node: cst.SimpleWhitespace
    ) -> cst.SimpleWhitespace:
        if "\\" in updated_node.value:  # backslash continuation
            return cst.SimpleWhitespace(" ")
        return updated_node

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        if "\n" in updated_node.value or "\r" in updated_node.value:
            return cst.SimpleString(_one_line_literal(updated_node.value))
        return updated_node

    def visit_FormattedString(self, node: cst.FormattedString) -> bool:
        if _spans_lines(node):
            self.failed = True
        return False  # nothing inside an f-string is ever rewritten

    def visit_TemplatedString(self, node: cst.CSTNode) -> bool:
        if _spans_lines(node):
            self.failed = True
        return False


def _spans_lines(node: cst.CSTNode) -> bool:
    code = cst.Module([]).code_for_node(node)
    return "\n" in code or "\r" in code


def _one_line_literal(token: str) -> str:
    """``'''a\\nb'''`` -> ``'a\\nb'``: the same constant, spelled on one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes were already reported for the original
        return repr(ast.literal_eval(token))
