"""The text of the statements that bind a module-level or class-level name in its source.

State the user's own functions rebind or fill as calls run (``global K; K = v``, a cache
``CACHE[k] = v``, ``cls.SEEN.append(x)``) counts by how its source defines it, not by the
value it holds now: the value moves as calls run, which a new process does not repeat, and
the text only when the user edits it.
"""

from __future__ import annotations

import ast
import sys
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["definition_text"]


def definition_text(module_name: str, qualname: str) -> str | None:
    """The statements binding ``qualname`` (``K``, or ``Model.K`` in the body of class
    ``Model``) at the top of its scope in module ``module_name``'s file, one a line
    (formatting and comments aside), as this process first read them since it imported the
    module (see _tree_of); "" where none does; None for a module with no file (a notebook's
    ``__main__``).

    >>> definition_text("not_a_module", "K") is None
    True
    """
    module = sys.modules.get(module_name)
    tree = _tree_of(module) if module is not None else None
    if tree is None:
        return None
    *owners, name = qualname.split(".")
    body: list[ast.stmt] = tree.body
    for owner in owners:  # (the last class of that name: it is the one the name finds)
        classes = [s for s in _statements(body) if isinstance(s, ast.ClassDef) and s.name == owner]
        if not classes:
            return ""
        body = classes[-1].body
    return "\n".join(ast.unparse(s) for s in _statements(body) if name in _bound_by(s))


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
            return ast.parse(file.read())
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
    """The names an assignment (plain, annotated, augmented) or a loop's target binds."""
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
        targets = [statement.target]
    else:
        return set()
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
