"""Content ids: blake3 over a type-tagged canonical encoding.

Why a canonical encoding rather than ``pickle``: pickle output depends on memo state, dict
insertion order and set iteration order (which follows ``PYTHONHASHSEED``), so equal values can
pickle differently (joblib #1611, #231). Here every container is encoded from its elements'
encodings, sets and dicts sorted by those bytes, and every value carries a type tag so that
``1``, ``1.0``, ``True`` and ``"1"`` never collide. numpy buffers are hashed in place (below
256 kB, a copy after their header is faster). A value of a type with a handler (pandas, polars,
pyarrow, torch, scipy.sparse, xarray, PIL, dataclasses...: runtime/types/) is hashed as its
type's name and its handler's key, a plain value holding its buffers as numpy arrays. Pickle
(protocol 5) is the fallback for the rest.

The fallback pickles with :func:`canonical_pickle`, which makes the bytes depend on content
only, so that an object and its unpickled copy hash alike: strings are shared by equality (a
fitted estimator shares its parameter names with its attribute names; its unpickled copy does
not), dicts, sets and frozensets are written in a canonical order at any depth, float NaNs as
one NaN, and arrays and frames by their content ids. Those bytes are never unpickled. A class
a storage was told moved is named there, and wherever a key names a class, under the name its
objects were stored under (moved_classes.py).
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

from blake3 import blake3

from . import moved_classes
from .hash_threads import large_hash_threads
from .recursion import stack_nearly_full
from .segments import segments_digest
from .side_by_side import encoded_items
from .types import ByteSegments, ByteStream, TypeHandler, handler_for

__all__ = ["UnhashableError", "canonical_pickle", "content_id", "digest", "forget_class_names", "register_id_carrier"]

#: Buffers at least this large are hashed with all cores. Below it blake3's hand-off to its thread
#: pool (and an array's header, which shifts its bytes off blake3's subtree boundaries) cost more
#: than the threads win when the cores are busy: a state_dict's 2 MB tensors hashed at 0.7x a
#: large array's rate threaded, 0.95x on one thread, on two shared cores.
THREADED_HASH_BYTES = 8 << 20

_scalar_cids: dict[Any, bytes] = {}
_SCALAR_CACHE_LIMIT = 1 << 17


class UnhashableError(TypeError):
    """Raised when a value has no canonical encoding and cannot be pickled either."""


def digest(data: bytes | bytearray | memoryview) -> bytes:
    """blake3 digest (32 bytes) of ``data``."""
    return blake3(data).digest()


def content_id(value: Any) -> bytes:
    """The 32-byte content id of ``value``; equal content gives equal ids in every process.

    >>> content_id(1) != content_id(1.0) != content_id(True)
    True
    """
    kind = type(value)
    if kind in _SCALAR_TYPES:
        # Scalars repeat constantly as op arguments; a dict lookup (~60 ns) beats blake3 (~450 ns).
        cid = _scalar_cids.get(_scalar_key(kind, value))
        return _scalar_cid(kind, value) if cid is None else cid
    hasher = _large_value_hasher(value)
    if hasher is not None:
        return hasher(value)
    try:
        return digest(encode_canonical(value))
    except RecursionError:
        if not stack_nearly_full() and _holds_itself(value):
            return _cyclic_cid(value)
        raise _too_deep_or_the_stack(value) from None


def _cyclic_cid(value: Any) -> bytes:
    """The id of a value whose dicts, lists or sets lead back to themselves (a graph whose
    nodes list their neighbours): canonical pickle follows cycles, as for a record's parent
    link. Tagged ``K``, it is no plain container's encoding."""
    out = bytearray()
    _enc_pickled(value, out)
    return digest(out)


_CONTAINERS = frozenset({dict, list, tuple, set, frozenset})


