"""Deferred op outputs: what an op call returns inside a batch block.

A :class:`Deferred` stands for output ``index`` of a call that has not run yet. Using it for
anything but an op argument (arithmetic, ``if``, ``print``, ``len``, an attribute, a key)
*forces* it: the block runs just the calls it needs, then the operation goes to the value.
Compiled code also forces deferred arguments of plain functions before they are called (see
``block.py``), so ``json.dumps(acc)`` or ``"".join(names)`` see plain values; uncompiled code
hands the proxy itself to plain functions, which forces on first use. The proxy's forwarding
is shared with run blocks' lazy transient outputs (``runtime/proxy.py``).

>>> d = Deferred(node=None, index=0)          # doctest: +SKIP
>>> d + 1                                     # doctest: +SKIP
3
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..proxy import Proxy, force, node_of, plain

__all__ = ["Deferred", "deferred_in", "force", "is_deferred", "node_of", "plain", "substitute"]

#: Containers searched for deferred values (exact types: a user's class is left alone).
_CONTAINERS = (list, tuple, dict, set, frozenset)
_MISSING = object()


class Deferred(Proxy):
    """Output ``index`` of a batch call (``node``); forwards every use to the forced value."""

    __slots__ = ()


def is_deferred(value: Any) -> bool:
    """True for a Deferred (``type()``, unlike ``isinstance``, is not forwarded)."""
    return type(value) is Deferred


def deferred_in(value: Any, found: list, depth: int = 0) -> list:
    """Append to ``found`` every Deferred in ``value`` or its built-in containers."""
    kind = type(value)
    if kind is Deferred:
        found.append(value)
    elif kind in _CONTAINERS and depth < 32:
        items = value.items() if kind is dict else value
        for item in items:
            deferred_in(item, found, depth + 1)
    return found


def substitute(value: Any, resolve: Callable[[Deferred], Any], depth: int = 0) -> Any:
    """``value`` with every Deferred in it (built-in containers included) replaced by
    ``resolve(d)``; containers without any come back as the same object."""
    kind = type(value)
    if kind is Deferred:
        return resolve(value)
    if kind not in _CONTAINERS or depth >= 32 or not deferred_in(value, [], depth):
        return value
    if kind is dict:
        return {substitute(k, resolve, depth + 1): substitute(v, resolve, depth + 1) for k, v in value.items()}
    return kind(substitute(item, resolve, depth + 1) for item in value)
