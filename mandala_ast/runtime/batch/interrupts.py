"""A Ctrl-C held back while a few lines run, then raised: after them, never in their middle.

A process pool's ``submit`` queues the task (and, on the first one, forks the workers) before
it gives back the task's future. A Ctrl-C raised in between leaves the task to run in a
worker with nobody holding its future: the result it sends back is dropped. Held back, the
interruption comes once the caller holds the future, and can keep the task's result.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["held_back"]

#: The SIGINT handler put aside while a Ctrl-C is held back (the main thread's: one at most).
_put_aside: list[Any] = []


def _restore_in_child() -> None:
    """A process forked while a Ctrl-C is held back (a pool's worker, forked in its first
    submit) gets the handler put aside: holding back is its parent's, for a few lines, and a
    worker that noted a terminal's Ctrl-C instead of raising it would run its call to the end."""
    if _put_aside:
        signal.signal(signal.SIGINT, _put_aside.pop())


if hasattr(os, "register_at_fork"):  # (not on Windows, which does not fork)
    os.register_at_fork(after_in_child=_restore_in_child)


@contextlib.contextmanager
def held_back() -> Iterator[None]:
    """Run the block with SIGINT noted, not handled; at its end, the handler is put back and a
    noted SIGINT raised again, to it (``KeyboardInterrupt``, or the user's own handler).

    Only the main thread handles signals (in another, the block runs as it is), and only a
    handler set from Python can be put back (an embedding program's is left alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:
        yield
        return
    _put_aside.append(previous)
    try:
        signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _put_aside.clear()
        if caught:
            signal.raise_signal(signal.SIGINT)
