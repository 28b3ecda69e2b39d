"""The pattern a query block builds: variables, op-call nodes, guards and named columns.

Compiled query code runs once, with every op call returning :class:`Node` objects instead of
values, so ordinary control flow builds the pattern: a literal ``for`` loop becomes one
:class:`DomainVar`, ``Q()`` a :class:`FreeVar`, ``y = f(x)`` a :class:`CallNode` whose output
is an :class:`OutputVar`, and plain expressions over variables become :class:`Derived`
variables computed per row once values are loaded. Nothing here touches the database.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from ..._errors import QueryError

__all__ = [
    "CallNode",
    "Const",
    "Derived",
    "DomainVar",
    "ElementKey",
    "FreeVar",
    "Guard",
    "Node",
    "OutputVar",
    "Pattern",
    "call_text",
    "call_value",
    "check_same_branch",
    "check_stored",
    "infix_text",
    "operand_text",
    "subscript",
]


class Node:
    """A query variable: stands for one column of values, never for a value itself."""

    __slots__ = ("guard", "name", "number", "pattern")

    def __init__(self, pattern: Pattern) -> None:
        self.pattern = pattern
        self.number = len(pattern.nodes)
        self.name: str | None = None
        self.guard = pattern.guard
        pattern.nodes.append(self)

    def __repr__(self) -> str:
        return f"<query variable {self.label}>"

    @property
    def label(self) -> str:
        return self.name or f"_{self.number}"

    def __bool__(self) -> bool:
        raise QueryError(
            f"query variable {self.label} has no value while the query block runs: branch on it "
            "only in an `if` statement directly inside the block (compiled to a row filter)"
        )

    def __iter__(self) -> Any:
        raise QueryError(
            f"query variable {self.label} can be iterated only by a `for` loop in the query block"
        )

    def __format__(self, spec: str) -> str:
        raise QueryError(f"query variable {self.label} cannot be formatted: it has no value yet")

    # A query block's own comparisons are compiled into row filters (q_cmp) and never reach
    # these; code compiled for run blocks only (a @workflow body, a helper) would otherwise
    # compare the variable object itself and silently take a wrong branch.
    __hash__ = object.__hash__

    def _compared(self, other: Any) -> Any:
        raise QueryError(
            f"query variable {self.label} is compared in code compiled for run blocks only (a "
            "@workflow body or a helper function called from the query): its value is not known "
            "while the query runs; compare it in the query block itself, where it becomes a row filter"
        )

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _compared

    def __getattr__(self, attribute: str) -> Derived:
        if attribute.startswith("_"):  # protocols (copy, pickle, numpy) must not see a value
            raise AttributeError(attribute)
        text = f"{operand_text(self, ATOM)}.{attribute}"
        return Derived(_pattern_of(self), getattr, (self, attribute), text=text)

    def __getitem__(self, key: Any) -> Derived:
        return subscript(_pattern_of(self), self, key)

    def __call__(self, *args: Any, **kwargs: Any) -> Derived:
        text = call_text(operand_text(self, ATOM), args, kwargs)
        return Derived(_pattern_of(self), call_value, (self, *args), kwargs, text=text)


# -- expression texts (pictures and messages) ----------------------------------------------------

#: Constants in expression texts are cut to this many characters.
TEXT_CHARS = 24
#: Python's operator precedence, loosest first; names, calls and literals bind tightest.
PRECEDENCE = {
    "or": 1, "and": 2, "not": 3,
    **dict.fromkeys(("==", "!=", "<", "<=", ">", ">=", "is", "is not", "in", "not in"), 4),
    "|": 5, "^": 6, "&": 7, "<<": 8, ">>": 8, "+": 9, "-": 9,
    **dict.fromkeys(("*", "/", "//", "%", "@"), 10),
    "unary": 11, "**": 12,
}
ATOM = 13
#: Levels whose operators do not group left to right: comparisons chain, ``**`` groups right.
_NOT_LEFT = frozenset({4, 12})


def operand_text(value: Any, within: int = 0, *, right: bool = False) -> str:
    """How ``value`` reads as an operand of an operator of precedence ``within`` (0: a call
    argument or a whole condition): a variable by its name, an unnamed expression by its own
    text, in parentheses when it binds more loosely, anything else by a short repr.

    >>> operand_text(0.5), operand_text("a" * 40)
    ('0.5', "'aaaaaaaaaaaaaaaaaaaaaa…")
    """
    if isinstance(value, Derived) and value.name is None:
        inner = value.precedence
        loose = inner < within or (inner == within and (right or within in _NOT_LEFT))
        return f"({value.text})" if loose else value.text
    if isinstance(value, Node):
        return value.label
    text = " ".join(repr(value).split())
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def infix_text(symbols: tuple[str, ...], operands: tuple, level: int) -> str:
    """``a < b <= c`` as text: ``operands`` joined by ``symbols`` at precedence ``level``.

    >>> infix_text(("+",), (1, 2), PRECEDENCE["+"])
    '1 + 2'
    """
    parts = [operand_text(operands[0], level)]
    parts += [f"{symbol} {operand_text(o, level, right=True)}" for symbol, o in zip(symbols, operands[1:])]
    return " ".join(parts)


def call_text(callee: str, args: tuple, kwargs: dict) -> str:
    """``f(a, k=b)`` as text, arguments by :func:`operand_text`.

    >>> call_text("len", (1,), {"key": 2})
    'len(1, key=2)'
    """
    parts = [operand_text(a) for a in args]
    parts += [f"{k}={operand_text(v)}" for k, v in kwargs.items()]
    return f"{callee}({', '.join(parts)})"


def subscript(pattern: Pattern, value: Any, key: Any) -> Derived:
    """``value[key]`` computed per row; ``key`` may hold variables, also as slice bounds
    (``xs[:k]``) or tuple items, which become inputs of the derived variable of their own.

    >>> pattern = Pattern(); k = DomainVar(pattern, [1, 2]); k.name = "k"
    >>> subscript(pattern, [5, 6, 7], slice(None, k)).text
    '[5, 6, 7][:k]'
    """
    shape, parts = _key_parts(key)
    text = f"{operand_text(value, ATOM)}[{_key_text(key)}]"
    return Derived(pattern, _subscripted, (value, shape, *parts), text=text)


def _key_parts(key: Any) -> tuple[Any, list]:
    """(shape, parts): the key's pieces in order, and how to put them back together."""
    if isinstance(key, slice):
        return "slice", [key.start, key.stop, key.step]
    if isinstance(key, tuple):
        shapes, parts = [], []
        for item in key:
            shape, item_parts = _key_parts(item)
            shapes.append((shape, len(item_parts)))
            parts += item_parts
        return tuple(shapes), parts
    return "value", [key]


