"""Versions and dependency states: when stored calls stop being valid, and why.

An op's *version* is its name, manual ``version=`` and the fingerprint of its own code. Each
stored call also records the *dependency state* it was computed under: the fingerprints of the
user functions and classes it reached, the content of the module constants it read, and for
each op it called (computed or found stored) that op's version and that call's own state. A
stored call is reused only while that state still holds, so editing a helper recomputes just
the calls that used it. ``accept_change`` declares an edit cosmetic; reverting code brings the
old version or state back, and with it the old calls.
"""

from __future__ import annotations

import difflib
import os
import sys
import time
import types
import weakref
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from .._errors import ArgumentError, VersionChangeError
from . import (
    dependencies as deps,
    env_deps,
    file_deps,
    fingerprints,
    recursion,
    renames,
    script_state,
    untracked,
)
from .hashing import digest
from .packing import unpack_outputs
from .tracing import RanCode

if TYPE_CHECKING:
    import pandas as pd

    from .ops import Op
    from .store import SQLiteStore

__all__ = ["VersionTracker", "check_on_change"]


#: Op objects whose defaults a tracker keeps at most (each kept alive by it): a factory called
#: in a loop makes a new op each time.
_MAX_OPS_REMEMBERED = 4096
#: The code part of a dependency key of a body that ran no code seen (tuple(ran.codes),
#: tuple(ran.receivers.items())), and its op calls: equal to what they are built as.
_RAN_NO_CODE: tuple = ((), ())
_NO_OP_CALLS: frozenset = frozenset()


def check_on_change(on_change: str) -> None:
    """Refuse an ``on_change=`` that means nothing (before a storage file is made for it).

    >>> check_on_change("recompute")
    Traceback (most recent call last):
    ...
    mandala_ast._errors.ArgumentError: Storage: on_change= must be 'report', 'error' or 'ignore', not 'recompute'
    """
    if on_change not in ("report", "error", "ignore"):
        raise ArgumentError(f"Storage: on_change= must be 'report', 'error' or 'ignore', not {on_change!r}")


