"""Lists and dicts filled step by step: ``ys = []``, then ``ys.append(inc(x))`` in a loop.

Such a name is raw as far as ``_raw.py`` can tell (no op produced the list), yet an op given it
consumed the outputs added to it. This module finds, per scope, the names filled that way with
values that may be op outputs (``filled``), and says for each whether compiled code can follow
everything that is ever added to the list (``followed``): bound once, to ``[]`` or ``{}``, and
used only in ways that add through a statement compiled here (``ys.append(e)``, ``ys.extend(e)``,
``ys.insert(i, e)``, ``ys += e``, ``d[k] = e``), take elements out or reorder them (``pop``,
``remove``, ``sort``, ``del ys[i]``...), read it (``for y in ys``, ``ys[i]``, ``y in ys``,
``len(ys)``), or hand it to a call compiled code rewrites (whose spec then says so: at run time,
one that is no op may have changed it unseen, and the list is no longer followed).

Any other use (an alias ``zs = ys``, a nested function or comprehension naming it, a slice
assignment, a second binding) and the name is filled but not followed: an op given it then
records its elements as of unknown producer, matched by content (runtime/compiled.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import libcst as cst

from ._scopes import Scope

__all__ = ["Adding", "Filling", "filling_of"]

#: Methods that add what they are given: the form of what is added, and its argument's position.
_ADDING = {"append": ("a", 0, 1), "extend": ("e", 0, 1), "insert": ("i", 1, 2)}
#: Methods that only take elements out, reorder them or read them: nothing new gets in.
_KEEPING = frozenset(
    {"pop", "remove", "sort", "reverse", "clear", "index", "count", "copy", "get", "keys", "values", "items", "popitem"}
)
#: Builtins that read a list they are given and change nothing in it.
_READING = frozenset(
    {"len", "print", "sorted", "sum", "min", "max", "any", "all", "list", "tuple", "set", "frozenset", "dict",
     "iter", "enumerate", "zip", "reversed", "repr", "str", "bool", "isinstance", "id", "hash"}
)
_NESTED = (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


@dataclass(frozen=True)
class Adding:
    """A statement's adding of ``value`` to the list or dict ``name``: ``form`` ``"a"`` for one
    element (``append``, ``d[k] = v``; ``"i"``: ``insert``, the element second), ``"e"`` for an
    iterable's elements."""

    name: str
    form: str
    value: cst.BaseExpression


@dataclass
class Filling:
    """What one scope's statements do to its lists and dicts filled step by step."""

    #: id of a call or statement that adds -> what it adds
    adding: dict[int, Adding] = field(default_factory=dict)
    #: id of a Name node that is a rewritten call's argument (not a reading builtin's) -> its name
    lent: dict[int, str] = field(default_factory=dict)
    #: names filled with values that may be op outputs -> whether compiled code follows them
    filled: dict[str, bool] = field(default_factory=dict)


def filling_of(scope: Scope, is_raw) -> Filling:  # type: ignore[no-untyped-def]
    """The lists and dicts ``scope`` (a module or function) fills step by step; ``is_raw`` is
    ``_raw.is_raw`` (which itself asks this module about names: passed in, not imported)."""
    if scope.kind not in ("module", "function"):
        return Filling()
    walk = _Walk(scope)
    body = scope.node.body if isinstance(scope.node, cst.FunctionDef) else scope.node
    body.visit(walk)
    every = Counter(name.value for name in _all_names(scope.node))
    found = Filling()
    lent = set(walk.lent.values())
    for name in {adding.name for adding in walk.adding.values()}:
        if not any(not is_raw(scope, a.value, True) for a in walk.adding.values() if a.name == name):
            continue
        seen = sum(1 for seen_name in walk.seen.values() if seen_name == name)
        followed = name not in walk.loose and every[name] == seen and _bound_once_empty(scope, name)
        if followed and name not in lent:
            continue  # never given to a call: no op can consume it, nothing to follow
        found.filled[name] = followed
    _through_aliases(found.filled, walk.aliases)
    for where, adding in walk.adding.items():
        if found.filled.get(adding.name):
            found.adding[where] = adding
    found.lent = {where: name for where, name in walk.lent.items() if found.filled.get(name)}
    return found


def _through_aliases(filled: dict[str, bool], aliases: list[tuple[str, str]]) -> None:
    """``zs = ys`` where one of them is filled: the other holds the same list, filled out of
    sight of its own statements (neither is followed: the alias is a use of ``ys`` the walk
    does not see)."""
    changed = True
    while changed:
        changed = False
        for a, b in aliases:
            for one, other in ((a, b), (b, a)):
                if one in filled and other not in filled:
                    filled[other], changed = False, True


def _bound_once_empty(scope: Scope, name: str) -> bool:
    """Bound by one ``name = []`` (or ``{}``) and otherwise by ``name += ...`` only."""
    bindings = scope.bindings(name)
    if bindings is None or name in scope.nested_nonlocals():
        return False
    values = [value for how, value in bindings if how != "aug"]
    empty = len(values) == 1 and isinstance(values[0], (cst.List, cst.Dict)) and not values[0].elements
    return empty and all(how in ("aug", "value") for how, _ in bindings)


