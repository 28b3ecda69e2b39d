"""The error tree in ``mandala_ast/_errors.py``'s docstring is what users read to choose what to
catch: it must name every error and warning class of the module, under its real base classes."""

from __future__ import annotations

import inspect
import re

import pytest

from mandala_ast import _errors

#: ``├── Name (OtherBase)`` or a root ``Exception``: the name and its other bases.
_ENTRY = re.compile(r"(?:[├└]── )?(?P<name>\w+)(?: \((?P<others>[\w, ]+)\))?")


def drawn_tree(doc: str) -> dict[str, tuple[str, ...]]:
    """``name -> (parent, *other bases)`` as the docstring's tree draws it (roots: ``()``).

    >>> drawn_tree("T::\\n\\n    Exception\\n     └── E (OSError)  text\\n")
    {'Exception': (), 'E': ('Exception', 'OSError')}
    """
    tree: dict[str, tuple[str, ...]] = {}
    open_names: list[tuple[int, str]] = []  # (column, name) of the entries above, by depth
    for line in doc.split("::", 1)[1].splitlines():
        column = len(line) - len(line.lstrip(" │"))
        match = _ENTRY.match(line, column)
        if not line.strip() or match is None:
            continue
        while open_names and open_names[-1][0] >= column:
            open_names.pop()
        others = tuple(b.strip() for b in match["others"].split(",")) if match["others"] else ()
        tree[match["name"]] = ((open_names[-1][1],) if open_names else ()) + others
        open_names.append((column, match["name"]))
    return tree


def error_classes() -> list[type]:
    return [
        cls
        for _, cls in inspect.getmembers(_errors, inspect.isclass)
        if cls.__module__ == _errors.__name__ and issubclass(cls, (_errors.MandalaError, _errors.MandalaWarning))
    ]


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_the_tree_names_each_class_under_its_real_bases(cls):
    tree = drawn_tree(_errors.__doc__)
    assert cls.__name__ in tree, f"{cls.__name__} is missing from the tree in _errors.py"
    assert tree[cls.__name__] == tuple(base.__name__ for base in cls.__bases__)


def test_the_tree_names_no_class_that_does_not_exist():
    drawn = set(drawn_tree(_errors.__doc__)) - {"Exception", "UserWarning"}
    assert drawn == {cls.__name__ for cls in error_classes()}


def test_every_class_is_exported():
    assert sorted(_errors.__all__) == sorted(cls.__name__ for cls in error_classes())