def _holds_itself(value: Any) -> bool:
    """Whether ``value``'s dicts, lists, tuples and sets lead back to one of themselves.
    Without recursion: it is asked once hashing has run out of stack."""
    on_path: set[int] = set()
    done: set[int] = set()  # shared parts (a diamond) are walked once
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, leaving = stack.pop()
        if leaving:
            on_path.discard(id(item))
            done.add(id(item))
            continue
        if type(item) not in _CONTAINERS or id(item) in done:
            continue
        if id(item) in on_path:
            return True
        on_path.add(id(item))
        stack.append((item, True))
        children = [part for pair in item.items() for part in pair] if type(item) is dict else item
        stack.extend((child, False) for child in children)
    return False


def _too_deep_or_the_stack(value: Any) -> BaseException:
    """What a RecursionError met hashing ``value`` is: the value nested too deeply, or, with
    the stack nearly full already (a recursive op's deepest call), the caller's RecursionError."""
    if stack_nearly_full():
        return RecursionError("maximum recursion depth exceeded")
    return UnhashableError(_too_deep(value))


def _too_deep(value: Any) -> str:
    return (
        f"cannot hash a value of type {type(value).__qualname__}: nested too deeply (hashing "
        f"takes a few Python frames a level, and Python's recursion limit, {sys.getrecursionlimit()}, "
        "stops it after a few hundred levels: about 300 of dicts, 600 of lists or tuples)"
    )


def _scalar_cid(kind: type, value: Any) -> bytes:
    """Hash a scalar the cache lacks, and cache it. -0.0 == 0.0 and both hash alike, so zero
    floats are never cached (a cached 0.0 would answer for -0.0); nor is NaN, which equals
    nothing: every NaN object would take an entry of its own."""
    if kind is int:  # the most common scalars: encoded without the general machinery
        payload = b"%x" % value
        size = len(payload)
        cid = blake3((_INT_HEADS[size] if size < _HEADS else b"I" + _LENGTH(size)) + payload).digest()
        # (every int is cached, under itself: _cacheable and _scalar_key, spelled out for the
        # int every new call's argument or output is)
        if len(_scalar_cids) >= _SCALAR_CACHE_LIMIT:
            _scalar_cids.clear()
        _scalar_cids[value] = cid
        return cid
    if kind is float:  # (as _enc_float: floats computed by ops rarely repeat, so hashed)
        payload = float.hex(value).encode()
        cid = blake3(b"F%s%s" % (_LENGTH(len(payload)), payload)).digest()
    else:
        cid = digest(encode_canonical(value))
    if _cacheable(kind, value):
        if len(_scalar_cids) >= _SCALAR_CACHE_LIMIT:
            _scalar_cids.clear()
        _scalar_cids[_scalar_key(kind, value)] = cid
    return cid


def _scalar_key(kind: type, value: Any) -> Any:
    """The cache key of a scalar. An int or str equals no other scalar kind's value, so it is
    its own key: no (type, value) tuple, which (holding a type object) the garbage collector
    would visit for as long as the cache keeps it."""
    return value if kind is int or kind is str else (kind, value)


#: The 8-byte length prefix of an encoding's payload.
_LENGTH = struct.Struct("<Q").pack
#: An int's tag and length prefix, by the length of its hex payload (those up to _HEADS)
_HEADS = 64
_INT_HEADS = tuple(b"I" + _LENGTH(size) for size in range(_HEADS))


def _cacheable(kind: type, value: Any) -> bool:
    if kind is float:
        return value != 0.0 and value == value
    return kind not in (str, bytes) or len(value) <= 256


def encode_canonical(value: Any) -> bytes:
    """The canonical, type-tagged byte encoding whose blake3 is the content id."""
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _encode(value: Any, out: bytearray) -> None:
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        encoder = _encoder_for(value)
    encoder(value, out)


def _put(out: bytearray, tag: bytes, payload: bytes) -> None:
    # Length-prefixing makes the concatenation of encodings unambiguous.
    out += tag
    out += _LENGTH(len(payload))
    out += payload


def _enc_none(value: None, out: bytearray) -> None:
    out += b"N"


def _enc_bool(value: bool, out: bytearray) -> None:
    out += b"B1" if value else b"B0"


def _enc_int(value: int, out: bytearray) -> None:
    # Hex, not decimal: str(int) refuses > 4300 digits since Python 3.11.
    _put(out, b"I", format(value, "x").encode())


