"""Refs: a value together with the ids that say what it is and where it came from."""

from __future__ import annotations

from typing import Any

__all__ = ["Ref"]


class Ref:
    """A value with its content id (``cid``) and history id (``hid``).

    Refs exist only for op outputs. The ``hid`` of a raw value is its ``cid``; the ``hid`` of an op output is derived from the
    producing call's ``hid`` and the output's index, so two equal values computed differently
    have the same ``cid`` but different ``hid`` s. User code never sees Refs: they travel only
    between compiled code and the runtime.
    """

    __slots__ = ("cid", "hid", "src", "value")

    def __init__(self, value: Any, cid: bytes, hid: bytes, src: tuple[bytes, int]) -> None:
        self.value = value
        self.cid = cid
        self.hid = hid
        #: (hid of the call that produced the value, output index)
        self.src = src

    def __repr__(self) -> str:
        return f"Ref({self.value!r}, hid={self.hid.hex()[:8]})"
