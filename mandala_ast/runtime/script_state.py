"""State the script sets before an op runs, told apart from state the op bodies move.

Module or class state that the user's functions write (``global K; K = v`` in ``set_k``, a
cache ``CACHE[k] = v``) counts by the text that defines it (definitions.py): its value moves
as op calls run, and a new process, which does not repeat those calls (hits run no body),
would find another value and compute every call again. Yet ``set_k(7)`` called by the script
(code outside any op body) before the op is an input like an argument, and counted by the
text alone, the calls stored with ``K = 5`` were served for it.

So this process remembers, for each such state, the value it held where it was last seen:
as an op body left it (``moved``: code that writes it ran in the body), or as it was looked
at outside any op body. Looked at outside op bodies again and found holding another value,
it was set from outside: that value is the state's *setting*, which counts beside the text
(``setting``), until it is set again. Values only op bodies gave it leave the setting alone.
First seen holding another value than its module's own literal (``K = 3``), it was set
before any op looked (or the module's line is no literal: then its value counts as set).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["Guard", "changes", "looked_at", "moved", "seen", "setting"]

#: state name (``module:qualname``) -> (the value where last seen, its content id or None
#: until asked: op bodies moved it, and hashing a cache after every body would cost)
_left: dict[str, tuple[Any, bytes | None]] = {}
#: state name -> (content id, text shown in reports) of the value code outside op bodies set
_set: dict[str, tuple[bytes, str]] = {}
#: How many times a setting changed in this process: what was worked out under the old one
#: (valid calls found, dependency states, warm hits) is dropped when this moves.
changes = 0

#: A value's content id (None when it has none).
Content = Callable[[Any], "bytes | None"]


def setting(name: str, value: Any, defined: Callable[[], bytes | None], content: Content,
            shown: Callable[[Any], str], outside: bool, in_place: bool = False) -> tuple[bytes, str] | None:
    """What code outside the op bodies set state ``name`` to, seen holding ``value`` now;
    None while it holds what its module or the op bodies gave it. ``defined``: the content
    id of its module's own literal value (None: no literal). ``outside``: whether this thread
    runs no op body now; inside one, a value other than where it was last seen may be the
    body's doing, so only a state never seen yet is looked at. ``in_place``: whether to look
    into the same object too (``CONFIG["lr"] = 0.2``: hashed, so at a block's entry only)."""
    known = _left.get(name)
    if known is None:
        cid = content(value)
        _left[name] = (value, cid)
        _seen(name)
        if cid is None or cid != defined():
            _set[name] = (cid or b"", shown(value))
    elif outside and (known[0] is not value or in_place):
        _look_again(name, value, known, defined, content, shown)
    return _set.get(name)


def _look_again(name: str, value: Any, known: tuple[Any, bytes | None], defined: Callable[[], bytes | None],
                content: Content, shown: Callable[[Any], str]) -> None:
    """``name`` holds another object than where it was last seen, or maybe the same one
    changed: set from outside the op bodies, unless the two are equal (``K = 7`` computed
    again). The same object as op bodies left it (its content not known) counts as theirs."""
    global changes
    if known[0] is value and known[1] is None:  # (not hashed for nothing: the bodies move it again)
        return
    cid = content(value)
    _left[name] = (value, cid)
    if cid == (known[1] if known[1] is not None else content(known[0])):
        return
    new = (cid or b"", shown(value))
    if cid is not None and cid == defined():  # set back to its module's own value
        changed = _set.pop(name, None) is not None
    else:
        changed, _set[name] = _set.get(name) != new, new
    if changed:
        changes += 1


def moved(name: str, value: Any) -> None:
    """An op body ran code that writes state ``name``, which now holds ``value``: its value
    as op bodies left it, which a new process does not repeat (its setting stays)."""
    new = name not in _left
    _left[name] = (value, None)
    if new:
        _seen(name)


def looked_at(in_place: bool) -> list[tuple[str, Any]]:
    """``(name, value)`` of each state seen so far that holds another object now than where
    it was last seen (``in_place``: each, as the same object may have changed, but those the
    op bodies moved last: see _look_again). Asked at each call of a block's own code: by
    identity, the names parsed once (seen)."""
    found = []
    for name, module_name, path in seen:
        value = sys.modules.get(module_name, _GONE)
        for part in path:
            value = getattr(value, part, _GONE)
        last = _left[name]
        # (the same object: unchanged, unless looked into; not even then as op bodies left it)
        if value is not _GONE and (value is not last[0] or in_place and last[1] is not None):
            found.append((name, value))
    return found


def _seen(name: str) -> None:
    """Note a state seen for the first time (in _left already) among those looked_at goes
    through."""
    global seen
    module_name, _, qualname = name.partition(":")
    seen = (*seen, (name, module_name, tuple(qualname.split("."))))


#: (name, its module's name, the attributes leading to it) of each state in _left, seen so
#: far: a tuple replaced, never changed, as other threads may be going through it
seen: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


class Guard:
    """What the state a call read held when its result was kept for warm hits: ``held``,
    ``(owner, attribute, value)`` each (a module and ``K``, a class and ``K``). It holds while
    no setting changed and each attribute still holds the same object: a value set since
    (``set_k(7)``) sends the call down the full path, which tells who set it."""

    __slots__ = ("changes", "held")

    def __init__(self, held: tuple[tuple[Any, str, Any], ...]) -> None:
        self.changes, self.held = changes, held

    def holds(self) -> bool:
        if self.changes != changes:
            return False
        for owner, attribute, value in self.held:
            if getattr(owner, attribute, _GONE) is not value:
                return False
        return True


_GONE = object()
#: A guard that never holds: state whose owner cannot be found now.
NEVER = Guard(((None, "__never__", object()),))
