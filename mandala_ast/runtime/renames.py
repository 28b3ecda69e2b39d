"""Renaming ops and arguments without losing their stored calls.

A stored call's ids hash its op version's id (which hashes the op's name) and its argument
names, and the ids of every call downstream hash those ids in turn. Rewriting them would
rewrite most of a storage. A rename therefore records aliases instead, in one transaction:

- the renamed op's current version is stored as an alias of the old op's latest version (the
  ``canonical`` column ``accept_change`` uses), so its calls are looked up under the old ids;
- a renamed argument keeps its old name inside call ids (``arg_names``: current name ->
  identity), while the rows users see (``call_inputs``, ``defaults``) take the new name, so
  ``df``, ``provenance`` and queries speak the new names;
- every version row of the old op takes the new op name, and the rename is logged
  (``renames``) for ``versions`` and ``why``;
- a helper (not an op) moved to another module: the dependency rows of the calls that reached
  it take its new name, with what its code reads where it is now (``rename_helper``);
- an op that is a method of a class moved or renamed with it: the class's move is logged
  (kind ``class``), and objects of the class are keyed under its old name from then on, in
  every process that opens the file (moved_classes.py), or its stored calls' ``self`` would
  be a new argument.

Nothing is computed again, and nothing else of the file changes.
"""

from __future__ import annotations

import importlib
import inspect
import sqlite3
import time
import warnings
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._errors import ArgumentError, MandalaWarning, NotAnOpError, RenameError, UnknownOpError
from .stacklevel import user_stacklevel

if TYPE_CHECKING:
    from .ops import Op
    from .store import SQLiteStore

__all__ = [
    "TABLES",
    "add_tables",
    "identity_names",
    "key_moved_classes",
    "rename_arg",
    "rename_helper",
    "rename_history",
    "rename_notes",
    "rename_op",
    "renamed",
    "resolve_op",
]

TABLES = (
    # One row per rename: kind "op" (old and new op names) or "arg" (old and new argument names
    # of op_name); version_id: the op version it made an alias of the old one (or NULL).
    "CREATE TABLE IF NOT EXISTS renames (op_name TEXT, kind TEXT, old TEXT, new TEXT,"
    " version_id BLOB, created_at REAL)",
    "CREATE INDEX IF NOT EXISTS idx_renames_op ON renames (op_name)",
    # A renamed argument's name in call ids: the name it had when its calls were stored.
    "CREATE TABLE IF NOT EXISTS arg_names (op_name TEXT, name TEXT, identity TEXT,"
    " PRIMARY KEY (op_name, name))",
)

#: Appended to an argument name that equals another argument's identity: an argument added
#: after ``x`` was renamed to ``y`` and named ``x`` again is not the old ``x``.
_FRESH = "\0new"

_CANONICAL_IDS = "SELECT COALESCE(canonical, version_id) FROM versions WHERE op_name = ?"
_LATEST = (
    "SELECT version_id, COALESCE(canonical, version_id), fingerprint, version FROM versions"
    " WHERE op_name = ? AND version_id != ? ORDER BY created_at DESC LIMIT 1"
)
_MOVE = (
    "UPDATE versions SET op_name = ? WHERE op_name = ?",
    "UPDATE ops SET name = ? WHERE name = ?",
    "UPDATE defaults SET op_name = ? WHERE op_name = ?",
    "UPDATE arg_names SET op_name = ? WHERE op_name = ?",
    "UPDATE renames SET op_name = ? WHERE op_name = ?",
)
_DROP = (
    "DELETE FROM versions WHERE op_name = ?",
    "DELETE FROM ops WHERE name = ?",
    "DELETE FROM defaults WHERE op_name = ?",
    "DELETE FROM arg_names WHERE op_name = ?",
)


def add_tables(conn: sqlite3.Connection) -> None:
    """Create the rename tables (a new file, or one upgraded from a format without them)."""
    for statement in TABLES:
        conn.execute(statement)


