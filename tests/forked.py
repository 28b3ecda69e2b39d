"""Tests' helper: what a function returns when a forked child runs it, the child leaving at
once whatever happens, and the parent never waiting forever on a child that hangs."""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable


def answer_of_forked_child(answer: Callable[[], bytes], timeout: float = 60.0) -> bytes:
    """``answer()`` as a forked child computed it, or a note saying it gave none in time."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, whatever happens
        try:
            os.write(write, answer())
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], timeout)
    got = os.read(read, 1 << 16) if ready else f"(no answer in {timeout:g} s)".encode()
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(read)
    return got