def _rebuilt(shape: Any, parts: list) -> Any:
    if shape == "slice":
        return slice(*parts)
    if shape == "value":
        return parts[0]
    key, start = [], 0
    for item_shape, count in shape:
        key.append(_rebuilt(item_shape, parts[start:start + count]))
        start += count
    return tuple(key)


def _subscripted(value: Any, shape: Any, *parts: Any) -> Any:
    return value[_rebuilt(shape, list(parts))]


def _key_text(key: Any) -> str:
    if isinstance(key, slice):
        bounds = ["" if b is None else operand_text(b) for b in (key.start, key.stop, key.step)]
        return ":".join(bounds if key.step is not None else bounds[:2])
    if isinstance(key, tuple) and key:
        return ", ".join(map(_key_text, key))
    return operand_text(key)


def call_value(f: Callable, *args: Any, **kwargs: Any) -> Any:
    """``f(*args, **kwargs)`` of values in a derived column, ``f`` not an op (see refuse_op).

    >>> call_value(max, 1, 2)
    2
    """
    refuse_op(f)
    return f(*args, **kwargs)


def refuse_op(f: Any) -> None:
    """A derived column must not call an op: ``mm.predict(x)`` with ``mm`` a query variable
    is only known to be a (method) op once values are loaded, and calling it then would run
    its body and invent rows for calls that were never stored (nothing runs)."""
    import functools

    from ..ops import is_op

    target = f.func if type(f) is functools.partial else f
    if is_op(target):
        raise QueryError(
            f"{target.name}: a query cannot call an op on a value it loaded (a method op of "
            "a query variable): that would run the op instead of matching its stored calls"
        )


