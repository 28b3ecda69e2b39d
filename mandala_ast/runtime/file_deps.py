"""File dependencies: the data files an op body reads are part of what its result depends on.

Python code reads a file by name through ``open`` (``builtins.open`` is ``io.open``;
``pathlib.Path.read_*``, ``numpy.load``, ``pandas.read_*`` on a path, PIL, gzip and codecs
look it up at each call) or ``os.open``. The first time an op body runs with tracking on, those
two are replaced, for the life of the process, by wrappers that note the files opened for
reading while — and only while — an op body runs in this thread; after the body, each file's
content hash becomes a dependency of the call, beside its code. A changed file then makes the
call stale like changed code does, and ``why`` names the file; a file touched without a content
change is found unchanged (its hash, computed again only when its stat changes, is the same).
A directory the body lists (``os.listdir``, ``os.scandir``: ``Path.iterdir``, ``Path.glob``,
``glob``, ``os.walk`` use them) is a dependency by its names: a shard added to a folder the
op reads "every file of" recomputes it.

Why wrappers and not an audit hook on the "open" event (which sees every open, even
``io.FileIO``): a hook runs for *every* audit event in the process, and cannot be removed. On
Python 3.11 reading ``frame.f_code`` is one, and the tracer of op bodies (tracing.py) reads it
once per function entered: the hook made every user function call inside a computing op
~0.2 µs slower, and each computed call raised three more events. The wrappers cost nothing
but on ``open`` itself (~0.1 µs beside the system call), and an op body that opens no file pays
two thread-local writes (benchmarks/bench_evolution.py).

Files opened from C (pyarrow, polars, HDF5) are seen when the op's arguments or the code it
ran name them (:func:`named_paths`). Not seen: files so opened under names built at run time,
or through ``io.FileIO`` or an ``open`` bound before the first op ran (``from io import
open``), and by other threads or processes the body starts. Not dependencies: files opened for writing only, the files of the
storages this process opened (:func:`add_storage`), the standard library, site-packages, Python source and bytecode files (code is
tracked by fingerprint), and ``/proc``, ``/sys``, ``/dev``.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import sys
import threading
from pathlib import Path
from typing import Any

from .blobs import file_digest
from .hashing import digest

__all__ = [
    "PREFIX",
    "TABLE",
    "Watch",
    "current_source",
    "current_state",
    "named_in_code",
    "named_paths",
    "remember",
    "snapshot",
    "start",
    "stat_row",
    "stop",
]

#: Dependency names of files: ``<file>:/abs/path`` (no module name contains "<").
PREFIX = "<file>:"
#: The stat cache kept in the storage: a new process need not hash a large unchanged file
#: again to know that its stored calls are valid. Format 8 keys files by their change time
#: too (see _stat_key), in a table of its own: format 7's ``file_stats`` stays as it was for
#: a process of the previous release that had the file open when it was upgraded (its rows,
#: with no change time, vouch for no file here).
TABLE = (
    "CREATE TABLE IF NOT EXISTS data_file_stats (path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER,"
    " inode INTEGER, ctime_ns INTEGER, state BLOB)"
)
#: A stat cache row as :func:`stat_row` gives it and :func:`remember` takes it.
ROW_SQL = "SELECT path, mtime_ns, size, inode, ctime_ns, state FROM data_file_stats WHERE path = ?"
INSERT_SQL = "INSERT OR REPLACE INTO data_file_stats VALUES (?, ?, ?, ?, ?, ?)"


class Watch(list):
    """What one op body running in this thread did with files: the list of those it opened
    to read what they held; ``written``, those it opened only to write (its outputs, its
    logs); ``named``, the existing files its arguments name (see named_paths). (A list with
    class-level defaults: every computed call makes one, most never write or name a file.)"""

    written: frozenset[str] | set[str] = frozenset()
    named: list[str] = []
    #: absolute path -> the relative name the body opened it by (see _relative_names)
    relative: dict[str, str] = {}


class _Tracking(threading.local):
    #: the op body running now in this thread; None when none is tracked
    opened: Watch | None = None


_tracking = _Tracking()
_installed = False
_install_lock = threading.Lock()
#: path -> ((mtime_ns, size, inode, ctime_ns), digest): an unchanged file is not hashed again.
_digests: dict[str, tuple[tuple, bytes]] = {}
_MISSING = digest(b"file|missing")
_CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".so")
_WRITE_ONLY = os.O_WRONLY
_FRESH_FLAGS = os.O_TRUNC | os.O_EXCL
#: Library and system roots, found on first use (see _excluded).
_LIBRARY: tuple[str, ...] | None = None


def _note(body: Watch, path: Any, mode: Any, flags: Any) -> None:
    """Note ``path`` as read if the body may read what it held, else as written. Raises
    nothing: arguments open() refuses are left for open() to refuse with its own error."""
    try:
        if isinstance(path, int):  # a descriptor: no name
            return
        if _reads_earlier_content(mode, flags):
            body.append(_absolute(body, os.fsdecode(path), ""))
        else:
            if not body.written:
                body.written = set()
            body.written.add(os.path.abspath(os.fsdecode(path)))  # type: ignore[union-attr]
    except (TypeError, ValueError):
        pass


def _note_listing(body: Watch, path: Any) -> None:
    """Note directory ``path`` as listed: its names are a dependency (a file added to a
    folder of shards changes what an op that reads "every file in it" returns), kept as
    the directory's path with a trailing separator. Raises nothing, as _note."""
    try:
        if not isinstance(path, int):  # a descriptor: no name
            body.append(_absolute(body, os.fsdecode(path), os.sep))
    except (TypeError, ValueError):
        pass


