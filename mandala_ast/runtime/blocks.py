"""Storage blocks: the Block protocol, which blocks are open in this thread, the run block.

Every kind of block (run, query, delete, and batch next) implements :class:`Block`: compiled
code and op calls find the innermost one in ``state.block`` and call its ``call_op`` or
``call_op_with_refs``. Nesting is tracked one way: a per-thread stack (:func:`push`,
:func:`pop`), whose top is ``state.block``.

A block is entered in one thread, but the op calls made inside it often run in others
(``with storage.run(): list(pool.map(f, xs))``). A thread with no block of its own therefore
joins the run block open in another thread (:func:`lent_block`), through a block of its own
that shares the storage and the rule on new calls but not compiled code's provenance names
(those are per thread: the same ``name@scope`` key holds different histories in each).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import AmbiguousBlockError
from . import transient
from .refs import Ref

if TYPE_CHECKING:
    from .ops import Op
    from .storage import Storage

__all__ = ["Block", "LentBlock", "RunBlock", "innermost_run_block", "lent_block", "open_blocks", "pop", "push", "state"]


class Block(Protocol):
    """What compiled code and op calls need of the block they run in.

    >>> with storage.run() as s:         # doctest: +SKIP
    ...     state.block.call_op(inc, (1,), {})
    2
    """

    storage: Storage
    #: whether calls not stored may be computed; None: as the storage says (allow_new_calls)
    allow_new_calls: bool | None
    #: compiled code's provenance of names, key ``name@scope`` (see compiled.py)
    names: dict[str, Any]
    #: what the innermost compiled workflow just returned (a Ref in run blocks)
    returned: Any

    def call_op(self, op: Op, args: tuple, kwargs: dict) -> Any:
        """An op call from uncompiled code: the output(s) as the user sees them."""
        ...

    def call_op_with_refs(self, op: Op, args: tuple, kwargs: dict, input_refs: dict) -> tuple:
        """An op call from compiled code, which knows the history of some arguments: one
        object per output, with the value in ``.value``."""
        ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc_info: Any) -> None: ...


class _State(threading.local):
    # A class attribute default means `state.block` never raises in a new thread.
    block: Block | None = None
    #: (_generation when chosen, the other thread's block, this thread's LentBlock in it)
    lent: tuple[int, RunBlock, LentBlock] | None = None

    def __init__(self) -> None:
        #: blocks open in this thread, outermost first; the last is ``block``
        self.stack: list[Block] = []


state = _State()
#: Run blocks open in any thread, oldest first (a dict as an ordered set).
_open: dict[RunBlock, None] = {}
_open_lock = threading.Lock()
#: Bumped whenever a block opens or closes anywhere: a thread's choice of lender stands until then.
_generation = 0


def _forget_after_fork() -> None:
    """In a forked child (a process pool's worker): no block is open. The parent's blocks
    came along in the copy, but their storage connections, pools and locks belong to the
    parent; an op call in the child (an op calling an op in a batch's worker) is a plain
    call, as in any process that opened no block."""
    global _open_lock
    state.stack, state.block, state.lent = [], None, None
    _open.clear()
    _open_lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_after_fork)


def push(block: Block) -> None:
    """``block`` is entered in this thread: it is the innermost one until :func:`pop`."""
    state.stack.append(block)
    state.block = block


def pop(block: Block) -> None:
    """``block`` is exited in this thread: the block it was entered in is innermost again."""
    stack = state.stack
    if stack and stack[-1] is block:
        stack.pop()
    elif block in stack:  # exited out of order (a generator's block, an ExitStack)
        del stack[len(stack) - 1 - stack[::-1].index(block)]
    state.block = stack[-1] if stack else None


def innermost_run_block(storage: Storage) -> RunBlock | None:
    """The innermost run block of ``storage`` open in this thread (``with storage:``)."""
    for block in reversed(state.stack):
        if isinstance(block, RunBlock) and block.storage is storage:  # a noop block too (noop.py)
            return block
    return None


def open_blocks(storage: Storage) -> list[RunBlock]:
    """The run blocks of ``storage`` open in any thread (not the blocks lent to pool threads)."""
    with _open_lock:
        return [block for block in _open if block.storage is storage]


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


class RunBlock(Block):
    """``with storage.run():`` — every op call executes at most once per storage, ever.

    Re-entrant per thread: blocks nest, and the innermost one is active.
    """

    def __init__(self, storage: Storage, *, allow_new_calls: bool | None = None) -> None:
        self.storage = storage
        self.allow_new_calls = allow_new_calls
        #: provenance of names in compiled code: key ``name@scope`` -> Ref, or what compiled.raw
        #: records for a name holding a value no op produced (see compiled.py)
        self.names: dict[str, Any] = {}
        #: the storage's count of lazy transient outputs handed out, when the block was entered
        self.lazy_mark = 0
        #: provenance of the value the innermost compiled workflow just returned (a tuple of
        #: them, one per element, for ``return a, b``)
        self.returned: Ref | tuple | None = None
        #: per op body running in this block (outermost first): the (op, deps_id) of each op
        #: call it made, directly or through anything it called
        self.op_bodies: list[set[tuple[Op, bytes]]] = []

    @property
    def is_open(self) -> bool:
        return self in _open

    def __enter__(self) -> Storage:
        self.storage.engine.enter_block()
        self.lazy_mark = self.storage.engine.lazy_outputs_made()
        if self not in _open:
            _opened(self)
        push(self)
        return self.storage

    def __exit__(self, *exc_info: Any) -> None:
        if self.storage.engine.lazy_outputs_made() != self.lazy_mark:  # names may hold lazy outputs
            transient.make_names_plain(sys._getframe(1))
        pop(self)
        if self not in state.stack:
            self.names.clear()
            _closed(self)
        # Commit even when the block raised: calls completed before the error are kept.
        self.storage.commit()

    async def __aenter__(self) -> Storage:
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.__exit__(*exc_info)

    def call_async_op(self, op: Op, args: tuple, kwargs: dict) -> Any:
        """An async op's call: a coroutine that loads the stored call or awaits the body."""
        from .batch.asynchronous import memoized_coroutine

        return memoized_coroutine(self, op, args, kwargs)

    def call_async_op_with_refs(self, op: Op, args: tuple, kwargs: dict, input_refs: dict) -> Any:
        """An async op's call from compiled code, which knows the history of some arguments:
        a coroutine giving its outputs and their Refs (None for outputs handed back unstored)."""
        from .batch.asynchronous import memoized_with_refs

        return memoized_with_refs(self, op, args, kwargs, input_refs)

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
            self.call_op = self._call_op_in_body  # type: ignore[method-assign]
            self.call_op_with_refs = self._call_op_with_refs_in_body  # type: ignore[method-assign]
        self.op_bodies.append(collected)
        return collected

    def end_op_body(self) -> None:
        """After an op body ran (or raised): stop collecting for it."""
        self.op_bodies.pop()
        if not self.op_bodies:
            del self.call_op, self.call_op_with_refs

    def note_op_call(self, op: Op, deps_id: bytes) -> None:
        """A call of ``op`` stored (or found) under ``deps_id`` was made by the running bodies."""
        # (a copy: pool threads note calls here too, while this thread starts and ends bodies)
        for collected in tuple(self.op_bodies):  # an outer op depends on what its inner ops called too
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
        super().__init__(lender.storage, allow_new_calls=lender.allow_new_calls)
        self.lender = lender

    # A thread with no block of its own is most often a pool's, running work an op body handed
    # it (``pool.map(inner_op, xs)``): its calls are noted as that body's op calls, so that
    # what they depend on reaches the outer call. Which body handed the work over cannot be
    # told, so every body running in the storage's open blocks takes them on: a dependency
    # too many recomputes once more, one too few would serve a stale result.

    def call_op(self, op: Op, args: tuple, kwargs: dict) -> Any:
        try:
            return self.storage.call_from_op_body(op, args, kwargs, None, self)
        finally:
            if not self.lender.is_open:
                self.storage.commit()

    def call_op_with_refs(self, op: Op, args: tuple, kwargs: dict, input_refs: dict) -> tuple:
        try:
            return self.storage.call_from_op_body(op, args, kwargs, input_refs, self)
        finally:
            if not self.lender.is_open:
                self.storage.commit()

    def note_op_call(self, op: Op, deps_id: bytes) -> None:
        super().note_op_call(op, deps_id)
        for block in open_blocks(self.storage):
            block.note_op_call(op, deps_id)
