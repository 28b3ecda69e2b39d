"""Storage blocks: which block (if any) is active in this thread, and the run block itself."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .refs import Ref

if TYPE_CHECKING:
    from .ops import Op
    from .storage import Storage

__all__ = ["RunBlock", "state"]


class _State(threading.local):
    # A class attribute default means `state.block` never raises in a new thread.
    block: "RunBlock | None" = None


state = _State()


class RunBlock:
    """``with storage.run():`` — every op call executes at most once per storage, ever.

    Re-entrant per thread: blocks nest, and the innermost one is active.
    """

    def __init__(self, storage: "Storage", *, allow_new_calls: bool | None = None) -> None:
        self.storage = storage
        self.allow_new_calls = allow_new_calls
        #: provenance of names in compiled code: key ``name@scope`` -> Ref (see compiled.py)
        self.names: dict[str, Ref] = {}
        #: provenance of the value the innermost compiled workflow just returned
        self.returned: Ref | None = None
        self._outer: list[RunBlock | None] = []

    def __enter__(self) -> "Storage":
        self._outer.append(state.block)
        state.block = self
        self.storage._enter_block()
        return self.storage

    def __exit__(self, *exc_info: Any) -> None:
        state.block = self._outer.pop()
        if not self._outer:
            self.names.clear()
        # Commit even when the block raised: calls completed before the error are kept.
        self.storage.commit()

    def new_calls_allowed(self) -> bool:
        if self.allow_new_calls is not None:
            return self.allow_new_calls
        return self.storage.new_calls_allowed

    def call_op(self, op: "Op", args: tuple, kwargs: dict) -> Any:
        """An op call from ordinary (uncompiled) code: content identity, plain values."""
        return self.storage.memoized_call(op, args, kwargs, self)

    def call_op_with_refs(self, op: "Op", args: tuple, kwargs: dict, input_refs: dict) -> tuple:
        """An op call from compiled code, which knows the history of some arguments."""
        return self.storage.call_with_refs(op, args, kwargs, input_refs, self)