def _absolute(body: Watch, path: str, end: str) -> str:
    """``path`` made absolute (``end``: a listed directory's trailing separator); a relative
    one's name is kept in ``body.relative``."""
    absolute = os.path.abspath(path).rstrip(os.sep) + end if end else os.path.abspath(path)
    if not os.path.isabs(path):
        if not body.relative:
            body.relative = {}
        body.relative[absolute] = os.path.normpath(path).rstrip(os.sep) + end
    return absolute


def _relative_names(found: dict[str, bytes], relative: dict[str, str]) -> dict[str, bytes]:
    """A file the body opened by a relative name depends on what that name means, in the
    working directory of whoever checks it: the same script run in another project
    directory with one storage reads another ``data.txt``, which must not pass for the first
    directory's unchanged file. (Unless the body opened it from another directory than it
    ends in, after an ``os.chdir``: then its absolute path is what it read.)"""
    named: dict[str, bytes] = {}
    for path, state in found.items():
        name = relative.get(path, path)
        end = os.sep if path.endswith(os.sep) else ""
        named[name if os.path.abspath(name).rstrip(os.sep) + end == path else path] = state
    return named


def _reads_earlier_content(mode: Any, flags: Any) -> bool:
    # Not a file opened write-only or emptied on opening ("w+", O_TRUNC): what the body reads
    # from it, it wrote itself.
    if mode is None:  # os.open
        return flags & os.O_ACCMODE != _WRITE_ONLY and not flags & _FRESH_FLAGS
    return "r" in mode or ("a" in mode and "+" in mode)


def start(track: bool, args: tuple = (), kwargs: dict | None = None) -> Watch | None:
    """Before an op body runs: note its file reads from now on (if ``track``), and the files
    its arguments name (see :func:`named_paths`); returns what :func:`stop` restores (an
    enclosing op body's reads)."""
    previous = _tracking.opened
    if track:
        if not _installed:
            _install()
        body = _tracking.opened = Watch()
        for value in args:
            if _may_name_a_path(type(value)):
                body.named = named_paths(args, kwargs.values() if kwargs else ())
                break
        else:
            if kwargs:
                body.named = named_paths(kwargs.values())
    else:
        _tracking.opened = None
    return previous


def stop(previous: Watch | None, storage_path: Path | None, codes: Any = ()) -> tuple:
    """After the body: ``(name, state, description)`` of each file it read, or that its
    arguments or the code it ran (``codes``) name (unless it only wrote them: a log, an
    output), sorted; restores the enclosing body's tracking. Never raises (the storage
    holds no lock meanwhile)."""
    body = _tracking.opened
    _tracking.opened = previous
    if body is None:
        return ()
    if body.written and previous is not None:
        # What an op called in the enclosing body wrote, that body wrote: the inner op's
        # code, which names the file (its log), ran in the enclosing body's trace too.
        previous.written = {*previous.written, *body.written}
    named = body.named
    in_code = named_in_code(codes)
    if in_code:
        named = named + in_code
    if named and body.written:
        named = [path for path in named if os.path.abspath(path) not in body.written]
    if not body and not named:
        return ()
    return _dependencies(body + named, storage_path, body.relative)


