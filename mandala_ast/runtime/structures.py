"""Elementwise data structures: ``MList``, ``MDict`` and ``MSet`` annotations.

An op input or output annotated ``MList[T]``, ``MDict[str, T]`` or ``MSet[T]`` is stored
element by element: each element is a value of its own (one ``vals`` row, shared by every
collection that holds it) and the collection's own row (codec ``mlist``/``mdict``/``mset``)
holds only its elements' content ids. At run time the values stay plain ``list``/``dict``/
``set``, and a collection's content id is ``content_id(value)`` as for any value, so
annotating an op changes how its values are stored, never which calls it matches.

Where each element of a structure *output* came from is recorded as a call of one internal op,
``mandala_ast.__item__``, in the ordinary tables, so provenance, queries, deletion and pictures
see elements without special cases. Per element of output ``index`` of the call with row id
``producer_row_id``:

- inputs ``("struct", struct cid, src_call=producer_row_id, src_index=index)`` and
  ``("key", key cid, NULL, NULL)``; output 0 is the element. The key is the index for a list,
  the key for a dict and the element itself for a set;
- history id ``item_history_id(producer_row_id, index, key_cid)``
  ``= digest(b"item|" + ITEM_VERSION_ID + b"|" + producer_row_id + b"|%d|" % index + key_cid)``;
- content id ``cid = item_content_id(struct_cid, key_cid)``
  ``= digest(b"item|" + ITEM_VERSION_ID + b"|" + struct_cid + b"|" + key_cid)``;
- row id ``item_row_id(history_id) = digest(b"row|" + history_id + b"|")``: the row id of any
  call (``row|history id|deps_id``) with an empty ``deps_id``; ``version_id = ITEM_VERSION_ID``;
  ``exact`` is the producing call's.

Dicts are stored elementwise when every key is a ``str`` or an ``int`` (the keys are kept as
JSON); a dict with other keys is stored whole, with one warning per op, and gets no item calls.
"""

from __future__ import annotations

import ast
import inspect
import json
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from .._errors import MandalaWarning, ValueEncodingError
from . import codecs, parsing
from .codecs import EncodedValue
from .hashing import content_id, digest

__all__ = [
    "CODECS",
    "ELEMENTS_MARKED_INEXACT_SINCE",
    "ITEM_OP_NAME",
    "ITEM_VERSION_ID",
    "EncodedStructure",
    "MDict",
    "MList",
    "MSet",
    "annotation_of",
    "check_outputs",
    "decode",
    "element_cids",
    "encode",
    "encode_outputs",
    "input_kinds",
    "item_call",
    "item_content_id",
    "item_history_id",
    "item_op_rows",
    "item_row_id",
    "kind_of",
    "output_kinds",
    "parse",
]

T = TypeVar("T")
K = TypeVar("K")

#: The internal op whose calls record "element ``key`` of a structure output".
ITEM_OP_NAME = "mandala_ast.__item__"
ITEM_VERSION_ID = digest(b"op|mandala_ast.__item__|0|structure")
#: Until this moment (2026-12-06 20:43:30 UTC, when the compiler started to mark them), compiled
#: code recorded a call given an element of a stored structure (``for e in xs: f(e)``) exact,
#: with the element as a raw input: in a call stored before it, such an input may be an element,
#: and is matched to one by content. An exact call stored since took its raw inputs as literals
#: (or values the compiler proves raw): no element is their source, however equal.
ELEMENTS_MARKED_INEXACT_SINCE = 1796589810.0
#: Codec of a structure's own row, by kind (the kinds are "list", "dict" and "set").
CODECS = {"list": "mlist", "dict": "mdict", "set": "mset"}
_KIND_OF_CODEC = {codec: kind for kind, codec in CODECS.items()}
_TYPES = {"list": list, "dict": dict, "set": set}
_ANNOTATIONS = {"list": "MList", "dict": "MDict", "set": "MSet"}
_CID_BYTES = 32


