"""The hidden temporary file an export writes before it replaces its output, and the removal of
those that exports killed midway left behind.

A temporary file is named ``.<out>.<host>.<pid>.tmp`` (SQLite adds ``-journal``): a pid tells
whether its export still runs only on the host that wrote it, and a directory on a shared file
system (NFS, a cluster's home directories) is written by several. So a file of this host whose
process is gone is removed; a file of another host, or of an earlier version that wrote the
pid alone (``.<out>.<pid>.tmp``, whichever host it came from), only once it has not been
written to for a day: an export running writes its file all the time.

An output name too long to leave room for the rest within the file system's longest name
(NAME_MAX, 255 bytes on most) is cut short in its temporary files' names, and ends with a hash
of the whole name (``.<start>~<hash>.<host>.<pid>.tmp``): the same for every export to that
output, on any host, so the next export still knows a killed one's files as its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from pathlib import Path

from .runtime.processes import is_running

__all__ = ["remove_killed_exports_files", "temp_path", "this_host"]

#: A file of another host untouched for this long belongs to no export still running.
OTHER_HOSTS_AFTER_SECONDS = 24 * 3600.0
_ENDS = ("tmp", "tmp-journal")
#: Room a temporary file's name keeps beside the output's: ``.``, the host (cut to 64, the
#: longest host name Linux allows), the pid (10 digits at most), ``.tmp-journal`` and the dots.
_ROOM = 1 + 1 + 64 + 1 + 10 + len(".tmp-journal")


def this_host() -> str:
    """This machine's name as temporary files carry it: letters, digits, ``-`` and ``_`` (a
    dot would be taken for the one before the pid)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:64] or "host"


def temp_path(out: Path) -> Path:
    """Where an export to ``out`` by this process writes before replacing ``out``."""
    return out.with_name(f".{_out_part(out)}.{this_host()}.{os.getpid()}.tmp")


def _out_part(out: Path) -> str:
    """``out``'s name as its temporary files carry it: whole, or, if too long to fit them
    within the file system's longest name, its start and a hash of it (see the module docstring)."""
    room = _name_max(out.parent) - _ROOM
    if len(os.fsencode(out.name)) <= room:
        return out.name
    mark = "~" + hashlib.blake2b(os.fsencode(out.name), digest_size=8).hexdigest()
    start = out.name
    while start and len(os.fsencode(start + mark)) > room:
        start = start[:-1]
    return start + mark


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # Windows (no pathconf), or not told
        return 255


def remove_killed_exports_files(out: Path) -> None:
    """Remove what exports to ``out`` killed midway (kill -9, an out-of-memory kill) left: their
    hidden temporary files, as large as the export had got (see the module docstring)."""
    if os.name != "posix":  # os.kill(pid, 0) ends the process on Windows
        return
    prefix = f".{_out_part(out)}."
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