# Readers written in C or C++ (pyarrow and pandas' read_parquet, polars, HDF5, netCDF) open
# files without Python's open, where the wrappers would note them. What they read is almost
# always named by the op's arguments or by a string in its code: those names, when they are
# existing files once the body ran, are dependencies too. (A file so named that the body did
# not read costs a hash, and a recomputation when it changes: never a stale result.)
_PATH_LIKE = re.compile(r"(?:[/\\]|\.[A-Za-z0-9]{1,12}$)")
_MAX_PATH = 4096
#: code object -> the path-like strings among its constants, and the names it reads
_code_paths: dict[Any, tuple[tuple[str, ...], tuple[str, ...]]] = {}
#: Argument types that never name a file: skipped at the cost of one set lookup (every miss
#: scans its arguments).
_NO_PATH = frozenset({int, float, bool, type(None), complex, bytes})


def _may_name_a_path(kind: type) -> bool:
    """Whether :func:`named_paths` may find a path in a value of type ``kind``: a string, an
    ``os.PathLike``, or a list, tuple or dict of them. Told without the call (an array
    argument, at every miss, is none of them)."""
    return kind not in _NO_PATH and (kind in _MAY_HOLD_PATHS or hasattr(kind, "__fspath__"))


_MAY_HOLD_PATHS = frozenset({str, list, tuple, dict})


def named_paths(*groups: Any) -> list[str]:
    """Absolute paths of the existing files named by path-like strings and ``os.PathLike``
    values in each of ``groups`` (and one level into lists, tuples and dicts).

    >>> named_paths(["/etc/hostname", "hello", 3])
    ['/etc/hostname']
    """
    found: list[str] = []
    for values in groups:
        for value in values:
            kind = type(value)
            if kind in _NO_PATH:
                continue
            if kind is list or kind is tuple:
                _add_paths(found, value)
            elif kind is dict:
                _add_paths(found, value.values())
            else:
                _add_paths(found, (value,))
    return found


def named_in_code(codes: Any) -> list[str]:
    """Existing files named by each ``(code, module globals)`` of ``codes``: by path-like
    strings among its constants, or by the module-level names it reads, where they hold a
    path (``DATA = os.path.join(ROOT, "x.parquet")``, ``Path(...)``: built, no literal)."""
    found: list[str] = []
    for code, namespace in codes:
        known = _code_paths.get(code)
        if known is None:
            known = _code_paths[code] = (tuple(c for c in code.co_consts if _path_like(c)), code.co_names)
        strings, names = known
        if strings:
            _add_paths(found, strings)
        if names:  # (every miss asks: a body naming no global costs no call more)
            values = _paths_read(names, namespace)
            if values:
                _add_paths(found, values)
    return found


def _paths_read(names: tuple[str, ...], namespace: dict) -> list[Any]:
    """The strings and ``os.PathLike`` values of the globals a code reads by ``names`` (its
    ``co_names``, which also hold attribute names: those find no global, or one that is no
    path). Most find none (a builtin, an attribute): None is passed over without a call."""
    values = [namespace.get(name) for name in names]
    return [value for value in values if type(value) is str or value is not None and _path_object(value)]


def _path_object(value: Any) -> bool:
    """An ``os.PathLike`` (a ``Path``), told without its ``isinstance``, which runs abc's
    Python frames: noting files at a stack nearly full would overflow it."""
    return hasattr(type(value), "__fspath__")


def _add_paths(found: list[str], values: Any) -> None:
    # Existing files only: a name that is no file (yet) is no dependency, unlike a file the
    # body tried to open (whose appearing later changes what it would read).
    for value in values:
        if _path_like(value) or _path_object(value):
            try:
                path = os.fspath(value)
                if os.path.isfile(path):  # a relative name stays one (see _relative_names)
                    found.append(os.path.abspath(path) if os.path.isabs(path) else os.path.normpath(path))
            except (TypeError, ValueError):
                pass


def _path_like(value: Any) -> bool:
    return (
        type(value) is str and 0 < len(value) < _MAX_PATH and "\n" not in value and "\0" not in value
        and _PATH_LIKE.search(value) is not None
    )


def _dependencies(opened: list[str], storage_path: Path | None, relative: dict[str, str]) -> tuple:
    own, excluded = _excluded(storage_path)
    found = {}
    for path in opened:
        if path in found or path.endswith(_CODE_SUFFIXES):
            continue
        absolute = path if os.path.isabs(path) else os.path.abspath(path)  # a named relative file
        if absolute.startswith(excluded) or _of_a_storage(absolute, own):
            continue
        state = _state_of(path)
        if state is not None:
            found[path] = state
    if relative:
        found = _relative_names(found, relative)
    return tuple((PREFIX + path, state, _describe(path, state)) for path, state in sorted(found.items()))


def current_state(name: str) -> bytes:
    """The content state of a file dependency now (a missing file, or one that is no longer
    a regular file, has the state "missing")."""
    return _state_of(name[len(PREFIX) :]) or _MISSING