def _binary(fn: Callable, symbol: str, reflected: bool = False) -> Callable:
    def method(self: Node, other: Any) -> Derived:
        args = (other, self) if reflected else (self, other)
        level = PRECEDENCE[symbol]
        return Derived(_pattern_of(self), fn, args, text=infix_text((symbol,), args, level), precedence=level)

    return method


def _unary(fn: Callable, template: str) -> Callable:
    level = ATOM if template.endswith(")") else PRECEDENCE["unary"]

    def method(self: Node) -> Derived:
        text = template.format(operand_text(self, 0 if level == ATOM else level))
        return Derived(_pattern_of(self), fn, (self,), text=text, precedence=level)

    return method


_ARITHMETIC = {
    "add": (operator.add, "+"),
    "sub": (operator.sub, "-"),
    "mul": (operator.mul, "*"),
    "truediv": (operator.truediv, "/"),
    "floordiv": (operator.floordiv, "//"),
    "mod": (operator.mod, "%"),
    "pow": (operator.pow, "**"),
    "matmul": (operator.matmul, "@"),
    "and": (operator.and_, "&"),
    "or": (operator.or_, "|"),
    "xor": (operator.xor, "^"),
    "lshift": (operator.lshift, "<<"),
    "rshift": (operator.rshift, ">>"),
}
for _name, (_fn, _symbol) in _ARITHMETIC.items():
    setattr(Node, f"__{_name}__", _binary(_fn, _symbol))
    setattr(Node, f"__r{_name}__", _binary(_fn, _symbol, reflected=True))
for _name, _unary_fn, _template in (("neg", operator.neg, "-{}"), ("pos", operator.pos, "+{}"),
                                    ("abs", abs, "abs({})"), ("invert", operator.invert, "~{}")):
    setattr(Node, f"__{_name}__", _unary(_unary_fn, _template))


def _pattern_of(node: Node) -> Pattern:
    if node.pattern.closed:
        raise QueryError(f"query variable {node.label} belongs to a query block that has ended")
    return node.pattern


class FreeVar(Node):
    """``Q()``: any stored value."""

    __slots__ = ()


class DomainVar(Node):
    """The target of a literal ``for`` loop: one of ``values``. Tuple targets share a
    ``group``: their values come in rows (``for n, a in [(1, .1), (2, .2)]``)."""

    __slots__ = ("group", "position", "values")

    def __init__(self, pattern: Pattern, values: list, group: int | None = None, position: int = 0) -> None:
        super().__init__(pattern)
        self.values, self.group, self.position = values, group, position


class OutputVar(Node):
    """Output ``index`` of an op-call node."""

    __slots__ = ("call", "index")

    def __init__(self, pattern: Pattern, call: CallNode, index: int) -> None:
        super().__init__(pattern)
        self.call, self.index = call, index

    def __await__(self) -> Generator[None, None, OutputVar]:
        """``y = await fetch(x)``, the run block's code word for word: an async op's output is
        the variable itself (nothing runs in a query)."""
        yield from ()
        return self


class ElementKey(Node):
    """The index (list), key (dict) or element (set) of ``for e in xs`` over a collection."""

    __slots__ = ()


