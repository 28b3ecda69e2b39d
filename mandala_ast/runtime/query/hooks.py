"""What compiled query and delete blocks call (re-exported by ``runtime/compiled.py``).

The compiler cannot know whether ``with x.query():`` is ours or, say, a database session's,
so every hook behaves exactly like the plain Python it replaces unless a :class:`QueryBlock`
is active: ``q_call(f, a)`` is ``f(a)``, ``q_for(names, xs)`` is ``xs``, an if-chain runs one
branch. Inside a query block the same hooks build the pattern instead.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator
from typing import Any

from ..._errors import QueryError
from ..blocks import state
from ..ops import Op, Workflow, is_op
from .block import Q, QueryBlock
from .operators import COMPARE, and_, compare_chain, or_
from .pattern import (
    ATOM,
    PRECEDENCE,
    Derived,
    Node,
    OutputVar,
    call_text,
    call_value,
    infix_text,
    operand_text,
    subscript,
)

__all__ = [
    "q_bool_end",
    "q_bool_start",
    "q_call",
    "q_cmp",
    "q_for",
    "q_if",
    "q_item",
    "q_name",
    "q_names",
    "q_not",
    "q_stmt_runs",
    "query_block",
    "query_refused",
]


def _active() -> QueryBlock | None:
    block = state.block
    return block if type(block) is QueryBlock else None


def query_block(item: Any, /) -> Any:
    """``with storage.query() as q:`` compiled: marks our block as compiled code."""
    if type(item) is QueryBlock:
        item.compiled = True
    return item


def query_refused(item: Any, message: str, /) -> Any:
    """A block the compiler found a query cannot mean: our blocks raise, others run as written."""
    if type(item) is QueryBlock:
        raise QueryError(message)
    return item


# -- calls and statements ----------------------------------------------------------------------


def q_call(f: Any, /) -> Any:
    """The callee of a call in a query block (``f(a)`` compiles to ``q_call(f)(a)``): ops
    become pattern nodes, plain functions of variables become derived variables, anything
    else is called as written."""
    block = _active()
    if block is None:
        return f
    return functools.partial(_query_call, block, f)


def _query_call(block: QueryBlock, f: Any, /, *args: Any, **kwargs: Any) -> Any:
    if f is Q:
        return block.pattern.free()
    op, args = _as_op(f, args)
    if op is not None:
        return block.call_op(op, args, kwargs)
    if type(f) is Workflow:
        return f.fn(*args, **kwargs)
    if isinstance(f, Node) or _any_node(args, kwargs):
        callee = operand_text(f, ATOM) if isinstance(f, Node) else _callable_name(f)
        return Derived(block.pattern, call_value, (f, *args), kwargs, text=call_text(callee, args, kwargs))
    return f(*args, **kwargs)


def q_item(value: Any, /) -> Any:
    """The value of a subscript whose key is not a literal (``xs[:k]`` compiles to
    ``q_item(xs)[:k]``): a variable in the key of a plain list or dict (a loop variable as a
    slice bound) makes a derived variable instead of reaching ``list.__getitem__``, which
    accepts only integers."""
    block = _active()
    if block is None or isinstance(value, Node):
        return value
    return _Subscriptable(block, value)


class _Subscriptable:
    """A plain value about to be subscripted in a query block."""

    __slots__ = ("block", "value")

    def __init__(self, block: QueryBlock, value: Any) -> None:
        self.block, self.value = block, value

    def __getitem__(self, key: Any) -> Any:
        if _key_has_node(key):
            return subscript(self.block.pattern, self.value, key)
        return self.value[key]


def _key_has_node(key: Any) -> bool:
    if isinstance(key, Node):
        return True
    if isinstance(key, slice):
        return any(isinstance(b, Node) for b in (key.start, key.stop, key.step))
    return isinstance(key, tuple) and any(map(_key_has_node, key))


def q_stmt_runs(f: Any, /) -> bool:
    """Whether the expression statement ``f(...)`` runs: in a query only op (and workflow)
    calls mean anything; the rest (``print``, logging) is skipped, arguments and all.

    ``f(a)`` compiles to ``q_stmt_runs(__mandala_f__ := f) and q_call(__mandala_f__)(a)``: no
    lambda, so ``await``, ``yield`` and ``:=`` in the arguments keep their meaning."""
    return _active() is None or f is Q or type(f) is Workflow or _as_op(f, ())[0] is not None


def _as_op(f: Any, args: tuple) -> tuple[Op | None, tuple]:
    # An async op is an op too: its stored calls are matched as any op's (called as a plain
    # function, it would only make a coroutine, and the query would find nothing).
    if is_op(f):
        return f, args
    if type(f) is functools.partial and is_op(f.func) and not f.keywords:
        return f.func, (*f.args, *args)  # a method op bound to its instance
    return None, args


def _any_node(args: tuple, kwargs: dict) -> bool:
    return any(isinstance(a, Node) for a in args) or any(isinstance(a, Node) for a in kwargs.values())


def _callable_name(f: Any) -> str:
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or type(f).__name__


# -- names -------------------------------------------------------------------------------------


def q_name(name: str, value: Any, /) -> Any:
    """``name = value``: the variable (or constant) becomes column ``name``."""
    block = _active()
    if block is not None:
        # a list of variables (`zs = [inc(v) for v in xs]`) is a column of lists, per row
        block.pattern.bind(name, _literal_of_nodes(block, value))
    return value


def q_names(names: tuple[str, ...], value: Any, /) -> Any:
    """``a, b = value``."""
    block = _active()
    if block is None:
        return value
    if isinstance(value, Node) or not isinstance(value, (tuple, list)) or len(value) != len(names):
        raise QueryError(_unpack_refusal(names, value))
    for name, item in zip(names, value):
        block.pattern.bind(name, _literal_of_nodes(block, item))
    return value


def _unpack_refusal(names: tuple[str, ...], value: Any) -> str:
    targets = ", ".join(names)
    if isinstance(value, tuple) and value and all(type(item) is OutputVar and item.call is value[0].call for item in value):
        name = value[0].call.op.name
        return (f"cannot unpack the outputs of {name} into {targets} in a query: {name} has "
                f"{len(value)} outputs, not {len(names)}")
    if not isinstance(value, OutputVar):
        return f"cannot unpack {value!r} into {targets} in a query"
    # The body returns a tuple, so the line runs in a run block; but the op stores that tuple
    # as one value, and a query can only name what is stored.
    name = value.call.op.name
    return (
        f"cannot unpack the output of {name} into {targets} in a query: {name} has one output "
        f"(the tuple its body returns, stored as one value). Declare @op(nout={len(names)}) or "
        f"annotate it `-> tuple[...]` with {len(names)} items to store and query its outputs apart"
    )


# -- loops -------------------------------------------------------------------------------------


def q_for(names: tuple[str, ...], iterable: Any, /) -> Any:
    """``for names in iterable``: a literal iterable makes loop variables over its values; a
    query variable holding a collection makes element variables. The body runs once."""
    block = _active()
    if block is None:
        return iterable
    pattern = block.pattern
    if isinstance(iterable, Node):
        from .elements import iterate

        found = iterate(block, iterable, len(names))
    else:
        values = list(iterable)
        if any(isinstance(v, Node) or _holds_any(v) for v in values):
            raise QueryError("a loop over a literal holding query variables cannot be matched")
        found = pattern.domain(values, len(names))
    for name, node in zip(names, found):
        pattern.bind(name, node)
    return [found[0] if len(names) == 1 else found]


def _holds_any(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and any(isinstance(v, Node) for v in value)


# -- if / elif / else --------------------------------------------------------------------------


#: The condition of an ``else``: unlike any value an ``elif`` condition could have (None too).
ELSE = object()


class _Chain:
    """One if/elif/else chain. Compiled code keeps it in a local variable, so recursion and
    threads never share chain state:

        for _ in (__mandala_c := q_if(a)):                           ...
        for _ in (__mandala_c.elif_(b) if __mandala_c.open() else ()):  ...
        for _ in __mandala_c.else_():                                ...
    """

    def __init__(self, condition: Any) -> None:
        self.block = _active()
        self.taken = False  # plain execution: a branch ran
        self._first = self.branch(condition, True)

    def __iter__(self) -> Iterator[None]:
        return self._first

    def open(self) -> bool:
        """Whether an ``elif`` condition must be evaluated: not when a branch certainly ran
        (compiled ``elif d:`` is ``for _ in (c.elif_(d) if c.open() else ()):``, so ``d`` is
        evaluated only where Python would)."""
        if self.block is None:
            return not self.taken
        return self.block.pattern.chain_open(id(self))

    def elif_(self, condition: Any) -> Iterator[None]:
        return self.branch(condition, False)

    def else_(self) -> Iterator[None]:
        return self.branch(ELSE, False)

    def branch(self, condition: Any, first: bool) -> Iterator[None]:
        if self.block is None:
            if not self.taken and (condition is ELSE or condition):
                self.taken = True
                yield None
            return
        pattern = self.block.pattern
        if pattern.enter_branch(id(self), condition, first, otherwise=condition is ELSE):
            try:
                yield None
            finally:
                pattern.leave_branch()


def q_if(condition: Any, /) -> _Chain:
    """The ``if`` of a chain: iterating it runs the branch once, or not at all."""
    return _Chain(condition)


# -- operators Python cannot overload ----------------------------------------------------------

#: Suffix of a comparison symbol whose right operand comes as a thunk (``lambda: c``).
LAZY = "*"


def q_cmp(first: Any, /, *rest: Any) -> Any:
    """``a < b <= c`` as ``q_cmp(a, "<", b, "<=*", lambda: c)``.

    As in Python, each comparison runs once, left to right, and the chain stops at the first
    false one: an operand passed as a thunk (symbol ending in ``*``) is not evaluated then.
    On query variables the chain becomes a derived variable."""
    block = _active()
    left = first if block is None else _literal_of_nodes(block, first)
    operands, symbols = [left], []
    variable = isinstance(left, Node)
    result: Any = True
    for index, (symbol, right) in enumerate(zip(rest[0::2], rest[1::2])):
        if index and not result:  # (only between comparisons: `a < b` alone is never bool()ed)
            return result
        if symbol.endswith(LAZY):
            symbol, right = symbol[: -len(LAZY)], right()
        if block is not None:
            right = _literal_of_nodes(block, right)
        symbols.append(symbol)
        operands.append(right)
        if variable or isinstance(right, Node):
            variable = True  # no value yet: every operand goes into the derived variable
            continue
        result = COMPARE[symbol](left, right)
        left = right
    if not variable:
        return result
    level = PRECEDENCE["=="]
    text = infix_text(tuple(symbols), tuple(operands), level)
    # q_cmp is emitted only in compiled query blocks, where _active() is the block
    return Derived(block.pattern, compare_chain, (tuple(symbols), *operands), text=text, precedence=level)  # type: ignore[union-attr]


def _literal_of_nodes(block: QueryBlock, value: Any) -> Any:
    """``x in [a, b]`` with variables inside the literal: the literal is derived per row."""
    if isinstance(value, (list, tuple, set)) and any(isinstance(v, Node) for v in value):
        # Any tuple is a plain one per row: an async op's outputs come as an awaitable tuple
        # (block.py), a type of the query block's own, not of the user's data.
        kind = tuple if isinstance(value, tuple) else type(value)
        opening, closing = {tuple: ("(", ")"), set: ("{", "}")}.get(kind, ("[", "]"))
        text = opening + ", ".join(operand_text(v) for v in value) + closing
        return Derived(block.pattern, lambda *items: kind(items), tuple(value), text=text)
    return value


class _Undecided:
    """What ``q_bool_start`` gives Python's ``and``/``or`` for a query variable on the left:
    the truth that makes Python evaluate the right operand."""

    __slots__ = ("truth",)

    def __init__(self, truth: bool) -> None:
        self.truth = truth

    def __bool__(self) -> bool:
        return self.truth


_GO_ON = {"and": _Undecided(True), "or": _Undecided(False)}


def q_bool_start(value: Any, word: str, /) -> Any:
    """The left operand of ``a and b`` / ``a or b``, compiled to
    ``q_bool_end(q_bool_start(a, 'and') and b, 'and')``: Python's own operator short-circuits
    (no lambda, so ``:=``, ``await`` and ``yield`` keep their meaning). Outside our query
    blocks both hooks return what they are given."""
    block = _active()
    if block is None:
        return value
    block.bool_lefts.append(value)
    return _GO_ON[word] if isinstance(value, Node) else value


def q_bool_end(result: Any, word: str, /) -> Any:
    """What ``a and b`` / ``a or b`` is: Python's result, or a derived variable when ``a`` is
    a query variable."""
    block = _active()
    if block is None:
        return result
    left = block.bool_lefts.pop()
    if not isinstance(left, Node):
        return result
    combine = and_ if word == "and" else or_
    level = PRECEDENCE[word]
    text = infix_text((word,), (left, result), level)
    return Derived(block.pattern, combine, (left, result), text=text, precedence=level)


def q_not(value: Any, /) -> Any:
    """``not value``."""
    block = _active()
    if block is not None and isinstance(value, Node):
        level = PRECEDENCE["not"]
        text = f"not {operand_text(value, level)}"
        return Derived(block.pattern, operator.not_, (value,), text=text, precedence=level)
    return not value
