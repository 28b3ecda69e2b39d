"""Worker processes end with the process that started them.

A coordinator killed mid-batch (kill -9, an out-of-memory kill, a cluster's time limit) left
its pool's workers waiting for work forever, each holding a copy of its memory: each keeps
open the end of the work queue the others read, so none reads end-of-file.

On Linux the kernel tells the worker: ``prctl(PR_SET_PDEATHSIG)`` sends it a signal when its
parent ends, and its handler ends the worker if the parent process is gone (the signal also
comes when only the parent's *thread* that started the worker ends: a pool first used from
a thread that ended since; the worker then watches as elsewhere). Elsewhere a thread waits on
the parent's sentinel. The thread is avoided where possible: from Python 3.12, ``os.fork()``
in a process with a thread warns (DeprecationWarning), and op bodies that fork (or start a
``multiprocessing`` pool of their own) would warn in every worker.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from typing import Any

__all__ = ["exit_with_parent"]

#: prctl(2)'s option: the signal this process gets when its parent thread ends.
_PR_SET_PDEATHSIG = 1


def exit_with_parent() -> None:
    """Initializer of the process pools a batch starts: the worker ends as soon as the process
    that started it does.

    >>> pool = ProcessPoolExecutor(initializer=exit_with_parent)   # doctest: +SKIP
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if not _signalled_when_parent_ends():
        _watch(parent.sentinel)


def _signalled_when_parent_ends() -> bool:
    """Linux, in the main thread: ask for a signal when the parent ends; False elsewhere."""
    signum = getattr(signal, "SIGRTMIN", None)
    if not sys.platform.startswith("linux") or signum is None or threading.current_thread() is not threading.main_thread():
        return False
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no C library to ask (a static build)
        return False
    parent = os.getppid()
    # A real-time signal past those C libraries keep for their own use (SIGRTMIN is already
    # past glibc's): no default action to fear, and rarely a handler of a body's.
    signum += 3
    signal.signal(signum, _on_parent_end(parent))
    if prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        signal.signal(signum, signal.SIG_DFL)
        return False
    if os.getppid() != parent:  # it ended before the request was made: no signal will come
        os._exit(1)
    return True


def _on_parent_end(parent: int) -> Any:
    def handle(signum: int, frame: Any) -> None:
        if os.getppid() != parent:  # adopted by another process: the parent process ended
            os._exit(1)
        # Only the thread that started this worker ended: watch the process from now on.
        signal.signal(signum, signal.SIG_IGN)
        _watch(multiprocessing.parent_process().sentinel)  # type: ignore[union-attr]

    return handle


def _watch(sentinel: int) -> None:
    threading.Thread(target=_exit_once_gone, args=(sentinel,), daemon=True,
                     name="mandala_ast-exit-with-parent").start()


def _exit_once_gone(sentinel: int) -> None:
    # The sentinel reads end-of-file once the parent has ended: nothing is left to send a
    # result to, so the call running here (if any) ends with the process.
    multiprocessing.connection.wait([sentinel])
    os._exit(1)