class VersionTracker:
    """Per-storage knowledge of op versions and of which dependency states are still valid."""

    def __init__(self, store: SQLiteStore, on_change: str) -> None:
        check_on_change(on_change)
        self.store = store
        self.on_change = on_change
        # op version id -> (its op's output count, the id its calls are stored under)
        self._canonical: dict[bytes, tuple[int, bytes]] = {}
        self._changed_ops: dict[bytes, str] = {}  # version id -> report, for on_change="error"
        self._op_deps: dict[tuple, bytes] = {}  # (version id, code run, op calls) -> deps_id
        self._deps_members: dict[bytes, tuple] = {}  # deps_id -> its (name, kind, state) rows
        self._valid: dict[bytes, bool] = {}  # deps_id -> still valid?
        # (deps_id, op serial) -> valid for an op ignoring variables, where _valid says no
        self._valid_for_op: dict[tuple[bytes, int], bool] = {}
        # dependency name -> (object it resolved to, content id of a mutable container or None)
        self._tracked: dict[str, tuple[Any, bytes | None]] = {}
        self._reported: set[tuple] = set()
        # Op object -> first-seen defaults. By object, not version id: a parameter added with
        # a default keeps the version id, but not the Op object (a reload, a notebook cell),
        # and its default must be seen, or the calls stored before it (the calls with that
        # default) are not found.
        self._defaults: dict[Op, dict[str, bytes]] = {}
        self._reaches_user_code: dict[bytes, bool] = {}
        self._keyed_before_ignore: dict[tuple, bool] = {}  # (version id, ignored) -> any such calls
        self._identity_names: dict[str, dict[str, str]] = {}  # op name -> renamed arguments
        self._file_rows: dict[str, tuple | None] = {}  # data file -> its data_file_stats row known
        self._file_row_sql: str | None = ""  # how to read one (file_deps.row_sql), once known
        self._state_read: dict[bytes, tuple[str, ...]] = {}  # deps_id -> its names of state functions write
        renames.key_moved_classes(store.conn)  # (objects of a class moved: keyed by its old name)

    def forget(self) -> None:
        """Drop everything known about versions and states: the file was rewritten (a rename)."""
        for cache in (self._canonical, self._op_deps, self._deps_members, self._valid, self._valid_for_op, self._defaults):
            cache.clear()
        self._identity_names.clear()
        renames.key_moved_classes(self.store.conn)

    def identity_names(self, op: Op) -> dict[str, str]:
        """Renamed arguments of the op: current name -> the name its call ids hash (renames.py)."""
        names = self._identity_names.get(op.name)
        if names is None:
            names = self._identity_names[op.name] = renames.identity_names(self.store.conn, op.name)
        return names

    # -- op versions ---------------------------------------------------------------------

    def version_id(self, op: Op) -> bytes:
        """The id op calls are stored under (the accepted earlier version's, after accept)."""
        known = self._canonical.get(op.version_id)
        if known is None or known[0] != op.nout:
            known = self._canonical[op.version_id] = (op.nout, self._shaped(op, self._register(op)))
        return known[1]

    def _shaped(self, op: Op, canonical: bytes, *, record: bool = True) -> bytes:
        """``canonical``, unless the calls stored under it have another number of outputs than
        ``op`` (``nout=`` given or taken off since: a version's id is its code's, and the
        decorator is not code): then the id of this version with ``op.nout`` outputs, whose
        calls are its own (the others would come back in the old shape). ``record=False``
        registers and reports nothing."""
        row = self.store.conn.execute(_ONE_CALL_SQL, (canonical,)).fetchone()
        stored = len(unpack_outputs(row[0])) if row is not None else op.nout
        if stored == op.nout:
            return canonical
        shaped = digest(b"outputs|%d|" % op.nout + canonical)
        if record and self.store.conn.execute(_VERSION_SQL, (shaped,)).fetchone() is None:
            self.store.add("ops", (op.name, op.nout, op.signature_text()))
            self.store.add("versions", (shaped, op.name, op.version, time.time(), op.fingerprint.digest, None))
        if record and not self.store.has_calls(shaped):
            title = f"op {op.name} changed: {op.nout} output(s), where its stored calls have {stored}"
            states = (op.fingerprint.digest, op.fingerprint.digest)
            self._changed(("op", op.name, shaped), op, title, f"outputs: {stored}\n", f"outputs: {op.nout}\n", states)
        return shaped

    def _register(self, op: Op) -> bytes:
        row = self.store.conn.execute(
            "SELECT canonical FROM versions WHERE version_id = ?", (op.version_id,)
        ).fetchone()
        if row is not None:
            canonical = row[0] or op.version_id
            self._report_if_new(op, canonical)
            return canonical
        previous = self._latest_other_version(op)
        same = previous is not None and self._same_text(op, previous)
        canonical = previous[3] if previous is not None and same else None
        self.store.add("ops", (op.name, op.nout, op.signature_text()))
        self.store.add("versions", (op.version_id, op.name, op.version, time.time(), op.fingerprint.digest, canonical))
        self._add_source(op.fingerprint.digest, deps.qualified_name(op.fn), op.fingerprint.source)
        if canonical is not None:  # same text: the latest other version's (never NULL: COALESCE)
            return canonical
        if previous is not None:
            self._report_op_change(op, previous)
        return op.version_id

    def peek_version_id(self, op: Op) -> bytes:
        """What :meth:`version_id` answers, without registering or reporting a new version
        (``storage.why`` stores nothing)."""
        known = self._canonical.get(op.version_id)
        if known is not None and known[0] == op.nout:
            return known[1]
        row = self.store.conn.execute(
            "SELECT canonical FROM versions WHERE version_id = ?", (op.version_id,)
        ).fetchone()
        if row is not None:
            return self._shaped(op, row[0] or op.version_id, record=False)
        previous = self._latest_other_version(op)
        same = previous is not None and self._same_text(op, previous)
        return self._shaped(op, previous[3], record=False) if same else op.version_id  # type: ignore[index]

    def _report_if_new(self, op: Op, canonical: bytes) -> None:
        # A version registered by an earlier run that stopped before computing anything (say
        # with on_change="error") is still a change, and is reported again until it computes.
        previous = self._latest_other_version(op)
        if previous is not None and not self.store.has_calls(canonical):
            self._report_op_change(op, previous)

    def _report_op_change(self, op: Op, previous: tuple) -> None:
        """Report the op's new code against the latest other version that computed calls:
        the code its stored calls ran. A version registered and never run (refused under
        on_change="error", met only by a query) explains nothing about them."""
        ran = self.store.conn.execute(_LATEST_RUN_SQL, (op.name, op.version_id)).fetchone()
        fingerprint = ran[0] if ran is not None else previous[1]
        states = (fingerprint, op.fingerprint.digest)
        old_source = self._source(fingerprint) or ""
        self._changed(("op", op.name, op.version_id), op, f"op {op.name} changed", old_source, op.fingerprint.source, states)

    def _latest_other_version(self, op: Op) -> tuple | None:
        """``(version_id, fingerprint, version, canonical version_id)`` of the op's latest
        other version."""
        return self.store.conn.execute(
            "SELECT version_id, fingerprint, version, COALESCE(canonical, version_id) FROM versions "
            "WHERE op_name = ? AND version_id != ? ORDER BY created_at DESC LIMIT 1",
            (op.name, op.version_id),
        ).fetchone()

    def _same_text(self, op: Op, previous: tuple) -> bool:
        """Whether the latest other version is this very source text (and version=): then only
        the fingerprint differs, taken by an earlier mandala_ast or another Python, whose
        syntax trees differ. Its calls stay this version's, as accept_change would say."""
        source = op.fingerprint.source
        return previous[2] == op.version and _is_text(source) and self._source(previous[1]) == source

    def defaults(self, op: Op) -> dict[str, bytes]:
        """Each parameter's default as first seen by this storage (content ids)."""
        known = self._defaults.get(op)
        if known is None:
            known = self._stored_defaults(op)
            added = False
            for param, cid in op.default_cids().items():
                if param not in known:
                    known[param] = cid
                    self.store.add("defaults", (op.name, param, cid))
                    added = True
            if added:  # a parameter added with a default keeps the version: not its signature
                self.store.add("ops", (op.name, op.nout, op.signature_text()))
            if len(self._defaults) >= _MAX_OPS_REMEMBERED:  # ops a loop makes must not pile up
                self._defaults.clear()
            self._defaults[op] = known
        return known

    def peek_defaults(self, op: Op) -> dict[str, bytes]:
        """What :meth:`defaults` answers, without recording defaults seen for the first time."""
        known = self._defaults.get(op)
        return known if known is not None else {**op.default_cids(), **self._stored_defaults(op)}

    def _stored_defaults(self, op: Op) -> dict[str, bytes]:
        rows = self.store.conn.execute("SELECT param, cid FROM defaults WHERE op_name = ?", (op.name,))
        return dict(rows.fetchall())

    def keyed_before_ignore(self, op: Op, version_id: bytes) -> bool:
        """Whether calls of the op's version may be stored keyed with arguments its
        ``ignore=`` names (stored before it named them): the oldest stored call has one of
        them among its inputs. Two index probes, once per version a process (so that a miss
        of an op ignoring an argument from the start pays no second lookup)."""
        key = (version_id, op.ignore)
        known = self._keyed_before_ignore.get(key)
        if known is None:
            conn = self.store.conn
            oldest = conn.execute(_OLDEST_CALL_SQL, (version_id,)).fetchone()
            marks = ", ".join("?" * len(op.ignore))
            known = oldest is not None and conn.execute(
                f"SELECT 1 FROM call_inputs WHERE call_id = ? AND name IN ({marks}) LIMIT 1",
                (oldest[0], *sorted(op.ignore))).fetchone() is not None
            self._keyed_before_ignore[key] = known
        return known

    def check_may_compute(self, op: Op) -> None:
        """With on_change="error", refuse to compute under changed code."""
        report = self._changed_ops.get(op.version_id)
        if report is not None:
            raise VersionChangeError(report)

    # -- dependency states ---------------------------------------------------------------

    def may_run_user_code(self, op: Op) -> bool:
        """Whether the op's own code refers to user code (cached per version)."""
        known = self._reaches_user_code.get(op.version_id)
        if known is None:
            known = self._reaches_user_code[op.version_id] = deps.may_run_user_code(op.fn)
        return known

    def dependency_state(
        self, op: Op, ran: RanCode, op_calls: Collection[tuple[Op, bytes]], files: tuple = ()
    ) -> bytes:
        """The deps_id of one execution of ``op``: the user code it ran and the constants
        that code reads (all static dependencies when it could not be traced), for each
        ``(inner op, deps_id)`` in ``op_calls`` (the op calls it made) the inner op's code
        and what that call depended on, and the ``files`` it read (file_deps.stop) with the
        environment variables (env_deps.stop)."""
        deps.note_moved(op.fn, ran.codes)  # (before the key: a known key still moved them)
        if script_state.seen and not recursion.bodies_running():
            # What the body computed with: state the script changed in place since the block
            # began (CONFIG.k = 7) is hashed here, not at every call (that moved by op bodies is not).
            deps.look_at_state(in_place=True)
        # (An untraced body ran no code that was seen and called no op: the key's parts are
        # then the constants they equal, not built again at every miss.)
        before = tuple([(name, d.state) for name, d in ran.before.items()]) if ran.before else ()
        codes: Any
        if not ran.complete:
            codes = ran.found
        elif ran.codes or ran.receivers:
            codes = (tuple(ran.codes), tuple(ran.receivers.items()))
        else:
            codes = _RAN_NO_CODE
        # (with the settings of state as now: what the script set since counts in the state)
        key = (op.version_id, codes, frozenset(op_calls) if op_calls else _NO_OP_CALLS, files, before,
               op.track_files, op.track_env, script_state.changes)
        deps_id = self._op_deps.get(key)
        if deps_id is None:
            if ran.complete:
                found = deps.run_dependencies(op.fn, ran.codes, ran.before, ran.receivers)
            elif ran.found is not None:  # traced in a worker process, which worked them out
                found = deps.from_rows(ran.found)
            else:
                found = deps.static_dependencies(op.fn)
            self._add_op_calls(found, op_calls)
            for name, state, source in files:
                kind = "env" if name.startswith(env_deps.PREFIX) else "file"
                found[name] = deps.Dependency(name, kind, state, source)
            if not (op.track_files and op.track_env):  # nothing says what it read: say so
                for name, state, source in untracked.markers(op, deps.qualified_name(op.fn)):
                    found[name] = deps.Dependency(name, untracked.KIND, state, source)
            found.pop(deps.qualified_name(op.fn), None)  # an op that (indirectly) calls itself
            deps_id = self._op_deps[key] = _deps_id(found)
            self._record_state(deps_id, found)
        return deps_id

    def _add_op_calls(
        self, found: dict[str, deps.Dependency], op_calls: Collection[tuple[Op, bytes]]
    ) -> None:
        """An inner call that was a hit ran none of its op's code, so the calling op depends on
        that code and on the stored call's own dependencies here. Where a name is in ``found``
        already, what ran now is kept (the stored call may hold an accepted earlier state)."""
        for inner, inner_deps_id in op_calls:
            dependency = deps.op_dependency(inner)
            if dependency is not None:
                found.setdefault(dependency.name, dependency)
            members = self._members(inner_deps_id)
            for name, kind, state in members:
                # A variable the inner op ignores now, held by a call it stored before saying
                # so: the caller must not take it on (it would recompute at every new value).
                if not self._ignored_by(inner, name, members):
                    found.setdefault(name, deps.Dependency(name, kind, state, None))

    def _members(self, deps_id: bytes) -> tuple[tuple[str, str, bytes], ...]:
        """``(name, kind, state)`` of each dependency recorded under ``deps_id``. A deps_id is
        a digest of exactly these, so they never change and are kept for good."""
        members = self._deps_members.get(deps_id)
        if members is None:
            members = self._deps_members[deps_id] = tuple(
                self.store.conn.execute("SELECT name, kind, state FROM dep_sets WHERE deps_id = ?", (deps_id,))
            )
        return members

    def _record_state(self, deps_id: bytes, found: dict[str, deps.Dependency]) -> None:
        for dependency in found.values():
            self.store.add("dep_sets", (deps_id, dependency.name, dependency.kind, dependency.state))
            if dependency.source is not None:  # else taken from a stored state: source stored
                self._add_source(dependency.state, dependency.name, dependency.source)
            self._track(dependency.name)
            if dependency.kind == "file":
                self._keep_file_stats(dependency.name)
        self._deps_members[deps_id] = tuple((d.name, d.kind, d.state) for d in found.values())
        self._valid[deps_id] = True

    def warm_guard(self, deps_id: bytes | None) -> script_state.Guard | None:
        """None if the calls stored under ``deps_id`` read no state functions of the user's
        write; else a guard holding while that state holds what it holds now: code outside
        the op bodies may set it before any call (script_state.py), and a warm hit answered
        from memory looks at nothing else."""
        if not deps_id:
            return None
        names = self._state_read.get(deps_id)
        if names is None:
            names = self._state_read[deps_id] = tuple(
                name for name, _, _ in self._members(deps_id) if name.endswith(deps.DEFINITION))
        return deps.state_guard(names) if names else None

    def is_valid(self, deps_id: bytes, op: Op | None = None) -> bool:
        """Whether every dependency recorded under ``deps_id`` is unchanged (or accepted), but
        for environment variables ``op`` (whose call it is) ignores now (see _ignored_by)."""
        valid = self._valid.get(deps_id)
        if valid is None:
            valid = self._valid[deps_id] = not self.changed_dependencies(deps_id)
        if valid or op is None or (op.track_env and op.track_files and not op.ignore_env):
            return valid
        key = (deps_id, op.serial)
        valid = self._valid_for_op.get(key)
        if valid is None:
            valid = self._valid_for_op[key] = not self.changed_dependencies(deps_id, op=op)
        return valid

    def _ignored_by(self, op: Op, name: str, members: tuple) -> bool:
        """Whether the dependency ``name`` of a call of ``op`` (``members``: the call's
        dependencies) is a variable or a file ``op`` ignores now and no op it called may have
        read for it: a call stored before ``ignore_env=`` (``track_env=False``,
        ``track_files=False``) holds it as a dependency, of its own body's reads or of its
        inner calls' (those count while their op does not ignore it too)."""
        ignores = _ignoring(name)
        if ignores is None or not ignores(op):
            return False
        from .ops import Op  # ops imports this module's importers

        for member, kind, _ in members:
            inner = deps.resolve(member) if kind == "code" else None
            if isinstance(inner, Op) and not ignores(inner):
                return False
        return True

    def changed_dependencies(
        self, deps_id: bytes, *, record: bool = True, op: Op | None = None
    ) -> list[tuple[str, bytes, bytes | None]]:
        """(name, stored state, current state) for each dependency that changed since.
        ``record=False`` stores nothing (not even an acceptance of unchanged text); ``op``:
        the call's op, whose ignored variables do not count (see _ignored_by)."""
        changed = []
        members = self._members(deps_id)
        for name, kind, state in members:
            self._track(name)
            current = deps.current_state(name)
            if kind == "file" and record:
                self._keep_file_stats(name)
            if current == state or self._accepted(name, state, current):
                continue
            if op is not None and self._ignored_by(op, name, members):
                continue
            if op is not None and kind == untracked.KIND and untracked.holds_for(name, op, deps.qualified_name(op.fn)):
                continue
            if not self._same_code(name, kind, state, current, record):
                changed.append((name, state, current))
        return changed

    def _same_code(
        self, name: str, kind: str, state: bytes, current: bytes | None, record: bool
    ) -> bool:
        """Code whose source text is unchanged though its fingerprint is not (see _same_text);
        accepted for good. Not constants: their text is a repr, which two values can share."""
        if kind != "code" or current is None:
            return False
        old = self._source(state)
        if old is None or not _is_text(old) or old != deps.current_source(name):
            return False
        if record:
            self.store.add("accepted", (name, state, current))
        return True

    def report_stale(self, op: Op, deps_id: bytes) -> None:
        """Report (once) the dependency changes that make a stored call stale."""
        for name, state, current in self.changed_dependencies(deps_id, op=op):
            old = self._source(state) or ""
            new = deps.current_source(name) or "<gone>"
            title = f"op {op.name}: dependency {_shown(name)} changed"
            self._changed(("dep", op.name, name, current), op, title, old, new, (state, current, name))

    def _track(self, name: str) -> None:
        if name not in self._tracked:
            if name.startswith(file_deps.PREFIX):  # hashed by another process: maybe unchanged
                self._remember_file(name)
            self._tracked[name] = now = _snapshot(name)
            _note_function(now)

    def _remember_file(self, name: str) -> None:
        path = name[len(file_deps.PREFIX) :]
        if self._file_row_sql == "":
            self._file_row_sql = file_deps.row_sql(self.store.conn)
        sql = self._file_row_sql
        row = self.store.conn.execute(sql, (path,)).fetchone() if sql else None
        if row is not None:
            file_deps.remember(row)
        self._file_rows[name] = row

    def _keep_file_stats(self, name: str) -> None:
        """Store a file's stat and hash if they are news to the file (a touched data file
        is then hashed once, not once per process)."""
        row = file_deps.stat_row(name)
        if row is not None and row != self._file_rows.get(name):
            self.store.add("file_stats", row)
            self._file_rows[name] = row

    def refresh(self) -> bool:
        """At block entry: notice redefined helpers (notebooks, reloads); True if any changed."""
        deps.forget_argument_states()
        changed = [name for name, seen in self._tracked.items() if _differs(_snapshot(name), seen)]
        if not changed:
            return False
        for name in changed:
            self._tracked[name] = now = _snapshot(name)
            _note_function(now)
        self.forget_states()
        return True

    def forget_states(self) -> None:
        """Drop which dependency states hold and what each execution's state was: code or
        data changed, or the script set state the op bodies read (script_state.py)."""
        self._valid.clear()
        self._valid_for_op.clear()
        self._op_deps.clear()

    # -- accepting changes ---------------------------------------------------------------

    def accept(self, target: Any) -> str:
        """Declare the latest change of an op or dependency cosmetic; returns what was done."""
        from .ops import Op

        if isinstance(target, Op):
            return self._accept_op(target)
        names = _accepted_names(target)
        accepted = [name for name in names if self._accept_dependency(name)]
        if not accepted:
            return f"{_shown(names[-1])}: no earlier state stored; nothing to accept"
        return f"{_shown(accepted[0])}: change accepted; calls computed before it stay valid"

    def _accept_dependency(self, name: str) -> bool:
        """Accept the change from the latest other state recorded as a dependency state of
        ``name`` (an op's own version fingerprints, stored under the same name, are not)."""
        current = deps.current_state(name)
        row = self.store.conn.execute(
            "SELECT s.state FROM sources s WHERE s.name = ? AND s.state != ? AND EXISTS "
            "(SELECT 1 FROM dep_sets d WHERE d.state = s.state AND d.name = s.name) "
            "ORDER BY s.created_at DESC LIMIT 1",
            (name, current),
        ).fetchone()
        if row is None:
            return False
        self.store.add("accepted", (name, row[0], current))
        self._valid.clear()
        self._valid_for_op.clear()
        return True

    def _accept_op(self, op: Op) -> str:
        # Registering the new version reports it as a change whose calls recompute: accepted,
        # they do not (a change of its number of outputs, reported under another key, still is).
        self._reported.add(("op", op.name, op.version_id))
        current = self.version_id(op)  # registers it (and the id of its output count, if new)
        if current != self._registered(op):
            # Its code is its stored calls' (or was accepted as theirs): only its number of
            # outputs changed. Nothing to point elsewhere: pointing this version at the new
            # count's calls would leave the old count's behind, computed again on going back.
            self._changed_ops.pop(op.version_id, None)
            return (f"op {op.name}: its change is its number of outputs ({op.nout}): the calls stored with "
                    "another number cannot be handed back in this shape, so they are computed again "
                    "(they stay for the op as it was)")
        previous = self._latest_other_version(op)
        if previous is None:
            return f"op {op.name}: no earlier version stored; nothing to accept"
        canonical = self.store.conn.execute(
            "SELECT COALESCE(canonical, version_id) FROM versions WHERE version_id = ?", (previous[0],)
        ).fetchone()[0]
        self.store.flush()
        self.store.write_transaction(
            lambda conn: conn.execute(
                "UPDATE versions SET canonical = ? WHERE version_id = ?", (canonical, op.version_id)
            )
        )
        # The earlier version's calls may have another number of outputs (nout= changed with
        # the code): then they are not this version's, or they would come back in their shape.
        shaped = self._shaped(op, canonical)
        self._canonical[op.version_id] = (op.nout, shaped)
        self._changed_ops.pop(op.version_id, None)
        # Ops that called it depend on it: their calls made with the earlier version stay too.
        self._accept_dependency(deps.qualified_name(op))
        if shaped != canonical:
            return (f"op {op.name}: change accepted, but the calls stored before it have another number of "
                    f"outputs than {op.nout}: they are computed again (they stay for the op as it was)")
        return f"op {op.name}: change accepted; its stored calls stay valid"

    def _registered(self, op: Op) -> bytes | None:
        """The id the op's version is registered to store its calls under, whatever their
        number of outputs (None while its row is not written yet: a version new here)."""
        row = self.store.conn.execute(
            "SELECT COALESCE(canonical, version_id) FROM versions WHERE version_id = ?", (op.version_id,)
        ).fetchone()
        return row[0] if row is not None else self._canonical[op.version_id][1]

    def _accepted(self, name: str, old: bytes, new: bytes | None) -> bool:
        """Whether a chain of accepted changes leads from ``old`` to ``new``."""
        if new is None:
            return False
        edges: dict[bytes, list[bytes]] = {}
        for before, after in self.store.conn.execute(
            "SELECT old_state, new_state FROM accepted WHERE name = ?", (name,)
        ):
            edges.setdefault(before, []).append(after)
        reached, frontier = {old}, [old]
        while frontier:
            for after in edges.get(frontier.pop(), ()):
                if after == new:
                    return True
                if after not in reached:
                    reached.add(after)
                    frontier.append(after)
        return False

    # -- tables and reports --------------------------------------------------------------

    def versions_table(self, op: Op) -> pd.DataFrame:
        import pandas as pd

        self.version_id(op)
        self.store.flush()
        rows = self.store.conn.execute(
            "SELECT v.version, v.version_id, v.fingerprint, v.canonical, v.created_at, "
            # Each call once, on the version it is stored under: not again on those accepted
            # as its code (same_as), which share it.
            "(SELECT COUNT(*) FROM calls c WHERE c.version_id = v.version_id) "
            "FROM versions v WHERE v.op_name = ? ORDER BY v.created_at",
            (op.name,),
        ).fetchall()
        frame = pd.DataFrame(
            [
                dict(
                    version=version,
                    version_id=vid.hex()[:12],
                    fingerprint=fp.hex()[:12] if fp else None,
                    same_as=canonical.hex()[:12] if canonical else None,
                    calls=count,
                    current=vid == op.version_id,
                    created_at=created,
                )
                for version, vid, fp, canonical, created, count in rows
            ],
            columns=_VERSION_COLUMNS,  # an op with no stored version (a read-only file) has none
        )
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s")
        notes: dict[str, list[str]] = {}
        for vid, note in renames.rename_notes(self.store.conn, op.name):
            notes.setdefault(vid.hex()[:12] if vid else "", []).append(note)
        frame["renamed"] = [", ".join(notes.get(vid, [])) or None for vid in frame["version_id"]]
        return frame

    def other_version_ids(self, op: Op) -> list[bytes]:
        """Ids other versions of the op stored their calls under, newest first."""
        rows = self.store.conn.execute(
            "SELECT COALESCE(canonical, version_id) FROM versions WHERE op_name = ? "
            "AND version_id != ? ORDER BY created_at DESC",
            (op.name, op.version_id),
        ).fetchall()
        return [row[0] for row in rows]

    def unshaped_version_id(self, op: Op) -> bytes:
        """The id the op's version stores its calls under whatever its number of outputs: the
        id :meth:`peek_version_id` answers unless ``nout=`` changed since they were stored."""
        row = self.store.conn.execute(
            "SELECT canonical FROM versions WHERE version_id = ?", (op.version_id,)
        ).fetchone()
        return (row[0] or op.version_id) if row is not None else op.version_id

    def same_code(self, op: Op, version_id: bytes) -> bool:
        """Whether a stored version is the op's current code (and ``version=``)."""
        row = self.store.conn.execute(
            "SELECT fingerprint, version FROM versions WHERE version_id = ?", (version_id,)
        ).fetchone()
        return row is not None and row[0] == op.fingerprint.digest and row[1] == op.version

    def version_diff(self, op: Op, version_id: bytes) -> str:
        """Unified diff from a stored version's source to the op's current source."""
        row = self.store.conn.execute(
            "SELECT fingerprint FROM versions WHERE version_id = ?", (version_id,)
        ).fetchone()
        old = self._source(row[0]) if row else None
        return _diff(old or "", op.fingerprint.source, (row[0] if row else None, op.fingerprint.digest))

    def dependency_diffs(self, deps_id: bytes, op: Op | None = None) -> list[str]:
        """A diff per dependency changed since ``deps_id`` was recorded (none: still valid)
        but for the variables ``op`` ignores. Stores nothing: ``storage.why`` is read-only."""
        return [
            f"dependency {_shown(name)} changed:\n"
            + _diff(self._source(state) or "", deps.current_source(name) or "<gone>", (state, current, name))
            for name, state, current in self.changed_dependencies(deps_id, record=False, op=op)
        ]

    def _changed(self, key: tuple, op: Op, title: str, old: str, new: str, states: tuple) -> None:
        if key in self._reported or self.on_change == "ignore":
            return
        self._reported.add(key)
        report = f"mandala_ast: {title}; its calls recompute.\n{_diff(old, new, states)}"
        if self.on_change == "error":
            self._changed_ops[op.version_id] = report.replace("its calls recompute", "refusing to recompute")
        else:
            sys.stderr.write(report + "\n")

    def _add_source(self, state: bytes, name: str, source: str) -> None:
        self.store.add("sources", (state, name, source, time.time()))

    def _source(self, state: bytes) -> str | None:
        row = self.store.conn.execute("SELECT source FROM sources WHERE state = ?", (state,)).fetchone()
        if row is None:
            row = self.store.pending_source(state)
        return row[0] if row else None