class _Marker:
    """Shared behaviour of the annotation markers: they are never instantiated."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{cls.__name__} is an annotation for op inputs and outputs; the values are plain")


class MList(_Marker, Generic[T]):
    """Annotation: a list whose elements are stored one by one (values stay plain lists).

    >>> from mandala_ast import op, MList
    >>> @op
    ... def squares(n: int) -> MList[int]:
    ...     return [i * i for i in range(n)]
    >>> squares(3)
    [0, 1, 4]
    """


class MDict(_Marker, Generic[K, T]):
    """Annotation: a dict whose values are stored one by one; keys must be ``str`` or ``int``.

    >>> from mandala_ast import op, MDict
    >>> @op
    ... def scores(names: list) -> MDict[str, int]:
    ...     return {name: len(name) for name in names}
    """


class MSet(_Marker, Generic[T]):
    """Annotation: a set whose elements are stored one by one (values stay plain sets).

    >>> from mandala_ast import op, MSet
    >>> @op
    ... def letters(word: str) -> MSet[str]:
    ...     return set(word)
    """


_KINDS = {MList: "list", MDict: "dict", MSet: "set"}
_KIND_NAMES = {"MList": "list", "MDict": "dict", "MSet": "set"}


# -- ids ---------------------------------------------------------------------------------------


def item_history_id(producer_row_id: bytes, index: int, key_cid: bytes) -> bytes:
    """History id of the item call for element ``key_cid`` of output ``index`` of
    the call whose row id is ``producer_row_id``.

    >>> len(item_history_id(bytes(32), 0, bytes(32)))
    32
    """
    return digest(b"item|%s|%s|%d|%s" % (ITEM_VERSION_ID, producer_row_id, index, key_cid))


def item_content_id(struct_cid: bytes, key_cid: bytes) -> bytes:
    """Content id (``cid``) of the item call for element ``key_cid`` of structure ``struct_cid``.

    >>> item_content_id(bytes(32), bytes(32)) != item_content_id(bytes(32), b"\\1" * 32)
    True
    """
    return digest(b"item|%s|%s|%s" % (ITEM_VERSION_ID, struct_cid, key_cid))


def item_row_id(history_id: bytes) -> bytes:
    """Row id of an item call: any call's row id, with an empty ``deps_id``.

    >>> item_row_id(bytes(32)) == digest(b"row|" + bytes(32) + b"|")
    True
    """
    return digest(b"row|%s|" % history_id)


def item_op_rows(now: float) -> dict[str, tuple]:
    """The ``ops`` and ``versions`` rows that register the item op (insert once per storage).

    >>> item_op_rows(0.0)["versions"][:2] == (ITEM_VERSION_ID, ITEM_OP_NAME)
    True
    """
    signature = json.dumps({"signature": "(struct, key)", "outputs": ["output"]})
    return {
        "ops": (ITEM_OP_NAME, 1, signature),
        "versions": (ITEM_VERSION_ID, ITEM_OP_NAME, 0, now, None, None),
    }


def item_call(
    producer_row_id: bytes,
    index: int,
    struct_cid: bytes,
    key_cid: bytes,
    element_cid: bytes,
    packed_output: bytes,
    exact: bool,
    now: float,
) -> Iterator[tuple[str, tuple]]:
    """``(table, row)`` pairs of one item call (``packed_output``: runtime/packing.py).

    >>> tables = [t for t, _ in item_call(bytes(32), 0, bytes(32), bytes(32), bytes(32), b"", True, 0.0)]
    >>> tables
    ['calls', 'inputs', 'inputs', 'outputs']
    """
    history_id = item_history_id(producer_row_id, index, key_cid)
    row_id = item_row_id(history_id)
    cid = item_content_id(struct_cid, key_cid)
    yield "calls", (row_id, history_id, cid, ITEM_VERSION_ID, b"", now, 0.0, int(exact), packed_output)
    yield "inputs", (row_id, "struct", struct_cid, producer_row_id, index)
    yield "inputs", (row_id, "key", key_cid, None, None)
    yield "outputs", (row_id, 0, element_cid)


# -- annotations -------------------------------------------------------------------------------


def kind_of(annotation: Any) -> str | None:
    """``"list"``, ``"dict"`` or ``"set"`` for an MList/MDict/MSet annotation (object or text).

    >>> kind_of(MList[int]), kind_of("ma.MDict[str, int]"), kind_of(list)
    ('list', 'dict', None)
    """
    if isinstance(annotation, str):
        return _kind_of_node(_parse(annotation))
    try:
        return _KINDS.get(typing.get_origin(annotation) or annotation)
    except TypeError:  # an unhashable annotation object is not one of ours
        return None


def input_kinds(fn: Callable, signature: inspect.Signature) -> dict[str, str]:
    """Structure parameters of ``fn``: name -> kind (``*args``/``**kwargs`` never are).

    >>> def f(xs: MList[int], n: int, **kw: MList[int]): ...
    >>> input_kinds(f, inspect.signature(f))
    {'xs': 'list'}
    """
    hints = _hints(fn)
    kinds = {}
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        kind = kind_of(hints.get(name, param.annotation))
        if kind is not None:
            kinds[name] = kind
    return kinds


def output_kinds(fn: Callable, nout: int) -> dict[int, str]:
    """Structure outputs of ``fn``: output index -> kind, from its return annotation.

    >>> def f() -> tuple[MList[int], int]: ...
    >>> output_kinds(f, 2)
    {0: 'list'}
    """
    annotation = _hints(fn).get("return", inspect.Signature.empty)
    if annotation is inspect.Signature.empty:
        return {}
    if nout == 1:
        kind = kind_of(annotation)
        return {} if kind is None else {0: kind}
    items = _tuple_items(annotation)
    if items is None or len(items) != nout:
        return {}
    return {i: kind for i, item in enumerate(items) if (kind := kind_of(item)) is not None}


def _hints(fn: Callable) -> dict[str, Any]:
    # Resolved at first use, not at decoration: annotations may name things defined later.
    # When they cannot be resolved (a name that exists nowhere), the text still says MList[.
    try:
        return typing.get_type_hints(fn)
    except Exception:  # NameError, TypeError for odd callables, SyntaxError in a string...
        return dict(getattr(fn, "__annotations__", None) or {})


def _tuple_items(annotation: Any) -> Sequence[Any] | None:
    if isinstance(annotation, str):
        node = _parse(annotation)
        if isinstance(node, ast.Subscript) and _base_name(node.value) in ("tuple", "Tuple"):
            return node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return None
    if typing.get_origin(annotation) is tuple:
        return typing.get_args(annotation)
    return None


def _parse(text: str) -> ast.expr | None:
    try:
        return parsing.parse(text, mode="eval").body
    except SyntaxError:
        return None


def _kind_of_node(node: Any) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "MList[int]" quoted
        return kind_of(node.value)
    if isinstance(node, ast.Subscript):
        node = node.value
    return _KIND_NAMES.get(_base_name(node)) if isinstance(node, ast.expr) else None


def _base_name(node: ast.expr) -> str:
    """``MList`` for ``MList``, ``ma.MList`` or ``mandala_ast.MList``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return getattr(node, "id", "")


