"""``with storage.batch(...):`` — the run block's code, deferred and run in parallel.

Op calls made in the block (directly, or in ``@workflow`` bodies) return :class:`Deferred`
outputs and record a call graph. A use of a deferred value that needs it (arithmetic, ``if``,
``print``) forces the calls it needs; at the end of the block everything left runs, the
names the block bound become plain values, and failures are raised.
"""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

from ..._errors import StorageFullError
from .. import compiled
from ..blocks import RunBlock, state
from ..ops import Op
from .bar import Bar
from .deferred import deferred_in, node_of, substitute
from .executors import backend_for
from .failures import raise_failures
from .frames import make_plain
from .graph import DONE, Node
from .scheduler import BatchStats, Scheduler

__all__ = ["BatchBlock"]


class BatchBlock(RunBlock):
    """A batch block. ``executor``: None (this process), ``"threads"``, ``"processes"``, a
    ``concurrent.futures.Executor`` or a ``dask.distributed.Client``.

    >>> with storage.batch(executor="threads") as b:           # doctest: +SKIP
    ...     squares = [square(x) for x in range(100)]          # recorded, not run
    ...     total = sum(squares)                               # forces the 100 calls
    >>> b.stats.dispatched                                     # doctest: +SKIP
    100
    """

    def __init__(self, storage: Any, executor: Any = None, *, progress: bool | None = None,
                 max_concurrency: int | None = None, allow_new_calls: bool | None = None) -> None:
        super().__init__(storage, allow_new_calls=allow_new_calls)
        self.executor, self.progress, self.max_concurrency = executor, progress, max_concurrency
        self.nodes: list[Node] = []
        self.scheduler: Scheduler | None = None

    @property
    def stats(self) -> BatchStats:
        """Counts of what the block did (lookups, found, dispatched, computed, failed)."""
        return self.scheduler.stats if self.scheduler is not None else BatchStats()

    # -- recording -----------------------------------------------------------------------------

    def call_op(self, op: Any, args: tuple, kwargs: dict) -> Any:
        """An op call from uncompiled code: deferred outputs, identity by content."""
        return op.join_outputs(self._record(op, args, kwargs, None).outputs)

    def call_op_with_refs(self, op: Any, args: tuple, kwargs: dict, input_refs: dict) -> tuple:
        """An op call from compiled code: Refs holding deferred outputs (ids come later)."""
        return self._record(op, args, kwargs, input_refs).pending_refs

    def call_async_op(self, op: Any, args: tuple, kwargs: dict) -> Any:
        """An async op's call: deferred like any other (awaiting it forces it)."""
        return self.call_op(op, args, kwargs)

    def _record(self, op: Any, args: tuple, kwargs: dict, hints: dict | None) -> Node:
        if self.scheduler is None or threading.get_ident() != self.thread:
            raise RuntimeError(f"op {op.name} was called from another thread than its batch block's")
        node = Node(self, op, args, kwargs, hints)
        self.nodes.append(node)
        if len(self.nodes) % _FREEZE_EVERY == 0:
            spare_collector()
        return node

    # -- running -------------------------------------------------------------------------------

    def force(self, nodes: list[Node]) -> None:
        """Run ``nodes`` and the calls they need, now."""
        assert self.scheduler is not None, "forced outside its block"
        self.scheduler.run(nodes)

    def handed_over(self, failed: Any) -> None:
        """The error of the ``failed`` call was raised where the block's code used a value it
        made (its own, or one of a call that needed it): that code handles it (a retry) or ends
        the block with it, as in a run block; either way it is not raised again at the block's
        end. Told by call, not by error object: calls of an op that raises one prepared error
        share it, and the others' failures must still be raised."""
        if self.scheduler is not None:
            self.scheduler.handed_over.add(id(failed))

    def force_values(self, value: Any) -> Any:
        """``value`` with the deferred outputs in it (built-in containers too) forced at once."""
        found = deferred_in(value, [])
        if not found:
            return value
        self.force([node_of(d)[0] for d in found])
        return substitute(value, lambda d: node_of(d)[0].value(node_of(d)[1]))

    def __enter__(self) -> BatchBlock:  # type: ignore[override]
        backend = backend_for(self.executor, self.max_concurrency)  # a bad executor opens nothing
        backend.batch = self
        super().__enter__()
        self.frozen_before = gc.get_freeze_count()
        self.thread = threading.get_ident()
        self.scheduler = Scheduler(self.storage, self, backend, Bar(self.progress), self.max_concurrency)
        _open_batches(1)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._end(exc_type, exc, tb, sys._getframe(1))

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._end(exc_type, exc, tb, sys._getframe(1))

    def _end(self, exc_type: Any, exc: Any, tb: Any, frame: Any) -> None:
        """Run what is left, let go of the workers, commit; then the names of ``frame`` (the
        ``with`` statement's) get plain values and failures are raised."""
        scheduler = self.scheduler
        assert scheduler is not None, "ended without being entered"
        ran = False
        try:
            if exc_type is None:
                scheduler.run(self.nodes)
                ran = True
        finally:
            if not self.frozen_before:  # (someone else's freeze, a pre-forking server's, stays)
                gc.unfreeze()
            _open_batches(-1)
            try:
                scheduler.close()  # may wait for running calls: a second Ctrl-C lands here
            finally:
                scheduler.bar.close()
                try:
                    super().__exit__(exc_type, exc, tb)  # the block ends and its calls are committed
                except StorageFullError:  # computed, only not stored: the names get their values
                    if ran:
                        make_plain(frame, _value_or_itself)
                    raise
        if exc_type is None:
            make_plain(frame, _value_or_itself)
            self.nodes.clear()
            unseen = [error for node, error in scheduler.failures if id(node) not in scheduler.handed_over]
            raise_failures(unseen, scheduler.stats.skipped)