def rename_op(store: SQLiteStore, old: Any, new: Any) -> str:
    """Make the stored calls of op ``old`` (an op or its qualified name) those of op ``new``
    (an op, or the qualified name of one that can be imported); returns what was done.

    >>> rename_op(store, "pipeline.train", pipeline.fit)      # doctest: +SKIP
    'op pipeline.train renamed to pipeline.fit: 12 stored calls kept'
    """
    from .ops import Op  # here: the store creates these tables without loading the runtime

    old_name = old.name if isinstance(old, Op) else _dotted(old)
    new_op = resolve_op(new)

    def body(conn: sqlite3.Connection) -> str:
        latest = conn.execute(_LATEST, (old_name, new_op.version_id)).fetchone()
        if latest is None and (done := _done_before(conn, new_op.name, "op", old_name, new_op.name)):
            return done + _move_class(conn, old_name, new_op, latest)
        if latest is None and old_name == new_op.name and _call_count(conn, old_name):
            return f"op {old_name} is stored under that name with this code already: nothing to do"
        if latest is None:
            raise UnknownOpError(f"cannot rename op {old_name}: {store.path or 'the storage'} holds no op of that name")
        _check_outputs(conn, old_name, new_op)
        if new_op.name != old_name:
            taken = _call_count(conn, new_op.name)
            if taken:
                raise RenameError(
                    f"cannot rename op {old_name} to {new_op.name}: {new_op.name} has {taken} stored "
                    "calls of its own (delete them first, or rename before running the new code)"
                )
            for statement in _DROP:  # rows of the new name registered without calls
                conn.execute(statement, (new_op.name,))
            for statement in _MOVE:
                conn.execute(statement, (new_op.name, old_name))
        _alias_version(conn, new_op, latest)
        _follow_reads(conn, new_op, latest)
        moved = _move_class(conn, old_name, new_op, latest)
        _log(conn, new_op, "op", old_name, new_op.name)
        return f"op {old_name} renamed to {new_op.name}: {_call_count(conn, new_op.name)} stored calls kept{moved}"

    return str(_write(store, body))


def _move_class(conn: sqlite3.Connection, old_name: str, op: Op, latest: tuple | None) -> str:
    """The move of the class ``op`` is a method of, from where the old op's was (see
    _class_moved); what the rename then says of it ("" if nothing)."""
    from . import dependencies as deps

    module, _, qualname = deps.qualified_name(op.fn).partition(":")
    owner = qualname.rpartition(".")[0]
    if not owner or "<" in owner or not isinstance(deps.resolve(f"{module}:{owner}"), type):
        return ""  # not a method of a class found by its name
    old = _old_owner(conn, old_name, owner, latest)
    return "" if old is None else _class_moved(conn, old, f"{module}:{owner}")


def _class_moved(conn: sqlite3.Connection, old: str, new: str) -> str:
    """Log that class ``old`` (``module:Class``) is ``new`` now, unless it did not move or was
    logged already, and move the calls' dependencies on it (its other methods, its data) as
    rename_helper does; what the rename then says of it ("" if nothing). Not while the old
    place holds another class still: objects of either would be one."""
    from . import dependencies as deps

    if old == new or conn.execute(_CLASS_MOVED, (old, new)).fetchone():
        return ""
    shown = f"class {old.replace(':', '.')}"
    if deps.current_state(old) is not None and deps.resolve(old) is not deps.resolve(new):
        return (f"; but {shown} is still there, and is another class than {new.replace(':', '.')}: calls "
                "on objects of the new class compute again (if it moved, remove the old one or import it "
                "from its new place, then rename again)")
    conn.execute("INSERT INTO renames VALUES (?, ?, ?, ?, ?, ?)", (new, "class", old, new, None, time.time()))
    if conn.execute(f"SELECT 1 FROM dep_sets WHERE {_UNDER} LIMIT 1", _under(old)).fetchone():
        _move_helper(conn, old, new, deps.resolve(new))
    _accept_class_data(conn, old, new, deps.resolve(new))
    return f"; objects of {shown} are those of {new.replace(':', '.')} now"


def _accept_class_data(conn: sqlite3.Connection, old: str, new: str, cls: type) -> None:
    """The moved class's data counts by its names too: the same data under the new names is
    the state the calls that read it were computed with."""
    from . import dependencies as deps

    name, was = new + deps.CLASS_DATA, deps.class_data_state_as(cls, new, old)
    now = deps.current_state(name)
    if was is not None and now is not None and was != now:
        conn.execute("INSERT OR IGNORE INTO accepted VALUES (?, ?, ?)", (name, was, now))


