"""Static scopes: which variable a name refers to, and the provenance key for it.

A provenance key is ``"<name>@<scope>"`` (docs/compiled-runtime-contract.md) where scope is the
``__qualname__``-style name of the scope that *owns* the variable (``f``, ``C.m``,
``f.<locals>.g``, ``f.<locals>.<lambda>``) or ``<module>``. Names are resolved the way Python
does (LEGB, ``global``/``nonlocal``, class bodies invisible to nested functions), so ``y`` in a
nested function and ``y`` in its parent get the same key only when they are the same variable.

Binding sets are computed lazily, only for scopes that contain rewritten code; the module scope
is scanned shallowly (its simple statements' targets, not their expressions).
"""

from __future__ import annotations

import ast
import builtins
import re
from collections import Counter, defaultdict
from typing import Any

import libcst as cst

__all__ = ["FRAME_SENSITIVE", "ArgKey", "Scope", "simple_targets", "target_names"]

#: An argument's provenance key: ``name@scope``, or ``(key, i)`` for ``name[i]`` (see arg_key).
ArgKey = str | tuple[str, int]
#: How a statement binds a name, with the expression it binds it from (see _BindingScan.sources):
#: ``raw`` (a def, class, caught exception, del: no op's output), ``value`` (``y = e``), ``item``
#: (an element of ``e``: ``for y in e``, ``a, b = e``), ``outer-item`` (a comprehension's first
#: ``for``, whose ``e`` is evaluated in the enclosing scope), ``aug`` (``y += e``), ``walrus``
#: (``(y := e)``, where ``e`` may be evaluated in a comprehension's scope; for ``aug``, the
#: ``AugAssign`` statement itself), ``unknown`` (a
#: parameter, an import, ``with ... as y``, a ``match`` capture).
Binding = tuple[str, cst.CSTNode | None]

_BUILTINS = frozenset(dir(builtins))
#: Builtins that inspect the caller's frame: calling them from another frame changes what they
#: do (``super()`` needs ``__class__`` and the first argument of *this* frame). Never rewritten.
FRAME_SENSITIVE = frozenset(
    {"super", "locals", "globals", "vars", "dir", "eval", "exec", "breakpoint", "__import__"}
)
_CONSTANTS = frozenset({"True", "False", "None", "__debug__"})
#: Methods of list, dict and set that only store what they are given: on such a container they
#: are never an op, and a batch block passes them its deferred values as they are.
_STORING = frozenset({"append", "extend", "insert", "add", "update", "setdefault"})
#: Expressions that always make a new list, dict or set.
_CONTAINER_DISPLAYS = (cst.List, cst.ListComp, cst.Dict, cst.DictComp, cst.Set, cst.SetComp)


