"""Which calls under an ``if`` can be found from their producers' rows by recorded history alone.

A call under an ``if`` is looked up once per row of the calls joined before it (sql.py). Its
edge from a producer holds by history (the input's ``src_call``, recorded by compiled code)
or by content (uncompiled code records none: the input's content id must equal the
producer's output's). The history half is a search of ``idx_inputs_src`` by the producer's
row id, and rows come in row-id order, so successive searches read neighbouring pages. The
content half is a search of ``idx_inputs_cid``, keyed by hashes: a random page a row. With
both halves in one OR, SQLite looked the call up by content in every row, and at 1M stored
calls a pattern of 500k rows spent 4.2 s in its statement against 2.5 s by history alone.

The content half can only match a call stored without history (``exact = 0``) whose input on
that edge has no recorded source. So when no call of the guarded op's version is one, the edge
is written by history alone. (A call compiled code made inside a function, ``add(inc(k), k)``
with ``k`` a parameter, is not exact, as ``k`` may be any op's output; but its first input
came from ``inc``, and that source is recorded: such calls, common in real code, keep the
edge from ``inc`` by history.) Finding that out reads the version's calls (~0.45 µs a call),
and the named inputs of those not exact, so it is only asked when the query reads every call
of its first op anyway (no literal narrows a call outside an ``if``), and stops, undecided,
after twice as many calls as that op has: a query that matches a handful of rows never pays
for it. What is stored changes, so result.py asks again each time it reads rows, in the
same snapshot as the statement.
"""

from __future__ import annotations

import sqlite3

from .pattern import CallNode, Const, DomainVar, OutputVar, Pattern

__all__ = ["tracked_calls"]

_COUNT_SQL = "SELECT count(*) FROM calls WHERE version_id = ?"
# Up to ``limit`` of the version's calls: how many were read, and whether one has no history
# on an edge: not exact, and fewer of the named inputs with a source than names. (CASE, not
# AND: only calls that are not exact have their inputs read.)
_UNTRACKED_SQL = (
    "SELECT count(*), ifnull(max(CASE WHEN c.exact = 0 THEN (SELECT count(*) FROM call_inputs i"
    " WHERE i.call_id = c.id AND i.name IN ({names}) AND i.src_call IS NOT NULL) < ? ELSE 0 END), 0)"
    " FROM (SELECT id, exact FROM calls WHERE version_id = ? LIMIT ?) AS c"
)
#: Calls read at least, however few the first op has (a few ms).
_MIN_BUDGET = 10_000


def tracked_calls(conn: sqlite3.Connection, pattern: Pattern) -> frozenset[int]:
    """The numbers of the calls under an ``if`` whose edges from their producers may be
    written by history alone: no call of their op's version lacks history. Calls fed an
    element of a collection keep both halves (compiled code recorded some of those exact).

    >>> tracked_calls(conn, pattern)      # doctest: +SKIP
    frozenset({2})
    """
    from ..structures import ITEM_VERSION_ID  # (late, as sql.py: structures imports much)

    required = [call for call in pattern.calls if not call.optional]
    guarded = [call for call in pattern.calls if call.optional and _fed_by_calls(call, ITEM_VERSION_ID)]
    # (A literal on any required call, `add(y, 4)` past `y = inc(x)`, may leave a handful of rows.)
    if not required or not guarded or any(map(_narrowed, required)):
        return frozenset()
    budget = 2 * conn.execute(_COUNT_SQL, (required[0].version_id,)).fetchone()[0] + _MIN_BUDGET
    edges = {_edges(call) for call in guarded}  # (each read once: `if a: f(y)`, `else: f(z)`)
    tracked = {edge for edge in edges if _all_tracked(conn, *edge, budget)}
    return frozenset(call.number for call in guarded if _edges(call) in tracked)


def _edges(call: CallNode) -> tuple[bytes, tuple[str, ...]]:
    """The call's op version, and the names of its inputs that another call's output feeds."""
    return call.version_id, tuple(name for name, node in call.inputs.items() if isinstance(node, OutputVar))


def _narrowed(call: CallNode) -> bool:
    """Whether a literal narrows the stored calls of ``call``'s op the query reads."""
    return any(isinstance(node, (Const, DomainVar)) for node in call.inputs.values())


def _fed_by_calls(call: CallNode, item_version: bytes) -> bool:
    """Whether ``call`` takes an output of another call, none of them an element's."""
    producers = [node.call.version_id for node in call.inputs.values() if isinstance(node, OutputVar)]
    return bool(producers) and item_version not in producers


def _all_tracked(conn: sqlite3.Connection, version_id: bytes, names: tuple[str, ...], budget: int) -> bool:
    """Whether every call of the version has a recorded source on each of ``names`` or is
    exact, all of them read within ``budget``."""
    sql = _UNTRACKED_SQL.format(names=", ".join("?" * len(names)))
    read, untracked = conn.execute(sql, (*names, len(names), version_id, budget)).fetchone()
    return not untracked and read < budget
