"""The hidden temporary file an export writes before it replaces its output, and the removal of
those that exports killed midway left behind.

A temporary file is named ``.<out>.<host>.<pid>.tmp`` (SQLite adds ``-journal``): a pid tells
whether its export still runs only on the host that wrote it, and a directory on a shared file
system (NFS, a cluster's home directories) is written by several. So a file of this host whose
process is gone is removed; a file of another host, or of an earlier version that wrote the
pid alone (``.<out>.<pid>.tmp``, whichever host it came from), only once it has not been
written to for a day: an export running writes its file all the time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

from .runtime.processes import is_running

__all__ = ["remove_killed_exports_files", "temp_path", "this_host"]

#: A file of another host untouched for this long belongs to no export still running.
OTHER_HOSTS_AFTER_SECONDS = 24 * 3600.0
_ENDS = ("tmp", "tmp-journal")


def this_host() -> str:
    """This machine's name as temporary files carry it: letters, digits, ``-`` and ``_`` (a
    dot would be taken for the one before the pid)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname()) or "host"


def temp_path(out: Path) -> Path:
    """Where an export to ``out`` by this process writes before replacing ``out``."""
    return out.with_name(f".{out.name}.{this_host()}.{os.getpid()}.tmp")


def remove_killed_exports_files(out: Path) -> None:
    """Remove what exports to ``out`` killed midway (kill -9, an out-of-memory kill) left: their
    hidden temporary files, as large as the export had got (see the module docstring)."""
    if os.name != "posix":  # os.kill(pid, 0) ends the process on Windows
        return
    prefix = f".{out.name}."
    for entry in out.parent.iterdir():
        if entry.name.startswith(prefix) and _left_behind(
            entry, entry.name[len(prefix) :].split(".")
        ):
            with contextlib.suppress(OSError):
                entry.unlink()


def _left_behind(entry: Path, parts: list[str]) -> bool:
    """Whether a file whose name after ``.<out>.`` splits into ``parts`` is a killed export's."""
    if len(parts) not in (2, 3) or parts[-1] not in _ENDS or not parts[-2].isdigit():
        return False  # not an export's temporary file
    if len(parts) == 3 and parts[0] == this_host():
        return not is_running(int(parts[-2]))
    return _untouched_for(entry, OTHER_HOSTS_AFTER_SECONDS)


def _untouched_for(entry: Path, seconds: float) -> bool:
    try:
        return entry.stat().st_mtime < time.time() - seconds
    except OSError:  # gone meanwhile
        return False
