"""Collections built by hand in compiled code: where the elements of a list, tuple or dict
the user wrote (``[double(x) for x in xs]``, ``(a, b)``, ``{"a": a}``) came from.

Such a collection is no op's output, yet it holds op outputs: an op given it consumed them.
Compiled code hands it to the op as a :class:`BuiltRef`, the output of a call of one internal
op, ``mandala_ast.__build__``, whose inputs are the collection's elements that have a
producer (``src_call`` that call) or whose producer compiled code cannot know (no
``src_call``, the call recorded inexact: matched by content, as uncompiled code's inputs are).
Elements no op produced (literals, operators' results) have no input row: the collection's
content id already holds them. That call is recorded with the first op call given the
collection (a collection never passed to an op records nothing), so deletion, provenance and
the integrity check follow it as any call: deleting ``double(10)`` deletes the build call
that took its output, then the ``total`` call given the list.

Per build call of a collection of content id ``cid`` and kind ``kind`` (``list``, ``tuple``,
``dict``), with its inputs ``name -> value history id`` (``[0]``, ``[1]`` by position; for a
dict ``['a']`` by its str or int key, ``[#2]`` by position for a key of another type):

- history id ``digest(b"build|" + BUILD_VERSION_ID + kind + b"|" + cid + (name + NUL + hid)...
  + (b"?" + name + NUL)...)``, a ``?`` per element whose producer is unknown;
- content id ``digest(b"build|" + BUILD_VERSION_ID + kind + b"|" + cid)``;
- row id ``digest(b"row|" + history id + b"|")`` (any call's, with an empty deps id); its one
  output is the collection.

A collection of plain values only gets no build call: an op given it records it as raw, as
it always did (its call ids do not change).

A build call may also record every element of a collection by content (:func:`elements_rows`:
an MList/MDict/MSet argument of uncompiled code, a collection holding transient outputs): its
history id then hashes its elements' names and content ids instead (:func:`elements_history_id`),
so that it is found from them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .hashing import content_id, digest
from .refs import InexactRefs, Ref

__all__ = [
    "BUILD_OP_NAME",
    "BUILD_VERSION_ID",
    "KINDS",
    "UNKNOWN",
    "BuiltRef",
    "build_op_rows",
    "collection_ref",
    "element_names",
    "elements_history_id",
    "elements_rows",
    "settled",
]

#: The internal op whose calls record "this collection was built from these elements".
BUILD_OP_NAME = "mandala_ast.__build__"
BUILD_VERSION_ID = digest(b"op|mandala_ast.__build__|0|collection")


class BuiltRef(Ref):
    """A collection built by hand, with what compiled code knew of its elements: ``parts``,
    ``(input name, Ref)`` of elements an op produced, and ``unknown``, ``(input name, element)``
    of those whose producer it cannot know. Its ids depend on the collection's content id,
    which the op call given it computes anyway: :meth:`settle` sets them then (hashing the
    collection here too would hash a list of arrays twice)."""

    __slots__ = ("exact", "items", "kind", "parts", "unknown")
    is_built = True

    def __init__(self, value: Any, kind: str, items: tuple, parts: tuple, unknown: tuple) -> None:
        super().__init__(value, b"", b"", (b"", -1))
        self.kind, self.items, self.parts, self.unknown = kind, items, parts, unknown
        self.exact = not unknown and all(getattr(ref, "exact", True) for _, ref in parts)

    def settle(self, cid: bytes | None) -> bool:
        """Set the ids for the collection's content id ``cid``; False if the collection is no
        longer the one built (an element added, removed or replaced since: what is known of
        its elements no longer says what it holds)."""
        if cid is None or not self.intact():
            return False
        if cid == self.cid:
            return True
        for _, ref in self.parts:
            if type(ref) is BuiltRef and not ref.settle(content_id(ref.value)):
                return False
        from .identity import output_history_id  # (here: see _call_row)

        row_id = digest(b"row|%s|" % self.history_id(cid))
        self.cid, self.hid, self.src = cid, output_history_id(row_id, 0), (row_id, 0)
        return True

    def history_id(self, cid: bytes) -> bytes:
        known = b"".join(name.encode() + b"\0" + ref.hid for name, ref in self.parts)
        return _history_id(self.kind, cid, known, [name for name, _ in self.unknown])

    def call_cid(self) -> bytes:
        """The build call's content id (its collection's kind and content)."""
        return _call_cid(self.kind, self.cid)

    def intact(self) -> bool:
        """Whether the collection still holds the elements it was built with (by identity)."""
        now = tuple(self.value.items()) if self.kind == "dict" else self.value
        items = self.items
        if len(now) != len(items):
            return False
        if self.kind == "dict":
            return all(a[0] == b[0] and a[1] is b[1] for a, b in zip(now, items))
        return all(map(_same, now, items))

    def rows(self, now: float) -> Iterator[tuple[str, tuple]]:
        """``(table, row)`` pairs of the build call (its nested collections' calls first)."""
        for _, ref in self.parts:
            if type(ref) is BuiltRef:
                yield from ref.rows(now)
        row_id = self.src[0]
        yield "calls", _call_row(row_id, self.history_id(self.cid), self.kind, self.cid, self.exact, now)
        for name, ref in self.parts:
            yield "inputs", (row_id, name, ref.cid, *ref.src)
        for name, element in self.unknown:
            yield "inputs", (row_id, name, content_id(element), None, None)
        yield "outputs", (row_id, 0, self.cid)

    def values(self) -> Iterator[tuple[bytes, Any]]:
        """``(cid, value)`` of what the build call names that no op call stores: its nested
        collections and its elements of unknown producer."""
        for _, ref in self.parts:
            if type(ref) is BuiltRef:
                yield ref.cid, ref.value
                yield from ref.values()
        for _, element in self.unknown:
            yield content_id(element), element


def _same(a: Any, b: Any) -> bool:
    return a is b


def _history_id(kind: str, cid: bytes, known: bytes, unknown: list[str]) -> bytes:
    marks = b"".join(b"?" + name.encode() + b"\0" for name in unknown)
    return digest(b"build|%s%s|%s%s%s" % (BUILD_VERSION_ID, kind.encode(), cid, known, marks))


def _call_cid(kind: str, cid: bytes) -> bytes:
    return digest(b"build|%s%s|%s" % (BUILD_VERSION_ID, kind.encode(), cid))


def _call_row(row_id: bytes, history: bytes, kind: str, cid: bytes, exact: bool, now: float) -> tuple:
    # Imported here, as identity in BuiltRef.settle: every compiled module imports
    # compiled.py, which imports this module; identity and packing bring sqlite3 along,
    # milliseconds of a warm import that only a storage needs.
    from .packing import pack_outputs

    packed = pack_outputs((cid,), None)  # the collection's value is in its own row
    return (row_id, history, _call_cid(kind, cid), BUILD_VERSION_ID, b"", now, 0.0, int(exact), packed)


def elements_history_id(kind: str, names: list[str], element_cids: list[bytes]) -> bytes:
    """The history id of the build call :func:`elements_rows` records: its elements' names
    and content ids, which make up the collection's content (``kind`` says which kind, and a
    name a list's index or a dict's str or int key), so that the collection's content id can
    be found from them, as a list of stored transient outputs is (runtime/lazy_collections.py).

    >>> elements_history_id("list", ["[0]"], [bytes(32)]) != elements_history_id("tuple", ["[0]"], [bytes(32)])
    True
    """
    parts = b"".join(name.encode() + b"\0" + cid for name, cid in zip(names, element_cids))
    return digest(b"build|%s%s|#%d|%s" % (BUILD_VERSION_ID, kind.encode(), len(names), parts))


def elements_rows(kind: str, cid: bytes, names: list[str], element_cids: list[bytes], now: float) -> Iterator[tuple[str, tuple]]:
    """``(table, row)`` pairs of the build call of a collection of content id ``cid`` that
    records every element as an input of unknown producer, matched by content as uncompiled
    code's inputs are: for an MList/MDict/MSet argument whose history no code recorded, so
    that deletion reaches the calls given the collection from the calls that produced its
    elements, and for a collection holding stored transient outputs, so that it is found from
    their ids (``kind`` ``set`` for an MSet; names ``[#0]``... in its stored order)."""
    history = elements_history_id(kind, names, element_cids)
    row_id = digest(b"row|%s|" % history)
    yield "calls", _call_row(row_id, history, kind, cid, False, now)
    for name, element in zip(names, element_cids):
        yield "inputs", (row_id, name, element, None, None)
    yield "outputs", (row_id, 0, cid)


#: What compiled code found for an element whose producer it cannot know (a helper's result).
UNKNOWN: Any = object()
#: The collections a build call records, by their exact type.
KINDS: dict[type, str] = {list: "list", tuple: "tuple", dict: "dict"}


def collection_ref(value: Any, found: Any) -> BuiltRef | None:
    """A BuiltRef of ``value`` (a list, tuple or dict) given, per element in order, its Ref,
    None (no op produced it) or :data:`UNKNOWN`; None when no element has a producer to
    record (the collection is then raw, as it always was)."""
    kind = KINDS[type(value)]
    elements = value.values() if kind == "dict" else value
    parts, unknown = [], []
    for name, element, known in zip(element_names(kind, value), elements, found):
        if known is UNKNOWN:
            unknown.append((name, element))
        elif known is not None:
            parts.append((name, known))
    if not parts and not unknown:
        return None
    items = tuple(value.items()) if kind == "dict" else tuple(value)
    return BuiltRef(value, kind, items, tuple(parts), tuple(unknown))


def element_names(kind: str, value: Any) -> list[str]:
    """Input names of a collection's elements, in order.

    >>> element_names("list", [7, 8]), element_names("dict", {"a": 1, 2: 3, (4,): 5})
    (['[0]', '[1]'], ["['a']", '[2]', '[#2]'])
    """
    if kind != "dict":
        return [f"[{i}]" for i in range(len(value))]
    return [f"[{key!r}]" if type(key) in (str, int) else f"[#{i}]" for i, key in enumerate(value)]


def settled(input_refs: dict[str, Ref], cids: dict[str, bytes]) -> dict[str, Ref]:
    """``input_refs`` with each BuiltRef's ids set from its argument's content id; one whose
    collection changed since it was built is dropped, and the call is then inexact (an ignored
    argument, which has no content id, is merely dropped)."""
    for ref in input_refs.values():  # a loop, not any(): no generator on the calls with none
        if type(ref) is BuiltRef:
            break
    else:
        return input_refs
    kept = type(input_refs)(input_refs) if type(input_refs) is InexactRefs else dict(input_refs)
    changed = False
    for name, ref in input_refs.items():
        if type(ref) is BuiltRef and not ref.settle(cids.get(name)):
            del kept[name]
            changed = changed or name in cids
    return InexactRefs(kept) if changed and type(kept) is not InexactRefs else kept


def build_op_rows(now: float) -> dict[str, tuple]:
    """The ``ops`` and ``versions`` rows that register the build op."""
    signature = json.dumps({"signature": "(*elements)", "outputs": ["collection"]})
    return {
        "ops": (BUILD_OP_NAME, 1, signature),
        "versions": (BUILD_VERSION_ID, BUILD_OP_NAME, 0, now, None, None),
    }
