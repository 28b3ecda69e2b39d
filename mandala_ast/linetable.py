"""Drop column positions from the lines the compiler rewrote.

Since Python 3.11 every instruction carries (line, end line, column, end column), used for the
``^^^^`` markers under a traceback's source line. On a line the compiler rewrote, the columns
are those of the rewritten text, while tracebacks show the line as written: the markers land
on the wrong characters or past the end of the line. Those positions are also what made a
compiled module's ``.pyc`` large: the rewritten lines are long, and columns >= 128 take the
location table's long form (5+ bytes per instruction instead of 1-2).

:func:`without_columns` compiles a module keeping lines and dropping columns there (the
traceback then shows the line without markers, as ``python -X no_debug_ranges`` would);
untouched lines keep their exact positions. How depends on the interpreter:

* 3.12 and later: on the syntax tree, before compiling (``(line, line, -1, -1)`` positions,
  which CPython writes in its compact no-column entries, a run of instructions per entry).
  Rewriting the code objects afterwards (``code.replace``, below) gave every function a new
  tuple of its variable names, which marshal wrote out in full instead of referring back to the
  one that functions with the same names share: ~40 bytes a function.
* 3.11: on the code objects, after compiling (:func:`strip_columns`), re-encoding each table
  in its compact forms (:func:`encode`): 3.11's compiler writes an entry per instruction, which
  for the rewritten lines cost more than the shared names win (the other modules of
  ``benchmarks/bench_import.py`` grew 7-8% that way). Code without rewritten lines is kept as
  it is.
* 3.10 has no columns: the source is compiled as it is.

The table format is CPython's (``Objects/locations.md``), unchanged from 3.11 to 3.13; on an
interpreter whose code objects lack ``co_positions`` the code is returned as it is.

>>> code = compile("x = 1\\ny = [x,\\n  x]\\n", "<m>", "exec")
>>> list(strip_columns(code, {2}).co_positions()) == [
...     p if p[0] != 2 else (2, 2, None, None) for p in code.co_positions()]
True
"""

from __future__ import annotations

import ast
import itertools
import sys
import types
from collections.abc import Callable, Iterable, Set
from typing import Any

__all__ = ["changed_lines", "encode", "strip_columns", "strip_tree", "without_columns"]

Position = tuple[int | None, int | None, int | None, int | None]

# Location entry codes (Objects/locations.md).
_ONE_LINE = 10
_NO_COLUMNS = 13
_LONG = 14
_NONE = 15


def changed_lines(old: str, new: str) -> frozenset[int]:
    """1-based numbers of the lines that differ between *old* and *new* (same line count).

    >>> sorted(changed_lines("a\\nb\\nc\\n", "a\\nB\\nc\\n"))
    [2]
    """
    return frozenset(
        number for number, (a, b) in enumerate(zip(old.splitlines(), new.splitlines()), 1) if a != b
    )


def without_columns(
    compile_source: Callable[[str | ast.Module], types.CodeType], source: str, path: str, lines: Set[int]
) -> types.CodeType:
    """``compile_source(source)`` (given the text or its syntax tree) without column positions
    on *lines*. A ``SyntaxError`` in *source* is raised as compiling it would."""
    if not lines or sys.version_info < (3, 12):
        return strip_columns(compile_source(source), lines)
    return compile_source(strip_tree(ast.parse(source, path), lines))


def strip_tree(tree: ast.Module, lines: Set[int]) -> ast.Module:
    """*tree*, changed in place: the nodes that touch *lines* get the position ``(line, line,
    -1, -1)``: no columns. A node that does not touch them has no child that does (its children
    lie within its lines), but for decorators, written above their ``def``."""
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            first = getattr(child, "lineno", None)
            if first is None:  # arguments, comprehensions, operators: their children have lines
                todo.append(child)
            elif any(number in lines for number in range(first, (getattr(child, "end_lineno", None) or first) + 1)):
                _no_columns(child, first)
                todo.append(child)
            elif getattr(child, "decorator_list", None):
                todo.append(child)
    return tree