class Scope:
    """One Python scope (module, class, function, lambda or comprehension) in the rewrite."""

    def __init__(self, kind: str, qualname: str, node: cst.CSTNode, parent: Scope | None) -> None:
        self.kind = kind
        self.qualname = qualname
        self.node = node
        self.parent = parent
        self.text: str | None = None  # the module's source (module scope only)
        self.module: Scope = parent.module if parent is not None else self
        self.is_workflow = False
        self._scan: _BindingScan | None = None
        self._op_target_keys: frozenset[str] | None = None
        self._nested_nonlocals: frozenset[str] | None = None
        self._rebound_elsewhere: frozenset[str] | None = None
        #: (name, deep) -> whether the name is raw (``_raw.py``); None while being decided
        self.raw_names: dict[tuple[str, bool], bool | None] = {}
        #: the lists and dicts this scope fills step by step (``_grown.py``), once asked
        self.filling: Any = None

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def for_module(cls, module: cst.Module, text: str | None = None) -> Scope:
        """The module scope (key suffix ``<module>``); *text*, the module's source, makes
        :meth:`rebound_elsewhere` cheap."""
        scope = cls("module", "<module>", module, None)
        scope.text = text
        return scope

    def child(self, kind: str, name: str, node: cst.CSTNode) -> Scope:
        """A nested scope named like CPython's ``__qualname__``."""
        if self.kind == "module":
            qualname = name
        elif self.kind == "class":
            qualname = f"{self.qualname}.{name}"
        else:
            qualname = f"{self.qualname}.<locals>.{name}"
        return Scope(kind, qualname, node, self)

    # -- bindings -------------------------------------------------------------------------------

    @property
    def scan(self) -> _BindingScan:
        if self._scan is None:
            self._scan = _BindingScan.of(self)
        return self._scan

    def binding_count(self, name: str) -> int:
        """How many statements bind *name* in this scope (loops count once)."""
        return self.scan.counts[name]

    def bindings(self, name: str) -> list[Binding] | None:
        """How this scope binds its variable *name*, or None when code the scan does not see
        may bind it too: a nested scope's ``nonlocal``, a function's ``global``, a walrus in a
        module-level expression, a star import (or it is not bound here at all)."""
        scan = self.scan
        if name not in scan.counts or scan.star_import or name in self.rebound_elsewhere():
            return None
        return scan.sources[name]

    def rebound_elsewhere(self) -> frozenset[str]:
        """Names of this scope's variables that other scopes (or expressions the module scan
        skips) may bind."""
        if self._rebound_elsewhere is None:
            if self.kind == "module":
                self._rebound_elsewhere = _module_rebinds(cst.ensure_type(self.node, cst.Module), self.text)
            else:
                self._rebound_elsewhere = self.nested_nonlocals()
        return self._rebound_elsewhere

    def resolve(self, name: str) -> Scope:
        """The scope that owns the variable *name* as seen from here."""
        scan = self.scan
        if name in scan.globals:
            return self.module
        if name in scan.counts and name not in scan.nonlocals:
            return self
        scope = self.parent
        while scope is not None and scope.kind != "module":
            if scope.kind != "class":  # class bodies are invisible to nested scopes
                if name in scope.scan.globals:
                    return self.module
                if name in scope.scan.counts and name not in scope.scan.nonlocals:
                    return scope
            scope = scope.parent
        return self.module

    def key(self, name: str) -> str:
        """The provenance key ``name@scope`` of the variable *name* seen from here."""
        return f"{name}@{self.resolve(name).qualname}"

    def arg_key(self, node: cst.BaseExpression) -> ArgKey | None:
        """The key of a bare-name argument; ``(key, i)`` for ``name[i]`` with a literal
        ``i >= 0`` (output i of an op with several outputs, assigned to one name); None for
        anything else (``None``, ``True``...)."""
        if isinstance(node, cst.Name) and not node.lpar and node.value not in _CONSTANTS:
            return self.key(node.value)
        if isinstance(node, cst.Subscript) and not node.lpar and len(node.slice) == 1:
            index = node.slice[0].slice
            base = self.arg_key(node.value) if isinstance(node.value, cst.Name) else None
            if isinstance(base, str) and isinstance(index, cst.Index) and index.star is None:
                if isinstance(index.value, cst.Integer) and not index.value.lpar:
                    return (base, int(index.value.evaluated_value))
        return None

    def is_builtin(self, name: str) -> bool:
        """True if *name* here is a builtin the module does not rebind."""
        if name not in _BUILTINS or self.resolve(name) is not self.module:
            return False
        module_scan = self.module.scan
        return name not in module_scan.counts and not module_scan.star_import

    def op_target_keys(self) -> frozenset[str]:
        """Keys of names that receive a rewritable call's outputs somewhere in this scope."""
        if self._op_target_keys is None:
            self._op_target_keys = frozenset(
                self.key(name)
                for names, call in self.scan.op_assignments
                if self.rewritable_callee(call.func)
                for name in names
            )
        return self._op_target_keys

    def rewritable_callee(self, func: cst.BaseExpression) -> bool:
        """A Name or dotted Name whose root is neither a plain builtin nor frame-sensitive."""
        root = func
        while isinstance(root, cst.Attribute):
            root = root.value
        if not isinstance(root, cst.Name) or root.value.startswith("__mandala"):
            return False
        if root is func and root.value in FRAME_SENSITIVE:
            return False
        return not self.is_builtin(root.value)

    def stores_in_container(self, func: cst.BaseExpression) -> bool:
        """``xs.append`` (``extend``, ``insert``, ``add``, ``update``, ``setdefault``) where ``xs`` is a function's
        variable bound once, to a list, dict or set display, and rebound by no nested scope:
        never an op, so its call needs no rewrite (a compiled ``results.append(...)`` in a loop
        would cost a runtime call and ~50 bytes of ``.pyc``)."""
        if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)):
            return False
        name = func.value.value
        if func.attr.value not in _STORING:
            return False
        owner = self.resolve(name)
        return (
            owner.kind == "function"
            and name in owner.scan.containers
            and owner.binding_count(name) == 1
            and name not in owner.nested_nonlocals()
        )

    def nested_nonlocals(self) -> frozenset[str]:
        """Names a scope nested in this one declares ``nonlocal`` (and may rebind). Only the
        nested ``def`` and ``class`` statements are searched (a lambda holds no statement)."""
        if self._nested_nonlocals is None:
            finder = _NonlocalFinder()
            for nested in self.scan.nested:
                nested.visit(finder)
            self._nested_nonlocals = frozenset(finder.names)
        return self._nested_nonlocals

    def forcing_builtin(self, func: cst.BaseExpression) -> bool:
        """A builtin called by name (``print(y)``, ``type(y)``): in a batch block it must get
        plain values, so its call goes through the runtime too (frame-sensitive ones never)."""
        return (
            isinstance(func, cst.Name)
            and func.value not in FRAME_SENSITIVE
            and self.is_builtin(func.value)
        )


