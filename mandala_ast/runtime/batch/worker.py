"""What runs in a worker: an op's body, and nothing that touches the storage.

Bodies are traced like a run block's, so each call depends on exactly the code it ran: in the
coordinating process (no executor, or threads) as there; in another process (a pool, Dask)
the worker works out what the code it ran depends on and sends that back with the outputs
(code objects cannot be sent). A call's static dependencies (what its op's code names) would
miss what it reached through its arguments: the methods of a model passed in, a function
given as an argument; after an edit of those, their stale results were served.
"""

from __future__ import annotations

import os
import pickle
import time
import traceback
from typing import Any

from ..._errors import BatchWorkerError
from .. import blocks, dependencies, env_deps, file_deps, fingerprints
from ..claims import shipped_body
from ..execution import call_body, user_codes
from ..hashing import digest
from ..ops import importable_as, op_named
from ..tracing import RanCode

__all__ = ["EDITED_CODE", "STOPS_THE_BLOCK", "Chained", "Slot", "UnsentOutput", "code_signature",
           "compute_chunk_here", "compute_chunk_named", "compute_here", "compute_in", "compute_named",
           "compute_sent", "op_address", "resolve_op", "this_process"]

#: What a body raises that ends its batch block, as it would end a run block, rather than
#: fail its call alone (every other exception, GeneratorExit too, fails only its call).
STOPS_THE_BLOCK = (KeyboardInterrupt, SystemExit)


def compute_here(op: Any, args: tuple, kwargs: dict, batch: Any, traced: bool = True, claim: Any = None) -> tuple:
    """``(outputs, ran code, op calls made, seconds)`` of the body, run in this process.

    While it runs, op calls made by the body are ordinary memoized calls in ``batch``'s
    storage (not deferred) and are noted as the call's dependencies, as in a run block. In a
    worker thread, the body runs in a block of its own lent by the batch. ``claim``: the
    batch's claim on a call queued in a thread pool (runtime/claims.py): a call another
    thread took over meanwhile raises CallTaken, its body not run.
    """
    block = _enter(batch)
    try:
        return compute_in(block, op, args, kwargs, batch, traced, claim)
    finally:
        _leave(block, batch)
        if claim is not None:
            claim.ran()


def compute_in(block: Any, op: Any, args: tuple, kwargs: dict, batch: Any, traced: bool, claim: Any = None) -> tuple:
    """:func:`compute_here` in ``block``, the innermost block of this thread already."""
    if claim is not None:
        claim.start()
    op_calls = block.start_op_body()
    watching = file_deps.start(op.track_files, args, kwargs)
    reading = env_deps.start(op.track_env, None if traced else op.fn, op.fn)
    ran = RanCode()
    try:
        started = time.perf_counter()
        result, ran = call_body(op, args, kwargs, traced)
        duration = time.perf_counter() - started
    finally:
        files = file_deps.stop(watching, batch.storage.path, user_codes(op, ran))  # its own files are no dependency
        files = env_deps.stop(reading, files, op.ignore_env)
        block.end_op_body()
    return op.split_outputs(result), ran, frozenset(op_calls) if op_calls else _NO_CALLS, duration, files


#: The op calls of a body that made none: shared, never changed.
_NO_CALLS: frozenset = frozenset()


def _enter(batch: Any) -> Any:
    """The block op calls of bodies run here belong to: the batch itself in its own thread,
    else a block of this thread's own that the batch lends (pushed until :func:`_leave`)."""
    if blocks.state.block is batch and batch is not None:
        return batch
    block = blocks.LentBlock(batch)
    blocks.push(block)
    return block


def _leave(block: Any, batch: Any) -> None:
    if block is not batch:
        blocks.pop(block)