def _enc_float(value: float, out: bytearray) -> None:
    # hex() keeps the sign of zero (-0.0 is its own key) and writes every NaN as "nan".
    _put(out, b"F", value.hex().encode())


def _enc_complex(value: complex, out: bytearray) -> None:
    _put(out, b"C", f"{value.real.hex()},{value.imag.hex()}".encode())


def _enc_str(value: str, out: bytearray) -> None:
    _put(out, b"S", value.encode("utf-8", "surrogatepass"))


def _enc_bytes(value: bytes, out: bytearray) -> None:
    _put(out, b"Y", bytes(value))


def _enc_bytearray(value: bytearray, out: bytearray) -> None:
    _put(out, b"y", bytes(value))


def _sequence_encoder(tag: bytes) -> Callable[[Any, bytearray], None]:
    def encode_sequence_(value: Any, out: bytearray) -> None:
        encodings = encoded_items(value, encode_canonical) if not _in_a_record() else None
        if encodings is not None:
            _put(out, tag, b"".join(encodings))
            return
        body = bytearray()
        for item in value:
            kind = type(item)
            # ints, floats and strs inline (what _enc_int, _enc_float and _enc_str write):
            # a list of numbers hashed 2-3x faster than through _encode for each
            if kind is int:
                payload = b"%x" % item
                body += _INT_TAG
            elif kind is float:
                payload = item.hex().encode()
                body += _FLOAT_TAG
            elif kind is str:
                payload = item.encode("utf-8", "surrogatepass")
                body += _STR_TAG
            else:
                _encode(item, body)
                continue
            body += _LENGTH(len(payload))
            body += payload
        _put(out, tag, bytes(body))

    return encode_sequence_


_INT_TAG, _FLOAT_TAG, _STR_TAG = b"I", b"F", b"S"


def _item_encoding(value: Any) -> bytes:
    """``encode_canonical(value)``, for ints, floats and strs without its buffer."""
    kind = type(value)
    if kind is str:
        payload = value.encode("utf-8", "surrogatepass")
        return _STR_TAG + _LENGTH(len(payload)) + payload
    if kind is int:
        payload = b"%x" % value
        return _INT_TAG + _LENGTH(len(payload)) + payload
    if kind is float:
        payload = value.hex().encode()
        return _FLOAT_TAG + _LENGTH(len(payload)) + payload
    return encode_canonical(value)


def _set_encoder(tag: bytes) -> Callable[[Any, bytearray], None]:
    def encode_set_(value: Any, out: bytearray) -> None:
        # Sorting the element encodings makes the result independent of PYTHONHASHSEED.
        _put(out, tag, b"".join(sorted(map(_item_encoding, value))))

    return encode_set_


def _enc_dict(value: dict, out: bytearray) -> None:
    encodings = encoded_items(value.values(), encode_canonical) if not _in_a_record() else None
    if encodings is not None:
        pairs = sorted(_item_encoding(k) + v for k, v in zip(value, encodings))
    else:
        pairs = sorted(_item_encoding(k) + _item_encoding(v) for k, v in value.items())
    _put(out, b"D", b"".join(pairs))


def _enc_ndarray(value: Any, out: bytearray) -> None:
    _put(out, b"A", _ndarray_cid(value))


def _enc_ndarray_subclass(value: Any, out: bytearray) -> None:
    # np.matrix multiplies as matrices: the array of the same numbers is another argument.
    kind = type(value)
    _put(out, b"M", f"{kind.__module__}.{kind.__qualname__}|".encode() + _ndarray_cid(value.view(sys.modules["numpy"].ndarray)))


def _enc_byte_stream(value: ByteStream, out: bytearray) -> None:
    # Tagged and headed as an array: its id is the one _ndarray_cid gives the flat uint8 array
    # of the same bytes (a test holds the two together).
    threads = large_hash_threads() if value.size >= THREADED_HASH_BYTES else 1
    hasher = blake3(f"ndarray||u1|{(value.size,)}".encode(), max_threads=threads)
    seen = 0
    for piece in value.pieces:
        hasher.update(piece)
        seen += memoryview(piece).nbytes
    if seen != value.size:  # a handler's own mistake: two lengths would alias two values
        raise UnhashableError(f"a byte stream announced {value.size} bytes and gave {seen}")
    _put(out, b"A", hasher.digest())


