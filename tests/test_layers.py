"""The package's layering, read from the import statements of its source.

``transforms/`` is pure source-to-source rewriting and ``runtime/`` is what compiled code calls:
neither imports the other, so the compiler stays importable without the runtime and a memoizing
process never loads libcst through the runtime. The runtime does not import the compiler, the
import hook or the command line either: they sit above it. The checks parse every module (no
text search), so relative imports, ``import a.b as c``, imports inside functions and under
``if TYPE_CHECKING:`` all count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import mandala_ast

PACKAGE = Path(mandala_ast.__file__).parent

#: (importing package, imported module prefixes it must not reach).
FORBIDDEN = [
    ("mandala_ast.transforms", ("mandala_ast.runtime",)),
    ("mandala_ast.runtime", ("mandala_ast.transforms", "mandala_ast.compiler", "mandala_ast.hook", "mandala_ast.cli")),
]


def module_name(path: Path) -> str:
    """``mandala_ast/runtime/ops.py`` -> ``mandala_ast.runtime.ops`` (a package: its ``__init__``'s)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> Iterator[tuple[str, int]]:
    """Every module ``source`` (the text of ``module``) may import, with its line, anywhere in it.

    ``from a import b`` yields both ``a`` and ``a.b``: ``b`` may be a submodule.

    >>> sorted(imported_modules("from ..compiler import x", "mandala_ast.runtime.ops"))
    [('mandala_ast.compiler', 1), ('mandala_ast.compiler.x', 1)]
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            yield base, node.lineno
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)


def _absolute(name: str | None, level: int, package: str) -> str:
    if level == 0:
        return name or ""
    parent = package.rsplit(".", level - 1)[0] if level > 1 else package
    return f"{parent}.{name}" if name else parent


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports in ``source`` that its layer forbids, as ``module:line -> target``."""
    found = []
    for importer, banned in FORBIDDEN:
        if module != importer and not module.startswith(importer + "."):
            continue
        for target, line in imported_modules(source, module, is_package):
            if any(target == prefix or target.startswith(prefix + ".") for prefix in banned):
                found.append(f"{module}:{line} -> {target}")
    return found


def test_no_module_crosses_its_layer():
    found = [
        violation
        for path in sorted(PACKAGE.rglob("*.py"))
        for violation in violations(path.read_text(), module_name(path), path.name == "__init__.py")
    ]
    assert not found, "imports that cross a layer:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, module",
    [
        ("from mandala_ast.runtime.ops import op", "mandala_ast.transforms._emit"),
        ("from ..runtime import ops", "mandala_ast.transforms._emit"),
        ("import mandala_ast.runtime.storage as s", "mandala_ast.transforms._emit"),
        ("from ..compiler import compile_module", "mandala_ast.runtime.ops"),
        ("from ... import hook", "mandala_ast.runtime.query.block"),
        ("from mandala_ast.cli import main", "mandala_ast.runtime.storage"),
        ("import mandala_ast.transforms", "mandala_ast.runtime.storage"),
        ("def f():\n    from ..transforms import _api\n", "mandala_ast.runtime.storage"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import cli\n", "mandala_ast.runtime.ops"),
    ],
)
def test_each_import_form_is_caught(source, module):
    assert violations(source, module)


@pytest.mark.parametrize(
    "source, module",
    [
        ("from .. import _errors", "mandala_ast.runtime.ops"),
        ("from .hooks import q_call", "mandala_ast.runtime.query.block"),
        ("from .runtime import ops", "mandala_ast.compiler"),  # the compiler sits above both
        ("import mandala_ast.runtimex", "mandala_ast.transforms._emit"),  # a prefix, not a package
    ],
)
def test_allowed_imports_pass(source, module):
    assert violations(source, module) == []


def test_a_package_init_resolves_relative_imports_from_itself():
    assert violations("from .query import hooks", "mandala_ast.runtime", is_package=True) == []
    assert violations("from ..transforms import x", "mandala_ast.runtime", is_package=True)
