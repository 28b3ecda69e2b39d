"""Hashing bytes that come in several buffers, as segments of a fixed size hashed on all cores.

blake3 hashes one large buffer on all cores at nearly the rate of memory, but bytes fed to one
hasher buffer by buffer are hashed buffer by buffer: its threads join at the end of each, and a
buffer that starts off a power-of-two boundary of the stream is split into many small subtrees,
each a hand-off between threads. PIL's 16 MB blocks of pixels, each a buffer, hashed at about
0.8 of one buffer's rate that way on two cores. Here the stream is cut at every ``SEGMENT``
bytes, wherever its buffers begin and end, each segment is hashed on one core, the segments at
once on as many cores as the process may use, and the id is the hash of the stream's length
and its segments' digests in order: the same however the bytes are cut into buffers, and
different from the id of the same bytes hashed whole.

The pieces of a stream must stay valid while they are referenced (no buffer reused for the next
piece): segments are hashed while later pieces are read.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from .hash_threads import large_hash_threads, usable_cores

if TYPE_CHECKING:  # imported when first needed: concurrent.futures costs a memoizing process ~12 ms
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["SEGMENT", "segments_digest"]

#: Bytes hashed as one segment: large enough that handing it to a thread costs nothing next to
#: hashing it (~2 ms), small enough that two cores share a 100 MB image evenly.
SEGMENT = 16 << 20

#: Threads hashing segments at most: memory, not cores, bounds them on a large machine (a hash
#: holds up to twice as many segments as threads, each possibly a 16 MiB copy of an image's
#: pixels), and 8 cores already hash faster than memory delivers.
_MOST_WORKERS = 8
#: A segment alone is hashed on all cores from this size (below it the hand-off costs more).
_THREADED = 8 << 20

_pools: dict[int, ThreadPoolExecutor] = {}


def segments_digest(size: int, pieces: Iterable[Any]) -> bytes:
    """The digest of ``size`` bytes given as ``pieces`` (buffers), hashed as segments.

    >>> segments_digest(3, [b"ab", b"c"]) == segments_digest(3, [b"a", b"bc"])
    True
    """
    digests = _digests(_segments(pieces, size), size)
    hasher = blake3(f"segments|{SEGMENT}|{size}|".encode())
    for digest in digests:
        hasher.update(digest)
    return hasher.digest()


def _digests(segments: Iterator[list[memoryview]], size: int) -> Iterator[bytes]:
    workers = _workers()
    pool = _pool(workers) if workers > 1 and size > SEGMENT else None
    if pool is None:
        # One segment (a 1080p image is 8 MB): blake3's own threads share it, as a buffer's.
        threads = large_hash_threads() if size >= _THREADED else 1
        return (_segment_digest(segment, threads) for segment in segments)
    return _in_parallel(segments, pool, 2 * workers)


def _in_parallel(segments: Iterator[list[memoryview]], pool: ThreadPoolExecutor, ahead: int) -> Iterator[bytes]:
    # At most ``ahead`` segments hashed or waiting at once: the pieces they view stay referenced
    # only that long (an image whose pixels had to be copied is not copied whole).
    pending: deque[Future[bytes]] = deque()
    try:
        for segment in segments:
            pending.append(_submitted(pool, segment))
            if len(pending) > ahead:
                yield _oldest(pending)
        while pending:
            yield _oldest(pending)
    finally:
        if pending:  # left early (a Ctrl-C while waiting, a stream that failed)
            _settle(pending)


def _submitted(pool: ThreadPoolExecutor, segment: list[memoryview]) -> Future[bytes]:
    try:
        return pool.submit(_segment_digest, segment)
    except RuntimeError:  # the interpreter is shutting down: the pool takes no more work
        from concurrent.futures import Future

        done: Future[bytes] = Future()
        done.set_result(_segment_digest(segment, large_hash_threads()))
        return done


def _oldest(pending: deque[Future[bytes]]) -> bytes:
    digest = pending[0].result()  # (still pending while awaited: see _settle)
    pending.popleft()
    return digest


def _settle(pending: deque[Future[bytes]]) -> None:
    """Wait until no thread reads a piece of ``pending``'s segments. They may view memory the
    caller frees once the error reaches it (an image's, read where PIL keeps it: freed with the
    image, read on, it crashed the process). A Ctrl-C meanwhile is raised once all are done
    (a few segments' time)."""
    from concurrent.futures import wait

    for future in pending:
        future.cancel()  # (one not started yet never will be)
    interrupted = None
    while True:
        try:
            wait(pending)
            break
        except KeyboardInterrupt as error:
            interrupted = error
    if interrupted is not None:
        raise interrupted


def _segments(pieces: Iterable[Any], size: int) -> Iterator[list[memoryview]]:
    """The bytes of ``pieces`` as lists of views, ``SEGMENT`` bytes each but the last."""
    segment: list[memoryview] = []
    room, seen = SEGMENT, 0
    for piece in pieces:
        view = memoryview(piece).cast("B")
        seen += view.nbytes
        while view.nbytes:
            segment.append(view[:room])
            view, room = view[room:], room - min(room, view.nbytes)
            if room == 0:
                yield segment
                segment, room = [], SEGMENT
    if seen != size:  # a handler's own mistake: two lengths would alias two values
        raise ValueError(f"a byte stream announced {size} bytes and gave {seen}")
    if segment:
        yield segment


def _segment_digest(segment: list[memoryview], threads: int = 1) -> bytes:
    hasher = blake3(max_threads=threads)  # in parallel the segments share the cores, one each
    for view in segment:
        hasher.update(view)
    return hasher.digest()


def _workers() -> int:
    return min(usable_cores(), _MOST_WORKERS)


def _pool(workers: int) -> ThreadPoolExecutor | None:
    """This process's pool (a forked child inherits the parent's pool object but not its
    threads); None once the interpreter is shutting down (a thread still hashing after the main
    one returned), when no pool takes work and none can be made."""
    pid = os.getpid()
    if pid not in _pools:
        try:  # (importing the pool registers its exit hook: refused then)
            from concurrent.futures import ThreadPoolExecutor
        except RuntimeError:
            return None
        _pools.clear()
        _pools[pid] = ThreadPoolExecutor(workers, thread_name_prefix="mandala-hash")
    return _pools[pid]
