"""``Storage``: the public face of a persistent memo of op calls.

What a user calls (blocks, tables, deletion, versions) and the three methods compiled and
uncompiled op calls reach through their block. A warm hit is answered here, from the
lookup index's caches; everything else goes through the call pipeline (pipeline.py):
identity, lookup, execution, recording, loading.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from types import MethodType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pandas as pd

    from .batch import BatchBlock
    from .deletion import DeleteReport
    from .garbage import GcReport
    from .integrity import VerifyReport
    from .pictures import Picture
    from .query.block import QueryBlock

from .._errors import ArgumentError, NotAnOpError
from . import noop, renames
from .blobs import blob_dir_of
from .blocks import RunBlock, innermost_run_block
from .built import settled
from .identity import MISSING, content_key, fast_key, hash_inputs, output_refs
from .integrity import damage_as_error
from .loading import IMMUTABLE
from .lookup import bounded_put
from .ops import Op
from .pipeline import CallPipeline
from .refs import Ref
from .store import SQLiteStore
from .versions import VersionTracker, check_on_change

__all__ = ["Storage"]

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _serialised(method: _Method) -> _Method:
    """``method`` holding the storage's lock: other threads may be mid-call or committing."""

    @functools.wraps(method)
    def serialised(self: Storage, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return serialised  # type: ignore[return-value]


def _single_flight(path: Path) -> Any:
    from .batch.single_flight import SingleFlight

    # Beside the file a symlink leads to: processes opening it by different names share them.
    return SingleFlight(Path(f"{os.path.realpath(path)}.locks"))


class Storage:
    """A persistent memo of op calls in a SQLite file (or in memory when ``path`` is None).

    >>> storage = Storage()
    >>> with storage:          # same as `with storage.run():`
    ...     pass

    Loading a stored value may unpickle it: treat a storage file like code, and open only
    files you trust. Opening a storage never unpickles anything.
    """

    def __init__(self, path: str | Path | None = None, *, on_change: str = "report", single_flight: bool = False) -> None:
        check_on_change(on_change)  # a typo makes no file
        self.path = None if path is None else Path(path)
        #: Processes missing the same call at once compute it once (runtime/batch/single_flight.py)
        self.single_flight = _single_flight(self.path) if single_flight and self.path is not None else None
        self._store = SQLiteStore(self.path)
        try:
            with damage_as_error(self.path, "opening it"):
                self._versions = VersionTracker(self._store, on_change)
        except BaseException:
            self._store.close()  # no file descriptor left behind by a failed open
            raise
        self._blobs = None if self.path is None else blob_dir_of(self.path)
        self.new_calls_allowed = True
        #: The memoization engine (pipeline.py): what blocks, queries, tables and pictures read.
        engine = self.engine = CallPipeline(self.path, self._store, self._versions, self._blobs, repr(self))
        engine.single_flight = self.single_flight
        # The warm-hit path reads these directly: one attribute each, no method call.
        self._lock = engine.lock
        self._fast = engine.index.fast
        self._fast_refs = engine.index.fast_refs
        self._fast_in_body = engine.index.fast_in_body
        self._fast_guarded = engine.index.fast_guarded
        self._fast_refs_guarded = engine.index.fast_refs_guarded
        self._aliases = engine.loader.aliases
        self._call_and_load = engine.call_and_load

    def __repr__(self) -> str:
        return f"Storage({str(self.path) if self.path else ':memory:'!r})"

    def _repr_html_(self) -> str:
        """Jupyter shows a storage as its ops with their versions and stored calls."""
        from .display import storage_html, storage_summary

        self.commit()
        return storage_html(repr(self), storage_summary(self._store))

    # -- blocks ----------------------------------------------------------------------------

    def run(self, *, allow_new_calls: bool | None = None, mode: str = "run") -> RunBlock:
        """A block in which op calls compute-and-save or load; with ``mode="noop"`` (or the
        environment variable MANDALA_AST_NOOP=1) a block in which ops are plain calls and
        the storage is not touched (noop.py).

        >>> with storage.run(allow_new_calls=False):     # doctest: +SKIP
        ...     inc(1)                                  # NewCallError unless stored
        """
        if mode == "noop" or noop.requested():
            return noop.NoopBlock(self)
        if mode != "run":
            raise ArgumentError(f"storage.run: mode= must be 'run' or 'noop', not {mode!r}")
        return RunBlock(self, allow_new_calls=allow_new_calls)

    def batch(self, executor: Any = None, *, progress: bool | None = None,
              max_concurrency: int | None = None, allow_new_calls: bool | None = None) -> BatchBlock | noop.NoopBatchBlock:
        """A block whose op calls are deferred, then run in parallel (see runtime/batch/);
        with MANDALA_AST_NOOP set, a noop block, as for run blocks: plain calls in order.

        >>> with storage.batch(executor="threads"):     # doctest: +SKIP
        ...     ys = [inc(x) for x in range(100)]
        """
        from .batch import BatchBlock

        if noop.requested():
            return noop.NoopBatchBlock(self)
        return BatchBlock(self, executor, progress=progress, max_concurrency=max_concurrency,
                          allow_new_calls=allow_new_calls)

    def query(self) -> QueryBlock:
        """A block whose code is matched against stored calls instead of run.

        >>> with storage.query() as q:     # doctest: +SKIP
        ...     x = Q()
        ...     y = inc(x)
        >>> q.df()                         # doctest: +SKIP
        """
        from .query.block import QueryBlock

        return QueryBlock(self)

    def delete(self) -> QueryBlock:
        """A block whose code, matched like a query, deletes the calls it matches and every
        call computed from them."""
        from .query.block import QueryBlock

        return QueryBlock(self, delete=True)

    def __enter__(self) -> Storage:
        return self.run().__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        block = innermost_run_block(self)
        if block is not None:
            block.__exit__(*exc_info)

    def allow_new_calls(self, allowed: bool) -> None:
        """With ``False``, a call that is not stored raises :class:`NewCallError` instead."""
        self.new_calls_allowed = allowed

    def commit(self) -> None:
        """Write buffered calls to the file (done for you at block exit and periodically)."""
        self.engine.commit()

    def close(self) -> None:
        """Commit and close the file (closed even when the commit fails)."""
        with self._lock:
            try:
                self.commit()
            finally:
                self._store.close()

    # -- calls (through a block: RunBlock.call_op and call_op_with_refs) -------------------

    def memoized_call(self, op: Op, args: tuple[Any, ...], kwargs: dict[str, Any], block: RunBlock) -> Any:
        """Look the call up by content, execute it on a miss; returns plain output(s)."""
        key = fast_key(op, args) if not kwargs else None
        if key is not None:
            hit = self._fast.get(key, MISSING)
            if hit is not MISSING:
                return hit
            if self._fast_guarded:  # (empty unless a call read state the script sets)
                hit = _guarded_hit(self._fast_guarded, key)
                if hit is not MISSING:
                    return hit
        hashed = hash_inputs(op, args, kwargs, self._aliases)  # unlocked: threads hash at once
        if key is None:  # a list, a dict...: the same memo, by the arguments' content ids
            key = content_key(op, hashed)
            hit = self._fast.get(key, MISSING)
            if hit is MISSING:
                hit = _guarded_hit(self._fast_guarded, key)
            if hit is not MISSING:
                return hit
        allowed = self.new_calls_allowed if block.allow_new_calls is None else block.allow_new_calls
        with self._lock:  # (the memo too: another thread may be forgetting it, after a deletion)
            _, outputs, deps_id = self._call_and_load(op, args, kwargs, None, block, hashed, allowed)
            result = op.join_outputs(outputs)
            if _immutable(outputs):
                self._keep_warm(self._fast, self._fast_guarded, key, result, deps_id)
        return result

    def _keep_warm(self, memo: dict[tuple[Any, ...], Any], guarded: dict[tuple[Any, ...], Any], key: tuple[Any, ...],
                   result: Any, deps_id: bytes | None) -> None:
        """Keep a call's result for its warm hits: in ``memo``, unless it read state the script
        may set before the next call (script_state.py): then in ``guarded``, with what that
        state held (a guard a warm hit checks)."""
        guard = self._versions.warm_guard(deps_id)
        if guard is None:
            bounded_put(memo, key, result)
        else:
            bounded_put(guarded, key, (result, guard))

    def call_with_refs(
        self, op: Op, args: tuple[Any, ...], kwargs: dict[str, Any], input_refs: dict[str, Ref], block: RunBlock
    ) -> tuple[Ref, ...]:
        """The memoized call with exact provenance: ``input_refs`` maps argument names to the
        Refs compiled code knows for them (the others are raw values).
        """
        key = fast_key(op, args) if not kwargs else None
        if key is not None:
            key += tuple((name, ref.hid) for name, ref in input_refs.items())
            hit = self._fast_refs.get(key) or _guarded_hit(self._fast_refs_guarded, key, None)
            if hit is not None:
                return hit
        hashed = hash_inputs(op, args, kwargs, self._aliases)
        if key is None:  # the same memo, by the arguments' content ids (see memoized_call)
            if input_refs:  # a list built by hand (never a fast key) takes its ids from its content
                input_refs = settled(input_refs, hashed[1])
            key = content_key(op, hashed) + tuple((name, ref.hid) for name, ref in input_refs.items())
            hit = self._fast_refs.get(key) or _guarded_hit(self._fast_refs_guarded, key, None)
            if hit is not None:
                return hit
        allowed = self.new_calls_allowed if block.allow_new_calls is None else block.allow_new_calls
        with self._lock:
            row_id, outputs, deps_id = self._call_and_load(op, args, kwargs, input_refs, block, hashed, allowed)
            refs = output_refs(row_id, outputs)
            if type(outputs) is tuple and all(type(r.value) in IMMUTABLE for r in refs):
                self._keep_warm(self._fast_refs, self._fast_refs_guarded, key, refs, deps_id)
        return refs

    def call_from_op_body(
        self, op: Op, args: tuple[Any, ...], kwargs: dict[str, Any], input_refs: dict[str, Ref] | None, block: RunBlock
    ) -> Any:
        """An op call made while an op body runs (RunBlock.start_op_body): plain output(s), or
        Refs when ``input_refs`` is given. The running bodies take on the call's dependency
        state, which the top-level fast caches do not keep: a cache of its own keeps it."""
        key = fast_key(op, args) if not kwargs and input_refs is None else None
        if key is not None:
            hit = self._fast_in_body.get(key)
            if hit is not None:
                block.note_op_call(op, hit[1])
                return hit[0]
        hashed = hash_inputs(op, args, kwargs, self._aliases)
        if input_refs:
            input_refs = settled(input_refs, hashed[1])
        allowed = self.new_calls_allowed if block.allow_new_calls is None else block.allow_new_calls
        with self._lock:
            row_id, outputs, deps_id = self._call_and_load(op, args, kwargs, input_refs, block, hashed, allowed)
            block.note_op_call(op, deps_id)
            if input_refs is not None:
                return output_refs(row_id, outputs)
            result = op.join_outputs(outputs)
            if key is not None and _immutable(outputs) and self._versions.warm_guard(deps_id) is None:
                bounded_put(self._fast_in_body, key, (result, deps_id))  # (see _keep_warm)
        return result

    # -- tables --------------------------------------------------------------------------

    @_serialised
    def df(self, op: Op) -> pd.DataFrame:
        """The op's table: one row per stored call with inputs, outputs, version and timing.

        ``current``: whether the row is what today's code would load (False: computed by
        another version of the op, or before a helper or constant it used changed).

        >>> storage.df(inc)          # doctest: +SKIP
           x  output  version  current  duration_s                 created_at   call
        0  1       2        0     True    0.000001 2026-11-25 00:00:00.000000  3f2a…
        """
        from .tables import calls_table

        op = _needs_op(op, "df")
        # Code redefined since the last block (a notebook cell, a reload) counts, as in a query.
        self.engine.enter_block()
        self.commit()
        versions = self.engine.versions
        today = versions.peek_version_id(op)  # a table stores nothing, not even a new version

        def current(version_id: bytes, deps_id: bytes) -> bool:
            return version_id == today and versions.is_valid(deps_id, op)

        with damage_as_error(self.path, f"reading the table of op {op.name}"):
            return calls_table(self._store, op, self.engine.loader.load, current)

    @_serialised
    def provenance(self, op: Op) -> pd.DataFrame:
        """For each stored call of ``op`` and each input: the stored call that produced it.

        ``exact`` is True when compiled code recorded the producer; otherwise the producer is
        the earliest call whose output has the same content (None for raw inputs).
        """
        from .tables import provenance_table

        op = _needs_op(op, "provenance")
        self.commit()
        with damage_as_error(self.path, f"reading the provenance of op {op.name}"):
            return provenance_table(self._store, op)

    @_serialised
    def draw(self, target: Any, *, format: str = "svg", path: str | Path | None = None) -> Picture:
        """A picture of what is stored: for an op, the ops upstream and downstream of it with
        call counts; for any other value, the calls it came from. Needs graphviz's ``dot``
        for an image (otherwise: a warning and the DOT text); ``path`` saves it too.

        >>> storage.draw(add, path="add.svg")         # doctest: +SKIP
        <Picture: SVG, 5,123 bytes>
        """
        from .stored_graphs import draw_stored

        self.commit()
        with damage_as_error(self.path, "drawing what is stored"):
            return draw_stored(self._store, target, self.engine.loader.load, format=format, path=path)

    # -- deleting --------------------------------------------------------------------------

    @_serialised
    def delete_calls(self, target: Any, *, dependents: bool = True) -> DeleteReport:
        """Delete calls, every call computed from their outputs, and the values no remaining
        call uses. Ids that match nothing are ignored.

        ``target``: call ids (bytes, or the hex strings of ``storage.df(op)["call"]``), a
        DataFrame from ``storage.df(op)``, or a query result. ``dependents=False`` keeps the
        calls computed from them.

        >>> df = storage.df(inc)                              # doctest: +SKIP
        >>> print(storage.delete_calls(df[df.x > 2]))         # doctest: +SKIP
        deleted 4 calls (2 matched, 2 computed from them) and 4 values (6 B)
        """
        from .deletion import call_ids, delete_calls, names_rows

        row_ids = call_ids(target)  # a bad target fails before anything is written
        self.commit()
        try:
            with damage_as_error(self.path, "deleting calls"):
                return delete_calls(
                    self._store, self._blobs, row_ids, dependents=dependents, rows=names_rows(target)
                )
        finally:
            self.engine.after_own_deletion()

    @_serialised
    def gc(self) -> GcReport:
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
            self.engine.after_own_deletion()

    def verify(self) -> VerifyReport:
        """Check the whole storage: SQLite's integrity check of the database pages, every
        value file against the digest recorded when it was stored (missing, corrupt), files no
        value names (orphans; those written within the hour, which a block still running may
        commit, apart as ``in_progress``: neither is a problem), and rows naming calls or values
        the file does not hold.

        >>> print(storage.verify())                           # doctest: +SKIP
        run.db: OK (SQLite integrity check ok, 3 value files match their digests, no dangling rows)
        """
        from .integrity import verify

        self.commit()
        return verify(self._store, self._blobs)

    def forget_misses(self) -> None:
        """Look in the file again for calls this process found missing: another process may
        have just committed them. (Other commits are noticed on their own, but only every
        few tens of milliseconds; the pytest plugin calls this after waiting for another
        worker to compute the fixture value it was missing.)"""
        self.engine.index.forget_misses()

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
    def versions(self, op: Op) -> pd.DataFrame:
        """The op's stored versions: id, fingerprint, how many calls, which one is current."""
        op = _needs_op(op, "versions")
        self.commit()  # through the deletion watch: the table's own flush writes rows unchecked
        with damage_as_error(self.path, f"reading the versions of op {op.name}"):
            return self._versions.versions_table(op)

    @_serialised
    def rename_op(self, old: Any, new: Any) -> str:
        """Make the stored calls of op ``old`` (an op, or its qualified name once the code is
        gone) those of op ``new``: a function renamed or moved to another module keeps its
        results, and so does a method moved with its class (whose objects are keyed by the
        class's old name from then on: renames.py). RenameError (nothing changed) if ``new``
        already has stored calls.

        >>> storage.rename_op("pipeline.train", models.fit)      # doctest: +SKIP
        'op pipeline.train renamed to models.fit: 12 stored calls kept'
        """
        return self._rewrite(renames.rename_op, _op_or_name(old, "rename_op"), _op_or_name(new, "rename_op"))

    @_serialised
    def rename_helper(self, old: str, new: Any) -> str:
        """Make the calls that depended on helper ``old`` (its qualified name; its code may be
        gone) depend on ``new``, the same function or class moved to another module or
        renamed: they stay valid while its code and what it reads where it is now are those
        they were computed with (and a class's objects are keyed by its old name from then
        on). RenameError (nothing changed) while ``old`` is other code.

        >>> storage.rename_helper("helpers.scale", utils.scale)   # doctest: +SKIP
        'helper helpers.scale renamed to utils.scale: 12 stored calls kept'
        """
        return self._rewrite(renames.rename_helper, old, new)

    @_serialised
    def rename_arg(self, op: Any, old: str, new: str) -> str:
        """Rename argument ``old`` of ``op`` to ``new`` in every stored call (pass the op as
        its code is now). RenameError (nothing changed) if stored calls already have ``new``.

        >>> storage.rename_arg(train, "lr", "learning_rate")     # doctest: +SKIP
        'op pipeline.train: argument lr renamed to learning_rate in 12 stored calls'
        """
        return self._rewrite(renames.rename_arg, _op_or_name(op, "rename_arg"), old, new)

    def _rewrite(self, rename: Callable[..., str], *args: Any) -> str:
        """Commit, run ``rename`` on the file, then forget what was known of versions and
        calls: ids and names changed under them."""
        self.commit()
        with damage_as_error(self.path, "renaming"):
            message = rename(self._store, *args)
        self._versions.forget()
        self.engine.index.forget()
        return message

    @_serialised
    def accept_change(self, target: Any) -> str:
        """Declare the latest change of an op or of a dependency (function, class,
        ``"module:NAME"`` constant, or a data file's ``Path``) cosmetic: results computed
        before it stay valid.

        >>> storage.accept_change(normalize)        # doctest: +SKIP
        'helpers.normalize: change accepted; calls computed before it stay valid'
        """
        self.commit()
        with damage_as_error(self.path, "accepting a change"):
            message = self._versions.accept(target)
        self.commit()
        self.engine.index.forget()
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

        target, bound = _needs_bound_op(op, "why")
        return Explanation(self._why(target, (*bound, *args), kwargs))

    def _why(self, op: Op, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        from .explaining import explain_call

        self.commit()
        with self._lock, damage_as_error(self.path, f"explaining a call of op {op.name}"):
            return explain_call(self.engine, op, args, kwargs, repr(self)) + renames.rename_history(self._store.conn, op.name)


def _needs_op(op: Any, method: str) -> Op:
    """``op`` itself if it is one: a plain function or a value (``storage.why(y)``) would fail
    deep inside with an AttributeError naming none of them."""
    return _needs_bound_op(op, method)[0]


def _needs_bound_op(op: Any, method: str) -> tuple[Op, tuple[Any, ...]]:
    """``(op, arguments bound to it)``: an op reached through an instance or a class
    (``model.fit``, ``Model.from_config`` of a class method) is the op with its first
    argument given, as Python binds it."""
    if isinstance(op, Op):
        return op, ()
    if isinstance(op, functools.partial) and isinstance(op.func, Op) and not op.keywords:
        return op.func, op.args
    if isinstance(op, MethodType) and isinstance(op.__func__, Op):
        return op.__func__, (op.__self__,)
    what = f"{type(op).__name__} {getattr(op, '__qualname__', '')}".rstrip()
    raise NotAnOpError(f"storage.{method} needs an op (a function decorated with @op), not {what}")


def _op_or_name(op: Any, method: str) -> Op | str:
    """A rename's op: a qualified name as given, else the op, also reached through its class
    (``Model.from_config`` of a class method is the op with the class bound)."""
    return op if isinstance(op, str) else _needs_op(op, method)


def _guarded_hit(guarded: dict[tuple[Any, ...], Any], key: tuple[Any, ...], missing: Any = MISSING) -> Any:
    """A warm hit kept with a guard (see Storage._keep_warm) whose state still holds what it
    held then; ``missing`` if there is none."""
    hit = guarded.get(key)
    return hit[0] if hit is not None and hit[1].holds() else missing


def _immutable(outputs: tuple[Any, ...]) -> bool:
    """Whether outputs may be kept in a warm-hit cache: immutable, and stored (outputs handed
    back unstored come in a subclass of tuple, recording.UnstoredValues)."""
    if type(outputs) is not tuple:
        return False
    if len(outputs) == 1:  # most ops: no generator to set up
        return type(outputs[0]) in IMMUTABLE
    return all(type(o) in IMMUTABLE for o in outputs)
