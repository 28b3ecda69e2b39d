"""Refs: a value together with the ids that say what it is and where it came from."""

from __future__ import annotations

from typing import Any

__all__ = ["UNKNOWN", "InexactRefs", "Ref"]


class Ref:
    """A value with its content id (``cid``) and value history id (``hid``).

    Refs exist only for op outputs. The ``hid`` of a raw value is its ``cid``; the ``hid`` of an
    op output is derived from the producing call's row id and the output's index, so two equal
    values computed differently have the same ``cid`` but different ``hid`` s. User code never sees Refs: they travel only
    between compiled code and the runtime.
    """

    __slots__ = ("cid", "hid", "src", "value")
    #: True for a collection built by hand (runtime/built.py), whose producing call is
    #: recorded with the first call given it
    is_built = False

    def __init__(self, value: Any, cid: bytes, hid: bytes, src: tuple[bytes, int]) -> None:
        self.value = value
        self.cid = cid
        self.hid = hid
        #: (row id of the call that produced the value, output index)
        self.src = src

    def __repr__(self) -> str:
        return f"Ref({self.value!r}, hid={self.hid.hex()[:8]})"


#: The history of an argument compiled code does not know (see InexactRefs): no parameter is
#: named ``?``, so it takes no argument's place.
UNKNOWN = "?"


class InexactRefs(dict):
    """The Refs compiled code knows for a call's arguments, by name, when another argument
    may be an op's output whose history it cannot name: a name bound by a helper's result or
    an ``await``, a loop variable over a list, ``b[0]`` where ``b = f(a)`` is one output that
    happens to be a tuple. "No producer" would be a wrong claim, so the call is recorded
    inexact and such inputs are matched by content. Its history id is not that of the same
    call with raw arguments (``inc(101)`` written as a literal): it holds :data:`UNKNOWN`,
    whose Ref makes the warm-hit caches' keys differ too.

    >>> InexactRefs({"y": ref})          # doctest: +SKIP
    """

    def __init__(self, refs: dict[str, Ref] | None = None) -> None:
        super().__init__(refs or ())
        self[UNKNOWN] = _UNKNOWN_REF


_UNKNOWN_REF = Ref(None, b"", UNKNOWN.encode(), (b"", -1))
