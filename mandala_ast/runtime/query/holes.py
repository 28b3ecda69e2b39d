"""Rows another row stands for: equal to it wherever they have a value, with a hole where it
has one.

A variable tied to an earlier call (``v7 = inc(v1)``) is matched by history where compiled
code recorded it, by content otherwise. So a call uncompiled code stored with an equal value
(``inc(0)`` run as plain Python) also matches ``v1 = inc(v0)``, and the row it starts finds no
``inc(v1)`` of its own: where ``if v1 > 0:`` holds, v7 is a hole (None), beside the row of the
compiled call that has it. The run block made one tuple; this is that tuple with a hole.

A guard is a function of its row's values, so a row equal to another wherever it has a value
cannot be a tuple of its own: both rows would have taken the same branches. It is left out,
and its calls count as the other row's (a delete block removes them with it). A row with a
hole that no other row fills (a run interrupted before the guarded call) stays.

Rows are compared on every variable of the block, not only the columns shown: shown alone,
``(x=1, y=None)`` would be filled by ``(x=1, y=5)`` even where an unshown ``z`` tells them apart.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["filled_by"]


def filled_by(keys: Sequence[tuple]) -> dict[int, int]:
    """For each row (an index into ``keys``, its variables' content ids, None for a hole)
    that another row fills, the row that stands for it: one that fills no hole left.

    >>> filled_by([(b"a", None), (b"a", b"b"), (b"c", None)])
    {0: 1}
    """
    found: dict[int, int] = {}
    for holes, rows in _rows_by_holes(keys).items():
        fillers = _fillers(keys, holes)
        for i in rows:
            j = fillers.get(_without(keys[i], holes))
            if j is not None:
                found[i] = j
    return {i: _last(found, j) for i, j in found.items()}


def _rows_by_holes(keys: Sequence[tuple]) -> dict[tuple[int, ...], list[int]]:
    """The rows with holes, grouped by where their holes are (few shapes: one per guard)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, key in enumerate(keys):
        holes = tuple(p for p, k in enumerate(key) if k is None)
        if holes:
            groups.setdefault(holes, []).append(i)
    return groups


def _fillers(keys: Sequence[tuple], holes: tuple[int, ...]) -> dict[tuple, int]:
    """The first row with a value in one of ``holes``, by its values elsewhere."""
    found: dict[tuple, int] = {}
    for j, key in enumerate(keys):
        if any(key[p] is not None for p in holes):
            found.setdefault(_without(key, holes), j)
    return found


def _without(key: tuple, holes: tuple[int, ...]) -> tuple:
    return tuple(k for p, k in enumerate(key) if p not in holes)


def _last(found: dict[int, int], j: int) -> int:
    """Follow fillers to one that is not filled itself (each step fills a hole more)."""
    while j in found:
        j = found[j]
    return j
