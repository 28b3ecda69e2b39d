"""How a value differs from a stored one, in a line: what ``why`` says of a near miss.

Users ask why a call recomputed when they passed "the same" config, model or frame. Its id
is a hash, and two hashes only say *that* the values differ. This finds *where*: the
attribute, key, element or column whose content differs (compared by content id, so
exactly as the call's identity compares them), down a few levels, with both values cut short.
A timestamp or random seed an object sets in ``__init__`` is the usual culprit.
"""

from __future__ import annotations

from typing import Any

from .hashing import content_id

__all__ = ["difference", "short_repr"]

#: How far into nested attributes, keys and elements the search goes, and how many differing
#: places are named.
_DEPTH = 4
_NAMED = 3
_SCANNED = 10_000


def difference(stored: Any, given: Any) -> str:
    """Where ``given`` differs from ``stored``, as a phrase.

    >>> difference({"lr": 0.1, "seed": 1}, {"lr": 0.1, "seed": 2})
    "['seed'] differs (stored 1, here 2)"
    """
    try:
        found = _places(stored, given, "", _DEPTH)
    except Exception:  # parts that refuse comparing (an object array of arrays): why still answers
        return "its content differs (its parts cannot be compared one by one)"
    if not found:
        return "its content differs (equal as far as can be shown)"
    shown = "; ".join(found[:_NAMED])
    return shown + (f"; and {len(found) - _NAMED} more" if len(found) > _NAMED else "")


def _places(stored: Any, given: Any, where: str, depth: int) -> list[str]:
    if type(stored) is not type(given):
        return [f"{where or 'it'} is a {type(given).__qualname__} here, a {type(stored).__qualname__} stored"]
    special = _array_difference(stored, given, where)
    if special is not None:
        return [special]
    parts = _comparable_parts(stored, given)
    if parts is None or depth == 0:
        return [f"{where or 'it'} differs (stored {short_repr(stored)}, here {short_repr(given)})"]
    if isinstance(parts, str):
        return [f"{where}{parts}"]
    found: list[str] = []
    for label, old, new in parts[:_SCANNED]:
        if _same(old, new):
            continue
        # Places past the few named are counted, not explained.
        found += _places(old, new, where + label, depth - 1) if len(found) < _NAMED else [where + label]
    return found


def _comparable_parts(stored: Any, given: Any) -> list[tuple[str, Any, Any]] | str | None:
    """Pairs of parts to compare, a phrase when their shapes differ, or None for a leaf."""
    if isinstance(stored, dict):
        added, removed = given.keys() - stored.keys(), stored.keys() - given.keys()
        if added or removed:
            return _keys_phrase(added, removed)
        return [(f"[{key!r}]", stored[key], given[key]) for key in given]
    if isinstance(stored, (list, tuple)):
        if len(stored) != len(given):
            return f" has {len(given)} items here, {len(stored)} stored"
        return [(f"[{i}]", old, new) for i, (old, new) in enumerate(zip(stored, given))]
    if type(stored).__module__.partition(".")[0] == "pandas" and hasattr(stored, "to_numpy"):
        return _pandas_parts(stored, given)
    state, other = getattr(stored, "__dict__", None), getattr(given, "__dict__", None)
    if isinstance(state, dict) and isinstance(other, dict) and (state or other):
        parts = _comparable_parts(state, other)
        return [(f".{label[2:-2]}", old, new) for label, old, new in parts] if isinstance(parts, list) else parts
    return None


def _pandas_parts(stored: Any, given: Any) -> list[tuple[str, Any, Any]] | str:
    """A frame by its columns (then its index), a series or index by its values: their
    attributes are internals (a block manager, a weakref) that mean nothing to the user."""
    if getattr(stored, "ndim", 1) != 2:
        index = [(".index", stored.index.to_numpy(), given.index.to_numpy())] if hasattr(stored, "index") else []
        return [(".values", stored.to_numpy(), given.to_numpy()), *index]
    columns = _comparable_parts(
        {name: stored[name].to_numpy() for name in stored.columns},
        {name: given[name].to_numpy() for name in given.columns},
    )
    if isinstance(columns, str) or columns is None:
        return columns or " differs"
    return [*columns, (".index", stored.index.to_numpy(), given.index.to_numpy())]


def _keys_phrase(added: set, removed: set) -> str:
    said = [f"{k!r} only here" for k in sorted(map(repr, added))] + [f"{k!r} only stored" for k in sorted(map(repr, removed))]
    return " has other keys: " + ", ".join(said[:_NAMED])


def _array_difference(stored: Any, given: Any, where: str) -> str | None:
    """For numpy arrays: dtype, shape, or how many elements differ and the first."""
    if type(stored).__module__ != "numpy" or not hasattr(stored, "shape"):
        return None
    label = where or "the array"
    if stored.dtype != given.dtype or stored.shape != given.shape:
        return f"{label} is {given.dtype}{list(given.shape)} here, {stored.dtype}{list(stored.shape)} stored"
    import numpy as np

    unequal = _unequal(stored, given)
    count = int(np.count_nonzero(unequal))
    if not count:
        return f"{label} differs in its bytes (equal values: -0.0 and 0.0, or NaNs of other bits)"
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(unequal)), stored.shape))
    return (f"{label}: {count} of {stored.size} elements differ, first at {list(first)} "
            f"(stored {short_repr(_element(stored, first))}, here {short_repr(_element(given, first))})")


def _unequal(stored: Any, given: Any) -> Any:
    """Where two arrays differ, as one boolean mask: an array of 1e8 elements may be stored,
    so no temporary wider than that mask (an index per differing element was 16x its size)."""
    import numpy as np

    unequal = np.asarray(stored != given)  # the operator, unlike the ufunc, compares records too
    missing = {"f": np.isnan, "c": np.isnan, "m": np.isnat, "M": np.isnat}.get(stored.dtype.kind)
    if missing is not None:  # NaN == NaN (NaT == NaT) here: both missing is no difference
        both_nan = missing(stored)
        np.logical_and(both_nan, missing(given), out=both_nan)
        np.logical_and(unequal, np.logical_not(both_nan, out=both_nan), out=unequal)
    return unequal


def _element(array: Any, at: tuple[int, ...]) -> Any:
    element = array[at]  # an object array's element is the object itself, without .item()
    return element.item() if type(element).__module__ == "numpy" else element


def _same(old: Any, new: Any) -> bool:
    try:
        return content_id(old) == content_id(new)
    except Exception:  # a part that cannot be hashed alone: compare what it holds
        return False


def short_repr(value: Any, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters with an ellipsis; an object with Python's
    default repr (its address, which means nothing to a reader) shown by its attributes.

    >>> short_repr("a" * 50, 12)
    "'aaaaaaaaaa…"
    """
    try:
        text = repr(value)
        state = getattr(value, "__dict__", None)
        if type(value).__repr__ is object.__repr__ and isinstance(state, dict):
            text = f"{type(value).__qualname__}({', '.join(f'{k}={v!r}' for k, v in state.items())})"
    except RecursionError:  # nested too deeply for repr: reprlib stops after a few levels
        import reprlib

        text = reprlib.repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"
