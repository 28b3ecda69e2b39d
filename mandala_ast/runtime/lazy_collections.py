"""A list, tuple or dict of stored transient outputs, identified without computing them.

A stored transient call hands out lazy outputs that know their content ids (transient.py): one
passed to an op is hashed by that id, and a call stored with it is found without its value.
A collection's content id, though, hashes its elements' encodings, which a lazy output has only
once computed. So where a call is given a collection holding a transient output, a build call
(built.py:elements_rows) records its elements' content ids and the collection's, under a history
id that hashes the elements' ids (built.elements_history_id): a later collection of the same
lazy outputs is found by that id, its content id read from the record, nothing computed.

Without such a record (the collection first given by an earlier release, or by a process that
did not know its elements for transient outputs), the elements are computed and hashed as any
value; the record is then noted for the storage, for the next time, if they came out with the
ids the stored calls recorded (otherwise the op is not deterministic, and it says so).
"""

from __future__ import annotations

from typing import Any

from . import transient
from .built import KINDS, element_names, elements_history_id
from .hashing import content_id
from .proxy import node_of

__all__ = ["content_id_of", "elements_of"]


def content_id_of(value: Any) -> bytes:
    """``content_id(value)``; for a list, tuple or dict holding a stored transient output not
    computed yet, read from the record of its elements, if its storage has one."""
    kind = KINDS.get(type(value))
    if kind is None:
        return content_id(value)
    lazy = next((e for e in (value.values() if kind == "dict" else value) if transient.is_lazy(e)), None)
    found = elements_of(kind, value) if lazy is not None else None
    if lazy is None or found is None:
        return content_id(value)
    names, cids = found
    recomputed = node_of(lazy)[0].recomputed
    history = elements_history_id(kind, names, cids)
    cid = recomputed.find_collection(history) if recomputed.find_collection else None
    if cid is None:
        cid = content_id(value)  # computes the lazy outputs
        if elements_of(kind, value) == found and recomputed.note_collection:  # as stored
            recomputed.note_collection((kind, names, cids, cid))
    return cid


def elements_of(kind: str, value: Any) -> tuple[list[str], list[bytes]] | None:
    """The names and content ids of a list's, tuple's or dict's elements, which make up its
    content; None for a dict with a key of another type than str or int (its name does not
    say which key it is)."""
    if kind == "dict" and not all(type(key) in (str, int) for key in value):
        return None
    elements = value.values() if kind == "dict" else value
    return element_names(kind, value), [content_id(e) for e in elements]