def _value_or_itself(deferred: Any) -> Any:
    """A deferred output's value; a failed call's output stays deferred (its error is raised)."""
    node, index = node_of(deferred)
    return node.values[index] if node.state is DONE else deferred


#: Recorded calls between two gc.freeze() calls (see spare_collector).
_FREEZE_EVERY = 4096


def spare_collector() -> None:
    """A wide batch makes several objects per call, all alive until the block ends; the
    garbage collector's full passes would visit them again and again (measured: more time
    than recording 100k calls itself). Frozen, they are left out of its passes until the
    block ends and unfreezes them; nothing else changes (other objects are collected as
    ever, and frozen garbage is collected after the block)."""
    gc.freeze()


# -- plain functions in compiled code get plain values ----------------------------------------

#: Callees that only store or count what they are given: forcing their arguments would
#: serialise the batch (``results.append(f(x))`` in a loop).
_STORING = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "appendleft"})
_CONTAINER_TYPES = (list, dict, set)
_PASSIVE = frozenset({list, tuple, dict, set, frozenset, zip, enumerate, iter, reversed, id, len, range})
_batches = 0
_batches_lock = threading.Lock()


def _open_batches(delta: int) -> None:
    global _batches
    with _batches_lock:
        _batches += delta
        compiled.plain_callee = _plain_callee if _batches else None


def _plain_callee(f: Any) -> Any:
    """In a batch block, a plain callee of compiled code that receives deferred arguments'
    values (all forced at once, so they run in parallel); elsewhere ``f`` itself."""
    block = state.block
    if type(block) is not BatchBlock or isinstance(f, Op) or _passive(f) or _stores(f):
        return f

    def forcing(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = block.force_values((args, kwargs))
        return f(*args, **kwargs)

    return forcing


def _passive(f: Any) -> bool:
    try:
        return f in _PASSIVE
    except TypeError:  # an unhashable callable
        return False


def _stores(f: Any) -> bool:
    owner = getattr(f, "__self__", None)
    return type(owner) in _CONTAINER_TYPES and getattr(f, "__name__", "") in _STORING
