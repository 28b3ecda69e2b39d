"""The text of the statements that bind a module-level or class-level name in its source.

State the user's own functions rebind or fill as calls run (``global K; K = v``, a cache
``CACHE[k] = v``, ``cls.SEEN.append(x)``) counts by how its source defines it, not by the
value it holds now: the value moves as calls run, which a new process does not repeat, and
the text only when the user edits it. That text takes in what else defines the value: the
module-level names its statements read (``SEEN = list(BASE)``), the module a name is imported
from, a module line setting a class attribute after the class body.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

from . import parsing

__all__ = ["NO_LITERAL", "definition_text", "literal_value"]


def definition_text(module_name: str, qualname: str, follow: Callable[[str], bool] = lambda name: True) -> str | None:
    """The statements binding ``qualname`` (``K``, or ``Model.K`` in the body of class
    ``Model``) at the top of its scope in module ``module_name``'s file, one a line
    (formatting and comments aside), as this process first read them since it imported the
    module (see _tree_of); "" where none does; None for a module with no file (a notebook's
    ``__main__``). With them, what else defines the value they bind (see _defining): a line
    of the module setting ``Model.K``, the statements defining the module-level names they
    read (``SEEN = list(BASE)``), and those binding a name they import in its module, where
    ``follow`` accepts that module (the user's own, not a library's).

    >>> definition_text("not_a_module", "K") is None
    True
    """
    tree = _current_tree(module_name)
    if tree is None:
        return None
    known = _TEXTS.get((module_name, qualname))
    if known is not None and all(_current_tree(name) is read for name, read in known[0]):
        return known[1]  # (read each block a value of it may have moved: worked out once)
    lines: dict[str, None] = {}
    seen: set[tuple[str, str]] = set()
    _defining(module_name, tree, qualname, follow, lines, seen)
    text = "\n".join(lines)
    if len(_TEXTS) > 4096:
        _TEXTS.clear()
    _TEXTS[(module_name, qualname)] = (tuple((name, _current_tree(name)) for name in {m for m, _ in seen}), text)
    return text


#: What :func:`literal_value` answers for a name its module does not bind to one literal.
NO_LITERAL = object()


def literal_value(module_name: str, qualname: str) -> Any:
    """The value of the one literal (``K = 3``, ``CACHE = {}``) the statements binding
    ``qualname`` in module ``module_name`` give it: its value as the module defines it,
    before anything set it. NO_LITERAL where another statement, or none, binds it.

    >>> literal_value("not_a_module", "K") is NO_LITERAL
    True
    """
    tree = _current_tree(module_name)
    found = _binding(tree, qualname) if tree is not None else []
    statement = found[0] if len(found) == 1 else None
    targets = getattr(statement, "targets", None) or [getattr(statement, "target", None)]
    if not isinstance(statement, (ast.Assign, ast.AnnAssign)) or statement.value is None or len(targets) != 1 \
            or not isinstance(targets[0], (ast.Name, ast.Attribute)):  # (`A, B = 1, 2`: not A's literal)
        return NO_LITERAL
    try:
        return ast.literal_eval(statement.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return NO_LITERAL


#: (module name, qualname) -> ((module name, tree) of each module its text was read from, the text)
_TEXTS: dict[tuple[str, str], tuple[tuple[tuple[str, Any], ...], str]] = {}


def _current_tree(module_name: str) -> ast.Module | None:
    module = sys.modules.get(module_name)
    return _tree_of(module) if module is not None else None


def _defining(module_name: str, tree: ast.Module, qualname: str, follow: Callable[[str], bool],
              lines: dict[str, None], seen: set[tuple[str, str]]) -> None:
    """Add to ``lines`` the statements that define ``qualname``'s value in module ``module_name``
    (``tree``), and, once each (``seen``), those defining the names they read or import."""
    if (module_name, qualname) in seen or len(seen) > _MOST_NAMES:
        return
    seen.add((module_name, qualname))
    for statement in _binding(tree, qualname):
        lines[ast.unparse(statement)] = None
        for name in sorted(_names_read(statement)):  # (a set's order differs in every process)
            _defining(module_name, tree, name, follow, lines, seen)
        for source, name in _imported(statement, module_name, qualname):
            other = sys.modules.get(source) if follow(source) else None
            other_tree = _tree_of(other) if other is not None else None
            if other_tree is not None:
                _defining(source, other_tree, name, follow, lines, seen)


#: What ``from module import *`` binds: any name.
ANY = "*"
#: How many names one definition follows at most (a chain of constants, not a whole module).
_MOST_NAMES = 64


def _binding(tree: ast.Module, qualname: str) -> list[ast.stmt]:
    """The statements binding ``qualname`` in its scope, and for a class attribute, the
    module's own statements setting it (``Model.K = 3`` after the class body)."""
    *owners, name = qualname.split(".")
    body: list[ast.stmt] = tree.body
    for owner in owners:  # (the last class of that name: it is the one the name finds)
        classes = [s for s in _statements(body) if isinstance(s, ast.ClassDef) and s.name == owner]
        if not classes:
            return []
        body = classes[-1].body
    if not owners:
        index = _index_of(tree)
        return index.get(name, []) + index.get(ANY, [])
    found = [s for s in _statements(body) if name in _bound_by(s)]
    return found + [s for s in _statements(tree.body) if qualname in _attributes_set(s)]


