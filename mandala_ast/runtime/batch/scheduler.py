"""Runs the part of a batch's call graph that a forced value, or the block's end, needs.

In waves: every call whose inputs are ready is identified and all of them are looked up in
one bulk lookup; stored calls are loaded and never dispatched; of the missing ones, identical
calls (same content id) are dispatched once and the others wait for it; the coordinator
records each result as it arrives (the storage commits periodically) and the calls it
unblocks form the next wave. Workers only compute.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import queue
import time
from dataclasses import dataclass
from typing import Any

from ..._errors import BatchWorkerError
from ..claims import CallTaken
from ..ops import AsyncOp
from . import pipeline_adapter as engine
from .asynchronous import AsyncBackend
from .chunks import Chunker
from .deferred import is_deferred, node_of, substitute
from .executors import Backend, Done, is_broken, result_load_error
from .failures import name_call
from .graph import DONE, FAILED, NEW, RUNNING, Node
from .single_flight import Waiting
from .worker import STOPS_THE_BLOCK, Slot, UnsentOutput

__all__ = ["RECORD_EVERY", "BatchStats", "Scheduler"]

#: Calls run in this process (no executor) are recorded in groups of this many, as a pool's
#: are a chunk at a time: a wave of 100k calls does not keep 100k results waiting (which
#: the garbage collector would visit, again and again) before recording the first.
RECORD_EVERY = 256
#: Longest wait for results, in seconds, before this thread runs Python again (see _collect).
_SIGNAL_CHECK = 0.2
#: Put in the queue of finished futures when a claim of this process ends (see _wake).
_WOKEN = object()


@dataclass
class BatchStats:
    """What a batch did: bulk lookups, calls found stored (before the block, or recorded by an
    identical call of the same batch: ``[inc(1), inc(1)]`` computes one and finds one), calls
    dispatched to workers, calls computed and recorded, calls failed (their own failures, not
    those skipped).

    >>> with storage.batch() as b:      # doctest: +SKIP
    ...     ys = [inc(x) for x in range(3)]
    >>> b.stats.dispatched              # doctest: +SKIP
    3
    """

    lookups: int = 0
    found: int = 0
    dispatched: int = 0
    computed: int = 0
    failed: int = 0
    skipped: int = 0


class Scheduler:
    """Drives one batch block's backend; everything here runs in the coordinating thread."""

    def __init__(self, storage: Any, block: Any, backend: Backend, bar: Any, max_concurrency: int | None) -> None:
        self.storage, self.block, self.backend, self.bar = storage, block, backend, bar
        self.max_concurrency = max_concurrency
        self.async_backend: AsyncBackend | None = None
        self.flight = engine.single_flight(storage)
        self.elsewhere: dict[Node, Waiting] = {}  # calls whose lock another process holds
        # Claims (runtime/claims.py): this batch's on the calls it dispatched, and those of
        # other threads of this process (run blocks, batches) that calls of this one wait for.
        self.claimed: dict[Node, Any] = {}
        self.waiting_here: dict[Node, Any] = {}
        self.released = 0  # claims this batch ended (the others' ended since a lookup: look again)
        self.looked = 0  # claims others had ended when the wave's calls were looked up
        self.waited_out: set[Node] = set()
        self.stats = BatchStats()
        self.in_flight: dict[Any, Node] = {}
        self.arrived: list[tuple[Node, Done]] = []  # bodies that ran at once, to record
        self.completed: queue.SimpleQueue = queue.SimpleQueue()  # futures, as they finish
        self.future_of: dict[Node, Any] = {}
        self.pool_of: dict[Any, Any] = {}
        self.leaders: dict[bytes, Node] = {}
        self.attempts: dict[Node, int] = {}
        self.failures: list[tuple[Node, Exception]] = []  # each failed call, with its error
        self.handed_over: set[int] = set()  # ids of failed calls whose error the block's code met
        self.chunker = Chunker(backend.max_workers or 1) if backend.chunks else None
        self.chunks: dict[Any, list[Node]] = {}  # futures of chunked tasks, and their calls
        # id of a mutable object -> how many calls run here were given it: only those shared
        # are hashed again once a body ran (changed_inputs), the others cannot be changed
        # under a call by another one.
        self.holders: dict[int, int] = {}
        self.abandoning = False  # interrupted: nothing is dispatched again (a retry, say)
        self.late: dict[Any, Any] = {}  # calls running when interrupted: future -> node(s)
        self.speculated: set[Node] = set()  # Dask: calls whose task went ahead, not yet adopted
        # A body's KeyboardInterrupt or SystemExit, raised once the results at hand are recorded.
        self.stopping: BaseException | None = None

    # -- the loop ------------------------------------------------------------------------------

    def run(self, targets: list[Node]) -> None:
        """Resolve ``targets`` and every call they need (each ends DONE or FAILED)."""
        if self.late:  # an interruption the block went on after: calls left running are settled
            self._keep_late()
        needed = _needed(targets)
        if not needed:
            return
        gc.freeze()  # the graph, again: the run allocates several objects per call too
        self._run(needed)

    def _run(self, needed: set[Node]) -> None:
        self.bar.add(len(needed))
        self.abandoning = False
        waiting = {n: sum(p in needed for p in n.parents) for n in needed}
        ready = sorted((n for n in needed if not waiting[n]), key=_serial)
        for node in ready:
            del waiting[node]
        try:
            while (ready or self.in_flight or self.chunks or self._queued() or self.arrived or self.elsewhere
                   or self.waiting_here):
                finished = self._pump()
                if ready:
                    wave, ready = sorted(ready, key=_serial), []
                    finished.extend(self._wave(wave))
                else:
                    finished.extend(self._collect())
                    ready.extend(self._look_elsewhere())
                self._release(finished, waiting, ready)
        except BaseException:
            self._abandon()
            raise

    def _wave(self, nodes: list[Node]) -> list[Node]:
        """One wave: identify the ready calls, look them all up at once, load the stored ones
        and dispatch the missing ones; returns the calls that finished (stored or failed)."""
        with _collector_paused():  # no op body runs until the dispatches below
            finished, identified = self._identify(nodes)
            if not identified:
                return finished
            self.stats.lookups += 1
            self.looked = engine.claims_ended(self.storage) - self.released
            hits = engine.find_stored(self.storage, [n.call for n in identified], block=self.block)
            stored = [(node, hit) for node, hit in zip(identified, hits) if hit is not None]
            if stored:
                finished.extend(self._load_stored(stored))
        finished.extend(self._dispatch([node for node, hit in zip(identified, hits) if hit is None]))
        return finished

    def _dispatch(self, missing: list[Node]) -> list[Node]:
        """A wave's missing calls: each one identical to a call already running waits for it;
        the others are checked all at once (may they be computed here?) and dispatched.
        Returns those that failed."""
        leaders, finished = self.leaders, list[Node]()
        fresh = [node for node in missing if node.call.cid not in leaders]
        checked = dict(zip(fresh, engine.check_new_calls(self.storage, [node.call for node in fresh], self.block)))
        for node in missing:
            leader = leaders.get(node.call.cid)
            if leader is not None:  # an identical call is running: looked up again once it ends
                self._cancel_speculative(node)
                leader.add_follower(node)
                continue
            inputs = checked[node]
            try:
                if isinstance(inputs, Exception):
                    raise inputs
                node.inputs = inputs
                if not self._locked(node):
                    continue
                if self._stored_meanwhile(node, finished):
                    continue
                self._submit(node)
            except Exception as exc:
                self._unlock(node)
                finished.append(self._failed(node, exc))
                continue
            # Below, nor the lock of a call handed over as Ctrl-C came: only a Dask task gets
            # here running (a pool's calls are queued here, sent by _pump), and _abandon cancels
            # it on the cluster, its result dropped, as every Dask call still running.
            except BaseException:  # Ctrl-C in a body run here: its lock must not outlive it
                self._unlock(node)
                raise
            leaders[node.call.cid] = node
            if len(self.arrived) >= RECORD_EVERY:  # bodies that ran here: recorded as they pile up
                finished.extend(self._record_ran_here())
        return finished

    def _identify(self, nodes: list[Node]) -> tuple[list[Node], list[Node]]:
        """(calls that failed already, calls identified) of a wave."""
        failed, prepared, items = [], [], []
        for node in nodes:
            try:
                if node.parents or node.hints:
                    node.args, node.kwargs, hints = self._inputs(node)
                else:  # no deferred input (most calls of a wide batch): as recorded
                    hints = node.hints
            except Exception as exc:
                failed.append(self._failed(node, exc))
                continue
            prepared.append(node)
            items.append((node.op, node.args, node.kwargs, hints))
        identified, here = [], []
        for node, call in zip(prepared, engine.identify_many(self.storage, items)):
            if isinstance(call, Exception):
                failed.append(self._failed(node, call))
            else:
                node.call = call
                identified.append(node)
                if self.backend.local or isinstance(node.op, AsyncOp):
                    here.append(call)
        if here:
            engine.count_holders(here, self.holders)
        return failed, identified

    def _load_stored(self, stored: list[tuple[Node, tuple]]) -> list[Node]:
        """Stored calls' outputs, loaded together; a call whose values cannot be loaded fails."""
        try:
            loaded = engine.load_many_outputs(self.storage, [hit[1] for _, hit in stored])
        except Exception:  # one of them: find which, one by one
            loaded = [None] * len(stored)  # type: ignore[list-item]
        finished = []
        for (node, hit), values in zip(stored, loaded):
            self._cancel_speculative(node)
            if values is None:
                try:
                    values = engine.load_outputs(self.storage, node.op, node.args, node.kwargs, hit[1], self.block)
                except Exception as exc:
                    finished.append(self._failed(node, exc))
                    continue
            self._done(node, hit[0], hit[1], values)
            finished.append(node)
        self.stats.found += len(finished)
        self.bar.update(loaded=len(finished))
        return finished

    def _locked(self, node: Node) -> bool:
        """True when this batch may compute the call: it claimed it in this process (no other
        thread's block computes it or has it queued: else the call waits for that one) and,
        with single flight, holds the call's lock (or there is no lock to take, or it waited
        long enough; else the call waits for the process that holds the lock)."""
        remote = not self.backend.local and not isinstance(node.op, AsyncOp)
        claim, holder = engine.claim(self.storage, node.call, self, self._wake, remote)
        if claim is None:
            self.waiting_here[node] = holder
            return False
        self.claimed[node] = claim
        if self.flight is None or node in self.waited_out:
            return True
        if self.flight.acquire(node.call.cid):
            return True
        self._unclaim(node)  # (claimed again when the other process let go of it)
        self.elsewhere.setdefault(node, Waiting(self.flight))
        return False

    def _wake(self) -> None:
        """A claim of this process ended (any thread, with the storage's lock held): the loop
        looks at the calls waiting here."""
        self.completed.put(_WOKEN)

    def _stored_meanwhile(self, node: Node, finished: list[Node]) -> bool:
        """Whether the call, now claimed, was stored since the wave looked it up: by another
        thread of this process, whose claim ended in between (looked up in memory, only if
        some claim ended); with single flight, by another process (it computed the call,
        committed it and let go of its lock in between: computing it here again is what the
        lock is for not doing). If so, it is loaded (onto ``finished``) and let go of."""
        if self.flight is not None:
            hit = engine.find_stored(self.storage, [node.call], in_file=True)[0]
        elif engine.claims_ended(self.storage) - self.released != self.looked:
            hit = engine.find_stored(self.storage, [node.call])[0]
        else:
            return False
        if hit is None:
            return False
        self._unlock(node)
        finished.extend(self._load_stored([(node, hit)]))
        return True

    def _unlock(self, node: Node) -> None:
        """Let go of the call's claim, and of its single-flight lock unless another thread took
        the call over (the lock is that thread's now)."""
        claim = self._unclaim(node)
        if self.flight is not None and node.call is not None and not (claim is not None and claim.taken):
            self.flight.release(node.call.cid)

    def _unclaim(self, node: Node) -> Any:
        """End the call's claim, if this batch has one; returns it."""
        claim = self.claimed.pop(node, None)
        if claim is not None and engine.release_claim(self.storage, node.call, claim):
            self.released += 1
        return claim

    def _taken(self, node: Node) -> list[Node]:
        """Another thread of this process took over the call before a thread of the pool came
        to it (runtime/claims.py): it is looked up again once that thread's claim ends."""
        if self.leaders.get(node.call.cid) is node:
            del self.leaders[node.call.cid]
        self.claimed.pop(node, None)  # (neither its claim nor its lock is this batch's now)
        node.state = NEW
        self.stats.dispatched -= 1
        if not self.abandoning:
            self.waiting_here[node] = engine.wait_for_claim(self.storage, node.call, self, self._wake)
        return []

    def _look_elsewhere(self) -> list[Node]:
        """Calls another process is computing: looked up again once its lock is gone (or
        broken, or waited for too long); calls another thread of this one computes, once
        its claim ended."""
        again = []
        for node, holder in list(self.waiting_here.items()):
            if holder is None or engine.claim_holder(self.storage, node.call) is not holder:
                del self.waiting_here[node]
                again.append(node)
        if again and not self.waiting_here:
            engine.stop_waking(self.storage, self)
        for node, waiting in list(self.elsewhere.items()):
            if waiting.expired():
                self.waited_out.add(node)
            elif self.flight.is_locked(node.call.cid) and not self.flight.is_stale(self.flight.path(node.call.cid)):
                continue
            del self.elsewhere[node]
            again.append(node)
        return again

    def _submit(self, node: Node, solo: bool = False, alone: bool = False) -> None:
        args, kwargs = engine.body_arguments(node.args, node.kwargs)
        if isinstance(node.op, AsyncOp):
            future = self._async().submit(node.op, args, kwargs)
        elif node.speculative is not None and _inputs_match(node.speculative[1]):
            future = node.speculative[0]  # on the cluster already
        elif solo:
            future = self._hand(node, functools.partial(self.backend.solo, node.op, args, kwargs))
        else:
            traced = engine.needs_trace(self.storage, node.call)
            claim = self._queued_claim(node)
            if self.chunker is not None and not alone:
                self._queue(node, self.backend.chunk_item(node.op, args, kwargs, traced, claim))  # type: ignore[attr-defined]
                return
            future = self._hand(node, functools.partial(self.backend.submit, node.op, args, kwargs, traced,
                                                        claim=claim))
        self._running(node, future)

    def _queued_claim(self, node: Node) -> Any:
        """On a thread pool, the call's claim, which other threads may now take over (the
        worker that comes to it checks); elsewhere None (bodies run here at once, or in other
        processes, which wait for no thread of this one)."""
        claim = self.claimed.get(node) if self.backend.queues else None
        if claim is not None:
            claim.queued()
        return claim

    def _hand(self, node: Node, submit: Any) -> Any:
        """``submit()``, the call handed to the backend, as one step for Ctrl-C (as :meth:`_send`
        does for a chunk): interrupted before the pool gave back its future, the call is noted
        running all the same if the pool took it, so that its result is kept."""
        try:
            return submit()
        except Exception:
            raise
        except BaseException:
            future = _started(self.backend.cut_short())
            if future is not None:
                self._running(node, future)
            raise

    def _running(self, node: Node, future: Any) -> None:
        """The call is handed over: its future is waited for (a body that ran at once is
        recorded with the others that did)."""
        node.speculative = None
        self.speculated.discard(node)
        if type(future) is Done:  # ran at once: no waiting
            node.state = RUNNING
            self.arrived.append((node, future))
            self.stats.dispatched += 1
            return
        self.in_flight[future] = node
        self.backend.watch(future, self.completed.put)
        self.future_of[node] = future
        self.pool_of[future] = getattr(self.backend, "pool", None)
        node.state = RUNNING
        self.stats.dispatched += 1
        self.bar.update(running=1)
        if self.backend.chains and not isinstance(node.op, AsyncOp):
            self._speculate(node.children)

    def _queue(self, node: Node, item: tuple) -> None:
        """Dispatched, to go out in the next chunk (:meth:`_pump`; counted running then)."""
        self.chunker.add(node, item)  # type: ignore[union-attr]
        node.speculative = None
        node.state = RUNNING
        self.stats.dispatched += 1

    def _queued(self) -> bool:
        return self.chunker is not None and bool(self.chunker.queued)

    def _pump(self) -> list[Node]:
        """Send queued calls to the pool, in chunks; returns calls that failed to go."""
        finished: list[Node] = []
        chunker = self.chunker
        while chunker is not None and chunker.room(len(self.chunks)):
            taken = chunker.take()
            pool = self.backend.pool  # type: ignore[attr-defined]
            try:
                future = self._send(chunker, taken)
            except Exception as exc:  # a pool broken before its death was noticed, or shut down
                for node, _ in taken:
                    finished.extend(self._worker_died(node, pool, exc) if is_broken(exc) else [self._failed(node, exc)])
                continue
            self.pool_of[future] = pool
            self.bar.update(running=len(taken))
            future.add_done_callback(self.completed.put)
        return finished

    def _send(self, chunker: Chunker, taken: list[tuple[Node, tuple]]) -> Any:
        """Hand a chunk to the pool and note it running, as one step for Ctrl-C. Interrupted
        in between, its calls were neither queued nor running: never let go of (their
        single-flight locks kept for good), nor kept. Now, interrupted before the pool gave
        back its future, they go back to the queue (which :meth:`_abandon` empties, letting go
        of their locks); after, the chunk is running (its result kept if it comes back)."""
        future = None
        try:
            future = self.backend.submit_chunk([item for _, item in taken])  # type: ignore[attr-defined]
            self.chunks[future] = [node for node, _ in taken]
        except Exception:
            raise
        except BaseException:
            future = future or _started(self.backend.cut_short())
            if future is None:
                chunker.queued.extendleft(reversed(taken))
            else:
                self.chunks[future] = [node for node, _ in taken]
            raise
        return future

    def _chunk_arrived(self, future: Any) -> list[Node]:
        """Record each call of a chunk on its own: one call's failure is only its own."""
        nodes, pool = self.chunks.pop(future), self.pool_of.pop(future, None)
        self.bar.update(running=-len(nodes))
        try:
            outcomes, seconds = future.result()
        except BaseException as exc:
            if is_broken(exc):
                return [n for node in nodes for n in self._worker_died(node, pool, exc)]
            if isinstance(exc, STOPS_THE_BLOCK):  # between two of its calls
                return [n for node in nodes for n in self._ended_oddly(node, exc)]
            # The task failed as a whole (a result that cannot be pickled back, say): each
            # call runs again in a task of its own, where a failure is that call's.
            return [n for node in nodes for n in self._again_alone(node)]
        assert self.chunker is not None
        self.chunker.measured(len(nodes), seconds)
        finished: list[Node] = []
        computed = []
        for node, (value, error) in zip(nodes, outcomes):
            if error is None:
                computed.append((node, value, None))
            else:
                finished.extend(self._arrived(node, Done(value, error), None))
        for node in nodes[len(outcomes):]:  # a KeyboardInterrupt or SystemExit ended the chunk
            self._put_back(node)
        finished.extend(self._record_computed(computed))
        return finished

    def _again_alone(self, node: Node) -> list[Node]:
        if self.abandoning:  # interrupted: not run again
            self._put_back(node)
            return []
        try:
            self._submit(node, alone=True)
        except Exception as exc:
            return [self._failed(node, exc)]
        return []

    def _async(self) -> AsyncBackend:
        if self.async_backend is None:
            self.async_backend = AsyncBackend(self.max_concurrency)
        return self.async_backend

    def close(self) -> None:
        """Let go of the workers this batch started; after an interruption, record the calls
        whose results came back meanwhile (nothing more is waited for)."""
        try:
            self.backend.close()
            if self.late:  # running on threads of a pool the user passed in: kept too
                self.backend.settle(list(self.late))
            if self.async_backend is not None:
                self.async_backend.close()
        finally:  # (a second Ctrl-C may cut the wait: the calls left running let go of their locks)
            try:
                if self.late:
                    self._keep_late()
            finally:  # no claim outlives its batch: another thread would wait for it for ever
                for node in list(self.claimed):
                    self._unlock(node)
                self.waiting_here.clear()
                engine.let_go(self.storage, self)  # (one an interruption kept from self.claimed too)

    def _keep_late(self) -> None:
        """The calls running when the batch was interrupted whose results came back since."""
        late, self.late, self.abandoning = self.late, {}, True
        late = {future: entry for future, entry in late.items()
                if all(node.state is NEW for node in _nodes(entry))}  # else dispatched again since
        nodes = [node for entry in late.values() for node in _nodes(entry)]
        for node in nodes:
            node.state = RUNNING
        try:
            self._keep_arrived(late)  # (recording a call lets go of its lock, once committed)
        finally:
            for node in nodes:
                if node.state is RUNNING:  # no result: as if never started
                    node.state = NEW
                    self._unlock(node)

    def _collect(self) -> list[Node]:
        """Record the results that have arrived, waiting for at least one (or, while calls
        wait for another process, at most a poll interval)."""
        finished: list[Node] = []
        if self.arrived:
            return self._record_ran_here()
        pause = min((w.pause() for w in self.elsewhere.values()), default=None)
        if not self.in_flight and not self.chunks and not self.waiting_here:
            time.sleep(pause or 0)
            return finished
        # Never without a timeout: a Ctrl-C the kernel hands to another thread only marks it
        # for this one, whose handler runs when it next runs Python code.
        wait = _SIGNAL_CHECK if pause is None else min(pause, _SIGNAL_CHECK)
        try:  # futures report here as they finish: waiting costs nothing per call in flight
            done = [self.completed.get(timeout=wait)]
        except queue.Empty:
            return finished
        while True:
            try:
                done.append(self.completed.get_nowait())
            except queue.Empty:
                break
        done = [future for future in done if future is not _WOKEN]  # (woken: _look_elsewhere looks)
        if not done:
            return finished
        if self.backend.fetch_window:
            self._more_done(done)
        self.backend.fetch(done)  # (Dask: the results of all of them, in one go)
        for future in done:
            if future in self.chunks:
                finished.extend(self._chunk_arrived(future))
                continue
            if future not in self.in_flight:  # cancelled, or already recorded
                continue
            node = self.in_flight.pop(future)
            del self.future_of[node]
            self.bar.update(running=-1)
            finished.extend(self._arrived(node, future, self.pool_of.pop(future, None)))
        if self.stopping is not None:  # a body's KeyboardInterrupt or SystemExit, once the rest is kept
            stopping, self.stopping = self.stopping, None
            raise stopping
        return finished

    def _more_done(self, done: list) -> None:
        """More futures to fetch with ``done``'s, in the same round trip (Dask: one gather,
        through the scheduler, for all of them): waits until an eighth of the calls in
        flight have finished, all of them have, or the backend's fetch window has passed
        (a result is recorded that much later at most; a call chained to it is on the cluster
        already). Fetching each result as it came cost a gather per 3 calls of a batch of
        trivial calls, which an in-process cluster's event loop pays for per call."""
        deadline = time.monotonic() + self.backend.fetch_window
        enough = max(1, len(self.in_flight) // 8)
        while len(done) < enough:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                done.append(self.completed.get(timeout=left))
            except queue.Empty:
                return

    def _record_ran_here(self) -> list[Node]:
        """Record the calls whose bodies ran at once (no executor) since the last time."""
        ran_here, self.arrived = self.arrived, []
        finished: list[Node] = []
        computed = []
        for node, outcome in ran_here:
            if outcome.error is None:
                computed.append((node, outcome.value, outcome))
            else:
                finished.extend(self._arrived(node, outcome, None))
        finished.extend(self._record_computed(computed))
        return finished

    def _arrived(self, node: Node, future: Any, pool: Any) -> list[Node]:
        try:
            result = future.result()
        except UnsentOutput as exc:
            return [self._failed(node, BatchWorkerError(
                f"the output of {node.describe()} could not be sent back from the worker process "
                f"(it cannot be pickled: {exc}); return a picklable value, or use executor='threads'"
            ))]
        except CallTaken:
            return self._taken(node)
        except Exception as exc:
            if is_broken(exc):
                return self._worker_died(node, pool, exc)
            return [self._failed(node, exc)]
        except BaseException as exc:
            return self._ended_oddly(node, exc)
        return self._record_computed([(node, result, future)])

    def _ended_oddly(self, node: Node, error: BaseException) -> list[Node]:
        """A body that raised a BaseException that is not an Exception. A KeyboardInterrupt or
        SystemExit ends the block, as in a run block, once the results at hand are recorded
        (:meth:`_collect` raises it): the call is as if never dispatched, its lock let go.
        Another one (GeneratorExit) fails the call alone, with an error naming it."""
        if isinstance(error, STOPS_THE_BLOCK):
            self._put_back(node)
            self.stopping = self.stopping or error
            return []
        failure = BatchWorkerError(
            f"{node.describe()} raised {_shown(error)}, which is not an Exception "
            "(a BaseException: an op fails its call by raising an Exception); the call failed, nothing "
            "stored; the batch's other calls are stored"
        )
        failure.__cause__ = error
        return [self._failed(node, failure)]

    def _record_computed(self, arrived: list[tuple[Node, tuple, Any]]) -> list[Node]:
        """Record calls whose bodies ran, ``(node, body result, future)`` each, in one go (a
        chunk's, or those that ran here since the last look); each one that cannot be
        recorded (its outputs cannot be stored, say) fails alone."""
        finished: list[Node] = []
        recording, items, changed = [], [], []
        untraced = engine.untraced()
        shared = self._changed_under([node for node, _, _ in arrived])
        for node, (outputs, ran, op_calls, duration, files), future in arrived:
            try:
                outputs = engine.split_outputs(node.op, outputs)
            except Exception as exc:
                finished.append(self._failed(node, exc))
                continue
            unsure = self._unsure(node, outputs, shared.get(node))
            if unsure is not None:
                changed.append(((node, outputs, future), unsure))
                continue
            recording.append((node, outputs, future))
            ran = untraced if ran is None else engine.traced_elsewhere(ran) if type(ran) is tuple else ran
            items.append((node.call, outputs, (ran, op_calls, files), duration, node.inputs))
        if not items and not changed:
            return finished
        try:
            # Single flight: committed at once, as processes waiting for the calls look in the file.
            results = engine.record_many(self.storage, items, commit=self.flight is not None) if items else []
        except Exception as exc:
            results = [exc] * len(items)
        recording += [entry for entry, _ in changed]
        results += [unsure for _, unsure in changed]
        computed = unstored = 0
        for (node, outputs, future), out_cids in zip(recording, results):
            if isinstance(out_cids, Exception):
                handed = engine.handed_back(out_cids)
                if handed is None:
                    finished.append(self._failed(node, out_cids))
                    continue
                out_cids, outputs = handed  # not stored (computed again next time), as in a run block
                unstored += 1
            else:
                computed += 1
            self._unlock(node)
            self._done(node, engine.row_hid(node.call), out_cids, outputs)
            node.produced_by = future
            finished.append(node)
        self.stats.computed += computed
        self.bar.update(done=computed + unstored)
        return finished

    def _changed_under(self, nodes: list[Node]) -> dict[Node, list[str]]:
        """Calls given the same object are identified before any of them runs; if one changes
        it in place, the others' bodies see a value they are not keyed on (and its own input
        is no longer what was hashed): the calls of ``nodes`` (whose bodies ran) with such
        an argument, and its names."""
        if not self.holders:
            return {}
        changed = engine.changed_inputs(self.storage, [node.call for node in nodes], self.holders)
        return {node: names for node, names in zip(nodes, changed) if names}

    def _unsure(self, node: Node, outputs: tuple, changed: list[str] | None) -> Exception | None:
        """A call whose shared argument changed is handed back unstored, with a warning naming
        it (the error :func:`engine.unstored` makes), not stored under the old value."""
        if not changed:
            return None
        names = ", ".join(map(repr, changed))
        return engine.unstored(node.call, outputs, (
            f"{node.describe()}: argument {names}, an object other calls of the batch were given too, "
            "was changed in place while the batch ran (by this op or another one: xs.append(...), "
            "arr *= 2), so its body may have seen another value than the one the call is keyed on. "
            "Copy the value in the op that changes it, or give each call its own"
        ))

    def _worker_died(self, node: Node, pool: Any, broken: BaseException) -> list[Node]:
        """A pool lost a worker: every call it was running fails with BrokenProcessPool, and
        none of them says which call was running in the dead worker. Each runs once more in
        a fresh pool; one that breaks that pool too runs alone, where a death names it. (A
        result the coordinator could not load breaks the pool the same way: ``broken`` says.)"""
        if self.abandoning:  # interrupted: not run again
            self._put_back(node)
            return []
        attempts = self.attempts[node] = self.attempts.get(node, 0) + 1
        if attempts == 1 and (pool is not getattr(self.backend, "pool", None) or self.backend.restart()):
            self._submit(node, alone=True)  # not in a chunk: a second death must narrow the suspects
            return []
        if attempts == 2:
            self._submit(node, solo=True)
            return []
        unloaded = result_load_error(broken)
        if unloaded is not None:
            error = BatchWorkerError(
                f"the output of {node.describe()} could not be loaded back from the worker process "
                f"(it pickles, but loading the pickle raised {unloaded}); the batch's other calls are stored"
            )
        else:
            error = BatchWorkerError(
                f"the worker process computing {node.describe()} died (killed by a signal, crashed "
                "or ran out of memory); the batch's other calls are stored"
            )
        return [self._failed(node, error)]

    # -- outcomes ------------------------------------------------------------------------------

    def _done(self, node: Node, hid: bytes, out_cids: tuple, values: tuple) -> None:
        node.values = tuple(values)
        node.refs = (hid, out_cids)  # made into Refs only if compiled code passes them on
        node.state = DONE
        node.args = node.kwargs = node.hints = None  # type: ignore[assignment]
        node.inputs = None

    def _put_back(self, node: Node) -> None:
        """Interrupted, its body not run or cut short: as if never dispatched, its lock let go."""
        node.state = NEW
        self._unlock(node)

    def _failed(self, node: Node, error: Exception) -> Node:
        self._unlock(node)
        node.error = name_call(error, node.describe())
        node.state = FAILED
        self.failures.append((node, error))
        self.stats.failed += 1
        self.bar.update(failed=1)
        return node

    def _release(self, finished: list[Node], waiting: dict, ready: list[Node]) -> None:
        """Hand the calls that ``finished`` unblocks to the next wave; a call whose input
        failed is not run: it fails with that input's error (reported once, by its call)."""
        stack = list(finished)
        while stack:
            node = stack.pop()
            if node.call is not None and self.leaders.get(node.call.cid) is node:
                del self.leaders[node.call.cid]
            followers, node.followers = node.followers, ()
            for follower in followers:
                if node.state is DONE:
                    ready.append(follower)
                else:
                    stack.append(self._skip(follower, node))
            for child in node.children:
                if child not in waiting:
                    continue
                waiting[child] -= 1
                if waiting[child]:
                    continue
                del waiting[child]
                failed = next((p for p in child.parents if p.state is FAILED), None)
                if failed is None:
                    ready.append(child)
                else:
                    stack.append(self._skip(child, failed))

    def _skip(self, node: Node, cause: Node) -> Node:
        self._cancel_speculative(node)
        node.state, node.error, node.skipped = FAILED, cause.error, cause.skipped or cause
        self.stats.skipped += 1
        self.bar.update(failed=1)
        return node

    def _abandon(self) -> None:
        """Ctrl-C or another interruption: keep the results that already arrived, cancel the
        rest (calls not yet started never start). Calls still running are kept aside: those
        whose results come back while the workers are let go (:meth:`close`; a thread pool's
        shutdown waits for its running calls) are recorded then."""
        self.abandoning = True
        for node, done in self.arrived:
            try:
                self._arrived(node, done, None)
            except Exception:  # noqa: BLE001 - keeping what we can; the interruption wins
                pass
        self.arrived = []
        running = {**self.in_flight, **self.chunks}
        self.in_flight, self.chunks = {}, {}
        self.backend.fetch(list(running))  # (Dask: the results that came back, kept below)
        self.late = self._keep_arrived(running)
        started = set()
        for future, entry in self.late.items():
            if not future.cancel():  # running: its lock is kept until its result comes (close)
                started.update(_nodes(entry))
        self.backend.cancel(list(self.late))
        self._cancel_speculated()
        dropped = [node for entry in self.late.values() for node in _nodes(entry)]
        if self.chunker is not None:
            dropped.extend(node for node, _ in self.chunker.queued)
            self.chunker.queued.clear()
        for node in dropped:
            if node not in started:  # (a running call's lock, let go now, would let another
                self._unlock(node)  # process compute it again while it still runs here)
            node.state = NEW
        self.future_of.clear()

    def _keep_arrived(self, running: dict) -> dict:
        """Record the calls (a node) or chunks (a list of nodes) of ``running`` (by future)
        whose results have come back; returns the others. A call interrupted in its worker
        (a KeyboardInterrupt there too) has no result to keep: it is put back, its lock let go."""
        left = {}
        for future, nodes in running.items():
            if not future.done() or future.cancelled():
                left[future] = nodes
                continue
            try:
                if type(nodes) is list:
                    self.chunks[future] = nodes
                    self._chunk_arrived(future)
                else:
                    self._arrived(nodes, future, None)
            except Exception:  # noqa: BLE001 - keeping what we can; the interruption wins
                self.chunks.pop(future, None)
        self.stopping = None  # (the block is being interrupted already)
        return left

    # -- inputs --------------------------------------------------------------------------------

    def _inputs(self, node: Node) -> tuple[tuple, dict, dict | None]:
        """The call's arguments with its inputs' values in place of deferred ones, and the
        Refs (history) compiled code knew for them, now with their ids."""
        args = substitute(node.args, _value)
        kwargs = {k: substitute(v, _value) for k, v in node.kwargs.items()}
        if node.hints is None:
            return args, kwargs, None
        hints = type(node.hints)()
        for name, ref in node.hints.items():
            if is_deferred(ref.value):
                parent, index = node_of(ref.value)
                hints[name] = parent.output_refs()[index]
            else:
                hints[name] = ref
        return args, kwargs, hints

    def _speculate(self, children: list[Node]) -> None:
        """Dask: submit calls whose inputs are all computed or being computed, with the
        upstream futures as arguments, so outputs flow worker to worker. Each is still looked
        up once its inputs are known; a stored one is cancelled, a missing one adopted."""
        stack = list(children)
        while stack:
            child = stack.pop()
            if child.state is not NEW or child.speculative is not None or isinstance(child.op, AsyncOp):
                continue
            upstream: list[tuple[Node, Any]] = []
            slot = functools.partial(self._slot, upstream=upstream)
            try:
                args = substitute(child.args, slot)
                kwargs = {k: substitute(v, slot) for k, v in child.kwargs.items()}
            except LookupError:  # an input neither computed nor on its way
                continue
            if self._chain(child, args, kwargs, upstream):
                stack.extend(child.children)

    def _chain(self, node: Node, args: tuple, kwargs: dict, upstream: list) -> bool:
        """Send a speculative task, as one step for Ctrl-C (as :meth:`_hand` sends a call):
        interrupted once the client sent it, its future is kept all the same (not left in
        the backend), for :meth:`_abandon` to cancel on the cluster. False if it cannot be
        sent (an argument that does not pickle): the call goes when it is looked up, where
        the error is its own, not that of the call whose dispatch sent it ahead."""
        self.speculated.add(node)
        try:
            future = self.backend.submit(node.op, args, kwargs, upstream=tuple(f for _, f in upstream))
        except Exception:
            self.speculated.discard(node)
            return False
        except BaseException:
            future = self.backend.cut_short()
            if future is not None:
                node.speculative = (future, upstream)
            raise
        node.speculative = (future, upstream)
        return True

    def _slot(self, deferred: Any, upstream: list) -> Any:
        parent, index = node_of(deferred)
        if parent.state is DONE:
            return parent.values[index]
        future = self.future_of.get(parent) or (parent.speculative and parent.speculative[0])
        if future is None or parent.state is FAILED:
            raise LookupError(parent)
        if (parent, future) not in upstream:
            upstream.append((parent, future))
        return Slot(upstream.index((parent, future)), index)

    def _cancel_speculative(self, node: Node) -> None:
        """Drop a speculative task: released, not cancelled (on Dask, cancelling a future
        cancels the tasks chained to it too)."""
        node.speculative = None
        self.speculated.discard(node)

    def _cancel_speculated(self) -> None:
        """Interrupted: the tasks sent ahead for calls not looked up yet are cancelled on the
        cluster (one whose inputs had all finished would else run there to its end, for
        nobody; the others go with the inputs' tasks, cancelled too)."""
        futures = [node.speculative[0] for node in self.speculated if node.speculative is not None]
        for node in self.speculated:
            node.speculative = None
        self.speculated.clear()
        if futures:
            self.backend.cancel(futures)


@contextlib.contextmanager
def _collector_paused() -> Any:
    """A wave's bulk identification, lookup and loading make a few objects per call and
    free none of them as garbage; with 100k calls, the collector's passes over them cost
    more than the work (measured), so it pauses for these steps. No op body runs in them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _inputs_match(upstream: list) -> bool:
    """A speculative task may stand for its call only if each input it was chained to is
    the result recorded for that input (not one found stored, which may differ)."""
    return all(parent.produced_by is future for parent, future in upstream)


def _started(future: Any) -> Any:
    """``future`` if its task started (it runs: its result is to be kept), None if it was
    cancelled now, before starting (or there is none)."""
    if future is None or future.cancel():
        return None
    return future


def _shown(error: BaseException) -> str:
    """``GeneratorExit``, or ``SystemExit: 3``: the exception, and its message if it has one."""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a __str__ that fails says nothing more
        text = ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _nodes(entry: Node | list[Node]) -> list[Node]:
    """The calls of a future the scheduler waits for: one, or a chunk's."""
    return entry if isinstance(entry, list) else [entry]


def _serial(node: Node) -> int:
    return node.serial


def _value(deferred: Any) -> Any:
    parent, index = node_of(deferred)
    return parent.values[index]


def _needed(targets: list[Node]) -> set[Node]:
    """The targets and the calls they need that have not run yet."""
    needed: set[Node] = set()
    stack = [t for t in targets if t.state is NEW]
    while stack:
        node = stack.pop()
        if node not in needed:
            needed.add(node)
            stack.extend(p for p in node.parents if p.state is NEW)
    return needed