def _old_owner(conn: sqlite3.Connection, old_name: str, owner: str, latest: tuple | None) -> str | None:
    """``module:Class`` the old op was a method of (None: a function): as its source text was
    stored, else ``old_name`` split with as deep a class as the new one's."""
    row = conn.execute("SELECT name FROM sources WHERE state = ?", (latest[2],)).fetchone() if latest else None
    if row is not None and ":" in row[0]:
        module, _, qualname = row[0].partition(":")
        return f"{module}:{qualname.rpartition('.')[0]}" if "." in qualname else None
    parts = old_name.split(".")
    depth = owner.count(".") + 2  # the class's qualname and the method's name
    return ".".join(parts[:-depth]) + ":" + ".".join(parts[-depth:-1]) if len(parts) > depth else None


def key_moved_classes(conn: sqlite3.Connection) -> None:
    """Key the objects of classes this file logs as moved under their old names, in this
    process (moved_classes.py): at each open of a storage, and after a rename."""
    from . import hashing, moved_classes

    moves = conn.execute("SELECT old, new FROM renames WHERE kind = 'class' ORDER BY created_at").fetchall()
    if moves and moved_classes.note_moves(moves):
        hashing.forget_class_names()


_CLASS_MOVED = "SELECT 1 FROM renames WHERE kind = 'class' AND old = ? AND new = ? LIMIT 1"


def rename_helper(store: SQLiteStore, old: Any, new: Any) -> str:
    """Make the calls that depended on helper ``old`` (its qualified name: its code may be
    gone) depend on ``new`` (the function or class as it is now, in another module, say).

    Safe only where nothing can still reach the old helper, so RenameError (nothing changed)
    while ``old`` names other code than ``new``. And the moved code reads its globals where it
    is now: each name it reads there counts from now on, as stored for the old module's name
    it read before (a constant that differs there recomputes), or, for data the old module
    did not hold, as changed. A class's move is logged too (_class_moved): its objects are
    keyed by its old name from then on.

    >>> rename_helper(store, "helpers.scale", utils.scale)      # doctest: +SKIP
    'helper helpers.scale renamed to utils.scale: 12 stored calls kept'
    """
    from . import dependencies as deps

    if not isinstance(old, str):
        raise ArgumentError(f"rename_helper takes the old helper's qualified name, not {type(old).__qualname__}")
    try:
        new_name = deps.qualified_name(new)
    except AttributeError:
        raise ArgumentError(f"rename_helper takes the moved function or class, not {type(new).__qualname__}") from None
    shown = new_name.replace(":", ".")

    def body(conn: sqlite3.Connection) -> str:
        old_name = _stored_dependency(conn, old)
        if old_name is None:
            done = _done_before(conn, shown, "helper", _dotted(old), shown)
            if done:
                return done
            raise RenameError(f"cannot rename helper {_dotted(old)}: no call stored in {store.path or 'the storage'} depends on it")
        _check_unreachable(old_name, new_name, new)
        kept = _move_helper(conn, old_name, new_name, new)
        moved = _class_moved(conn, old_name, new_name) if isinstance(new, type) else ""
        return f"helper {_dotted(old)} renamed to {shown}: {kept} stored calls kept{moved}"

    return str(_write(store, body))


def _move_helper(conn: sqlite3.Connection, old_name: str, new_name: str, new: Any) -> int:
    """Rename dependency ``old_name`` (and the names under it) to ``new_name``, ``new`` being
    the code now there, and log it; how many stored calls depended on it."""
    _note_moved(conn, f"SELECT deps_id FROM dep_sets WHERE {_UNDER}", _under(old_name))
    for read_old, read_new, direct in _reads_moved(old_name, new_name, new):
        _copy_rows(conn, read_old, read_new, direct)
    _copy_rows(conn, old_name, new_name, False)
    conn.execute(f"DELETE FROM dep_sets WHERE deps_id IN moved_deps AND {_UNDER}", _under(old_name))
    _move_names(conn, old_name, new_name)
    shown = new_name.replace(":", ".")
    conn.execute("INSERT INTO renames VALUES (?, ?, ?, ?, ?, ?)", (shown, "helper", old_name.replace(":", "."), shown, None, time.time()))
    return conn.execute("SELECT COUNT(*) FROM calls WHERE deps_id IN moved_deps").fetchone()[0]


