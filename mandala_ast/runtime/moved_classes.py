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
- a stored pickle naming an old place that imports no class any more loads the class where it
  is now, :func:`loads`.

Another storage this process opens keys such objects under the old name too: its calls made
here miss once in a process that does not open the storage that moved the class (computed
again, never a stale result).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

__all__ = ["any_moved", "keyed_name", "loads", "note_moves"]

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
    """``pickle.loads``, finding a class gone from an old place where it moved to."""
    return _Unpickler(io.BytesIO(data)).load()


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            now = _now_at((module, name))
            if now is None:
                raise
            return super().find_class(*now)


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
