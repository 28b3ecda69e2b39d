"""Fingerprints of user code: blake3 of a normalised syntax tree.

Comments, docstrings, blank lines, formatting and decorators never change a fingerprint, and
neither does renaming a local variable consistently (locals are numbered by first appearance).
Parameter names, the return annotation and everything else do. The stdlib ``ast`` module is
enough here, and it keeps the runtime free of libcst.
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import os
import textwrap
import time
import types
from typing import Any

from . import parsing
from .bytecode_reads import nested_codes
from .hashing import digest

__all__ = ["EDITED", "NO_SOURCE", "Fingerprint", "decorators", "fingerprint", "forget"]

#: How the text of a fingerprint made from bytecode starts: it is no source text, so equal
#: texts say nothing (two different codes share it), and changes are told by the digest alone.
NO_SOURCE = "<no source for "
#: In the text of a fingerprint made from bytecode because the code's file was edited since
#: it was imported: the file holds other code than the one that runs.
EDITED = "its file changed after it was imported"


class Fingerprint:
    """A code object's fingerprint and the source text it was taken from (for diffs)."""

    __slots__ = ("digest", "source", "tree")

    def __init__(self, digest: bytes, source: str, tree: ast.AST | None) -> None:
        self.digest = digest
        self.source = source
        self.tree = tree


def fingerprint(obj: Any, *, signature_defaults: bool = True) -> Fingerprint:
    """Fingerprint a function or class (cached per code object, so redefinitions are seen).

    With ``signature_defaults=False`` (used for ops), parameters that have defaults are left
    out: adding one does not change the op, and the storage handles their values itself.

    >>> def f(x):
    ...     y = x + 1  # comment
    ...     return y
    >>> def g(x):
    ...     z = x + 1
    ...     return z
    >>> fingerprint(f).digest == fingerprint(g).digest
    True
    """
    key = obj.__code__ if isinstance(obj, types.FunctionType) else obj
    try:
        return _cached(key, obj, signature_defaults)
    except TypeError:  # unhashable class objects are rare; compute without the cache
        return _compute(obj, signature_defaults)


def forget() -> None:
    """Drop every cached fingerprint. The cache is keyed on code objects, which compare by
    content: after IPython's ``%autoreload`` assigned a function new code that equals the
    old (only a default changed, outside the code), the old fingerprint would be served."""
    _cached.cache_clear()


@functools.lru_cache(maxsize=4096)
def _cached(key: Any, obj: Any, signature_defaults: bool) -> Fingerprint:
    return _compute(obj, signature_defaults)


def _compute(obj: Any, signature_defaults: bool) -> Fingerprint:
    source = _source_of(obj)
    if source is None:
        return Fingerprint(_bytecode_digest(obj), f"{NO_SOURCE}{obj!r}>", None)
    if not _source_is_running_code(obj):
        name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"
        note = f"{NO_SOURCE}{name}: {EDITED}; fingerprinted from the code that runs>"
        return Fingerprint(_bytecode_digest(obj), note, None)
    tree = _definition(parsing.parse(source))
    normalised = _normalise(tree)
    if not signature_defaults:
        _drop_defaulted_parameters(normalised)
    return Fingerprint(digest(_serialise(normalised).encode()), source, tree)


def decorators(tree: ast.AST | None) -> tuple[bytes, str] | None:
    r"""The digest and text of the decorator lines of a function's or class's tree (as
    ``fingerprint`` keeps it), which its fingerprint leaves out: None where there are none.

    >>> decorators(ast.parse("@cache\n@retry( 3 )\ndef f(): pass").body[0])[1]
    '@cache\n@retry(3)'
    """
    found = getattr(tree, "decorator_list", None)
    if not found:
        return None
    return digest(_serialise(found).encode()), "\n".join(f"@{ast.unparse(node)}" for node in found)


def _serialise(node: Any) -> str:
    """A text of the tree that is the same on every Python version (3.10 to 3.13 checked).

    Not ``ast.dump``: its text changes between versions for the same source (3.12 adds
    ``type_params=[]``, 3.13 leaves out empty lists and None, 3.8 added ``type_comment=None``),
    which made every op look changed after a Python upgrade. Here fields that are None or empty
    are skipped, which is how those versions differ, and the others are named (so ``x[:a]`` and
    ``x[a:]`` differ); the empty '' parts 3.12 puts in nested f-string format specs are dropped.
    A constant carries its type, so 1, 1.0, True and '1' differ.
    """
    if isinstance(node, ast.AST):
        fields = []
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(node, ast.Constant) and name == "value":
                fields.append(f"value={type(value).__name__}:{value!r}")  # None is a value here
            elif isinstance(node, ast.JoinedStr) and name == "values":
                fields.append(f"values={_serialise([v for v in node.values if not _is_empty_text(v)])}")
            elif value is not None and value != []:
                fields.append(f"{name}={_serialise(value)}")
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):  # None inside a list keeps its place (`{**a}`, kw_defaults)
        return f"[{', '.join(_serialise(item) for item in node)}]"
    return repr(node)  # identifiers, and ints such as level, conversion, is_async


def _is_empty_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == ""


def _drop_defaulted_parameters(tree: ast.AST) -> None:
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    function = next((n for n in ast.walk(tree) if isinstance(n, kinds)), None)
    if function is None:
        return
    args = function.args
    positional = args.posonlyargs + args.args
    keep = len(positional) - len(args.defaults)
    args.args = args.args[: max(0, keep - len(args.posonlyargs))]
    args.posonlyargs = args.posonlyargs[:keep]
    args.defaults = []
    kept = [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]
    args.kwonlyargs = [a for a, _ in kept]
    args.kw_defaults = [d for _, d in kept]


