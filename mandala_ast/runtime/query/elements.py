"""``for e in xs`` over a query variable holding an MList / MDict / MSet.

Elements are stored as calls of one internal op (runtime/structures.py): inputs ``struct``
(the collection, with its history) and ``key`` (index, dict key, or the set element), output
the element. Iterating a collection in a query is therefore one more call node.

A loop binds what the same loop binds in Python: ``for k in d`` the keys of a dict, ``for e in
xs`` the elements of a list or set. The kind comes from the producing op's annotation; a
collection of unknown kind (``xs = Q()``) is iterated as a list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._errors import QueryError
from .pattern import Derived, ElementKey, Node, OutputVar

if TYPE_CHECKING:
    from .block import QueryBlock

__all__ = ["ITEM", "iterate"]

#: How each way of iterating binds (key, element) for each kind of collection: names of the
#: loop variables, or the reason it cannot be matched. ``None`` is a collection of unknown kind.
_BINDS: dict[tuple[str, str | None], tuple[str, ...] | str] = {
    ("elements", "list"): ("element",),
    ("elements", "set"): ("element",),
    ("elements", "dict"): ("key",),
    ("elements", None): ("element",),
    ("enumerate", "list"): ("key", "element"),
    ("enumerate", None): ("key", "element"),
    ("enumerate", "set"): "a set has no order, so enumerate() numbers its elements arbitrarily",
    ("enumerate", "dict"): "positions of dict keys are not stored; iterate d.items() instead",
    ("items", "dict"): ("key", "element"),
    ("items", None): ("key", "element"),
    ("keys", "dict"): ("key",),
    ("keys", None): ("key",),
    ("values", "dict"): ("element",),
    ("values", None): ("element",),
}


class _ItemOp:
    """The internal element op, as far as the query engine needs to know it."""

    nout = 1
    ignore: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        from ..structures import ITEM_OP_NAME

        return ITEM_OP_NAME

    def output_names(self) -> list[str]:
        return ["element"]


ITEM = _ItemOp()


def iterate(block: QueryBlock, iterable: Node, count: int) -> tuple[Node, ...]:
    """The loop variables of ``for <count names> in iterable``."""
    struct, shape = _unwrap(iterable)
    _check_iterable(struct)
    kind = _kind(struct)
    binds = _BINDS.get((shape, kind), f"a {kind} has no .{shape}()")
    if isinstance(binds, str):
        raise QueryError(f"cannot iterate {_written(shape, struct)} in a query: {binds}")
    if count != len(binds):
        if len(binds) == 1:
            raise QueryError(
                f"`for` over {struct.label} binds one {binds[0]} per step; use enumerate({struct.label}) "
                f"for a list or {struct.label}.items() for a dict to get (index or key, element) pairs"
            )
        raise QueryError(f"`for` over {_written(shape, struct)} binds 2 names, not {count}")
    key, element = _item_call(block, struct)
    found = {"key": key, "element": element}
    return tuple(found[name] for name in binds)


def _unwrap(iterable: Node) -> tuple[Node, str]:
    """``xs`` -> elements; ``enumerate(xs)``; ``d.items()``, ``d.keys()``, ``d.values()``."""
    if isinstance(iterable, Derived) and iterable.args:
        head, *rest = iterable.args
        if head is enumerate and len(rest) == 1 and isinstance(rest[0], Node) and not iterable.kwargs:
            return rest[0], "enumerate"
        if isinstance(head, Derived) and head.fn is getattr and not rest:
            owner, attribute = head.args
            if attribute in ("items", "keys", "values"):
                return owner, attribute
    return iterable, "elements"


def _written(shape: str, struct: Node) -> str:
    if shape == "elements":
        return struct.label
    return f"enumerate({struct.label})" if shape == "enumerate" else f"{struct.label}.{shape}()"


def _check_iterable(struct: Node) -> None:
    """Only stored elements can be matched: a loop over anything else would match nothing."""
    if isinstance(struct, Derived):
        raise QueryError(
            f"cannot iterate {struct.text or struct.label} in a query: a loop can iterate the "
            "elements of an op's MList/MDict/MSet output (or of a Q() variable), not an expression"
        )
    if isinstance(struct, OutputVar) and hasattr(struct.call.op, "structure_outputs") \
            and struct.index not in struct.call.op.structure_outputs:
        raise QueryError(
            f"cannot iterate {struct.label} in a query: output {struct.index} of op "
            f"{struct.call.op.name} is stored as one value, so its elements are not stored; "
            "annotate it as MList/MDict/MSet to store (and query) elements"
        )


def _kind(struct: Node) -> str | None:
    """``"list"``, ``"dict"`` or ``"set"`` for an op output annotated MList/MDict/MSet."""
    if isinstance(struct, OutputVar):
        return getattr(struct.call.op, "structure_outputs", {}).get(struct.index)
    return None


def _item_call(block: QueryBlock, struct: Node) -> tuple[ElementKey, OutputVar]:
    from ..structures import ITEM_VERSION_ID

    pattern = block.pattern
    key = ElementKey(pattern)
    call = pattern.add_call(ITEM, ITEM_VERSION_ID, {"struct": struct, "key": key}, 1)
    return key, call.outputs[0]
