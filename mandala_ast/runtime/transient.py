"""Transient outputs: ``@op(transient=True)`` keeps a call, its provenance and its outputs'
content ids, but not their values.

Some outputs are too large to keep and cheap to compute again (a loaded dataset, a
preprocessed copy of it). A transient op's call is stored like any other, so calls downstream
of it are found by its outputs' ids (the value is not needed to look them up), and queries,
tables and deletion see it. Each output's ``vals`` row says "transient" and holds no bytes:

- a run block that gets such an output from a stored call computes the call again
  (:class:`Recomputed`), and checks that the value has the content id the call recorded;
  if not, the op is not deterministic, and a :class:`MandalaTransientWarning` says so once
  per op: calls stored downstream were computed from another value;
- tables and queries show :data:`NOT_STORED` in its place.

An immutable output (a number, a string) computed in this process stays in memory as any
such value does, so it is computed again once per process at most.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from .._errors import MandalaTransientWarning
from . import codecs
from .codecs import EncodedValue
from .hashing import UnhashableError, content_id
from .pointers import unwrap

if TYPE_CHECKING:
    from .ops import Op

__all__ = ["CODEC", "NOT_STORED", "NotStored", "Recomputed", "TransientValue", "placeholders"]

#: The codec of a transient output's ``vals`` row (no bytes).
CODEC = "transient"


class NotStored:
    """What tables and queries show for the value of a transient op's output (not stored).

    >>> NOT_STORED
    <transient: not stored>
    """

    _instance: NotStored | None = None

    def __new__(cls) -> NotStored:  # one instance, also when unpickled
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<transient: not stored>"

    def __reduce__(self) -> tuple:
        return (NotStored, ())


NOT_STORED = NotStored()
_ROW = EncodedValue(CODEC, b"")
_FRESH_LIMIT = 64


class TransientValue(Exception):
    """A run block asked for the value of an output that was not stored (internal)."""


def placeholders(outputs: tuple, which: Any) -> list[EncodedValue]:
    """How a transient op's outputs are stored: each transient one (``which``: True for all,
    else their indices) as a row without its value, the others encoded as usual."""
    if which is True:
        return [_ROW] * len(outputs)
    return [_ROW if i in which else codecs.encode(value) for i, value in enumerate(outputs)]


class Recomputed:
    """One storage's recomputations of transient outputs, and the ops already warned about."""

    def __init__(self) -> None:
        self._warned: set[str] = set()
        # Outputs of transient calls just computed, by their ids, until the block takes them:
        # the storage hands a computed call's outputs back by loading them, and these are not
        # there to load.
        self._fresh: dict[tuple[bytes, ...], tuple] = {}

    def computed(self, out_cids: tuple[bytes, ...], outputs: tuple) -> None:
        """A transient call was just computed: its outputs are handed back, not computed again."""
        if len(self._fresh) >= _FRESH_LIMIT:  # left by calls whose outputs stayed in memory
            self._fresh.clear()
        self._fresh[out_cids] = outputs

    def outputs(self, op: Op, args: tuple, kwargs: dict, out_cids: tuple[bytes, ...]) -> tuple:
        """The outputs of a stored call of ``op`` one of which was not stored: just computed,
        or computed again now."""
        fresh = self._fresh.pop(out_cids, None)
        if fresh is not None:
            return fresh
        args, kwargs = unwrap(args, kwargs)
        outputs = op.split_outputs(op.fn(*args, **kwargs))
        changed = [i for i, (cid, value) in enumerate(zip(out_cids, outputs)) if _content_id(value) != cid]
        if changed and op.name not in self._warned:
            self._warned.add(op.name)
            warnings.warn(
                f"op {op.name} is transient and computed again gave another value for output(s) "
                f"{changed} than the stored call recorded: it is not deterministic, and calls "
                "downstream of the stored call were computed from the earlier value",
                MandalaTransientWarning,
                stacklevel=4,
            )
        return outputs


def _content_id(value: Any) -> bytes | None:
    try:
        return content_id(value)
    except UnhashableError:
        return None
