"""A proxy that acts as a value computed on first use: operators, attributes, ``isinstance``,
``len``, iteration, pickling (as its value) all go to the value.

Batch blocks return them for calls not run yet (``batch/deferred.py``), run blocks for the
outputs of stored transient calls (``transient.py``): each is a subclass, so that ``type()``
(which is not forwarded, unlike ``isinstance``) tells them apart.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable
from typing import Any

__all__ = ["Proxy", "force", "node_of", "plain"]


class Proxy:
    """Output ``index`` of a call (``node``) that acts as its value: every use forwards to
    ``node.value(index)``, the value computed (forced) on first use.

    >>> class Node:
    ...     def value(self, index): return [10, 20][index]
    >>> Proxy(Node(), 1) + 1
    21
    """

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

    @property  # type: ignore[misc]  # isinstance() asks for __class__: a proxy of a float is a float
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
        # As os.fspath answers for the value: a str or bytes is its own path (neither has
        # __fspath__), anything else a TypeError, which code looking for paths catches.
        return os.fspath(force(self))

    def __await__(self) -> Any:  # `await f(x)` on a deferred async op call: its value
        return _ready(force(self)).__await__()


async def _ready(value: Any) -> Any:
    return value


def _identity(value: Any) -> Any:
    return value


def _binary(function: Callable) -> tuple[Callable, Callable]:
    def forward(self: Proxy, other: Any) -> Any:
        return function(force(self), plain(other))

    def reflected(self: Proxy, other: Any) -> Any:
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
    setattr(Proxy, f"__{_name}__", _forward)
    setattr(Proxy, f"__r{_name}__", _reflected)
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(Proxy, f"__{_name}__", _binary(getattr(operator, _name))[0])
_UNARY: dict[str, Callable[..., Any]] = {
    "neg": operator.neg, "pos": operator.pos, "abs": abs, "invert": operator.invert,
    "int": int, "float": float, "complex": complex, "index": operator.index, "bytes": bytes,
}
for _name, _function in _UNARY.items():
    setattr(Proxy, f"__{_name}__", (lambda f: lambda self: f(force(self)))(_function))
Proxy.__round__ = lambda self, *n: round(force(self), *n)  # type: ignore[attr-defined]


def node_of(value: Proxy) -> tuple[Any, int]:
    """``(node, output index)`` of a proxy."""
    return object.__getattribute__(value, "_node"), object.__getattribute__(value, "_index")


def force(value: Proxy) -> Any:
    """The value of a proxy: computed now if it was not yet."""
    node, index = node_of(value)
    return node.value(index)


def plain(value: Any) -> Any:
    """``value``, forced if it is a proxy."""
    return force(value) if issubclass(type(value), Proxy) else value
