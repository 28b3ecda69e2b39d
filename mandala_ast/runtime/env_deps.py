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
import types
from typing import Any

from .bytecode_reads import nested_codes
from .hashing import digest

__all__ = [
    "PREFIX", "PRESENCE", "VALUE", "TrackedEnviron", "current_source", "current_state", "shown", "snapshot", "start",
    "stop", "variable_of",
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
#: Tested for, then written (``if "SEED" not in os.environ: os.environ["SEED"] = "0"``): a
#: dependency on whether it was set; what the body then reads of it, it wrote.
_PRESENT_THEN_WRITTEN = 4
_PREFIXES = {_PRESENT: PRESENCE, _READ: VALUE, _PRESENT_THEN_WRITTEN: PRESENCE}
#: Names through which code may reach the environment without naming it otherwise.
_DYNAMIC = frozenset({"environ", "getenv", "environb", "getenvb", "eval", "exec", "getattr", "__import__",
                      "import_module", "globals", "vars"})
#: What start() returns when it did nothing: stop() then does nothing either.
_UNTOUCHED: Any = object()
#: function -> whether its own code may read the environment (may_read)
_may_read: dict[Any, bool] = {}
#: Modules between the environment and its reader: ``os.getenv``, ``Mapping.get``.
_ACCESSORS = frozenset({"os", "collections.abc", "_collections_abc", __name__})
_PASSING: Any = object()
#: code object -> whether its reads are the user's, or _PASSING (an accessor: ask its caller)
_readers: dict[Any, Any] = {}
#: dependencies.is_user_module, once tracking is installed
_is_user_module: Any = None


class _Tracking(threading.local):
    #: variable name -> (what the op body running now in this thread did with it, what it
    #: found), and under None the reads an iteration of the environment makes next (see
    #: TrackedEnviron.__iter__); None when no body is tracked
    reads: dict | None = None
    #: the code objects of the op body being tracked: its reads count wherever the op lives
    #: (an op of an installed package reads what it computes from, like one of the user's)
    own: frozenset = frozenset()


_tracking = _Tracking()
_installed = False
_install_lock = threading.Lock()


def _fresh_install_lock() -> None:  # a child forked while another thread installed starts unlocked
    global _install_lock
    _install_lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_install_lock)
#: (dependency name, what was seen) -> state: each value is hashed once a process (a hit's
#: validity check is a dict lookup per variable).
_states: dict[tuple[str, Any], bytes] = {}
_dependencies: dict[tuple[str, Any], tuple[str, bytes, str]] = {}


def start(track: bool, only: Any = None, body: Any = None) -> Any:
    """Before an op body runs: note the variables it reads from now on (if ``track``);
    returns what :func:`stop` restores (an enclosing op body's reads). ``only``: the body's
    function when no user code but its own can run (an untraced body): if that code names no
    environment, nothing is done (its reads, all by libraries, would not be noted anyway).
    ``body``: the op's function, whose own reads count even where it is not the user's code.

    >>> stop(start(True), ())
    ()
    """
    if track and only is not None and not may_read(only):
        return _UNTOUCHED
    previous = (_tracking.reads, _tracking.own)
    if track:
        if not _installed:
            _install()
        _tracking.reads, _tracking.own = {}, _body_codes(body)
    else:
        _tracking.reads = None
    return previous


#: function -> the code objects of its body (nested ones too)
_bodies: dict[Any, frozenset] = {}


def _body_codes(fn: Any) -> frozenset:
    code = getattr(fn, "__code__", None)
    if code is None:
        return frozenset()
    found = _bodies.get(fn)
    if found is None:
        if len(_bodies) > 4096:  # functions made at run time must not grow it forever
            _bodies.clear()
        found = _bodies[fn] = frozenset(nested_codes(code))
    return found