def current_source(name: str) -> str:
    """What ``why`` shows of a file dependency now."""
    path = name[len(PREFIX) :]
    return _describe(path, current_state(name))


def stat_row(name: str) -> tuple | None:
    """``(path, mtime_ns, size, inode, ctime_ns, state)`` of a file hashed in this process, for
    the storage's ``data_file_stats`` table (None if it was not hashed here)."""
    path = name[len(PREFIX) :]
    known = _digests.get(path)
    return None if known is None else (path, *known[0], known[1])


def remember(row: tuple) -> None:
    """Take a ``data_file_stats`` row into this process's stat cache (unless it knows better)."""
    path, *key, state = row
    _digests.setdefault(path, (tuple(key), state))


def snapshot(name: str) -> tuple | None:
    """What tells, cheaply, that a file may have changed: its stat (None when missing)."""
    try:
        return _stat_key(os.stat(name[len(PREFIX) :]))
    except OSError:
        return None


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        import builtins
        import io

        open_, os_open = io.open, os.open

        @functools.wraps(open_)
        def open(file, mode="r", *args, **kwargs):  # noqa: A001 (it is the builtin open)
            opened = _tracking.opened
            if opened is not None:
                _note(opened, file, mode, 0)
            return open_(file, mode, *args, **kwargs)

        @functools.wraps(os_open)
        def os_open_(path, flags, mode=0o777, *, dir_fd=None):
            opened = _tracking.opened
            if opened is not None and dir_fd is None:
                _note(opened, path, None, flags)
            return os_open(path, flags, mode, dir_fd=dir_fd)

        builtins.open = io.open = open
        os.open = os_open_
        listdir, scandir = os.listdir, os.scandir
        os.listdir, os.scandir = _listing(listdir), _listing(scandir)
        _wrap_pathlib_accessor({"open": (open_, open), "listdir": (listdir, os.listdir),
                                "scandir": (scandir, os.scandir)})
        # shutil.rmtree uses its symlink-safe form only if os.open is in these sets.
        for supported in (os.supports_dir_fd, os.supports_fd, os.supports_follow_symlinks):
            if os_open in supported:
                supported.add(os_open_)
        _installed = True


def _listing(list_: Any) -> Any:
    """``os.listdir`` or ``os.scandir`` noting the directory listed (``Path.iterdir``,
    ``Path.glob``, ``glob.glob`` and ``os.walk`` go through them)."""

    @functools.wraps(list_)
    def wrapper(path: Any = ".") -> Any:
        opened = _tracking.opened
        if opened is not None and _listed_by_user_code(sys._getframe(1)):
            _note_listing(opened, path)
        return list_(path)

    return wrapper


_STDLIB = os.path.dirname(os.__file__) + os.sep


def _listed_by_user_code(frame: Any) -> bool:
    """Whether the listing was asked for by the user's code, directly or through the standard
    library (``glob``, ``pathlib``, ``os.walk``). Libraries list directories for their own
    ends: ``importlib.metadata`` scans every directory on ``sys.path`` (the script's own), and
    its names changing says nothing of the op's data."""
    while frame is not None:
        name = frame.f_code.co_filename
        if not (name.startswith(_STDLIB) or name.startswith("<frozen")) or "site-packages" in name:
            return not name.startswith(_excluded(None)[1]) and "site-packages" not in name
        if "importlib" in name:  # the import system looking for modules or metadata
            return False
        frame = frame.f_back
    return False


def _wrap_pathlib_accessor(wrapped: dict[str, tuple[Any, Any]]) -> None:
    """Python 3.10's pathlib opens and lists files through an accessor class that bound
    ``io.open``, ``os.listdir`` and ``os.scandir`` when pathlib was imported, before any
    wrapper: ``Path.read_text``, ``Path.open``, ``Path.glob`` and ``Path.iterdir`` went unseen
    there (a file that appeared later never recomputed the call that missed it, nor one added
    to a folder the op globbed). ``wrapped``: the accessor's attribute -> (original, wrapper).
    (3.11 and later call the functions of ``io`` and ``os`` at each call.)"""
    import pathlib

    accessor = getattr(pathlib, "_NormalAccessor", None)  # only 3.10 has it
    for name, (original, wrapper) in wrapped.items():
        if accessor is not None and accessor.__dict__.get(name) is original:
            setattr(accessor, name, staticmethod(wrapper))


