"""Lists and dicts filled step by step in compiled code: ``ys = []``, then ``ys.append(inc(x))``.

An op given ``ys`` consumed the outputs added to it, as an op given ``[inc(x) for x in xs]``
does: it gets the same build call (runtime/built.py). What compiled code knows of such a list is
:class:`Grown`: every object that was added to it, each with its producer (a Ref), None (no op
produced it) or :data:`~.built.UNKNOWN`. The compiler emits the hooks that fill it only for a
list it follows (transforms/_grown.py: every statement that may add to it is one it rewrites),
so whatever the list holds is among those objects, whatever was taken out or reordered since.
An element's producer is then the one its object was added with; an object added twice with
two different producers (the int ``2`` two ops returned: one object) is UNKNOWN, matched by
content, as is what the list held when the block first met it (filled before the block began).
A list given to a call that turned out to be no op, or to a workflow (either may add anything
to it), is UNKNOWN throughout for the rest of the block (``compiled.py:LENT``).
"""

from __future__ import annotations

from typing import Any

from .built import UNKNOWN, BuiltRef, collection_ref

__all__ = ["Grown", "elements_of", "loose_ref"]


class Grown:
    """What compiled code knows of one list or dict it follows (``value``): every object added
    to it, with its producer; what it held when first met, of unknown producer."""

    __slots__ = ("added", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.added: list[tuple[Any, Any]] = [(e, UNKNOWN) for e in elements_of(value)]

    def add(self, element: Any, found: Any) -> None:
        self.added.append((element, found))

    def ref(self) -> BuiltRef | None:
        """The BuiltRef an op given the list records (None: raw, no element has a producer)."""
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
