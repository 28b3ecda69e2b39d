"""The call graph a batch block records: one node per op call, edges where outputs feed calls."""

from __future__ import annotations

import itertools
from typing import Any

from ..refs import Ref
from .deferred import Deferred, deferred_in, node_of

__all__ = ["DONE", "FAILED", "NEW", "RUNNING", "Node"]

NEW, RUNNING, DONE, FAILED = "new", "running", "done", "failed"
_SERIALS = itertools.count()


class Node:
    """One recorded op call: its arguments (possibly deferred) and, once run, its outputs."""

    __slots__ = (
        "args", "batch", "call", "children", "error", "followers", "hints", "inputs", "kwargs",
        "op", "outputs", "parents", "pending_refs", "produced_by", "refs", "serial", "skipped", "speculative",
        "state", "values",
    )

    def __init__(self, batch: Any, op: Any, args: tuple, kwargs: dict, hints: dict | None) -> None:
        self.batch, self.op, self.args, self.kwargs, self.hints = batch, op, args, kwargs, hints
        self.serial = next(_SERIALS)  # waves run in the order the calls were made
        self.state = NEW
        self.outputs = tuple(Deferred(self, i) for i in range(op.nout))
        #: Refs compiled code sees: each holds this call's Deferred and no ids yet
        self.pending_refs = tuple(Ref(d, b"", b"", (b"", i)) for i, d in enumerate(self.outputs))
        self.parents: list[Node] = _parents(args, kwargs)
        self.children: list[Node] = []
        for parent in self.parents:
            parent.children.append(self)
        self.values: tuple = ()
        self.refs: tuple = ()
        self.error: BaseException | None = None
        self.skipped = False
        self.call: Any = None
        self.inputs: dict = {}
        self.followers: list[Node] = []
        #: Dask: (future already submitted with its inputs' futures, [(input node, future)])
        self.speculative: Any = None
        #: the future whose result was recorded as this call's outputs, if computed here
        self.produced_by: Any = None

    def value(self, index: int) -> Any:
        """Output ``index``, forcing the calls it needs first; a failed call raises its error."""
        if self.state is not DONE:
            self.batch.force([self])
        if self.state is FAILED:
            raise self.error  # type: ignore[misc]
        return self.values[index]

    def describe(self) -> str:
        """``op.name(arguments)`` for messages."""
        if self.call is not None:
            return f"{self.op.name}({self.call.describe()})"
        return f"{self.op.name}(...)"


def _parents(args: tuple, kwargs: dict) -> list[Node]:
    found = deferred_in(list(kwargs.values()), deferred_in(args, []))
    return list(dict.fromkeys(node_of(d)[0] for d in found))
