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
import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["RanCode", "run_traced"]


class RanCode:
    """The code objects entered during one op execution; ``complete`` is False when tracing
    was not possible (then callers fall back to static dependencies)."""

    __slots__ = ("before", "checks", "codes", "complete", "found", "receivers")

    def __init__(self) -> None:
        #: code object -> the globals it ran with (for its module's name)
        self.codes: dict[types.CodeType, dict] = {}
        #: method code -> the classes of the ``self`` (or the ``cls``) it ran for, among its
        #: first RECEIVER_CHECKS calls: a method a class inherits runs other code once the
        #: class overrides it (an ensemble: one method run for several classes)
        self.receivers: dict[types.CodeType, tuple[type, ...]] = {}
        #: method code -> how many more of its calls have their receiver looked at
        self.checks: dict[types.CodeType, int] = {}
        self.complete = True
        #: dependency name -> Dependency: module-level objects as the body found them
        #: (dependencies.objects_before), where the body may change them
        self.before: dict[str, Any] = {}
        #: ``(name, kind, state, source)`` of each dependency, worked out where the body ran
        #: (a worker process, whose code objects cannot be sent): set there, codes left empty
        self.found: tuple[tuple[str, str, bytes, str | None], ...] | None = None


def _run_with_hooks(fn: Callable, args: tuple, kwargs: dict) -> tuple[Any, RanCode]:
    """Call ``fn(*args, **kwargs)`` and report which Python code it entered (Python < 3.12)."""
    ran = RanCode()
    codes, checks = ran.codes, ran.checks

    def trace_(frame: types.FrameType, event: str, arg: Any) -> None:
        code = frame.f_code
        if code not in codes:  # the first call of each function: later ones cost a lookup or two
            codes[code] = frame.f_globals
            param = _receiver_params.get(code)
            if param is None:
                param = _receiver_param(code)
            if param:
                note_receiver(ran, code, frame.f_locals.get(param))
        elif code in checks:
            note_receiver(ran, code, frame.f_locals.get(_receiver_params.get(code) or _receiver_param(code)))

    def profile_(frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call":
            trace_(frame, event, arg)

    set_hook: Callable[[Any], None]
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


#: The first parameter's name of the methods whose receiver is noted (see RanCode.receivers).
_RECEIVER_NAMES = frozenset({"self", "cls"})
#: code object -> the name of its receiver parameter, "" if it has none: asked once per code
#: (``co_varnames`` builds a new tuple at each read on Python 3.11)
_receiver_params: dict[types.CodeType, str] = {}


def _receiver_param(code: types.CodeType) -> str:
    """Computed once per code object and kept (a bounded cache: code made at run time, by
    ``exec`` in a loop, must not grow it forever)."""
    first = code.co_varnames[0] if code.co_argcount else ""
    param = first if first in _RECEIVER_NAMES else ""
    if len(_receiver_params) >= 65_536:
        _receiver_params.clear()
    _receiver_params[code] = param
    return param


#: Calls of each method whose receiver is looked at (reading it costs a dict of the frame's
#: locals on Python 3.11): an ensemble's few models show among them; a model used a hundred
#: times before the next one does not.
RECEIVER_CHECKS = 16


def note_receiver(ran: RanCode, code: types.CodeType, receiver: Any) -> None:
    """Note the class method ``code`` runs for (its ``self`` or ``cls``: ``receiver``),
    among its first RECEIVER_CHECKS calls."""
    left = ran.checks.get(code, RECEIVER_CHECKS) - 1
    if left > 0:
        ran.checks[code] = left
    else:
        ran.checks.pop(code, None)
    kind = receiver_class(receiver)
    known = ran.receivers.get(code, ())
    if kind is not None and kind not in known:
        ran.receivers[code] = (*known, kind)


def receiver_class(value: Any) -> type | None:
    """The class a method runs for, given its ``self`` (or its ``cls``); None for a class
    with no name to find it by (made inside a function: a new one at each call)."""
    kind = value if issubclass(type(value), type) else type(value)  # (reads nothing of value)
    return None if "<" in kind.__qualname__ else kind


# Python 3.12+: sys.settrace is built on sys.monitoring there, and switching it on and off
# around every op execution re-instruments code each time (about 30 µs per call measured).
# Instead, one sys.monitoring tool keeps PY_START enabled for good: each code object reports
# once and is then switched off (DISABLE); restart_events() at the start of an op execution
# switches them back on, so that execution sees every function it enters exactly once.
_TOOL_IDS = (3, 4)  # 0-2 and 5 are reserved for debuggers, coverage, profilers, optimizers
_tool: list[int] = []
# The op executions in progress (nested ops), per thread: the tool serves every thread, and
# ops run in parallel in threads that share a Storage.
_recording: dict[int, list[RanCode]] = {}


#: What the callback returns to switch a code object's events off (Python 3.12+).
_DISABLE = getattr(getattr(sys, "monitoring", None), "DISABLE", None)


# What the callback reads is bound as default arguments: the tool stays registered to the
# interpreter's end, and code first run while modules are torn down (logging's handler
# clean-up, say) calls it after this module's globals were set to None.
def _on_start(code: types.CodeType, offset: int, _recording: dict = _recording,
              _ident: Callable[[], int] = threading.get_ident, _disable: Any = _DISABLE) -> Any:
    if _recording:
        mine = _recording.get(_ident())
        if mine:
            for ran in mine:  # (events stay on while other threads record: most calls end here)
                if code not in ran.codes or ran.checks and code in ran.checks:
                    if _started(code, mine):  # a method whose next calls' receivers count too
                        return None
                    break
        if mine is None or len(_recording) > 1:
            # Switched off now, this code would go unseen by the other threads' executions.
            return None
    return _disable


def _started(code: types.CodeType, runs: list[RanCode]) -> bool:
    """``code`` started: noted by each of ``runs`` (an outer op depends on what its inner ops
    ran too), with the class a method runs for. Whether its next calls are to be seen too."""
    param = _receiver_params.get(code)
    if param is None:
        param = _receiver_param(code)
    frame = sys._getframe(2)
    checking = False
    for ran in runs:
        if code not in ran.codes:
            ran.codes[code] = frame.f_globals
        elif code not in ran.checks:
            continue
        if param:
            note_receiver(ran, code, frame.f_locals.get(param))
            checking = checking or code in ran.checks
    return checking


def _monitoring_tool() -> int | None:
    if not _tool:
        monitoring = sys.monitoring  # type: ignore[attr-defined]  # Python >= 3.12 only runs this
        for tool in _TOOL_IDS:
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, "mandala_ast")
                monitoring.register_callback(tool, monitoring.events.PY_START, _on_start)
                monitoring.set_events(tool, monitoring.events.PY_START)
                _tool.append(tool)
                break
        else:
            return None
    return _tool[0]


def _run_monitored(fn: Callable, args: tuple, kwargs: dict) -> tuple[Any, RanCode]:
    """Call ``fn(*args, **kwargs)`` and report which Python code it entered (Python 3.12+)."""
    ran = RanCode()
    if _monitoring_tool() is None:  # every free tool id taken: fall back to static analysis
        ran.complete = False
        return fn(*args, **kwargs), ran
    thread = threading.get_ident()
    mine = _recording.setdefault(thread, [])
    mine.append(ran)
    sys.monitoring.restart_events()  # type: ignore[attr-defined]  # Python >= 3.12 only runs this
    try:
        result = fn(*args, **kwargs)
    finally:
        mine.pop()
        if not mine:
            del _recording[thread]
    return result, ran


run_traced = _run_monitored if sys.version_info >= (3, 12) else _run_with_hooks
run_traced.__doc__ = "Call ``fn(*args, **kwargs)`` and report which Python code it entered."
