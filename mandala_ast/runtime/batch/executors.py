"""Where a batch's bodies run: in process, on threads, on processes, or on a Dask cluster.

Each backend turns "run this op on these arguments" into a future and waits for the first
futures to finish; the scheduler never needs to know which backend it drives.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Any

from ..._errors import BatchWorkerError
from .interrupts import held_back
from .orphans import exit_with_parent
from .worker import (
    STOPS_THE_BLOCK,
    Chained,
    code_signature,
    compute_chunk_here,
    compute_chunk_named,
    compute_here,
    compute_sent,
    op_address,
    this_process,
)

__all__ = ["Backend", "Done", "backend_for", "is_broken", "result_load_error"]


class Backend:
    """Runs bodies in this process, one at a time, as they are submitted (``executor=None``)."""

    #: True when an upstream task's future can be an argument of a downstream task.
    chains = False
    #: True when several calls can share one task (:meth:`chunk_item`, :meth:`submit_chunk`).
    chunks = False
    #: True when bodies run in this process, on the very objects the block passed: calls
    #: given the same object see each other's changes to it (a process is sent copies).
    local = True
    #: Seconds the coordinator may wait, once a call finished, for more to :meth:`fetch`
    #: in one go (0: each result is at hand as it comes, nothing to fetch).
    fetch_window = 0.0

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers
        self.batch: Any = None  # the BatchBlock whose bodies run here (set by the block)

    #: True when calls wait in this process for a thread of a pool: another thread may take
    #: such a call over before its body starts (runtime/claims.py).
    queues = False

    def submit(self, op: Any, args: tuple, kwargs: dict, traced: bool = True, upstream: tuple = (),
               claim: Any = None) -> Any:
        try:
            return Done(compute_here(op, args, kwargs, self.batch, traced), None)
        except STOPS_THE_BLOCK:  # Ctrl-C, sys.exit(): the block ends, as a run block would
            raise
        except BaseException as exc:  # noqa: BLE001 - the call's failure (GeneratorExit too), raised where its result is asked for
            return Done(None, exc)

    def solo(self, op: Any, args: tuple, kwargs: dict) -> Any:
        """The call alone, where a crash can only be its own (here: as any call)."""
        return self.submit(op, args, kwargs)

    def cancel(self, futures: Any) -> None:
        for future in futures:
            future.cancel()

    def watch(self, future: Any, callback: Any) -> None:
        """Call ``callback(future)`` once ``future`` has finished (its result at hand, or to
        be fetched by :meth:`fetch`)."""
        future.add_done_callback(callback)

    def fetch(self, futures: list) -> None:
        """Make the results of those of ``futures`` that finished at hand (here they are
        already: a finished future holds its result)."""

    def cut_short(self) -> Any:
        """The future of the last submit if it was interrupted (Ctrl-C) before it returned,
        when the backend can tell: the calls it handed over may be running all the same."""
        return None

    def settle(self, futures: list) -> None:
        """After an interruption: wait for ``futures`` still running here (threads), so that
        their results are kept rather than computed and dropped."""

    def close(self) -> None:
        """Let go of what the batch started (a pool the user passed in stays open)."""

    def restart(self) -> bool:
        """After a worker died: a fresh pool; False when the backend cannot have one."""
        return False


class Done:
    """The outcome of a body that ran at once (no executor): a future without the
    synchronisation a real one pays for."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value, self.error = value, error

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    def done(self) -> bool:
        return True

    def cancelled(self) -> bool:
        return False

    def cancel(self) -> bool:
        return False