def _ignoring(name: str) -> Any:
    """For an environment variable or a data file a call depends on, whether an op leaves
    it out of its calls' dependencies now (an ``Op -> bool``); None for other dependencies."""
    variable = env_deps.variable_of(name)
    if variable is not None:
        return lambda op: op.ignores_env(variable)
    if name.startswith(file_deps.PREFIX):
        return lambda op: not op.track_files
    return None


def _accepted_names(target: Any) -> list[str]:
    """The dependency names ``accept_change`` means: a name as given, a function's or class's
    qualified name, or a data file's (or a listed directory's) names: calls that opened it by
    a relative name depend on that name, as it reads from the working directory, the others
    on its absolute path."""
    if isinstance(target, str):
        return [target]
    if isinstance(target, os.PathLike):
        path = os.path.abspath(os.fspath(target))
        end = os.sep if os.path.isdir(path) else ""
        try:
            relative = [file_deps.PREFIX + os.path.relpath(path) + end]
        except ValueError:  # (Windows: on another drive, it has no relative name)
            relative = []
        return [*relative, file_deps.PREFIX + path + end]
    try:
        return [deps.qualified_name(target)]
    except AttributeError:  # no module or qualified name: nothing a call can depend on
        raise ArgumentError(
            "storage.accept_change takes an op, a function or class, a 'module:NAME' string or a "
            f"data file's Path, not {type(target).__qualname__}"
        ) from None


