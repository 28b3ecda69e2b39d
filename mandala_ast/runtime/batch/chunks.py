"""Chunked dispatch: calls waiting for a pool go to it several per task when calls are fast.

A pool pays for each task it runs (a future, a callback, a wake-up, pickling on processes):
tens of microseconds, as much as a trivial body costs. Like joblib's automatic batch size,
the chunk grows while tasks finish fast and stays one call while calls are slow, so slow
calls still run side by side on every worker.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["Chunker"]

#: A chunk should keep a worker busy about this long: long enough that the per-task costs
#: are small beside it, short enough that results stream back and the workers share the tail.
TARGET_SECONDS = 0.005
MAX_CHUNK = 256


class Chunker:
    """The calls waiting for a pool, and how many of them the next task takes.

    >>> chunker = Chunker(workers=2)
    >>> chunker.add("call", ("op", (1,), {}))
    >>> chunker.take()
    [('call', ('op', (1,), {}))]
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.queued: deque[tuple[Any, tuple]] = deque()
        self.per_call: float | None = None  # seconds a call took in a task, smoothed

    def add(self, node: Any, item: tuple) -> None:
        self.queued.append((node, item))

    def room(self, tasks: int) -> bool:
        """Whether another task may go out with ``tasks`` in flight: a few per worker, so
        each worker has the next one at hand while the chunk size can still adapt."""
        return bool(self.queued) and tasks < 2 * self.workers

    def take(self) -> list[tuple[Any, tuple]]:
        """The next chunk's ``(node, item)`` pairs, oldest first."""
        count = min(self.size(), len(self.queued))
        return [self.queued.popleft() for _ in range(count)]

    def size(self) -> int:
        """One call until a task has been timed; then as many as fill TARGET_SECONDS, but
        no more than each worker's share of what is left."""
        if self.per_call is None:
            return 1
        fill = int(TARGET_SECONDS / max(self.per_call, 1e-7))
        share = -(-len(self.queued) // self.workers)
        return max(1, min(fill, share, MAX_CHUNK))

    def measured(self, calls: int, seconds: float) -> None:
        """A task of ``calls`` calls took ``seconds`` in its worker."""
        per_call = seconds / max(calls, 1)
        self.per_call = per_call if self.per_call is None else 0.5 * (self.per_call + per_call)
