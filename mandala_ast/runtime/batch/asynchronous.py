"""Async ops: memoized ``await f(x)`` in run blocks, and a batch's event loop.

In a run block an async op's call is a coroutine that looks the call up (stored: its
outputs, no await of the body at all) and on a miss awaits the body, then records it; a call
another thread's block computes meanwhile (a batch, a run block on another event loop) is
waited for without blocking the loop (runtime/claims.py). In a
batch block, async op calls are deferred like any other call (no ``await`` needed; awaiting a
deferred value forces it) and their bodies run concurrently on one event loop in a thread of
the batch's own, at most ``max_concurrency`` at a time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import threading
import time
from typing import Any

from . import pipeline_adapter as engine

__all__ = ["DEFAULT_CONCURRENCY", "AsyncBackend", "memoized_coroutine"]

#: Async bodies a batch runs at once unless ``max_concurrency=`` says otherwise.
DEFAULT_CONCURRENCY = 100


#: The missing calls whose bodies are being awaited, by (event loop, storage, call content
#: id): a coroutine that misses one of them waits for it instead of running the body again
#: (``asyncio.gather`` over duplicate prompts pays for one API call).
_in_flight: dict[tuple[Any, int, bytes], asyncio.Future] = {}
#: The event loops of batches (AsyncBackend). A coroutine there waits for no other thread's
#: claim: it may hold the batch's last free slot, which the call it would wait for needs.
_batch_loops: set[asyncio.AbstractEventLoop] = set()


async def memoized_coroutine(block: Any, op: Any, args: tuple, kwargs: dict) -> Any:
    """``await op(*args, **kwargs)`` in ``block``: stored outputs, or the body awaited and
    recorded. Its dependencies are the op's static ones (a trace cannot follow awaits)."""
    storage = block.storage
    call = engine.identify(storage, op, args, kwargs, None)
    while True:
        hit = engine.find_stored(storage, [call], block=block)[0]
        if hit is not None:
            return op.join_outputs(engine.load_outputs(storage, op, args, kwargs, hit[1]))
        loop = asyncio.get_running_loop()
        key = (loop, id(storage), call.cid)
        running = _in_flight.get(key)
        if running is not None:
            # Shielded: a waiter cancelled must not cancel the computation others wait for. If
            # it failed, this coroutine finds nothing stored and computes the call itself.
            await asyncio.shield(running)
        elif loop in _batch_loops or not await _claim_ended(storage, call, loop):
            return await _compute(block, op, args, kwargs, call, key)


async def _claim_ended(storage: Any, call: Any, loop: asyncio.AbstractEventLoop) -> bool:
    """Wait, without blocking the loop, until a claim on the call that another thread's block
    holds has ended, or some claim has (then look again); False at once when none holds one."""
    ended = loop.create_future()

    def wake() -> None:  # (in the thread that ended a claim)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_settle, ended)

    if engine.wait_for_claim(storage, call, ended, wake) is None:
        return False
    try:
        await ended
    finally:
        engine.stop_waking(storage, ended)
    return True


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def _compute(block: Any, op: Any, args: tuple, kwargs: dict, call: Any, key: tuple) -> Any:
    storage = block.storage
    inputs = engine.check_new_call(storage, call, block)
    done = _in_flight[key] = asyncio.get_running_loop().create_future()
    claim = engine.claim_here(storage, call)  # (batches and other loops' coroutines wait for it)
    try:
        started = time.perf_counter()
        result = await op.fn(*args, **kwargs)
        duration = time.perf_counter() - started
        ran = engine.traced_elsewhere(engine.untraced_async(op, args, kwargs))
        engine.record(storage, call, op.split_outputs(result), ran, frozenset(), duration, inputs)
    finally:
        engine.release_claim(storage, call, claim)
        del _in_flight[key]
        done.set_result(None)
    return result


class AsyncBackend:
    """One event loop in a thread of its own; bodies submitted from the coordinator."""

    def __init__(self, max_concurrency: int | None) -> None:
        self.limit = max_concurrency or DEFAULT_CONCURRENCY
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mandala-batch-async", daemon=True)
        _batch_loops.add(self.loop)
        self.thread.start()
        self.gate = asyncio.run_coroutine_threadsafe(_semaphore(self.limit), self.loop).result()

    def submit(self, op: Any, args: tuple, kwargs: dict) -> cf.Future:
        return asyncio.run_coroutine_threadsafe(self._run(op, args, kwargs), self.loop)

    async def _run(self, op: Any, args: tuple, kwargs: dict) -> tuple:
        async with self.gate:
            started = time.perf_counter()
            result = await op.fn(*args, **kwargs)
            duration = time.perf_counter() - started
        # No files: async bodies interleave, so what one reads cannot be told from another's.
        return op.split_outputs(result), engine.untraced_async(op, args, kwargs), frozenset(), duration, ()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        _batch_loops.discard(self.loop)
        self.loop.close()


async def _semaphore(limit: int) -> asyncio.Semaphore:
    return asyncio.Semaphore(limit)  # made on the loop it gates
