"""Untracked inputs: a call computed while its op tracked no files (``track_files=False``)
or no environment (``track_env=False``) says so among its dependencies.

Such a call records no data file and no variable it read, so nothing would tell, once the
op tracks them again, that the file it read has changed since: it would be served as if
checked. It records instead a *marker* per input kind it left unchecked,
``<untracked-files>:module:qualname`` (the op by the name that reaches it), whose state
holds while the op named still leaves that kind untracked. Turn tracking back on and the
marker no longer holds: the call is computed again (once), now with its inputs recorded.
Callers take the marker on, as any dependency of an inner call, so a call that used the
untracked result recomputes with it.

An op no name reaches (made inside a function) gets no marker: nothing could look it up
later. Neither does a call stored before markers existed (it is served, as before).
"""

from __future__ import annotations

from typing import Any

from .hashing import digest

__all__ = ["ENV", "FILES", "KIND", "PREFIX", "current_source", "current_state", "holds_for", "markers", "op_name", "shown"]

#: What every marker's dependency name starts with (no module name contains "<").
PREFIX = "<untracked-"
FILES = "<untracked-files>:"
ENV = "<untracked-env>:"
#: The ``kind`` markers are stored under in a dependency state.
KIND = "untracked"
#: marker prefix -> the op attribute that must stay False for the marker to hold, and what
#: reports call the input kind
_OPTIONS = {FILES: ("track_files", "files"), ENV: ("track_env", "environment variables")}


def markers(op: Any, op_name: str) -> tuple[tuple[str, bytes, str], ...]:
    """``(name, state, description)`` of the markers a call of ``op`` computed now gets;
    ``op_name``: the dependency name that reaches the op (``module:qualname``).

    >>> from types import SimpleNamespace
    >>> [m[0] for m in markers(SimpleNamespace(track_files=False, track_env=True), "m:f")]
    ['<untracked-files>:m:f']
    """
    if op.track_files and op.track_env or "<" in op_name:
        return ()
    found = []
    for prefix, (option, _) in _OPTIONS.items():
        if not getattr(op, option):
            name = prefix + op_name
            found.append((name, _state(name), current_source(name, untracked=True)))
    return tuple(found)


def current_state(name: str, resolved: Any) -> bytes | None:
    """The marker's state while ``resolved`` (what its op's name reaches now) still leaves
    the input kind untracked; None once it is an op that tracks it (the marker changed).
    Anything else the name reaches (gone, a plain function) keeps it: nothing says the
    inputs are tracked now."""
    option = _OPTIONS[_prefix(name)][0]
    return None if getattr(resolved, option, None) is True else _state(name)


def holds_for(name: str, op: Any, op_name: str) -> bool:
    """Whether ``name`` is a marker of ``op`` itself (``op_name``: the name that reaches it)
    that still holds: judged by the op whose call it is, not by what its name reaches now (an
    op made from another op's function, ``op(track_files=False)(load.fn)``, shares its name)."""
    prefix = _prefix(name)
    return name[len(prefix) :] == op_name and getattr(op, _OPTIONS[prefix][0]) is False


def current_source(name: str, untracked: bool) -> str:
    """What ``why`` shows of a marker: whether the op tracks the input kind."""
    prefix = _prefix(name)
    what = _OPTIONS[prefix][1]
    op_name = name[len(prefix) :].replace(":", ".")
    return f"op {op_name}: {what} {'not tracked' if untracked else 'tracked'}\n"


def shown(name: str) -> str:
    """A marker as reports show it: ``untracked files of op pkg.load``."""
    prefix = _prefix(name)
    return f"untracked {_OPTIONS[prefix][1]} of op {name[len(prefix):].replace(':', '.')}"


def op_name(name: str) -> str:
    """The dependency name of the op a marker is about."""
    return name[len(_prefix(name)) :]


def _prefix(name: str) -> str:
    return FILES if name.startswith(FILES) else ENV


def _state(name: str) -> bytes:
    return digest(b"untracked|" + name.encode())