def _note_moved(conn: sqlite3.Connection, select: str, params: tuple) -> None:
    """The dependency sets a move rewrites (``select``ed), in the temporary table ``moved_deps``."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS moved_deps (deps_id BLOB PRIMARY KEY)")
    conn.execute("DELETE FROM moved_deps")
    conn.execute(f"INSERT OR IGNORE INTO moved_deps {select}", params)


def _follow_reads(conn: sqlite3.Connection, op: Op, latest: tuple) -> None:
    """An op moved to another module reads its globals there: in its calls' dependency
    sets, what it reads there counts, as the old module's rows said (see rename_helper).
    Else a constant left behind unchanged kept results computed with another value, and
    one gone with its module recomputed every call."""
    from . import dependencies as deps

    row = conn.execute("SELECT name FROM sources WHERE state = ?", (latest[2],)).fetchone()
    if row is None:
        return
    _note_moved(conn, f"SELECT DISTINCT deps_id FROM calls WHERE version_id IN ({_CANONICAL_IDS})", (op.name,))
    for read_old, read_new, direct in _reads_moved(row[0], deps.qualified_name(op.fn), op.fn):
        _copy_rows(conn, read_old, read_new, direct)


#: A dependency row named ``?1`` or a name under it (``?1`` + ``.attr``, ``['key']``, ``@decorators``).
_UNDER = "(name = ?1 OR (substr(name, 1, ?2) = ?1 AND substr(name, ?2 + 1, 1) IN ('.', '[', '@')))"


def _under(name: str) -> tuple[str, int]:
    return name, len(name)


def _is_under(name: str, owner: str) -> bool:
    """Whether dependency ``name`` is ``owner`` or a name under it, as ``_UNDER`` says in SQL."""
    return name == owner or name.startswith(owner) and name[len(owner)] in ".[@"


def _stored_dependency(conn: sqlite3.Connection, old: str) -> str | None:
    """The name dependency rows give ``old`` (``pkg.mod.f`` is ``pkg.mod:f`` or ``pkg:mod.f``),
    or None where no row is that name or a name under it."""
    if ":" in old:
        candidates = [old]
    else:
        parts = old.split(".")
        candidates = [".".join(parts[:i]) + ":" + ".".join(parts[i:]) for i in range(len(parts) - 1, 0, -1)]
    for name in candidates:  # (a class: its methods' rows, `helpers:Model.fit`)
        if conn.execute(f"SELECT 1 FROM dep_sets WHERE {_UNDER} LIMIT 1", _under(name)).fetchone():
            return name
    return None


def _check_unreachable(old_name: str, new_name: str, new: Any) -> None:
    """Refuse while the old name finds other code than ``new``: calls of ops that still use
    it would be checked against the new code, and an edit of the old one would go unseen."""
    from . import dependencies as deps

    if deps.current_state(old_name) is not None and deps.resolve(old_name) is not new:
        old, moved = old_name.replace(":", "."), new_name.replace(":", ".")
        raise RenameError(
            f"cannot rename helper {old} to {moved}: {old} is still there, and is other code than "
            f"{moved} (remove it, or import it from its new place, first)"
        )


def _reads_moved(old_name: str, new_name: str, new: Any) -> list[tuple[str, str, bool]]:
    """``(name in the old module, name in the new module, direct)`` for each global the moved
    code reads (statically, with what it calls) in the module it moved to; ``direct``: data
    its own code reads, which every call that ran it read (what it calls may not have run)."""
    from . import dependencies as deps

    old_module, new_module = old_name.partition(":")[0], new_name.partition(":")[0]
    if old_module == new_module:
        return []
    direct = deps.direct_reads(new)
    found = []
    for name in deps.static_dependencies(new):
        module, _, rest = name.partition(":")
        if module == new_module and not _is_under(name, new_name):  # (`scale_k` is none of `scale`'s)
            found.append((f"{old_module}:{rest}", name, name in direct))
    return found


def _copy_rows(conn: sqlite3.Connection, old: str, new: str, direct: bool) -> None:
    """In each moved dependency set, rows of ``old`` (and names under it) again under ``new``;
    where no row of ``old`` says what data the moved code itself reads was (``direct``), as
    changed. Rows of an ``old`` that is gone now are dropped: they could only say the call
    changed."""
    from . import dependencies as deps

    conn.execute(
        "INSERT OR IGNORE INTO dep_sets SELECT deps_id, ?3 || substr(name, ?2 + 1), kind, state FROM dep_sets "
        f"WHERE deps_id IN moved_deps AND {_UNDER}", (*_under(old), new),
    )
    if direct:
        conn.execute(
            "INSERT OR IGNORE INTO dep_sets SELECT deps_id, ?, 'constant', X'' FROM moved_deps", (new,)
        )
    if deps.current_state(old) is None:
        conn.execute(f"DELETE FROM dep_sets WHERE deps_id IN moved_deps AND {_UNDER}", _under(old))


def _move_names(conn: sqlite3.Connection, old: str, new: str) -> None:
    """Accepted changes and source texts under the new name, and callers that import the
    helper (``from helpers import scale``) keep their calls: the new place is the old one,
    also imported under the old name (``from utils import triple as scale``), where the name
    counts by the code it points to (the moved code's own rows still say if it was edited)."""
    from . import dependencies as deps

    for table in ("accepted", "sources"):
        conn.execute(f"UPDATE OR IGNORE {table} SET name = ?3 || substr(name, ?2 + 1) WHERE {_UNDER}", (*_under(old), new))
    old_binding, new_binding = deps.binding_state(old), deps.binding_state(new)
    for now in (new_binding, deps.current_state(new)):
        if now is not None:
            conn.execute(_ACCEPT_FOR_CALLERS, (old_binding, now, "constant", old_binding))


def _check_outputs(conn: sqlite3.Connection, old_name: str, new_op: Any) -> None:
    """Stored calls keep their outputs: under an op returning another number of values, they
    would come back in the wrong shape."""
    row = conn.execute("SELECT nout FROM ops WHERE name = ?", (old_name,)).fetchone()
    if row is not None and row[0] is not None and row[0] != new_op.nout:
        raise RenameError(
            f"cannot rename op {old_name} to {new_op.name}: its stored calls have {_outputs(row[0])}, "
            f"{new_op.name} returns {_outputs(new_op.nout)} (give it @op(nout={row[0]}) or a matching "
            "return annotation, or let the new code compute its calls)"
        )


def _outputs(count: int) -> str:
    return f"{count} output{'s' * (count != 1)}"


def rename_arg(store: SQLiteStore, op: Any, old: str, new: str) -> str:
    """Rename argument ``old`` of op ``op`` (its new code) to ``new`` in every stored call.

    >>> rename_arg(store, train, "lr", "learning_rate")     # doctest: +SKIP
    'op pipeline.train: argument lr renamed to learning_rate in 12 stored calls'
    """
    op = resolve_op(op)

    def body(conn: sqlite3.Connection) -> int | str:
        if conn.execute("SELECT 1 FROM versions WHERE op_name = ?", (op.name,)).fetchone() is None:
            raise UnknownOpError(f"cannot rename an argument of op {op.name}: no call of it is stored")
        if not _has_argument(conn, op.name, old) and (done := _done_before(conn, op.name, "arg", old, new)):
            return done
        if _has_argument(conn, op.name, new):
            raise RenameError(
                f"cannot rename argument {old!r} of op {op.name} to {new!r}: stored calls already "
                f"have an argument {new!r} (rename before running the new code)"
            )
        if not _has_argument(conn, op.name, old):
            raise RenameError(f"cannot rename argument {old!r} of op {op.name}: no stored call has it")
        changed = conn.execute(
            f"UPDATE call_inputs SET name = ? WHERE name = ? AND call_id IN "
            f"(SELECT id FROM calls WHERE version_id IN ({_CANONICAL_IDS}))",
            (new, old, op.name),
        ).rowcount
        conn.execute("UPDATE defaults SET param = ? WHERE op_name = ? AND param = ?", (new, op.name, old))
        row = conn.execute("SELECT identity FROM arg_names WHERE op_name = ? AND name = ?", (op.name, old)).fetchone()
        conn.execute("DELETE FROM arg_names WHERE op_name = ? AND name = ?", (op.name, old))
        conn.execute("INSERT OR REPLACE INTO arg_names VALUES (?, ?, ?)", (op.name, new, row[0] if row else old))
        latest = conn.execute(_LATEST, (op.name, op.version_id)).fetchone()
        if latest is not None:
            _alias_version(conn, op, latest)
        _log(conn, op, "arg", old, new)
        return changed

    changed = _write(store, body)
    if isinstance(changed, str):
        return changed
    if not _takes(op, new):
        _warn_not_taken(op, new)
    return f"op {op.name}: argument {old} renamed to {new} in {changed} stored calls"


def _takes(op: Op, name: str) -> bool:
    """Whether ``op``'s code takes an input of that name (``*args`` is ``'*args'``, each
    ``**kwargs`` item ``'**key'``, as stored calls name them)."""
    params = op.signature.parameters
    if name.startswith("**"):
        return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    found = params.get(name.removeprefix("*"))
    star = found is not None and found.kind is inspect.Parameter.VAR_POSITIONAL
    return found is not None and star == name.startswith("*") and found.kind is not inspect.Parameter.VAR_KEYWORD


def _warn_not_taken(op: Op, name: str) -> None:
    # A warning, not an error: a script may replay a history of renames (w -> width ->
    # breadth) whose middle names today's code no longer has. But a typo would leave every
    # stored call missed, silently.
    taken = ", ".join(op.signature.parameters)
    warnings.warn(
        f"op {op.name} takes no argument {name!r} (it takes {taken}): its stored calls are found "
        "again once that argument is renamed to one it takes",
        MandalaWarning, stacklevel=user_stacklevel(),
    )


def identity_names(conn: sqlite3.Connection, op_name: str) -> dict[str, str]:
    """Argument name -> the name call ids hash it under, for the op's renamed arguments
    (empty for an op never renamed: the common case, and the fast one)."""
    rows = dict(conn.execute("SELECT name, identity FROM arg_names WHERE op_name = ?", (op_name,)))
    for identity in list(rows.values()):
        if identity not in rows:  # a new argument under an old name is not the old argument
            rows[identity] = identity + _FRESH
    return {name: identity for name, identity in rows.items() if name != identity}


def renamed(ids: dict[str, bytes], names: dict[str, str]) -> dict[str, bytes]:
    """``ids`` (argument name -> id) keyed by the names call ids hash instead."""
    return {names.get(name, name): value for name, value in ids.items()}


def rename_notes(conn: sqlite3.Connection, op_name: str) -> list[tuple[bytes | None, str]]:
    """``(version id or None, "op a.f renamed to b.g on ...")`` for each rename of the op."""
    rows = conn.execute(
        "SELECT kind, old, new, version_id, created_at FROM renames WHERE op_name = ? ORDER BY created_at",
        (op_name,),
    ).fetchall()
    return [(vid, _note(kind, old, new, when)) for kind, old, new, vid, when in rows]


def rename_history(conn: sqlite3.Connection, op_name: str) -> str:
    """What ``why`` adds about renames of the op: one line per rename, or nothing."""
    return "".join(f"\n{note}" for _, note in rename_notes(conn, op_name))


def resolve_op(target: Any) -> Op:
    """An op, or the op a qualified name (``pkg.module.name`` or ``pkg.module:name``) imports."""
    from .ops import Op

    if isinstance(target, Op):
        return target
    name = _dotted(target)
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            value = getattr(value, attr, None)
        if isinstance(value, Op):
            return value
        break
    raise RenameError(f"{name} does not name an op that can be imported; pass the op object itself")


def _note(kind: str, old: str, new: str, when: float) -> str:
    stamp = datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M")
    what = {"op": "op", "helper": "helper"}.get(kind, "argument")
    return f"{what} {old} renamed to {new} ({stamp})"


def _dotted(name: Any) -> str:
    if not isinstance(name, str):
        raise NotAnOpError(f"rename_op and rename_arg take an op or its qualified name, not {type(name).__qualname__}")
    return name.replace(":", ".")


def _write(store: SQLiteStore, body: Any) -> Any:
    store.flush()  # rows buffered before the rename are renamed with the rest
    return store.write_transaction(body)


def _call_count(conn: sqlite3.Connection, op_name: str) -> int:
    sql = f"SELECT COUNT(*) FROM calls WHERE version_id IN ({_CANONICAL_IDS})"
    return conn.execute(sql, (op_name,)).fetchone()[0]


def _has_argument(conn: sqlite3.Connection, op_name: str, name: str) -> bool:
    stored = conn.execute(
        f"SELECT 1 FROM call_inputs i JOIN calls c ON c.id = i.call_id WHERE i.name = ? AND "
        f"c.version_id IN ({_CANONICAL_IDS}) LIMIT 1",
        (name, op_name),
    ).fetchone()
    default = conn.execute("SELECT 1 FROM defaults WHERE op_name = ? AND param = ?", (op_name, name)).fetchone()
    return stored is not None or default is not None


def _alias_version(conn: sqlite3.Connection, op: Op, latest: tuple) -> None:
    """Store ``op``'s current version as the old latest version (whose calls it takes on),
    unless the file already knows that version (the rename changed nothing it hashes)."""
    if conn.execute("SELECT 1 FROM versions WHERE version_id = ?", (op.version_id,)).fetchone():
        return
    now, (_, canonical, old_fingerprint, old_version) = time.time(), latest
    conn.execute(
        "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
        (op.version_id, op.name, op.version, now, op.fingerprint.digest, canonical),
    )
    conn.execute("INSERT OR REPLACE INTO ops VALUES (?, ?, ?)", (op.name, op.nout, op.signature_text()))
    from . import dependencies as deps

    name = deps.qualified_name(op.fn)
    source = (op.fingerprint.digest, name, op.fingerprint.source, now)
    conn.execute("INSERT OR IGNORE INTO sources VALUES (?, ?, ?, ?)", source)
    _rename_dependency(conn, op, old_fingerprint, old_version)


def _rename_dependency(conn: sqlite3.Connection, op: Op, old_fingerprint: bytes, old_version: int) -> None:
    """Ops that called the old op depend on it by its old name and code: move those to the
    new name, and accept the new code as the old (the callers' calls stay valid)."""
    from . import dependencies as deps

    row = conn.execute("SELECT name FROM sources WHERE state = ?", (old_fingerprint,)).fetchone()
    new_name = deps.qualified_name(op.fn)
    old_state = deps.code_state(old_fingerprint, old_version)
    new_state = deps.code_state(op.fingerprint.digest, op.version)
    if row is not None and row[0] != new_name:
        conn.execute("UPDATE OR IGNORE dep_sets SET name = ? WHERE name = ?", (new_name, row[0]))
        conn.execute("UPDATE OR IGNORE accepted SET name = ? WHERE name = ?", (new_name, row[0]))
        # Callers that import it (`from helpers import inner`) depend on where their name
        # points too: the new place is the old one, also imported under the old name (`from
        # models import twice as inner`), where the name counts by the code it points to.
        old_binding, new_binding = deps.binding_state(row[0]), deps.binding_state(new_name)
        for now in (new_binding, new_state):
            conn.execute(_ACCEPT_FOR_CALLERS, (old_binding, now, "constant", old_binding))
    if old_state != new_state:
        conn.execute("INSERT OR IGNORE INTO accepted VALUES (?, ?, ?)", (new_name, old_state, new_state))
        # (callers that imported it under another name, `from helpers import inner as f`)
        conn.execute(_ACCEPT_FOR_CALLERS, (old_state, new_state, "code", old_state))


#: Accept, for every name callers' calls recorded with a state, that state's new form.
_ACCEPT_FOR_CALLERS = "INSERT OR IGNORE INTO accepted SELECT DISTINCT name, ?, ? FROM dep_sets WHERE kind = ? AND state = ?"


def _done_before(conn: sqlite3.Connection, op_name: str, kind: str, old: str, new: str) -> str:
    """What to say when this very rename was made before (a script that renames, run again:
    the old name is gone because of it), or "" if it was not."""
    row = conn.execute(
        "SELECT MAX(created_at) FROM renames WHERE op_name = ? AND kind = ? AND old = ? AND new = ?",
        (op_name, kind, old, new),
    ).fetchone()
    where = f"op {op_name}: " if kind == "arg" else ""
    return "" if row[0] is None else f"{where}{_note(kind, old, new, row[0])} before: nothing to do"


def _log(conn: sqlite3.Connection, op: Op, kind: str, old: str, new: str) -> None:
    conn.execute(
        "INSERT INTO renames VALUES (?, ?, ?, ?, ?, ?)", (op.name, kind, old, new, op.version_id, time.time())
    )
