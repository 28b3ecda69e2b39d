"""``Storage``: where calls are looked up, executed at most once, and kept."""

from __future__ import annotations

import functools
import os
import pickle
import sqlite3
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .batch import BatchBlock
    from .deletion import DeleteReport
    from .garbage import GcReport
    from .integrity import VerifyReport
    from .pictures import Picture
    from .query.block import QueryBlock

from .._errors import (
    CorruptValueError,
    MandalaRepairWarning,
    MandalaUnstoredWarning,
    NewCallError,
    ReadOnlyStorageError,
    StorageFullError,
    ValueEncodingError,
)
from . import codecs, structures
from .blobs import BlobDir, BlobFault
from .blocks import RunBlock
from .deletion_watch import DeletionWatch
from .hashing import UnhashableError, content_id, digest
from .integrity import damage_as_error, damaged_error, describe_producer, is_damage
from .ops import Op
from .packing import pack_outputs, unpack_outputs
from .refs import InexactRefs, Ref
from .store import FIELDS, SQLiteStore, full_disk_error
from .structures import EncodedStructure
from .tracing import RanCode, run_traced
from .versions import VersionTracker

__all__ = ["Storage"]

#: Values at least this large are stored as files beside the database.
BLOB_BYTES = 1 << 20
#: Bulk-load an op version's stored calls after this many point lookups (or calls/20)...
PREFETCH_AFTER = 64
#: ... unless it has more calls than this.
PREFETCH_MAX_CALLS = 2_000_000
#: Inside long blocks, buffered calls are committed at least this often.
FLUSH_EVERY_CALLS = 10_000
FLUSH_EVERY_SECONDS = 5.0
#: Decoded values of these types are shared between hits: they cannot be mutated.
_IMMUTABLE = frozenset({type(None), bool, int, float, complex, str, bytes})
#: What an untraced execution entered (nothing to see): shared, it is only ever read.
_RAN_NOTHING = RanCode()
#: The op calls made by such an execution.
_NO_OP_CALLS: frozenset = frozenset()


def _single_flight(path: Path) -> Any:
    from .batch.single_flight import SingleFlight

    return SingleFlight(Path(f"{path}.locks"))