def _shown(name: str) -> str:
    """A dependency's name as reports show it: ``helpers.normalize``, ``file /data/x.csv``."""
    if name.startswith(file_deps.PREFIX):  # a listed directory ends with a separator
        path = name[len(file_deps.PREFIX) :]
        return ("directory " if path.endswith(os.sep) else "file ") + path
    if name.startswith(env_deps.PREFIX):
        return env_deps.shown(name)
    if name.startswith(untracked.PREFIX):
        return untracked.shown(name)
    return name.replace(":", ".")


def _snapshot(name: str) -> tuple[Any, ...]:
    """What refresh() compares: the object a name resolves to, and for a mutable data value
    (a list, dict or set; an array; a config object) its content too (``CONFIG["lr"] = 0.2``
    changes no identity); for a data file, its stat (a file edited between blocks is hashed
    again)."""
    if name.startswith(file_deps.PREFIX):
        return file_deps, file_deps.snapshot(name)
    if name.startswith(env_deps.PREFIX):  # what a body would read of the variable now
        return env_deps, env_deps.snapshot(name)
    if name.startswith(untracked.PREFIX):  # whether the op it names tracks the input kind now
        return untracked, deps.current_state(name)
    if name.endswith(deps.DEFINITION):  # its text and setting, not its value: op bodies move that
        return script_state, deps.current_state(name)
    if name.endswith(deps.CLASS_DATA):  # the class's data: `Model.K = 4` keeps the class itself
        return deps, deps.current_state(name)
    value = deps.resolve(name)
    if _watched(value):
        return value, deps.current_state(name)
    if isinstance(value, types.FunctionType):
        # IPython's %autoreload gives the old function the new __code__ and __defaults__:
        # compared by identity (code compares by content; `==` on defaults holding arrays
        # is elementwise).
        return value, None, value.__code__, value.__defaults__, value.__kwdefaults__
    return value, None


