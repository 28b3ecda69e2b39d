"""Single flight: processes that miss the same call at once compute it once.

``Storage(path, single_flight=True)``. Before computing a missing call, a process takes the
call's lock: a file ``<db>.locks/<call content id>`` created exclusively, holding its host
and pid, its modification time kept fresh by a heartbeat thread while the call computes.
Another process missing the same call finds the lock, waits, and looks the call up again
once the lock is gone (the holder commits the call before releasing it). A lock whose holder
is dead (same host, no such pid) or whose heartbeat stopped longer than ``stale_after``
seconds ago is broken; after ``timeout`` seconds of waiting a process computes anyway. So a
lock can cost time, never a result.

It costs a miss a file creation, a commit and a file removal (a hit costs nothing), hence
opt-in.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..processes import is_running

__all__ = ["SingleFlight", "Waiting", "wait_for_call"]

#: Seconds between heartbeats of the locks a process holds.
HEARTBEAT_SECONDS = 1.0


class SingleFlight:
    """The lock directory of one storage.

    >>> flight = SingleFlight(Path("results.db.locks"))     # doctest: +SKIP
    >>> flight.acquire(b"...call id...")                    # doctest: +SKIP
    True
    """

    def __init__(self, folder: Path, *, timeout: float = 600.0, stale_after: float = 10.0) -> None:
        self.folder, self.timeout, self.stale_after = folder, timeout, stale_after
        self.me = f"{socket.gethostname()} {os.getpid()}"
        self.held: dict[bytes, Path] = {}
        self._lock = threading.Lock()
        self._beating: threading.Thread | None = None

    def path(self, cid: bytes) -> Path:
        return self.folder / cid.hex()

    def acquire(self, cid: bytes) -> bool:
        """Take the call's lock if no live process holds it (a stale one is broken). True
        too where no lock can be written (a full disk, a read-only folder): the call is
        computed unlocked, as without single flight, and its result handled as any miss's."""
        path = self.path(cid)
        for _ in range(2):  # the second try follows breaking a stale lock
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self.is_stale(path):
                    return False
                _unlink(path)
                continue
            except FileNotFoundError:  # the lock folder is new
                if not _made(self.folder):
                    return True
                continue
            except OSError:
                return True
            if not _written(fd, path, self.me):
                return True
            with self._lock:
                self.held[cid] = path
            self._start_heartbeat()
            return True
        return False

    def release(self, cid: bytes) -> None:
        """Drop the call's lock (after its result is committed, or its body failed)."""
        with self._lock:
            path = self.held.pop(cid, None)
        if path is not None:
            _unlink(path)

    def is_stale(self, path: Path) -> bool:
        """The holder died (same host, no such process) or stopped beating."""
        try:
            holder = path.read_text()
            beat = path.stat().st_mtime
        except OSError:  # released meanwhile
            return False
        host, _, pid = holder.rpartition(" ")
        if host == socket.gethostname() and pid.isdigit() and not is_running(int(pid)):
            return True
        return time.time() - beat > self.stale_after

    def is_locked(self, cid: bytes) -> bool:
        return self.path(cid).exists()

    def _start_heartbeat(self) -> None:
        if self._beating is None or not self._beating.is_alive():
            self._beating = threading.Thread(target=self._beat, name="mandala-single-flight", daemon=True)
            self._beating.start()

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            with self._lock:
                paths = list(self.held.values())
            if not paths:
                return
            for path in paths:
                try:
                    os.utime(path)
                except OSError:  # broken by another process that thought us dead
                    pass


class Waiting:
    """A wait for another process's lock on one call, with its deadline and poll interval."""

    def __init__(self, flight: SingleFlight) -> None:
        self.deadline = time.monotonic() + flight.timeout
        self.interval = 0.02

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def pause(self) -> float:
        """Seconds to sleep before looking again (growing to half a second)."""
        interval, self.interval = self.interval, min(self.interval * 1.5, 0.5)
        return interval


def wait_for_call(flight: SingleFlight, cid: bytes, look: Callable[[], Any]) -> Any:
    """Take the call's lock (None: compute it) or wait for the process holding it to store
    it (``look()``'s finding); None too when the wait timed out: then compute anyway."""
    waiting = Waiting(flight)
    while not flight.acquire(cid):
        if waiting.expired():
            return None
        time.sleep(waiting.pause())
        found = look()
        if found is not None:
            return found
    found = look()  # stored between our miss and our lock: nothing to compute
    if found is not None:
        flight.release(cid)
    return found


def _made(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a full disk, a read-only mount
        return False
    return True


def _written(fd: int, path: Path, holder: str) -> bool:
    """Write the holder into a new lock file; on a full disk remove it: left empty, others
    would wait for it until its missing heartbeat made it stale."""
    try:
        with os.fdopen(fd, "w") as file:
            file.write(holder)
    except OSError:
        _unlink(path)
        return False
    return True


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