def compute_chunk_here(items: list[tuple], batch: Any) -> tuple[list[tuple], float]:
    """Several calls in one task (``items``: ``(op, args, kwargs, traced, claim)``), so that a
    pool's per-task costs are paid once for all of them (one block lent for all):
    ``([(result, None) or (None, error)], seconds)``. Each call fails alone; ``seconds`` (the
    whole task) sizes the next chunks. Each claim names this thread until the chunk ends: a
    call whose body ran is recorded only then."""
    started = time.perf_counter()
    block = _enter(batch)
    try:
        outcomes = _outcomes(compute_in, [(block, op, args, kwargs, batch, traced, claim)
                                          for op, args, kwargs, traced, claim in items])
    finally:
        _leave(block, batch)
        for item in items:
            if item[4] is not None:
                item[4].ran()
    return outcomes, time.perf_counter() - started


def compute_chunk_named(items: list[tuple]) -> tuple[list[tuple], float]:
    """:func:`compute_chunk_here` in a worker process (``items``: ``(address, args, kwargs)``)."""
    started = time.perf_counter()
    outcomes = _outcomes(_compute_sendable, items)
    return outcomes, time.perf_counter() - started


def _compute_sendable(address: tuple, args: tuple, kwargs: dict) -> tuple:
    """:func:`compute_named`, whose exception, if the body raises one, can be sent back to
    the coordinator: pickled, and unpickled there (else a stand-in that says what it was)."""
    try:
        return compute_named(address, args, kwargs)
    except Exception as exc:
        stand_in = _unsendable(exc, address)
        if stand_in is None:
            raise
    # Raised here, not in the except clause, so that it has no __context__: a pickler that
    # keeps exception chains (tblib's, which dask.distributed installs) would take the
    # original along and fail on it again.
    raise stand_in


def _unsendable(error: Exception, address: tuple) -> BatchWorkerError | None:
    """None when ``error`` survives the trip back from a worker process; else a
    BatchWorkerError naming the op and saying what ``error`` was, with its traceback. (Not
    pickled, the pool's own error is pickle's, naming nothing; not unpickled, the pool breaks
    and each of its calls looks like a worker that died.)"""
    from multiprocessing.reduction import ForkingPickler

    try:
        pickle.loads(ForkingPickler.dumps(error))
        return None
    except Exception as why:  # noqa: BLE001 - whatever pickle raises, the error cannot go
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return BatchWorkerError(
            f"op {address[0]}.{address[1]} raised {type(error).__qualname__}: {_text(error)}, an exception "
            f"that cannot be sent back from the worker process ({type(why).__name__}: {why}); raise a "
            f"picklable exception, or use executor='threads'. Its traceback in the worker:\n{trace}"
        )


def _text(error: Exception) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a __str__ that fails says nothing more
        return "(its message cannot be shown)"


def _outcomes(compute: Any, calls: list[tuple]) -> list[tuple]:
    """``(result, None)`` or ``(None, error)`` of ``compute(*arguments)`` for each of ``calls``,
    in order. Each call fails alone, whatever it raises (a GeneratorExit too: the results of
    the calls before it are kept); but a KeyboardInterrupt or SystemExit ends the chunk there,
    as it ends a run block: the calls after it do not run (fewer outcomes than calls)."""
    outcomes = []
    for arguments in calls:
        outcomes.append(_outcome(compute, *arguments))
        if isinstance(outcomes[-1][1], STOPS_THE_BLOCK):
            break
    return outcomes


def _outcome(compute: Any, *arguments: Any) -> tuple:
    try:
        return compute(*arguments), None
    except BaseException as exc:  # noqa: BLE001 - this call's failure only (see _outcomes)
        return None, exc


def op_address(op: Any) -> tuple[str, str] | None:
    """``(module, qualified name)`` under which another process can import ``op``, or None."""
    address = (op.fn.__module__, op.fn.__qualname__)
    return address if importable_as(op, *address) else None


def resolve_op(module: str, name: str) -> Any:
    """The op object ``module.name`` (``__main__`` is the running script in every process)."""
    return op_named(module, name)


