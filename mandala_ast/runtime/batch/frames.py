"""After a batch block: the names it bound hold plain values again, not deferred proxies.

The ``with`` statement's frame is rewritten in place: each local (or, at module level, global)
name holding a Deferred gets its value, and so do the elements of the lists, dicts and sets
those names hold (changed in place, so every other reference sees them too) and of tuples
(rebuilt, and the name rebound). Values reached any other way (an attribute of a user
object) stay proxies, which behave like their values.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from .deferred import Deferred

__all__ = ["make_plain"]

_MAX_DEPTH = 32


def make_plain(frame: FrameType, resolve: Callable[[Any], Any], proxy: type = Deferred) -> None:
    """Replace the Deferreds (or other ``proxy`` values: run blocks' lazy transient outputs)
    the names of ``frame`` reach by ``resolve(d)``."""
    namespace = frame.f_locals
    changed = {}
    for name, value in list(namespace.items()):
        new = _plain(value, resolve, 0, set(), proxy)
        if new is not value:
            changed[name] = new
    if not changed:
        return
    if frame.f_locals is frame.f_globals or sys.version_info >= (3, 13):
        namespace.update(changed)  # a module's dict, or (3.13+) a write-through view
        return
    namespace.update(changed)
    # Python < 3.13 gives a function's locals as a snapshot; this writes it back to the frame.
    ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))


def _plain(value: Any, resolve: Callable, depth: int, seen: set, proxy: type) -> Any:
    kind = type(value)
    if kind is proxy:
        return resolve(value)
    if depth >= _MAX_DEPTH or id(value) in seen or kind not in (list, dict, set, tuple):
        return value
    seen.add(id(value))
    if kind is list:
        for i, item in enumerate(value):
            new = _plain(item, resolve, depth + 1, seen, proxy)
            if new is not item:
                value[i] = new
    elif kind is dict:
        _plain_dict(value, resolve, depth, seen, proxy)
    elif kind is set:
        olds = [v for v in value if type(v) is proxy]
        if olds:
            value.difference_update(olds)  # (removing a proxy forces it: its hash is its value's)
            value.update(resolve(v) for v in olds)
    else:
        items = tuple(_plain(item, resolve, depth + 1, seen, proxy) for item in value)
        if any(a is not b for a, b in zip(items, value)):
            return items
    return value


def _plain_dict(value: dict, resolve: Callable, depth: int, seen: set, proxy: type) -> None:
    if any(type(k) is proxy for k in value):
        items = [(resolve(k) if type(k) is proxy else k, v) for k, v in value.items()]
        value.clear()
        value.update(items)
    for key, item in value.items():
        new = _plain(item, resolve, depth + 1, seen, proxy)
        if new is not item:
            value[key] = new