# -- encoding ----------------------------------------------------------------------------------


class EncodedStructure(EncodedValue):
    """A structure's own row (``codec`` ``mlist``/``mdict``/``mset``, ``data`` its element
    content ids) together with what the storage writes beside it.

    ``cids`` are the element content ids in order, ``keys`` the dict keys (None otherwise),
    and ``elements`` the encoding of each distinct element (empty when parsed from a stored
    row, whose elements are stored already).
    """

    __slots__ = ("cids", "elements", "keys", "kind")

    def __init__(self, kind: str, data: bytes, cids: list[bytes], keys: list | None, elements: dict) -> None:
        super().__init__(CODECS[kind], data)
        self.kind, self.cids, self.keys, self.elements = kind, cids, keys, elements

    def items(self) -> Iterator[tuple[bytes, EncodedValue | None, bytes, EncodedValue | None]]:
        """``(key cid, encoded key or None, element cid, encoded element or None)`` per element.

        A set's key is its element, so it has no encoding of its own.
        """
        if self.kind == "set":
            for cid in self.cids:
                yield cid, None, cid, self.elements.get(cid)
            return
        keys = range(len(self.cids)) if self.keys is None else self.keys
        for key, cid in zip(keys, self.cids):
            yield content_id(key), codecs.encode(key), cid, self.elements.get(cid)


def annotation_of(kind: str) -> str:
    """The annotation that declares a structure of ``kind``.

    >>> annotation_of("dict")
    'MDict'
    """
    return _ANNOTATIONS[kind]


def check_outputs(op_name: str, kinds: dict[int, str], outputs: Sequence[Any]) -> None:
    """Raise :class:`ValueEncodingError` unless each structure output has its declared type.

    >>> check_outputs("m.f", {0: "list"}, ([1, 2],))
    """
    for index, kind in kinds.items():
        value = outputs[index]
        if type(value) is not _TYPES[kind]:
            raise ValueEncodingError(
                f"op {op_name}, output {index}: annotated {_ANNOTATIONS[kind]}[...] but returned "
                f"a {type(value).__qualname__}; return a plain {kind} (its elements are stored one by one)"
            )


