"""Deleting calls, every call computed from their outputs, and the values nobody uses any more.

Which calls count as computed from a deleted call:

- **exact history**: an input row whose ``src_call`` is the deleted call (compiled code
  recorded it);
- **content**, for calls recorded by uncompiled code (``exact = 0``, ``src_call IS NULL``): an
  input is attributed the way ``storage.provenance(op)`` attributes it, to the *earliest* call
  whose output has the same content and that existed when the consumer was recorded. Matching
  any producer of equal content instead would let deleting one call returning ``None`` take
  every uncompiled call with a ``None`` argument with it. The same holds for elements of a
  collection that compiled code iterated (``for e in xs: f(e)``): an element has no recorded
  history, so ``f(e)`` counts as computed from the ``__item__`` call that produced it first.

A matched call stands for its computation: every stored row with the same call content id (the
same call recorded under another history, or recomputed under other dependencies) goes too.
``storage.df(op)`` shows those rows as one, and a survivor would keep serving the result.

The dependency closure is computed in SQL over temporary tables of the calls' integer keys
(``calls.id``): a few statements per level of the call graph, however many calls each level
holds, each a join from the temporary table through the primary keys and indexes of the stored
tables (a 100,000-element list is two levels: its call, then its element calls). Everything happens in one
``BEGIN IMMEDIATE`` transaction; blob files are removed only after it commits.

The values the deleted calls used then go if nothing else uses them, with their blob files
(runtime/reclaim.py, shared with gc). Other Storages on the file learn of the deletion through
runtime/deletion_watch.py.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import ArgumentError, StorageBusyError
from .built import BUILD_VERSION_ID
from .deletion_watch import mark_deleted
from .lone_elements import QueryMatches, refuse_lone_elements
from .ops import Op
from .reclaim import (
    ReclaimReport,
    format_bytes,
    plural,
    remove_blob_files,
    remove_unreferenced_values,
)
from .store import BUCKET_BITS, is_lock_error
from .structures import ELEMENTS_MARKED_INEXACT_SINCE, ITEM_VERSION_ID

if TYPE_CHECKING:
    from .blobs import BlobDir
    from .progress import Stages
    from .store import SQLiteStore

__all__ = ["SCANNED_PER_PROBE", "DeleteReport", "busy_as_error", "call_ids", "delete_calls", "names_rows"]

#: How many calls' entries of the index of row ids one pass over it reads in the time a lookup
#: by row id spends on one bucket of it (16,384 calls). A lookup probes every bucket, so once
#: ``targets * buckets * SCANNED_PER_PROBE`` exceeds the calls stored, the targets are found in
#: one pass instead: from about 1,600 targets, whatever the size. Measured on the 1M- and
#: 10M-call stores (64 MB cache, as a write transaction has): a pass costs 0.2-0.25 µs a call
#: at both, a lookup 0.5-1.2 µs a bucket at 1M but 1.4-2.1 µs at 10M, where the index
#: outgrows the cache; the two cost the same at ~5,000 targets at 1M and ~1,600 at 10M.
#: Switching at the smaller count costs at most ~0.15 s at 1M; at the larger, seconds at 10M.
SCANNED_PER_PROBE = 10

#: The ``attrs`` key under which query results carry their rows' call ids.
CALLS_ATTR = "mandala_ast.calls"
#: ... and the values its rows showed (query/row_calls.py:RowValues), to check labels against.
ROWS_ATTR = "mandala_ast.rows"
#: The column of call ids in a storage.df(op) table (``call_`` when an argument is called ``call``).
CALL_COLUMN_ATTR = "mandala_ast.call_column"
_ACCEPTED = (
    "an iterable of call ids (bytes, or hex strings as in storage.df(op)['call']), "
    f"a DataFrame from storage.df(op) (its 'call' column), or a query result (attrs[{CALLS_ATTR!r}])"
)


@dataclass(frozen=True)
class DeleteReport(ReclaimReport):
    """What :meth:`Storage.delete_calls` removed.

    >>> print(DeleteReport(calls=12, dependents=5, values=9, bytes_freed=1234))
    deleted 12 calls (7 matched, 5 computed from them) and 9 values (1.2 kB)
    >>> print(DeleteReport(calls=2, dependents=1, values=4, bytes_freed=40, collections=1))
    deleted 2 calls (1 matched, 1 computed from them) and 4 values (40 B); 1 collection built by hand that only they were given went with them
    """

    #: op calls removed in all: the user's ops', with the element calls (``__item__``) of the
    #: MList/MDict/MSet outputs removed with them; not the internal build calls below
    calls: int
    #: how many of ``calls`` were removed because they were computed from a matched call
    dependents: int
    #: values removed because no remaining call uses them
    values: int
    #: encoded size of those values (database rows and blob files)
    bytes_freed: int
    #: records of lists, tuples and dicts built by hand in compiled code, and of MList/MDict/
    #: MSet arguments uncompiled code passed (runtime/built.py), removed because no remaining
    #: call is given them: no op's call, so not in ``calls``
    collections: int = 0

    @property
    def matched(self) -> int:
        """Calls removed because the target named them (or another row of their computation)."""
        return self.calls - self.dependents

    def __str__(self) -> str:
        line = (
            f"deleted {plural(self.calls, 'call')} ({self.matched} matched, "
            f"{self.dependents} computed from them) and {plural(self.values, 'value')} "
            f"({format_bytes(self.bytes_freed)})"
        )
        if self.collections:
            line += f"; {plural(self.collections, 'collection')} built by hand that only they were given went with them"
        return line


# -- targets -------------------------------------------------------------------------------


def call_ids(target: Any) -> list[bytes]:
    """The call row ids a :meth:`Storage.delete_calls` target names.

    >>> call_ids(["ab" * 32, b"\\x01" * 32])[0].hex()[:6]
    'ababab'
    """
    if isinstance(target, Op):  # an easy slip, for "delete this op's calls"
        raise ArgumentError(
            f"storage.delete_calls takes call ids, not op {target.name}: to delete its calls, "
            f"pass storage.df({target.fn.__name__}) (or the rows of it to delete)"
        )
    pandas = sys.modules.get("pandas")  # a DataFrame implies pandas is imported
    if pandas is not None and isinstance(target, pandas.DataFrame):
        return _frame_ids(target)
    if isinstance(target, (bytes, bytearray, memoryview, str)):
        return [_one_id(target)]
    try:
        items = iter(target)
    except TypeError:
        raise ArgumentError(f"cannot delete {type(target).__name__!r}: expected {_ACCEPTED}") from None
    return [_one_id(item) for item in items if item is not None]


def names_rows(target: Any) -> bool:
    """Whether ``target`` is rows of a query (a query result, what a delete block matched),
    whose element calls are not refused (runtime/lone_elements.py)."""
    if isinstance(target, QueryMatches):
        return True
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(target, pandas.DataFrame) and CALLS_ATTR in target.attrs


def _frame_ids(frame: Any) -> list[bytes]:
    per_row = frame.attrs.get(CALLS_ATTR)
    if per_row is not None:
        # The query engine builds frames with a RangeIndex: a row's label is its position in
        # the list, and it survives filtering (df[mask], df.loc[...]) but not reset_index().
        try:
            rows = [per_row[label] for label in frame.index]
        except (IndexError, TypeError) as exc:
            raise ArgumentError(
                f"this query result's index no longer matches attrs[{CALLS_ATTR!r}] ({exc}); "
                "select rows with masks or .loc and keep the index"
            ) from None
        _check_labels(frame, frame.attrs.get(ROWS_ATTR))
        return [_one_id(i) for row in rows for i in row if i is not None]
    column = frame.attrs.get(CALL_COLUMN_ATTR, "call")
    if column in frame.columns:
        return [_one_id(i) for i in frame[column] if i is not None]
    raise ArgumentError(
        f"this DataFrame has no 'call' column and no attrs[{CALLS_ATTR!r}]: expected {_ACCEPTED}"
    )


def _check_labels(frame: Any, shown: Any) -> None:
    """Each row still shows what the result's row of its label showed: ``reset_index()`` after
    sorting or filtering numbers other rows 0, 1, ..., and their labels would name the calls
    of the rows first so numbered."""
    if shown is None:
        return
    for name in frame.columns:
        column = shown.column(name) if isinstance(name, str) else None
        if column is None:
            continue
        for label, value in zip(frame.index, frame[name].tolist()):
            if not _same_value(value, column[label]):
                raise ArgumentError(
                    f"row {label!r} of this query result does not show what the result's row "
                    f"{label!r} showed ({name} = {_short(value)}, not {_short(column[label])}): its "
                    "index was renumbered (reset_index() after sorting or filtering?) or its values "
                    "changed, so the labels may no longer name the rows' calls. Select rows of "
                    "q.df() itself keeping the index (masks, .loc, sort_values() without reset_index())"
                )


def _same_value(shown: Any, stored: Any) -> bool:
    if shown is stored or (_missing(shown) and _missing(stored)):
        return True
    try:
        equal = shown == stored
        return bool(equal) if type(equal).__name__ in ("bool", "bool_") else False
    except Exception:  # a value that cannot say whether it equals another: not the same row
        return False


def _missing(value: Any) -> bool:
    """None, or a value unequal to itself: a NaN of Python's or numpy's (``float32``), a NaT
    (a frame shows numpy's as Python's or pandas' own, which equal nothing)."""
    if value is None:
        return True
    try:
        unequal = value != value
    except Exception:  # a value that cannot compare itself: not a missing one
        return False
    return type(unequal).__name__ in ("bool", "bool_") and bool(unequal)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one_id(item: Any) -> bytes:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        try:
            return bytes.fromhex(item)
        except ValueError:
            raise ArgumentError(f"{item!r:.80} is not a call id (hex digits expected)") from None
    raise ArgumentError(f"cannot delete {type(item).__name__!r} {item!r:.40}: expected {_ACCEPTED}")


# -- deleting ------------------------------------------------------------------------------


def delete_calls(
    store: SQLiteStore,
    blobs: BlobDir | None,
    hids: Iterable[bytes],
    *,
    dependents: bool = True,
    rows: bool = False,
) -> DeleteReport:
    """Delete the calls with these row ids (and, with ``dependents``, every call computed from
    their outputs), then the values no remaining call uses. Unknown ids are ignored; an
    element's call without its collection's is refused, unless the ids are a query's ``rows``.

    >>> delete_calls(store, blobs, [hid]).calls       # doctest: +SKIP
    3
    """
    from .progress import stages

    hids = list(hids)
    with busy_as_error(store, "delete calls"), stages("deleting calls", 5) as steps:
        body = lambda conn: _delete_in(conn, hids, dependents, blobs, steps, rows)  # noqa: E731
        report: DeleteReport
        report, external = store.write_transaction(body)
        steps.step("removing value files")
        remove_blob_files(store, blobs, external)
    return report


@contextmanager
def busy_as_error(store: SQLiteStore, what: str) -> Iterator[None]:
    """Turn "database is locked" left after every retry into a :class:`StorageBusyError`
    that says nothing was changed (the transaction rolled back).

    >>> with busy_as_error(store, "delete calls"):     # doctest: +SKIP
    ...     store.write_transaction(body)
    """
    try:
        yield
    except sqlite3.OperationalError as exc:
        if not is_lock_error(exc):
            raise
        raise StorageBusyError(
            f"{store.path}: could not {what}: other processes kept the file busy through every "
            f"retry ({exc}). Nothing was lost; try again later."
        ) from exc


def _delete_in(
    conn: sqlite3.Connection, hids: list[bytes], dependents: bool, blobs: BlobDir | None, steps: Stages,
    rows: bool,
) -> tuple[DeleteReport, list[bytes]]:
    _create_temp_tables(conn)
    try:
        steps.step("matching calls")
        conn.executemany("INSERT OR IGNORE INTO temp.mandala_target VALUES (?)", ((h,) for h in hids))
        _find_targets(conn, len(set(hids)))
        if not rows:
            refuse_lone_elements(conn, blobs)
        conn.execute(_MATCHED_SQL)
        steps.step("finding the calls computed from them")
        if dependents:
            _add_dependents(conn, steps)
        if conn.execute(_HAS_BUILDS_SQL).fetchone() is not None:
            for statement in _UNGIVEN_BUILDS_SQL:
                conn.execute(statement)
        while conn.execute(_UNCONSUMED_BUILDS_SQL).rowcount > 0:  # a nested collection's too
            pass
        calls, matched, builds = conn.execute(_COUNTS_SQL).fetchone()
        steps.step(f"deleting {calls:,} calls")
        for statement in _DELETE_ROWS:
            conn.execute(statement)
        steps.step("removing unused values")
        values, size, external = remove_unreferenced_values(conn, "SELECT cid FROM temp.mandala_used", blobs)
    finally:
        for table in _TEMP_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
    if calls or values:
        mark_deleted(conn)
    return DeleteReport(calls, calls - matched, values, size, builds), external


def _find_targets(conn: sqlite3.Connection, targets: int) -> None:
    """Fill ``mandala_target_key`` with the integer keys of the stored calls among the targets:
    a lookup by row id each, or one pass over every row id when that costs less."""
    last = conn.execute("SELECT max(id) FROM main.calls").fetchone()[0] or 0
    buckets = (last >> BUCKET_BITS) + 1
    scan = targets * buckets * SCANNED_PER_PROBE > last
    conn.execute(_SCAN_TARGETS_SQL if scan else _LOOK_UP_TARGETS_SQL)


def _add_dependents(conn: sqlite3.Connection, steps: Stages) -> None:
    """Grow ``mandala_doomed`` to a fixed point, one level of consumers per round."""
    conn.execute("INSERT INTO temp.mandala_frontier SELECT id FROM temp.mandala_doomed")
    found = 0
    while True:
        for statement in _ROUND_SQL:
            conn.execute(statement)
        # EXISTS, not IN: IN would walk all of mandala_doomed each round.
        conn.execute(
            "DELETE FROM temp.mandala_next WHERE EXISTS "
            "(SELECT 1 FROM temp.mandala_doomed d WHERE d.id = mandala_next.id)"
        )
        added = conn.execute("INSERT INTO temp.mandala_doomed SELECT id, 0 FROM temp.mandala_next").rowcount
        if not added:
            return
        found += added
        steps.note(f"finding the calls computed from them: {found:,} so far")
        conn.execute("DELETE FROM temp.mandala_frontier")
        conn.execute("INSERT INTO temp.mandala_frontier SELECT id FROM temp.mandala_next")
        conn.execute("DELETE FROM temp.mandala_next")


# -- SQL -----------------------------------------------------------------------------------

_TEMP_TABLES = (
    "mandala_target", "mandala_target_key", "mandala_doomed", "mandala_frontier", "mandala_next",
    "mandala_made", "mandala_used",
)


def _create_temp_tables(conn: sqlite3.Connection) -> None:
    for table in _TEMP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
    conn.execute("CREATE TEMP TABLE mandala_target (hid BLOB PRIMARY KEY) WITHOUT ROWID")
    # The calls' integer keys, not their 32-byte row ids: each statement reaches the stored
    # rows through the primary keys (calls.id, call_inputs/call_outputs by call_id) instead of
    # a lookup in the row-id index per call and per statement.
    conn.execute("CREATE TEMP TABLE mandala_doomed (id INTEGER PRIMARY KEY, matched INTEGER)")
    for table in ("mandala_target_key", "mandala_frontier", "mandala_next"):
        conn.execute(f"CREATE TEMP TABLE {table} (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TEMP TABLE mandala_made (cid BLOB PRIMARY KEY, first REAL) WITHOUT ROWID")
    conn.execute("CREATE TEMP TABLE mandala_used (cid BLOB PRIMARY KEY) WITHOUT ROWID")


# CROSS JOIN fixes the join order (SQLite never reorders it): the small temporary table drives
# the loop and the stored tables are searched by index. Without it the planner, which has no
# statistics for a fresh temp table, scans the stored tables once per round.

# The targets' calls by their integer keys, found once (runtime/lone_elements.py reads them
# too). A lookup by row id alone probes every bucket of the index of row ids (store.py), so
# many targets are found in one pass over it instead, each entry's row id checked against the
# targets (``+`` keeps SQLite from turning that check into a lookup per target). A few are
# looked up each in a subquery of its own: joined on ``k.hid`` past the first loop, the lookup
# is a skip-scan that SQLite 3.40 puts behind a Bloom filter keyed by the bucket too, and every
# call past the first 16,384 of the file was filtered out (a deletion that deleted nothing).
_SCAN_TARGETS_SQL = (
    "INSERT OR IGNORE INTO temp.mandala_target_key SELECT c.id FROM main.calls c"
    " WHERE +c.hid IN (SELECT hid FROM temp.mandala_target)"
)
_LOOK_UP_TARGETS_SQL = (
    "INSERT OR IGNORE INTO temp.mandala_target_key SELECT m.id FROM temp.mandala_target t"
    " CROSS JOIN main.calls m ON m.id = (SELECT k.id FROM main.calls k WHERE k.hid = t.hid)"
)

# Every row of each matched call's computation (same call cid). Rows whose history is raw have
# lkey = cid and are reached through the primary key; the others through the partial index.
# Item calls (structures.py) are not computations: they record where an element of a stored
# structure came from, are written only when their producer is, and share one content id
# among every producer of an equal structure. A matched one is skipped; it goes with its
# producer (as a dependent), or another op's equal list would lose its elements' provenance
# and a surviving producer would never get it back. Unless its producer is no longer stored
# (deleted with dependents=False): then that row alone stands for the element.
_MATCHED_SQL = f"""
INSERT OR IGNORE INTO temp.mandala_doomed (id, matched)
SELECT c.id, 1 FROM temp.mandala_target_key t
CROSS JOIN main.calls m ON m.id = t.id AND m.version_id != X'{ITEM_VERSION_ID.hex()}'
CROSS JOIN main.calls c ON c.version_id = m.version_id AND c.lkey = m.cid
UNION
SELECT c.id, 1 FROM temp.mandala_target_key t
CROSS JOIN main.calls m ON m.id = t.id AND m.version_id != X'{ITEM_VERSION_ID.hex()}'
CROSS JOIN main.calls c ON c.cid = m.cid AND c.lkey != c.cid
UNION
SELECT m.id, 1 FROM temp.mandala_target_key t
CROSS JOIN main.calls m ON m.id = t.id AND m.version_id = X'{ITEM_VERSION_ID.hex()}'
CROSS JOIN main.call_inputs i ON i.call_id = m.id AND i.name = 'struct'
WHERE NOT EXISTS (SELECT 1 FROM main.calls p WHERE p.id = i.src_call)
"""

# A consumer found by content is never an element's call: its key (an index, a dict key) is
# no op's output, and it goes with its collection's call, the source its other input records.
_NOT_AN_ELEMENTS_CALL = f" AND c.version_id != X'{ITEM_VERSION_ID.hex()}'"

# One round of consumers of the frontier. By exact history: inputs whose src_call is in it. By
# content (uncompiled consumers): the output cids the frontier produced *first* of all stored
# calls, and their consumers recorded after that. Distinct cids are handled once, so a value
# many calls return (None) costs one pass over its producers, not one per pair.
_ROUND_SQL = (
    "INSERT OR IGNORE INTO temp.mandala_next "
    "SELECT i.call_id FROM temp.mandala_frontier f CROSS JOIN main.call_inputs i ON i.src_call = f.id",
    # Each output cid with the frontier's earliest call that produced it, ... Not of element
    # calls: an uncompiled consumer of an element whose earliest producer of all is an element
    # call has it as its earliest element call too, and the last statement finds it (skipping
    # them here spares three passes over each of a deleted list's elements).
    "INSERT OR IGNORE INTO temp.mandala_made (cid, first) "
    "SELECT o.cid, MIN(p.created_at) FROM temp.mandala_frontier f CROSS JOIN main.calls p ON p.id = f.id"
    f" AND p.version_id != X'{ITEM_VERSION_ID.hex()}'"
    " CROSS JOIN main.call_outputs o ON o.call_id = f.id GROUP BY o.cid",
    # ... kept where no stored call produced it earlier (then that call is its producer).
    "DELETE FROM temp.mandala_made WHERE EXISTS (SELECT 1 FROM main.call_outputs o"
    " CROSS JOIN main.calls c ON c.id = o.call_id"
    " WHERE o.cid = mandala_made.cid AND c.created_at < mandala_made.first)",
    "INSERT OR IGNORE INTO temp.mandala_next "
    "SELECT c.id FROM temp.mandala_made m"
    " CROSS JOIN main.call_inputs i ON i.cid = m.cid AND i.src_call IS NULL"
    " CROSS JOIN main.calls c ON c.id = i.call_id AND c.exact = 0 AND c.created_at >= m.first"
    + _NOT_AN_ELEMENTS_CALL,
    # Code taking an element from a collection (`for e in xs: f(e)`, `f(xs[0])`) cannot record
    # its history (compiled code records such a call inexact): its input comes, as
    # storage.provenance says, from the earliest *item* call with that element (an earlier
    # plain op returning equal content does not count, so mandala_made's earliest producer is
    # not the only one to ask). Exact calls stored before compiled code recorded such calls
    # inexact too (structures.ELEMENTS_MARKED_INEXACT_SINCE): an exact call stored since took
    # a literal, which an equal element did not produce. The earliest item call is asked only
    # once a consumer is found (SQLite evaluates a condition at the first loop that binds all
    # it names: naming `c` puts it there, not at each of a list's 100,000 elements); among item
    # calls stored no later than the consumer, whose earliest is the earliest of all whenever
    # it can be `p` (c.created_at >= p.created_at).
    "INSERT OR IGNORE INTO temp.mandala_next "
    "SELECT c.id FROM temp.mandala_frontier f"
    f" CROSS JOIN main.calls p ON p.id = f.id AND p.version_id = X'{ITEM_VERSION_ID.hex()}'"
    " CROSS JOIN main.call_outputs o ON o.call_id = p.id"
    " CROSS JOIN main.call_inputs i ON i.cid = o.cid AND i.src_call IS NULL"
    " CROSS JOIN main.calls c ON c.id = i.call_id AND c.created_at >= p.created_at"
    f" AND (c.exact = 0 OR c.created_at < {ELEMENTS_MARKED_INEXACT_SINCE!r})" + _NOT_AN_ELEMENTS_CALL +
    " WHERE p.created_at = (SELECT MIN(q.created_at) FROM main.call_outputs e"
    f" CROSS JOIN main.calls q ON q.id = e.call_id AND q.version_id = X'{ITEM_VERSION_ID.hex()}'"
    " WHERE e.cid = i.cid AND q.created_at <= c.created_at)",
    "DELETE FROM temp.mandala_made",
)

# A collection built by hand (built.py) is recorded for the calls given it: once every one of
# them goes, its build call goes too (matched when they all were), or it would keep the
# collection's value for good.
_UNCONSUMED_BUILDS_SQL = f"""
INSERT OR IGNORE INTO temp.mandala_doomed (id, matched)
SELECT b.id, MIN(d.matched) FROM temp.mandala_doomed d
CROSS JOIN main.call_inputs i ON i.call_id = d.id AND i.src_call IS NOT NULL
CROSS JOIN main.calls b ON b.id = i.src_call AND b.version_id = X'{BUILD_VERSION_ID.hex()}'
WHERE NOT EXISTS (SELECT 1 FROM temp.mandala_doomed e WHERE e.id = b.id)
AND NOT EXISTS (SELECT 1 FROM main.call_inputs j WHERE j.src_call = b.id
                AND NOT EXISTS (SELECT 1 FROM temp.mandala_doomed e WHERE e.id = j.call_id))
GROUP BY b.id
"""

_HAS_BUILDS_SQL = f"SELECT 1 FROM main.calls WHERE version_id = X'{BUILD_VERSION_ID.hex()}' LIMIT 1"

# The record of a collection's elements (built.py's elements_rows: an MList/MDict/MSet argument
# of no recorded history, a collection of transient outputs) is given to its calls by content,
# as their other inputs are, or to none (compiled code's call names its own build call): it
# goes once no remaining call is given its collection, by content or by history. The contents
# the deleted calls were given are collected first (once each, in the table the rounds above
# emptied), then looked for among build calls' outputs.
_UNGIVEN_BUILDS_SQL = (
    "INSERT OR IGNORE INTO temp.mandala_made (cid, first) SELECT i.cid, 0 FROM temp.mandala_doomed d"
    " CROSS JOIN main.call_inputs i ON i.call_id = d.id",
    "INSERT OR IGNORE INTO temp.mandala_doomed (id, matched) SELECT b.id, 0 FROM temp.mandala_made m"
    " CROSS JOIN main.call_outputs o ON o.cid = m.cid"
    f" CROSS JOIN main.calls b ON b.id = o.call_id AND b.version_id = X'{BUILD_VERSION_ID.hex()}'"
    " WHERE NOT EXISTS (SELECT 1 FROM main.call_inputs j WHERE j.cid = m.cid"
    "  AND NOT EXISTS (SELECT 1 FROM temp.mandala_doomed e WHERE e.id = j.call_id))"
    " AND NOT EXISTS (SELECT 1 FROM main.call_inputs j WHERE j.src_call = b.id"
    "  AND NOT EXISTS (SELECT 1 FROM temp.mandala_doomed e WHERE e.id = j.call_id))",
    "DELETE FROM temp.mandala_made",
)

# The user's op calls and, apart, the build calls (not the user's: counted as collections).
_COUNTS_SQL = f"""
SELECT COALESCE(SUM(NOT b), 0), COALESCE(SUM(matched AND NOT b), 0), COALESCE(SUM(b), 0)
FROM (SELECT d.matched, c.version_id = X'{BUILD_VERSION_ID.hex()}' AS b
      FROM temp.mandala_doomed d CROSS JOIN main.calls c ON c.id = d.id)
"""

_DOOMED = "SELECT id FROM temp.mandala_doomed"
_DELETE_ROWS = (
    "INSERT OR IGNORE INTO temp.mandala_used SELECT i.cid FROM temp.mandala_doomed d"
    " CROSS JOIN main.call_inputs i ON i.call_id = d.id",
    "INSERT OR IGNORE INTO temp.mandala_used SELECT o.cid FROM temp.mandala_doomed d"
    " CROSS JOIN main.call_outputs o ON o.call_id = d.id",
    f"DELETE FROM main.call_inputs WHERE call_id IN ({_DOOMED})",
    f"DELETE FROM main.call_outputs WHERE call_id IN ({_DOOMED})",
    # A doomed call that surviving calls' inputs still name as their source (dependents=False)
    # keeps its row id: computed again, it is their source again (store.py, call_tombstones).
    "INSERT OR REPLACE INTO main.call_tombstones (id, hid) SELECT c.id, c.hid FROM temp.mandala_doomed d"
    " CROSS JOIN main.calls c ON c.id = d.id"
    " WHERE EXISTS (SELECT 1 FROM main.call_inputs i WHERE i.src_call = c.id)",
    # ... and forgets it once none does (a storage with none reads no tombstones at commits).
    "DELETE FROM main.call_tombstones WHERE NOT EXISTS"
    " (SELECT 1 FROM main.call_inputs i WHERE i.src_call = call_tombstones.id)",
    f"DELETE FROM main.calls WHERE id IN ({_DOOMED})",
)
