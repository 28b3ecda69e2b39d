"""Whether a process of this machine still runs, told by its pid: what export's temporary
files and single-flight locks left by a killed process are judged by."""

from __future__ import annotations

import os

__all__ = ["is_running"]


def is_running(pid: int) -> bool:
    """Whether process ``pid`` runs here (another user's included). Where ``os.kill(pid, 0)``
    would end the process instead (Windows), every pid is taken for running: what it guards
    is then left for its other rule (an age, a heartbeat).

    >>> is_running(os.getpid())
    True
    """
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: running
        return True
    return True