def encode_outputs(kinds: dict[int, str], outputs: Sequence[Any], op_name: str = "") -> list[EncodedValue]:
    """Encodings of an op's outputs: structures element by element, the others whole."""
    return [
        encode(kinds[i], value, op_name) if i in kinds else codecs.encode(value)
        for i, value in enumerate(outputs)
    ]


def encode(kind: str, value: Any, op_name: str = "") -> EncodedValue:
    """The encoding of a structure value; a value of another type (an ``MList`` argument
    given a tuple) or a dict with keys JSON cannot keep is encoded whole.

    >>> encode("list", [1, 2]).codec, encode("list", (1, 2)).codec
    ('mlist', 'pickle')
    """
    if type(value) is not _TYPES[kind]:
        return codecs.encode(value)
    keys = list(value) if kind == "dict" else None
    if keys is not None and not all(type(key) in (str, int) for key in keys):
        _warn_whole_dict(op_name, keys)
        return codecs.encode(value)
    members = list(value.values() if kind == "dict" else value)
    if _leads_back(value, members):  # its row would name itself as an element: pickle it
        return codecs.encode(value)
    cids = list(map(content_id, members))
    elements: dict[bytes, EncodedValue] = {}
    for cid, member in zip(cids, members):
        if cid not in elements:
            elements[cid] = codecs.encode(member)
    if kind == "set":
        cids.sort()  # canonical order: equal sets have equal rows
    data = b"".join(cids) if keys is None else _dict_data(keys, cids)
    return EncodedStructure(kind, data, cids, keys, elements)


_CONTAINERS = (list, dict, tuple, set, frozenset)


def _leads_back(value: Any, members: list) -> bool:
    """Whether a member holds ``value`` itself, at any depth (a node list whose entries list
    their neighbours). Such a structure is keyed through canonical pickle, and so is the member
    that leads back: their ids can be equal, and a row naming itself as its element never
    finishes loading. Walked without recursion; nothing to walk for members that are no
    containers (numbers, strings, arrays)."""
    stack = [member for member in members if isinstance(member, _CONTAINERS)]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if item is value:
            return True
        if id(item) in seen:
            continue
        seen.add(id(item))
        parts = [part for pair in item.items() for part in pair] if isinstance(item, dict) else item
        stack.extend(part for part in parts if isinstance(part, _CONTAINERS))
    return False


def _dict_data(keys: list, cids: list[bytes]) -> bytes:
    # JSON never writes a raw NUL byte, so the first one ends the keys.
    return json.dumps(keys).encode() + b"\0" + b"".join(cids)


_warned: set[str] = set()


def _warn_whole_dict(op_name: str, keys: list) -> None:
    if op_name in _warned:
        return
    _warned.add(op_name)
    bad = next(key for key in keys if type(key) not in (str, int))
    warnings.warn(
        f"op {op_name or '?'}: an MDict has a key of type {type(bad).__qualname__} ({bad!r:.40}); "
        "only str and int keys are stored elementwise, so this dict is stored whole",
        MandalaWarning,
        stacklevel=4,
    )


# -- decoding ----------------------------------------------------------------------------------


def element_cids(codec: str, data: bytes) -> list[bytes]:
    """Content ids of the elements a structure row refers to (garbage collection keeps them).

    >>> element_cids("mlist", bytes(64)) == [bytes(32), bytes(32)]
    True
    """
    if codec == "mdict":
        data = data.partition(b"\0")[2]
    return [bytes(data[i : i + _CID_BYTES]) for i in range(0, len(data), _CID_BYTES)]


def parse(codec: str, data: bytes) -> EncodedStructure:
    """A stored structure row as an :class:`EncodedStructure` (without element encodings)."""
    keys = json.loads(data.partition(b"\0")[0]) if codec == "mdict" else None
    return EncodedStructure(_KIND_OF_CODEC[codec], bytes(data), element_cids(codec, data), keys, {})


def decode(codec: str, data: bytes, load_many: Callable[[list[bytes]], list[Any]]) -> Any:
    """A structure from its row; ``load_many(cids)`` loads the elements (in bulk).

    >>> decode("mlist", bytes(32), lambda cids: ["x"] * len(cids))
    ['x']
    """
    values = load_many(element_cids(codec, data))
    if codec == "mlist":
        return values
    if codec == "mset":
        return set(values)
    return dict(zip(json.loads(data.partition(b"\0")[0]), values))

