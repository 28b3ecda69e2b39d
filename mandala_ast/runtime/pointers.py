"""``ValuePointer``: pass a huge object that lives elsewhere to ops by name.

Hashing and storing a 100 GB dataset on every call that takes it would cost more than the
calls. A pointer is identified (hashed) and stored by its name alone, and the op receives the
object it points to: ``train(ValuePointer("imagenet", data))`` calls ``train(data)``, keyed
on "imagenet". The name is a promise from the user: that it stands for this content. Another
object under the same name is the same argument (its calls are hits), so a new version of the
data needs a new name ("imagenet-2024"). A pointer loaded from the storage (a table, a query)
holds its name only. Only pointers passed directly as arguments are replaced by their objects;
one inside a list or dict reaches the op as the pointer (``pointer.value``), and is stored
by its name too.
"""

from __future__ import annotations

from typing import Any

from . import codecs
from .types import TypeHandler, add

__all__ = ["CODEC", "ValuePointer", "output_error", "unwrap"]

#: The codec of a stored pointer: its name, UTF-8.
CODEC = "pointer"

#: Whether this process ever made a pointer: until then, calls need not look for any.
_made = False


class ValuePointer:
    """An op argument identified by ``name``, not by the content of ``value`` (not stored).

    >>> from mandala_ast import ValuePointer
    >>> images = ValuePointer("imagenet", list(range(10**6)))
    >>> images
    ValuePointer('imagenet')
    >>> # with storage.run(): train(images)   # train receives the list, keyed on "imagenet"
    """

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"a ValuePointer's name must be a str, not {type(name).__qualname__}")
        self.name, self.value = name, value
        if not _made:
            _noted()

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        # Unpickled (a batch's worker process gets one another process made): __init__ does
        # not run, and this process must know it has pointers as much as one that made them.
        for slot, value in state[1].items():
            object.__setattr__(self, slot, value)
        if not _made:
            _noted()

    def __repr__(self) -> str:
        return f"ValuePointer({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is ValuePointer and other.name == self.name

    def __hash__(self) -> int:
        return hash(("ValuePointer", self.name))


def _noted() -> None:
    """This process has a pointer: arguments are looked at for pointers from now on, and one
    inside a pickled value (a list argument) is stored by its name too, not its object."""
    global _made
    _made = True
    codecs.pickle_stored_as(ValuePointer, _by_name)


def unwrap(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments an op body receives: each pointer replaced by the object it points to."""
    if not _made:  # the common case: one global read
        return args, kwargs
    args = tuple(a.value if type(a) is ValuePointer else a for a in args)
    kwargs = {k: v.value if type(v) is ValuePointer else v for k, v in kwargs.items()}
    return args, kwargs


def output_error(op_name: str, outputs: tuple[Any, ...]) -> str | None:
    """What is wrong with ``outputs`` of op ``op_name`` if one is or holds a pointer, else None. Stored
    by its name, it would come back without its object (an output is handed back as it is
    stored: an op given it would get None), in this block and every later one."""
    if not _made:  # the common case: one global read
        return None
    for i, value in enumerate(outputs):
        if _holds_pointer(value):
            return (
                f"op {op_name}, output {i}: a ValuePointer is stored by its name alone, so the call "
                "would give back a pointer without its object; return the object itself "
                "(@op(transient=True) keeps it out of the storage)"
            )
    return None


def _holds_pointer(value: Any) -> bool:
    """Whether ``value`` is a pointer, or a list, tuple, set or dict holding one (one level
    down: an MList of pointers, ``{"data": pointer}``; deeper ones are not looked for)."""
    kind = type(value)
    if kind is ValuePointer:
        return True
    if kind is dict:
        value = value.values()
    elif kind not in _CONTAINERS:
        return False
    return any(type(member) is ValuePointer for member in value)


_CONTAINERS = frozenset({list, tuple, set, frozenset})


def _by_name(pointer: ValuePointer) -> tuple[type, tuple[str]]:
    return ValuePointer, (pointer.name,)


def _decode(data: bytes) -> ValuePointer:
    return ValuePointer(data.decode())


add(TypeHandler(ValuePointer, key=lambda p: p.name, encode=lambda p: p.name.encode(), decode=_decode, codec=CODEC))
