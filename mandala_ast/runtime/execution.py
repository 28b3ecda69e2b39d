"""Execution: running an op's body for a miss, with the storage's lock released.

The body is traced (tracing.py) when it may reach user code, so the call's dependency state
names every function and constant it used; op calls it makes are collected through the
block (``RunBlock.start_op_body``), and the data files and environment variables it reads
are noted (file_deps.py, env_deps.py).
It receives the objects ValuePointer arguments point to (pointers.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from . import env_deps, file_deps, global_random, recursion, transient
from .dependencies import argument_classes, is_user_module, objects_before
from .pointers import unwrap as unwrap_pointers
from .tracing import RanCode, run_traced

if TYPE_CHECKING:
    from pathlib import Path

    from .blocks import RunBlock
    from .ops import Op

__all__ = ["Ran", "call_body", "plain_data", "run_body", "user_codes"]

#: What an untraced execution entered (nothing to see): shared, it is only ever read.
_RAN_NOTHING = RanCode()
#: The op calls made by such an execution.
_NO_OP_CALLS: frozenset = frozenset()
_PLAIN_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})

#: ``(result, code it ran, op calls it made, seconds, files it read)``; the files as
#: :func:`file_deps.stop` gives them, followed by the environment variables it read
#: (:func:`env_deps.stop`).
Ran = tuple[Any, RanCode, Any, float, tuple]


def run_body(
    op: Op, args: tuple, kwargs: dict, traced: bool, block: RunBlock, lock: threading.RLock, storage_path: Path | None
) -> Ran:
    """Run ``op``'s body on the arguments, releasing ``lock`` (held once by this thread)
    meanwhile: other threads look up and record, and the body may call ops, from this thread
    or from threads it starts. ``traced``: whether to trace what it runs; the files of
    ``storage_path`` are never dependencies.

    >>> run_body(inc, (1,), {}, False, block, storage_lock, None)[0]        # doctest: +SKIP
    2
    """
    args, kwargs = unwrap_pointers(args, kwargs)  # the objects ValuePointers point to
    if transient.has_lazy(args, kwargs):  # stored transient outputs: the body gets values
        lock.release()  # computing them runs user code: not under the storage's lock
        try:
            args, kwargs = transient.plain_args(args, kwargs)
        finally:
            lock.acquire()
    watching = file_deps.start(op.track_files, args, kwargs)  # the files it opens or names
    reading = env_deps.start(op.track_env, None if traced else op.fn, op.fn)  # the environment variables it reads
    files: tuple = ()
    ran = _RAN_NOTHING
    # What it draws from numpy's or Python's global generator. A body that recurses without
    # end reaches the interpreter's limit here too: it is then not watched, and its
    # RecursionError is raised where the recursion module says. (In line, not in a helper:
    # two calls fewer a miss.)
    try:
        drawing = global_random.start()
    except RecursionError:
        drawing = None
    lock.release()  # (try/finally, not a context manager: ~1 µs less per miss)
    try:
        started = time.perf_counter()
        op_calls: Collection[tuple[Op, bytes]]
        if traced:
            op_calls = block.start_op_body()
            try:
                # Only a traced body can call ops, so only it can nest: untraced misses skip this.
                recursion.deeper(op.name)  # may refuse: one body too many
                result, ran = call_body(op, args, kwargs, traced)
            finally:
                recursion.shallower()
                block.end_op_body()
        else:  # nothing it can reach is user code (no op either): tracing would find nothing
            result, op_calls = op.fn(*args, **kwargs), _NO_OP_CALLS
        duration = time.perf_counter() - started
    finally:
        try:  # hashed unlocked; raises nothing of its own, but a stack at its limit raises anywhere
            files = env_deps.stop(reading, file_deps.stop(watching, storage_path, user_codes(op, ran)), op.ignore_env)
        finally:
            lock.acquire()  # whatever happened: the caller releases it
        try:
            drawn = global_random.stop(drawing)
        except RecursionError:
            drawn = []
    if drawn:
        global_random.report(op.name, drawn)
    return result, ran, op_calls, duration, files


def call_body(op: Op, args: tuple, kwargs: dict, traced: bool) -> tuple[Any, RanCode]:
    """``op``'s body on the arguments, and what it ran: traced if ``traced``, with the
    module-level objects its code refers to described as the body found them (it may change
    them: ``MODEL.fit(x)``), and the class-level data of the classes of the objects it is
    given (which their keys leave out: ``model.K``) as the body found it."""
    if not traced:  # nothing it can reach is user code: a trace would find nothing
        return op.fn(*args, **kwargs), _RAN_NOTHING
    before = objects_before(op.fn)
    before.update(argument_classes((*args, *kwargs.values())))
    result, ran = run_traced(op.fn, args, kwargs)
    ran.before = before
    return result, ran


def user_codes(op: Op, ran: RanCode) -> tuple:
    """``(code, its module's globals)`` of the op's code and of the user code its body ran:
    where a file path may be named, by a literal or by a module-level name."""
    own = getattr(op.fn, "__code__", None)
    codes = () if own is None else ((own, getattr(op.fn, "__globals__", {})),)
    if not ran.codes:
        return codes
    return codes + tuple(item for item in ran.codes.items() if is_user_module(item[1].get("__name__") or ""))


def plain_data(values: Any) -> bool:
    """Scalars, flat containers of scalars, or numeric arrays: nothing that could run user
    code when an op computes with it (no user class, no callable).

    >>> plain_data([1, "a", (2.0, None)]), plain_data([len])
    (True, False)
    """
    for value in values:
        kind = type(value)
        if kind in _PLAIN_SCALARS:
            continue
        if kind in (list, tuple) and all(type(item) in _PLAIN_SCALARS for item in value):
            continue
        # (a dtype equals the type it stands for: dtype("O") == object, yet is not object)
        if kind.__module__ == "numpy" and getattr(value, "dtype", object) != object:  # noqa: E721
            continue
        return False
    return True
