"""Python's recursion limit, counted in the user's frames while op bodies nest.

A call of an op from inside another op's body runs through about a dozen frames of the
library (the op, the block, the pipeline, the tracer) before the body's own: under Python's
default limit of 1000 a recursive op (a tree walk, ``fib``) raised ``RecursionError`` about 90
levels down, where a plain function goes past 900. So while bodies nest deeper than
:data:`FROM_DEPTH`, the limit is raised by the frames the library takes at each level, and
put back when they return; a body that sets the limit itself keeps what it set.

As many nested bodies as the limit was when they began are allowed: one more is a
``RecursionError`` saying so, where a plain function would have failed already. (The library's
frames not counted, an op that recursed forever would else run the C stack out: Python 3.10
crashed at 2,000 nested bodies, 3.11 at 8,000.) And a ``RecursionError`` the library meets in
its own code (hashing an argument with the stack nearly full) is not the value's fault: it is
raised as it is (:func:`stack_nearly_full`), not as an error about the value.
"""

from __future__ import annotations

import sys
import threading

__all__ = ["FRAMES_PER_CALL", "FROM_DEPTH", "deeper", "shallower", "stack_nearly_full"]

#: Frames of the library between one op body and the next one it calls, in compiled code and
#: not (measured: a body's own frame not counted). More would let a body that recurses forever
#: outrun the limit.
FRAMES_PER_CALL = 11
#: Nesting depth from which the limit is raised: shallower, the library's frames are a few
#: hundred at most, and bodies pay a thread-local counter, not a limit change.
FROM_DEPTH = 20


class _Nesting(threading.local):
    depth = 0  # op bodies running in this thread, nested
    most = 0  # how many may nest: the limit when the FROM_DEPTH-th began


_nesting = _Nesting()


def deeper(name: str) -> tuple[int, int] | None:
    """The body of op ``name`` is about to run: ``(limit before, limit set)`` if the limit was
    raised for it, else None. Call :func:`shallower` with what it returns once the body is
    done, and with None if it raised.

    >>> shallower(deeper("inc"))
    """
    depth = _nesting.depth = _nesting.depth + 1
    if depth < FROM_DEPTH:
        return None
    before = sys.getrecursionlimit()
    if depth == FROM_DEPTH:
        _nesting.most = before
    elif depth > _nesting.most:
        raise RecursionError(f"maximum recursion depth exceeded: {depth} op bodies nested, the last of {name} "
                             f"(the recursion limit, {_nesting.most}, bounds how many; sys.setrecursionlimit raises it)")
    # The levels above FROM_DEPTH took their frames too: at FROM_DEPTH they are all given back.
    wanted = before + FRAMES_PER_CALL * (FROM_DEPTH if depth == FROM_DEPTH else 1)
    sys.setrecursionlimit(wanted)
    return before, wanted


def shallower(raised: tuple[int, int] | None) -> None:
    """The body :func:`deeper` was called for is done (returned or raised)."""
    _nesting.depth -= 1
    if raised is not None and sys.getrecursionlimit() == raised[1]:  # else the body set its own
        sys.setrecursionlimit(raised[0])


def stack_nearly_full(room: int = 50) -> bool:
    """Whether fewer than ``room`` frames are left under the recursion limit: a RecursionError
    met then is the caller's depth, not a deeply nested value's. (Asked after one, only.)

    >>> stack_nearly_full()
    False
    """
    try:
        _descend(room)
    except RecursionError:
        return True
    return False


def _descend(levels: int) -> None:
    if levels:
        _descend(levels - 1)
