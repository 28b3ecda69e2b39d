"""Which op arguments no op produced, as far as the source shows: raw values.

Compiled code names the producer of an argument whose history it knows: a name bound to an
op's output (``y = inc(1)``), an op call written as the argument (``add(inc(1), 2)``). Any
other argument is either raw -- a literal, a new container, an operator's result, a name only
ever bound to such values -- or may be an op output that reached the call through code the
compiler cannot follow: returned by a helper (``y = prep(inc(1))``), awaited, taken from a list
(``for y in ys``), received as a parameter. For such an argument the runtime records the call
as inexact, so that its producer is found by content, as for uncompiled code: "no producer,
exactly" would be a wrong answer. This module tells the two apart, conservatively: what it
cannot prove raw is not raw.

Two questions are asked of an expression: is its value raw (``raw``), and is everything taken
out of it raw too (``deep``: what a ``for`` over it binds). ``[inc(1)]`` is a raw list whose
element is not; ``[1, 2]`` and ``range(n)`` are deep raw. A name is raw when every statement of
its scope that binds it does so from a raw value (see ``Scope.bindings``); deep raw when
those values are immutable too (``frozen``): a name bound to ``[1, 2]`` is raw but not deep
raw, as code may append an op's output to that list before a loop takes it.
"""

from __future__ import annotations

import libcst as cst

from ._grown import Filling, filling_of
from ._scopes import Scope

__all__ = ["bound_to_a_collection", "combines_anew", "filling", "is_raw", "may_hold_outputs", "name_is_raw"]

_LITERALS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)
_CONSTANTS = frozenset({"True", "False", "None", "__debug__", "NotImplemented", "Ellipsis"})
#: Expressions whose value is always a new object: a display, a comprehension, a function.
_NEW = (cst.List, cst.Tuple, cst.Set, cst.Dict, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.Lambda)
#: Builtins whose result is never an op's output, whatever they are given (a new int, text,
#: bool or range). Not ``str``, ``int``, ``tuple``, ``abs``...: given an object of their own
#: type, they may return that very object; nor ``type``: an op may return a class.
_RAW_BUILTINS = frozenset(
    {"len", "range", "repr", "hash", "id", "isinstance", "issubclass", "callable", "ord", "chr", "bin", "hex", "oct"}
)
#: Builtins whose items are deep raw when their arguments are.
_ITEM_BUILTINS = frozenset({"enumerate", "zip", "reversed"})


def is_raw(scope: Scope | None, node: cst.BaseExpression, deep: bool = False) -> bool:
    """Whether no op produced the value of *node* (with *deep*: nor any item of it), as
    evaluated in *scope* (None: a scope where its names cannot be looked up).

    >>> is_raw(None, cst.parse_expression("[1, (2, 'a')]"), deep=True)
    True
    >>> is_raw(None, cst.parse_expression("[x]")), is_raw(None, cst.parse_expression("[x]"), deep=True)
    (True, False)
    """
    if isinstance(node, _LITERALS):
        return True
    if isinstance(node, (cst.FormattedString, cst.ConcatenatedString)):
        return _text_is_new(node)
    if isinstance(node, cst.Name):
        return node.value in _CONSTANTS or (scope is not None and name_is_raw(scope, node.value, deep))
    if isinstance(node, (cst.BooleanOperation, cst.IfExp)):  # the value is one of two operands
        pair = (node.left, node.right) if isinstance(node, cst.BooleanOperation) else (node.body, node.orelse)
        return all(is_raw(scope, part, deep) for part in pair)
    if isinstance(node, cst.Call):
        return _call_is_raw(scope, node, deep)
    return _deep_raw(scope, node) if deep else _new_value(scope, node)


def _new_value(scope: Scope | None, node: cst.BaseExpression) -> bool:
    """A value an expression makes anew (an operator's result, a display)."""
    if isinstance(node, cst.UnaryOperation):  # +y is y itself
        return not isinstance(node.operator, cst.Plus) or is_raw(scope, node.expression)
    if isinstance(node, cst.BinaryOperation):
        return combines_anew(scope, node.operator, node.left, node.right)
    return isinstance(node, (*_NEW, cst.Comparison))


