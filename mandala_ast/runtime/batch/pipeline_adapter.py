"""Every contact between batch blocks and the storage engine, in one place.

The scheduler identifies calls, finds the stored ones in bulk, records what workers computed
and loads stored outputs only through these functions, which drive the storage's call
pipeline (``storage.engine``: identity, lookup, recording, loading) step by step, as its
``call_and_load`` does for one call, but for a whole wave at once and with the body run
elsewhere.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from ..._errors import (
    CorruptValueError,
    MandalaError,
    NewCallError,
    ReadOnlyStorageError,
    StorageFullError,
)
from .. import dependencies
from ..execution import plain_data
from ..hashing import UnhashableError, content_id, digest
from ..identity import (
    hash_inputs,
    identify as identify_call,
    identify_many as identify_calls,
    output_refs as make_refs,
)
from ..loading import IMMUTABLE
from ..pointers import unwrap as unwrap_pointers
from ..recording import UnstoredOutputs
from ..refs import Ref
from ..tracing import RanCode

__all__ = [
    "Call",
    "body_arguments",
    "changed_inputs",
    "check_new_call",
    "check_new_calls",
    "claim",
    "claim_here",
    "claim_holder",
    "claims_ended",
    "commit",
    "count_holders",
    "find_stored",
    "handed_back",
    "identify",
    "identify_many",
    "let_go",
    "load_many_outputs",
    "load_outputs",
    "needs_trace",
    "output_refs",
    "record",
    "record_many",
    "release_claim",
    "row_hid",
    "single_flight",
    "split_outputs",
    "stop_waking",
    "traced_elsewhere",
    "unstored",
    "untraced",
    "untraced_async",
    "wait_for_claim",
]

#: A call's identity as the engine hands it out: ``.op``, ``.cid`` (content id, the same for
#: identical calls) and ``.describe()``; opaque otherwise.
Call = Any


def identify(storage: Any, op: Any, args: tuple, kwargs: dict, input_refs: dict | None) -> Call:
    """The identity of a call (its arguments hashed), without looking it up."""
    engine = storage.engine
    hashed = hash_inputs(op, args, kwargs, engine.loader.aliases)
    with engine.lock:
        return identify_call(op, hashed, input_refs, engine.versions)


def identify_many(storage: Any, items: list[tuple]) -> list:
    """``identify`` for many ``(op, args, kwargs, input_refs)``, one lock for all; an
    exception in place of each call whose arguments cannot be hashed."""
    engine = storage.engine
    aliases = engine.loader.aliases
    hashed: list = []
    for op, args, kwargs, _ in items:
        try:
            hashed.append(hash_inputs(op, args, kwargs, aliases))
        except Exception as exc:
            hashed.append(exc)
    hashable = [(item[0], h, item[3]) for item, h in zip(items, hashed) if not isinstance(h, Exception)]
    with engine.lock:
        calls = iter(identify_calls(hashable, engine.versions))
    return [h if isinstance(h, Exception) else next(calls) for h in hashed]


def find_stored(storage: Any, calls: list[Call], in_file: bool = False, block: Any = None) -> list[tuple | None]:
    """One bulk lookup: ``(row id, output cids, deps_id)`` per stored call, else None. A call
    stored under another history is recorded under this one, as a run block does.
    ``in_file``: each call is looked for in the file, even one this process saw missing a
    moment ago (single flight, once the call's lock is taken: another process may have
    stored it and let go of the lock since). So is each call missing from memory where
    ``block`` may not compute it (it would be refused as not stored)."""
    engine = storage.engine
    found = []
    with engine.lock:
        hits = [engine.index.find_in_file(call) for call in calls] if in_file else engine.index.find_many(calls)
        if block is not None and None in hits and not _may_compute(storage, block):
            hits = [hit or engine.index.find_in_file(call) for call, hit in zip(calls, hits)]
        if None in hits:  # (an op with ignore= only: one attribute test per miss otherwise)
            hits = [hit or (engine.stored_before_ignore(call) if call.op.ignore else None)
                    for call, hit in zip(calls, hits)]
        for call, hit in zip(calls, hits):
            if hit is not None and not hit[3] and not engine.store.read_only:
                call.set_state(hit[2])
                engine.recorder.record(call, hit[1], None, 0.0)
                hit = (call.row_id, *hit[1:])
            found.append(None if hit is None else tuple(hit[:3]))
    return found


def check_new_call(storage: Any, call: Call, block: Any) -> dict:
    """Raise as a run block would if ``call`` may not be computed here (new calls off,
    read-only file, changed code under ``on_change="error"``); else the call's new argument
    values, encoded before the body runs (a body may mutate its arguments)."""
    inputs = check_new_calls(storage, [call], block)[0]
    if isinstance(inputs, Exception):
        raise inputs
    return inputs


def _may_compute(storage: Any, block: Any) -> bool:
    allowed = storage.new_calls_allowed if block.allow_new_calls is None else block.allow_new_calls
    return allowed and not storage.engine.store.read_only


def check_new_calls(storage: Any, calls: list[Call], block: Any) -> list:
    """:func:`check_new_call` for many calls under one lock: per call its new argument
    values, or the error it would raise."""
    engine = storage.engine
    allowed = storage.new_calls_allowed if block.allow_new_calls is None else block.allow_new_calls
    checked: list = []
    with engine.lock:
        read_only, check = engine.store.read_only, engine.versions.check_may_compute
        encode, encoded = engine.recorder.encode_new_inputs, dict[bytes, Any]()
        for call in calls:
            try:
                if not allowed or read_only:
                    raise _refused(storage, call, allowed)
                check(call.op)
                checked.append(encode(call, encoded))  # a value several calls are given: once
            except Exception as exc:  # that call's error alone
                checked.append(exc)
    return checked


def _refused(storage: Any, call: Call, allowed: bool) -> Exception:
    op = call.op
    if not allowed:
        return NewCallError(f"op {op.name} has no stored call for ({call.describe()}) and new calls are not allowed")
    return ReadOnlyStorageError(
        f"op {op.name} has no stored call for ({call.describe()}) and {storage.path} is read-only"
    )


def needs_trace(storage: Any, call: Call) -> bool:
    """Whether the call's body may run user code, so that running it here must be traced to
    know its dependencies (plain data into an op that calls nothing of the user's: no)."""
    return storage.engine.versions.may_run_user_code(call.op) or not plain_data(call.bound.values())


def count_holders(calls: list[Call], holders: dict[int, int]) -> None:
    """Count each of ``calls`` (a wave's) as a holder of each mutable object it is given, or
    that an argument holds (``[xs, "tag"]``: the list ``xs`` another call changes in place),
    by identity. An object several calls are given is walked once."""
    walked: dict[int, list[int]] = {}
    for call in calls:
        held: set[int] = set()
        for name in call.cids:
            held.update(_walked(call.bound[name], walked))
        for ident in held:
            holders[ident] = holders.get(ident, 0) + 1


def changed_inputs(storage: Any, calls: list[Call], holders: dict[int, int]) -> list[list[str]]:
    """Per call of ``calls`` (whose bodies ran), its arguments holding an object other calls
    of the batch were given too (the same object: see :func:`count_holders`) that no longer
    hash to the id the call was identified with: changed in place since (by its body, or
    another call's). An argument several of them were given is walked and hashed once, for
    all of them (their bodies all ran before this look): with hundreds of calls sharing one
    dataset, hashing it again for each call cost a third of a trivial call's time, and as much
    as hashing it to identify the call."""
    aliases = storage.engine.loader.aliases
    walked: dict[int, list[int]] = {}
    hashed: dict[int, bytes | None] = {}
    found = []
    for call in calls:
        changed = []
        for name, cid in call.cids.items():
            value = call.bound[name]
            if not any(holders.get(ident, 0) > 1 for ident in _walked(value, walked)):
                continue
            if id(value) not in hashed:
                hashed[id(value)] = _hashed_now(value)
            now = hashed[id(value)]
            if now is None or aliases.get(now, now) != cid:
                changed.append(name)
        found.append(changed)
    return found


def _walked(value: Any, walked: dict[int, list[int]]) -> list[int]:
    """:func:`_mutable_ids` of ``value``, once per object (``walked``: those seen so far,
    by identity; every one of them is held by a call, so no id is reused meanwhile)."""
    if type(value) in IMMUTABLE:
        return _NOTHING
    ids = walked.get(id(value))
    if ids is None:
        ids = walked[id(value)] = _mutable_ids(value)
    return ids


_NOTHING: list[int] = []


def _hashed_now(value: Any) -> bytes | None:
    try:
        return content_id(value)
    except UnhashableError:  # it hashed before: it was changed into something else
        return None


#: Objects looked into per argument: a list of a million numbers is not walked item by item.
_WALKED = 1000


def _mutable_ids(value: Any) -> list[int]:
    """Identities of the mutable objects ``value`` is or holds through lists, tuples, dicts
    and sets (up to :data:`_WALKED` objects: what a call is given, not a dataset's rows)."""
    found: list[int] = []
    pending, seen = [value], 0
    while pending and seen < _WALKED:
        item = pending.pop()
        seen += 1
        kind = type(item)
        if kind in IMMUTABLE:
            continue
        if kind is not tuple and kind is not frozenset:
            found.append(id(item))
        if kind in (list, tuple, set, frozenset):
            pending.extend(item)
        elif kind is dict:
            pending.extend(item.values())
    return found


def body_arguments(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """What the body gets: the objects value pointers point to, in their place."""
    return unwrap_pointers(args, kwargs)


def record(storage: Any, call: Call, outputs: tuple, ran: RanCode, op_calls: Any, duration: float,
           inputs: dict, files: tuple = ()) -> tuple[bytes, ...]:
    """Record, in the coordinating process, a call a worker computed; returns output cids.
    ``files``: the data files its body read (file_deps.stop), dependencies like its code."""
    engine, op = storage.engine, call.op
    with engine.lock:
        outputs = op.split_outputs(op.join_outputs(outputs))
        try:
            out_cids = engine.record_computed(call, outputs, (ran, op_calls, files), duration, inputs)
            if engine.recorder.flush_due():
                engine.commit()
        except _UNWRITABLE as failed:  # the caller has its outputs: say they are not stored
            _unstored_for_lack_of_space(call, outputs, failed).handed_back(False)
            return ()
    return out_cids


def record_many(storage: Any, computed: list[tuple], commit: bool = False) -> list:
    """:func:`record` for many calls (a chunk's results), ``(call, outputs, (ran, op_calls,
    files), duration, inputs)`` each, outputs as :func:`split_outputs` gives them, under one
    lock: per call its output cids, or the exception that kept it from being recorded (the
    others are recorded all the same). ``commit``: committed now (single flight: processes
    waiting for the calls look for them in the file), else when due; a full disk then hands
    the calls back unstored, as any commit made here does."""
    engine = storage.engine
    with engine.lock:
        results = engine.record_computed_many(computed)
        try:
            if commit or engine.recorder.flush_due():
                engine.commit()
        except StorageFullError as full:  # the failed commit dropped these calls' rows too
            results = [result if isinstance(result, Exception) else full for result in results]
    return [
        _unstored_for_lack_of_space(entry[0], entry[1], result) if isinstance(result, _UNWRITABLE) else result
        for entry, result in zip(computed, results)
    ]


#: Writes that fail for want of room (a full disk) or of a writable place (value files on a
#: read-only mount): the calls are handed back unstored.
_UNWRITABLE = (StorageFullError, ReadOnlyStorageError)


def _unstored_for_lack_of_space(call: Call, outputs: tuple, failed: MandalaError) -> UnstoredOutputs:
    """A computed call a full disk (or a read-only place for its value file) kept from being
    stored: the block gets its outputs all the same (with a warning naming the op and the
    file), as a run block's miss does."""
    return UnstoredOutputs(call, outputs, type(failed)(f"op {call.op.name}: {failed}"))


def unstored(call: Call, outputs: tuple, why: str) -> Exception:
    """What :func:`record_many` gives for a call whose outputs are not to be stored (``why``
    says why): :func:`handed_back` hands them to the block with a MandalaUnstoredWarning."""
    if call.row_id is None:  # never recorded: an id no stored call has, for its outputs' history
        call.row_id = digest(os.urandom(32))
    return UnstoredOutputs(call, outputs, MandalaError(why))


def handed_back(error: Exception) -> tuple | None:
    """For a call whose outputs cannot be stored (the error :func:`record_many` gave for it):
    ``(output ids, outputs)`` to hand to the block unstored, as a run block does, with the
    same MandalaUnstoredWarning (ids no value has: a call they feed is keyed by content);
    None for any other error."""
    if not isinstance(error, UnstoredOutputs):
        return None
    _, pairs, _ = error.handed_back(True)
    return tuple(cid for cid, _ in pairs), tuple(value for _, value in pairs)


def split_outputs(op: Any, outputs: tuple) -> tuple:
    """A worker's outputs, their count checked as a run block checks it (OutputCountError)."""
    if op.nout == 1 and type(outputs) is tuple and len(outputs) == 1:
        return outputs  # what splitting the joined outputs again would give
    return op.split_outputs(op.join_outputs(outputs))


def load_outputs(storage: Any, op: Any, args: tuple, kwargs: dict, out_cids: tuple, block: Any = None) -> tuple:
    """The values of a stored call's outputs (a transient one computed when first used). In
    ``block``, a damaged value file is repaired as a run block repairs it: the call computed
    again here (an async op's is not: its error is raised), the file rewritten."""
    engine = storage.engine
    with engine.lock:
        try:
            return engine.stored_outputs(op, args, kwargs, out_cids)
        except CorruptValueError as error:
            if block is None or inspect.iscoroutinefunction(op.fn):
                raise
            allowed = storage.new_calls_allowed if block.allow_new_calls is None else block.allow_new_calls
            return engine.repaired_outputs(op, args, kwargs, out_cids, allowed, error)


def load_many_outputs(storage: Any, out_cids: list[tuple]) -> list[tuple]:
    """The output values of many stored calls (one lock, one pass); a transient output raises
    TransientValue: load that call with :func:`load_outputs`."""
    engine = storage.engine
    with engine.lock:
        load = engine.loader.load_output
        return [tuple(map(load, cids)) for cids in out_cids]


def output_refs(row_id: bytes, out_cids: tuple, values: tuple) -> tuple[Ref, ...]:
    """The Refs (value + ids) of a stored call's outputs, for exact provenance downstream."""
    return make_refs(row_id, tuple(zip(out_cids, values)))


def row_hid(call: Call) -> bytes:
    """The id of a recorded call's row."""
    return call.row_id


def single_flight(storage: Any) -> Any:
    """The storage's SingleFlight (cross-process call locks), or None when it is off."""
    return storage.single_flight


def commit(storage: Any) -> None:
    storage.commit()


def traced_elsewhere(found: tuple) -> RanCode:
    """What a worker in another process reports of the code it ran: the dependencies it
    worked out there (``worker.sent_dependencies``)."""
    ran = RanCode()
    ran.complete, ran.found = False, found
    return ran


def untraced_async(op: Any, args: tuple, kwargs: dict) -> tuple:
    """What an async body (not traced: bodies interleave on one loop) may have run, as
    :func:`traced_elsewhere` takes it: its op's static dependencies and the classes of the
    objects it was given (``dependencies.untraced_dependencies``)."""
    return dependencies.as_rows(dependencies.untraced_dependencies(op.fn, (*args, *kwargs.values())))


def untraced() -> RanCode:
    """What is known of the code a body ran where it could not be traced: nothing, so the
    call's dependencies are its op's static ones."""
    ran = RanCode()
    ran.complete = False
    return ran


# -- claims: calls computed in this process (runtime/claims.py) -----------------------------------


def claim(storage: Any, call: Call, owner: Any, wake: Any, remote: bool) -> tuple[Any, Any]:
    """``(claim, None)``: ``owner`` (a batch) claims the call (``remote``: its body goes to an
    executor or a cluster); or ``(None, holder)``: another thread or batch of this process
    holds it, and ``wake()`` is called as claims end, until :func:`stop_waking`."""
    claims = storage.engine.claims
    with claims.lock:
        holder = claims.holder(call.cid)
        if holder is not None:
            claims.wakers[id(owner)] = wake
            return None, holder
        return claims.claim(call.cid, owner, remote), None


def claim_here(storage: Any, call: Call) -> Any:
    """A claim on the call for this thread (a coroutine's event loop), unless another thread
    holds one (it is left in place: this one, not in place, ends as nothing)."""
    claims = storage.engine.claims
    with claims.lock:
        return claims.claim(call.cid)


def claim_holder(storage: Any, call: Call) -> Any:
    """The claim on the call, if any (a call waited for is looked up once it ends)."""
    return storage.engine.claims.holder(call.cid)


def wait_for_claim(storage: Any, call: Call, owner: Any, wake: Any) -> Any:
    """:func:`claim_holder`, and if there is one ``wake()`` is called as claims end, until
    :func:`stop_waking` (a batch whose call another thread took over waits for it)."""
    claims = storage.engine.claims
    with claims.lock:
        holder = claims.holder(call.cid)
        if holder is not None:
            claims.wakers[id(owner)] = wake
        return holder


def stop_waking(storage: Any, owner: Any) -> None:
    claims = storage.engine.claims
    with claims.lock:
        claims.wakers.pop(id(owner), None)


def let_go(storage: Any, owner: Any) -> None:
    """``owner``'s batch ends: none of its claims is left, and it is woken no more."""
    claims = storage.engine.claims
    with claims.lock:
        for cid, claim in list(claims.held.items()):
            if claim.owner is owner:
                claims.release(cid, claim)
        claims.wakers.pop(id(owner), None)


def release_claim(storage: Any, call: Call, claim: Any) -> bool:
    """End ``claim`` (False: it had ended, or another thread took its call over)."""
    claims = storage.engine.claims
    with claims.lock:
        return claims.release(call.cid, claim)


def claims_ended(storage: Any) -> int:
    """How many claims have ended so far in this process (a call looked up before one ended
    is looked up again before it is computed)."""
    return storage.engine.claims.releases
