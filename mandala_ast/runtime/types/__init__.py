"""The type-handler registry: how a type is identified (hashed) and stored.

A handler gives a type three things: ``key(value)``, a plain value (tuples, strs, numpy arrays,
other handled values) whose canonical hash is the value's identity; and optionally
``encode(value) -> bytes`` / ``decode(bytes) -> value`` under a codec name of its own, with
``load(path)`` for values stored as files that can load lazily (memory-mapped). Without
``encode`` (or when it returns None for a value) a value is pickled.

Handlers of third-party libraries live in modules of their own and are imported the first time a
value of that library is met (looked up by the top-level name of its type's module): hashing an
int never imports pandas, torch or polars. Dataclasses, NamedTuples and attrs classes are
recognised by shape and keyed field by field.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ByteSegments", "ByteStream", "TypeHandler", "add_codec", "dict_handlers", "handler_for", "handler_for_codec", "register_type"]


class TypeHandler:
    """How one type is hashed and stored (see :func:`register_type`)."""

    __slots__ = ("codec", "decode", "encode", "key", "kind", "load", "name", "nbytes", "record")

    def __init__(self, kind, key, encode=None, decode=None, codec=None, load=None, name=None, record=False, nbytes=None) -> None:
        self.kind, self.key, self.encode, self.decode, self.load = kind, key, encode, decode, load
        #: The type name in the key; None: the value's own class (subclasses are keyed apart).
        self.codec, self.name = codec, name
        #: A user's record class (dataclass...), whose fields may lead back to it (a tree's
        #: parent links): hashing falls back to pickle, which follows cycles, when one does.
        self.record = record
        #: About how many bytes a value's key hashes, for a type without an ``nbytes`` of its
        #: own: a container of several large ones is hashed two items at a time.
        self.nbytes = nbytes


class ByteStream:
    """Bytes made piece by piece, for a key: hashed as the flat ``uint8`` numpy array of their
    concatenation would be (so a key may give either, the id is the same) without ever holding
    that array. For bytes a library only gives as a copy (an image's packed pixels): pieces
    small enough to stay in the CPU cache are hashed as they come, where a copy of the whole
    would cost a pass over new memory.

    ``size`` is the total length, which the hash starts with; ``pieces`` yields buffers.

    >>> import numpy as np
    >>> from mandala_ast.runtime.hashing import content_id
    >>> as_array = ("pixels", np.frombuffer(b"abc", np.uint8))
    >>> content_id(("pixels", ByteStream(3, iter([b"ab", b"c"])))) == content_id(as_array)
    True
    """

    __slots__ = ("pieces", "size")

    def __init__(self, size: int, pieces: Iterable[Any]) -> None:
        self.size, self.pieces = size, pieces


class ByteSegments:
    """Bytes in several buffers, for a key: hashed as segments of 16 MiB on all cores at once
    (``runtime/segments.py``), the same however they are cut into buffers. Its id is not that of
    the flat array of the same bytes: a key gives one or the other, always the same. For bytes
    a library holds in several blocks of memory (a large PIL image's), hashed where they are.

    ``pieces`` yields buffers that stay valid while referenced (never one reused for the next).

    >>> from mandala_ast.runtime.hashing import content_id
    >>> content_id(ByteSegments(3, [b"ab", b"c"])) == content_id(ByteSegments(3, iter([b"abc"])))
    True
    """

    __slots__ = ("pieces", "size")

    def __init__(self, size: int, pieces: Iterable[Any]) -> None:
        self.size, self.pieces = size, pieces


def register_type(
    kind: type,
    *,
    key: Callable[[Any], Any],
    encode: Callable[[Any], bytes] | None = None,
    decode: Callable[[bytes], Any] | None = None,
    codec: str | None = None,
) -> None:
    """Tell mandala_ast how to identify (and optionally store) values of ``kind`` and subclasses.

    ``key(value)`` returns what identifies the value: anything mandala_ast can hash (tuples,
    strs, numbers, numpy arrays, values of other registered types). Equal values must give equal
    keys; the type's qualified name is added for you. ``encode``/``decode`` store the value in a
    format of your own under ``codec`` (default: the type's qualified name); the same
    registration must run before a stored value is loaded. Without them values are pickled.

    >>> import mandala_ast
    >>> class Grid:
    ...     def __init__(self, cells): self.cells = cells
    >>> mandala_ast.register_type(Grid, key=lambda grid: grid.cells)
    """
    if (encode is None) != (decode is None):
        raise TypeError("register_type: give both encode and decode, or neither")
    name = codec or f"user:{kind.__module__}.{kind.__qualname__}"
    handler = TypeHandler(kind, key, encode, decode, name if encode else None)
    add(handler)


def add(handler: TypeHandler) -> None:
    """Register ``handler`` (the library modules below call this when imported)."""
    _HANDLERS[handler.kind] = handler
    if handler.codec:
        _BY_CODEC[handler.codec] = handler
    _CACHE.clear()


def add_codec(handler: TypeHandler, library: str) -> None:
    """Register ``handler`` to store plain dicts whose values are ``library``'s (a dict of torch
    tensors), in its own format: chosen by content, so it keys nothing (dicts are keyed as
    dicts) and is asked by :func:`dict_handlers` only once ``library`` is imported."""
    _BY_CODEC[handler.codec] = handler
    _DICT_CODECS[library] = handler.codec


def dict_handlers() -> list[TypeHandler]:
    """The handlers that may store a plain dict in a format of their own (their ``encode``
    says None to a dict it cannot hold), for the libraries already imported: a dict of values
    of a library never imported holds none of them, so none is imported here."""
    found = []
    for library, codec in _DICT_CODECS.items():
        handler = handler_for_codec(codec) if library in sys.modules else None
        if handler is not None:
            found.append(handler)
    return found


def handler_for(kind: type) -> TypeHandler | None:
    """The handler of ``kind`` (its own or its nearest registered base class), or None."""
    try:
        return _CACHE[kind]
    except KeyError:
        pass
    except TypeError:  # an unhashable metaclass instance: nothing registered for it
        return None
    _load_library_handlers(kind)
    found = next((_HANDLERS[c] for c in kind.__mro__ if c in _HANDLERS), None)
    if found is None:
        found = _structural_handler(kind)
    if len(_CACHE) > 4096:  # classes made at run time must not grow the cache forever
        _CACHE.clear()
    _CACHE[kind] = found
    return found


def handler_for_codec(codec: str) -> TypeHandler | None:
    """The handler that stores values under ``codec`` (its library's handlers imported first)."""
    if codec not in _BY_CODEC:
        module = _CODEC_MODULES.get(codec.partition(":")[0])
        if module is not None:
            importlib.import_module(module)
    return _BY_CODEC.get(codec)


def _load_library_handlers(kind: type) -> None:
    for cls in kind.__mro__:
        module_name = getattr(cls, "__module__", None)
        top = module_name.partition(".")[0] if isinstance(module_name, str) else ""
        module = _LIBRARY_MODULES.get(top)
        if module is not None and module not in sys.modules:
            try:
                importlib.import_module(module)
            except ImportError:  # a handler needing a library that is missing: values are pickled
                _LIBRARY_MODULES.pop(top, None)


def _structural_handler(kind: type) -> TypeHandler | None:
    from . import records

    return records.handler(kind)


_HANDLERS: dict[type, TypeHandler] = {}
_BY_CODEC: dict[str, TypeHandler] = {}
_CACHE: dict[type, TypeHandler | None] = {}

#: Library -> the codec storing dicts of its values (registered by its handlers' module, which
#: :func:`handler_for_codec` imports: so the known ones are listed here from the start).
_DICT_CODECS: dict[str, str] = {"torch": "torch:state_dict"}

#: Top-level module of a value's type -> the module holding that library's handlers.
_LIBRARY_MODULES = {
    "pandas": "mandala_ast.runtime.types.pandas_types",
    "torch": "mandala_ast.runtime.types.torch_types",
    "polars": "mandala_ast.runtime.types.polars_types",
    "pyarrow": "mandala_ast.runtime.types.arrow_types",
    "scipy": "mandala_ast.runtime.types.scipy_types",
    "xarray": "mandala_ast.runtime.types.xarray_types",
    "PIL": "mandala_ast.runtime.types.pil_types",
}
#: Codec prefix -> the module that registers it (values are loaded before any is hashed).
_CODEC_MODULES = {
    "torch": _LIBRARY_MODULES["torch"],
    "pandas": _LIBRARY_MODULES["pandas"],
    "arrow": _LIBRARY_MODULES["pyarrow"],
    "polars": _LIBRARY_MODULES["polars"],
    "sparse": _LIBRARY_MODULES["scipy"],
    "xarray": _LIBRARY_MODULES["xarray"],
    "pil": _LIBRARY_MODULES["PIL"],
    "pointer": "mandala_ast.runtime.pointers",  # a ValuePointer (stored as its name)
}
