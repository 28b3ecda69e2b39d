"""Dynamic dependencies: which user functions an op's body actually ran.

While — and only while — an op computes, a trace hook notes the code objects of the Python
functions it enters. That catches what static analysis cannot see: methods called through
objects, functions passed as arguments, and the branch actually taken (helper A for even
inputs, helper B for odd ones), so each stored call depends on exactly the code it ran.
Outside op bodies nothing is installed, so ordinary code pays nothing at all.

The global trace function (``sys.settrace``) is used because CPython calls it only when a
Python frame starts — not on returns or C calls, as it does a profile function — and since it
returns None, no line events follow. It costs about 0.4 µs per Python call inside the op. If a
debugger or coverage holds the trace hook, a profile hook is used instead; if both are taken,
we replace neither and the call falls back to the op's static dependencies.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Callable

__all__ = ["RanCode", "run_traced"]


class RanCode:
    """The code objects entered during one op execution; ``complete`` is False when tracing
    was not possible (then callers fall back to static dependencies)."""

    __slots__ = ("codes", "complete")

    def __init__(self) -> None:
        #: code object -> the globals it ran with (for its module's name)
        self.codes: dict[types.CodeType, dict] = {}
        self.complete = True


def run_traced(fn: Callable, args: tuple, kwargs: dict) -> tuple[Any, RanCode]:
    """Call ``fn(*args, **kwargs)`` and report which Python code it entered."""
    ran = RanCode()
    codes = ran.codes

    def trace_(frame: types.FrameType, event: str, arg: Any) -> None:
        codes[frame.f_code] = frame.f_globals

    def profile_(frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call":
            codes[frame.f_code] = frame.f_globals

    if sys.gettrace() is None:
        hook, set_hook = trace_, sys.settrace
    elif sys.getprofile() is None:
        hook, set_hook = profile_, sys.setprofile
    else:
        ran.complete = False
        return fn(*args, **kwargs), ran
    set_hook(hook)
    try:
        result = fn(*args, **kwargs)
    finally:
        set_hook(None)
    return result, ran
