"""Calls being computed in this process, so that threads sharing a storage compute each once.

A thread of a run block that misses a call claims it while its body runs; a batch block
claims each missing call it dispatches, from then until the result is recorded (or the call
failed, or was put back). Another thread that misses a claimed call does not compute it: a
run block waits for the claim to end and looks the call up again (if the owner failed, it
finds nothing and computes the call itself); a batch's coordinator never blocks, its call
waits beside its other work (the scheduler is woken when a claim ends).

Waiting can deadlock where a claim cannot end until the waiting thread moves on, so:

- A call a thread pool's batch has queued (its body not started) is *taken over* by a thread
  that meets it: that thread computes it now, and the batch, when a worker comes to it, finds
  it taken and waits for the taker (a body calling an op whose call waits behind it in the
  pool, with every thread of the pool so busy, would wait for ever otherwise).
- A claim names the thread its end waits for next (the thread running its body, or running
  the chunk of calls it is part of; then the batch's coordinator, which records it). Before
  waiting, a thread follows those threads and what they wait for; if that leads back to
  itself it computes the call instead (a recursion, or a cycle across threads): twice, but
  never stuck. A call sent to a Dask client or another executor (``remote``) may be queued
  behind any thread of this process that runs such a body (a Dask cluster of threads): its
  end waits for all of those (:data:`SHIPPED`) too.

All of it runs under the storage's lock (the pipeline's), which ``ended`` waits release.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["SHIPPED", "CallTaken", "Claim", "Claims", "shipped_body"]

#: Threads of this process running a body sent to an executor or a Dask cluster (by thread
#: id: how many, nested), which this process does not schedule: a remote call's task may
#: wait behind any of them.
SHIPPED: dict[int, int] = {}


@contextlib.contextmanager
def shipped_body() -> Iterator[None]:
    """``with shipped_body():`` around a body that came from an executor (see SHIPPED)."""
    me = threading.get_ident()
    SHIPPED[me] = SHIPPED.get(me, 0) + 1
    try:
        yield
    finally:
        left = SHIPPED.pop(me) - 1
        if left:
            SHIPPED[me] = left


class CallTaken(Exception):
    """Raised in a batch's worker for a call another thread took over (see the module)."""


class Claim:
    """One call claimed by a run block's thread (``owner`` None) or a batch (its scheduler).
    ``thread``: the thread whose progress the claim's end waits for; None while a batch's
    call waits in its pool's queue (then another thread may take it over: ``taken``)."""

    __slots__ = ("claims", "coordinator", "owner", "remote", "taken", "thread")

    def __init__(self, claims: Claims, owner: Any, thread: int | None, remote: bool = False) -> None:
        self.claims, self.owner, self.thread, self.remote = claims, owner, thread, remote
        self.coordinator = thread
        self.taken = False

    def blockers(self) -> list[int]:
        """The threads whose progress the claim's end waits for (see the module)."""
        if self.thread is None:
            return []
        return [self.thread, *SHIPPED] if self.remote else [self.thread]

    def queued(self) -> None:
        """The call waits in a pool's queue: a thread that meets it takes it over. Threads
        waiting for it already are woken to do so (one may be the pool's only thread)."""
        with self.claims.lock:
            self.thread = None
            self.claims.wake_threads()

    def start(self) -> None:
        """Its body starts in this thread (a pool's): raises CallTaken if it was taken over."""
        with self.claims.lock:
            if self.taken:
                raise CallTaken
            self.thread = threading.get_ident()

    def ran(self) -> None:
        """Its task ended in the pool: what is left (recording it) is the coordinator's."""
        self.thread = self.coordinator


class Claims:
    """The calls claimed in one storage, and the threads waiting for them."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.held: dict[bytes, Claim] = {}
        self.ended = threading.Condition(lock)
        self.waiting_on: dict[int, Claim] = {}  # threads waiting on ``ended``, for what
        self.wakers: dict[int, Callable[[], None]] = {}  # batches waiting: id -> wake()
        #: Claims ended so far: a batch that looked calls up before some ended looks again.
        self.releases = 0

    def claim(self, cid: bytes, owner: Any = None, remote: bool = False) -> Claim:
        """A claim on the call for this thread (``owner`` None) or a batch (``remote``: its
        body goes to an executor or a cluster). A claim another holds is left in place (the
        caller waits for it, or computes anyway: a cycle), unless it is queued: then it is
        taken over."""
        mine = Claim(self, owner, threading.get_ident(), remote)
        current = self.held.get(cid)
        if current is None or current.thread is None:
            if current is not None:
                current.taken = True
            self.held[cid] = mine
        return mine

    def holder(self, cid: bytes) -> Claim | None:
        return self.held.get(cid)

    def release(self, cid: bytes, claim: Claim) -> bool:
        """End ``claim`` (its call recorded, failed or put back); False if it had ended, or
        was never in place. Waiting threads look again; waiting batches are woken."""
        if self.held.get(cid) is not claim:
            return False
        del self.held[cid]
        self.releases += 1
        if self.waiting_on:  # (wake_threads in line: every miss of a run block ends a claim)
            self.ended.notify_all()
        if self.wakers:
            for wake in list(self.wakers.values()):
                wake()
        return True

    def wake_threads(self) -> None:
        if self.waiting_on:  # (no notify, ~0.3 µs, when nobody waits)
            self.ended.notify_all()

    def wait_for(self, cid: bytes) -> bool:
        """A run block's thread missed a claimed call: wait until its claim ends (True: look
        again), or return False at once: compute it here (no claim, a queued one, or waiting
        would deadlock)."""
        claim = self.held.get(cid)
        if claim is None or claim.thread is None or self.leads_back(claim):
            return False
        me = threading.get_ident()
        self.waiting_on[me] = claim
        try:
            self.ended.wait()
        finally:
            del self.waiting_on[me]
        return True

    def leads_back(self, claim: Claim) -> bool:
        """Whether the end of ``claim`` waits, through the threads it waits for and what they
        wait for, on this thread."""
        me, seen = threading.get_ident(), set()
        threads = claim.blockers()
        while threads:
            thread = threads.pop()
            if thread == me:
                return True
            if thread not in seen:
                seen.add(thread)
                waited = self.waiting_on.get(thread)
                threads.extend(waited.blockers() if waited is not None else ())
        return False
