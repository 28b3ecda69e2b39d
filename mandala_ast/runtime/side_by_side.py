"""A container's items encoded by two threads when several of them hold large buffers.

A model's ``state_dict`` holds hundreds of tensors of a few MB each. One such buffer hashes
fastest on one thread (blake3's hand-off to its own thread pool costs more than it wins below
~8 MB), so a container of them hashed item after item used one core. Two threads that take
the items in turn, largest first, each hashing a whole buffer on its own, use two: blake3
releases the GIL while it hashes. The encodings are the ones the items get one at a time, so
ids do not depend on which way they were made.

Only items known to be read safely from two threads go this way: numpy arrays, and values
whose type handler sizes them (torch tensors; PIL images, loaded first by the calling thread:
two threads loading one lazily opened file broke its stream). An item that appears twice is
encoded once. And never inside a record (a dataclass...) being keyed: the fields that lead
back to it are told by the thread keying it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

from .types import handler_for

__all__ = ["SIZED_ITEM_BYTES", "encoded_items"]

#: An item this large (bytes hashed) is worth a thread's turn; a container needs two of them.
SIZED_ITEM_BYTES = 1 << 18
#: Items looked at to decide: the first few tell whether a container holds buffers.
_SAMPLE = 16

#: How to size a value of a type, by type (None: not sized, and never split across threads):
#: deciding costs a dict lookup per sampled item.
_SIZERS: dict[type, Callable[[Any], int] | None] = {}
_state = threading.local()


def encoded_items(items: Collection[Any], encode: Callable[[Any], bytes]) -> list[bytes] | None:
    """``[encode(item) for item in items]`` made by two threads, or None where that is not
    worth a thread (fewer than two large items among the first few, or already in a helper).
    A container whose first two items have no size (ints, strs: most) costs two dict lookups.

    >>> encoded_items([1, 2], repr) is None
    True
    """
    if len(items) < 2:
        return None
    first_two = itertools.islice(items, 2)
    if not any(_sizer(type(item)) for item in first_two) or getattr(_state, "busy", False):
        return None
    listed = list(items)
    if _large_items(listed[:_SAMPLE]) < 2:
        return None
    return _two_threads(listed, encode)


def _large_items(sample: Sequence[Any]) -> int:
    return sum(1 for item in sample if _nbytes(item) >= SIZED_ITEM_BYTES)


def _nbytes(item: Any) -> int:
    sizer = _sizer(type(item))
    if sizer is None:
        return 0
    try:
        size = sizer(item)
    except Exception:  # someone else's value: not ours to fail on (the hash will say)
        return 0
    return size if isinstance(size, int) else 0


def _sizer(kind: type) -> Callable[[Any], int] | None:
    try:
        return _SIZERS[kind]
    except KeyError:
        pass
    sizer: Callable[[Any], int] | None
    if kind.__module__ == "numpy" and hasattr(kind, "nbytes") and kind.__name__ in ("ndarray", "memmap"):
        sizer = _own_nbytes
    else:
        handler = handler_for(kind)
        sizer = handler.nbytes if handler is not None else None
    if len(_SIZERS) > 4096:  # classes made at run time must not grow it forever
        _SIZERS.clear()
    _SIZERS[kind] = sizer
    return sizer


def _own_nbytes(item: Any) -> int:
    return item.nbytes


def _two_threads(items: Sequence[Any], encode: Callable[[Any], bytes]) -> list[bytes]:
    distinct = list({id(item): item for item in items}.values())  # each object encoded once
    # Largest first: the last item either thread takes is a small one, so they finish together.
    # (Sizing runs here, in the calling thread: it loads what loads lazily.)
    distinct.sort(key=_nbytes, reverse=True)
    turns = iter(distinct)  # a list iterator's next() is atomic: the threads share it unlocked
    results: dict[int, bytes] = {}
    failures: list[BaseException] = []
    work = (turns, encode, results, failures)
    helper = threading.Thread(target=_take_turns, args=work, name="mandala-ast-hash", daemon=True)
    helper.start()
    try:
        _take_turns(*work)
    finally:
        helper.join()
    if failures:
        raise failures[0]
    return [results[id(item)] for item in items]


def _take_turns(turns, encode, results, failures) -> None:
    _state.busy = True  # an item's own containers are encoded on this thread alone
    try:
        for item in turns:
            if failures:
                return
            results[id(item)] = encode(item)
    except BaseException as exc:  # raised by the caller, in its thread, once both are done
        failures.append(exc)
    finally:
        _state.busy = False