def _watched(value: Any) -> bool:
    """Mutable data whose content refresh() hashes each time: containers, the user's objects
    (``CONFIG.lr = 0.2``), small arrays and pandas frames and series. (A large array or
    frame changed in place between blocks goes unnoticed: hashing it at every block would
    cost more than it is worth.)"""
    if isinstance(value, (list, dict, set)):
        return True
    if isinstance(value, _IMMUTABLE) or not deps.is_data(value):
        return False
    if type(value).__module__ == "numpy":
        return getattr(value, "nbytes", 0) <= _WATCHED_BYTES
    if type(value).__module__.partition(".")[0] == "pandas" and hasattr(value, "memory_usage"):
        # A notebook fixes a column or a value of a small frame in place all the time.
        usage = value.memory_usage(deep=False)  # a DataFrame's: per column
        return int(usage.sum() if hasattr(usage, "sum") else usage) <= _WATCHED_BYTES
    return deps.is_user_module(type(value).__module__) and _small_object(value)


def _small_object(value: Any) -> bool:
    """A config-like object of the user's: no attribute holding a large array or a long
    container (a dataset object would be hashed again at every block)."""
    try:
        attributes = list(vars(value).values())
    except TypeError:  # no __dict__ (slots): a few attributes
        return True
    for attribute in attributes:
        if getattr(attribute, "nbytes", 0) > _WATCHED_BYTES:
            return False
        if isinstance(attribute, (list, dict, set, tuple, str, bytes)) and len(attribute) > _WATCHED_ITEMS:
            return False
    return True