def _index_of(tree: ast.Module) -> dict[str, list[ast.stmt]]:
    """The statements of a module's scope by the names they bind: built once per tree."""
    known = _INDEXES.get(id(tree))
    if known is not None and known[0] is tree:
        return known[1]
    index: dict[str, list[ast.stmt]] = {}
    for statement in _statements(tree.body):
        for name in _bound_by(statement):
            index.setdefault(name, []).append(statement)
    if len(_INDEXES) > 4096:
        _INDEXES.clear()
    _INDEXES[id(tree)] = (tree, index)
    return index


#: id(tree) -> (the tree, its index): the tree kept so that its id stays its own.
_INDEXES: dict[int, tuple[ast.Module, dict[str, list[ast.stmt]]]] = {}


def _names_read(statement: ast.stmt) -> set[str]:
    """The names a binding statement reads (``BASE`` of ``SEEN = list(BASE)``); not those of
    the functions and classes it defines."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return set()
    return {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _imported(statement: ast.stmt, module_name: str, qualname: str) -> list[tuple[str, str]]:
    """``[(module, name)]`` where a ``from module import name`` binds ``qualname`` (a module-
    level name; ``*`` may bind any)."""
    if not isinstance(statement, ast.ImportFrom) or "." in qualname:
        return []
    package = module_name if _is_package(module_name) else module_name.rpartition(".")[0]
    try:
        source = importlib.util.resolve_name("." * statement.level + (statement.module or ""), package)
    except (ImportError, ValueError):
        return []
    for alias in statement.names:
        if alias.name == "*":  # (the last star import that binds it wins, as at run time: rare)
            return [(source, qualname)]
        if (alias.asname or alias.name) == qualname:
            return [(source, alias.name)]
    return []


def _is_package(module_name: str) -> bool:
    return hasattr(sys.modules.get(module_name), "__path__")


def _attributes_set(statement: ast.stmt) -> set[str]:
    """``Model.K`` of each ``Model.K = v`` (or ``+=``, annotated) the statement is."""
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    else:
        return set()
    return {ast.unparse(t) for t in targets if isinstance(t, ast.Attribute)}


def _tree_of(module: types.ModuleType) -> ast.Module | None:
    """The syntax tree of ``module``'s file, read once per import of it: a file edited while
    a long script runs holds other text than the one the module ran, which would label the
    results of the old values with the new text (the next process, running the new text,
    would load them). A reload (``importlib.reload``, ``%autoreload``) gives the module a new
    ``__spec__``, and its file is read again."""
    key = getattr(module, "__spec__", None) or module
    known = _READ.get(module.__name__)
    if known is not None and known[0] is key:
        return known[1]
    path = getattr(module, "__file__", None)
    tree = _parsed(path) if isinstance(path, str) else None
    if len(_READ) > 4096:  # modules made again and again must not pile up
        _READ.clear()
    _READ[module.__name__] = (key, tree)
    return tree


#: module name -> (its ``__spec__`` when its file was read, or the module itself; the tree read)
_READ: dict[str, tuple[Any, ast.Module | None]] = {}


def _parsed(path: str) -> ast.Module | None:
    try:
        with open(path, "rb") as file:
            return parsing.parse(file.read())
    except (OSError, SyntaxError, ValueError):
        return None


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a scope, those inside ``if``, ``try``, ``with`` and loops too, not
    those of the functions and classes it defines (their own scopes)."""
    for statement in body:
        yield statement
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _statements(getattr(statement, field, None) or [])
        for handler in getattr(statement, "handlers", None) or []:
            yield from _statements(handler.body)


def _bound_by(statement: ast.stmt) -> set[str]:
    """The names an assignment (plain, annotated, augmented), a loop's target, an import
    (``*``: any), a ``def`` or a ``class`` binds."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, ast.Import):
        return {(a.asname or a.name).partition(".")[0] for a in statement.names}
    if isinstance(statement, ast.ImportFrom):
        return {ANY if a.name == "*" else a.asname or a.name for a in statement.names}
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
        targets = [statement.target]
    else:
        return set()
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
