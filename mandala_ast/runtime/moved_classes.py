"""Classes moved or renamed since objects of theirs were stored: how such objects are keyed,
and how stored values that name a class's old place load.

An object of a user's class is keyed through pickle, which names the class by its module and
qualified name (hashing.py). Once the class moved, a method op's ``self`` (or any argument
holding such objects) would be a new argument, and every stored call on one computed again,
though ``rename_op`` kept those calls. So ``rename_op`` of a method op whose class moved, and
``rename_helper`` of a class, log the class's move (``renames``, kind ``class``: renames.py),
and each Storage opening the file tells this module, for the whole process, as content ids
are process-wide:

- objects of a moved class are keyed under the name they were first stored under (through a
  chain of moves), :func:`keyed_name`; a class standing at an old name again is other code,
  keyed apart (as an argument's old name taken again is: renames.py's ``_FRESH``);
- a stored pickle naming an old place loads the class where it is now, :func:`loads`: even
  where the old place imports a class again (a new one of the old name), whose objects are
  stored naming it through :func:`class_at` instead (:class:`Pickler`), so that the two load
  apart.

Another storage this process opens keys such objects under the old name too: its calls made
here miss once in a process that does not open the storage that moved the class (computed
again, never a stale result).
"""

from __future__ import annotations

import importlib
import io
import pickle
from typing import Any

__all__ = ["Pickler", "any_moved", "class_at", "keyed_name", "loads", "note_moves"]

#: (module, qualname) of a class now -> the (module, qualname) its objects are keyed under.
_KEYED_AS: dict[tuple[str, str], tuple[str, str]] = {}
#: An old (module, qualname) -> the one the class moved to from there.
_MOVED_TO: dict[tuple[str, str], tuple[str, str]] = {}
#: Appended to the qualname of a class standing at an old place: not the class that moved.
_FRESH = "\0new"


def note_moves(moves: list[tuple[str, str]]) -> bool:
    """Take in a storage's moves, ``[("pipeline:Model", "models:Model"), ...]`` in the order
    they were made; True if any is news to this process.

    >>> note_moves([("a:Model", "b:Model"), ("b:Model", "c.d:Net")])
    True
    >>> keyed_name(("c.d", "Net")), keyed_name(("b", "Model")) == ("b", "Model" + _FRESH)
    (('a', 'Model'), True)
    """
    keyed: dict[tuple[str, str], tuple[str, str]] = {}
    moved_to: dict[tuple[str, str], tuple[str, str]] = {}
    for old_name, new_name in moves:
        old, new = _split(old_name), _split(new_name)
        identity = keyed.get(old, old)
        keyed.pop(new, None)
        if identity != new:  # (moved back where it was first: keyed as itself)
            keyed[new] = identity
        keyed[old] = (old[0], old[1] + _FRESH)
        moved_to.pop(new, None)
        moved_to[old] = new
    touched = {_split(name) for move in moves for name in move}
    return _merge(_KEYED_AS, keyed, touched) | _merge(_MOVED_TO, moved_to, touched)


def _merge(known: dict, found: dict, touched: set) -> bool:
    """Set ``known`` to ``found`` for the names a storage's moves touched; True if that changed it."""
    news = False
    for name in touched:
        if known.get(name) != found.get(name):
            news = True
            if name in found:
                known[name] = found[name]
            else:
                del known[name]
    return news


def any_moved() -> bool:
    """Whether this process knows of a moved class (hashing takes its fast path if not)."""
    return bool(_KEYED_AS)


def keyed_name(name: tuple[str, str]) -> tuple[str, str] | None:
    """The (module, qualname) objects of the class at ``name`` are keyed under, if not that."""
    return _KEYED_AS.get(name)


def loads(data: bytes) -> Any:
    """``pickle.loads``, finding a class named by a place it moved from where it is now."""
    return _Unpickler(io.BytesIO(data)).load()


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        now = _now_at((module, name))
        if now is not None:  # (not what stands at the old place now: that is pickled apart)
            try:
                return super().find_class(*now)
            except (ImportError, AttributeError):
                pass
        return super().find_class(module, name)


class Pickler(pickle.Pickler):
    """A pickler that names a class standing where another moved from by :func:`class_at`:
    pickle's own reference (its module and name) loads as the moved class (:func:`loads`)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type):
            name = (obj.__module__, obj.__qualname__)
            keyed = _KEYED_AS.get(name)
            if keyed is not None and keyed[1].endswith(_FRESH):
                return class_at, name
        return NotImplemented


def class_at(module: str, qualname: str) -> type:
    """The class at ``module:qualname`` now (what :class:`Pickler` writes for a class standing
    at an old place: stored pickles name this function, so it keeps its name)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def _now_at(name: tuple[str, str]) -> tuple[str, str] | None:
    """Where the class last moved to from ``name`` (None: it did not move)."""
    seen = {name}
    while name in _MOVED_TO and _MOVED_TO[name] not in seen:
        name = _MOVED_TO[name]
        seen.add(name)
    return None if len(seen) == 1 else name


def _split(name: str) -> tuple[str, str]:
    module, _, qualname = name.partition(":")
    return module, qualname
