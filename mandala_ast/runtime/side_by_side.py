"""A container's items encoded by two threads when several of them hold large buffers.

A model's ``state_dict`` holds hundreds of tensors of a few MB each. One such buffer hashes
fastest on one thread (blake3's hand-off to its own thread pool costs more than it wins below
~8 MB), so a container of them hashed item after item used one core. Two threads that take
the items in turn, largest first, each hashing a whole buffer on its own, use two: blake3
releases the GIL while it hashes. The encodings are the ones the items get one at a time, so
ids do not depend on which way they were made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from .types import handler_for

__all__ = ["SIZED_ITEM_BYTES", "encoded_items"]

#: An item this large (``nbytes``) is worth a thread's turn; a container needs two of them.
SIZED_ITEM_BYTES = 1 << 18
#: Items looked at to decide: the first few tell whether a container holds buffers.
_SAMPLE = 16

#: How to size a value of a type, by type: its ``nbytes`` (numpy arrays, torch tensors, pandas
#: Series...), its handler's (PIL images), or None (unsized: ints, strs...). Deciding costs a
#: dict lookup per sampled item, not an attribute lookup that fails.
_SIZERS: dict[type, Callable[[Any], int] | None] = {}
_state = threading.local()


def encoded_items(items: Sequence[Any], encode: Callable[[Any], bytes]) -> list[bytes] | None:
    """``[encode(item) for item in items]`` made by two threads, or None where that is not
    worth a thread (fewer than two large items among the first few, or already in a helper).

    >>> encoded_items([1, 2], repr) is None
    True
    """
    if len(items) < 2 or getattr(_state, "busy", False) or _large_items(items[:_SAMPLE]) < 2:
        return None
    return _two_threads(items, encode)


def _large_items(sample: Sequence[Any]) -> int:
    return sum(1 for item in sample if _nbytes(item) >= SIZED_ITEM_BYTES)


def _nbytes(item: Any) -> int:
    kind = type(item)
    try:
        sizer = _SIZERS[kind]
    except KeyError:
        sizer = _sizer(kind)
    if sizer is None:
        return 0
    try:
        size = sizer(item)
    except Exception:  # someone else's property: not ours to fail on (the hash will say)
        return 0
    return size if isinstance(size, int) else 0


def _sizer(kind: type) -> Callable[[Any], int] | None:
    sizer: Callable[[Any], int] | None
    if hasattr(kind, "nbytes"):
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
    # Largest first: the last item either thread takes is a small one, so they finish together.
    order = sorted(range(len(items)), key=lambda index: -_nbytes(items[index]))
    turns = iter(order)  # a list iterator's next() is atomic: the threads share it unlocked
    results: list[Any] = [None] * len(items)
    failures: list[BaseException] = []
    work = (turns, items, encode, results, failures)
    helper = threading.Thread(target=_take_turns, args=work, name="mandala-ast-hash", daemon=True)
    helper.start()
    try:
        _take_turns(*work)
    finally:
        helper.join()
    if failures:
        raise failures[0]
    return results


def _take_turns(turns, items, encode, results, failures) -> None:
    _state.busy = True  # an item's own containers are encoded on this thread alone
    try:
        for index in turns:
            if failures:
                return
            results[index] = encode(items[index])
    except BaseException as exc:  # raised by the caller, in its thread, once both are done
        failures.append(exc)
    finally:
        _state.busy = False
