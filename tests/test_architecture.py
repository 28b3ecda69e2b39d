"""Architecture rules checked over the AST of every module in ``mandala_ast/``.

**No module uses another module's private names.** A name starting with one underscore
(``_name``, not a dunder) belongs to the module or class that defines it:

- ``from a.b import _x`` is refused when ``_x`` is a function, class or variable of
  ``a.b``. It is allowed when ``_x`` is a private *module* ``a/b/_x.py`` and the importing
  module lives in package ``a.b`` itself (its ``__init__`` or any module under it):
  a package's private modules are its own business, not its users'.
- ``import a._m`` / ``from a._m import name``: same rule, ``a._m`` may be imported only by
  modules inside package ``a``. (``mandala_ast._errors`` is therefore importable by every
  module of ``mandala_ast``, and by nothing outside it but through ``mandala_ast``.)
- ``x._name`` (attribute access) is refused unless ``x`` is ``self`` or ``cls``: an object's
  private attributes are reached only by its own methods. An AST cannot tell what ``x`` is,
  so a short allowlist of names that are private only in spelling stays allowed:
  ``sys._getframe`` (the documented way to read a frame cheaply), namedtuple's ``_fields``
  (its documented API), IPython's ``_repr_html_`` display protocol, and
  ``argparse._SubParsersAction`` (the type ``add_subparsers()`` returns, which has no public
  name), and Pillow's ``Image._getencoder`` (the encoder ``tobytes()`` itself uses, there
  read piece by piece; pil_types falls back to ``tobytes()`` on a Pillow without it), and
  ``os._exit`` (the documented way to end a process at once, without the clean-up of the
  interpreter: a batch's pool worker whose coordinator died).
"""

from __future__ import annotations

import ast
from pathlib import Path

import mandala_ast

PACKAGE_DIR = Path(mandala_ast.__file__).parent
# The standard library's documented low-level threading module: the import hook takes its lock
# from it because importing `threading` would double what `install()` costs.
ALLOWED_MODULES = {"_thread"}
ALLOWED_ATTRIBUTES = {
    ("sys", "_getframe"),
    ("argparse", "_SubParsersAction"),
    ("Image", "_getencoder"),
    ("os", "_exit"),
    (None, "_fields"),
    (None, "_repr_html_"),
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        found.append((".".join(parts), path))
    return found


def _package_of(module: str, path: Path) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to the package)."""
    return module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(dotted: str) -> bool:
    path = PACKAGE_DIR.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _inside(package: str, owner: str) -> bool:
    return package == owner or package.startswith(owner + ".")


def _private_module_problems(importer_package: str, dotted: str) -> list[str]:
    """A private module anywhere in ``dotted`` may be reached only from inside its package."""
    problems, parts = [], dotted.split(".")
    if dotted in ALLOWED_MODULES:
        return problems
    for i, part in enumerate(parts):
        owner = ".".join(parts[:i])
        if _private(part) and not _inside(importer_package, owner):
            problems.append(f"imports private module {'.'.join(parts[: i + 1])} from outside {owner}")
    return problems


def _import_problems(module: str, path: Path, tree: ast.AST) -> list[str]:
    package, problems = _package_of(module, path), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                problems += _private_module_problems(package, alias.name)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, package)
            problems += _private_module_problems(package, source)
            for alias in node.names:
                if not _private(alias.name):
                    continue
                if _is_module(f"{source}.{alias.name}"):
                    problems += _private_module_problems(package, f"{source}.{alias.name}")
                else:
                    problems.append(f"line {node.lineno}: from {source} import {alias.name}")
    return problems


def _attribute_problems(tree: ast.AST) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        owner = node.value.id if isinstance(node.value, ast.Name) else None
        if owner in ("self", "cls") or (owner, node.attr) in ALLOWED_ATTRIBUTES or (None, node.attr) in ALLOWED_ATTRIBUTES:
            continue
        problems.append(f"line {node.lineno}: {ast.unparse(node)}")
    return problems


def _problems(check) -> list[str]:
    found = []
    for module, path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        found += [f"{module}: {problem}" for problem in check(module, path, tree)]
    return found


def test_no_module_imports_another_modules_private_name():
    assert _problems(_import_problems) == []


def test_no_module_reads_another_objects_private_attributes():
    assert _problems(lambda module, path, tree: _attribute_problems(tree)) == []


def test_the_import_check_catches_a_private_name_and_a_foreign_private_module():
    tree = ast.parse("from ..ops import _flatten\nfrom ...transforms._emit import rt_call\nfrom . import _detect\n")
    problems = _import_problems("mandala_ast.runtime.query.block", PACKAGE_DIR / "runtime/query/block.py", tree)
    assert problems == [
        "line 1: from mandala_ast.runtime.ops import _flatten",
        "imports private module mandala_ast.transforms._emit from outside mandala_ast.transforms",
        "line 3: from mandala_ast.runtime.query import _detect",
    ]


def test_the_import_check_lets_a_package_use_its_own_private_modules():
    tree = ast.parse("from . import _emit\nfrom ._detect import survey\nfrom .._errors import QueryError\n")
    assert _import_problems("mandala_ast.transforms._api", PACKAGE_DIR / "transforms/_api.py", tree) == []


def test_the_attribute_check_allows_only_self_cls_and_the_allowlist():
    tree = ast.parse("self._a\ncls._b\nsys._getframe(1)\nstorage._store\nnode._fields\n")
    assert _attribute_problems(tree) == ["line 4: storage._store"]
