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
  path (a Docker build stage, a moved checkout) reuses it, an edited file gets a new entry.

Like ``__pycache__``, whoever can write the directory decides what code runs: keep it the
user's own (the default) or read-only (a directory baked into an image), not a shared ``/tmp``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator

from blake3 import blake3

__all__ = ["ENV_VAR", "cache_dir", "clear_dir", "dir_files", "entry_path"]

#: The environment variable that places the cache directory.
ENV_VAR = "MANDALA_AST_CACHE_DIR"

# Our entries and the temp files of interrupted writes; the directory may be one the user also
# keeps other files in (MANDALA_AST_CACHE_DIR=/tmp), and those must survive `cache clear`.
_OURS = re.compile(r"-[0-9a-f]{32}\.pyc(\.\d+\.\d+\.tmp)?$")


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
    """Every entry (and left-over temp file) of ours in the cache directory.

    >>> list(dir_files("/nonexistent"))
    []
    """
    top = root or cache_dir()
    for dirpath, _dirnames, filenames in os.walk(top):
        for name in filenames:
            if _OURS.search(name):
                yield os.path.join(dirpath, name)


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
