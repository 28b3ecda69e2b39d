"""Items made by a thread of their own, a few ahead of the one consuming them.

For hashing a value whose bytes need a pass of their own before they are hashed (an RGB
image's padding checked, or set, a window at a time): the pass runs on one core while the
hasher, which releases the GIL, runs on another, instead of the two taking turns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["in_background"]

T = TypeVar("T")


def in_background(items: Iterator[T], depth: int) -> Iterator[T]:
    """``items``, produced by a helper thread at most ``depth`` ahead of the caller (who must
    not let an item's memory be reused by the ``depth + 1`` items after it). An exception
    raised making an item is raised here; closing this iterator early stops the helper.

    >>> list(in_background(iter(range(5)), 2))
    [0, 1, 2, 3, 4]
    """
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(items, ready, stop), name="mandala-ast-ahead", daemon=True)
    worker.start()
    try:
        while True:
            made, item = ready.get()
            if not made:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        _drain(ready, worker)


def _produce(items: Iterator, ready: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in items:
            if stop.is_set():
                return
            ready.put((True, item))
    except BaseException as exc:  # handed to the consumer, who raises it in its own thread
        ready.put((False, exc))
        return
    ready.put((False, None))


def _drain(ready: queue.Queue, worker: threading.Thread) -> None:
    """Empty the queue until the helper has seen the stop (it may wait on a full queue)."""
    while worker.is_alive():
        try:
            while True:
                ready.get_nowait()
        except queue.Empty:
            pass
        worker.join(0.01)
