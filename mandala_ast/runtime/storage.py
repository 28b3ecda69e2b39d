"""``Storage``: where calls are looked up, executed at most once, and kept."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from .._errors import NewCallError, ValueEncodingError
from . import codecs
from .blobs import BlobDir
from .blocks import RunBlock
from .hashing import UnhashableError, content_id, digest
from .ops import Op
from .refs import Ref
from .store import SQLiteStore

__all__ = ["Storage"]

#: Values at least this large are stored as files beside the database (DESIGN §5).
BLOB_BYTES = 1 << 20
#: Inside long blocks, buffered calls are committed at least this often.
FLUSH_EVERY_CALLS = 10_000
FLUSH_EVERY_SECONDS = 5.0
#: Decoded values of these types are shared between hits: they cannot be mutated.
_IMMUTABLE = frozenset({type(None), bool, int, float, complex, str, bytes})


class Storage:
    """A persistent memo of op calls in a SQLite file (or in memory when ``path`` is None).

    >>> storage = Storage()
    >>> with storage:          # same as `with storage.run():`
    ...     pass

    Loading a stored value may unpickle it: treat a storage file like code, and open only
    files you trust. Opening a storage never unpickles anything.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._store = SQLiteStore(self.path)
        self._blobs = None if self.path is None else BlobDir(Path(f"{self.path}.blobs"))
        self.new_calls_allowed = True
        self._memo: dict[bytes, tuple[bytes, ...]] = {}  # call hid -> output cids
        self._fast: dict[tuple, Any] = {}  # (version, scalar args, their types) -> result
        self._values: dict[bytes, Any] = {}  # cid -> decoded immutable value
        self._unflushed: dict[bytes, codecs.EncodedValue] = {}  # cid -> value not yet committed
        self._stored: set[bytes] = set()  # cids known to be in the file (skip re-encoding)
        self._versions_seen: set[bytes] = set()
        # Op versions with no calls in the file but ours (all in _memo): their misses need no
        # lookup. Valid until another process commits (see SQLiteStore.changed_elsewhere).
        self._empty_versions: set[bytes] = set()
        self._checked_versions: set[bytes] = set()
        self._last_flush = time.monotonic()
        self._blocks = threading.local()

    def __repr__(self) -> str:
        return f"Storage({str(self.path) if self.path else ':memory:'!r})"

    # -- blocks ----------------------------------------------------------------------------

    def run(self, *, allow_new_calls: bool | None = None) -> RunBlock:
        """A block in which op calls compute-and-save or load (DESIGN §3.2)."""
        return RunBlock(self, allow_new_calls=allow_new_calls)

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
        self._store.flush()
        self._stored.update(self._unflushed)
        self._unflushed.clear()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Commit and close the file."""
        self.commit()
        self._store.close()

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
        _, out_cids = self._call(op, args, kwargs, None, block)
        outputs = tuple(self._load(cid) for cid in out_cids)
        result = op.join_outputs(outputs)
        if fast_key is not None and all(type(o) in _IMMUTABLE for o in outputs):
            self._remember_fast(fast_key, result)
        return result

    def call_with_refs(
        self, op: Op, args: tuple, kwargs: dict, input_refs: dict[str, Ref], block: RunBlock
    ) -> tuple[Ref, ...]:
        """The memoized call with exact provenance: ``input_refs`` maps argument names to the
        Refs compiled code knows for them (the others are raw values).
        """
        call_hid, out_cids = self._call(op, args, kwargs, input_refs, block)
        return tuple(
            Ref(self._load(cid), cid, _output_hid(call_hid, i), (call_hid, i))
            for i, cid in enumerate(out_cids)
        )

    def _call(self, op, args, kwargs, input_refs, block) -> tuple[bytes, tuple[bytes, ...]]:
        # Lookup is by history id, then by content id (DESIGN §5); only a miss on both executes.
        call = self._identify(op, args, kwargs, input_refs)
        out_cids = self._find(op, call.hid)
        if out_cids is None and call.hid != call.cid:
            out_cids = self._find(op, call.cid)
            if out_cids is not None:  # same content, new history: record it, don't execute
                self._record(call, out_cids, None, 0.0)
        if out_cids is None:
            if not block.new_calls_allowed():
                raise NewCallError(f"op {op.name} has no stored call for ({call.describe()}) "
                                   "and new calls are not allowed")
            out_cids = self._execute(call, args, kwargs)
        return call.hid, out_cids

    def _identify(self, op: Op, args: tuple, kwargs: dict, input_refs) -> _Call:
        bound = op.bind(args, kwargs)
        cids = self._input_cids(op, bound)
        ident = op.identity_inputs(cids)
        call_cid = _call_id(op.version_id, ident)
        sources = {n: r.src for n, r in input_refs.items() if n in cids} if input_refs else {}
        if not sources:
            return _Call(op, bound, cids, call_cid, call_cid, sources, input_refs is not None)
        hids = {n: (input_refs[n].hid if n in sources else c) for n, c in ident.items()}
        return _Call(op, bound, cids, call_cid, _call_id(op.version_id, hids), sources, True)

    def _input_cids(self, op: Op, bound: dict[str, Any]) -> dict[str, bytes]:
        try:
            return {n: content_id(v) for n, v in bound.items() if n not in op.ignore}
        except UnhashableError:
            for name, value in bound.items():
                _hash_or_explain(op, f"argument {name!r}", value)
            raise

    def _find(self, op: Op, call_hid: bytes) -> tuple[bytes, ...] | None:
        out_cids = self._memo.get(call_hid)
        if out_cids is not None:
            return out_cids
        if self._known_absent(op):
            return None
        rows = self._store.find_call(call_hid)
        if rows is None:
            return None
        out_cids = tuple(row[1] for row in rows if row[0] is not None)
        for _, cid, codec, data, external in rows:
            if cid is not None and cid not in self._values:
                self._remember(cid, self._decode(cid, codec, data, external))
        self._memo[call_hid] = out_cids
        return out_cids

    def _known_absent(self, op: Op) -> bool:
        if op.version_id not in self._versions_seen:
            self._versions_seen.add(op.version_id)
            self._register_version(op)
        if self._store.changed_elsewhere():
            self._empty_versions.clear()
            self._checked_versions.clear()
        if op.version_id not in self._checked_versions:
            self._checked_versions.add(op.version_id)
            if not self._store.has_version(op.version_id):
                self._empty_versions.add(op.version_id)
        return op.version_id in self._empty_versions

    def _execute(self, call: _Call, args: tuple, kwargs: dict) -> tuple[bytes, ...]:
        op = call.op
        started = time.perf_counter()
        result = op.fn(*args, **kwargs)
        duration = time.perf_counter() - started
        outputs = op.split_outputs(result)
        out_cids = tuple(_hash_or_explain(op, f"output {i}", v) for i, v in enumerate(outputs))
        encoded = [_encode_or_explain(op, f"output {i}", v) for i, v in enumerate(outputs)]
        self._record(call, out_cids, encoded, duration)
        for cid, value in zip(out_cids, outputs):
            if type(value) in _IMMUTABLE:
                self._values[cid] = value
        self._maybe_flush()
        return out_cids

    def _remember_fast(self, key: tuple, result: Any) -> None:
        if len(self._fast) >= _FAST_LIMIT:
            self._fast.clear()
        self._fast[key] = result

    # -- recording -----------------------------------------------------------------------

    def _record(self, call: _Call, out_cids, encoded, duration: float) -> None:
        """Buffer the rows of one call; ``encoded`` is None when the outputs are already stored."""
        op, add = call.op, self._store.add
        for name, cid in call.cids.items():
            self._buffer_value(op, f"argument {name!r}", cid, call.bound[name])
        for i, cid in enumerate(out_cids):
            if encoded is not None:
                self._buffer_encoded(cid, encoded[i])
            add("outputs", (call.hid, i, cid))
        for name, cid in call.cids.items():
            src_call, src_index = call.sources.get(name, _NO_SOURCE)
            add("inputs", (call.hid, name, cid, src_call, src_index))
        add("calls", (call.hid, call.cid, op.version_id, time.time(), duration, int(call.exact)))
        self._memo[call.hid] = out_cids

    def _register_version(self, op: Op) -> None:
        signature = json.dumps({"signature": str(op.signature), "outputs": op.output_names()})
        self._store.add("ops", (op.name, op.nout, signature))
        self._store.add("versions", (op.version_id, op.name, op.version, time.time()))

    def _buffer_value(self, op: Op, what: str, cid: bytes, value: Any) -> None:
        if cid in self._stored or cid in self._unflushed:
            return
        self._buffer_encoded(cid, _encode_or_explain(op, what, value))

    def _buffer_encoded(self, cid: bytes, encoded: codecs.EncodedValue) -> None:
        if cid in self._stored or cid in self._unflushed:
            return
        data, external = encoded.data, 0
        if self._blobs is not None and len(data) >= BLOB_BYTES:
            self._blobs.write(cid, data)
            data, external = None, 1
        self._store.add("vals", (cid, encoded.codec, data, len(encoded.data), external))
        self._unflushed[cid] = encoded

    def _maybe_flush(self) -> None:
        if (
            self._store.pending_calls >= FLUSH_EVERY_CALLS
            or time.monotonic() - self._last_flush > FLUSH_EVERY_SECONDS
        ):
            self.commit()

    # -- tables --------------------------------------------------------------------------

    def df(self, op: Op) -> "pd.DataFrame":
        """The op's table: one row per stored call with inputs, outputs, version and timing.

        >>> storage.df(inc)          # doctest: +SKIP
           x  output  version  duration_s                 created_at   call
        0  1       2        0    0.000001 2026-11-25 00:00:00.000000  3f2a…
        """
        from .tables import calls_table

        self.commit()
        return calls_table(self._store, op, self._load)

    def provenance(self, op: Op) -> "pd.DataFrame":
        """For each stored call of ``op`` and each input: the stored call that produced it.

        ``exact`` is True when compiled code recorded the producer; otherwise the producer is
        the earliest call whose output has the same content (None for raw inputs).
        """
        from .tables import provenance_table

        self.commit()
        return provenance_table(self._store, op)

    # -- loading -------------------------------------------------------------------------

    def _load(self, cid: bytes) -> Any:
        value = self._values.get(cid, _MISSING)
        if value is not _MISSING:
            return value
        pending = self._unflushed.get(cid)
        if pending is not None:
            return codecs.decode(pending.codec, pending.data)
        row = self._store.find_value(cid)
        if row is None:
            raise LookupError(f"value {cid.hex()} is missing from {self!r}")
        value = self._decode(cid, *row)
        self._remember(cid, value)
        return value

    def _decode(self, cid: bytes, codec: str, data: bytes | None, external: int) -> Any:
        if external:
            return codecs.decode_file(codec, self._blobs.path(cid))
        return codecs.decode(codec, data)

    def _remember(self, cid: bytes, value: Any) -> None:
        self._stored.add(cid)
        if type(value) in _IMMUTABLE:
            self._values[cid] = value


_MISSING = object()
_NO_SOURCE = (None, None)
_FAST_LIMIT = 1 << 20
#: Argument types whose Python equality is content equality (floats: see _fast_key).
_FAST_TYPES = frozenset({int, str, bool, type(None), bytes, float})


class _Call:
    """One call's identity: bound inputs, their content ids, and the call's cid and hid."""

    __slots__ = ("op", "bound", "cids", "cid", "hid", "sources", "exact")

    def __init__(self, op, bound, cids, cid, hid, sources, exact) -> None:
        self.op, self.bound, self.cids = op, bound, cids
        self.cid, self.hid, self.sources, self.exact = cid, hid, sources, exact

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
    return (op.version_id, args, types)


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


def _encode_or_explain(op: Op, what: str, value: Any) -> codecs.EncodedValue:
    try:
        return codecs.encode(value)
    except Exception as exc:  # pickle raises TypeError, PicklingError, AttributeError, ...
        raise ValueEncodingError(
            f"op {op.name}, {what}: cannot store a value of type {type(value).__qualname__}: {exc}"
        ) from exc