def _state_of(path: str) -> bytes | None:
    """The file's content hash, from the stat cache when unchanged; None for what is not a
    regular file (a directory, a device); a missing file has a state of its own."""
    try:
        info = os.stat(path)
    except OSError:
        return _MISSING
    listed = path.endswith(os.sep)
    if not (stat.S_ISDIR if listed else stat.S_ISREG)(info.st_mode):
        return _MISSING if listed else None
    key = _stat_key(info)
    known = _digests.get(path)
    if known is not None and known[0] == key:
        return known[1]
    try:
        state = _listing_state(path) if listed else file_digest(Path(path)) if info.st_size else digest(b"")
    except (OSError, ValueError):
        return _MISSING
    _digests[path] = (key, state)
    return state


#: Names in a listed directory that say nothing of its data: SQLite's companions of a
#: storage kept there come and go with its connections, and its blobs directory and
#: Python's bytecode caches appear once something is stored or imported.
_NOT_DATA = re.compile(r"-(?:wal|shm|journal)$|\.blobs$|^__pycache__$")


def _listing_state(path: str) -> bytes:
    """A directory's state: the sorted names of its entries (their content, where read,
    is a dependency of its own)."""
    names = sorted(name for name in os.listdir(path) if not _NOT_DATA.search(name))
    return digest(("\0".join(names)).encode("utf-8", "surrogateescape"))


def _stat_key(info: os.stat_result) -> tuple:
    # The change time too: shutil.copy2, cp -p, rsync -t and tar write new content in place
    # and then set the old mtime back, so two data splits of one size extracted from one
    # archive kept one key (the first split's result was served for the second). No tool
    # sets the change time: any write or utime makes it now.
    return (info.st_mtime_ns, info.st_size, info.st_ino, info.st_ctime_ns)


def row_sql(conn: Any) -> str | None:
    """:data:`ROW_SQL`; None for a format-7 file read as it is (read-only), which has no
    stat cache with change times: each file is hashed once in the process."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'data_file_stats'").fetchone()
    return ROW_SQL if found else None


def _describe(path: str, state: bytes) -> str:
    kind, what = ("directory", "names") if path.endswith(os.sep) else ("file", "content")
    if state == _MISSING:
        return f"{kind} {path}: missing\n"
    return f"{kind} {path}: {what} {state.hex()[:16]}\n"


#: The files of the storages this process opened, as given (made absolute) and with links
#: followed (value files sit beside the latter): never dependencies. Their content changes
#: whenever anything is stored, and an op body that keeps results of its own in a storage
#: (or a cached pytest fixture that computes in a batch) reads its header when opening it.
_storages: set[str] = set()


def add_storage(path: str | Path) -> None:
    """A storage's file, its log and its value files are never a dependency of a call."""
    _storages.update((os.path.abspath(path), os.path.realpath(path)))


#: What SQLite names a database's companions by: ``<file>-wal``, ``-shm``, ``-journal``.
_SQLITE_FILES = frozenset({"wal", "shm", "journal"})


def _of_a_storage(absolute: str, own: str | None = None) -> bool:
    """Whether ``absolute`` is a storage's file (``own``, the calls' storage, or one this process
    opened: a worker may have opened none), its ``-wal``/``-shm``/``-journal``, or one of its
    value files: a few set lookups, however many storages the process opened."""
    if absolute == own or absolute in _storages:
        return True
    base, dash, end = absolute.rpartition("-")
    if dash and end in _SQLITE_FILES and (base == own or base in _storages):  # (not `runs-input.csv`)
        return True
    base, blobs, _ = absolute.partition(f".blobs{os.sep}")
    return bool(blobs) and base in _storages


def _excluded(storage_path: Path | None) -> tuple[str | None, tuple[str, ...]]:
    """The storage file, and the prefixes of what else is never a dependency: its blobs, the
    libraries, the system's pseudo-files (its -wal, -shm and -journal: :func:`_of_a_storage`)."""
    global _LIBRARY
    if _LIBRARY is None:  # dependencies.py imports this module: ask it once it is loaded
        _LIBRARY = _library_roots()
    if storage_path is None:
        return None, _LIBRARY
    own, real = os.path.abspath(storage_path), os.path.realpath(storage_path)  # (its value files sit beside the latter)
    return own, (f"{own}.blobs{os.sep}", f"{real}.blobs{os.sep}", *_LIBRARY)


def _library_roots() -> tuple[str, ...]:
    from .dependencies import LIBRARY_ROOTS

    package = str(Path(__file__).resolve().parent.parent) + os.sep
    prefixes = {os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    # A venv's prefix holds its site-packages; the base prefix holds the standard library.
    return (*LIBRARY_ROOTS, package, "/proc/", "/sys/", "/dev/", *sorted(prefixes))


