"""Lookup: is a call stored, valid for today's code? One call, or many at once.

The second step of a memoized call, after identity.py. A :class:`CallIndex` answers from
memory when it can: calls found or recorded by this process, and whole op versions loaded
at once (prefetched) once point lookups add up. It also holds the warm-hit caches that the
storage's call methods read before doing anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .packing import unpack_outputs

if TYPE_CHECKING:
    from .identity import CallIdentity
    from .loading import ValueLoader
    from .ops import Op
    from .store import SQLiteStore
    from .versions import VersionTracker

__all__ = ["PREFETCH_AFTER", "PREFETCH_MAX_CALLS", "CallIndex", "Found", "bounded_put"]

#: Bulk-load an op version's stored calls after this many point lookups (or calls/20)...
PREFETCH_AFTER = 64
#: ... unless it has more calls than this.
PREFETCH_MAX_CALLS = 2_000_000
_FAST_LIMIT = 1 << 20

#: A stored call found: ``(row id, output cids, deps id, same history?)``; the last is False
#: when the call was found by content only (another history computed the same thing).
Found = tuple[bytes, tuple[bytes, ...], bytes, bool]


class CallIndex:
    """What this process knows of one storage's stored calls.

    >>> index = CallIndex(store, tracker, loader)       # doctest: +SKIP
    >>> index.find(call) is None                        # nothing stored yet
    True
    """

    def __init__(self, store: SQLiteStore, versions: VersionTracker, loader: ValueLoader) -> None:
        self.store, self.versions, self.loader = store, versions, loader
        # (row id, output cids, deps_id) of stored calls valid for today's code, by the call's
        # history id and by its cid; a history is never looked up by content
        self.by_history: dict[bytes, tuple] = {}
        self.by_content: dict[bytes, tuple] = {}
        self.stale: dict[bytes, bytes] = {}  # history id -> deps_id of a prefetched stale call
        # Warm hits, read by Storage's call methods before anything else:
        self.fast: dict[tuple, Any] = {}  # (op serial, scalar args, their types) -> result
        self.fast_refs: dict[tuple, tuple] = {}  # the same, plus input history ids -> Refs
        self.fast_in_body: dict[tuple, tuple] = {}  # as fast -> (result, deps_id), for op bodies
        # as fast and fast_refs -> (result, guard): calls that read state the script may set
        # (script_state.py), answered while the guard holds
        self.fast_guarded: dict[tuple, tuple] = {}
        self.fast_refs_guarded: dict[tuple, tuple] = {}
        # Op versions whose every stored call is in memory (none stored, or all prefetched): a
        # miss is a miss, no query needed. Valid until another process commits (see
        # SQLiteStore.changed_elsewhere).
        self.complete: set[bytes] = set()
        self.stored_calls: dict[bytes, int | None] = {}  # version id -> calls in the file
        self.lookups: dict[bytes, int] = {}  # version id -> point lookups so far

    def find(self, call: CallIdentity) -> Found | None:
        """The stored call that is valid for today's code: one with the call's history if
        there is one, else one with its content; None on a miss."""
        hit = self.in_memory(call)
        if hit is not None or self._known_absent(call.version_id):
            return hit or self._report_stale(call)
        if self._should_prefetch(call.version_id):
            self.prefetch(call.version_id, call.op)
            return self.in_memory(call) or self._report_stale(call)
        self._look_up_one(call)
        return self.in_memory(call)

    def find_many(self, calls: list[CallIdentity]) -> list[Found | None]:
        """:meth:`find` for each of ``calls``, in order, with one query per op version when
        that is cheaper than one per call (the version's calls are loaded at once then).

        >>> [found is None for found in index.find_many([call_a, call_b])]   # doctest: +SKIP
        [False, True]
        """
        found: list[Found | None] = [self.in_memory(call) for call in calls]
        wanted: dict[bytes, int] = {}
        ops: dict[bytes, Op] = {}
        for call, hit in zip(calls, found):
            if hit is None:
                wanted[call.version_id] = wanted.get(call.version_id, 0) + 1
                ops[call.version_id] = call.op
        for version_id, count in wanted.items():
            if not self._known_absent(version_id) and self._worth_prefetching(version_id, count):
                self.prefetch(version_id, ops[version_id])
        for i, call in enumerate(calls):
            if found[i] is None:
                found[i] = self.find(call)
        return found

    def find_in_file(self, call: CallIdentity) -> Found | None:
        """:meth:`find`, but a call this process knows to be missing is looked for in the file
        all the same (misses are answered from memory for a while after the file was last
        seen to change): single flight's look after another process let go of the call's
        lock, which it does once the call is committed."""
        hit = self.in_memory(call)
        if hit is None:
            self._look_up_one(call)
            hit = self.in_memory(call)
        return hit

    def in_memory(self, call: CallIdentity) -> Found | None:
        hit = self.by_history.get(call.history_id)
        if hit is not None:
            return (*hit, True)
        hit = self.by_content.get(call.cid)
        return None if hit is None else (*hit, False)

    def add(self, call: CallIdentity, out_cids: tuple[bytes, ...]) -> None:
        """``call`` was just recorded with outputs ``out_cids``."""
        self.by_history[call.history_id] = entry = (call.row_id, out_cids, call.deps_id)
        self.by_content.setdefault(call.cid, entry)

    def prefetch(self, version_id: bytes, op: Op | None = None) -> None:
        """Load every stored call of an op version (``op``'s) and its small outputs into
        memory."""
        by_history, by_content, inline = self.by_history, self.by_content, self.loader.inline
        for history_id, cid, row_id, deps_id, packed in self.store.version_index(version_id):
            if history_id in by_history:
                continue
            if not self.versions.is_valid(deps_id, op):
                self.stale.setdefault(history_id, deps_id)
                continue
            outputs = unpack_outputs(packed)
            by_history[history_id] = entry = (row_id, tuple(out[0] for out in outputs), deps_id)
            by_content.setdefault(cid, entry)
            for out_cid, codec, data in outputs:
                if data is not None:
                    inline[out_cid] = (codec, data)
        self.complete.add(version_id)

    def forget(self) -> None:
        """Drop everything: after code changes, accepted changes or deletions."""
        caches = (self.by_history, self.by_content, self.stale, self.fast, self.fast_refs, self.fast_guarded,
                  self.fast_refs_guarded)
        for cache in (*caches, self.fast_in_body, self.complete, self.stored_calls, self.lookups):
            cache.clear()

    def forget_misses(self) -> None:
        """Look in the file again for calls found missing: another process may have stored them."""
        self.complete.clear()
        self.stored_calls.clear()

    def _look_up_one(self, call: CallIdentity) -> None:
        """Queries for the call's stored rows; what is valid is kept in memory."""
        # By history first: in a large storage, where every lookup reads index pages no
        # other lookup of this process read, one index probe costs ~7 µs and the query by
        # history or content ~10. Only when that finds nothing valid is the wider one needed.
        by_history = self.store.find_by_history(call.version_id, call.history_id)
        for row_id, deps_id, packed, _ in by_history:
            if self.versions.is_valid(deps_id, call.op):
                found = (row_id, self.loader.remember_outputs(unpack_outputs(packed)), deps_id)
                self.by_history[call.history_id] = found
                self.by_content.setdefault(call.cid, found)
                return
        exact = content = stale = None
        for row_id, history_id, deps_id, outputs in self._candidates(call, by_history):
            if not self.versions.is_valid(deps_id, call.op):
                stale = deps_id
            elif history_id == call.history_id:
                exact = (row_id, self.loader.remember_outputs(outputs), deps_id)
                break
            elif content is None:
                content = (row_id, self.loader.remember_outputs(outputs), deps_id)
        if exact is not None:
            self.by_history[call.history_id] = exact
            self.by_content.setdefault(call.cid, exact)
        elif content is not None:
            self.by_content[call.cid] = content
        elif stale is not None:
            self.versions.report_stale(call.op, stale)

    def _candidates(self, call: CallIdentity, by_history: list[tuple]) -> list[tuple]:
        """``store.find_calls``' rows for ``call``, whose rows by history (``by_history``)
        are all stale: for a call of plain values (history id = content id) those rows and
        the ones stored with its content under other histories, in the order stored."""
        if call.history_id != call.cid:
            return self.store.find_calls(call.version_id, call.history_id, call.cid)
        rows = [(key, row_id, call.history_id, deps_id, None) for row_id, deps_id, _, key in by_history]
        rows += self.store.find_by_content(call.cid)
        rows.sort(key=lambda row: row[0])
        return [row[1:] for row in rows]

    def _report_stale(self, call: CallIdentity) -> Found | None:
        """A miss of a prefetched or known version: report a stale stored call if there was one."""
        stale = self.stale.get(call.history_id)
        if stale is not None:
            self.versions.report_stale(call.op, stale)
        return None

    def _known_absent(self, version_id: bytes) -> bool:
        if self.store.changed_elsewhere():
            self.forget_misses()
        if version_id not in self.stored_calls:
            # Counting a version's calls scans them (~0.1 s at 500k): ask only whether there
            # are any here, and count once prefetching is in question (_should_prefetch).
            stored = self.store.has_calls(version_id)
            self.stored_calls[version_id] = None if stored else 0
            if not stored:
                self.complete.add(version_id)
        return version_id in self.complete

    def _should_prefetch(self, version_id: bytes) -> bool:
        """After enough point lookups, loading the version's whole index is cheaper.

        The threshold grows with the number of stored calls, so a process that needs a few
        calls of a huge op never pays for a bulk load out of proportion to its own work.
        """
        lookups = self.lookups[version_id] = self.lookups.get(version_id, 0) + 1
        if lookups < PREFETCH_AFTER:
            return False
        return self._worth_prefetching(version_id, lookups)

    def _worth_prefetching(self, version_id: bytes, lookups: int) -> bool:
        """Whether ``lookups`` point lookups cost more than loading the version at once."""
        if version_id in self.complete:
            return False
        count = self.stored_calls.get(version_id)
        if count is None:
            count = self.stored_calls[version_id] = self.store.calls_at_most(version_id)
        return lookups >= count // 20 and count <= PREFETCH_MAX_CALLS


def bounded_put(cache: dict, key: Any, value: Any) -> None:
    """``cache[key] = value``, emptying the cache first when it is full."""
    if len(cache) >= _FAST_LIMIT:
        cache.clear()
    cache[key] = value
