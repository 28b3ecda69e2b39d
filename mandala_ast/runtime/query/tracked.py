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
edge from ``inc`` by history.) Finding that out reads the version's calls that are not exact,
through the index of those alone (a probe, 0.3 ms at 1M calls, for a store of compiled
calls), and their named inputs. In a file the previous release wrote, read where this one
cannot add the index, it reads every call of the version (~0.45 µs a call). Either way it is only asked
when the query reads every call of its first op anyway (no literal narrows a call outside an
``if``), and stops, undecided, after twice as many calls as that op has: a query that matches
a handful of rows never pays for it. What is stored changes, so result.py asks again each
time it reads rows, in the same snapshot as the statement.

Where some calls do lack history on the edge (uncompiled code), but few (``LOOSE_MAX``), and
the call has that one edge, they are written into a temp table indexed by the edge input's
content id: the call is then found by history, or among those calls by content, two searches
by index a row, neither random over the whole store (at 1M calls with 10 such calls: 4.3 s
for the statement searching content in every row, 3.05 s with the table).
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import NamedTuple

from .pattern import CallNode, Const, DomainVar, OutputVar, Pattern

__all__ = ["LOOSE_MAX", "Edges", "tracked_calls"]

_COUNT_SQL = "SELECT count(*) FROM calls WHERE version_id = ?"
#: Up to ``limit`` of the version's calls that are not exact (the others cannot lack history):
#: through the index of those alone where the file has it (store.py's INEXACT_INDEX), else among all.
_INEXACT_CALLS = "SELECT id, exact FROM calls INDEXED BY idx_calls_inexact WHERE version_id = ? AND exact = 0 LIMIT ?"
_ALL_CALLS = "SELECT id, exact FROM calls WHERE version_id = ? LIMIT ?"
# (store.py's INEXACT_INDEX_NAME, spelled out: the query package does not import the store)
_HAS_INEXACT_INDEX_SQL = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'idx_calls_inexact'"
# How many of those calls were read, and whether one has no history on an edge: not exact,
# and fewer of the named inputs with a source than names. (CASE, not AND: only calls that are
# not exact have their inputs read.)
_UNTRACKED_SQL = (
    "SELECT count(*), ifnull(max(CASE WHEN c.exact = 0 THEN (SELECT count(*) FROM call_inputs i"
    " WHERE i.call_id = c.id AND i.name IN ({names}) AND i.src_call IS NOT NULL) < ? ELSE 0 END), 0)"
    " FROM ({calls}) AS c"
)
#: Of those calls, the ones without history on the edge named (a search of the inputs by
#: primary key for each call that is not exact).
_LOOSE_SQL = (
    "INSERT INTO temp.{table} SELECT i.cid, c.id FROM ({calls}) AS c"
    " JOIN call_inputs i ON i.call_id = c.id AND i.name = ? WHERE c.exact = 0 AND i.src_call IS NULL LIMIT ?"
)
#: Calls read at least, however few the first op has (a few ms).
_MIN_BUDGET = 10_000
#: Calls without history a temp table takes at most: its index stays in a few hundred kB of
#: memory (a larger one would spill out of SQLite's cache; those stores search by content).
LOOSE_MAX = 10_000


class Edges(NamedTuple):
    """How each call under an ``if`` is found from its producer, by call node number."""

    by_history: frozenset[int] = frozenset()  # by recorded history alone
    loose: frozenset[tuple[int, str]] = frozenset()  # (number, temp table): by history, or among its calls


def tracked_calls(conn: sqlite3.Connection, pattern: Pattern) -> Edges:
    """The calls under an ``if`` whose edges from their producers may be written by history
    alone (no call of their op's version lacks history on them), and those whose few calls
    that do are put in a temp table (filled here). Calls fed an element of a collection keep
    both halves (compiled code recorded some of those exact).

    >>> tracked_calls(conn, pattern)      # doctest: +SKIP
    Edges(by_history=frozenset({2}), loose=frozenset())
    """
    from ..structures import ITEM_VERSION_ID  # (late, as sql.py: structures imports much)

    required = [call for call in pattern.calls if not call.optional]
    guarded = [call for call in pattern.calls if call.optional and _fed_by_calls(call, ITEM_VERSION_ID)]
    # (A literal on any required call, `add(y, 4)` past `y = inc(x)`, may leave a handful of rows.)
    if not required or not guarded or any(map(_narrowed, required)):
        return Edges()
    budget = 2 * conn.execute(_COUNT_SQL, (required[0].version_id,)).fetchone()[0] + _MIN_BUDGET
    edges = {_edges(call) for call in guarded}  # (each read once: `if a: f(y)`, `else: f(z)`)
    ways = {edge: _way(conn, *edge, budget) for edge in edges}
    by_history = frozenset(call.number for call in guarded if ways[_edges(call)] is _BY_HISTORY)
    loose = frozenset((call.number, way) for call in guarded if isinstance(way := ways[_edges(call)], str))
    return Edges(by_history, loose)


#: What _way answers for an edge found by history alone.
_BY_HISTORY = True


def _way(conn: sqlite3.Connection, version_id: bytes, names: tuple[str, ...], budget: int) -> bool | str | None:
    """_BY_HISTORY, the temp table of the few calls without history on the one edge named, or
    None: found by content too."""
    read, untracked = _untracked(conn, version_id, names, budget)
    if read >= budget:
        return None
    if not untracked:
        return _BY_HISTORY
    return _loose_table(conn, version_id, names[0], budget) if len(names) == 1 else None


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


def _untracked(conn: sqlite3.Connection, version_id: bytes, names: tuple[str, ...], budget: int) -> tuple[int, bool]:
    """How many calls of the version were read (at most ``budget``), and whether one of them
    is not exact and lacks a recorded source on one of ``names``."""
    sql = _UNTRACKED_SQL.format(names=", ".join("?" * len(names)), calls=_calls_read(conn))
    read, untracked = conn.execute(sql, (*names, len(names), version_id, budget)).fetchone()
    return read, bool(untracked)


def _loose_table(conn: sqlite3.Connection, version_id: bytes, name: str, budget: int) -> str | None:
    """The temp table, filled, of the version's calls without history on input ``name``
    (content id, row id), or None when there are more than LOOSE_MAX of them. One table per
    version and name, kept by the connection and filled again at each read."""
    table = "mandala_loose_" + hashlib.blake2b(version_id + name.encode(), digest_size=8).hexdigest()
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (cid BLOB NOT NULL, call_id INTEGER NOT NULL)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS temp.{table}_cid ON {table} (cid)")
    conn.execute(f"DELETE FROM temp.{table}")
    sql = _LOOSE_SQL.format(table=table, calls=_calls_read(conn))
    found = conn.execute(sql, (version_id, budget, name, LOOSE_MAX + 1)).rowcount
    return table if found <= LOOSE_MAX else None


def _calls_read(conn: sqlite3.Connection) -> str:
    """The statement that reads a version's calls that may lack history."""
    return _INEXACT_CALLS if conn.execute(_HAS_INEXACT_INDEX_SQL).fetchone() else _ALL_CALLS