def _all_names(node: cst.CSTNode) -> list[cst.Name]:
    class Names(cst.CSTVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[cst.Name] = []

        def visit_Name(self, node: cst.Name) -> None:
            self.found.append(node)

    names = Names()
    node.visit(names)
    return names.found


class _Walk(cst.CSTVisitor):
    """One scope's statements (nested scopes are not entered: a name met there is met, and
    counted in ``_all_names``, but never seen here, so its list is not followed)."""

    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self.adding: dict[int, Adding] = {}
        self.lent: dict[int, str] = {}
        self.seen: dict[int, str] = {}  # Name nodes whose use keeps the list followed
        self.loose: set[str] = set()  # names used in a way that may add unseen
        self.aliases: list[tuple[str, str]] = []  # (a, b) of `a = b`

    def on_visit(self, node: cst.CSTNode) -> bool:
        return not isinstance(node, _NESTED) and super().on_visit(node)

    def _see(self, node: cst.BaseExpression) -> str | None:
        if isinstance(node, cst.Name):
            self.seen[id(node)] = node.value
            return node.value
        return None

    def visit_Call(self, node: cst.Call) -> None:
        func, own = node.func, False
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            method = func.attr.value
            own = method in _KEEPING or method in _ADDING
            if own:
                name = self._see(func.value)
                self._note_adding(node, method, name)
        for arg in node.args:
            if isinstance(arg.value, cst.Name) and not arg.star:
                self._see(arg.value)
                self._given(node, own, arg.value.value, arg.value)

    def _given(self, node: cst.Call, own: bool, name: str, arg: cst.Name) -> None:
        """A list given to a call: a reading builtin changes nothing; a call compiled code
        rewrites is an op or is marked as lending it (runtime); any other call (a list's own
        method, ``fs[0](ys)``) may keep it or add to it unseen."""
        scope, func = self.scope, node.func
        if isinstance(func, cst.Name) and func.value in _READING and scope.is_builtin(func.value):
            return
        if not own and scope.rewritable_callee(func) and not scope.stores_in_container(func):
            self.lent[id(arg)] = name
        else:
            self.loose.add(name)

    def _note_adding(self, node: cst.Call, method: str, name: str | None) -> None:
        if name is None or method not in _ADDING:
            return
        form, position, count = _ADDING[method]
        args = node.args
        if len(args) != count or any(arg.star or arg.keyword for arg in args):
            self.loose.add(name)
            return
        self.adding[id(node)] = Adding(name, form, args[position].value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._assigned(node, target.target, len(node.targets) == 1)
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            name = node.targets[0].target.value
            value = node.value
            if isinstance(value, cst.Name):
                self.aliases.append((name, value.value))
            if isinstance(value, (cst.List, cst.Dict)) and not value.elements:
                self._see(node.targets[0].target)

    def _assigned(self, node: cst.Assign, target: cst.BaseExpression, single: bool) -> None:
        """``d[k] = v`` adds v; a slice assignment or several targets may add unseen."""
        if not (isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name)):
            self._stored_into(target)
            return
        name = self._see(target.value)
        assert name is not None
        one_index = len(target.slice) == 1 and isinstance(target.slice[0].slice, cst.Index)
        if single and one_index:
            self.adding[id(node)] = Adding(name, "a", node.value)
        else:
            self.loose.add(name)

    def _stored_into(self, target: cst.CSTNode | None) -> None:
        """``ys[0], b = ...``, ``for ys[0] in ...``, ``with cm as ys[0]``, ``ys[0]: T = v``:
        an element replaced by a value this module does not follow."""
        if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
            self.loose.add(target.value.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._stored_into(element.value)
        elif isinstance(target, cst.StarredElement):
            self._stored_into(target.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._stored_into(node.target)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        self._stored_into(node.asname.name if node.asname is not None else None)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if not isinstance(node.target, cst.Name):
            if isinstance(node.target, cst.Subscript) and isinstance(node.target.value, cst.Name):
                self.loose.add(node.target.value.value)  # `ys[0] += v`: an element replaced
            return
        name = self._see(node.target)
        assert name is not None
        if isinstance(node.operator, cst.AddAssign):
            self.adding[id(node)] = Adding(name, "e", node.value)
        elif not isinstance(node.operator, cst.MultiplyAssign):  # `*=` repeats what is there
            self.loose.add(name)

    def visit_For(self, node: cst.For) -> None:
        self._see(node.iter)
        self._stored_into(node.target)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        # a read (`ys[-1]`), `del ys[i]`, or a target visit_Assign judged already (seen by
        # node: one use is never counted twice)
        if isinstance(node.value, cst.Name):
            self._see(node.value)

    def visit_ComparisonTarget(self, node: cst.ComparisonTarget) -> None:
        if isinstance(node.operator, (cst.In, cst.NotIn)):
            self._see(node.comparator)
