"""Tables of stored calls as pandas DataFrames: an op's calls, and where their inputs came from."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._errors import CorruptValueError
from .built import BUILD_OP_NAME
from .column_names import clear_of
from .ops import Op
from .structures import ELEMENTS_MARKED_INEXACT_SINCE, ITEM_VERSION_ID

if TYPE_CHECKING:
    import pandas as pd

    from .store import SQLiteStore

__all__ = ["DELETED_CALL", "PROVENANCE_COLUMNS", "calls_table", "producer_by_content", "provenance_rows", "provenance_table", "value_series"]

_CALLS_SQL = """
SELECT c.hid, c.cid, v.version, c.created_at, c.duration, c.version_id, c.deps_id
FROM calls c JOIN versions v ON v.version_id = c.version_id
WHERE v.op_name = ? ORDER BY c.created_at, c.hid
"""
_EDGES_SQL = """
SELECT c.hid, e.{key}, e.cid FROM versions v
CROSS JOIN calls c ON c.version_id = v.version_id CROSS JOIN {table} e ON e.call_id = c.id
WHERE v.op_name = ?
"""
#: The op provenance names for a producer deleted without its dependents (its id is kept).
DELETED_CALL = "<deleted call>"
_PROVENANCE_SQL = """
SELECT c.hid, i.name, i.cid, c.exact, c.created_at,
       COALESCE(exact_c.hid, gone.hid), i.src_index,
       CASE WHEN gone.hid IS NULL THEN exact_v.op_name ELSE '<deleted call>' END
FROM versions v
CROSS JOIN calls c ON c.version_id = v.version_id CROSS JOIN call_inputs i ON i.call_id = c.id
LEFT JOIN calls exact_c ON exact_c.id = i.src_call
LEFT JOIN versions exact_v ON exact_v.version_id = exact_c.version_id
LEFT JOIN call_tombstones gone ON gone.id = i.src_call AND exact_c.id IS NULL
WHERE v.op_name = ?
ORDER BY c.id, i.name
"""
# The elements of a collection built by hand (built.py) that its build call records.
_BUILD_INPUTS_SQL = """
SELECT i.name, i.cid, b.exact, b.created_at, COALESCE(exact_c.hid, gone.hid), i.src_index,
       CASE WHEN gone.hid IS NULL THEN exact_v.op_name ELSE '<deleted call>' END
