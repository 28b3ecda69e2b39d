"""Python's recursion limit, counted in the user's frames while op bodies nest.

A call of an op from inside another op's body runs through about a dozen frames of the
library (the op, the block, the pipeline, the tracer) before the body's own: under Python's
default limit of 1000 a recursive op (a tree walk, ``fib``) raised ``RecursionError`` about 90
levels down, where a plain function goes past 900. So while bodies nest deeper than
:data:`FROM_DEPTH`, the limit is raised by the frames the library takes at each level, and
put back when they return; a body that sets the limit itself keeps what it set.

As many nested bodies as the limit was when they began are allowed, and as the stack has room
for: one more is an ``OpRecursionError`` (a ``RecursionError``) naming the op. (The library's
frames not counted, an op that recursed forever would else run the C stack out: Python 3.10
crashed at 2,000 nested bodies, 3.11 at 8,000.) Room for a level more of the library's frames
is asked for at each body from :data:`FROM_DEPTH` on (:data:`ROOM`): without it, Python's own
``RecursionError`` came from whichever of those frames met the limit, naming no op (on Python
3.12, from inside the tracer's callback). Python 3.12 bounds the C stack apart from the
limit, and an op, a callable object, takes 3 of its 1,500 units (3.12.1) at each call: there
ops nest about 480 deep, as deep as a ``functools.cache`` function goes (500), less that room.
The limit is the process's, shared by its threads: it follows the deepest one. And a
``RecursionError`` the library meets in its own code (hashing an argument with the stack
nearly full) is not the value's fault: it is raised as it is (:func:`stack_nearly_full`), not
as an error about it.
"""

from __future__ import annotations

import os
import sys
import threading

from .._errors import OpRecursionError

__all__ = ["FRAMES_PER_CALL", "FROM_DEPTH", "bodies_running", "deeper", "shallower", "stack_nearly_full"]

#: Frames of the library between one op body and the next one it calls, in compiled code and
#: not (measured: a body's own frame not counted). More would let a body that recurses forever
#: outrun the limit.
FRAMES_PER_CALL = 11
#: Nesting depth from which the limit is raised: shallower, the library's frames are a few
#: hundred at most, and bodies pay a thread-local counter, not a lock and a limit change.
FROM_DEPTH = 20
#: Calls of an op's size (:class:`_Probe`) the stack must have room for as a body begins deep:
#: more than the library's frames up to the next body take (with an argument's hashing, and
#: on Python 3.12 the tracer's callbacks on the C stack).
ROOM = 15


class _Nesting(threading.local):
    depth = 0  # op bodies running in this thread, nested


_nesting = _Nesting()


class _Limit:
    """The process's one recursion limit, shared by every thread: set to the limit found when
    the first thread went deep (``base``) plus the frames the deepest thread is owed. (Kept per
    thread, two threads deep at once restored each other's raised limits, or none: it climbed
    round after round, until an op recursing forever crashed the C stack.)"""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.owed: dict[int, int] = {}  # thread -> frames given back to it
        self.base = 0
        self.set_to: int | None = None  # what was last set here; None: not managed now
        self.theirs = False  # a body set the limit itself: left alone until all come back

    def owe(self, thread: int, frames: int) -> None:
        """Give ``thread`` ``frames`` (0: none); the limit follows the most owed."""
        with self.lock:
            if not self.owed and frames:  # the first thread deep: the limit as the user set it
                self.base, self.set_to, self.theirs = sys.getrecursionlimit(), None, False
            if frames:
                self.owed[thread] = frames
            else:
                self.owed.pop(thread, None)
            self._apply()

    def _apply(self) -> None:
        current = sys.getrecursionlimit()
        if self.set_to is not None and current != self.set_to:
            self.theirs = True
        if self.theirs:
            return
        wanted = self.base + max(self.owed.values(), default=0)
        if wanted != current:
            sys.setrecursionlimit(wanted)
        self.set_to = wanted if self.owed else None


_limit = _Limit()
# A child forked while another thread held the lock (a batch's process pool) starts afresh:
# only the forking thread is in it.
os.register_at_fork(after_in_child=_limit.reset)


def bodies_running() -> int:
    """How many op bodies this thread is running (nested), traced ones: only those call ops."""
    return _nesting.depth


def deeper(name: str) -> None:
    """The body of op ``name`` is about to run in this thread. Call :func:`shallower` once it
    is done, whether it returned or raised (this included).

    >>> deeper("inc"); shallower()
    """
    depth = _nesting.depth = _nesting.depth + 1
    if depth < FROM_DEPTH:
        return
    most = _limit.base if _limit.owed else sys.getrecursionlimit()
    if depth > most or stack_nearly_full(ROOM):
        raise OpRecursionError(
            f"maximum recursion depth exceeded: {depth} bodies of ops nested, the last of {name} (the "
            f"recursion limit, {most}, bounds how many, and on Python 3.12 its C stack; "
            "sys.setrecursionlimit raises the limit)"
        )
    _limit.owe(threading.get_ident(), FRAMES_PER_CALL * depth)


def shallower() -> None:
    """The body :func:`deeper` was called for is done."""
    depth = _nesting.depth = _nesting.depth - 1
    if depth + 1 >= FROM_DEPTH:
        _limit.owe(threading.get_ident(), FRAMES_PER_CALL * depth if depth >= FROM_DEPTH else 0)


def stack_nearly_full(room: int = 25) -> bool:
    """Whether the stack has no room for ``room`` calls of an op's size (:class:`_Probe`): a
    RecursionError met then is the caller's depth, not a deeply nested value's.

    >>> stack_nearly_full()
    False
    """
    try:
        _probe(room)
    except RecursionError:
        return True
    return False


class _Probe:
    """A callable object, as an op is, whose calls nest through a function too: each takes
    what an op's call takes of Python's frames, and of the C stack Python 3.12 counts apart
    (a function calling a function takes none of it there, so a plain recursion found room
    where an op's call had none)."""

    __slots__ = ()

    def __call__(self, levels: int) -> None:
        _descend(self, levels)


def _descend(probe: _Probe, levels: int) -> None:
    if levels:
        probe(levels - 1)


_probe = _Probe()
