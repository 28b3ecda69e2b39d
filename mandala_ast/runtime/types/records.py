"""Dataclasses, NamedTuples and attrs classes: keyed field by field.

Each field (and any attribute set outside the fields) is hashed as a value of its own, so arrays inside a record take the fast path (in
place, no pickle) and a dict field is keyed by content, not by insertion order. Recognised by
shape (``__dataclass_fields__``, ``_fields`` on a tuple, ``__attrs_attrs__``), so no import of
``dataclasses`` or ``attrs`` is needed to tell. A record whose fields lead back to itself (a
node and its parent) is hashed through canonical pickle instead, which follows cycles. Stored
with pickle, which they support as is.
"""

from __future__ import annotations

from typing import Any

from . import TypeHandler

__all__ = ["handler"]


def handler(kind: type) -> TypeHandler | None:
    """A field-by-field handler for ``kind`` if it is a record class, else None."""
    if isinstance(getattr(kind, "__dataclass_fields__", None), dict):
        return TypeHandler(kind, _dataclass_key, record=True)
    if issubclass(kind, tuple) and isinstance(getattr(kind, "_fields", None), tuple):
        return TypeHandler(kind, _namedtuple_key, record=True)
    if getattr(kind, "__attrs_attrs__", None) is not None:
        return TypeHandler(kind, _attrs_key, record=True)
    return None


def _dataclass_key(value: Any) -> tuple:
    # Every field, including compare=False ones: a stored value must come back whole.
    names = value.__dataclass_fields__
    return (tuple((name, getattr(value, name)) for name in names if hasattr(value, name)), _extra(value, names))


def _namedtuple_key(value: Any) -> tuple:
    return tuple(zip(value._fields, value))


def _attrs_key(value: Any) -> tuple:
    names = {a.name for a in value.__attrs_attrs__}
    fields = tuple((a.name, getattr(value, a.name)) for a in value.__attrs_attrs__ if hasattr(value, a.name))
    return (fields, _extra(value, names))


def _extra(value: Any, fields: Any) -> dict:
    """Attributes that are not fields (set by a method, such as a model's fitted state): they
    make two records unequal as surely as fields do. A dict, keyed by content, not order."""
    state = getattr(value, "__dict__", None)
    if not state:
        return {}
    return {name: item for name, item in state.items() if name not in fields}
