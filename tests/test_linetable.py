"""Column positions dropped from rewritten lines; every other position kept exactly."""

from __future__ import annotations

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


def test_only_the_given_lines_lose_their_columns():
    code = compile(SOURCE, "<m>", "exec")
    stripped = linetable.strip_columns(code, {2, 4})
    for before, after in zip(code_objects(code), code_objects(stripped)):
        for old, new in zip(before.co_positions(), after.co_positions()):
            touches = old[0] is not None and any(n in (2, 4) for n in range(old[0], (old[1] or old[0]) + 1))
            assert new == ((old[0], old[0], None, None) if touches else old)


def test_a_compiled_module_costs_fewer_bytes():
    """Rewritten lines are long: their columns took 2-6 bytes per instruction."""
    line = "x{i} = __rt__.settle('x{i}@<module>', __rt__.callee((('x{i}@<module>',), ('a@<module>',), None), f)(a))\n"
    source = "".join(line.format(i=i) for i in range(200))
    code = compile(source, "<m>", "exec")
    stripped = linetable.strip_columns(code, set(range(1, 201)))
    assert len(stripped.co_linetable) < len(code.co_linetable) / 3
    assert len(marshal.dumps(stripped)) < 0.85 * len(marshal.dumps(code))


def test_changed_lines():
    assert linetable.changed_lines("a\nb\n", "a\nB\n") == {2}


def test_doctests():
    assert doctest.testmod(linetable).failed == 0