class Derived(Node):
    """``fn(*args, **kwargs)`` computed per row from loaded values (derived columns, filters).

    ``text`` is the expression as the block wrote it (``y * 2``), for pictures and messages.
    """

    __slots__ = ("args", "fn", "kwargs", "precedence", "text")

    def __init__(self, pattern: Pattern, fn: Callable, args: tuple, kwargs: dict | None = None,
                 *, text: str = "", precedence: int = ATOM) -> None:
        for value in (*args, *(kwargs or {}).values()):
            check_same_branch(value, pattern.guard, f"expression `{text}`")
            check_stored(value, f"expression `{text}`")
        super().__init__(pattern)
        self.fn, self.args, self.kwargs, self.text = fn, args, kwargs or {}, text
        self.precedence = precedence  # of text's outermost operator, for parentheses

    def inputs(self) -> list[Node]:
        """The variables this one is computed from."""
        return [a for a in (*self.args, *self.kwargs.values()) if isinstance(a, Node)]

    def compute(self, value_of: Callable[[Node], Any]) -> Any:
        args = [value_of(a) if isinstance(a, Node) else a for a in self.args]
        kwargs = {k: value_of(a) if isinstance(a, Node) else a for k, a in self.kwargs.items()}
        return self.fn(*args, **kwargs)


@dataclass(frozen=True)
class Const:
    """A literal argument of an op call: constrains the input to this content id."""

    value: Any
    cid: bytes


@dataclass(eq=False)
class CallNode:
    """One op call of the pattern; optional (LEFT JOIN) when created under an ``if``."""

    number: int
    op: Any  # an Op, or the internal element op (structures)
    version_id: bytes
    inputs: dict[str, Node | Const]
    outputs: list[OutputVar] = field(default_factory=list)
    guard: Guard | None = None
    line: int | None = None

    @property
    def optional(self) -> bool:
        return self.guard is not None


@dataclass(frozen=True)
class Guard:
    """The ``if`` conditions a statement runs under: ``(condition, wanted truth)`` pairs."""

    conditions: tuple[tuple[Node, bool], ...]

    def holds(self, value_of: Callable[[Node], Any]) -> bool:
        return all(bool(value_of(node)) is wanted for node, wanted in self.conditions)

    def nodes(self) -> list[Node]:
        return [node for node, _ in self.conditions]


def check_same_branch(value: Any, guard: Guard | None, use: str) -> None:
    """A variable made under an ``if`` may be used only under that same ``if``.

    After the ``if``, the name holds whatever the branch that ran assigned, and a pattern
    cannot say "this branch's value in some rows, that branch's in others": an op call would
    match only the last branch's rows, and an expression or a name would take, in a row whose
    condition failed, the value of a call the ``if`` left out of it (a column next to a null).
    ``use`` says where it is used (``op f, argument 'x'``, ``expression `z + 1```).
    """
    made_under = value.guard.conditions if isinstance(value, Node) and value.guard else ()
    here = {id(node): wanted for node, wanted in guard.conditions} if guard else {}
    if all(here.get(id(node)) is wanted for node, wanted in made_under):
        return
    raise QueryError(
        f"{use}: {value.label} was computed under an `if` and is used after it; a query cannot "
        "choose between branches row by row. Use it inside the `if` (in each branch), or "
        "compute the value before the `if`"
    )


def check_stored(value: Any, use: str) -> None:
    """An output of a transient op has no stored value (tables show a stand-in), so nothing
    can be computed from it, nor branched on: say so where the block uses it, instead of
    an error about the stand-in's type once rows are read (or its truth taken for the value's).
    """
    if not isinstance(value, OutputVar):
        return
    transient = getattr(value.call.op, "transient", False)
    if transient is True or (transient and value.index in transient):
        raise QueryError(
            f"{use}: {value.label} is an output of transient op {value.call.op.name}: its value "
            "is not stored, so a query cannot compute with it or branch on it (an op call may "
            "take it; make the op not transient to query its values)"
        )