def _serialised(method):
    """``method`` holding the storage's lock: other threads may be mid-call or committing."""

    @functools.wraps(method)
    def serialised(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return serialised


class Storage:
    """A persistent memo of op calls in a SQLite file (or in memory when ``path`` is None).

    >>> storage = Storage()
    >>> with storage:          # same as `with storage.run():`
    ...     pass

    Loading a stored value may unpickle it: treat a storage file like code, and open only
    files you trust. Opening a storage never unpickles anything.
    """

    def __init__(self, path: str | Path | None = None, *, on_change: str = "report", single_flight: bool = False) -> None:
        self.path = None if path is None else Path(path)
        #: Processes missing the same call at once compute it once (runtime/batch/single_flight.py)
        self.single_flight = _single_flight(self.path) if single_flight and path is not None else None
        self._store = SQLiteStore(self.path)
        # Threads share this Storage: its caches, buffered rows and connection. Lookups,
        # records and commits hold this lock; an op's body runs without it, and a warm hit
        # (_fast) needs none: one dict read, atomic under the GIL.
        self._lock = self._store.lock
        # Calls being computed (their content ids, by thread): another thread that misses on
        # one waits for it instead of computing it too; woken when any of them ends.
        self._computing: dict[bytes, int] = {}
        self._computed = threading.Condition(self._lock)
        self._waiting = 0  # threads waiting on _computed: no notify (~0.3 µs) when none
        try:
            with damage_as_error(self.path, "opening it"):
                self._versions = VersionTracker(self._store, on_change)
        except BaseException:
            self._store.close()  # no file descriptor left behind by a failed open
            raise
        self._blobs = None if self.path is None else BlobDir(Path(f"{self.path}.blobs"))
        self.new_calls_allowed = True
        # (row hid, output cids, deps_id) of stored calls valid for today's code, by the call's
        # history id (lkey) and by its content id; a history is never looked up by content
        self._by_history: dict[bytes, tuple] = {}
        self._by_content: dict[bytes, tuple] = {}
        self._stale: dict[bytes, bytes] = {}  # lkey -> deps_id of a prefetched stale call
        self._fast: dict[tuple, Any] = {}  # (version, scalar args, their types) -> result
        self._fast_refs: dict[tuple, tuple] = {}  # the same, plus input histories -> Refs
        self._fast_in_body: dict[tuple, tuple] = {}  # as _fast -> (result, deps_id), for op bodies
        self._values: dict[bytes, Any] = {}  # cid -> decoded immutable value
        self._unflushed: dict[bytes, codecs.EncodedValue] = {}  # cid -> value not yet committed
        self._stored: set[bytes] = set()  # cids known to be in the file (skip re-encoding)
        # Op versions whose every stored call is in memory (none stored, or all prefetched): a
        # memo miss is a miss, no query needed. Valid until another process commits (see
        # SQLiteStore.changed_elsewhere).
        self._complete: set[bytes] = set()
        self._stored_calls: dict[bytes, int] = {}  # version id -> calls in the file
        self._lookups: dict[bytes, int] = {}  # version id -> point lookups so far
        self._inline: dict[bytes, tuple[str, bytes]] = {}  # cid -> small prefetched value
        # An output unpickled here may hash to another id than the one it was stored under (see
        # _check_round_trips): that id -> the stored one. Pickled outputs loaded since the last
        # check, and those checked (each is checked once).
        self._aliases: dict[bytes, bytes] = {}
        self._unchecked: set[bytes] = set()
        self._checked: set[bytes] = set()
        self._last_flush = time.monotonic()
        self._forgotten = 0  # times _stored was forgotten (see _execute)
        self._blocks = threading.local()
        self._item_op_added = False  # the __item__ op's rows, buffered once (structures.py)
        self._deletions = DeletionWatch(self._store, self._blobs, self._unflushed)

    def __repr__(self) -> str:
        return f"Storage({str(self.path) if self.path else ':memory:'!r})"

    def _repr_html_(self) -> str:
        """Jupyter shows a storage as its ops with their versions and stored calls."""
        from .display import storage_html, storage_summary

        self.commit()
        return storage_html(repr(self), storage_summary(self._store))

    # -- blocks ----------------------------------------------------------------------------

    def run(self, *, allow_new_calls: bool | None = None) -> RunBlock:
        """A block in which op calls compute-and-save or load."""
        return RunBlock(self, allow_new_calls=allow_new_calls)

    def batch(self, executor: Any = None, *, progress: bool | None = None,
              max_concurrency: int | None = None, allow_new_calls: bool | None = None) -> "BatchBlock":
        """A block whose op calls are deferred, then run in parallel (see runtime/batch/).

        >>> with storage.batch(executor="threads"):     # doctest: +SKIP
        ...     ys = [inc(x) for x in range(100)]
        """
        from .batch import BatchBlock

        return BatchBlock(self, executor, progress=progress, max_concurrency=max_concurrency,
                          allow_new_calls=allow_new_calls)

    def query(self) -> "QueryBlock":
        """A block whose code is matched against stored calls instead of run.

        >>> with storage.query() as q:     # doctest: +SKIP
        ...     x = Q()
        ...     y = inc(x)
        >>> q.df()                         # doctest: +SKIP
        """
        from .query.block import QueryBlock

        return QueryBlock(self)

    def delete(self) -> "QueryBlock":
        """A block whose code, matched like a query, deletes the calls it matches and every
        call computed from them."""
        from .query.block import QueryBlock

        return QueryBlock(self, delete=True)

    def __enter__(self) -> "Storage":
        stack = self._block_stack()
        stack.append(self.run())
        return stack[-1].__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        self._block_stack().pop().__exit__(*exc_info)

    def allow_new_calls(self, allowed: bool) -> None:
        """With ``False``, a call that is not stored raises :class:`NewCallError` instead."""
        self.new_calls_allowed = allowed

    def commit(self) -> None:
        """Write buffered calls to the file (done for you at block exit and periodically)."""
        with self._lock:
            try:
                self._store.flush(self._deletions.before_flush)
            except StorageFullError:
                self._drop_unwritten_calls()
                raise
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                raise damaged_error(self.path, exc, "committing") from exc
            self._stored.update(self._unflushed)
            self._unflushed.clear()
            self._last_flush = time.monotonic()
            if self._deletions.noticed():  # deleted elsewhere: what we remember may be gone
                self._forget_stored()

    def close(self) -> None:
        """Commit and close the file (closed even when the commit fails)."""
        with self._lock:
            try:
                self.commit()
            finally:
                self._store.close()

    def _drop_unwritten_calls(self) -> None:
        """After a commit failed for lack of space: forget the calls it held, as if never
        computed (the next block computes them again), and everything remembered about the
        file. The rows describing ops and versions stay buffered for the next commit."""
        self._store.drop_call_rows()
        self._unflushed.clear()
        self._forget_stored()

    def _block_stack(self) -> list[RunBlock]:
        stack = getattr(self._blocks, "stack", None)
        if stack is None:
            stack = self._blocks.stack = []
        return stack

    # -- calls ---------------------------------------------------------------------------

    def memoized_call(self, op: Op, args: tuple, kwargs: dict, block: RunBlock) -> Any:
        """Look the call up by content, execute it on a miss; returns plain output(s)."""
        fast_key = _fast_key(op, args) if not kwargs else None
        if fast_key is not None:
            hit = self._fast.get(fast_key, _MISSING)
            if hit is not _MISSING:
                return hit
        bound = op.bind(args, kwargs)  # hashed unlocked: threads hash large arguments at once
        hashed = bound, self._input_cids(op, bound)
        with self._lock:  # (the memo too: another thread may be forgetting it, after a deletion)
            _, outputs, _ = self._call_and_load(op, args, kwargs, None, block, hashed)
            result = op.join_outputs(outputs)
            if fast_key is not None and _immutable(outputs):
                _bounded_put(self._fast, fast_key, result)
        return result

    def call_with_refs(
        self, op: Op, args: tuple, kwargs: dict, input_refs: dict[str, Ref], block: RunBlock
    ) -> tuple[Ref, ...]:
        """The memoized call with exact provenance: ``input_refs`` maps argument names to the
        Refs compiled code knows for them (the others are raw values).
        """
        fast_key = _fast_key(op, args) if not kwargs else None
        if fast_key is not None:
            fast_key += tuple((name, ref.hid) for name, ref in input_refs.items())
            hit = self._fast_refs.get(fast_key)
            if hit is not None:
                return hit
        hashed = self._hash_inputs(op, args, kwargs)
        with self._lock:
            call_hid, outputs, _ = self._call_and_load(op, args, kwargs, input_refs, block, hashed)
            refs = _refs(call_hid, outputs)
            if fast_key is not None and all(type(r.value) in _IMMUTABLE for r in refs):
                _bounded_put(self._fast_refs, fast_key, refs)
        return refs

    def call_from_op_body(
        self, op: Op, args: tuple, kwargs: dict, input_refs: dict[str, Ref] | None, block: RunBlock
    ) -> Any:
        """An op call made while an op body runs (RunBlock.start_op_body): plain output(s), or
        Refs when ``input_refs`` is given. The running bodies take on the call's dependency
        state, which the top-level fast caches do not keep: a cache of its own keeps it."""
        fast_key = _fast_key(op, args) if not kwargs and input_refs is None else None
        if fast_key is not None:
            hit = self._fast_in_body.get(fast_key)
            if hit is not None:
                block.note_op_call(op, hit[1])
                return hit[0]
        hashed = self._hash_inputs(op, args, kwargs)
        with self._lock:
            call_hid, outputs, deps_id = self._call_and_load(op, args, kwargs, input_refs, block, hashed)
            block.note_op_call(op, deps_id)
            if input_refs is not None:
                return _refs(call_hid, outputs)
            result = op.join_outputs(outputs)
            if fast_key is not None and _immutable(outputs):
                _bounded_put(self._fast_in_body, fast_key, (result, deps_id))
        return result

    def _call_and_load(self, op, args, kwargs, input_refs, block, hashed) -> tuple[bytes, tuple, bytes]:
        """``_call``, then its outputs' values: plain, or ``(cid, value)`` pairs with refs."""
        try:
            return self._call_then_load(op, args, kwargs, input_refs, block, hashed)
        except sqlite3.DatabaseError as exc:  # a try costs nothing until it catches (3.11+)
            if not is_damage(exc):
                raise
            raise damaged_error(self.path, exc, f"looking up a call of op {op.name}") from exc
        except MissingValueError:
            # A value deleted since this call found it: by another Storage (checked only at
            # block entry and commit), or by this one in another thread while the call ran (a
            # commit then drops the call). Catch up and look it up again, once.
            self._deletions.changed()  # this is the catching up: nothing left to report
            self._catch_up_with_deletions()
            return self._call_then_load(op, args, kwargs, input_refs, block, hashed)

    def _call_then_load(self, op, args, kwargs, input_refs, block, hashed) -> tuple[bytes, tuple, bytes]:
        try:
            call_hid, out_cids, deps_id = self._call(op, args, kwargs, input_refs, block, hashed)
        except UnstoredOutputs as unstored:  # computed, not storable: the block still gets them
            return unstored.handed_back(input_refs is not None)
        try:
            values = tuple(map(self._load_output, out_cids))
        except CorruptValueError as error:
            values = self._repair(op, args, kwargs, out_cids, block, error)
        return call_hid, values if input_refs is None else tuple(zip(out_cids, values)), deps_id

    # -- repairing ---------------------------------------------------------------------------

    def _repair(self, op: Op, args: tuple, kwargs: dict, out_cids, block, error) -> tuple:
        """The outputs of a stored call one of whose values is corrupt, once the call is
        computed again and every corrupt value file it can restore is rewritten."""
        shown = f"{op.name}({_describe_args(op, args, kwargs)})"
        if not block.new_calls_allowed():
            raise _named(error, shown, "new calls are not allowed here, so it is not computed again") from error
        self._versions.check_may_compute(op)
        fresh = self._encoded_outputs(op, op.split_outputs(op.fn(*args, **kwargs)))
        repaired: set[bytes] = set()
        while True:
            try:
                return tuple(map(self._load, out_cids))
            except CorruptValueError as again:
                encoded = fresh.get(again.cid)
                if encoded is None or again.cid in repaired:
                    why = ("computing it again gave another value (the op is not deterministic): delete "
                           "the call with storage.delete_calls() to store the new one")
                    raise _named(again, shown, why) from again
                self._rewrite_value(again, encoded, shown)
                repaired.add(again.cid)

    def _encoded_outputs(self, op: Op, outputs: tuple) -> dict[bytes, codecs.EncodedValue]:
        """``cid -> encoded value`` of recomputed outputs and their elements (MList...)."""
        kinds = op.structure_outputs
        found = {}
        for i, value in enumerate(outputs):
            encoded = _encode_or_explain(op, f"output {i}", value, kinds.get(i))
            found[content_id(value)] = encoded
            found.update(getattr(encoded, "elements", {}))
        return found

    def _rewrite_value(self, error: CorruptValueError, encoded: codecs.EncodedValue, shown: str) -> None:
        digest_ = self._blobs.rewrite(error.cid, encoded.data)
        self._store.record_file_digest(error.cid, digest_, len(encoded.data))
        warnings.warn(
            f"value {error.cid.hex()[:12]} of {shown} was corrupt ({error.problem}): computed the call "
            f"again and rewrote {error.path}",
            MandalaRepairWarning,
            stacklevel=_user_stacklevel(),
        )

    def _call(self, op, args, kwargs, input_refs, block, hashed) -> tuple[bytes, tuple[bytes, ...], bytes]:
        """``(row hid, output cids, deps_id)`` of the call, stored or computed now."""
        # Lookup is by history, then by content; only a miss on both executes.
        call = self._identify(op, hashed, input_refs)
        found = self._find(call)
        if found is None and self._unchecked and self._check_round_trips():
            # an argument may be a loaded value: hashed again, it is known by its stored id
            call = self._identify(op, self._hash_inputs(op, args, kwargs), input_refs)
            found = self._find(call)
        if found is None and self._computing:
            found = self._wait_for_others(call)
        if found is None and self.single_flight is not None and block.new_calls_allowed() and not self._store.read_only:
            self._versions.check_may_compute(op)  # (raising later would leave the lock held)
            found = self._wait_for_other_processes(call)
        if found is not None:
            hid, out_cids, deps_id, same_history = found
            # Same content, new history: record it, don't execute (a read-only file keeps its
            # histories).
            if not same_history and not self._store.read_only:
                call.set_state(deps_id)
                self._record(call, out_cids, None, 0.0)
                hid = call.hid
            return hid, out_cids, deps_id
        if not block.new_calls_allowed():
            raise NewCallError(
                f"op {op.name} has no stored call for ({call.describe()}) and new calls are not allowed"
            )
        if self._store.read_only:
            raise ReadOnlyStorageError(
                f"op {op.name} has no stored call for ({call.describe()}) and {self.path} is "
                "read-only (its file, directory or mount cannot be written)"
            )
        self._versions.check_may_compute(op)
        self._computing[call.cid] = threading.get_ident()
        try:
            out_cids = self._execute(call, args, kwargs, block)
            if self.single_flight is not None:
                self.commit()  # processes waiting for the call look for it in the file
        finally:
            del self._computing[call.cid]
            if self._waiting:
                self._computed.notify_all()
            if self.single_flight is not None:
                self.single_flight.release(call.cid)
        return call.hid, out_cids, call.deps_id

    def _wait_for_other_processes(self, call: _Call) -> tuple | None:
        """Single flight: the call's lock taken (None), or the call as another process
        stored it while this one waited (the storage lock released meanwhile)."""
        from .batch.single_flight import wait_for_call

        def look_again() -> tuple | None:
            with self._lock:
                return self._find(call)

        self._lock.release()
        try:
            return wait_for_call(self.single_flight, call.cid, look_again)
        finally:
            self._lock.acquire()

    def _wait_for_others(self, call: _Call) -> tuple | None:
        """A miss: while another thread computes the same content, wait for it and look again
        (it may fail: then this thread computes). Waiting releases the storage lock."""
        found = None
        while found is None:
            owner = self._computing.get(call.cid)
            if owner is None or owner == threading.get_ident():  # a recursive call: as before
                return None
            self._waiting += 1
            try:
                self._computed.wait()
            finally:
                self._waiting -= 1
            found = self._find(call)
        return found

    def _hash_inputs(self, op: Op, args: tuple, kwargs: dict) -> tuple[dict, dict[str, bytes]]:
        """The call's named arguments and their content ids (pure: needs no lock)."""
        bound = op.bind(args, kwargs)
        return bound, self._input_cids(op, bound)

    def _identify(self, op: Op, hashed: tuple, input_refs) -> _Call:
        bound, cids = hashed
        vid = self._versions.version_id(op)  # after hashing: a bad argument leaves no trace
        ident = op.identity_inputs(cids, self._versions.defaults(op))
        call_cid = _call_id(vid, ident)
        # Compiled code knows an argument's history while it holds the same object; the object
        # may have been changed since (model.fit(...), tags.add(...)): its history then no
        # longer says what it is, its content does.
        sources = {n: r.src for n, r in input_refs.items() if cids.get(n) == r.cid} if input_refs else {}
        exact = input_refs is not None and type(input_refs) is not InexactRefs
        if not sources:
            return _Call(op, vid, bound, cids, call_cid, call_cid, sources, exact)
        # An argument left at its default is not part of the content key, but its history is:
        # g(inc(1)) and g(dec(3)) are different calls even when both pass the default 2.
        hids = dict(ident)
        hids.update((name, input_refs[name].hid) for name in sources)
        return _Call(op, vid, bound, cids, call_cid, _call_id(vid, hids), sources, exact)

    def _input_cids(self, op: Op, bound: dict[str, Any]) -> dict[str, bytes]:
        try:
            if not op.ignore:
                cids = dict(zip(bound, map(content_id, bound.values())))
            else:
                cids = {n: content_id(v) for n, v in bound.items() if n not in op.ignore}
        except UnhashableError:
            for name, value in bound.items():
                _hash_or_explain(op, f"argument {name!r}", value)
            raise
        if self._aliases:  # a loaded value passed on unchanged is the stored value
            aliases = self._aliases
            return {name: aliases.get(cid, cid) for name, cid in cids.items()}
        return cids

    def _find(self, call: _Call) -> tuple | None:
        """``(row hid, output cids, deps_id, same history?)`` of a stored call that is valid for
        today's code: one with the call's history if there is one, else one with its content."""
        hit = self._in_memory(call)
        if hit is not None or self._known_absent(call.vid):
            return hit or self._report_stale(call)
        if self._should_prefetch(call.vid):
            self._prefetch(call.vid)
            return self._in_memory(call) or self._report_stale(call)
        exact = content = stale = None
        for hid, lkey, deps_id, outputs in self._store.find_calls(call.vid, call.lkey, call.cid):
            if not self._versions.is_valid(deps_id):
                stale = deps_id
            elif lkey == call.lkey:
                exact = (hid, self._remember_outputs(outputs), deps_id)
                break
            elif content is None:
                content = (hid, self._remember_outputs(outputs), deps_id)
        if exact is not None:
            self._by_history[call.lkey] = exact
            self._by_content.setdefault(call.cid, exact)
        elif content is not None:
            self._by_content[call.cid] = content
        elif stale is not None:
            self._versions.report_stale(call.op, stale)
        return self._in_memory(call)

    def _in_memory(self, call: _Call) -> tuple | None:
        hit = self._by_history.get(call.lkey)
        if hit is not None:
            return (*hit, True)
        hit = self._by_content.get(call.cid)
        return None if hit is None else (*hit, False)

    def _report_stale(self, call: _Call) -> None:
        """A miss of a prefetched or known version: report a stale stored call if there was one."""
        stale = self._stale.get(call.lkey)
        if stale is not None:
            self._versions.report_stale(call.op, stale)
        return None

    def _remember_outputs(self, outputs: list[tuple]) -> tuple[bytes, ...]:
        for cid, codec, data in outputs:
            if data is None or cid in self._values:
                continue
            if codec == "json" or codec == "bytes":  # immutable: decoded once, kept
                self._remember(cid, codecs.decode(codec, data))
            else:  # mutable: decoded per load anyway, so not here too
                self._stored.add(cid)
                self._inline[cid] = (codec, data)
        return tuple(cid for cid, _, _ in outputs)

    def _known_absent(self, vid: bytes) -> bool:
        if self._store.changed_elsewhere():
            self._complete.clear()
            self._stored_calls.clear()
        if vid not in self._stored_calls:
            # Counting a version's calls scans them (~0.1 s at 500k): ask only whether there
            # are any here, and count once prefetching is in question (_should_prefetch).
            stored = self._store.has_calls(vid)
            self._stored_calls[vid] = None if stored else 0
            if not stored:
                self._complete.add(vid)
        return vid in self._complete

    def _should_prefetch(self, vid: bytes) -> bool:
        """After enough point lookups, loading the version's whole index is cheaper.

        The threshold grows with the number of stored calls, so a process that needs a few
        calls of a huge op never pays for a bulk load out of proportion to its own work.
        """
        lookups = self._lookups[vid] = self._lookups.get(vid, 0) + 1
        if lookups < PREFETCH_AFTER:
            return False
        count = self._stored_calls.get(vid)
        if count is None:
            count = self._stored_calls[vid] = self._store.count_calls(vid)
        return lookups >= count // 20 and count <= PREFETCH_MAX_CALLS

    def _prefetch(self, vid: bytes) -> None:
        by_history, by_content, inline = self._by_history, self._by_content, self._inline
        for lkey, cid, hid, deps_id, packed in self._store.version_index(vid):
            if lkey in by_history:
                continue
            if not self._versions.is_valid(deps_id):
                self._stale.setdefault(lkey, deps_id)
                continue
            outputs = unpack_outputs(packed)
            by_history[lkey] = entry = (hid, tuple(out[0] for out in outputs), deps_id)
            by_content.setdefault(cid, entry)
            for out_cid, codec, data in outputs:
                if data is not None:
                    inline[out_cid] = (codec, data)
        self._complete.add(vid)

    def _execute(self, call: _Call, args: tuple, kwargs: dict, block: RunBlock) -> tuple[bytes, ...]:
        op = call.op
        # Encode new argument values before the body runs: an op that mutates its argument
        # must not store the mutated value under the original's content id.
        inputs = self._encode_new_inputs(call)
        traced = self._versions.may_run_user_code(op) or not _plain_data(call.bound.values())
        # Other threads look up and record meanwhile (this one holds the lock once: the
        # body may call ops, from this thread or from threads it starts).
        forgotten = self._forgotten
        self._lock.release()  # (try/finally, not a context manager: ~1 µs less per miss)
        try:
            started = time.perf_counter()
            if traced:
                op_calls = block.start_op_body()
                try:
                    result, ran = run_traced(op.fn, args, kwargs)
                finally:
                    block.end_op_body()
            else:  # nothing it can reach is user code (no op either): tracing would find nothing
                result, ran, op_calls = op.fn(*args, **kwargs), _RAN_NOTHING, _NO_OP_CALLS
            duration = time.perf_counter() - started
        finally:
            self._lock.acquire()
        call.set_state(self._versions.dependency_state(op, ran, op_calls))
        outputs = op.split_outputs(result)
        structured = op.structure_outputs  # {} for most ops (MList/MDict/MSet)
        if structured:  # a structure of the wrong type is an error before anything is stored
            structures.check_outputs(op.name, structured, outputs)
        try:
            out_cids = tuple(map(content_id, outputs))
            if structured:
                encoded = structures.encode_outputs(structured, outputs, op.name)
            else:
                encoded = list(map(codecs.encode, outputs))
        except Exception:  # say which output could not be hashed or stored; hand them back
            raise UnstoredOutputs(call, outputs, _explain_outputs(op, outputs, structured)) from None
        self._record(call, out_cids, encoded, duration, inputs)
        if forgotten != self._forgotten:
            # Another thread deleted (or a failed commit dropped) stored values while the body
            # ran: the inputs taken for stored before it may be gone. Check at the next commit.
            self._deletions.recheck()
        for cid, value in zip(out_cids, outputs):
            if type(value) in _IMMUTABLE:
                self._values[cid] = value
        self._maybe_flush()
        return out_cids

    # -- recording -----------------------------------------------------------------------

    def _encode_new_inputs(self, call: _Call) -> dict[bytes, codecs.EncodedValue]:
        kinds = call.op.structure_inputs  # {} unless arguments are MList/MDict/MSet
        return {
            cid: _encode_or_explain(call.op, f"argument {name!r}", call.bound[name], kinds.get(name))
            for name, cid in call.cids.items()
            if cid not in self._stored and cid not in self._unflushed
        }

    def _record(self, call: _Call, out_cids, encoded, duration: float, inputs=None) -> None:
        """Buffer the rows of one call, all or none. ``encoded``: the outputs, None when already
        stored; ``inputs``: argument values encoded before the body ran (else encoded now).

        Writing a value's blob file may fail (a full disk), and a call's input rows buffered
        without its call row would break every later commit. So the values are buffered first
        and dropped again on failure; then the call's rows, which cannot fail. Structures write
        their elements' files among their rows: there, every table's buffer is rolled back.
        """
        if inputs is None:
            inputs = self._encode_new_inputs(call)
        structured = call.op.has_structures  # one attribute test: plain ops pay nothing more
        if structured:
            marks = (self._store.buffer_marks(), self._item_op_added)
        else:
            marks = len(self._store.rows["vals"])
        try:
            for cid, value in inputs.items():
                self._buffer_encoded(cid, value)
            if encoded is not None:
                for cid, value in zip(out_cids, encoded):
                    self._buffer_encoded(cid, value)
            if structured:
                self._buffer_rows(call, out_cids, encoded, duration)
                self._record_structures(call, out_cids, encoded, inputs)
        except BaseException:  # nothing of the call stays buffered (a full disk: nothing to commit)
            self._unbuffer(marks)
            raise
        if not structured:
            self._buffer_rows(call, out_cids, encoded, duration)
        self._by_history[call.lkey] = entry = (call.hid, out_cids, call.deps_id)
        self._by_content.setdefault(call.cid, entry)

    def _unbuffer(self, marks: tuple | int) -> None:
        """Drop what was buffered since ``marks``: the vals table's length, or every table's
        (and whether the __item__ op's rows were buffered)."""
        if type(marks) is int:
            values = self._store.rows["vals"]
            dropped = values[marks :: FIELDS["vals"]]
            del values[marks:]
        else:
            dropped = self._store.truncate_buffers(marks[0])
            self._item_op_added = marks[1]
        for cid in dropped:
            self._unflushed.pop(cid, None)

    def _buffer_rows(self, call: _Call, out_cids, encoded, duration: float) -> None:
        rows, hid = self._store.rows, call.hid
        # Flat buffers (store.py): each row tuple is freed as soon as its fields are appended.
        sources, buffered = call.sources, rows["inputs"]
        if sources:
            for name, cid in call.cids.items():
                buffered += (hid, name, cid, *sources.get(name, _NO_SOURCE))
        else:
            for name, cid in call.cids.items():
                buffered += (hid, name, cid, None, None)
        buffered = rows["outputs"]
        for i, cid in enumerate(out_cids):
            buffered += (hid, i, cid)
        packed = pack_outputs(out_cids, encoded)
        now, exact = time.time(), int(call.exact)
        rows["calls"] += (hid, call.lkey, call.cid, call.vid, call.deps_id, now, duration, exact, packed)

    def _buffer_encoded(self, cid: bytes, encoded: codecs.EncodedValue) -> None:
        if cid in self._stored or cid in self._unflushed:
            return
        data, external = encoded.data, 0
        # A structure's row (element ids) stays in the file: gc reads it to keep its elements.
        large = len(data) >= BLOB_BYTES and encoded.codec not in codecs.STRUCTURE_CODECS
        if self._blobs is not None and large:
            # The row records the file's digest, which every load checks (blobs.py).
            data, external = self._write_blob(cid, data), 1
        self._store.rows["vals"] += (cid, encoded.codec, data, len(encoded.data), external)
        self._unflushed[cid] = encoded

    def _write_blob(self, cid: bytes, data: bytes) -> bytes:
        """Write a value's file; returns the digest of its bytes."""
        try:
            return self._blobs.write(cid, data)
        except OSError as exc:
            full = full_disk_error(exc, self._blobs.path(cid))
            if full is None:
                raise
            raise full from exc

    def _record_structures(self, call: _Call, out_cids, encoded, inputs: dict) -> None:
        """Elements of MList/MDict/MSet arguments and outputs as values of their own, and an
        ``__item__`` call per output element, each time the call is recorded (structures.py)."""
        op = call.op
        for name in op.structure_inputs:
            value = inputs.get(call.cids.get(name))
            if type(value) is EncodedStructure:
                self._buffer_elements(value)
        for index, kind in op.structure_outputs.items():
            value = encoded[index] if encoded is not None else None
            if type(value) is not EncodedStructure:  # recorded again: from the file
                value = self._stored_structure(out_cids[index], kind, call.op.name)
            if value is not None:
                self._record_items(call, index, out_cids[index], value)

    def _record_items(
        self, call: _Call, index: int, struct_cid: bytes, structure: EncodedStructure
    ) -> None:
        """Buffer one ``__item__`` call per element of output ``index`` (structures.py)."""
        rows = self._store.rows
        now = time.time()
        if not self._item_op_added:
            for table, row in structures.item_op_rows(now).items():
                rows[table] += row
            self._item_op_added = True
        self._buffer_elements(structure)
        for key_cid, key, cid, element in structure.items():
            if key is not None:
                self._buffer_encoded(key_cid, key)
            packed = pack_outputs((cid,), (element,))
            item = structures.item_call(call.hid, index, struct_cid, key_cid, cid, packed, call.exact, now)
            for table, row in item:
                rows[table] += row

    def _buffer_elements(self, structure: EncodedStructure) -> None:
        for cid, element in structure.elements.items():
            self._buffer_encoded(cid, element)

    def _stored_structure(self, cid: bytes, kind: str, op_name: str) -> EncodedStructure | None:
        """The EncodedStructure of a stored output; None for a dict stored whole."""
        pending = self._unflushed.get(cid)
        if type(pending) is EncodedStructure:
            return pending
        row = (pending.codec, pending.data) if pending else self._store.find_value(cid)
        if row is None:  # deleted by another Storage since this block found the call
            raise MissingValueError(f"value {cid.hex()} is missing from {self!r}")
        codec, data = row[:2]
        if codec in codecs.STRUCTURE_CODECS:
            return structures.parse(codec, data)
        # Stored whole (a plain op stored the same content first): store its elements now.
        value = structures.encode(kind, self._load(cid), op_name)
        return value if type(value) is EncodedStructure else None

    def _maybe_flush(self) -> None:
        if (
            len(self._store.rows["calls"]) >= FLUSH_EVERY_CALLS * FIELDS["calls"]
            or time.monotonic() - self._last_flush > FLUSH_EVERY_SECONDS
        ):
            self.commit()

    # -- hooks for batch blocks (runtime/batch/pipeline_adapter.py) ---------------------

    def identify_call(self, op: Op, args: tuple, kwargs: dict, input_refs: dict | None) -> "_Call":
        """The identity of a call, without looking it up or running it."""
        hashed = self._hash_inputs(op, args, kwargs)
        with self._lock:
            return self._identify(op, hashed, input_refs)

    def identify_calls(self, items: list) -> list:
        """``identify_call`` for many ``(op, args, kwargs, input_refs)``, one lock for all; an
        item whose arguments cannot be hashed gives its exception instead of a call."""
        hashed: list = []
        for op, args, kwargs, _ in items:
            try:
                hashed.append(self._hash_inputs(op, args, kwargs))
            except Exception as exc:
                hashed.append(exc)
        with self._lock:
            return [h if isinstance(h, Exception) else self._identify(item[0], h, item[3])
                    for item, h in zip(items, hashed)]

    def find_stored_calls(self, calls: list) -> list:
        """``(row hid, output cids, deps_id)`` or None per call; a call stored under another
        history is recorded under this one, as a run block does."""
        found = []
        with self._lock:
            for call in calls:
                hit = self._find(call)
                if hit is not None and not hit[3] and not self._store.read_only:
                    call.set_state(hit[2])
                    self._record(call, hit[1], None, 0.0)
                    hit = (call.hid, *hit[1:])
                found.append(None if hit is None else hit[:3])
        return found

    def check_new_call(self, call: "_Call", block: RunBlock) -> dict:
        """Raise as a run block would if ``call`` may not be computed; else its new argument
        values, encoded before the body runs (a body may mutate its arguments)."""
        with self._lock:
            if not block.new_calls_allowed():
                raise NewCallError(f"op {call.op.name} has no stored call for ({call.describe()}) and new calls are not allowed")
            if self._store.read_only:
                raise ReadOnlyStorageError(f"op {call.op.name} has no stored call for ({call.describe()}) and {self.path} is read-only")
            self._versions.check_may_compute(call.op)
            return self._encode_new_inputs(call)

    def runs_user_code(self, call: "_Call") -> bool:
        """Whether computing ``call`` may run user code, so its body must be traced."""
        return self._versions.may_run_user_code(call.op) or not _plain_data(call.bound.values())

    def record_computed(self, call: "_Call", result: Any, ran: RanCode, op_calls, duration: float, inputs: dict) -> tuple:
        """Record a call computed elsewhere (a batch worker), as _execute records its own."""
        op = call.op
        with self._lock:
            call.set_state(self._versions.dependency_state(op, ran, op_calls))
            outputs = op.split_outputs(result)
            structured = op.structure_outputs
            if structured:
                structures.check_outputs(op.name, structured, outputs)
            try:
                out_cids = tuple(map(content_id, outputs))
                encoded = structures.encode_outputs(structured, outputs, op.name) if structured else list(map(codecs.encode, outputs))
            except Exception:
                raise _explain_outputs(op, outputs, structured) from None
            self._record(call, out_cids, encoded, duration, inputs)
            for cid, value in zip(out_cids, outputs):
                if type(value) in _IMMUTABLE:
                    self._values[cid] = value
            self._maybe_flush()
        return out_cids

    def load_outputs(self, out_cids: Any, many: bool = False) -> Any:
        """The values of a stored call's outputs (of many calls' with ``many``)."""
        with self._lock:
            if many:
                return [tuple(map(self._load_output, cids)) for cids in out_cids]
            return tuple(map(self._load_output, out_cids))

    # -- tables --------------------------------------------------------------------------

    @_serialised
    def df(self, op: Op) -> "pd.DataFrame":
        """The op's table: one row per stored call with inputs, outputs, version and timing.

        >>> storage.df(inc)          # doctest: +SKIP
           x  output  version  duration_s                 created_at   call
        0  1       2        0    0.000001 2026-11-25 00:00:00.000000  3f2a…
        """
        from .tables import calls_table

        self.commit()
        with damage_as_error(self.path, f"reading the table of op {op.name}"):
            return calls_table(self._store, op, self._load)

    @_serialised
    def provenance(self, op: Op) -> "pd.DataFrame":
        """For each stored call of ``op`` and each input: the stored call that produced it.

        ``exact`` is True when compiled code recorded the producer; otherwise the producer is
        the earliest call whose output has the same content (None for raw inputs).
        """
        from .tables import provenance_table

        self.commit()
        with damage_as_error(self.path, f"reading the provenance of op {op.name}"):
            return provenance_table(self._store, op)

    @_serialised
    def draw(self, target: Any, *, format: str = "svg", path: str | Path | None = None) -> "Picture":
        """A picture of what is stored: for an op, the ops upstream and downstream of it with
        call counts; for any other value, the calls it came from. Needs graphviz's ``dot``
        for an image (otherwise: a warning and the DOT text); ``path`` saves it too.

        >>> storage.draw(add, path="add.svg")         # doctest: +SKIP
        <Picture: SVG, 5,123 bytes>
        """
        from .stored_graphs import draw_stored

        self.commit()
        with damage_as_error(self.path, "drawing what is stored"):
            return draw_stored(self._store, target, self._load, format=format, path=path)

    # -- deleting --------------------------------------------------------------------------

    @_serialised
    def delete_calls(self, target: Any, *, dependents: bool = True) -> "DeleteReport":
        """Delete calls, every call computed from their outputs, and the values no remaining
        call uses. Ids that match nothing are ignored.

        ``target``: call ids (bytes, or the hex strings of ``storage.df(op)["call"]``), a
        DataFrame from ``storage.df(op)``, or a query result. ``dependents=False`` keeps the
        calls computed from them.

        >>> df = storage.df(inc)                              # doctest: +SKIP
        >>> print(storage.delete_calls(df[df.x > 2]))         # doctest: +SKIP
        deleted 4 calls (2 matched, 2 computed from them) and 4 values (6 B)
        """
        from .deletion import call_ids, delete_calls

        hids = call_ids(target)  # a bad target fails before anything is written
        self.commit()
        try:
            with damage_as_error(self.path, "deleting calls"):
                return delete_calls(self._store, self._blobs, hids, dependents=dependents)
        finally:
            self._deletions.own_deletion()  # nothing left for the watch to report
            self._forget_stored()

    @_serialised
    def gc(self) -> "GcReport":
        """Remove values and blob files nothing refers to, then VACUUM: the file shrinks.

        >>> print(storage.gc())                               # doctest: +SKIP
        removed 0 unused values and 0 stray files; 52.1 MB -> 3.2 MB on disk
        """
        from .garbage import collect_garbage

        self.commit()
        try:
            with damage_as_error(self.path, "collecting garbage"):
                return collect_garbage(self._store, self._blobs)
        finally:
            self._deletions.own_deletion()  # nothing left for the watch to report
            self._forget_stored()

    def verify(self) -> "VerifyReport":
        """Check the whole storage: SQLite's integrity check of the database pages, every
        value file against the digest recorded when it was stored (missing, corrupt), files no
        value names (orphans), and rows naming calls or values the file does not hold.

        >>> print(storage.verify())                           # doctest: +SKIP
        run.db: OK (SQLite integrity check ok, 3 value files match their digests, no dangling rows)
        """
        from .integrity import verify

        self.commit()
        return verify(self._store, self._blobs)

    def _forget_stored(self) -> None:
        """Drop every in-memory record of what the file holds: after a deletion, none of it
        may be served (or assumed stored) again. (``_unflushed`` is not a record of the file
        but the values of buffered rows; deletion_watch.py checks those at the next commit.)"""
        self._forget_lookups()
        for cache in (self._values, self._stored, self._inline):
            cache.clear()
        self._forgotten += 1

    def forget_misses(self) -> None:
        """Look in the file again for calls this process found missing: another process may
        have just committed them. (Other commits are noticed on their own, but only every
        few tens of milliseconds; the pytest plugin calls this after waiting for another
        worker to compute the fixture value it was missing.)"""
        self._complete.clear()
        self._stored_calls.clear()

    def call_times(self, call_id: bytes) -> tuple[float, float] | None:
        """``(created_at, duration)`` in seconds of a committed stored call, or None.

        ``call_id`` is a call's id as ``delete_calls`` takes it (the pytest plugin reports
        the time a reused fixture saved, and refreshes only calls made before its session).
        """
        row = self._store.conn.execute(
            "SELECT created_at, duration FROM calls WHERE hid = ?", (call_id,)
        ).fetchone()
        return None if row is None else (row[0] or 0.0, row[1] or 0.0)

    # -- versions --------------------------------------------------------------------------

    @_serialised
    def versions(self, op: Op) -> "pd.DataFrame":
        """The op's stored versions: id, fingerprint, how many calls, which one is current."""
        self.commit()  # through the deletion watch: the table's own flush writes rows unchecked
        with damage_as_error(self.path, f"reading the versions of op {op.name}"):
            return self._versions.versions_table(op)

    @_serialised
    def accept_change(self, target: Any) -> str:
        """Declare the latest change of an op or of a dependency (function, class, or
        ``"module:NAME"`` constant) cosmetic: results computed before it stay valid.

        >>> storage.accept_change(normalize)        # doctest: +SKIP
        'helpers:normalize: change accepted; calls computed before it stay valid'
        """
        self.commit()
        with damage_as_error(self.path, "accepting a change"):
            message = self._versions.accept(target)
        self.commit()
        self._forget_lookups()
        return message

    @_serialised
    def why(self, op: Op, *args: Any, **kwargs: Any) -> str:
        """Explain whether ``op(*args, **kwargs)`` would load or compute, and why: the answer
        a block entered now would act on, code changed since the last block included. Asking
        stores nothing.

        >>> print(storage.why(train, data, alpha=0.1))      # doctest: +SKIP
        miss: train(data=..., alpha=0.1) was computed before, but
        dependency helpers.normalize changed:
        --- stored
        +++ current
        ...
        """
        from .display import Explanation  # text in a terminal, a coloured diff in Jupyter

        return Explanation(self._why(op, args, kwargs))

    def _why(self, op: Op, args: tuple, kwargs: dict) -> str:
        self.commit()
        with self._lock, damage_as_error(self.path, f"explaining a call of op {op.name}"):
            return self._explain(op, args, kwargs)

    def _explain(self, op: Op, args: tuple, kwargs: dict) -> str:
        if self._unchecked:  # an argument may be a loaded value (see _check_round_trips)
            self._check_round_trips()
        # Read-only, and the answer a block entered now would act on: code redefined since
        # the last block (a reload, a notebook cell) is noticed here as at block entry.
        if self._versions.refresh():
            self._forget_lookups()
        bound = op.bind(args, kwargs)
        cids = self._input_cids(op, bound)
        vid = self._versions.peek_version_id(op)
        ident = op.identity_inputs(cids, self._versions.peek_defaults(op))
        key = _call_id(vid, ident)
        shown = f"{op.name}({_describe(bound)})"
        candidates = self._store.find_calls(vid, key, key)
        diffs = [self._versions.dependency_diffs(deps_id) for _, _, deps_id, _ in candidates]
        for (hid, *_), changed in zip(candidates, diffs):
            if not changed:
                return f"hit: {shown} is stored (call {hid.hex()[:12]}); its code and dependencies are unchanged"
        if candidates:
            return f"miss: {shown} was computed before, but\n" + "\n".join(diffs[-1])
        for vid in self._versions.other_version_ids(op):
            key = _call_id(vid, ident)
            if self._store.find_calls(vid, key, key):
                return f"miss: {shown} was computed by another version of the op:\n" + (
                    self._versions.version_diff(op, vid)
                )
        return f"miss: {shown} was never computed in {self!r}"

    def _forget_lookups(self) -> None:
        """Drop in-process lookup caches after code changes or accepted changes."""
        caches = (self._by_history, self._by_content, self._stale, self._fast, self._fast_refs)
        for cache in (*caches, self._fast_in_body, self._complete, self._stored_calls, self._lookups):
            cache.clear()

    @_serialised
    def _enter_block(self) -> None:
        with damage_as_error(self.path, "entering a block"):
            if self._versions.refresh():
                self._forget_lookups()
            if self._deletions.changed():  # another Storage deleted calls or values
                self._catch_up_with_deletions()

    def _catch_up_with_deletions(self) -> None:
        """Commit what this block buffered (dropping what refers to deleted rows), then
        forget what the file held: forgetting first would compute the buffered calls again."""
        self.commit()
        self._forget_stored()

    # -- loading -------------------------------------------------------------------------

    def _load(self, cid: bytes, output: bool = False) -> Any:
        value = self._values.get(cid, _MISSING)
        if value is not _MISSING:
            return value
        codec, data, external = self._find_value(cid)
        if output and codec == "pickle" and cid not in self._checked:
            self._unchecked.add(cid)
        value = self._decode(cid, codec, data, external)
        if cid not in self._unflushed:
            self._remember(cid, value)
        return value

    def _load_output(self, cid: bytes) -> Any:
        """An output returned to a run block, which may pass it on: a pickled one is checked
        at the next miss (see _check_round_trips). Tables and queries load without that cost."""
        return self._load(cid, True)

    def _find_value(self, cid: bytes) -> tuple[str, Any, int]:
        """``(codec, data, external)`` of a value: buffered, prefetched, or in the file."""
        pending = self._unflushed.get(cid)
        if pending is not None:
            return pending.codec, pending.data, 0
        inline = self._inline.get(cid)
        if inline is not None:
            return (*inline, 0)
        row = self._store.find_value(cid)
        if row is None:
            raise MissingValueError(f"value {cid.hex()} is missing from {self!r}")
        return row

    def _decode(self, cid: bytes, codec: str, data: bytes | None, external: int) -> Any:
        if codec in codecs.STRUCTURE_CODECS:  # MList/MDict/MSet: load the elements too
            return structures.decode(codec, data, self._load_many)
        if external:  # data: the digest of the file's bytes (blobs.py)
            return self._decode_file(cid, codec, data)
        return codecs.decode(codec, data)

    def _decode_file(self, cid: bytes, codec: str, file_digest: bytes | None) -> Any:
        """A value stored as a file, checked against the digest recorded when it was stored."""
        try:
            if codecs.maps_file(codec):  # memory-mapped: checked in place, not read into memory
                return codecs.decode_file(codec, self._blobs.check(cid, file_digest))
            data = self._blobs.read(cid, file_digest)
        except BlobFault as fault:
            raise self._corrupt(cid, fault.path, fault.problem) from None
        try:
            return codecs.decode(codec, data)
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            if file_digest is not None:  # the bytes are those stored: not a corruption
                raise
            problem = f"it cannot be decoded ({type(exc).__name__}: {exc})"
            raise self._corrupt(cid, self._blobs.path(cid), problem) from exc

    def _corrupt(self, cid: bytes, path: Path, problem: str) -> CorruptValueError:
        call = describe_producer(self._store.conn, cid)
        made = f" (computed by {call})" if call else ""
        return CorruptValueError(
            f"value {cid.hex()[:12]}{made} is corrupt: {problem} ({path}). Calling the op in a run "
            "block computes it again and rewrites the file; storage.verify() checks every file.",
            cid=cid, path=path, call=call, problem=problem,
        )

    def _check_round_trips(self) -> bool:
        """Hash the outputs unpickled since the last check as they were loaded; True if one
        hashes to another id than its stored one (then remembered as an alias of it).

        Hashing is canonical, yet a class may rebuild state when unpickled that differs from the
        state it pickled (a cache, the loading process's id): without the alias, a value loaded
        and passed on unchanged would be a new argument. The alias is content-based, so a value
        changed after loading hashes to neither id. It costs one more decode and hash per
        pickled value loaded, paid at the first miss after loading (never on a hit), once per
        value and process; nothing is stored.
        """
        unchecked, self._unchecked = self._unchecked, set()
        found = False
        for cid in unchecked - self._checked:
            self._checked.add(cid)
            try:
                loaded = content_id(self._decode(cid, *self._find_value(cid)))
            except (MissingValueError, UnhashableError):
                continue  # deleted meanwhile, or not hashable: cannot be passed as an argument
            if loaded != cid:
                self._aliases[loaded] = cid
                found = True
        return found

    def _load_many(self, cids: list[bytes]) -> list[Any]:
        """Values of ``cids`` (a structure's elements): those not in memory in one query per
        chunk, not one per value."""
        memory = (self._values, self._unflushed, self._inline)
        wanted = [cid for cid in dict.fromkeys(cids) if not any(cid in m for m in memory)]
        rows = self._store.find_values(wanted) if wanted else {}
        values = []
        for cid in cids:
            row = rows.get(cid)
            if row is None or cid in self._values:  # in memory, or decoded once already
                values.append(self._load(cid))
            else:  # decoded per occurrence: equal mutable elements must not be one object
                values.append(self._decode(cid, *row))
                self._remember(cid, values[-1])
        return values

    def _remember(self, cid: bytes, value: Any) -> None:
        self._stored.add(cid)
        if type(value) in _IMMUTABLE:
            self._values[cid] = value


class MissingValueError(LookupError):
    """A value the storage should hold is not in the file (deleted meanwhile)."""


_MISSING = object()
_NO_SOURCE = (None, None)
_FAST_LIMIT = 1 << 20
#: Argument types whose Python equality is content equality (floats: see _fast_key).
_FAST_TYPES = frozenset({int, str, bool, type(None), bytes, float})
#: Types no value of another type in _FAST_TYPES equals (True == 1, 1.0 == 1; "1" != b"1").
_UNTYPED_KEYS = frozenset({int, str})


class _Call:
    """One call's identity: its inputs, content id (cid), history id (lkey), and once the
    dependency state is known, the id of its stored row (hid)."""

    __slots__ = ("op", "vid", "bound", "cids", "cid", "lkey", "sources", "exact", "deps_id", "hid")

    def __init__(self, op, vid, bound, cids, cid, lkey, sources, exact) -> None:
        self.op, self.vid, self.bound, self.cids = op, vid, bound, cids
        self.cid, self.lkey, self.sources, self.exact = cid, lkey, sources, exact
        self.deps_id = self.hid = None

    def set_state(self, deps_id: bytes) -> None:
        self.deps_id = deps_id
        self.hid = digest(b"row|%s|%s" % (self.lkey, deps_id))

    def describe(self) -> str:
        return _describe(self.bound)


def _describe(bound: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_short_repr(v)}" for k, v in bound.items())


def _short_repr(value: Any) -> str:
    try:
        return f"{value!r:.40}"
    except RecursionError:  # nested too deeply for repr: reprlib stops after a few levels
        import reprlib

        return reprlib.repr(value)


def _fast_key(op: Op, args: tuple) -> tuple | None:
    """A dict key for calls with scalar positional arguments, or None.

    Python's equality conflates 1, 1.0 and True, so the key carries each argument's type;
    0.0 == -0.0 share a hash, so zero floats (and anything equal to them) take the slow path.
    """
    types = tuple(map(type, args))
    if not _FAST_TYPES.issuperset(types) or 0.0 in args:
        return None
    # The op object (its serial), not its version id: a redefinition with a new default value
    # (a notebook cell run again) keeps the version but is not the same call. Ints and strs
    # equal only their own kind, so their key needs no types: a key of plain numbers and
    # strings is one the garbage collector stops visiting (type objects would keep it in).
    if _UNTYPED_KEYS.issuperset(types):
        return (op.serial, args)
    return (op.serial, args, types)


_PLAIN_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})


