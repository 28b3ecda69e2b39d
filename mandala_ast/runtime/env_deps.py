"""Environment dependencies: the environment variables an op body reads are part of what its
result depends on.

``os.environ["DATA_ROOT"]``, ``os.environ.get(...)``, ``os.getenv(...)`` and ``"DEBUG" in
os.environ`` all go through the one ``os.environ`` object. The first time an op body runs with
tracking on, that object's class is swapped (for the life of the process) for a subclass that
notes the variables read while — and only while — an op body runs in this thread; after the
body each becomes a dependency of the call, beside its code and the files it read
(file_deps.py). In a new process whose variable differs, the call is stale as if its code had
changed, and ``why`` names the variable. (Swapping the class of the object, not the object,
also covers modules that did ``from os import environ`` before: they hold the same object.)

What is recorded, per variable: ``<env>:NAME`` when the body read its value (its state is a
hash of the name and value, or "unset"); ``<env-set>:NAME`` when it only asked whether the
variable is set (``"DEBUG" in os.environ``: a new value recomputes nothing, appearing or
disappearing does). Values are never stored nor shown: ``why`` shows a hash, since variables
hold tokens and passwords (a hash of a short secret can still be guessed by trial: an op that
reads one can say ``@op(track_env=False)``).

Not dependencies:

- variables the body set or deleted before reading them (``os.environ["X"] = ...``): what it
  then reads, it wrote; the write is the body's effect on the process, not an input;
- reads made while iterating the environment (``dict(os.environ)``, ``os.environ.copy()``,
  ``{**os.environ}``, ``.items()``): the whole environment holds variables that differ in
  every shell and session (``OLDPWD``, ``SHLVL``, ``_``, ``TERM_SESSION_ID``), so its calls
  would never be hits again; a body that hands the whole environment to a subprocess should
  read the variables the child needs itself;
- reads by the standard library, site-packages and mandala_ast (``expanduser`` reading
  ``HOME``, ``subprocess`` reading ``PATH``, ``shutil.get_terminal_size`` reading ``COLUMNS``,
  a library's tuning knobs): only the user's own code — the op and the helpers it calls — is
  followed, as for code dependencies; a library's reads are mostly about where and how fast,
  and some change with every terminal;
- reads by threads and processes the body starts, by async ops, and by ``os.environb`` or
  C code (``getenv(3)``).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from .hashing import digest

__all__ = [
    "PREFIX", "PRESENCE", "VALUE", "TrackedEnviron", "current_source", "current_state", "shown", "snapshot", "start",
    "stop",
]

#: What every environment dependency name starts with (no module name contains "<").
PREFIX = "<env"
#: Dependency names of variables whose value the body read: ``<env>:NAME``.
VALUE = "<env>:"
#: Dependency names of variables the body only tested for: ``<env-set>:NAME``.
PRESENCE = "<env-set>:"

#: The environment's own class: this module's own reads go through it, never noted.
_BASE: Any = type(os.environ)
#: What a body did to a variable, weakest first: a value read counts more than a test for it;
#: a write before any read makes later reads the body's own.
_PRESENT, _READ, _WRITTEN = 1, 2, 3
_PREFIXES = {_PRESENT: PRESENCE, _READ: VALUE}
#: Modules between the environment and its reader: ``os.getenv``, ``Mapping.get``.
_ACCESSORS = frozenset({"os", "collections.abc", "_collections_abc", __name__})


class _Tracking(threading.local):
    #: variable name -> (what the op body running now in this thread did with it, what it
    #: found), and under None the reads an iteration of the environment makes next (see
    #: TrackedEnviron.__iter__); None when no body is tracked
    reads: dict | None = None


_tracking = _Tracking()
_installed = False
_install_lock = threading.Lock()
#: (dependency name, what was seen) -> state: each value is hashed once a process (a hit's
#: validity check is a dict lookup per variable).
_states: dict[tuple[str, Any], bytes] = {}


def start(track: bool) -> dict | None:
    """Before an op body runs: note the variables it reads from now on (if ``track``);
    returns what :func:`stop` restores (an enclosing op body's reads)."""
    previous = _tracking.reads
    if track:
        if not _installed:
            _install()
        _tracking.reads = {}
    else:
        _tracking.reads = None
    return previous


def stop(previous: dict | None, files: tuple) -> tuple:
    """After the body: ``files`` (file_deps.stop's dependencies) and ``(name, state,
    description)`` of each variable it read, as it found it, sorted; restores the enclosing
    body's reads. (As found: a body that reads a variable, then changes it, depends on what it
    read.)"""
    reads = _tracking.reads
    _tracking.reads = previous
    if not reads:
        return files
    found = sorted(
        (_PREFIXES[how] + name, seen) for name, (how, seen) in reads.items() if name is not None and how != _WRITTEN
    )
    return files + tuple((name, _state(name, seen), _source(name, seen)) for name, seen in found)


def current_state(name: str) -> bytes:
    """The state of an environment dependency now: a hash of its value (or of whether it is
    set), never the value itself."""
    return _state(name, _seen(name))


def current_source(name: str) -> str:
    """What ``why`` shows of an environment dependency now (a hash: values may be secrets)."""
    return _source(name, _seen(name))


def shown(name: str) -> str:
    """A dependency name as reports show it: ``environment variable DATA_ROOT``."""
    if name.startswith(VALUE):
        return "environment variable " + name[len(VALUE) :]
    return f"environment variable {name[len(PRESENCE) :]} (whether it is set)"


def snapshot(name: str) -> Any:
    """What tells, cheaply, that a variable changed between blocks: what a body would see of
    it now (its value, kept in this process only; or whether it is set)."""
    return _seen(name)


def _seen(name: str) -> Any:
    """What a body reading the dependency ``name`` would find now: the value or None; for a
    presence dependency, whether it is set."""
    if name.startswith(VALUE):
        return _value(name[len(VALUE) :])
    return _value(name[len(PRESENCE) :]) is not None


def _value(variable: str) -> str | None:
    environ = os.environ
    if not isinstance(environ, _BASE):  # replaced by a mapping of the user's
        return environ.get(variable)
    try:
        return _BASE.__getitem__(environ, variable)
    except KeyError:
        return None


def _state(name: str, seen: Any) -> bytes:
    # The name is hashed in: two variables with one value have two states, so the sources
    # table (keyed by state) names the right variable in why's reports.
    state = _states.get((name, seen))
    if state is None:
        if seen is None or seen is False:
            state = digest(b"env-unset|" + os.fsencode(name))
        elif seen is True:
            state = digest(b"env-set|" + os.fsencode(name))
        else:
            state = digest(b"env|%s\0%s" % (os.fsencode(name), os.fsencode(seen)))
        _states[(name, seen)] = state
    return state


def _source(name: str, seen: Any) -> str:
    if seen is None or seen is False:
        return f"{shown(name)}: unset\n"
    if seen is True:
        return f"{shown(name)}: set\n"
    return f"{shown(name)}: value hashed {_state(name, seen).hex()[:16]}\n"


def _note(reads: dict, key: Any, how: int) -> None:
    """Note that the body read (or tested for) ``key``, with what it found, unless it wrote it
    first, read its value already, or the reader is no user code. A write only hides later
    reads: what the body read before it changed the variable stays a dependency."""
    if type(key) is not str:  # bytes, or what the environment refuses with its own error
        return
    known = reads.get(key)
    if how == _WRITTEN:
        if known is None:
            reads[key] = (_WRITTEN, None)
    elif (known is None or known[0] < how) and _read_by_user_code():
        value = _value(key)
        reads[key] = (how, value if how == _READ else value is not None)


def _read_by_user_code() -> bool:
    """Whether the code reading the environment (past ``os.getenv`` and ``Mapping.get``) is
    the user's: the op's body or a helper of theirs, not a library (see the module doc)."""
    from .dependencies import is_user_module

    frame: Any = sys._getframe(2)  # the environment's method, then who called it
    while frame is not None and frame.f_globals.get("__name__") in _ACCESSORS:
        frame = frame.f_back
    return frame is not None and is_user_module(frame.f_globals.get("__name__") or "")


class TrackedEnviron(_BASE):
    """``os.environ``'s class once tracking is installed: notes reads for the op body running
    in this thread (if any); behaves otherwise exactly as the environment's own class."""

    def __getitem__(self, key: Any) -> Any:
        reads = _tracking.reads
        if reads is not None and not _iteration_reads(reads, key):
            _note(reads, key, _READ)
        return _BASE.__getitem__(self, key)

    def __contains__(self, key: Any) -> bool:
        reads = _tracking.reads
        if reads is not None:
            _note(reads, key, _PRESENT)
        try:
            _BASE.__getitem__(self, key)
        except KeyError:
            return False
        return True

    def __setitem__(self, key: Any, value: Any) -> None:
        _BASE.__setitem__(self, key, value)
        reads = _tracking.reads
        if reads is not None:
            _note(reads, key, _WRITTEN)

    def __delitem__(self, key: Any) -> None:
        _BASE.__delitem__(self, key)
        reads = _tracking.reads
        if reads is not None:
            _note(reads, key, _WRITTEN)

    def __iter__(self) -> Any:
        """The keys, noting for the op body which reads belong to the iteration, not to it:
        ``.items()`` and ``.values()`` read each key right after it is given; ``dict()``,
        ``.copy()`` and ``{**os.environ}`` list every key first, then read them all in order."""
        reads = _tracking.reads
        if reads is None:
            yield from _BASE.__iter__(self)
            return
        keys: list[str] = []
        for key in _BASE.__iter__(self):
            keys.append(key)
            reads[None] = [keys, len(keys) - 1]
            yield key
        pending = reads.get(None)
        if pending is not None and pending[0] is keys:  # listed, nothing read yet: dict() and the like
            pending[1] = 0


def _iteration_reads(reads: dict, key: Any) -> bool:
    """Whether this read of ``key`` is the next one an iteration of the environment makes
    (see TrackedEnviron.__iter__); any other read ends the iteration's turn."""
    pending = reads.get(None)
    if pending is None:
        return False
    keys, position = pending
    if position < len(keys) and keys[position] == key:
        pending[1] = position + 1
        if position + 1 == len(keys):
            del reads[None]
        return True
    del reads[None]
    return False


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        if type(os.environ) is _BASE:  # else replaced by a mapping of the user's: not followed
            os.environ.__class__ = TrackedEnviron
        _installed = True