_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)
_WATCHED_BYTES = 1 << 20
_WATCHED_ITEMS = 10_000


#: function -> its code and defaults as last seen by any tracker of the process: %autoreload
#: gives a function new code in place, and code compares by content, so a fingerprint cached
#: for the old code (only a default changed) would be served to a tracker made after the edit.
_FUNCTIONS_SEEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _note_function(now: tuple) -> None:
    """Forget the cached fingerprints if ``now``, a function's snapshot, shows it was given
    new code or defaults in place since any tracker of this process last saw it."""
    if len(now) <= 2:
        return
    seen = _FUNCTIONS_SEEN.get(now[0])
    if seen is not None and (seen[0] is not now[2] or seen[1] is not now[3] or seen[2] is not now[4]):
        fingerprints.forget()
    _FUNCTIONS_SEEN[now[0]] = now[2:]


def _differs(now: tuple, seen: tuple) -> bool:
    if now[0] is not seen[0] or now[1] != seen[1]:  # identity: `==` on arrays is elementwise
        return True
    return len(now) > 2 and (now[2] is not seen[2] or now[3] is not seen[3] or now[4] is not seen[4])


def _deps_id(found: dict[str, deps.Dependency]) -> bytes:
    parts = [b"deps"]
    for name in sorted(found):
        parts += (name.encode(), b"\0", found[name].state)
    return digest(b"".join(parts))