def _plain_data(values: Any) -> bool:
    """Scalars, flat containers of scalars, or numeric arrays: nothing that could run user
    code when an op computes with it (no user class, no callable)."""
    for value in values:
        kind = type(value)
        if kind in _PLAIN_SCALARS:
            continue
        if kind in (list, tuple) and all(type(item) in _PLAIN_SCALARS for item in value):
            continue
        if kind.__module__ == "numpy" and getattr(value, "dtype", object) != object:
            continue
        return False
    return True


def _immutable(outputs: tuple) -> bool:
    if len(outputs) == 1:  # most ops: no generator to set up
        return type(outputs[0]) in _IMMUTABLE
    return all(type(o) in _IMMUTABLE for o in outputs)


def _bounded_put(cache: dict, key: Any, value: Any) -> None:
    if len(cache) >= _FAST_LIMIT:
        cache.clear()
    cache[key] = value


def _call_id(version_id: bytes, ids: dict[str, bytes]) -> bytes:
    parts = [version_id]
    for name in sorted(ids):
        parts += (name.encode(), b"\0", ids[name])
    return digest(b"".join(parts))


def output_refs(call_hid: bytes, outputs: tuple) -> tuple[Ref, ...]:
    """Refs to a call's outputs, from its ``(cid, value)`` pairs (for batch blocks)."""
    return _refs(call_hid, outputs)


