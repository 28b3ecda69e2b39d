"""The call graph a batch block records: one node per op call, edges where outputs feed calls."""

from __future__ import annotations

import itertools
from typing import Any

from ..refs import Ref
from . import pipeline_adapter as engine
from .deferred import Deferred, deferred_in, node_of

__all__ = ["DONE", "FAILED", "NEW", "RUNNING", "Node"]

NEW, RUNNING, DONE, FAILED = "new", "running", "done", "failed"
_SERIALS = itertools.count()


class Node:
    """One recorded op call: its arguments (possibly deferred) and, once run, its outputs."""

    __slots__ = (
        "args", "batch", "call", "children", "error", "followers", "hints", "inputs", "kwargs",
        "op", "outputs", "parents", "produced_by", "refs", "serial", "skipped", "speculative",
        "state", "values",
    )

    def __init__(self, batch: Any, op: Any, args: tuple, kwargs: dict, hints: dict | None) -> None:
        self.batch, self.op, self.args, self.kwargs, self.hints = batch, op, args, kwargs, hints
        self.serial = next(_SERIALS)  # waves run in the order the calls were made
        self.state = NEW
        self.outputs = (Deferred(self, 0),) if op.nout == 1 else tuple(Deferred(self, i) for i in range(op.nout))
        # Few objects per call (a wide batch records 100k of them, and the garbage collector
        # visits every container): the lists below are shared empty tuples until needed.
        if not kwargs and _SCALARS.issuperset(map(type, args)):  # the common case, at once
            self.parents: Any = _NONE
        else:
            self.parents = _parents(args, kwargs)
            for parent in self.parents:
                parent.add_child(self)
        self.children: Any = _NONE
        self.values: tuple = ()
        #: once DONE: (row hid, output cids), turned into Refs on demand (output_refs)
        self.refs: Any = ()
        self.error: BaseException | None = None
        #: not run because an input failed: the failed call whose error it carries
        self.skipped: Node | None = None
        self.call: Any = None
        self.inputs: Any = None
        self.followers: Any = _NONE
        #: Dask: (future already submitted with its inputs' futures, [(input node, future)])
        self.speculative: Any = None
        #: the future whose result was recorded as this call's outputs, if computed here
        self.produced_by: Any = None

    def add_child(self, child: Node) -> None:
        if self.children is _NONE:
            self.children = []
        self.children.append(child)

    def add_follower(self, follower: Node) -> None:
        """An identical call that waits for this one to be stored, then finds it."""
        if self.followers is _NONE:
            self.followers = []
        self.followers.append(follower)

    @property
    def pending_refs(self) -> tuple[Ref, ...]:
        """The Refs compiled code keeps for the outputs: each holds this call's Deferred and
        no ids yet (compiled code only compares values, by identity)."""
        return tuple(Ref(d, b"", b"", (b"", i)) for i, d in enumerate(self.outputs))

    def output_refs(self) -> tuple[Ref, ...]:
        """The outputs' Refs with their ids, for exact provenance of the calls they feed."""
        if type(self.refs) is tuple and len(self.refs) == 2 and type(self.refs[0]) is bytes:
            self.refs = engine.output_refs(self.refs[0], self.refs[1], self.values)
        return self.refs

    def value(self, index: int) -> Any:
        """Output ``index``, forcing the calls it needs first; a failed call raises its error."""
        if self.state is not DONE:
            self.batch.force([self])
        if self.state is FAILED:
            self.batch.handed_over(self.skipped or self)
            raise self.error  # type: ignore[misc]
        return self.values[index]

    def describe(self) -> str:
        """``op.name(arguments)`` for messages."""
        if self.call is not None:
            return f"{self.op.name}({self.call.describe()})"
        return f"{self.op.name}(...)"


_SCALARS = frozenset({int, float, str, bool, bytes, type(None)})


_NONE: tuple = ()


def _parents(args: tuple, kwargs: dict) -> Any:
    found = deferred_in(list(kwargs.values()), deferred_in(args, []))
    return list(dict.fromkeys(node_of(d)[0] for d in found))
