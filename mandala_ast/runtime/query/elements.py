"""``for e in xs`` over a query variable holding an MList / MDict / MSet (DESIGN §3.7).

Elements are stored as calls of one internal op (runtime/structures.py): inputs ``struct``
(the collection, with its history) and ``key`` (index, dict key, or the set element), output
the element. Iterating a collection in a query is therefore one more call node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._errors import QueryError
from .pattern import Derived, ElementKey, Node, OutputVar

if TYPE_CHECKING:
    from .block import QueryBlock

__all__ = ["ITEM", "iterate"]


class _ItemOp:
    """The internal element op, as far as the query engine needs to know it."""

    nout = 1
    ignore = frozenset()

    @property
    def name(self) -> str:
        from ..structures import ITEM_OP_NAME

        return ITEM_OP_NAME

    def output_names(self) -> list[str]:
        return ["element"]


ITEM = _ItemOp()


def iterate(block: "QueryBlock", iterable: Node, count: int) -> tuple[Node, ...]:
    """The loop variables of ``for <count names> in iterable``."""
    struct, shape = _unwrap(iterable)
    if shape == "elements" and count != 1:
        raise QueryError(
            f"`for` over {struct.label} binds one element per step; use enumerate({struct.label}) "
            f"or {struct.label}.items() for (index or key, element) pairs"
        )
    if shape != "elements" and count != (1 if shape in ("keys", "values") else 2):
        raise QueryError(f"`for` over {shape} of {struct.label} binds {count} names")
    key, element = _item_call(block, struct)
    return {"elements": (element,), "pairs": (key, element), "keys": (key,), "values": (element,)}[shape]


def _unwrap(iterable: Node) -> tuple[Node, str]:
    """``xs`` -> elements; ``enumerate(xs)`` / ``d.items()`` -> pairs; ``d.keys()``, ``d.values()``."""
    if isinstance(iterable, Derived) and iterable.args:
        head, *rest = iterable.args
        if head is enumerate and len(rest) == 1 and isinstance(rest[0], Node) and not iterable.kwargs:
            return rest[0], "pairs"
        if isinstance(head, Derived) and head.fn is getattr and not rest:
            owner, attribute = head.args
            shape = {"items": "pairs", "keys": "keys", "values": "values"}.get(attribute)
            if shape is not None:
                return owner, shape
    return iterable, "elements"


def _item_call(block: "QueryBlock", struct: Node) -> tuple[ElementKey, OutputVar]:
    from ..structures import ITEM_VERSION_ID

    pattern = block.pattern
    key = ElementKey(pattern)
    call = pattern.add_call(ITEM, ITEM_VERSION_ID, {"struct": struct, "key": key}, 1)
    return key, call.outputs[0]
