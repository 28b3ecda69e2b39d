"""Noop blocks: ``storage.run(mode="noop")``, or any run or batch block while the environment
variable ``MANDALA_AST_NOOP`` is set (to anything but "" or "0"): ops run as plain calls.

For debugging without editing the code: breakpoints inside an op stop on every call, prints
print, and nothing is looked up, stored, or even read: the storage file stays byte for byte as
it was. Compiled code still gets each call's outputs (with provenance ids that name nothing).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .blocks import RunBlock, pop, push, state
from .pointers import unwrap
from .refs import Ref

if TYPE_CHECKING:
    from .ops import Op
    from .storage import Storage

__all__ = ["ENVIRONMENT_VARIABLE", "NoopBatchBlock", "NoopBlock", "requested"]

ENVIRONMENT_VARIABLE = "MANDALA_AST_NOOP"
_NO_ID = b""


def requested() -> bool:
    """Whether the environment asks every run block to be a noop block."""
    return os.environ.get(ENVIRONMENT_VARIABLE, "") not in ("", "0")


class NoopBlock(RunBlock):
    """A run block in which ops are plain calls (see the module docstring).

    >>> with storage.run(mode="noop"):      # doctest: +SKIP
    ...     train(data)                     # computed, not stored, not looked up
    """

    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)

    # Not registered as open: a worker thread with no block of its own must not join it and
    # memoize, and entering reads nothing from the storage (nor does exiting commit).
    def __enter__(self) -> Storage:
        push(self)
        return self.storage

    def __exit__(self, *exc_info: Any) -> None:
        pop(self)
        if self not in state.stack:
            self.names.clear()

    def call_op(self, op: Op, args: tuple, kwargs: dict) -> Any:
        args, kwargs = unwrap(args, kwargs)
        return op.fn(*args, **kwargs)

    def call_async_op(self, op: Op, args: tuple, kwargs: dict) -> Any:
        """An async op's plain coroutine: nothing looked up or stored."""
        args, kwargs = unwrap(args, kwargs)
        return op.fn(*args, **kwargs)

    def call_op_with_refs(self, op: Op, args: tuple, kwargs: dict, input_refs: dict) -> tuple:
        outputs = op.split_outputs(self.call_op(op, args, kwargs))
        return tuple(Ref(value, _NO_ID, _NO_ID, (_NO_ID, i)) for i, value in enumerate(outputs))


class NoopBatchBlock(NoopBlock):
    """``storage.batch()`` while MANDALA_AST_NOOP is set: plain calls, one at a time, in the
    order the code makes them (a debugger steps through them). ``as b`` gives the block, as
    a batch block does; its ``stats`` are all zero: nothing was looked up or dispatched.

    >>> with storage.batch() as b:          # doctest: +SKIP
    ...     ys = [inc(x) for x in range(3)]
    >>> b.stats.computed
    0
    """

    def __enter__(self) -> NoopBatchBlock:  # type: ignore[override]
        super().__enter__()
        return self

    @property
    def stats(self) -> Any:
        from .batch.scheduler import BatchStats

        return BatchStats()
