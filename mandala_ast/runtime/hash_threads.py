"""How many threads blake3 hashes a large buffer on: all of them, fork-safely.

``blake3.AUTO`` hashes on rayon's global pool of threads. A process forked after its parent
used that pool (a process pool's worker, ``multiprocessing``'s, a pre-forking server's)
inherits the pool without its threads: its first hash handed to it waited forever (a file
dependency's, an array's of 8 MB). A forked child asks for a number of threads instead, for
which blake3 makes a pool of its own per hasher (a few threads started, next to milliseconds
of hashing). The digest is the same on any number of threads.
"""

from __future__ import annotations

import os

from blake3 import blake3

__all__ = ["large_hash_threads", "usable_cores"]

#: a number of threads once forked (0 until then: blake3.AUTO, read where it is used)
_threads = [0]


def large_hash_threads() -> int:
    """``max_threads`` for a buffer large enough to hash on several threads."""
    return _threads[0] or blake3.AUTO


def usable_cores() -> int:
    """The cores this process may run on (a container's, ``taskset``'s), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _in_a_forked_child() -> None:
    _threads[0] = usable_cores()  # (1: hashed in the calling thread, no pool at all)


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_in_a_forked_child)
