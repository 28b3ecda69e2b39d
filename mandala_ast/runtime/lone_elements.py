"""Refusing the call id of a collection's element given to ``delete_calls`` without its collection.

An element of an ``MList``/``MDict``/``MSet`` output is recorded as a ``mandala_ast.__item__``
call (runtime/structures.py), whose id ``storage.provenance`` shows as an input's producer. It
is part of its collection's value, written only when the collection's call is: deleting it alone
would leave the collection stored without the record of its element, and no block would ever
write it again. Deleting the collection's call instead would delete more than was asked (every
element and everything computed from them). So an element's id given by id, without its
collection's call, is an error that says which call to pass; with it, it goes with it.

Rows of a query (a query result's rows, what a delete block matched: :class:`QueryMatches`) name
the calls of the elements they iterate whether or not they name the collection's call
(``xs = Q(); for e in xs: y = f(e)`` keeps the list): there an element's call is not asked for,
and goes with its collection or not at all.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from .._errors import ArgumentError
from .described import describe_row
from .structures import ITEM_VERSION_ID

if TYPE_CHECKING:
    from .blobs import BlobDir

__all__ = ["QueryMatches", "refuse_lone_elements"]


class QueryMatches(frozenset[bytes]):
    """The row ids of the calls a query's rows matched (``Query.matched_calls``): handed to
    ``storage.delete_calls``, element calls among them are not refused."""


# Targets that are element calls whose collection's call is stored but not a target too. (One
# whose collection's call was deleted with dependents=False is deleted as asked: deletion.py.)
# The targets' calls by their integer keys, which deletion.py found once (temp.mandala_target_key):
# a lookup by row id probes every bucket of the index of row ids (store.py), and joined on
# m.hid, SQLite 3.40 filtered that skip-scan through a Bloom filter keyed by the bucket too
# and found no call past the first 16,384.
_LONE_SQL = f"""
SELECT m.hid, i.src_index, k.cid, p.hid, v.op_name
FROM temp.mandala_target_key t
CROSS JOIN main.calls m ON m.id = t.id AND m.version_id = X'{ITEM_VERSION_ID.hex()}'
CROSS JOIN main.call_inputs i ON i.call_id = m.id AND i.name = 'struct'
CROSS JOIN main.call_inputs k ON k.call_id = m.id AND k.name = 'key'
CROSS JOIN main.calls p ON p.id = i.src_call
LEFT JOIN main.versions v ON v.version_id = p.version_id
WHERE NOT EXISTS (SELECT 1 FROM temp.mandala_target_key o WHERE o.id = p.id)
LIMIT 1
"""
_KEY_SQL = "SELECT codec, data, size, external FROM vals WHERE cid = ?"


def refuse_lone_elements(conn: sqlite3.Connection, blobs: BlobDir | None) -> None:
    """Raise :class:`ArgumentError` if a target (its integer key in ``temp.mandala_target_key``)
    is an element's call given without its collection's call (see the module docstring)."""
    lone = conn.execute(_LONE_SQL).fetchone()
    if lone is None:
        return
    hid, index, key_cid, producer, op_name = lone
    key = describe_row(conn.execute(_KEY_SQL, (key_cid,)).fetchone(), key_cid, blobs)
    raise ArgumentError(_message(hid, key, index, producer, op_name))


def _message(
    hid: bytes, key: object, index: int, producer: bytes | None, op_name: str | None
) -> str:
    collection = f"output {index} of {op_name or '<deleted call>'}"
    producer_id = producer.hex() if producer else "?"
    return (
        f"storage.delete_calls: call {hid.hex()[:12]}... is element {key!r} of {collection} "
        f"(call {producer_id}), a mandala_ast.__item__ call; an element is stored with its "
        f"collection and cannot be deleted alone. Pass the collection's call {producer_id} to "
        "delete it and every call computed from its elements, or the calls computed from this "
        f"element (rows of storage.provenance(op) whose producer_call is {hid.hex()[:12]}...) "
        "to keep it. Nothing was deleted"
    )