def combines_anew(scope: Scope | None, operator: cst.BaseBinaryOp, left: cst.BaseExpression, right: cst.BaseExpression) -> bool:
    """Whether ``left <operator> right`` is no op's output: both operands are raw, or one is a
    literal that changes whatever the other is (``y + 1``). Not ``"" + s`` or ``1 * t``: an
    operand a neutral literal leaves alone may come back itself (a str, a tuple), and so may
    whatever an operand that is a name combines with (``acc += s`` from ``acc = ""``)."""
    if _changes(operator, left) or _changes(operator, right):
        return True
    return is_raw(scope, left) and is_raw(scope, right)


#: Per operator, the literals that may leave the other operand as it is.
_NEUTRAL: dict[type, tuple] = {
    cst.Add: (0, "", b""), cst.Subtract: (0,), cst.Multiply: (1,), cst.Divide: (1,),
    cst.FloorDivide: (1,), cst.Power: (1,), cst.BitOr: (0,), cst.BitXor: (0,),
    cst.LeftShift: (0,), cst.RightShift: (0,), cst.BitAnd: (-1,),
}


def _changes(operator: cst.BaseBinaryOp, node: cst.BaseExpression) -> bool:
    """A literal operand no other operand stays the same with (``"%s" % s`` may be ``s``)."""
    negative = isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus)
    literal = node.expression if negative else node  # type: ignore[attr-defined]
    if not isinstance(literal, (cst.Integer, cst.Float, cst.SimpleString)) or literal.lpar:
        return False
    value = literal.evaluated_value
    if isinstance(value, (str, bytes)):
        return isinstance(operator, cst.Add) and bool(value)  # "%s" % s, "" * n: maybe s, ""
    return (-value if negative else value) not in _NEUTRAL.get(type(operator), (value,))


def _deep_raw(scope: Scope | None, node: cst.BaseExpression) -> bool:
    if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
        return all(is_raw(scope, element.value, True) for element in node.elements)
    if isinstance(node, cst.Dict):
        return all(_entry_is_deep_raw(scope, element) for element in node.elements)
    if isinstance(node, cst.BinaryOperation):  # `xs + [inc(1)]`
        return is_raw(scope, node.left, True) and is_raw(scope, node.right, True)
    if isinstance(node, cst.UnaryOperation):
        return is_raw(scope, node.expression, True)
    return isinstance(node, (cst.Comparison, cst.Lambda))


def _entry_is_deep_raw(scope: Scope | None, element: cst.BaseDictElement) -> bool:
    if isinstance(element, cst.DictElement):
        return is_raw(scope, element.key, True) and is_raw(scope, element.value, True)
    return is_raw(scope, cst.ensure_type(element, cst.StarredDictElement).value, True)


def _call_is_raw(scope: Scope | None, node: cst.Call, deep: bool) -> bool:
    func = node.func
    if scope is None or not isinstance(func, cst.Name) or not scope.is_builtin(func.value):
        return False
    if func.value in _RAW_BUILTINS:
        return True
    return deep and func.value in _ITEM_BUILTINS and all(
        not arg.keyword and is_raw(scope, arg.value, True) for arg in node.args
    )


def _text_is_new(node: cst.BaseExpression) -> bool:
    """A literal text, or one formatted with some text of its own: ``f"{s}"`` is ``s`` itself
    when ``s`` is a ``str``."""
    if isinstance(node, cst.ConcatenatedString):
        return _text_is_new(node.left) or _text_is_new(node.right)
    if isinstance(node, cst.SimpleString):  # `f"{s}" ""` is `f"{s}"`
        return bool(node.evaluated_value)
    formatted = cst.ensure_type(node, cst.FormattedString)
    return not formatted.parts or any(
        isinstance(part, cst.FormattedStringText) and part.value for part in formatted.parts
    )