def _source_of(obj: Any) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError, IndentationError):
        return _cell_class_source(obj) if isinstance(obj, type) else None


#: Files last changed before this moment (2 s before the runtime was imported, for coarse
#: file times) hold the code this process imported from them.
_STARTED = time.time() - 2.0


def _source_is_running_code(obj: Any) -> bool:
    """Whether the source file ``inspect`` reads is still the text ``obj``'s code came from.

    Source is read when code is first fingerprinted, which may be long after its module was
    imported: a helper edited meanwhile (the user changing code while a long script runs)
    would label the old code's results with the new code's fingerprint, and the next process,
    running the new code, would load them. A file changed since this process started is
    compiled again and each of ``obj``'s code objects is compared with the one at its line.
    """
    for code in _code_objects(obj):
        try:
            stat = os.stat(code.co_filename)
        except (OSError, ValueError):  # no file (a notebook cell, exec'd text): nothing to misread
            continue
        if stat.st_mtime < _STARTED or _rewritten(code):
            continue
        there = _file_code(code.co_filename, stat.st_mtime_ns, stat.st_size).get((code.co_name, code.co_firstlineno), ())
        if not any(_same_code(code, other) for other in there):
            return False
    return True


def _rewritten(code: types.CodeType) -> bool:
    """Code the compiler rewrote (a workflow, a function with a storage block): it calls the
    runtime under names the file's text does not have, so compiling the file cannot match it."""
    names = code.co_names
    if "__mandala_rt__" in names or "__mandala_callee__" in names:
        return True
    return any(isinstance(c, types.CodeType) and _rewritten(c) for c in code.co_consts)


def _code_objects(obj: Any) -> list[types.CodeType]:
    """The code objects of a function (the one ``inspect`` reads the source of, under any
    ``functools.wraps`` wrappers), or of the methods a class defines."""
    try:
        obj = inspect.unwrap(obj)
    except ValueError:  # a cycle of __wrapped__
        return []
    if isinstance(obj, type):
        members = [getattr(m, "__func__", getattr(m, "fget", m)) for m in vars(obj).values()]
        return [m.__code__ for m in members if isinstance(m, types.FunctionType)]
    code = getattr(obj, "__code__", None)
    return [code] if isinstance(code, types.CodeType) else []


@functools.lru_cache(maxsize=64)
def _file_code(path: str, mtime_ns: int, size: int) -> dict[tuple[str, int], list[types.CodeType]]:
    """Every code object compiled from the file as it is now, by name and first line (two
    lambdas may share both)."""
    try:
        with open(path, "rb") as file:
            module = compile(file.read(), path, "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError):
        return {}
    found: dict[tuple[str, int], list[types.CodeType]] = {}
    for code in nested_codes(module):
        found.setdefault((code.co_name, code.co_firstlineno), []).append(code)
    return found


def _same_code(one: types.CodeType, other: types.CodeType) -> bool:
    """Same instructions, names and constants (positions aside)."""
    if (one.co_code, one.co_names, one.co_varnames, one.co_freevars, one.co_cellvars) != (
        other.co_code, other.co_names, other.co_varnames, other.co_freevars, other.co_cellvars
    ) or len(one.co_consts) != len(other.co_consts):
        return False
    return all(_same_constant(a, b) for a, b in zip(one.co_consts, other.co_consts))


def _same_constant(one: Any, other: Any) -> bool:
    if isinstance(one, types.CodeType) and isinstance(other, types.CodeType):
        return _same_code(one, other)
    return type(one) is type(other) and (one == other or repr(one) == repr(other))


def _cell_class_source(cls: type) -> str | None:
    """The source of a class defined in a notebook cell. inspect finds a class through its
    module's file, and a notebook's ``__main__`` has none; but the class's methods know the
    cell they were compiled from, and the cell's text is in linecache."""
    for member in vars(cls).values():
        code = getattr(getattr(member, "__func__", getattr(member, "fget", member)), "__code__", None)
        lines = linecache.getlines(code.co_filename) if code is not None else []
        try:
            tree = parsing.parse("".join(lines))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
                if node.lineno <= code.co_firstlineno <= (node.end_lineno or 0):  # type: ignore[union-attr]
                    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    return textwrap.dedent("".join(lines[start - 1 : node.end_lineno]))
    return None


def _definition(module: ast.Module) -> ast.AST:
    # getsource of a lambda can return the whole statement it sits in; keep what parsed.
    return module.body[0] if len(module.body) == 1 else module


def _normalise(tree: ast.AST) -> ast.AST:
    tree = _StripDocstrings().visit(_copy(tree))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.decorator_list = []
            if not isinstance(node, ast.ClassDef):
                _RenameLocals(_local_names(node)).visit(node)
    return tree


def _copy(tree: ast.AST) -> ast.AST:
    return parsing.parse(ast.unparse(tree)) if not isinstance(tree, ast.Module) else tree


class _StripDocstrings(ast.NodeTransformer):
    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            body[:] = body[1:] or [ast.Pass()]
        return node


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, str]:
    """Locals (assigned, not parameters, not declared global/nonlocal) -> canonical names."""
    params = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
    declared = {
        name
        for node in ast.walk(function)
        if isinstance(node, (ast.Global, ast.Nonlocal))
        for name in node.names
    }
    order: dict[str, str] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            if node.id not in params and node.id not in declared and node.id not in order:
                order[node.id] = f"_local{len(order)}"
    return order


class _RenameLocals(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node


def _bytecode_digest(obj: Any) -> bytes:
    code = getattr(obj, "__code__", None)
    if code is None:
        return digest(repr(obj).encode())
    return digest(code.co_code + repr(code.co_consts).encode() + repr(code.co_names).encode())