def target_names(node: cst.BaseExpression) -> list[str]:
    """Every bare name an assignment target binds (through tuples, lists and stars)."""
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [name for element in node.elements for name in target_names(element.value)]
    if isinstance(node, cst.StarredElement):
        return target_names(node.value)
    return []


def simple_targets(node: cst.BaseExpression) -> tuple[str, ...] | None:
    """The names of ``y`` or ``a, b`` / ``[a, b]`` targets; None for any other shape."""
    if isinstance(node, cst.Name):
        return (node.value,)
    if isinstance(node, (cst.Tuple, cst.List)) and node.elements:
        values = [element.value for element in node.elements]
        if all(isinstance(e, cst.Element) and isinstance(v, cst.Name)
               for e, v in zip(node.elements, values)):
            return tuple(cst.ensure_type(v, cst.Name).value for v in values)
    return None


class _BindingScan(cst.CSTVisitor):
    """Collects the names one scope binds, without entering nested scopes."""

    def __init__(self, deep: bool) -> None:
        super().__init__()
        self.deep = deep  # False: skip expressions (module scope; walrus bindings missed)
        self.counts: Counter[str] = Counter()
        #: name -> how each statement binds it (see Binding)
        self.sources: defaultdict[str, list[Binding]] = defaultdict(list)
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.star_import = False
        #: (target names, call) for ``y = f(..)``, ``a, b = f(..)``, ``y: T = f(..)``, ``(y := f(..))``,
        #: ``y = await f(..)``
        self.op_assignments: list[tuple[tuple[str, ...], cst.Call]] = []
        #: names some statement binds to a new list, dict or set (``xs = []``, ``d = {}``)
        self.containers: set[str] = set()
        #: the ``def`` and ``class`` statements directly in this scope (not scanned)
        self.nested: list[cst.FunctionDef | cst.ClassDef] = []

    @classmethod
    def of(cls, scope: Scope) -> _BindingScan:
        node = scope.node
        scan = cls(deep=scope.kind != "module")
        if isinstance(node, cst.Module):
            node.visit(scan)
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            if isinstance(node, cst.FunctionDef):
                scan.bind_parameters(node.params)
            node.body.visit(scan)
        elif isinstance(node, cst.Lambda):
            scan.bind_parameters(node.params)
        else:  # comprehension: its for-targets
            scan.bind_comprehension(node)
        return scan

    def bind(self, names: list[str] | tuple[str, ...], how: str = "unknown", value: cst.CSTNode | None = None) -> None:
        self.counts.update(names)
        for name in names:
            self.sources[name].append((how, value))

    def bind_target(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        """``target = value``: a bare name gets the value, an unpacked one an element of it."""
        how = "value" if isinstance(target, cst.Name) else "item"
        self.bind(target_names(target), how, value)

    def bind_parameters(self, params: cst.Parameters) -> None:
        every = [*params.posonly_params, *params.params, *params.kwonly_params]
        for extra in (params.star_arg, params.star_kwarg):
            if isinstance(extra, cst.Param):
                every.append(extra)
        self.bind([param.name.value for param in every])

    def bind_comprehension(self, node: cst.CSTNode) -> None:
        for_in, how = getattr(node, "for_in", None), "outer-item"
        while for_in is not None:
            self.bind(target_names(for_in.target), how, for_in.iter)
            for_in, how = for_in.inner_for_in, "item"

    def record_call(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        names = simple_targets(target)
        if isinstance(value, cst.Await):  # `y = await fetch(x)`: an async op's outputs
            value = value.expression
        if names and isinstance(value, cst.Call):
            self.op_assignments.append((names, value))
        if isinstance(target, cst.Name) and isinstance(value, _CONTAINER_DISPLAYS):
            self.containers.add(target.value)

    def on_visit(self, node: cst.CSTNode) -> bool:
        # A lambda is its own scope; the module scan skips expressions (walrus bindings there
        # are missed, which only costs provenance precision, never correctness).
        if isinstance(node, cst.Lambda) or (not self.deep and isinstance(node, cst.BaseExpression)):
            return False
        return super().on_visit(node)

    # -- statements that bind -------------------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.bind([node.name.value], "raw")
        self.nested.append(node)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.bind([node.name.value], "raw")
        self.nested.append(node)
        return False

    def visit_Assign(self, node: cst.Assign) -> bool:
        for target in node.targets:
            self.bind_target(target.target, node.value)
        if len(node.targets) == 1:
            self.record_call(node.targets[0].target, node.value)
        return True

    def visit_AnnAssign(self, node: cst.AnnAssign) -> bool:
        if node.value is None:  # `y: int` alone binds no value
            self.bind(target_names(node.target), "raw")
        else:
            self.bind_target(node.target, node.value)
        self.record_call(node.target, node.value)
        return True

    def visit_AugAssign(self, node: cst.AugAssign) -> bool:
        self.bind(target_names(node.target), "aug", node)
        return True

    def visit_NamedExpr(self, node: cst.NamedExpr) -> bool:
        self.bind(target_names(node.target), "walrus", node.value)
        self.record_call(node.target, node.value)
        return True

    def visit_For(self, node: cst.For) -> None:
        self.bind(target_names(node.target), "item", node.iter)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self.bind(target_names(node.asname.name))

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self.bind(target_names(node.name.name), "raw")

    def visit_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> None:
        if node.name is not None:
            self.bind(target_names(node.name.name), "raw")

    def visit_Del(self, node: cst.Del) -> None:
        self.bind(target_names(node.target), "raw")

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            bound: cst.BaseExpression = alias.asname.name if alias.asname else alias.name
            while isinstance(bound, cst.Attribute):  # `import a.b` binds `a`
                bound = bound.value
            self.bind(target_names(bound))
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if isinstance(node.names, cst.ImportStar):
            self.star_import = True
            return False
        for alias in node.names:
            self.bind(target_names(alias.asname.name if alias.asname else alias.name))
        return False

    def visit_Global(self, node: cst.Global) -> bool:
        self.globals.update(item.name.value for item in node.names)
        return False

    def visit_Nonlocal(self, node: cst.Nonlocal) -> bool:
        self.nonlocals.update(item.name.value for item in node.names)
        return False

    def visit_MatchAs(self, node: cst.MatchAs) -> None:
        if node.name is not None:
            self.bind([node.name.value])

    def visit_MatchStar(self, node: cst.MatchStar) -> None:
        if node.name is not None:
            self.bind([node.name.value])

    def visit_MatchMapping(self, node: cst.MatchMapping) -> None:
        if node.rest is not None:
            self.bind([node.rest.value])


def _module_rebinds(module: cst.Module, text: str | None) -> frozenset[str]:
    """The module names a ``global`` statement or a walrus anywhere binds (see _GlobalFinder).
    From the source through ``ast`` when there is one: a libcst visit of a whole module costs
    more than parsing it."""
    if text is not None:
        if ":=" not in text and not re.search(r"\bglobal\b", text):
            return frozenset()
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass  # newer syntax than this Python's: libcst parsed it
        else:
            return frozenset(_ast_rebinds(tree))
    finder = _GlobalFinder()
    module.visit(finder)
    return frozenset(finder.names)


def _ast_rebinds(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


class _GlobalFinder(cst.CSTVisitor):
    """Module variables that a shallow scan of the module does not see bound: declared
    ``global`` in some function, or bound by a walrus in any expression (conservatively, a
    walrus anywhere: one in a function binds that function's variable of the same name)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Global(self, node: cst.Global) -> bool:
        self.names.update(item.name.value for item in node.names)
        return False

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.names.update(target_names(node.target))


class _NonlocalFinder(cst.CSTVisitor):
    """Every name a ``nonlocal`` statement declares, in nested scopes at any depth."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Nonlocal(self, node: cst.Nonlocal) -> bool:
        self.names.update(item.name.value for item in node.names)
        return False
