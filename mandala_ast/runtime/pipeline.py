"""The call pipeline: one op call through identity, lookup, execution, recording and loading.

``Storage``'s call methods answer warm hits themselves and hand everything else to
:meth:`CallPipeline.call_and_load`, which runs the steps in order:

1. identity.py: the call's ids, from its hashed inputs (hashed before the lock is taken);
2. lookup.py: a stored call valid for today's code, by history then by content;
3. on a miss, execution.py runs the body (waiting first for another thread computing the
   same call), and recording.py buffers its rows; found by content under a new history, the
   call is recorded without running;
4. loading.py: the outputs' values (corrupt value files are repaired by computing again).

The pipeline also owns what must stay consistent across those steps: the storage's lock,
the calls being computed by other threads, commits, and forgetting what the file held after
deletions.
"""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import (
    CorruptValueError,
    MandalaUnstoredWarning,
    NewCallError,
    ReadOnlyStorageError,
    StorageFullError,
    ValueEncodingError,
)
from . import dependencies, recursion, script_state, transient
from .block_refusal import check_block_allowed
from .claims import Claims
from .deletion_watch import DeletionWatch
from .execution import plain_data, run_body
from .identity import (
    CallIdentity,
    HashedInputs,
    describe_args,
    hash_inputs,
    identify,
    identify_unignored,
)
from .integrity import damage_as_error, damaged_error, is_damage
from .loading import IMMUTABLE, MissingValueError, ValueLoader, corrupt_for_call
from .lookup import CallIndex, Found
from .pointers import unwrap as unwrap_pointers
from .recording import (
    Recorder,
    UnstoredOutputs,
    encode_or_explain,
    encode_outputs,
    encoded_outputs,
    load_back,
)
from .stacklevel import user_stacklevel

if TYPE_CHECKING:
    from .blobs import BlobDir
    from .blocks import RunBlock
    from .ops import Op
    from .refs import Ref
    from .store import SQLiteStore
    from .versions import VersionTracker

__all__ = ["CallPipeline", "Called"]

#: ``(row id, outputs, deps id)``: outputs are values, or ``(cid, value)`` pairs with refs.
Called = tuple[Any, tuple, Any]


