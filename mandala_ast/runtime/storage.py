"""``Storage``: where calls are looked up, executed at most once, and kept."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .deletion import DeleteReport
    from .garbage import GcReport
    from .pictures import Picture
    from .query.block import QueryBlock

from .._errors import NewCallError, ReadOnlyStorageError, StorageFullError, ValueEncodingError
from . import codecs, structures
from .blobs import BlobDir
from .blocks import RunBlock
from .deletion_watch import DeletionWatch
from .hashing import UnhashableError, content_id, digest
from .ops import Op
from .packing import pack_outputs, unpack_outputs
from .refs import Ref
from .store import FIELDS, SQLiteStore, full_disk_error
from .structures import EncodedStructure
from .tracing import RanCode, run_traced
from .versions import VersionTracker

__all__ = ["Storage"]

#: Values at least this large are stored as files beside the database (DESIGN §5).
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

    def __init__(self, path: str | Path | None = None, *, on_change: str = "report") -> None:
        self.path = None if path is None else Path(path)
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
        self._versions = VersionTracker(self._store, on_change)
        self._blobs = None if self.path is None else BlobDir(Path(f"{self.path}.blobs"))
        self.new_calls_allowed = True
        # (row hid, output cids, deps_id) of stored calls valid for today's code, by the call's
        # history id (lkey) and by its content id; a history is never looked up by content
        self._by_history: dict[bytes, tuple] = {}
        self._by_content: dict[bytes, tuple] = {}
        self._stale: dict[bytes, bytes] = {}  # lkey -> deps_id of a prefetched stale call
        self._fast: dict[tuple, Any] = {}  # (version, scalar args, their types) -> result
        self._fast_refs: dict[tuple, tuple] = {}  # the same, plus input histories -> Refs
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
        self._last_flush = time.monotonic()
        self._forgotten = 0  # times _stored was forgotten (see _execute)
        self._blocks = threading.local()
        self._item_op_added = False  # the __item__ op's rows, buffered once (structures.py)
        self._deletions = DeletionWatch(self._store, self._blobs, self._unflushed)

    def __repr__(self) -> str:
        return f"Storage({str(self.path) if self.path else ':memory:'!r})"

    # -- blocks ----------------------------------------------------------------------------

    def run(self, *, allow_new_calls: bool | None = None) -> RunBlock:
        """A block in which op calls compute-and-save or load (DESIGN §3.2)."""
        return RunBlock(self, allow_new_calls=allow_new_calls)

    def query(self) -> "QueryBlock":
        """A block whose code is matched against stored calls instead of run (DESIGN §3.3).

        >>> with storage.query() as q:     # doctest: +SKIP
        ...     x = Q()
        ...     y = inc(x)
        >>> q.df()                         # doctest: +SKIP
        """
        from .query.block import QueryBlock

        return QueryBlock(self)

    def delete(self) -> "QueryBlock":
        """A block whose code, matched like a query, deletes the calls it matches and every
        call computed from them (DESIGN §3.5)."""
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
            _, outputs = self._call_and_load(op, args, kwargs, None, block, hashed)
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
            call_hid, outputs = self._call_and_load(op, args, kwargs, input_refs, block, hashed)
            refs = tuple(
                Ref(value, cid, _output_hid(call_hid, i), (call_hid, i))
                for i, (cid, value) in enumerate(outputs)
            )
            if fast_key is not None and all(type(r.value) in _IMMUTABLE for r in refs):
                _bounded_put(self._fast_refs, fast_key, refs)
        return refs

    def _call_and_load(self, op, args, kwargs, input_refs, block, hashed) -> tuple[bytes, tuple]:
        """``_call``, then its outputs' values: plain, or ``(cid, value)`` pairs with refs."""
        try:
            return self._call_then_load(op, args, kwargs, input_refs, block, hashed)
        except MissingValueError:
            # A value deleted since this call found it: by another Storage (checked only at
            # block entry and commit), or by this one in another thread while the call ran (a
            # commit then drops the call). Catch up and look it up again, once.
            self._deletions.changed()  # this is the catching up: nothing left to report
            self._catch_up_with_deletions()
            return self._call_then_load(op, args, kwargs, input_refs, block, hashed)

    def _call_then_load(self, op, args, kwargs, input_refs, block, hashed) -> tuple[bytes, tuple]:
        call_hid, out_cids = self._call(op, args, kwargs, input_refs, block, hashed)
        values = tuple(map(self._load, out_cids))
        return call_hid, values if input_refs is None else tuple(zip(out_cids, values))

    def _call(self, op, args, kwargs, input_refs, block, hashed) -> tuple[bytes, tuple[bytes, ...]]:
        # Lookup is by history, then by content (DESIGN §5); only a miss on both executes.
        call = self._identify(op, hashed, input_refs)
        found = self._find(call)
        if found is None and self._computing:
            found = self._wait_for_others(call)
        if found is not None:
            hid, out_cids, deps_id, same_history = found
            if same_history or self._store.read_only:  # (a read-only file keeps its histories)
                return hid, out_cids
            call.set_state(deps_id)  # same content, new history: record it, don't execute
            self._record(call, out_cids, None, 0.0)
            return call.hid, out_cids
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
            out_cids = self._execute(call, args, kwargs)
        finally:
            del self._computing[call.cid]
            if self._waiting:
                self._computed.notify_all()
        return call.hid, out_cids

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
        sources = {n: r.src for n, r in input_refs.items() if n in cids} if input_refs else {}
        if not sources:
            return _Call(op, vid, bound, cids, call_cid, call_cid, sources, input_refs is not None)
        # An argument left at its default is not part of the content key, but its history is:
        # g(inc(1)) and g(dec(3)) are different calls even when both pass the default 2.
        hids = dict(ident)
        hids.update((name, input_refs[name].hid) for name in sources)
        return _Call(op, vid, bound, cids, call_cid, _call_id(vid, hids), sources, True)

    def _input_cids(self, op: Op, bound: dict[str, Any]) -> dict[str, bytes]:
        try:
            if not op.ignore:
                return dict(zip(bound, map(content_id, bound.values())))
            return {n: content_id(v) for n, v in bound.items() if n not in op.ignore}
        except UnhashableError:
            for name, value in bound.items():
                _hash_or_explain(op, f"argument {name!r}", value)
            raise

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
            if data is not None and cid not in self._values:
                self._remember(cid, codecs.decode(codec, data))
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

    def _execute(self, call: _Call, args: tuple, kwargs: dict) -> tuple[bytes, ...]:
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
                result, ran = run_traced(op.fn, args, kwargs)
            else:  # nothing it can reach is user code: tracing would find nothing
                result, ran = op.fn(*args, **kwargs), _RAN_NOTHING
            duration = time.perf_counter() - started
        finally:
            self._lock.acquire()
        call.set_state(self._versions.dependency_state(op, ran))
        outputs = op.split_outputs(result)
        structured = op.structure_outputs  # {} for most ops (MList/MDict/MSet: DESIGN §3.7)
        if structured:  # a structure of the wrong type is an error before anything is stored
            structures.check_outputs(op.name, structured, outputs)
        try:
            out_cids = tuple(map(content_id, outputs))
            if structured:
                encoded = structures.encode_outputs(structured, outputs, op.name)
            else:
                encoded = list(map(codecs.encode, outputs))
        except Exception:  # say which output could not be hashed or stored
            out_cids = tuple(_hash_or_explain(op, f"output {i}", v) for i, v in enumerate(outputs))
            encoded = [_encode_or_explain(op, f"output {i}", v) for i, v in enumerate(outputs)]
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
            self._write_blob(cid, data)
            data, external = None, 1
        self._store.rows["vals"] += (cid, encoded.codec, data, len(encoded.data), external)
        self._unflushed[cid] = encoded

    def _write_blob(self, cid: bytes, data: bytes) -> None:
        try:
            self._blobs.write(cid, data)
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
        return calls_table(self._store, op, self._load)

    @_serialised
    def provenance(self, op: Op) -> "pd.DataFrame":
        """For each stored call of ``op`` and each input: the stored call that produced it.

        ``exact`` is True when compiled code recorded the producer; otherwise the producer is
        the earliest call whose output has the same content (None for raw inputs).
        """
        from .tables import provenance_table

        self.commit()
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
        return draw_stored(self._store, target, self._load, format=format, path=path)

    # -- deleting --------------------------------------------------------------------------

    @_serialised
    def delete_calls(self, target: Any, *, dependents: bool = True) -> "DeleteReport":
        """Delete calls, every call computed from their outputs, and the values no remaining
        call uses (DESIGN §3.5). Ids that match nothing are ignored.

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
            return collect_garbage(self._store, self._blobs)
        finally:
            self._deletions.own_deletion()  # nothing left for the watch to report
            self._forget_stored()

    def _forget_stored(self) -> None:
        """Drop every in-memory record of what the file holds: after a deletion, none of it
        may be served (or assumed stored) again. (``_unflushed`` is not a record of the file
        but the values of buffered rows; deletion_watch.py checks those at the next commit.)"""
        self._forget_lookups()
        for cache in (self._values, self._stored, self._inline):
            cache.clear()
        self._forgotten += 1

    # -- versions --------------------------------------------------------------------------

    @_serialised
    def versions(self, op: Op) -> "pd.DataFrame":
        """The op's stored versions: id, fingerprint, how many calls, which one is current."""
        self.commit()  # through the deletion watch: the table's own flush writes rows unchecked
        return self._versions.versions_table(op)

    @_serialised
    def accept_change(self, target: Any) -> str:
        """Declare the latest change of an op or of a dependency (function, class, or
        ``"module:NAME"`` constant) cosmetic: results computed before it stay valid.

        >>> storage.accept_change(normalize)        # doctest: +SKIP
        'helpers:normalize: change accepted; calls computed before it stay valid'
        """
        self.commit()
        message = self._versions.accept(target)
        self.commit()
        self._forget_lookups()
        return message

    @_serialised
    def why(self, op: Op, *args: Any, **kwargs: Any) -> str:
        """Explain whether ``op(*args, **kwargs)`` would load or compute, and why.

        >>> print(storage.why(train, data, alpha=0.1))      # doctest: +SKIP
        miss: train(data=..., alpha=0.1) was computed before, but
        dependency helpers.normalize changed:
        --- stored
        +++ current
        ...
        """
        self.commit()
        call = self._identify(op, self._hash_inputs(op, args, kwargs), None)
        shown = f"{op.name}({call.describe()})"
        candidates = self._store.find_calls(call.vid, call.lkey, call.cid)
        for hid, _, deps_id, _ in candidates:
            if self._versions.is_valid(deps_id):
                return f"hit: {shown} is stored (call {hid.hex()[:12]}); its code and dependencies are unchanged"
        if candidates:
            return f"miss: {shown} was computed before, but\n" + "\n".join(
                self._versions.dependency_diffs(candidates[-1][2])
            )
        ident = op.identity_inputs(call.cids, self._versions.defaults(op))
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
        for cache in (*caches, self._complete, self._stored_calls, self._lookups):
            cache.clear()

    @_serialised
    def _enter_block(self) -> None:
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

    def _load(self, cid: bytes) -> Any:
        value = self._values.get(cid, _MISSING)
        if value is not _MISSING:
            return value
        pending = self._unflushed.get(cid)
        if pending is not None:
            return self._decode(cid, pending.codec, pending.data, 0)
        inline = self._inline.get(cid)
        if inline is not None:
            value = codecs.decode(*inline)
            self._remember(cid, value)
            return value
        row = self._store.find_value(cid)
        if row is None:
            raise MissingValueError(f"value {cid.hex()} is missing from {self!r}")
        value = self._decode(cid, *row)
        self._remember(cid, value)
        return value

    def _decode(self, cid: bytes, codec: str, data: bytes | None, external: int) -> Any:
        if codec in codecs.STRUCTURE_CODECS:  # MList/MDict/MSet: load the elements too
            return structures.decode(codec, data, self._load_many)
        if external:
            return codecs.decode_file(codec, self._blobs.path(cid))
        return codecs.decode(codec, data)

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
        return ", ".join(f"{k}={v!r:.40}" for k, v in self.bound.items())


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


def _output_hid(call_hid: bytes, index: int) -> bytes:
    return digest(b"out|%s|%d" % (call_hid, index))


def _hash_or_explain(op: Op, what: str, value: Any) -> bytes:
    try:
        return content_id(value)
    except UnhashableError as exc:
        raise ValueEncodingError(f"op {op.name}, {what}: {exc}") from exc


def _encode_or_explain(op: Op, what: str, value: Any, kind: str | None = None) -> codecs.EncodedValue:
    try:
        return codecs.encode(value) if kind is None else structures.encode(kind, value, op.name)
    except Exception as exc:  # pickle raises TypeError, PicklingError, AttributeError, ...
        raise ValueEncodingError(
            f"op {op.name}, {what}: cannot store a value of type {type(value).__qualname__}: {exc}"
        ) from exc
