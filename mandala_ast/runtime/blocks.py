"""Storage blocks: which block (if any) is active in this thread, and the run block itself.

A block is entered in one thread, but the op calls made inside it often run in others
(``with storage.run(): list(pool.map(f, xs))``). A thread with no block of its own therefore
joins the run block open in another thread (:func:`lent_block`), through a block of its own
that shares the storage and the rule on new calls but not compiled code's provenance names
(those are per thread: the same ``name@scope`` key holds different histories in each).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .._errors import AmbiguousBlockError
from .refs import Ref

if TYPE_CHECKING:
    from .ops import Op
    from .storage import Storage

__all__ = ["LentBlock", "RunBlock", "lent_block", "state"]


class _State(threading.local):
    # A class attribute default means `state.block` never raises in a new thread.
    block: RunBlock | None = None
    #: (_generation when chosen, the other thread's block, this thread's LentBlock in it)
    lent: tuple[int, RunBlock, LentBlock] | None = None


state = _State()
#: Run blocks open in any thread, oldest first (a dict as an ordered set).
_open: dict[RunBlock, None] = {}
_open_lock = threading.Lock()
#: Bumped whenever a block opens or closes anywhere: a thread's choice of lender stands until then.
_generation = 0


def _opened(block: RunBlock) -> None:
    global _generation
    with _open_lock:
        _open[block] = None
        _generation += 1


def _closed(block: RunBlock) -> None:
    global _generation
    with _open_lock:
        _open.pop(block, None)
        _generation += 1


def lent_block(op_name: str | None = None) -> LentBlock | None:
    """For a thread with no block of its own: its block in the run block another thread has
    open, or None when none is open. With blocks of several storages open, the thread cannot
    tell which one its calls belong to: AmbiguousBlockError for a call of ``op_name``.

    >>> lent_block() is None          # no block open anywhere
    True
    """
    if not _open:  # the common case outside blocks: one dict test
        return None
    lent = state.lent
    if lent is not None and lent[0] == _generation:  # no block opened or closed since
        return lent[2]
    with _open_lock:
        lenders, generation = list(_open), _generation
    storages = {id(block.storage) for block in lenders}
    if len(storages) > 1:
        if op_name is None:
            return None
        raise AmbiguousBlockError(
            f"op {op_name} was called in a thread with no block of its own while run blocks of "
            f"{len(storages)} storages are open in other threads; open a block in this thread "
            "(with storage.run(): ...)"
        )
    lender = lenders[0]
    block = lent[2] if lent is not None and lent[1] is lender else LentBlock(lender)
    state.lent = (generation, lender, block)
    return block


class RunBlock:
    """``with storage.run():`` — every op call executes at most once per storage, ever.

    Re-entrant per thread: blocks nest, and the innermost one is active.
    """

    def __init__(self, storage: Storage, *, allow_new_calls: bool | None = None) -> None:
        self.storage = storage
        self.allow_new_calls = allow_new_calls
        #: provenance of names in compiled code: key ``name@scope`` -> Ref (see compiled.py)
        self.names: dict[str, Ref] = {}
        #: provenance of the value the innermost compiled workflow just returned
        self.returned: Ref | None = None
        #: per op body running in this block (outermost first): the (op, deps_id) of each op
        #: call it made, directly or through anything it called
        self.op_bodies: list[set[tuple[Op, bytes]]] = []
        self._outer: list[RunBlock | None] = []

    @property
    def is_open(self) -> bool:
        return bool(self._outer)

    def __enter__(self) -> Storage:
        self.storage._enter_block()
        if not self._outer:
            _opened(self)
        self._outer.append(state.block)
        state.block = self
        return self.storage

    def __exit__(self, *exc_info: Any) -> None:
        state.block = self._outer.pop()
        if not self._outer:
            self.names.clear()
            _closed(self)
        # Commit even when the block raised: calls completed before the error are kept.
        self.storage.commit()

    def new_calls_allowed(self) -> bool:
        if self.allow_new_calls is not None:
            return self.allow_new_calls
        return self.storage.new_calls_allowed

    def call_op(self, op: Op, args: tuple, kwargs: dict) -> Any:
        """An op call from ordinary (uncompiled) code: content identity, plain values."""
        return self.storage.memoized_call(op, args, kwargs, self)

    def call_op_with_refs(self, op: Op, args: tuple, kwargs: dict, input_refs: dict) -> tuple:
        """An op call from compiled code, which knows the history of some arguments."""
        return self.storage.call_with_refs(op, args, kwargs, input_refs, self)

    def start_op_body(self) -> set[tuple[Op, bytes]]:
        """Before an op body runs: from now on, op calls are collected for it (and for the op
        bodies it runs in); returns its collection. Pair with :meth:`end_op_body`.

        An op that calls another op depends on it, hit or miss; a hit runs none of the inner
        op's code, so tracing cannot see it. While any body runs, instance attributes shadow
        the two call methods with the collecting ones: calls made by the block itself keep
        their path untouched (no flag to test on the warm hit path).
        """
        collected: set[tuple[Op, bytes]] = set()
        if not self.op_bodies:
            self.call_op = self._call_op_in_body
            self.call_op_with_refs = self._call_op_with_refs_in_body
        self.op_bodies.append(collected)
        return collected

    def end_op_body(self) -> None:
        """After an op body ran (or raised): stop collecting for it."""
        self.op_bodies.pop()
        if not self.op_bodies:
            del self.call_op, self.call_op_with_refs

    def note_op_call(self, op: Op, deps_id: bytes) -> None:
        """A call of ``op`` stored (or found) under ``deps_id`` was made by the running bodies."""
        for collected in self.op_bodies:  # an outer op depends on what its inner ops called too
            collected.add((op, deps_id))

    def _call_op_in_body(self, op: Op, args: tuple, kwargs: dict) -> Any:
        return self.storage.call_from_op_body(op, args, kwargs, None, self)

    def _call_op_with_refs_in_body(self, op: Op, args: tuple, kwargs: dict, input_refs: dict) -> tuple:
        return self.storage.call_from_op_body(op, args, kwargs, input_refs, self)

class LentBlock(RunBlock):
    """A thread's own block inside the run block ``lender`` that another thread has open.

    A call still running when the lender ends is committed by its own thread as it finishes:
    the lender's commit came too early for it, and nothing else might commit it.
    """

    def __init__(self, lender: RunBlock) -> None:
        super().__init__(lender.storage)
        self.lender = lender

    def call_op(self, op: Op, args: tuple, kwargs: dict) -> Any:
        try:
            return self.storage.memoized_call(op, args, kwargs, self)
        finally:
            if not self.lender.is_open:
                self.storage.commit()

    def call_op_with_refs(self, op: Op, args: tuple, kwargs: dict, input_refs: dict) -> tuple:
        try:
            return self.storage.call_with_refs(op, args, kwargs, input_refs, self)
        finally:
            if not self.lender.is_open:
                self.storage.commit()

    def new_calls_allowed(self) -> bool:
        return self.lender.new_calls_allowed()