def _diff(old: str, new: str, states: tuple) -> str:
    """Unified diff; ``states`` (stored state, current state[, dependency name]) say why when
    the text is the same."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), "stored", "current"
    )
    # A constant's text has no final newline: without one, its old and new lines run together.
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return text if text else f"(no textual difference: {_same_text(*states)})\n"


def _same_text(old_state: bytes | None, new_state: bytes | None, name: str | None = None) -> str:
    if old_state == new_state:  # same code fingerprint, other op version id
        return "only the op's version= changed"
    if name is not None and getattr(deps.describe(name, deps.resolve(name)), "kind", "") == "constant":
        return "the value changed but prints the same"
    # Same source, other fingerprint: computed by an older mandala_ast, or (code without
    # source is fingerprinted by its bytecode) under another Python.
    return (
        "the code is unchanged, but its stored fingerprint was computed by another mandala_ast "
        "or Python version; storage.accept_change(...) keeps the stored calls"
    )


def _is_text(source: str) -> bool:
    """Real source text, not the stand-in for code fingerprinted from its bytecode
    (fingerprints.py): the same stand-in names two different codes of one function (its
    file edited after import, in two processes), or of two functions at one address."""
    return not source.startswith(fingerprints.NO_SOURCE)


_ONE_CALL_SQL = "SELECT outputs FROM calls WHERE version_id = ? LIMIT 1"
_OLDEST_CALL_SQL = "SELECT id FROM calls WHERE version_id = ? ORDER BY id LIMIT 1"
_VERSION_SQL = "SELECT 1 FROM versions WHERE version_id = ?"
#: The fingerprint of an op's latest other version with stored calls.
_LATEST_RUN_SQL = (
    "SELECT v.fingerprint FROM versions v WHERE v.op_name = ? AND v.version_id != ? AND EXISTS "
    "(SELECT 1 FROM calls c WHERE c.version_id = COALESCE(v.canonical, v.version_id)) "
    "ORDER BY v.created_at DESC LIMIT 1"
)

_VERSION_COLUMNS = ["version", "version_id", "fingerprint", "same_as", "calls", "current", "created_at"]
