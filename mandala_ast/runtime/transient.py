"""Transient outputs: ``@op(transient=True)`` keeps a call, its provenance and its outputs'
content ids, but not their values.

Some outputs are too large to keep and cheap to compute again (a loaded dataset, a
preprocessed copy of it). A transient op's call is stored like any other, so calls downstream
of it are found by its outputs' ids (the value is not needed to look them up), and queries,
tables and deletion see it. Each output's ``vals`` row says "transient" and holds no bytes:

- a run block that gets such an output from a stored call gets a :class:`LazyOutput`: a
  proxy that knows the output's content id and acts as its value (runtime/proxy.py). Passed
  to another op it is hashed by that id, so a downstream hit never computes it; its first
  real use (arithmetic, an attribute, ``print``) computes the call (:class:`LazyCall`), once
  for every proxy of that call, and checks that the value has the content id the call
  recorded; if not, the op is not deterministic, and a :class:`MandalaTransientWarning` says
  so once per op: calls stored downstream were computed from another value;
- an op body that runs (a miss) gets the value, not the proxy;
- tables and queries show :data:`NOT_STORED` in its place.

A storage keeps its last few lazily computed calls (:data:`KEPT_CALLS`), so getting the same
output again in this process hands back the value computed before.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from typing import TYPE_CHECKING, Any

from .._errors import MandalaTransientWarning
from . import codecs
from .codecs import EncodedValue
from .hashing import UnhashableError, content_id, register_id_carrier
from .pointers import unwrap
from .proxy import Proxy, force, node_of
from .stacklevel import user_stacklevel

if TYPE_CHECKING:
    from collections.abc import Collection
    from types import FrameType

    from .ops import Op

__all__ = [
    "CODEC",
    "KEPT_CALLS",
    "NOT_STORED",
    "PLACEHOLDER",
    "LazyCall",
    "LazyOutput",
    "NotStored",
    "Recomputed",
    "TransientValue",
    "has_lazy",
    "is_lazy",
    "is_transient",
    "lazy_made",
    "make_names_plain",
    "plain_args",
    "placeholders",
]

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
#: How a transient output is stored: a row without its value.
PLACEHOLDER = EncodedValue(CODEC, b"")
_FRESH_LIMIT = 64
#: Lazily computed transient calls a storage keeps (their values may be large).
KEPT_CALLS = 16
# Whether this process has handed out a LazyOutput: until it has (most processes never do),
# a miss need not look for one among its arguments.
_lazy_made = False


class TransientValue(Exception):
    """A run block asked for the value of an output that was not stored (internal)."""


def is_transient(op: Op, index: int) -> bool:
    """Whether output ``index`` of ``op`` is transient (its value is not stored)."""
    which = op.transient
    return which is True or (which is not False and index in which)


def placeholders(outputs: tuple, which: Any) -> list[EncodedValue]:
    """How a transient op's outputs are stored: each transient one (``which``: True for all,
    else their indices) as a row without its value, the others encoded as usual."""
    if which is True:
        return [PLACEHOLDER] * len(outputs)
    return [PLACEHOLDER if i in which else codecs.encode(value) for i, value in enumerate(outputs)]


class LazyOutput(Proxy):
    """Output ``index`` of a stored transient call (a :class:`LazyCall`), computed on first use.

    >>> y = load(1)              # doctest: +SKIP
    >>> type(y).__name__         # doctest: +SKIP
    'LazyOutput'
    >>> y + 1                    # doctest: +SKIP
    2
    """

    __slots__ = ()


class LazyCall:
    """A stored call of a transient op whose outputs are computed on first use, once."""

    def __init__(self, recomputed: Recomputed, op: Op, args: tuple, kwargs: dict, out_cids: tuple[bytes, ...]) -> None:
        self.recomputed, self.op, self.args, self.kwargs = recomputed, op, args, kwargs
        self.out_cids = out_cids
        self.values: tuple | None = None
        self.computed_cids: tuple = ()  # the values' ids when computed (None: not hashable)
        self._lock = threading.Lock()  # two threads forcing it compute it once

    def output(self, index: int, load: Any) -> Any:
        """Output ``index`` for a run block: its value if stored (``load``) or already
        computed, else a :class:`LazyOutput`."""
        if self.values is not None:
            return self.values[index]
        try:
            return load(self.out_cids[index])
        except TransientValue:
            global _lazy_made
            _lazy_made = True
            return LazyOutput(self, index)

    def value(self, index: int) -> Any:
        """The value of output ``index``: the call is computed now if it was not yet."""
        if self.values is None:
            with self._lock:
                if self.values is None:
                    values, self.computed_cids = self.recomputed.compute(self.op, self.args, self.kwargs, self.out_cids)
                    self.values = values
                    self.args, self.kwargs = (), {}  # not needed again
        return self.values[index]


    def unchanged(self) -> bool:
        """Whether the computed values still have the content they were computed with (a
        block may have changed one in place: it is not the call's output any more)."""
        assert self.values is not None
        return all(cid is not None and _content_id(v) == cid for v, cid in zip(self.values, self.computed_cids))


def _lazy_cid(value: LazyOutput) -> bytes:
    """Not computed: the id the stored call recorded. Computed: the value's own id, as for
    any value (it may have been changed in place since)."""
    call, index = node_of(value)
    if call.values is None:
        return call.out_cids[index]
    return content_id(call.values[index])


register_id_carrier(LazyOutput, _lazy_cid, force)


def is_lazy(value: Any) -> bool:
    """True for a :class:`LazyOutput` (``type()``, unlike ``isinstance``, is not forwarded)."""
    return type(value) is LazyOutput


def make_names_plain(frame: FrameType) -> None:
    """After a run block: the names of ``frame`` (and the lists, dicts, sets and tuples they
    hold) that reach a lazy output already computed get its value; the others stay lazy."""
    from .batch.frames import make_plain  # (the batch package needs the runtime loaded first)

    make_plain(frame, _value_or_itself, LazyOutput)


def _value_or_itself(value: LazyOutput) -> Any:
    call, index = node_of(value)
    return value if call.values is None else call.values[index]


def lazy_made() -> bool:
    """Whether this process has handed out a :class:`LazyOutput` (most never do)."""
    return _lazy_made


def has_lazy(args: tuple, kwargs: dict) -> bool:
    """Whether a call's arguments include a :class:`LazyOutput` (not in containers)."""
    if not _lazy_made:  # the common case: one global read
        return False
    return any(type(a) is LazyOutput for a in args) or any(type(v) is LazyOutput for v in kwargs.values())


def plain_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """The arguments an op body gets: lazy outputs replaced by their values (a body that
    runs may hand them to code that checks types or needs a real object)."""
    if any(type(a) is LazyOutput for a in args):
        args = tuple(force(a) if type(a) is LazyOutput else a for a in args)
    if any(type(v) is LazyOutput for v in kwargs.values()):
        kwargs = {k: force(v) if type(v) is LazyOutput else v for k, v in kwargs.items()}
    return args, kwargs


class Recomputed:
    """One storage's recomputations of transient outputs, and the ops already warned about.

    ``find_collection`` and ``note_collection`` reach the storage's records of collections
    by their elements (runtime/lazy_collections.py): a list of its lazy outputs is found by
    their ids."""

    def __init__(self, find_collection: Any = None, note_collection: Any = None) -> None:
        self.find_collection, self.note_collection = find_collection, note_collection
        self._warned: set[str] = set()
        # Outputs of transient calls just computed, by their ids, until the block takes them:
        # the storage hands a computed call's outputs back by loading them, and these are not
        # there to load.
        self._fresh: dict[tuple[bytes, ...], tuple] = {}
        # Stored calls handed out lazily, by their output ids: getting one again (computed
        # or not) shares its one computation.
        self._calls: dict[tuple[bytes, ...], LazyCall] = {}
        #: stored calls handed out lazily so far: a block that saw this change has names to
        #: make plain when it ends (:func:`make_names_plain`)
        self.handed_out = 0

    def computed(self, out_cids: tuple[bytes, ...], outputs: tuple) -> None:
        """A transient call was just computed: its outputs are handed back, not computed again."""
        if len(self._fresh) >= _FRESH_LIMIT:  # left by calls whose outputs stayed in memory
            self._fresh.clear()
        self._fresh[out_cids] = outputs

    def outputs(self, op: Op, args: tuple, kwargs: dict, out_cids: tuple[bytes, ...], load: Any) -> tuple:
        """The outputs of a stored call of ``op`` one of which was not stored: just computed,
        or computed before in this process, or :class:`LazyOutput` proxies (``load`` loads
        the stored ones)."""
        fresh = self._fresh.pop(out_cids, None)
        if fresh is not None:
            return fresh
        call = self._calls.get(out_cids)
        if call is None or (call.values is not None and not call.unchanged()):
            if len(self._calls) >= KEPT_CALLS:
                self._calls.clear()
            call = self._calls[out_cids] = LazyCall(self, op, args, kwargs, out_cids)
        self.handed_out += 1
        return tuple(call.output(i, load) for i in range(len(out_cids)))

    def compute(self, op: Op, args: tuple, kwargs: dict, out_cids: tuple[bytes, ...],
                quiet: Collection[int] = ()) -> tuple[tuple, tuple]:
        """The outputs of a stored call of ``op``, computed again now, checked against the
        content ids the call recorded, and their ids. ``quiet``: outputs whose difference the
        caller reports itself (no longer transient: see the pipeline)."""
        args, kwargs = unwrap(*plain_args(args, kwargs))
        outputs = op.split_outputs(_awaited(op.fn(*args, **kwargs)))
        cids = tuple(map(_content_id, outputs))
        changed = [i for i, (cid, got) in enumerate(zip(out_cids, cids)) if got != cid and i not in quiet]
        if changed and op.name not in self._warned:
            self._warned.add(op.name)
            warnings.warn(
                f"op {op.name} is transient and computed again gave another value for output(s) "
                f"{changed} than the stored call recorded: it is not deterministic, and calls "
                "downstream of the stored call were computed from the earlier value",
                MandalaTransientWarning,
                stacklevel=user_stacklevel(),
            )
        return outputs, cids


def _awaited(result: Any) -> Any:
    """An async op's body gives a coroutine: its value comes from running it to the end, on
    a loop of its own in another thread (this one may be running a loop already)."""
    if not inspect.iscoroutine(result):
        return result
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, result).result()


def _content_id(value: Any) -> bytes | None:
    try:
        return content_id(value)
    except UnhashableError:
        return None