class PoolBackend(Backend):
    """A ``concurrent.futures`` executor: threads run bodies here (traced), processes by name."""

    def __init__(self, pool: cf.Executor, owned: bool, max_workers: int | None) -> None:
        super().__init__(max_workers)
        self.pool, self.owned = pool, owned
        self.local = self.queues = isinstance(pool, cf.ThreadPoolExecutor)
        #: A pool of ours whose workers are forked from this process, code and all. Spawned
        #: (macOS; forkserver: Linux from Python 3.14) they import modules from their files,
        #: which may have changed since this process imported them: checked like a user's pool.
        self.forks = owned and multiprocessing.get_start_method() == "fork"
        self.solos: list[cf.ProcessPoolExecutor] = []  # one-call pools of suspect calls
        self.signatures: dict[int, tuple[Any, bytes | None]] = {}  # id(op) -> (op, code_signature)
        self._ticket: cf.Future | None = None  # the future of the task being handed over

    def submit(self, op: Any, args: tuple, kwargs: dict, traced: bool = True, upstream: tuple = (),
               claim: Any = None) -> Any:
        if self.local:
            return self._ticketed(compute_here, op, args, kwargs, self.batch, traced, claim)
        return self._handed_over(self.pool, compute_sent, self._address(op), args, kwargs)

    def _ticketed(self, fn: Any, *args: Any) -> cf.Future:
        """``fn(*args)`` on a thread of the pool, through a future made before the pool is
        asked: a Ctrl-C inside ``pool.submit`` (after the pool took the task, before it gave
        back its future) leaves it at hand (:meth:`cut_short`), to cancel the task or, if it
        started, to keep its result."""
        ticket: cf.Future = cf.Future()
        self._ticket = ticket
        self.pool.submit(_run_ticket, ticket, fn, args)
        self._ticket = None
        return ticket

    def _handed_over(self, pool: cf.Executor, fn: Any, *args: Any) -> cf.Future:
        """``pool.submit(fn, *args)`` on a process pool, a Ctrl-C meanwhile held back until
        the future is at hand (:meth:`cut_short`): the pool queued the task before it gave
        back its future, and a worker runs it all the same, its result to be kept."""
        self._ticket = None  # (not one an earlier interruption left unclaimed)
        with held_back():
            future = self._ticket = pool.submit(fn, *args)
        self._ticket = None
        return future

    def cut_short(self) -> Any:
        ticket, self._ticket = self._ticket, None
        return ticket

    def settle(self, futures: list) -> None:
        if self.local:  # (an owned pool's shutdown waits for them anyway)
            # Not those cancelled: a task the pool dropped never tells its future, which
            # cf.wait would wait for forever (only a worker marks a cancelled one notified).
            cf.wait([future for future in futures if not future.cancelled()])

    chunks = True

    def chunk_item(self, op: Any, args: tuple, kwargs: dict, traced: bool, claim: Any = None) -> tuple:
        """One call of a chunk, as the worker runs it (raises if it cannot run there)."""
        if self.local:
            return op, args, kwargs, traced, claim
        return self._address(op), args, kwargs

    def _address(self, op: Any) -> tuple:
        """Where a worker process finds the op; for a pool the user passed in, also the op's
        code as this process has it now: its workers may have started before it changed."""
        address = _address(op)
        if self.forks:  # forked by this batch, after any change: its workers run today's code
            return address
        known = self.signatures.get(id(op))
        if known is None:
            known = self.signatures[id(op)] = (op, code_signature(op))  # op held: its id stays its own
        return (*address, known[1])

    def submit_chunk(self, items: list[tuple]) -> Any:
        """A future of ``([(result, error) per call], seconds)`` for the calls ``items``."""
        if self.local:
            return self._ticketed(compute_chunk_here, items, self.batch)
        return self._handed_over(self.pool, compute_chunk_named, items)

    def solo(self, op: Any, args: tuple, kwargs: dict) -> Any:
        """The call alone in a pool of its own: if its worker dies, it was this call."""
        pool = cf.ProcessPoolExecutor(max_workers=1, initializer=exit_with_parent)
        # Shut down by close(), not from a done-callback: a broken pool's callbacks run while
        # it holds its shutdown lock (Python 3.13), and shutting it down there deadlocks.
        self.solos.append(pool)
        return self._handed_over(pool, compute_sent, _address(op), args, kwargs)

    def cancel(self, futures: Any) -> None:
        super().cancel(futures)
        if self.owned:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for pool in self.solos:
            pool.shutdown(wait=False, cancel_futures=True)
        if self.owned:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def restart(self) -> bool:
        if self.local:
            return False
        if self.owned:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = cf.ProcessPoolExecutor(max_workers=self.max_workers, initializer=exit_with_parent)
        self.owned, self.forks = True, multiprocessing.get_start_method() == "fork"
        return True