class CallPipeline:
    """The memoization engine of one storage (``Storage`` is its public face).

    >>> engine = CallPipeline(path, store, tracker, blobs, "Storage('run.db')")   # doctest: +SKIP
    >>> engine.call_and_load(inc, (1,), {}, None, block, hashed, True)[1]          # doctest: +SKIP
    (2,)
    """

    def __init__(
        self, path: Path | None, store: SQLiteStore, versions: VersionTracker, blobs: BlobDir | None, where: str
    ) -> None:
        self.path, self.store, self.versions, self.blobs = path, store, versions, blobs
        self.loader = ValueLoader(store, blobs, where)
        self.index = CallIndex(store, versions, self.loader)
        self.recorder = Recorder(store, blobs, self.loader, self.index)
        self.deletions = DeletionWatch(store, blobs, self.loader.unflushed)
        # Threads share the storage: its caches, buffered rows and connection. Lookups,
        # records and commits hold this lock; an op's body runs without it, and a warm hit
        # needs none: one dict read, atomic under the GIL.
        self.lock = store.lock
        # Calls being computed here or queued by batches: another thread that misses on one
        # waits for it instead of computing it too (claims.py).
        self.claims = Claims(self.lock)
        self._forgotten = 0  # times what the file holds was forgotten (see _execute)
        self._recomputed = transient.Recomputed()  # outputs of transient ops, computed again
        #: Storage(single_flight=True): cross-process call locks (runtime/batch/single_flight.py)
        self.single_flight: Any = None
        self._settings_seen = script_state.changes  # (see notice_settings)

    def lazy_outputs_made(self) -> int:
        """How many stored transient calls were handed out lazily so far (transient.py)."""
        return self._recomputed.handed_out

    # -- one call ----------------------------------------------------------------------------

    def call_and_load(
        self,
        op: Op,
        args: tuple,
        kwargs: dict,
        input_refs: dict[str, Ref] | None,
        block: RunBlock,
        hashed: HashedInputs,
        new_calls_allowed: bool,
    ) -> Called:
        """The call, stored or computed now, then its outputs' values: plain, or ``(cid,
        value)`` pairs when ``input_refs`` is given. Holds the lock (taken by the caller)."""
        try:
            return self._call_then_load(op, args, kwargs, input_refs, block, hashed, new_calls_allowed)
        except sqlite3.DatabaseError as exc:  # a try costs nothing until it catches (3.11+)
            if not is_damage(exc):
                raise
            raise damaged_error(self.path, exc, f"looking up a call of op {op.name}") from exc
        except MissingValueError:
            # A value deleted since this call found it: by another Storage (checked only at
            # block entry and commit), or by this one in another thread while the call ran (a
            # commit then drops the call). Catch up and look it up again, once.
            self.deletions.changed()  # this is the catching up: nothing left to report
            self.catch_up_with_deletions()
            return self._call_then_load(op, args, kwargs, input_refs, block, hashed, new_calls_allowed)

    def stored_outputs(self, op: Op, args: tuple, kwargs: dict, out_cids: tuple[bytes, ...]) -> tuple:
        """The output values of a stored call, for blocks that found it themselves (batch and
        async): a transient output, which has no stored value, is handed back lazily."""
        try:
            return tuple(map(self.loader.load_output, out_cids))
        except transient.TransientValue:  # not stored: computed on first use (transient.py)
            return self._unstored_outputs(op, args, kwargs, out_cids)

    def _call_then_load(self, op, args, kwargs, input_refs, block, hashed, new_calls_allowed) -> Called:
        try:
            row_id, out_cids, deps_id = self._call(op, args, kwargs, input_refs, block, hashed, new_calls_allowed)
        except UnstoredOutputs as unstored:  # computed, not storable: the block still gets them
            self.loader.decoded.clear()
            return unstored.handed_back(input_refs is not None)
        try:
            values = tuple(map(self.loader.load_output, out_cids))
        except CorruptValueError as error:
            values = self._repair(op, args, kwargs, out_cids, new_calls_allowed, error)
        except transient.TransientValue:  # not stored: computed again (transient.py)
            values = self._unstored_outputs(op, args, kwargs, out_cids)
        finally:
            if self.loader.decoded:  # an output the hand-back did not take (loaded twice)
                self.loader.decoded.clear()
        return row_id, values if input_refs is None else tuple(zip(out_cids, values)), deps_id

    def _unstored_outputs(self, op: Op, args: tuple, kwargs: dict, out_cids: tuple[bytes, ...]) -> tuple:
        """The outputs of a stored call one of which has no stored value (its op said
        ``transient=`` when the call was stored): lazy while the op still says so of each
        such output (transient.py); else computed now, and the values it no longer leaves
        out stored in place of their placeholders, so that the next run loads them."""
        missing = [i for i, cid in enumerate(out_cids) if self._not_stored(cid)]
        if all(transient.is_transient(op, i) for i in missing):
            return self._recomputed.outputs(op, args, kwargs, out_cids, self.loader.load_output)
        wanted = [i for i in missing if not transient.is_transient(op, i)]
        self.lock.release()  # bodies run without it (see _repair)
        try:
            outputs, cids = self._recomputed.compute(op, args, kwargs, out_cids, quiet=wanted)
        finally:
            self.lock.acquire()
        # An output that came out other than stored (not deterministic) is not stored under
        # the recorded id: the calls downstream were computed from the earlier value.
        kept = [i for i in wanted if cids[i] == out_cids[i]]
        if len(kept) < len(wanted):
            _warn_not_deterministic(op, [i for i in wanted if i not in kept])
        try:
            self.recorder.store_over_placeholders(
                {out_cids[i]: encode_or_explain(op, f"output {i}", outputs[i]) for i in kept})
        except (StorageFullError, ReadOnlyStorageError, ValueEncodingError) as failed:
            warnings.warn(f"op {op.name}: {failed}; its output is returned without being stored, so the call is "
                          "computed again next time", MandalaUnstoredWarning, stacklevel=user_stacklevel())
        return outputs

    def _not_stored(self, cid: bytes) -> bool:
        # By its row: decoding a stored output to find out cost a hit one more decode of it.
        known = self.loader.values.get(cid)  # (a value loaded before is not looked for again)
        if known is not None:
            return known is transient.NOT_STORED
        return self.loader.find_value(cid)[0] == transient.CODEC

    def _call(self, op, args, kwargs, input_refs, block, hashed, new_calls_allowed) -> tuple[bytes, tuple[bytes, ...], bytes]:
        """``(row id, output cids, deps_id)`` of the call, stored or computed now."""
        if script_state.changes != self._settings_seen or script_state.seen and not recursion.bodies_running():
            self.notice_settings()
        # Lookup is by history, then by content; only a miss on both executes.
        call = identify(op, hashed, input_refs, self.versions)
        found = self.index.find(call)
        if found is None and self.loader.unchecked and self.loader.check_round_trips():
            # an argument may be a loaded value: hashed again, it is known by its stored id
            call = identify(op, hash_inputs(op, args, kwargs, self.loader.aliases), input_refs, self.versions)
            found = self.index.find(call)
        if found is None and self.claims.held:
            found = self._wait_for_others(call)
        if found is None and op.ignore:
            found = self.stored_before_ignore(call)
        if found is None and (not new_calls_allowed or self.store.read_only):
            # A miss is answered from memory until the file is next seen to change (polled
            # every few tens of ms): before saying a call is not stored, look in the file.
            found = self.index.find_in_file(call)
        if found is not None:
            return self._found(call, found)
        self._check_may_compute(call, new_calls_allowed)
        # Claimed before the wait for other processes (which lets go of the lock), so that
        # threads of this one wait for this thread rather than for the file lock.
        claim, locked = self.claims.claim(call.cid), False
        try:
            # Not when this process holds the call's file lock already: a batch whose queued
            # call this thread took over (the lock is now this thread's), or an outer call.
            if self.single_flight is not None and call.cid not in self.single_flight.held:
                found, locked = self._wait_for_other_processes(call), True
                if found is not None:
                    return self._found(call, found)
            out_cids = self._execute(call, args, kwargs, block)
        finally:
            # (a claim another thread holds, left in place, is that thread's to end)
            if (self.claims.release(call.cid, claim) or locked) and self.single_flight is not None:
                self.single_flight.release(call.cid)
        return call.row_id, out_cids, call.deps_id  # type: ignore[return-value]

    def stored_before_ignore(self, call: CallIdentity) -> Found | None:
        """A call stored before ``ignore=`` named some of the op's arguments, keyed with them
        as given now: the op says they do not change its result, so it is this call
        (recorded for this one's identity, as a call found by content is). Run blocks and
        the batch lookup (batch blocks, async ops) both ask: either may meet such a call."""
        op = call.op
        if not op.ignore or not self.versions.keyed_before_ignore(op, call.version_id):
            return None
        unignored = identify_unignored(op, (call.bound, call.cids), self.versions)
        found = self.index.find(unignored) if unignored is not None else None
        return None if found is None else (*found[:3], False)

    def _wait_for_other_processes(self, call: CallIdentity) -> Found | None:
        """Single flight: the call's lock taken (None), or the call as another process
        stored it while this one waited (the storage lock released meanwhile)."""
        from .batch.single_flight import wait_for_call

        def look_again() -> Found | None:
            with self.lock:
                return self.index.find_in_file(call)

        self.lock.release()
        try:
            return wait_for_call(self.single_flight, call.cid, look_again)
        finally:
            self.lock.acquire()

    def _found(self, call: CallIdentity, found: Found) -> tuple[bytes, tuple[bytes, ...], bytes]:
        row_id, out_cids, deps_id, same_history = found
        # Same content, new history: record it, don't execute (a read-only file keeps its
        # histories).
        if not same_history and not self.store.read_only:
            call.set_state(deps_id)
            self.recorder.record(call, out_cids, None, 0.0)
            row_id = call.row_id  # type: ignore[assignment]
        return row_id, out_cids, deps_id

    def _check_may_compute(self, call: CallIdentity, new_calls_allowed: bool) -> None:
        op = call.op
        if not new_calls_allowed:
            raise NewCallError(
                f"op {op.name} has no stored call for ({call.describe()}) and new calls are not allowed"
            )
        if self.store.read_only:
            raise ReadOnlyStorageError(
                f"op {op.name} has no stored call for ({call.describe()}) and {self.path} is "
                "read-only (its file, directory or mount cannot be written)"
            )
        self.versions.check_may_compute(op)

    def _wait_for_others(self, call: CallIdentity) -> Found | None:
        """A miss: while another thread computes the same content (or a batch has it queued
        or running), wait for it and look again (it may fail: then this thread computes; see
        claims.py for when it computes at once). Waiting releases the storage lock."""
        found = None
        while found is None and self.claims.wait_for(call.cid):
            found = self.index.find(call)
        return found

    def _execute(self, call: CallIdentity, args: tuple, kwargs: dict, block: RunBlock) -> tuple[bytes, ...]:
        op = call.op
        # Encode new argument values before the body runs: an op that mutates its argument
        # must not store the mutated value under the original's content id.
        inputs = self.recorder.encode_new_inputs(call)
        traced = self.versions.may_run_user_code(op) or not plain_data(call.bound.values())
        forgotten = self._forgotten
        result, ran, op_calls, duration, files = run_body(op, args, kwargs, traced, block, self.lock, self.path)
        outputs = op.split_outputs(result)
        try:
            out_cids = self.record_computed(call, outputs, (ran, op_calls, files), duration, inputs,
                                            self.loader.decoded)
            if op.transient:  # handed back to the block, which cannot load them (not stored)
                self._recomputed.computed(out_cids, outputs)
            if forgotten != self._forgotten:
                # Another thread deleted (or a failed commit dropped) stored values while the body
                # ran: the inputs taken for stored before it may be gone. Check at the next commit.
                self.deletions.recheck()
            # Single flight: processes waiting for the call look for it in the file.
            if self.single_flight is not None or self.recorder.flush_due():
                self.commit()
        except (StorageFullError, ReadOnlyStorageError) as failed:
            # The body ran (perhaps for hours): the block gets its outputs, unstored, rather
            # than losing them with the write that failed (a full disk, value files on a
            # read-only mount).
            raise UnstoredOutputs(call, outputs, type(failed)(f"op {op.name}: {failed}")) from None
        return out_cids

    def record_computed(self, call: CallIdentity, outputs: tuple, ran_with: tuple, duration: float,
                        inputs: dict, loaded_back: dict | None = None) -> tuple[bytes, ...]:
        """Record a call whose body ran, here or in a batch worker: its dependency state (from
        ``ran_with`` = (code it ran, op calls it made, files it read)), its rows, and the small
        values this process keeps. Returns the output cids; the caller holds the lock.
        ``loaded_back``: where to put the pickled outputs as they load back, for a caller that
        hands them out next (see :func:`recording.load_back`)."""
        call.set_state(self.versions.dependency_state(call.op, *ran_with))
        out_cids, encoded = encode_outputs(call, outputs)
        if loaded_back is not None:
            load_back(call, outputs, out_cids, encoded, loaded_back)
        self.recorder.record(call, out_cids, encoded, duration, inputs)
        values = self.loader.values
        for cid, value in zip(out_cids, outputs):
            if type(value) in IMMUTABLE:
                values[cid] = value
        return out_cids

    def record_computed_many(self, computed: list[tuple]) -> list:
        """:meth:`record_computed` for many calls whose bodies ran elsewhere (a batch's results,
        a chunk at a time), each ``(call, outputs, ran_with, duration, inputs)``: per call its
        output cids, or the exception that kept it from being recorded (then nothing of it is
        buffered, and the others are recorded all the same). The caller holds the lock."""
        results: list = []
        entries, recorded = [], []
        dependency_state = self.versions.dependency_state
        for call, outputs, ran_with, duration, inputs in computed:
            try:
                call.set_state(dependency_state(call.op, *ran_with))
                out_cids, encoded = encode_outputs(call, outputs)
            except Exception as exc:  # this call's failure alone
                results.append(exc)
                continue
            results.append(out_cids)
            recorded.append((len(results) - 1, outputs))
            entries.append((call, out_cids, encoded, duration, inputs))
        values = self.loader.values
        for (at, outputs), error in zip(recorded, self.recorder.record_many(entries)):
            if error is not None:
                results[at] = error
                continue
            for cid, value in zip(results[at], outputs):
                if type(value) in IMMUTABLE:
                    values[cid] = value
        return results

    def repaired_outputs(self, op: Op, args: tuple, kwargs: dict, out_cids: tuple[bytes, ...],
                         new_calls_allowed: bool, error: CorruptValueError) -> tuple:
        """The outputs of a stored call whose value file is damaged (``error``), computed again
        and rewritten as a run block's call does (for batch blocks, which load stored calls
        themselves). The caller holds the lock."""
        return self._repair(op, args, kwargs, out_cids, new_calls_allowed, error)

    def _repair(self, op: Op, args: tuple, kwargs: dict, out_cids, new_calls_allowed: bool, error) -> tuple:
        """The outputs of a stored call one of whose values is corrupt, once the call is
        computed again and every corrupt value file it can restore is rewritten."""
        shown = f"{op.name}({describe_args(op, args, kwargs)})"
        if not new_calls_allowed:
            raise corrupt_for_call(error, shown, "new calls are not allowed here, so it is not computed again") from error
        self.versions.check_may_compute(op)
        args, kwargs = unwrap_pointers(args, kwargs)  # the body gets what pointers point to
        # Without the lock, as run_body runs bodies: one that hands op calls to a thread pool
        # waits for threads that need it.
        self.lock.release()
        try:
            result = op.fn(*args, **kwargs)
        finally:
            self.lock.acquire()
        fresh = encoded_outputs(op, op.split_outputs(result))
        return self.loader.repair(out_cids, fresh, shown)

    # -- the file ----------------------------------------------------------------------------

    def commit(self) -> None:
        """Write buffered calls to the file."""
        with self.lock:
            try:
                self.store.flush(self.deletions.before_flush)
            except StorageFullError:
                self._drop_unwritten_calls()
                raise
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                raise damaged_error(self.path, exc, "committing") from exc
            self.recorder.flushed()
            if self.deletions.noticed():  # deleted elsewhere: what we remember may be gone
                self.forget_stored()

    def enter_block(self) -> None:
        """At block entry: notice code changed since the last block and deletions made by
        other storages."""
        check_block_allowed()
        with self.lock, damage_as_error(self.path, "entering a block"):
            self.refresh_versions()
            if self.deletions.changed():  # another Storage deleted calls or values
                self.catch_up_with_deletions()

    def refresh_versions(self) -> None:
        """Notice code redefined since (a reload, a notebook cell): forget lookups made under
        the old code."""
        if self.versions.refresh():
            self.index.forget()
        self.notice_settings(in_place=True)

    def notice_settings(self, in_place: bool = False) -> None:
        """Outside op bodies (a block's entry, a call of the block's own code): notice state
        that code outside the op bodies set since it was last seen (``set_k(7)`` in the
        script, script_state.py; ``in_place``: changed in place too, at a block's entry), and
        forget what was found valid, worked out or answered from memory under its earlier
        setting."""
        if not recursion.bodies_running():
            dependencies.look_at_state(in_place)
        if script_state.changes != self._settings_seen:
            self._settings_seen = script_state.changes
            self.versions.forget_states()
            self.commit()  # (what this block computed is then found in the file, as after a deletion)
            self.index.forget()

    def catch_up_with_deletions(self) -> None:
        """Commit what this block buffered (dropping what refers to deleted rows), then
        forget what the file held: forgetting first would compute the buffered calls again."""
        self.commit()
        self.forget_stored()

    def forget_stored(self) -> None:
        """Drop every in-memory record of what the file holds: after a deletion, none of it
        may be served (or assumed stored) again. (Buffered values are not a record of the file
        but the values of buffered rows; deletion_watch.py checks those at the next commit.)"""
        self.index.forget()
        self.loader.forget()
        self._forgotten += 1

    def after_own_deletion(self) -> None:
        """This storage deleted calls or values: nothing for the deletion watch to report,
        and nothing remembered of the file may be served again."""
        self.deletions.own_deletion()
        self.forget_stored()

    def _drop_unwritten_calls(self) -> None:
        """After a commit failed for lack of space: forget the calls it held, as if never
        computed (the next block computes them again), and everything remembered about the
        file. The rows describing ops and versions stay buffered for the next commit."""
        self.store.drop_call_rows()
        self.loader.unflushed.clear()
        self.forget_stored()


def _warn_not_deterministic(op: Op, outputs: list[int]) -> None:
    """A call stored while ``op`` said ``transient=``, computed again now that it does not, gave
    other values than it recorded: they cannot be stored under the recorded ids, which the
    calls downstream were keyed by, so the call is computed again at every run until deleted."""
    warnings.warn(
        f"op {op.name}: output(s) {outputs} of a call stored while it said transient= came out other "
        "than that call recorded (the op is not deterministic): not stored, as the calls downstream "
        "were computed from the recorded value, so the call is computed again at every run; delete "
        "it (storage.delete_calls, a delete block) to compute and store it afresh",
        MandalaUnstoredWarning, stacklevel=user_stacklevel())