def _no_columns(node: Any, line: int) -> None:
    """(Any: the node classes that have positions share no base class that declares them.)"""
    node.col_offset = node.end_col_offset = -1
    node.end_lineno = line


def strip_columns(code: types.CodeType, lines: Set[int]) -> types.CodeType:
    """*code* (and the code nested in it) without column positions on *lines*."""
    if not lines or not hasattr(code, "co_positions") or not hasattr(code, "co_qualname"):
        return code
    return _strip(code, lines, {})


def _positions(code: types.CodeType) -> list[Position]:
    # getattr: co_positions is 3.11+ (the caller has checked), and the type checker targets 3.10.
    return list(getattr(code, "co_positions")())  # noqa: B009


def _strip(code: types.CodeType, lines: Set[int], tables: dict[bytes, bytes]) -> types.CodeType:
    consts = tuple(
        _strip(const, lines, tables) if isinstance(const, types.CodeType) else const
        for const in code.co_consts
    )
    old = _positions(code)
    memo: dict[Position, Position] = {}  # ~8 code units per distinct position (inline caches)
    new = [memo[p] if p in memo else memo.setdefault(p, _without_columns(p, lines)) for p in old]
    if new == old and all(a is b for a, b in zip(consts, code.co_consts)):
        # Untouched code stays the very object the compiler made: replace() would copy its
        # tuples of names, which marshal then writes again instead of referring back to them.
        return code
    table = encode(new, code.co_firstlineno)
    # One object per distinct table, as the compiler itself does: marshal writes a shared
    # object once and refers back to it, so similar functions cost a few bytes each.
    table = tables.setdefault(table, table)
    return code.replace(co_consts=consts, co_linetable=table)


def _without_columns(position: Position, lines: Set[int]) -> Position:
    line, end_line, _col, _end_col = position
    if line is None:
        return position
    last = end_line if end_line is not None else line
    if any(number in lines for number in range(line, last + 1)):
        return (line, line, None, None)
    return position


def encode(positions: Iterable[Position], first_line: int) -> bytes:
    """The location table for *positions* (one per code unit), in the most compact forms.

    Runs of equal positions share entries of up to 8 code units.
    """
    out = bytearray()
    previous_line = first_line
    for position, run in itertools.groupby(positions):
        length = sum(1 for _ in run)
        while length > 0:
            previous_line = _entry(out, position, min(length, 8), previous_line)
            length -= 8
    return bytes(out)


def _entry(out: bytearray, position: Position, length: int, previous_line: int) -> int:
    """Append one entry; returns the line the next entry's delta is relative to."""
    line, end_line, col, end_col = position
    if line is None:
        out.append(_head(_NONE, length))
        return previous_line
    delta = line - previous_line
    if col is None or end_col is None:
        out.append(_head(_NO_COLUMNS, length))
        _svarint(out, delta)
    elif end_line == line and delta == 0 and col < 80 and 0 <= end_col - col < 16:
        out.append(_head(col // 8, length))
        out.append(((col % 8) << 4) | (end_col - col))
    elif end_line == line and 0 <= delta < 3 and col < 128 and end_col < 128:
        out.append(_head(_ONE_LINE + delta, length))
        out += bytes((col, end_col))
    else:
        out.append(_head(_LONG, length))
        _svarint(out, delta)
        _varint(out, (end_line if end_line is not None else line) - line)
        _varint(out, col + 1)
        _varint(out, end_col + 1)
    return line


def _head(kind: int, length: int) -> int:
    return 0x80 | (kind << 3) | (length - 1)


def _varint(out: bytearray, value: int) -> None:
    """6 bits per byte, low bits first; bit 6 says another byte follows."""
    while value >= 64:
        out.append(0x40 | (value & 63))
        value >>= 6
    out.append(value)


def _svarint(out: bytearray, value: int) -> None:
    _varint(out, (-value << 1) | 1 if value < 0 else value << 1)
