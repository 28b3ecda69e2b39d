"""Deferred op outputs: what an op call returns inside a batch block.

A :class:`Deferred` stands for output ``index`` of a call that has not run yet. Using it for
anything but an op argument (arithmetic, ``if``, ``print``, ``len``, an attribute, a key)
*forces* it: the block runs just the calls it needs, then the operation goes to the value.
Compiled code also forces deferred arguments of plain functions before they are called (see
``block.py``), so ``json.dumps(acc)`` or ``"".join(names)`` see plain values; uncompiled code
hands the proxy itself to plain functions, which forces on first use.

>>> d = Deferred(node=None, index=0)          # doctest: +SKIP
>>> d + 1                                     # doctest: +SKIP
3
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

__all__ = ["Deferred", "deferred_in", "is_deferred", "node_of", "substitute"]

#: Containers searched for deferred values (exact types: a user's class is left alone).
_CONTAINERS = (list, tuple, dict, set, frozenset)
_MISSING = object()


class Deferred:
    """Output ``index`` of a batch call (``node``); forwards every use to the forced value."""

    __slots__ = ("_index", "_node")

    def __init__(self, node: Any, index: int) -> None:
        object.__setattr__(self, "_node", node)
        object.__setattr__(self, "_index", index)

    # attribute access goes to the value; slots above are read with object.__getattribute__
    def __getattr__(self, name: str) -> Any:
        return getattr(force(self), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(force(self), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(force(self), name)

    @property  # type: ignore[misc]  # isinstance() asks for __class__: a deferred float is a float
    def __class__(self) -> type:
        return type(force(self))

    def __reduce__(self) -> tuple:  # pickled (sent to a worker, stored) as its value
        return _identity, (force(self),)

    def __repr__(self) -> str:
        return repr(force(self))

    def __str__(self) -> str:
        return str(force(self))

    def __format__(self, spec: str) -> str:
        return format(force(self), spec)

    def __bool__(self) -> bool:
        return bool(force(self))

    def __hash__(self) -> int:
        return hash(force(self))

    def __len__(self) -> int:
        return len(force(self))

    def __iter__(self) -> Any:
        return iter(force(self))

    def __reversed__(self) -> Any:
        return reversed(force(self))

    def __contains__(self, item: Any) -> bool:
        return plain(item) in force(self)

    def __getitem__(self, key: Any) -> Any:
        return force(self)[plain(key)]

    def __setitem__(self, key: Any, value: Any) -> None:
        force(self)[plain(key)] = value

    def __delitem__(self, key: Any) -> None:
        del force(self)[plain(key)]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return force(self)(*args, **kwargs)

    def __enter__(self) -> Any:
        return force(self).__enter__()

    def __exit__(self, *exc_info: Any) -> Any:
        return force(self).__exit__(*exc_info)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        import numpy as np  # only reached when numpy is asking

        return np.asarray(force(self), *args, **kwargs)

    def __fspath__(self) -> Any:
        return force(self).__fspath__()

    def __await__(self) -> Any:  # `await f(x)` on a deferred async op call: its value
        return _ready(force(self)).__await__()


async def _ready(value: Any) -> Any:
    return value


def _identity(value: Any) -> Any:
    return value


def _binary(function: Callable) -> tuple[Callable, Callable]:
    def forward(self: Deferred, other: Any) -> Any:
        return function(force(self), plain(other))

    def reflected(self: Deferred, other: Any) -> Any:
        return function(plain(other), force(self))

    return forward, reflected


_BINARY: dict[str, Callable[..., Any]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "matmul": operator.matmul,
    "truediv": operator.truediv, "floordiv": operator.floordiv, "mod": operator.mod,
    "divmod": divmod, "pow": pow, "lshift": operator.lshift, "rshift": operator.rshift,
    "and": operator.and_, "xor": operator.xor, "or": operator.or_,
}
for _name, _function in _BINARY.items():
    _forward, _reflected = _binary(_function)
    setattr(Deferred, f"__{_name}__", _forward)
    setattr(Deferred, f"__r{_name}__", _reflected)
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(Deferred, f"__{_name}__", _binary(getattr(operator, _name))[0])
_UNARY: dict[str, Callable[..., Any]] = {
    "neg": operator.neg, "pos": operator.pos, "abs": abs, "invert": operator.invert,
    "int": int, "float": float, "complex": complex, "index": operator.index, "bytes": bytes,
}
for _name, _function in _UNARY.items():
    setattr(Deferred, f"__{_name}__", (lambda f: lambda self: f(force(self)))(_function))
Deferred.__round__ = lambda self, *n: round(force(self), *n)  # type: ignore[attr-defined]


def is_deferred(value: Any) -> bool:
    """True for a Deferred (``type()``, unlike ``isinstance``, is not forwarded)."""
    return type(value) is Deferred


def node_of(value: Deferred) -> tuple[Any, int]:
    """``(node, output index)`` of a deferred value."""
    return object.__getattribute__(value, "_node"), object.__getattribute__(value, "_index")


def force(value: Deferred) -> Any:
    """The value of a deferred output: runs the calls it needs if it has not run yet."""
    node, index = node_of(value)
    return node.value(index)


def plain(value: Any) -> Any:
    """``value``, forced if it is deferred."""
    return force(value) if type(value) is Deferred else value


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