def stop(previous: Any, files: tuple, ignored: frozenset[str] = frozenset()) -> tuple:
    """After the body: ``files`` (file_deps.stop's dependencies) and ``(name, state,
    description)`` of each variable it read but those ``ignored`` (the op's ``ignore_env``),
    as it found it, sorted; restores the enclosing body's reads. (As found: a body that reads a
    variable, then changes it, depends on what it read.)"""
    if previous is _UNTOUCHED:
        return files
    reads = _tracking.reads
    _tracking.reads, _tracking.own = previous
    if not reads:
        return files
    found = [
        (_PREFIXES[how] + name, seen)
        for name, (how, seen) in reads.items()
        if name is not None and how != _WRITTEN and name not in ignored
    ]
    found.sort()
    return files + tuple([_dependency(name, seen) for name, seen in found])


def may_read(fn: Any) -> bool:
    """Whether ``fn``'s own code may read the environment: it names ``environ`` or ``getenv``,
    refers to ``os.environ`` (or its methods) under another name, or can run code it does not
    name (``eval``, ``getattr``). Cached per function: an untraced miss pays a dict lookup.

    >>> may_read(lambda: 1), may_read(lambda: os.environ["HOME"])
    (False, True)
    """
    known = _may_read.get(fn)
    if known is None:
        known = _may_read[fn] = _names_environment(fn)
    return known