def name_is_raw(scope: Scope, name: str, deep: bool = False) -> bool:
    """Whether every statement that binds the variable *name* (as seen from *scope*) binds it
    to a raw value (*deep*: whose items are raw too). A name bound by a statement the scan does
    not see, or by a parameter, an import, ``with ... as``, is not raw."""
    owner, key = scope.resolve(name), (name, deep)
    if key in owner.raw_names:
        # None: being decided. A name met again while deciding it (``x = x + 1``) counts as
        # not raw, which is never wrong (only conservative), so what is decided meanwhile holds.
        return owner.raw_names[key] is True
    owner.raw_names[key] = None
    bindings = owner.bindings(name)
    raw = bindings is not None and all(_binds_raw(owner, how, value, deep) for how, value in bindings)
    owner.raw_names[key] = raw
    return raw


def _binds_raw(owner: Scope, how: str, bound: cst.CSTNode | None, deep: bool) -> bool:
    if how == "raw":
        return True
    if bound is None or how == "unknown":
        return False
    if how == "aug":
        # `y += e`: y's other bindings are raw, so raw when the sum is new (y + 1, not "" + s);
        # never frozen (a list grown in place)
        augmented = cst.ensure_type(bound, cst.AugAssign)
        operator, operand = _binary(augmented.operator), augmented.value
        return not deep and (_changes(operator, operand) or is_raw(owner, operand))
    value = bound
    assert isinstance(value, cst.BaseExpression)
    scope: Scope | None = owner
    if how == "outer-item":
        scope, how = owner.parent, "item"
    elif how == "walrus":  # its names may be a comprehension's
        scope, how = None, "value"
    if how == "value":
        return _frozen(scope, value) if deep else is_raw(scope, value)
    return _items_frozen(scope, value) if deep else is_raw(scope, value, True)  # item


def _binary(operator: cst.BaseAugOp) -> cst.BaseBinaryOp:
    """``+`` for ``+=``."""
    return getattr(cst, type(operator).__name__.removesuffix("Assign"))()


def _frozen(scope: Scope | None, node: cst.BaseExpression) -> bool:
    """Deep raw and immutable all the way down: what a name bound to it holds stays raw."""
    if isinstance(node, cst.Tuple):
        return all(_frozen(scope, element.value) for element in node.elements)
    if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation)):
        return _frozen(scope, node.left) and _frozen(scope, node.right)
    if isinstance(node, cst.IfExp):
        return _frozen(scope, node.body) and _frozen(scope, node.orelse)
    if isinstance(node, cst.UnaryOperation):
        return _frozen(scope, node.expression)
    return not isinstance(node, _NEW) and is_raw(scope, node, True)


def _items_frozen(scope: Scope | None, node: cst.BaseExpression) -> bool:
    """What a ``for`` over *node* binds is frozen."""
    if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
        return all(
            _items_frozen(scope, element.value) if isinstance(element, cst.StarredElement) else _frozen(scope, element.value)
            for element in node.elements
        )
    if isinstance(node, cst.Dict):
        return all(isinstance(element, cst.DictElement) and _frozen(scope, element.key) for element in node.elements)
    return _frozen(scope, node)


def may_hold_outputs(scope: Scope | None, node: cst.BaseExpression) -> bool:
    """Whether *node* is a list, tuple or dict display or comprehension whose elements may be
    op outputs: compiled code hands such a collection to an op with where its elements came
    from (runtime/built.py). A raw value all the same, as a new container."""
    if isinstance(node, (cst.List, cst.Tuple, cst.Dict)):
        return not is_raw(scope, node, True)
    if isinstance(node, cst.ListComp):  # the element's names are the comprehension's own
        return not is_raw(None, node.elt, True)
    if isinstance(node, cst.DictComp):
        return not is_raw(None, node.value, True)
    return False


def bound_to_a_collection(scope: Scope, name: str) -> bool:
    """Whether a statement binds the variable *name* to a collection that may hold op outputs
    (``ys = [inc(x) for x in xs]``): raw, yet an op given it may learn its elements' history."""
    owner = scope.resolve(name)
    bindings = owner.bindings(name) or ()
    return any(how == "value" and isinstance(value, cst.BaseExpression) and may_hold_outputs(owner, value)
               for how, value in bindings)


def filling(scope: Scope) -> Filling:
    """The lists and dicts *scope* fills step by step (``_grown.py``), found once."""
    if scope.filling is None:
        scope.filling = filling_of(scope, is_raw)
    return scope.filling