def _run_ticket(ticket: cf.Future, fn: Any, args: tuple) -> None:
    """A pool thread's task: ``fn(*args)`` into ``ticket``, unless it was cancelled first."""
    if not ticket.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args)
    except BaseException as exc:  # as the pool's own work items do: the future holds it
        ticket.set_exception(exc)
    else:
        ticket.set_result(result)


class DaskBackend(Backend):
    """A ``dask.distributed.Client``: an output feeds the next call on the cluster (chained
    futures), and the coordinator gathers each result once, to store it.

    Each Dask future is mirrored by a ``concurrent.futures.Future`` (``.dask`` holds the
    original), so the scheduler waits on Dask, pool and async calls alike. A mirror is
    settled by the coordinator (:meth:`fetch`), not by the Dask future's callback: asking
    each future for its result costs a round trip through the client's event loop and the
    scheduler (``future.result()``), while the results of all the tasks that finished since
    the coordinator last looked come back in one ``client.gather``.
    """

    chains = True
    local = False
    fetch_window = 0.05  # (a gather is a round trip through the scheduler)

    def __init__(self, client: Any) -> None:
        super().__init__(None)
        self.client = client
        self.addresses: dict[int, tuple[Any, Any]] = {}  # id(op) -> (op, address)
        self._ticket: Any = None  # the mirror (a cf.Future with .dask) of the task being handed over

    def submit(self, op: Any, args: tuple, kwargs: dict, traced: bool = True, upstream: tuple = (),
               claim: Any = None) -> Any:
        """The call sent to the cluster, a Ctrl-C meanwhile held back until its mirror is at
        hand (:meth:`cut_short`): the client sends the task before it gives back its future,
        and the cluster runs it all the same, its result to be kept."""
        address = self._address(op)
        inputs = tuple(getattr(future, "dask", future) for future in upstream)
        self._ticket = None  # (not one an earlier interruption left unclaimed)
        with held_back():
            task = self.client.submit(Chained(address, args, kwargs, traced), *inputs, pure=False)
            self._ticket = _mirror(task)
        mirror, self._ticket = self._ticket, None
        return mirror

    def cut_short(self) -> Any:
        """The mirror of a task sent as Ctrl-C came, marked running: cancelling the mirror
        would not stop the task on the cluster, only drop its result (a task finished by then
        gives its mirror its result at once)."""
        ticket, self._ticket = self._ticket, None
        if ticket is not None and not ticket.done():
            if ticket.dask.done():
                _settle(ticket, ticket.dask)
            else:
                ticket.set_running_or_notify_cancel()
        return ticket

    def watch(self, future: Any, callback: Any) -> None:
        """A mirror is reported once its task finished, unsettled (:meth:`fetch` settles it);
        the Dask future's callback, run in Dask's callback thread, only hands it on."""
        task = getattr(future, "dask", None)
        if task is None:  # an async op's call, on this process's event loop
            super().watch(future, callback)
        else:
            task.add_done_callback(lambda _: callback(future))

    def fetch(self, futures: list) -> None:
        """Settle the mirrors of ``futures`` whose tasks finished: the results of those that
        succeeded gathered in one go, the others (failed, cancelled) one by one."""
        _settle_all(self.client, [future for future in futures if hasattr(future, "dask") and future.dask.done()])

    def _address(self, op: Any) -> Any:
        """Where a worker finds the op, with its code as this process has it (a worker process
        imports the op's module from its file, which may have been edited since this process
        imported it; a worker that is this process is not checked); worked out once per op.
        An op not importable by name goes whole (cloudpickle ships its code)."""
        known = self.addresses.get(id(op))
        if known is None:
            named = op_address(op)
            address = op if named is None else (*named, code_signature(op), this_process())
            known = self.addresses[id(op)] = (op, address)  # op held: its id stays its own
        return known[1]

    def cancel(self, futures: Any) -> None:
        """Cancel the tasks (and those chained to them); one that finished, its mirror not
        yet settled (:meth:`fetch`), gives its result to its mirror first, to be kept."""
        self.fetch(futures)
        mirrors = [f for f in futures if hasattr(f, "dask")]
        tasks = [mirror.dask for mirror in mirrors]
        if tasks:
            self.client.cancel(tasks)


