"""The compiled-module cache directory: where compiled code goes when ``__pycache__`` cannot.

Compiled modules are normally cached beside CPython's own files, in ``__pycache__``. Where
bytecode writing is off (``PYTHONDONTWRITEBYTECODE=1``, ``python -B``: common in Docker images)
or ``__pycache__`` is not writable (a read-only site-packages), every import would run libcst
again (0.4-1.4 s per module). Those entries go to one directory of our own instead:

* ``$MANDALA_AST_CACHE_DIR`` if set, else the platform's user cache directory
  (``$XDG_CACHE_HOME/mandala_ast`` or ``~/.cache/mandala_ast`` on Linux,
  ``~/Library/Caches/mandala_ast`` on macOS, ``%LOCALAPPDATA%\\mandala_ast`` on Windows);
* one subdirectory per interpreter and compiler build, ``<cache_tag>-<key12>`` (the key covers
  the library, the transform and libcst versions and the optimisation level), so entries of
  other Pythons or releases are never read, and can be deleted as a whole;
* one file per source *content*, ``<stem>-<blake3 of the bytes>.pyc``: the same file at another
  path (a Docker build stage, a moved checkout) reuses it, an edited file gets a new entry;
* at most :data:`MAX_BYTES` of entries: each edit leaves the old entry behind, so when writing
  one takes the directory over that size, the least recently used go (a hit marks its entry
  used, at most once a day), as ccache does. Only writes prune, and they follow a compile
  (0.3-1.5 s), so a walk of the directory is nothing beside them; a directory read-only in an
  image is never pruned.

Like ``__pycache__``, whoever can write the directory decides what code runs: keep it the
user's own (the default) or read-only (a directory baked into an image), not a shared ``/tmp``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator

from blake3 import blake3

__all__ = ["ENV_VAR", "MAX_BYTES", "cache_dir", "clear_dir", "dir_files", "entry_path", "note_use", "prune"]

#: The environment variable that places the cache directory.
ENV_VAR = "MANDALA_AST_CACHE_DIR"

#: The size the directory's entries may reach before writing one prunes the least recently used.
MAX_BYTES = 512 << 20
#: How stale an entry's last-use time may get before a hit refreshes it (one utime a day at most).
_USE_GRANULARITY = 24 * 3600

# Our entries and the temp files of interrupted writes; the directory may be one the user also
# keeps other files in (MANDALA_AST_CACHE_DIR=/tmp), and those must survive `cache clear`.
_OURS = re.compile(r"-[0-9a-f]{32}\.pyc(\.\d+\.\d+\.tmp)?$")
#: The subdirectories entries go to: ``<cache_tag>-<first 12 of the compiler key>``.
_SUBDIRECTORY = re.compile(r".+-[0-9a-f]{12}")


def cache_dir() -> str:
    """The cache directory in effect: ``$MANDALA_AST_CACHE_DIR`` or the user cache directory.

    >>> os.environ[ENV_VAR] = "/tmp/c"; cache_dir()
    '/tmp/c'
    >>> del os.environ[ENV_VAR]
    """
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    return os.path.join(_user_cache_home(), "mandala_ast")


def _user_cache_home() -> str:
    # platformdirs' rules for the three platforms, in four lines: importing it would cost more
    # than the cache hit it serves.
    if sys.platform == "win32":
        return os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches")
    return os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")


def entry_path(data: bytes, source_path: str, key: str) -> str | None:
    """The cache-directory file for source bytes *data*, or None if Python has no cache tag.

    >>> a = entry_path(b"x = 1", "/a/mod.py", "ab" * 32)
    >>> a == entry_path(b"x = 1", "/b/mod.py", "ab" * 32) != entry_path(b"x = 2", "/a/mod.py", "ab" * 32)
    True
    """
    tag = sys.implementation.cache_tag
    directory = cache_dir()
    if tag is None or not os.path.isabs(directory):  # no HOME: never a "~" directory under cwd
        return None
    stem = os.path.splitext(os.path.basename(source_path))[0]
    name = f"{stem}-{blake3(data).hexdigest()[:32]}.pyc"
    return os.path.join(directory, f"{tag}-{key[:12]}", name)


def dir_files(root: str | None = None) -> Iterator[str]:
    """Every entry (and left-over temp file) of ours in the cache directory: in its
    ``<cache_tag>-<key12>`` subdirectories only (``$MANDALA_AST_CACHE_DIR`` may be a directory
    the user keeps other things in, ``/tmp``: nothing else of it is walked, nor deleted).

    >>> list(dir_files("/nonexistent"))
    []
    """
    top = root or cache_dir()
    try:
        subdirectories = [entry.path for entry in os.scandir(top) if _SUBDIRECTORY.fullmatch(entry.name)]
    except OSError:  # missing, or not a directory
        return
    for subdirectory in subdirectories:
        try:
            names = os.listdir(subdirectory)
        except OSError:  # not a directory after all, or removed meanwhile
            continue
        yield from (os.path.join(subdirectory, name) for name in names if _OURS.search(name))


def clear_dir(root: str | None = None) -> int:
    """Delete our entries from the cache directory; returns how many.

    >>> clear_dir("/nonexistent")
    0
    """
    removed = 0
    for path in list(dir_files(root)):
        try:
            os.unlink(path)
            removed += 1
        except OSError:  # another process cleared it first, or a read-only placed cache
            pass
    return removed


def note_use(entry: str) -> None:
    """Mark ``entry`` used now (its modification time), unless it was marked within a day;
    a read-only directory stays as it is.

    >>> note_use("/nonexistent/mod-0.pyc")
    """
    try:
        if time.time() - os.stat(entry).st_mtime > _USE_GRANULARITY:
            os.utime(entry)
    except OSError:
        pass


def prune(root: str | None = None, max_bytes: int | None = None, keep: str | None = None) -> int:
    """If our entries in the cache directory exceed ``max_bytes`` (:data:`MAX_BYTES`), delete
    the least recently used until they take at most three quarters of it, but never ``keep``
    (the entry just written); returns how many.

    >>> prune("/nonexistent")
    0
    """
    limit = MAX_BYTES if max_bytes is None else max_bytes
    entries = sorted(_sized(dir_files(root)))  # oldest use first
    total = sum(size for _, size, _ in entries)
    removed = 0
    for _, size, path in entries:
        if total <= limit * 3 // 4 if removed else total <= limit:
            break
        if path == keep:
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:  # another process pruned it first: it is gone all the same
            total -= size
            continue
        except OSError:  # a read-only placed cache
            continue
        total, removed = total - size, removed + 1
    return removed


def _sized(paths: Iterator[str]) -> Iterator[tuple[float, int, str]]:
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:  # removed meanwhile
            continue
        yield info.st_mtime, info.st_size, path
