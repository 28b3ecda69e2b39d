"""Lists and dicts filled step by step in compiled code: ``ys = []``, then ``ys.append(inc(x))``.

An op given ``ys`` consumed the outputs added to it, as an op given ``[inc(x) for x in xs]``
does: it gets the same build call (runtime/built.py). What compiled code knows of such a list is
:class:`Grown`: every object that was added to it, each with its producer (a Ref), None (no op
produced it) or :data:`~.built.UNKNOWN`. The compiler emits the hooks that fill it only for a
list it follows (transforms/_grown.py: every statement that may add to it is one it rewrites),
so whatever the list holds is among those objects, whatever was taken out or reordered since.
An element's producer is then the one its object was added with; an object added twice with
two different producers (the int ``2`` two ops returned: one object) is UNKNOWN, matched by
content. A list that went to a call that is no op (a helper may add anything to it: ``lent``
more often than ops took it) is UNKNOWN throughout from then on, as is one filled before the
block began (its earlier elements) or given to a workflow.
"""

from __future__ import annotations

from typing import Any

from .built import UNKNOWN, BuiltRef, collection_ref

__all__ = ["Grown", "elements_of", "loose_ref"]


class Grown:
    """What compiled code knows of one list or dict it follows (``value``)."""

    __slots__ = ("added", "lent", "loose", "taken", "value")

    def __init__(self, value: Any, earlier: bool) -> None:
        self.value = value
        #: (object, producer) of everything added; with ``earlier``, what it held already
        self.added: list[tuple[Any, Any]] = [(e, UNKNOWN) for e in elements_of(value)] if earlier else []
        self.lent = self.taken = 0
        self.loose = False

    def add(self, element: Any, found: Any) -> None:
        self.added.append((element, found))

    def take(self) -> BuiltRef | None:
        """The BuiltRef an op given the list records (None: raw), counting it taken."""
        self.taken += 1
        if self.lent > self.taken:  # given to a call that was no op before this one
            self.loose = True
        return self.ref()

    def ref(self) -> BuiltRef | None:
        if self.loose:
            return loose_ref(self.value)
        by_object: dict[int, Any] = {}
        for element, found in self.added:
            known = by_object.setdefault(id(element), found)
            if known is not found and not _same_producer(known, found):
                by_object[id(element)] = UNKNOWN
        return collection_ref(self.value, [by_object.get(id(e), UNKNOWN) for e in elements_of(self.value)])


def _same_producer(a: Any, b: Any) -> bool:
    """Two Refs of one call's output (a call hit twice gives two Refs); a collection built
    by hand only is itself."""
    if a is None or b is None or a is UNKNOWN or b is UNKNOWN or a.is_built or b.is_built:
        return False
    return bool(a.src == b.src and a.hid == b.hid)


def elements_of(value: Any) -> Any:
    return value.values() if type(value) is dict else value


def loose_ref(value: Any) -> BuiltRef | None:
    """``value`` with every element of unknown producer (matched by content); None if empty."""
    return collection_ref(value, [UNKNOWN] * len(value))