def compute_named(address: tuple, args: tuple, kwargs: dict, traced: bool = True) -> tuple:
    """The body of the op at ``address``, run in a worker process (traced unless the
    coordinator found that it can run no user code, no storage).

    ``address`` is ``(module, name)``, or ``(module, name, code)`` with the coordinator's
    :func:`code_signature` of the op, checked against this process's before the body runs,
    or ``(module, name, code, process)``: not checked in the coordinator's own process
    (:func:`this_process`; a Dask cluster of threads), whose code is the coordinator's.
    """
    op = resolve_op(address[0], address[1])
    if len(address) > 2 and (len(address) == 3 or address[3] != this_process()):
        _check_code(op, address[2])
    return _run_fn(op, args, kwargs, traced)


#: Drawn once per interpreter: a forked child keeps it, but not its pid.
_TOKEN = os.urandom(8)


def this_process() -> tuple[bytes, int]:
    """This very process, told apart from its forks and from processes on other hosts."""
    return _TOKEN, os.getpid()


def code_signature(op: Any) -> bytes | None:
    """A digest of the op's code and of the helpers, constants and ops it refers to (static
    dependencies), or None when the op's source cannot be read here (nothing to compare).
    When its file was edited since this process imported it, :data:`EDITED_CODE`: a worker
    that reads the file runs other code than this process."""
    if op.fingerprint.tree is None:
        return EDITED_CODE if fingerprints.EDITED in op.fingerprint.source else None
    # Contents only, no names: a spawned worker imports the script as __mp_main__, not __main__.
    states = sorted(dependency.state for dependency in dependencies.static_dependencies(op.fn).values())
    return digest(b"\1".join([op.fingerprint.digest, b"%d" % op.version, *states]))


#: The code signature of an op whose file now holds other code: no worker's equals it.
EDITED_CODE = b"edited since imported"

#: (module, name) -> this worker process's code signature of that op (its code never changes).
_signatures: dict[tuple[str, str], bytes | None] = {}


def _check_code(op: Any, expected: bytes | None) -> None:
    """A pool the user passed in may have forked its workers before code changed in the
    coordinator (a notebook cell redefined a helper), and spawned workers import modules from
    files edited since the coordinator imported them: they would run other code than the
    coordinator's, and the result would be stored under the coordinator's."""
    key = (op.fn.__module__, op.fn.__qualname__)
    if key not in _signatures:
        _signatures[key] = code_signature(op)
    own = _signatures[key]
    if expected is not None and own is not None and own != expected:
        raise BatchWorkerError(
            f"op {op.name}: the batch's worker processes run other code than this process (a "
            "pool passed in that started before the op, or a helper or constant it refers to, "
            "changed: pass a new one; or workers, spawned or on a Dask cluster, that imported a "
            "file edited since this process did: run this process again); nothing they computed "
            "is stored"
        )


class UnsentOutput(Exception):
    """The outputs of a call a worker process computed cannot be pickled to be sent back (the
    message is pickle's reason); the coordinator names the call in a BatchWorkerError."""


def compute_sent(address: tuple[str, str], args: tuple, kwargs: dict) -> tuple:
    """:func:`compute_named` for a process pool, whose result is checked to pickle first.

    The pool's own failure to send it is pickle's bare error (``TypeError: cannot pickle
    '_thread.lock' object``), which the coordinator cannot tell from one the body raised. The
    check walks the outputs without copying them: array buffers are left out of band.
    """
    result = _compute_sendable(address, args, kwargs)
    try:
        pickle.Pickler(_Discard(), pickle.HIGHEST_PROTOCOL, buffer_callback=_out_of_band).dump(result[0])
    except Exception as exc:  # noqa: BLE001 - whatever pickle raises, the output cannot go
        from multiprocessing.reduction import ForkingPickler

        try:  # the pool's pickler knows a few more types (connections, sockets): ask it too
            ForkingPickler.dumps(result[0])
        except Exception:  # noqa: BLE001
            raise UnsentOutput(f"{type(exc).__name__}: {exc}") from None
    return result


class _Discard:
    def write(self, data: Any) -> int:
        return len(data)


def _out_of_band(buffer: Any) -> bool:
    return False  # not written: only whether the rest pickles is in question