def _refs(call_hid: bytes, outputs: tuple) -> tuple[Ref, ...]:
    """Refs to a call's outputs, from its ``(cid, value)`` pairs."""
    return tuple(
        Ref(value, cid, _output_hid(call_hid, i), (call_hid, i)) for i, (cid, value) in enumerate(outputs)
    )


def _output_hid(call_hid: bytes, index: int) -> bytes:
    return digest(b"out|%s|%d" % (call_hid, index))


def _hash_or_explain(op: Op, what: str, value: Any) -> bytes:
    try:
        return content_id(value)
    except UnhashableError as exc:
        raise ValueEncodingError(f"op {op.name}, {what}: {exc}") from exc


def _explain_outputs(op: Op, outputs: tuple, structured: dict) -> ValueEncodingError:
    """The error naming the first output that cannot be hashed or stored."""
    try:
        for i, value in enumerate(outputs):
            _hash_or_explain(op, f"output {i}", value)
            _encode_or_explain(op, f"output {i}", value, structured.get(i))
    except ValueEncodingError as error:
        return error
    return ValueEncodingError(f"op {op.name}: its outputs cannot be stored")


class UnstoredOutputs(Exception):
    """A computed call whose outputs cannot be hashed or stored: nothing of it is recorded,
    and the block gets the outputs anyway (with one warning), rather than losing the work."""

    def __init__(self, call: _Call, outputs: tuple, error: ValueEncodingError) -> None:
        super().__init__(str(error))
        self.call, self.outputs, self.error = call, outputs, error

    def handed_back(self, with_refs: bool) -> tuple[bytes, tuple, bytes]:
        warnings.warn(
            f"{self.error}; it is returned without being stored, so the call is computed again next time",
            MandalaUnstoredWarning,
            stacklevel=_user_stacklevel(),
        )
        if not with_refs:
            return self.call.hid, self.outputs, self.call.deps_id
        # Ids no value has: an op this output is passed to is keyed by the value's content.
        ids = [digest(os.urandom(32)) for _ in self.outputs]
        return self.call.hid, tuple(zip(ids, self.outputs)), self.call.deps_id


def _encode_or_explain(op: Op, what: str, value: Any, kind: str | None = None) -> codecs.EncodedValue:
    try:
        return codecs.encode(value) if kind is None else structures.encode(kind, value, op.name)
    except Exception as exc:  # pickle raises TypeError, PicklingError, AttributeError, ...
        raise ValueEncodingError(
            f"op {op.name}, {what}: cannot store a value of type {type(value).__qualname__}: {exc}"
        ) from exc


_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep


def _user_stacklevel() -> int:
    """The ``stacklevel`` of a warning that points at the user's line, not ours (compiled
    and uncompiled calls reach the storage through different frames)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def _describe_args(op: Op, args: tuple, kwargs: dict) -> str:
    try:
        bound = op.bind(args, kwargs)
    except Exception:  # only a description
        return "..."
    return _describe(bound)


def _named(error: CorruptValueError, shown: str, why: str) -> CorruptValueError:
    """``error`` naming the call being made, and why it was not repaired."""
    return CorruptValueError(
        f"value {error.cid.hex()[:12]}, output of {shown}, is corrupt: {error.problem} ({error.path}); {why}. "
        "storage.verify() checks every file.",
        cid=error.cid, path=error.path, call=shown, problem=error.problem,
    )