FROM calls b CROSS JOIN call_inputs i ON i.call_id = b.id
LEFT JOIN calls exact_c ON exact_c.id = i.src_call
LEFT JOIN versions exact_v ON exact_v.version_id = exact_c.version_id
LEFT JOIN call_tombstones gone ON gone.id = i.src_call AND exact_c.id IS NULL
WHERE b.hid = ?
"""
_BY_CONTENT_SQL = """
SELECT c.hid, o.idx, v.op_name FROM call_outputs o
JOIN calls c ON c.id = o.call_id JOIN versions v ON v.version_id = c.version_id
WHERE o.cid = ? AND c.created_at <= ? AND c.hid != ? ORDER BY c.version_id = ? DESC, c.created_at LIMIT 1
"""
_ITEM_BY_CONTENT_SQL = """
SELECT c.hid, o.idx, v.op_name FROM call_outputs o
JOIN calls c ON c.id = o.call_id JOIN versions v ON v.version_id = c.version_id
WHERE o.cid = ? AND c.version_id = ? AND c.created_at <= ? AND c.hid != ? ORDER BY c.created_at LIMIT 1
"""


#: Reads of a table that found a blob file removed under them before one is allowed to fail.
_READ_ATTEMPTS = 3


#: ``current(version_id, deps_id)``: whether a stored call row is what today's code loads.
IsCurrent = Callable[[bytes, bytes], bool]


def calls_table(store: SQLiteStore, op: Op, load: Callable[[bytes], Any], current: IsCurrent) -> pd.DataFrame:
    """One row per distinct call of ``op``: inputs, outputs, version, whether today's code
    loads it, duration, time, call id."""
    # Rows, inputs, outputs and values come from several statements: read in one snapshot,
    # or a deletion committed between them leaves a call without its outputs. A blob file is
    # outside the snapshot: one removed under it belongs to a call deleted since, which a
    # fresh snapshot no longer lists.
    for _ in range(_READ_ATTEMPTS - 1):
        try:
            with store.snapshot():
                return _read_calls_table(store, op, load, current)
        except (FileNotFoundError, CorruptValueError):  # a missing file is reported as corrupt
            continue
    with store.snapshot():
        return _read_calls_table(store, op, load, current)


_DEFAULTS_SQL = "SELECT param, cid FROM defaults WHERE op_name = ?"


def _read_calls_table(store: SQLiteStore, op: Op, load: Callable[[bytes], Any], current: IsCurrent) -> pd.DataFrame:
    import pandas as pd

    calls = _distinct_calls(store, op, current)
    inputs = _edges(store, op, "call_inputs", "name")
    outputs = _edges(store, op, "call_outputs", "idx")
    names = _input_columns(op, inputs)
    defaults = _defaults_of_older_calls(store, op, names)
    own = clear_of(names, [*op.output_names(), *_OWN_COLUMNS])
    output_columns, meta = own[:op.nout], own[op.nout:]
    rows = []
    for hid, (version, valid, created_at, duration) in calls.items():
        given = inputs.get(hid, {})
        row = {name: load(given[name]) if name in given else _default(defaults, name, load) for name in names}
        given_out = outputs.get(hid, {})
        for idx, column in enumerate(output_columns):
            # (a call stored while the op had fewer outputs, nout= given since, has none there)
            row[column] = load(given_out[idx]) if idx in given_out else None
        row.update(zip(meta, (version, valid, duration, created_at, hid.hex())))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*names, *own])
    for name in (*names, *output_columns):  # values as stored: None is no NaN, 3 no 3.0
        frame[name] = value_series([row[name] for row in rows])
    created, valid_column = meta[3], meta[1]
    frame[created] = pd.to_datetime(frame[created], unit="s")
    frame[valid_column] = frame[valid_column].astype(bool)  # df[df.current] selects rows, even of none
    frame.attrs["mandala_ast.call_column"] = meta[4]  # `call_` when an argument is called `call`
    return frame


#: The columns ``storage.df`` adds after the outputs, in this order.
_OWN_COLUMNS = ("version", "current", "duration_s", "created_at", "call")


def value_series(column: list) -> pd.Series:
    """A DataFrame column of stored values. One with nulls stays an object column: ints stay
    ints and a None stays None, instead of pandas turning both into floats and NaN (a None
    output would look like a NaN one, the int argument 3 like the float 3.0).

    >>> value_series([1, None]).tolist()
    [1, None]
    """
    import numpy as np
    import pandas as pd

    # All ints (no None then): numpy converts them 5x faster than pandas infers a dtype, to
    # the same int64; an int beyond int64 leaves pandas to choose (uint64 or object).
    if column and set(map(type, column)) == {int}:
        try:
            return pd.Series(np.array(column, dtype=np.int64))
        except OverflowError:
            pass
    elif _has_none(column):
        return pd.Series(column, dtype=object)
    return pd.Series(column)


def _has_none(column: Iterable) -> bool:
    """Whether a column holds None (by identity: ``None in column`` compares with ``==``,
    which a numpy array answers elementwise and then cannot turn into one truth value)."""
    return any(map(operator.is_, column, itertools.repeat(None)))


def provenance_table(store: SQLiteStore, op: Op) -> pd.DataFrame:
    """For each stored call of ``op`` and each input: which call produced it.

    ``exact`` is True when compiled code recorded the producer, or knew that no op produced
    the input (a literal: no producer); otherwise the producer is found by content: the
    earliest earlier call whose output has the same content (an element's ``__item__`` call
    first), or None. A producer deleted without its dependents keeps its call id, with
    ``<deleted call>`` for op. An input compiled code built by hand (``f([inc(1), x])``)
    comes from a ``mandala_ast.__build__`` call; a row per element it holds from an op follows,
    ``xs[0]``, ``xs['a']``, ``xs[1][0]`` (runtime/built.py). Compiled code passes an element of a stored MList/MDict/MSet
    (``f(xs[0])``, ``for x in xs``) without its history, so such an input is matched by
    content to an ``__item__`` call (``exact`` False). Compiled code stored such calls exact
    before it marked them (``structures.ELEMENTS_MARKED_INEXACT_SINCE``): in those, a raw input
    is matched to an element, a literal equal to one too.
    """
    import pandas as pd

    return pd.DataFrame(provenance_rows(store, op.name), columns=list(PROVENANCE_COLUMNS))


#: provenance_table's columns; provenance_rows' rows have these keys, and ``value``.
PROVENANCE_COLUMNS = ("call", "input", "producer_op", "producer_call", "output_index", "exact")


def provenance_rows(store: SQLiteStore, op_name: str) -> list[dict]:
    """provenance_table's rows as dicts, each also with ``value``, the input's content id
    (bytes): what the flat export writes as its edges, so that it names the producers
    ``storage.provenance`` names. Needs no pandas."""
    rows = []
    query = store.conn.execute(_PROVENANCE_SQL, (op_name,)).fetchall()
    for call, name, cid, compiled, created_at, *exact in query:
        if exact[0] is not None:  # recorded history: exact, also in a call recorded inexact
            found, compiled = exact, True
        elif compiled and created_at >= ELEMENTS_MARKED_INEXACT_SINCE:
            found = (None, None, None)  # a literal: raw, exactly
        elif compiled:  # stored when an element was recorded raw: it may be one
            found = _item_by_content(store, cid, created_at, call)
            compiled = found[0] is None
        else:
            found = producer_by_content(store, cid, created_at, call)
        rows.append(_provenance_row(call, name, cid, found, compiled))
        if found[2] == BUILD_OP_NAME:
            rows += _element_rows(store, call, name, found[0])
    return rows


def _provenance_row(call: bytes, name: str, cid: bytes, found: tuple, exact: Any) -> dict:
    producer, index, producer_op = found
    return dict(
        value=cid,
        call=call.hex(),
        input=name,
        producer_op=producer_op,
        producer_call=producer.hex() if producer else None,
        output_index=index,
        exact=bool(exact),
    )


def _element_rows(store: SQLiteStore, call: bytes, name: str, build: bytes) -> list[dict]:
    """Rows for the elements of input ``name`` of ``call``, a collection built by hand by the
    call ``build``: their producers as compiled code recorded them (by content when it could
    not know them), in the collection's order; a nested collection's elements in turn."""
    rows = []
    found = store.conn.execute(_BUILD_INPUTS_SQL, (build,)).fetchall()
    for element, cid, exact, created_at, *source in sorted(found, key=_element_order):
        known = source[0] is not None
        producer = tuple(source) if known else producer_by_content(store, cid, created_at, build)
        rows.append(_provenance_row(call, name + element, cid, producer, known or exact))
        if producer[2] == BUILD_OP_NAME:
            rows += _element_rows(store, call, name + element, producer[0])
    return rows


def _element_order(row: tuple) -> tuple:
    """``[2]`` before ``[10]``: by position where the name is one."""
    inner = row[0][1:-1].lstrip("#")
    return (0, int(inner), "") if inner.isdigit() else (1, 0, row[0])


def producer_by_content(store: SQLiteStore, cid: bytes, before: float, consumer: bytes) -> tuple:
    """``(call row id, output index, op name)`` of the earliest call stored at or before
    ``before`` with an output of content ``cid``, an element's ``__item__`` call first (a value
    taken from a stored collection, ``inc(xs[2])``, comes from it rather than from an earlier
    call whose output happens to be equal); Nones when there is none. Never ``consumer``, the
    call given the value: stored at that moment, an op returning its argument matched itself."""
    query = (cid, before, consumer, ITEM_VERSION_ID)
    return store.conn.execute(_BY_CONTENT_SQL, query).fetchone() or (None, None, None)


def _item_by_content(store: SQLiteStore, cid: bytes, before: float, consumer: bytes) -> tuple:
    query = (cid, ITEM_VERSION_ID, before, consumer)
    return store.conn.execute(_ITEM_BY_CONTENT_SQL, query).fetchone() or (None, None, None)


def _distinct_calls(store: SQLiteStore, op: Op, current: IsCurrent) -> dict[bytes, tuple]:
    # Calls recorded again under a new history, or recomputed after a helper changed, share a
    # content id: show each computation once, the one today's code loads (after a helper's
    # edit was reverted, an older row), else the newest.
    newest: dict[bytes, tuple] = {}
    valid: dict[tuple[bytes, bytes], bool] = {}
    for hid, cid, version, created_at, duration, version_id, deps_id in store.conn.execute(_CALLS_SQL, (op.name,)):
        state = (version_id, deps_id)
        if state not in valid:
            valid[state] = current(version_id, deps_id)
        kept = newest.get(cid)
        if kept is not None and kept[1][1] and not valid[state]:
            continue  # a stale row newer than the one today's code loads
        newest.pop(cid, None)
        newest[cid] = (hid, (version, valid[state], created_at, duration))
    return dict(newest.values())


def _edges(store: SQLiteStore, op: Op, table: str, key: str) -> dict[bytes, dict]:
    edges: dict[bytes, dict] = {}
    for call_hid, name, cid in store.conn.execute(_EDGES_SQL.format(table=table, key=key), (op.name,)):
        edges.setdefault(call_hid, {})[name] = cid
    return edges


def _defaults_of_older_calls(store: SQLiteStore, op: Op, names: list[str]) -> dict[str, bytes]:
    """A parameter added later with a default: calls stored before it have no input for it,
    yet they are the calls with its default (the one the storage first saw, as lookups take
    them). Its content id, for those parameters whose default's value is in the file."""
    found = {name: cid for name, cid in store.conn.execute(_DEFAULTS_SQL, (op.name,)) if name in names}
    stored = store.find_values(list(set(found.values()))) if found else {}
    return {name: cid for name, cid in found.items() if cid in stored}


def _default(defaults: dict[str, bytes], name: str, load: Callable[[bytes], Any]) -> Any:
    cid = defaults.get(name)
    return None if cid is None else load(cid)


def _input_columns(op: Op, inputs: dict[bytes, dict]) -> list[str]:
    """Parameters in signature order, then any ``*args``/``**kw`` inputs seen in the rows."""
    names = [p for p in op.signature.parameters if p not in op.ignore]
    seen = {name for per_call in inputs.values() for name in per_call}
    flat = [n for n in names if n in seen or not _is_variadic(op, n)]
    return flat + sorted(seen - set(flat))


def _is_variadic(op: Op, name: str) -> bool:
    return op.signature.parameters[name].kind in (
        op.signature.parameters[name].VAR_POSITIONAL,
        op.signature.parameters[name].VAR_KEYWORD,
    )