class Slot:
    """In the arguments of a chained task: output ``index`` of the ``position``-th upstream
    task's result, filled in on the worker (the value never visits the coordinator first)."""

    __slots__ = ("index", "position")

    def __init__(self, position: int, index: int) -> None:
        self.position, self.index = position, index

    def __reduce__(self) -> tuple:
        return Slot, (self.position, self.index)


class Chained:
    """A task whose arguments hold Slots: ``Chained(task)(*upstream results)``. ``traced``:
    False when the coordinator found that the body can run no user code (plain data into an
    op that refers to none), as it runs such a body in its own threads: a trace would find
    nothing, and on Python 3.12+ each traced body makes every function the worker's process
    runs next (its Dask event loop's, a cluster of threads: the coordinator's too) report
    itself once more."""

    def __init__(self, address: Any, args: tuple, kwargs: dict, traced: bool = True) -> None:
        self.address, self.args, self.kwargs, self.traced = address, args, kwargs, traced

    @property
    def __name__(self) -> str:  # read by Dask for the task's key, which its dashboard and errors show
        """The op's name (``mod.f``), which the task's key on the cluster begins with."""
        if type(self.address) is tuple:
            return f"{self.address[0]}.{self.address[1]}"
        return str(getattr(self.address, "name", "op"))

    def __call__(self, *upstream: tuple) -> tuple:
        def fill(value: Any) -> Any:
            return _filled(value, upstream)

        args = tuple(fill(a) for a in self.args)
        kwargs = {k: fill(v) for k, v in self.kwargs.items()}
        if type(self.address) is tuple:
            return compute_named(self.address, args, kwargs, self.traced)
        return _run_fn(self.address, args, kwargs, self.traced)


def _filled(value: Any, upstream: tuple) -> Any:
    kind = type(value)
    if kind is Slot:
        return upstream[value.position][0][value.index]
    if kind in (list, tuple, set, frozenset):
        return kind(_filled(v, upstream) for v in value)
    if kind is dict:
        return {_filled(k, upstream): _filled(v, upstream) for k, v in value.items()}
    return value


def _run_fn(op: Any, args: tuple, kwargs: dict, traced: bool = True) -> tuple:
    """An op's body in a worker process (traced if ``traced``, no storage), noting the files and environment
    variables it reads; also
    an op not importable by name (defined in a function), shipped whole by cloudpickle."""
    watching = file_deps.start(op.track_files, args, kwargs)
    reading = env_deps.start(op.track_env, None if traced else op.fn, op.fn)
    ran = RanCode()
    try:
        started = time.perf_counter()
        with shipped_body():  # (a Dask cluster of threads runs it in this process: claims.py)
            result, ran = call_body(op, args, kwargs, traced)
        duration = time.perf_counter() - started
    finally:
        files = env_deps.stop(reading, file_deps.stop(watching, None, user_codes(op, ran)), op.ignore_env)
    return op.split_outputs(result), sent_dependencies(op, ran), frozenset(), duration, files


def sent_dependencies(op: Any, ran: RanCode) -> tuple | None:
    """``(name, kind, state, source)`` of what the body that ran here depended on (a spawned
    worker's script, imported as ``__mp_main__``, names its code ``__main__`` as the
    coordinator does); None where it could not be traced (its op's static dependencies count
    then)."""
    if not ran.complete:
        return None
    before = tuple((name, d.state) for name, d in ran.before.items())
    key = (op.fn, tuple(ran.codes), tuple(ran.receivers.items()), before)
    sent = _sent.get(key)
    if sent is None:  # as the coordinator's VersionTracker keeps deps ids: once per code that ran
        found = dependencies.run_dependencies(op.fn, ran.codes, ran.before, ran.receivers)
        sent = dependencies.as_rows(found)
        if len(_sent) > 4096:
            _sent.clear()
        _sent[key] = sent
    return sent


#: What :func:`sent_dependencies` worked out, by op, code that ran and the objects it found.
_sent: dict[tuple, tuple] = {}