@dataclass
class Assignment:
    """``name = value`` as the block ran it, under the guard active at that line."""

    value: Any  # a Node, or a plain value (a constant column)
    guard: Guard | None


class Pattern:
    """Everything a query block declared, in the order it ran."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.calls: list[CallNode] = []
        self.columns: dict[str, list[Assignment]] = {}
        self.guard: Guard | None = None
        self._chains: dict[int, list[Node | bool]] = {}  # if-chain id -> conditions so far
        self._guards: list[Guard | None] = []
        self._groups = 0
        self.closed = False

    def guards(self) -> list[Guard]:
        """Every ``if`` guard of the block (of its calls and its assignments), each once."""
        found = [c.guard for c in self.calls] + [a.guard for s in self.columns.values() for a in s]
        return list({id(g): g for g in found if g is not None}.values())

    def close(self) -> None:
        """Stop accepting expressions over this pattern's variables (the block ended)."""
        self.closed = True

    # -- variables and calls -------------------------------------------------------------

    def free(self) -> FreeVar:
        return FreeVar(self)

    def domain(self, values: list, count: int) -> tuple[DomainVar, ...]:
        """Variables for a literal loop's target (``count`` names when it is a tuple)."""
        if count == 1:
            return (DomainVar(self, values),)
        self._groups += 1
        for value in values:
            if not isinstance(value, (tuple, list)) or len(value) != count:
                raise QueryError(f"the loop unpacks {count} names but an item is {value!r}")
        columns = [[v[i] for v in values] for i in range(count)]
        return tuple(DomainVar(self, columns[i], self._groups, i) for i in range(count))

    def add_call(self, op: Any, version_id: bytes, inputs: dict[str, Node | Const], nout: int) -> CallNode:
        call = CallNode(len(self.calls), op, version_id, inputs, guard=self.guard)
        call.outputs = [OutputVar(self, call, i) for i in range(nout)]
        self.calls.append(call)
        return call

    def bind(self, name: str, value: Any) -> None:
        """``name = value`` in the block: the last binding whose guard holds gives the column."""
        check_same_branch(value, self.guard, f"`{name} = {operand_text(value)}`")
        if isinstance(value, Node) and value.name is None:
            value.name = name
        self.columns.setdefault(name, []).append(Assignment(value, self.guard))

    # -- if / elif / else ----------------------------------------------------------------

    def enter_branch(self, chain: int, condition: Any, first: bool, otherwise: bool = False) -> bool:
        """Start a branch of if-chain ``chain`` (``otherwise``: its ``else``); False when it
        certainly does not run.

        Plain conditions decide at once, as in Python; conditions on variables become a
        guard: a row filter for what the branch assigns.
        """
        earlier = [] if first else self._chains.get(chain, [])
        if any(c is True for c in earlier):  # a plain condition already chose a branch
            return False
        variable = isinstance(condition, Node) and not otherwise
        if variable:
            check_same_branch(condition, self.guard, f"condition `{operand_text(condition)}`")
            check_stored(condition, f"condition `{operand_text(condition)}`")
        runs = otherwise or variable or bool(condition)
        # Each entry: True (a plain branch ran), False (it did not), or the variable condition.
        self._chains[chain] = [*earlier, condition if variable else runs]
        if not runs:
            return False
        pairs = [(c, False) for c in earlier if isinstance(c, Node)]
        if variable:
            pairs.append((condition, True))
        self._guards.append(self.guard)
        if pairs:
            outer = self.guard.conditions if self.guard else ()
            self.guard = Guard((*outer, *pairs))
        return True

    def chain_open(self, chain: int) -> bool:
        """False once a plain condition of if-chain ``chain`` chose a branch."""
        return not any(c is True for c in self._chains.get(chain, []))

    def leave_branch(self) -> None:
        self.guard = self._guards.pop()