def _enc_byte_segments(value: ByteSegments, out: bytearray) -> None:
    try:
        digest = segments_digest(value.size, value.pieces)
    except ValueError as error:  # a handler's own mistake, as in _enc_byte_stream
        raise UnhashableError(str(error)) from None
    _put(out, b"G", digest)


def _enc_numpy_scalar(value: Any, out: bytearray) -> None:
    data = value.tobytes() if value.dtype.fields is None else _without_padding(sys.modules["numpy"].asarray(value)).tobytes()
    _put(out, b"a", _dtype_key(value.dtype).encode() + b"|" + data)


def _dtype_key(dtype: Any) -> str:
    # dtype.str is '|V8' for every 8-byte structured dtype: field names and types must count.
    return dtype.str if dtype.fields is None else repr(dtype.descr)


def _enc_pickled(value: Any, out: bytearray) -> None:
    kind = type(value)
    try:
        data = canonical_pickle(value)
    except RecursionError:
        raise _too_deep_or_the_stack(value) from None
    except UnhashableError:
        raise
    except Exception as exc:  # pickle raises many types: TypeError, PicklingError, AttributeError
        raise UnhashableError(f"cannot hash a value of type {kind.__qualname__}: {exc}{_fix_for(value)}") from exc
    _put(out, b"K", _class_key(kind).encode() + b"|" + data)


def _class_key(kind: type) -> str:
    """``module.qualname`` of a class as keys name it: where its objects were first stored, for
    a class moved since (moved_classes.py)."""
    name = (kind.__module__, kind.__qualname__)
    keyed = moved_classes.keyed_name(name) if moved_classes.any_moved() else None
    return "%s.%s" % (keyed or name)


def forget_class_names() -> None:
    """Classes moved (moved_classes.note_moves): the type names cached for keys may be stale."""
    _TYPE_NAMES.clear()


def _fix_for(value: Any) -> str:
    if not isinstance(value, types.FunctionType) or "<" not in value.__qualname__:
        return _part_to_leave_out(value)
    # Pickle keys a function by where it is found; a lambda or a nested function is found nowhere.
    return (
        ". A function is an argument by its module and name, so a lambda or a function defined "
        "inside another cannot be one: define it at module level with `def` (the code an op "
        "calls counts as a dependency of its calls)"
    )


#: How deep and how wide the search for what an object holds that cannot be pickled goes (only
#: once pickling it failed: a model's wrapper holding a lock, a logger, a connection).
_SEARCH_DEPTH = 8
_SEARCH_WIDTH = 200


def _part_to_leave_out(value: Any) -> str:
    """Where inside ``value`` (``.y['cache'][1].x``) is the part pickle refused, and the fixes."""
    found = _unpicklable_part(value, "", 0, {id(value)})
    if found is None:
        return ""
    where, part = found
    return (
        f"; its {where} holds it (a {type(part).__qualname__}). Through pickle an object is keyed by "
        "all it holds: leave such parts out of its state (`__getstate__`), give the op the values it "
        f"needs instead, or key {type(value).__qualname__} yourself with mandala_ast.register_type"
    )


def _unpicklable_part(value: Any, where: str, depth: int, seen: set[int]) -> tuple[str, Any] | None:
    if depth >= _SEARCH_DEPTH:
        return None
    failing: tuple[str, Any] | None = None  # the first part refused, if none inside says why
    for label, part in _parts(value)[:_SEARCH_WIDTH]:
        # A part met before (a list holding itself, objects pointing at each other) fails as
        # its holder did: walking into it would name the cycle, not what pickle refused.
        if id(part) in seen:
            continue
        seen.add(id(part))
        try:
            canonical_pickle(part)
        except Exception:
            found = _unpicklable_part(part, where + label, depth + 1, seen) or (where + label, part)
            if not _parts(found[1]):  # a part holding nothing: what pickle refused itself
                return found
            failing = failing or found
    return failing