def _names_environment(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object: its code is not in sight
        return True
    held = [*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values()]
    for cell in fn.__closure__ or ():
        try:
            held.append(cell.cell_contents)
        except ValueError:  # a cell not filled yet (a name the enclosing function binds later)
            pass
    namespace = getattr(fn, "__globals__", {})
    for inner in nested_codes(code):
        if not _DYNAMIC.isdisjoint(inner.co_names):
            return True
        found = [namespace.get(name) for name in inner.co_names]
        # cfg.ENV, cfg.ENV.get: the environment held by a module the code names
        modules = [value for value in found if isinstance(value, types.ModuleType) and value is not os]
        held += found + [getattr(module, name, None) for module in modules for name in inner.co_names]
    return any(_is_environment(value) for value in held)


def _is_environment(value: Any) -> bool:
    if value is os.environ or value is os.getenv:
        return True
    return getattr(value, "__self__", None) is os.environ  # ENV_GET = os.environ.get


def current_state(name: str) -> bytes:
    """The state of an environment dependency now: a hash of its value (or of whether it is
    set), never the value itself."""
    return _state(name, _seen(name))


def current_source(name: str) -> str:
    """What ``why`` shows of an environment dependency now (a hash: values may be secrets)."""
    return _source(name, _seen(name))


def variable_of(name: str) -> str | None:
    """The variable an environment dependency is about; None for any other dependency.

    >>> variable_of("<env>:DATA_ROOT"), variable_of("<env-set>:DEBUG"), variable_of("pkg:helper")
    ('DATA_ROOT', 'DEBUG', None)
    """
    return name.partition(":")[2] if name.startswith(PREFIX) else None


def shown(name: str) -> str:
    """A dependency name as reports show it: ``environment variable DATA_ROOT``."""
    if name.startswith(VALUE):
        return "environment variable " + name[len(VALUE) :]
    return f"environment variable {name[len(PRESENCE) :]} (set or not)"


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


def _dependency(name: str, seen: Any) -> tuple[str, bytes, str]:
    """``(name, state, description)``, made once a process per value seen."""
    known = _dependencies.get((name, seen))
    if known is None:
        known = _dependencies[(name, seen)] = (name, _state(name, seen), _source(name, seen))
    return known


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
    variable = name.partition(":")[2]
    if seen is None or seen is False:
        return f"environment variable {variable}: unset\n"
    if seen is True:
        return f"environment variable {variable}: set\n"
    return f"environment variable {variable}: value hashed {_state(name, seen).hex()[:16]}\n"


def _note(reads: dict, key: Any, how: int, seen: Any) -> None:
    """Note that the body read (or tested for) ``key`` and found ``seen`` (its value or None;
    whether it is set), unless it wrote it
    first, read its value already, or the reader is no user code. A write only hides later
    reads: what the body read before it changed the variable stays a dependency."""
    if type(key) is not str:  # bytes, or what the environment refuses with its own error
        return
    known = reads.get(key)
    if how == _WRITTEN:
        if known is None:
            reads[key] = (_WRITTEN, None)
        elif known[0] == _PRESENT:  # else its value, read before, stays what it depends on
            reads[key] = (_PRESENT_THEN_WRITTEN, known[1])
    elif (known is None or known[0] < how) and _read_by_user_code():
        reads[key] = (how, seen)


def _read_by_user_code() -> bool:
    """Whether the code reading the environment (past ``os.getenv`` and ``Mapping.get``) is
    the user's: the op's body or a helper of theirs, not a library (see the module doc)."""
    frame: Any = sys._getframe(2)  # the environment's method, then who called it
    own = _tracking.own
    while frame is not None:
        if frame.f_code in own:
            return True
        verdict = _readers.get(frame.f_code)
        if verdict is None:
            verdict = _readers[frame.f_code] = _reader_kind(frame.f_globals.get("__name__") or "")
        if verdict is not _PASSING:
            return verdict
        frame = frame.f_back
    return False


def _reader_kind(module: str) -> Any:
    return _PASSING if module in _ACCESSORS else _is_user_module(module)


class TrackedEnviron(_BASE):
    """``os.environ``'s class once tracking is installed: notes reads for the op body running
    in this thread (if any); behaves otherwise exactly as the environment's own class."""

    def __getitem__(self, key: Any) -> Any:
        reads = _tracking.reads
        if reads is None:
            return _BASE.__getitem__(self, key)
        try:
            value = _BASE.__getitem__(self, key)
        except KeyError:  # absent: a dependency too (if it appears, the body reads otherwise)
            if not _iteration_reads(reads, key):
                _note(reads, key, _READ, None)
            raise
        if not _iteration_reads(reads, key):
            _note(reads, key, _READ, value)
        return value

    def __contains__(self, key: Any) -> bool:
        try:
            _BASE.__getitem__(self, key)
        except KeyError:
            present = False
        else:
            present = True
        reads = _tracking.reads
        if reads is not None:
            _note(reads, key, _PRESENT, present)
        return present

    def __setitem__(self, key: Any, value: Any) -> None:
        _BASE.__setitem__(self, key, value)
        reads = _tracking.reads
        if reads is not None:
            _note(reads, key, _WRITTEN, None)

    def __delitem__(self, key: Any) -> None:
        _BASE.__delitem__(self, key)
        reads = _tracking.reads
        if reads is not None:
            _note(reads, key, _WRITTEN, None)

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
        if pending is None or pending[0] is not keys:
            return
        if _listed_by_a_copy(sys._getframe(1)):  # listed, nothing read yet: dict() and the like
            pending[1] = 0
        else:  # a loop of the user's (any(k.startswith("SLURM_") for k in os.environ)): over
            del reads[None]


#: Modules whose code iterates the environment to copy it: ``dict(os.environ)``,
#: ``os.environ.copy()`` and ``{**os.environ}`` go through the mapping's ``keys()`` view.
_COPIERS = frozenset({"_collections_abc", "collections.abc"})


def _listed_by_a_copy(consumer: Any) -> bool:
    """Whether the frame that exhausted the iteration is a copy's (then it reads every key in
    order next), not a loop of the user's, whose next read is a read of its own."""
    return consumer is not None and consumer.f_globals.get("__name__") in _COPIERS


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
    global _installed, _is_user_module
    with _install_lock:
        if _installed:
            return
        # Imported here, not at the top (it imports this module), and before any read is
        # noted: importing reads the environment.
        from .dependencies import is_user_module as _is_user_module

        if type(os.environ) is _BASE:  # else replaced by a mapping of the user's: not followed
            os.environ.__class__ = TrackedEnviron
        _installed = True
