"""Builders for the text the compiled code contains (docs/compiled-runtime-contract.md).

Everything generated here is single-line and wraps user code in place, without copying it, so
inserting it never moves original code to another line and every user expression is evaluated
once, where it is written.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import EllipsisType

import libcst as cst

__all__ = [
    "CALLEE",
    "RT",
    "as_argument",
    "built",
    "dispatch",
    "forget",
    "forget_each",
    "literal",
    "put",
    "ret",
    "ret_all",
    "rt_call",
    "settle",
]

#: The global name compiled code uses for ``mandala_ast.runtime.compiled``.
RT = "__mandala_rt__"
#: The global name compiled code calls at every rewritten call site (``compiled.callee_at``):
#: one global load per call instead of a global and an attribute (10 bytes of bytecode less each).
CALLEE = "__mandala_callee__"
#: The loop variable of the generator that forgets ``for`` targets (a dunder: never mangled).
_ITEM = "__mandala_item__"

Literal = None | bool | str | int | tuple | EllipsisType


@functools.lru_cache(maxsize=4096)
def literal(value: Literal) -> cst.BaseExpression:
    """A constant ``None`` / ``True`` / ``...`` / string / int >= 0 / (nested) tuple as a node
    (specs and keys)."""
    if value is None or value is True:
        return cst.Name(repr(value))
    if value is ...:
        return cst.Ellipsis()
    if isinstance(value, str):
        return cst.SimpleString(repr(value))
    if isinstance(value, int):
        return cst.Integer(str(value))
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


def dispatch(scope: str, spec: Literal, call: cst.Call) -> cst.Call:
    """``__mandala_callee__(scope, spec, f)(<args as written>)`` for the call ``f(<args>)``.

    The runtime returns ``f`` itself unless it is an op, so any other callee is still called
    from the user's frame; ``f`` and the arguments are evaluated once, in place.
    """
    callee = cst.Call(cst.Name(CALLEE), [cst.Arg(literal(scope)), cst.Arg(literal(spec)), cst.Arg(call.func)])
    return call.with_changes(func=callee)


def built(spec: Literal, form: str, value: cst.BaseExpression) -> cst.Call:
    """``__mandala_rt__.built(spec, form)(value)`` for a list, tuple or dict display or
    comprehension that may hold op outputs: the hook is evaluated before the collection, whose
    elements' op calls then hand their outputs to it."""
    hook = rt_call("built", [cst.Arg(literal(spec)), cst.Arg(literal(form))])
    return cst.Call(hook, [cst.Arg(as_argument(value))])


def put(spec: Literal, name: str, value: cst.BaseExpression) -> cst.Call:
    """``__mandala_rt__.put(spec, name)(value)`` for what ``name += value`` or
    ``name[k] = value`` adds: the hook is evaluated before ``value``, whose op calls hand it
    their outputs."""
    hook = rt_call("put", [cst.Arg(literal(spec)), cst.Arg(cst.Name(name))])
    return cst.Call(hook, [cst.Arg(as_argument(value))])


def settle(keys: Sequence[str], value: cst.BaseExpression) -> cst.BaseExpression:
    """``__mandala_rt__.settle(k1, __mandala_rt__.settle(k2, value))``."""
    for key in reversed(keys):
        value = rt_call("settle", [cst.Arg(literal(key)), cst.Arg(as_argument(value))])
    return value


def forget(keys: Sequence[str], value: cst.BaseExpression, hook: str = "forget") -> cst.BaseExpression:
    """``__mandala_rt__.forget(k1, __mandala_rt__.forget(k2, value))`` (or ``raw``: *hook*)."""
    for key in reversed(keys):
        value = rt_call(hook, [cst.Arg(literal(key)), cst.Arg(as_argument(value))])
    return value


def ret(key: str | tuple[str, int] | None, value: cst.BaseExpression) -> cst.Call:
    """``__mandala_rt__.ret(key, value)`` for ``return value`` in a workflow."""
    return rt_call("ret", [cst.Arg(literal(key)), cst.Arg(as_argument(value))])


def ret_all(keys: tuple, value: cst.BaseExpression) -> cst.Call:
    """``__mandala_rt__.ret_all(keys, value)`` for ``return a, b`` in a workflow (a key per element)."""
    return rt_call("ret_all", [cst.Arg(literal(keys)), cst.Arg(as_argument(value))])


def forget_each(keys: Sequence[str], iterable: cst.BaseExpression, *, is_async: bool, hook: str = "forget") -> cst.GeneratorExp:
    """``(forget(k, __mandala_item__) for __mandala_item__ in (iterable))`` for loop targets
    (``raw`` instead: *hook*).

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
    return cst.GeneratorExp(forget(keys, cst.Name(_ITEM), hook), comp_for)