def _mirror(task: Any) -> cf.Future:
    """A ``concurrent.futures.Future`` to be settled as the Dask future ``task`` (``.dask``) is,
    once it finished (:func:`_settle_all`)."""
    mirror: cf.Future = cf.Future()
    mirror.dask = task  # type: ignore[attr-defined]
    return mirror


def _settle_all(client: Any, mirrors: list[Any]) -> None:
    """Settle ``mirrors``, whose tasks finished: those that succeeded with their results
    gathered in one go (one round trip for all), the rest one by one as :func:`_settle` does
    (a task lost or failed since its status was read fails the whole gather: one by one too).
    Each task is then released: the cluster keeps its result only while a task chained to it
    needs it (held until the garbage collector found the batch's graph, every result the
    batch computed stayed in the workers' memory after the block)."""
    waiting = [mirror for mirror in mirrors if not mirror.done()]
    finished = [mirror for mirror in waiting if mirror.dask.status == "finished"]
    if finished:
        try:
            values = client.gather([mirror.dask for mirror in finished])
        except Exception:  # noqa: BLE001 - each one's own outcome, below
            values = None
        for mirror, value in zip(finished, values or ()):
            mirror.set_result(value)
    for mirror in waiting:
        if not mirror.done():
            _settle(mirror, mirror.dask)
        mirror.dask.release()


def _settle(mirror: cf.Future, task: Any) -> None:
    try:
        if task.status == "error" and not isinstance(task.exception(), Exception):
            raise task.exception()  # (GeneratorExit) for which Dask's task.result() never returns
        mirror.set_result(task.result())
    except BaseException as exc:  # noqa: BLE001 - the call's failure, raised where it is waited for
        if not mirror.done():
            mirror.set_exception(exc)


def backend_for(executor: Any, max_workers: int | None) -> Backend:
    """The backend for ``storage.batch(executor=...)``."""
    workers = max_workers or os.cpu_count() or 1
    if executor is None:
        return Backend()
    if executor == "threads":
        return PoolBackend(cf.ThreadPoolExecutor(max_workers=workers), True, workers)
    if executor == "processes":
        return PoolBackend(cf.ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent), True, workers)
    if isinstance(executor, cf.Executor):
        return PoolBackend(executor, False, workers)
    if type(executor).__module__.startswith("distributed") and hasattr(executor, "submit"):
        return DaskBackend(executor)
    raise TypeError(
        f"storage.batch(executor=...) takes None, 'threads', 'processes', a concurrent.futures.Executor "
        f"or a dask.distributed.Client, not {executor!r}"
    )


def is_broken(error: BaseException) -> bool:
    """A pool whose worker process died (killed, crashed, out of memory)."""
    return isinstance(error, cf.BrokenExecutor)


def result_load_error(error: BaseException) -> str | None:
    """What loading a worker's result raised, when that is what broke the pool, else None.

    A process pool whose coordinator cannot unpickle a result breaks as if a worker had died
    ("terminated abruptly"); only the error's cause, the traceback of that load as text, says
    otherwise (a worker that died leaves no cause).
    """
    cause = error.__cause__
    if cause is None or type(cause).__name__ != "_RemoteTraceback":
        return None
    lines = [line.strip() for line in str(cause).splitlines() if line.strip() and line.strip() != "'''"]
    return lines[-1] if lines else None


def _address(op: Any) -> tuple[str, str]:
    address = op_address(op)
    if address is None:
        raise BatchWorkerError(
            f"op {op.name} cannot run in another process: it is not importable by its name "
            f"{op.fn.__module__}.{op.fn.__qualname__} (define it at the top level of a module, "
            "or use executor='threads')"
        )
    return address
