"""Column positions dropped from rewritten lines; every other position kept exactly."""

from __future__ import annotations

import ast
import doctest
import marshal
import sys
import types
from pathlib import Path

import pytest

from mandala_ast import linetable

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="column positions came in 3.11")

SOURCES = sorted((Path(linetable.__file__).parent).rglob("*.py")) + [
    Path(module.__file__) for module in (doctest, pytest, types) if module.__file__
]


def code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from code_objects(const)


def line_map(code: types.CodeType) -> list[tuple[int, int | None]]:
    """co_lines as (code offset, line) per code unit: run boundaries may differ, lines not."""
    return [(offset, line) for start, end, line in code.co_lines() for offset in range(start, end, 2)]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_reencoding_keeps_every_position(path):
    """Our own sources and a few large ones: the re-encoded table decodes to the same
    positions and lines, for every code object (CPython's tracebacks, dis, coverage read it)."""
    module = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    for code in code_objects(module):
        again = code.replace(co_linetable=linetable.encode(code.co_positions(), code.co_firstlineno))
        assert list(again.co_positions()) == list(code.co_positions()), code.co_qualname
        assert line_map(again) == line_map(code), code.co_qualname


SOURCE = """\
def f(a):
    x = a.b(a.c)
    y = [a,
         a]
    return x + y
"""


def compiled(source: str, lines: set[int]) -> types.CodeType:
    """*source* compiled as the compiler does, without columns on *lines*."""
    return linetable.without_columns(
        lambda data: compile(data, "<m>", "exec", dont_inherit=True), source, "<m>", lines
    )


#: Both ways of dropping columns (the compiler takes one per interpreter: see linetable.py).
WAYS = {
    "tree": lambda source, lines: compile(linetable.strip_tree(ast.parse(source), lines), "<m>", "exec"),
    "code": lambda source, lines: linetable.strip_columns(compile(source, "<m>", "exec"), lines),
}


@pytest.mark.parametrize("way", WAYS)
def test_only_the_given_lines_lose_their_columns(way):
    code = compile(SOURCE, "<m>", "exec")
    stripped = WAYS[way](SOURCE, {2, 4})
    for before, after in zip(code_objects(code), code_objects(stripped)):
        assert after.co_code == before.co_code
        for old, new in zip(before.co_positions(), after.co_positions()):
            touches = old[0] is not None and any(n in (2, 4) for n in range(old[0], (old[1] or old[0]) + 1))
            assert new == ((old[0], old[0], None, None) if touches else old)


@pytest.mark.parametrize("way", WAYS)
def test_a_decorator_line_loses_its_columns_and_the_body_below_keeps_them(way):
    """A decorator is written above its ``def``, outside the lines the function spans."""
    source = "@deco(1)\ndef f():\n    return g(2)\n"
    code, stripped = compile(source, "<m>", "exec"), WAYS[way](source, {1})
    assert [p for p in stripped.co_positions() if p[0] == 1] == [
        (1, 1, None, None) for p in code.co_positions() if p[0] == 1
    ]
    (_, body), (_, stripped_body) = code_objects(code), code_objects(stripped)
    below = [p for p in body.co_positions() if p[0] != 1]
    assert below and [p for p in stripped_body.co_positions() if p[0] != 1] == below


def test_a_compiled_module_costs_fewer_bytes():
    """Rewritten lines are long: their columns took 2-6 bytes per instruction."""
    line = "x{i} = __rt__.settle('x{i}@<module>', __rt__.callee((('x{i}@<module>',), ('a@<module>',), None), f)(a))\n"
    source = "".join(line.format(i=i) for i in range(200))
    code = compile(source, "<m>", "exec")
    stripped = compiled(source, set(range(1, 201)))
    assert len(stripped.co_linetable) < len(code.co_linetable) / 3
    assert len(marshal.dumps(stripped)) < 0.85 * len(marshal.dumps(code))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="3.11 strips the code objects: see linetable.py")
def test_functions_with_rewritten_lines_still_share_their_tables_of_names():
    """Dropping the columns from each code object after compiling (``code.replace``) gave every
    function its own copy of its variable names in the ``.pyc``: 200 such functions took ~8 kB
    more than CPython's own file, ~40 bytes each."""
    function = "def f{i}(a, b):\n    c = a + b\n    return g((c, a, b, {i}), k=c)\n"
    source = "".join(function.format(i=i) for i in range(200))
    stripped = compiled(source, {3 * i + 3 for i in range(200)})
    assert len(marshal.dumps(stripped)) <= len(marshal.dumps(compile(source, "<m>", "exec")))


def test_changed_lines():
    assert linetable.changed_lines("a\nb\n", "a\nB\n") == {2}


def test_doctests():
    assert doctest.testmod(linetable).failed == 0