def _parts(value: Any) -> list[tuple[str, Any]]:
    """What ``value`` holds, each with how to reach it: items, elements, attributes."""
    if isinstance(value, dict):
        return [(f"[{key!r}]", item) for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [(f"[{i}]", item) for i, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return [(" element", item) for item in value]
    if isinstance(value, types.MethodType):
        return [(".__self__", value.__self__)]
    state = getattr(value, "__dict__", None)
    return [(f".{name}", item) for name, item in state.items()] if isinstance(state, dict) else []


def canonical_pickle(value: Any) -> bytes:
    """Pickle protocol 5 for hashing: equal content gives equal bytes, whatever the objects'
    identities, the hash seed, or how often the value went through pickle. Never unpickled.

    >>> canonical_pickle({"b": 1, "a": {3, 1}}) == canonical_pickle({"a": {1, 3}, "b": 1})
    True
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    stand_ins = _stand_ins()
    pickler.persistent_id = _moved_class_names(stand_ins) if moved_classes.any_moved() else stand_ins  # type: ignore[method-assign]  # as pickle documents
    pickler.dump(value)
    return buffer.getvalue()


def _stand_ins() -> Callable[[Any], Any]:
    """A ``persistent_id`` for one pickling: the stand-in to write for an object, or None.

    ``persistent_id`` is the one hook pickle calls for every object (``reducer_override``
    skips builtin types). A stand-in is written followed by a persistent-id opcode, so no plain
    value reads like one. Stand-ins are looked up by id and reused: an object the value shares
    is written once and referred to afterwards, as pickle does, and a dict that holds itself
    refers back to itself. (A closure, not a method: this runs for every object pickled.)
    """
    strings: dict[str, str] = {}
    same_string = strings.setdefault
    known: dict[int, tuple[Any, Any]] = {}  # id -> (the object, kept alive; its stand-in)

    def persistent_id(obj: Any) -> Any:
        kind = type(obj)
        if kind is str:
            # Equal strings are one string: pickle's memo would share them by identity, which
            # interning decides and unpickling does not restore.
            return same_string(obj, obj)
        if kind is float:
            return _NAN if obj != obj else None
        maker = _STAND_INS.get(kind, _UNKNOWN)
        if maker is None:
            return None
        if maker is _UNKNOWN:
            maker = _stand_in_maker(kind)
            if maker is None:
                return None
        entry = known.get(id(obj))
        if entry is None:
            entry = known[id(obj)] = (obj, maker(obj))
        return entry[1]

    return persistent_id


def _moved_class_names(stand_ins: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``stand_ins`` writing a moved class under the name its objects were stored under.

    Pickle writes a class it meets for the first time as its module and qualified name, two
    strings it offers this hook next, and refers back to it afterwards. Their stand-ins are
    the old names: the bytes are those the class pickled to where it was (moved_classes.py).
    """
    names: list[str] = []  # (qualname, module) still to write for the class met last
    met: set[int] = set()

    def persistent_id(obj: Any) -> Any:
        if names and type(obj) is str:
            return stand_ins(names.pop())
        names.clear()  # (not the strings expected: pickle wrote the class otherwise)
        found = stand_ins(obj)
        if found is None and isinstance(obj, type) and id(obj) not in met:
            met.add(id(obj))
            keyed = moved_classes.keyed_name((obj.__module__, obj.__qualname__))
            if keyed is not None:
                names[:] = [keyed[1], keyed[0]]
        return found

    return persistent_id


#: The stand-in of every float NaN (sign and payload are not part of a float's key).
_NAN = ("\0nan",)
_UNKNOWN = object()


def _dict_stand_in(value: dict) -> dict:
    """The dict with its keys in content order: itself if they are (pickle writes it then)."""
    if len(value) < 2:
        return value
    keys = list(value)
    order = _content_order(keys)
    return value if order == keys else dict(zip(order, map(value.__getitem__, order)))


def _set_stand_in(value: Any) -> tuple:
    return ("\0set" if type(value) is set else "\0frozenset", _content_order(value))


def _content_order(keys: Any) -> list:
    """``keys`` in an order that depends on their content only."""
    kinds = set(map(type, keys))
    if len(kinds) == 1 and (str in kinds or int in kinds):
        return sorted(keys)  # the common case, and much faster than encoding each key
    return sorted(keys, key=encode_canonical)


def _content_id_stand_in(value: Any) -> tuple:
    # Arrays and frames: their content id, hashed in place, instead of a copy of their buffers.
    return ("\0value", content_id(value))


def _stand_in_maker(kind: type) -> Callable[[Any], Any] | None:
    """The stand-in maker for instances of ``kind`` (None: pickled as they are), cached."""
    module = kind.__module__
    maker = None
    if module == "numpy" and issubclass(kind, sys.modules["numpy"].ndarray):
        maker = _plain_array_stand_in
    elif getattr(handler_for(kind), "record", True) is False:
        # Records inside a pickled object are pickled with it (their cycles included).
        maker = _content_id_stand_in
    if len(_STAND_INS) > 4096:  # classes made at run time must not grow the cache forever
        _STAND_INS.clear()
        _STAND_INS.update(_BUILTIN_STAND_INS)
    _STAND_INS[kind] = maker
    return maker


def _plain_array_stand_in(value: Any) -> Any:
    # An object array's elements are objects: pickled, through this pickler, with the array.
    return _content_id_stand_in(value) if not value.dtype.hasobject else None


def _function_stand_in(function: types.FunctionType) -> Any:
    """A user's function keyed by its code (see dependencies.argument_code_state), not only by
    the module and name pickle finds it by; other functions (a library's) by those alone."""
    from . import dependencies  # imports hashing: so, once a function is hashed

    state = dependencies.argument_code_state(function)
    return None if state is None else ("\0function", function.__module__, function.__qualname__, state)


_BUILTIN_STAND_INS: dict[type, Any] = {
    types.FunctionType: _function_stand_in,
    dict: _dict_stand_in,
    set: _set_stand_in,
    frozenset: _set_stand_in,
    **{kind: None for kind in (type(None), bool, int, bytes, tuple, list, type)},
}
_STAND_INS: dict[type, Any] = dict(_BUILTIN_STAND_INS)


_ENCODERS: dict[type, Callable[[Any, bytearray], None]] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    complex: _enc_complex,
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: _enc_bytearray,
    tuple: _sequence_encoder(b"T"),
    list: _sequence_encoder(b"L"),
    set: _set_encoder(b"E"),
    frozenset: _set_encoder(b"e"),
    dict: _enc_dict,
    ByteStream: _enc_byte_stream,
    ByteSegments: _enc_byte_segments,
}
_SCALAR_TYPES = frozenset({type(None), bool, int, float, str, bytes})


def _encoder_for(value: Any) -> Callable[[Any, bytearray], None]:
    # numpy and pandas are looked up by module name so that importing them stays optional.
    module = type(value).__module__
    if module == "numpy":
        import numpy as np

        # Objects (an object array, a record with an object field, numpy 2's StringDType) are
        # pickled, element by element: their buffer holds pointers.
        if isinstance(value, np.ndarray) and not value.dtype.hasobject:
            return _enc_ndarray_subclass if type(value) is np.matrix else _enc_ndarray
        if isinstance(value, np.generic) and not value.dtype.hasobject:
            return _enc_numpy_scalar
    handler = handler_for(type(value))
    if handler is not None:
        return _handled_encoder(handler)
    return _enc_pickled


def _handled_encoder(handler: TypeHandler) -> Callable[[Any, bytearray], None]:
    encoder = _HANDLED_ENCODERS.get(handler)
    if encoder is None:

        def encoder(value: Any, out: bytearray) -> None:
            _put(out, b"H", _handled_cid(handler, value))

        if len(_HANDLED_ENCODERS) >= 4096:
            _HANDLED_ENCODERS.clear()
        _HANDLED_ENCODERS[handler] = encoder
    return encoder


#: One encoder per handler, made once: a dict of tensors asks for one per value.
_HANDLED_ENCODERS: dict[TypeHandler, Callable[[Any, bytearray], None]] = {}


def _handled_cid(handler: TypeHandler, value: Any) -> bytes:
    """The id of a value of a registered type: its type's name and its handler's key."""
    if handler.record:
        return _record_cid(handler, value)
    return _keyed_cid(handler, value)


class _Cycle(Exception):
    """A record's fields led back to a record being keyed (whose id is ``args[0]``)."""


_keying = threading.local()


def _in_a_record() -> bool:
    """Whether a record is being keyed in this thread: what leads back to it is told here."""
    return bool(getattr(_keying, "records", None))


def _record_cid(handler: TypeHandler, value: Any) -> bytes:
    """A record keyed field by field; one that its own fields lead back to is pickled whole
    (pickle follows cycles), deterministically: the record where the cycle closes."""
    active = getattr(_keying, "records", None)
    if active is None:
        active = _keying.records = set()
    if id(value) in active:
        raise _Cycle(id(value))
    active.add(id(value))
    try:
        return _keyed_cid(handler, value)
    except _Cycle as cycle:
        if cycle.args[0] != id(value):
            raise
        out = bytearray()
        _enc_pickled(value, out)
        return digest(out)
    finally:
        active.discard(id(value))


def _keyed_cid(handler: TypeHandler, value: Any) -> bytes:
    kind = type(value)
    out = bytearray(_type_name(handler, kind))
    try:
        _encode(handler.key(value), out)
    except RecursionError:
        raise _too_deep_or_the_stack(value) from None
    except _Cycle:
        raise
    except Exception as exc:  # a handler of a library we do not control may raise anything
        raise UnhashableError(f"cannot hash a value of type {kind.__qualname__}: {exc}") from exc
    return digest(out)


def _type_name(handler: TypeHandler, kind: type) -> bytes:
    """The encoded type name a handled value's id starts with, cached per handler and type."""
    try:
        return _TYPE_NAMES[handler, kind]
    except KeyError:
        pass
    if len(_TYPE_NAMES) >= 4096:  # classes made at run time must not grow the cache forever
        _TYPE_NAMES.clear()
    name = _TYPE_NAMES[handler, kind] = encode_canonical(handler.name or _class_key(kind))
    return name


_TYPE_NAMES: dict[tuple[TypeHandler, type], bytes] = {}


#: Proxies of a value whose content id they know without computing it (a stored transient
#: call's lazy output, transient.py): type -> its id, read off the proxy.
_ID_CARRIERS: dict[type, Callable[[Any], bytes]] = {}


def register_id_carrier(kind: type, cid_of: Callable[[Any], bytes], value_of: Callable[[Any], Any]) -> None:
    """Values of ``kind`` are proxies of another value: their content id is ``cid_of(v)``, known
    without computing the value (an argument passed on is hashed for free); nested in a
    container, they are encoded as their value, ``value_of(v)``.

    >>> register_id_carrier(LazyOutput, lazy_cid, force)      # doctest: +SKIP
    """
    _ID_CARRIERS[kind] = cid_of
    _ENCODERS[kind] = lambda value, out: _encode(value_of(value), out)


def _large_value_hasher(value: Any) -> Callable[[Any], bytes] | None:
    carrier = _ID_CARRIERS.get(type(value))
    if carrier is not None:
        return carrier
    if type(value).__module__ == "numpy" and _is_plain_ndarray(value):
        return _ndarray_cid
    return None


def _is_plain_ndarray(value: Any) -> bool:
    """An ndarray or a numpy subclass (a memmap: a loaded array), but not np.matrix, whose
    type is part of its id (numpy 1.x's recarray and chararray keep the ids they had)."""
    np = sys.modules["numpy"]  # (a type of numpy's is in hand: imported, and no import statement a call)

    return isinstance(value, np.ndarray) and not value.dtype.hasobject and type(value) is not np.matrix


#: Arrays below this many bytes are hashed with their header in one piece (a copy): see
#: :func:`_ndarray_cid`. Above it, the copy costs more than it saves.
ONE_PIECE_HASH_BYTES = 1 << 18


def _ndarray_cid(array: Any) -> bytes:
    """Hash dtype, shape and the raw buffer (in place unless small or not C-contiguous).

    blake3 hashes whole 1 KiB chunks side by side (SIMD), but only in aligned power-of-two
    runs counted from the start of the input: a buffer fed after its ~20-byte header starts
    mid-chunk, and most of its chunks are then hashed one at a time. Header and buffer in one
    piece hash an 8 kB array in ~5.5 µs instead of ~8.5 µs; the copy is cheaper than that up
    to a few hundred kB.
    """
    np = sys.modules["numpy"]  # (an array is in hand)

    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    header = _array_header(array)
    if array.dtype.fields is not None:
        array = _with_canonical_bools(_without_padding(array))
    kind = array.dtype.kind
    if kind in "MmVb":  # datetimes (alone or in records) export no buffer: bytes do
        array = array.reshape(-1).view(np.uint8)
        if kind == "b" and array.size and np.maximum.reduce(array) > 1:
            # Any byte but 0 is True: equal arrays (one viewing uint8 data) hash as 0s and 1s.
            array = (array != 0).view(np.uint8)
    size = array.nbytes
    if not size:
        return blake3(header).digest()
    if size < ONE_PIECE_HASH_BYTES:
        return blake3(header + memoryview(array).cast("B")).digest()
    hasher = blake3(header, max_threads=large_hash_threads() if size >= THREADED_HASH_BYTES else 1)
    hasher.update(memoryview(array).cast("B"))
    return hasher.digest()


def _without_padding(array: Any) -> Any:
    """A record array with the bytes between and after its fields left out (its header still
    names its dtype, padding included): aligned dtypes have them, and ``np.empty`` leaves in
    them whatever was in memory, so equal records would differ there."""
    from numpy.lib import recfunctions

    packed = recfunctions.repack_fields(array.dtype, recurse=True)
    return array if packed.itemsize == array.dtype.itemsize else array.astype(packed)


def _with_canonical_bools(records: Any) -> Any:
    """Records whose bool fields hold bytes other than 0 and 1 (read from binary data, where
    true may be 0xFF) as a copy holding 0s and 1s there: they equal those records, as a bool
    array holding such bytes equals the array of 0s and 1s."""
    import numpy as np

    odd = [path for path in _bool_fields(records.dtype) if _holds_other_bytes(_field(records, path))]
    if not odd:
        return records
    records = records.copy()
    for path in odd:
        flags = _field(records, path)
        flags[...] = flags.view(np.uint8) != 0
    return records


def _bool_fields(dtype: Any, outer: tuple = ()) -> list[tuple]:
    """The paths (names, outermost first) of the bool fields of a record dtype, in nested
    records and sub-arrays too."""
    paths = []
    for name in dtype.names or ():
        base = dtype.fields[name][0].base
        if base.kind == "b":
            paths.append((*outer, name))
        elif base.names is not None:
            paths.extend(_bool_fields(base, (*outer, name)))
    return paths


def _field(records: Any, path: tuple) -> Any:
    for name in path:
        records = records[name]
    return records


def _holds_other_bytes(flags: Any) -> bool:
    import numpy as np

    data = flags.view(np.uint8)
    return bool(data.size) and np.maximum.reduce(data, axis=None) > 1


def _array_header(array: Any) -> bytes:
    """What an array's id hashes before its buffer: a function of its dtype and shape only,
    built once per pair (formatting it was a tenth of an 8 kB array's id)."""
    dtype = array.dtype
    key = (dtype.str, array.shape) if dtype.fields is None else None
    header = _ARRAY_HEADERS.get(key) if key is not None else None
    if header is None:
        header = f"ndarray|{_dtype_key(array.dtype)}|{array.shape}".encode()
        if key is not None:
            if len(_ARRAY_HEADERS) >= _ARRAY_HEADER_LIMIT:
                _ARRAY_HEADERS.clear()
            _ARRAY_HEADERS[key] = header
    return header


#: ``(dtype.str, shape) -> header`` of arrays of unstructured dtypes (a structured dtype's
#: str says only its size: its header names its fields, and is built each time).
_ARRAY_HEADERS: dict[tuple, bytes] = {}
_ARRAY_HEADER_LIMIT = 256
