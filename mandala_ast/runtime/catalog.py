"""What a storage holds, read without the user's code: ops by their stored names, their
versions, and pages of their calls with values described (runtime/described.py), never loaded.

Used by the command line and the flat export. Reads only: opening goes through SQLiteStore's
checks (a corrupt or foreign file is refused, untouched), and nothing is unpickled.

>>> catalog = Catalog.open("results.db")                 # doctest: +SKIP
>>> [op.name for op in catalog.ops()]                    # doctest: +SKIP
['__main__.fit_ridge', '__main__.make_data']
"""

from __future__ import annotations

import difflib
import heapq
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import StorageFormatError, UnknownOpError
from . import parsing
from .blobs import blob_dir_of
from .built import BUILD_OP_NAME
from .column_names import clear_of
from .described import Opaque, describe, describe_row
from .hashing import content_id
from .packing import unpack_outputs
from .store import IN_CHUNK, SQLiteStore
from .structures import ITEM_OP_NAME

__all__ = ["Call", "Catalog", "StoredOp", "Version", "existing_storage_file", "source_diff"]

_OPS_SQL = "SELECT name, nout, signature FROM ops WHERE name NOT IN (?, ?) ORDER BY name"
_VERSIONS_SQL = (
    "SELECT version, version_id, fingerprint, canonical, created_at FROM versions "
    "WHERE op_name = ? ORDER BY created_at"
)
# One version's calls in storage order (the version index is sorted by (version_id, id)).
_PAGE_SQL = (
    "SELECT id, hid, created_at, duration, outputs FROM calls WHERE version_id = ?{where} "
    "ORDER BY id LIMIT ?"
)
_INPUT_FILTER = " AND id IN (SELECT call_id FROM call_inputs WHERE name = ? AND cid IN ({marks}))"
_INPUT_OR_DEFAULT_FILTER = (
    " AND (id IN (SELECT call_id FROM call_inputs WHERE name = ? AND cid IN ({marks}))"
    " OR NOT EXISTS (SELECT 1 FROM call_inputs d WHERE d.call_id = calls.id AND d.name = ?))"
)
_RENAMED_FROM_SQL = "SELECT DISTINCT old FROM renames WHERE kind = 'op'"
_RENAMED_SQL = "SELECT new FROM renames WHERE kind = 'op' AND old = ? ORDER BY created_at DESC LIMIT 1"
_DEFAULTS_SQL = "SELECT op_name, param, cid FROM defaults"
# Whether some call of a version has an input of that name (one the op's signature does not
# list: a cached fixture's "request.param").
_NAMED_INPUT_SQL = (
    "SELECT 1 FROM calls JOIN call_inputs ON call_inputs.call_id = calls.id "
    "WHERE calls.version_id = ? AND call_inputs.name = ? LIMIT 1"
)
_OUTPUT_FILTER = " AND id IN (SELECT call_id FROM call_outputs WHERE idx = ? AND cid IN ({marks}))"
_VALUES_SQL = "SELECT cid, codec, data, size, external FROM vals WHERE cid IN ({marks})"
_INPUTS_SQL = "SELECT call_id, name, cid FROM call_inputs WHERE call_id IN ({marks})"
_SIZE_SQL = (
    "SELECT COALESCE(SUM(size), 0) FROM vals WHERE cid IN "
    "(SELECT o.cid FROM call_outputs o JOIN calls c ON c.id = o.call_id WHERE c.version_id = ?)"
)


@dataclass(frozen=True)
class Version:
    """One stored version of an op; its calls are stored under ``stored_id``."""

    number: int
    version_id: bytes
    fingerprint: bytes | None
    stored_id: bytes
    created_at: float
    calls: int  # stored under version_id: 0 where stored_id is another's, which counts them
    source: str | None


@dataclass(frozen=True)
class StoredOp:
    """An op as the storage knows it: name, parameters, output names."""

    name: str
    params: tuple[str, ...]
    outputs: tuple[str, ...]
    signature: str
    #: stored (not ignored) parameters with a default, and the default's content id as first
    #: seen: what a call stored before its parameter was added has there (no input row)
    defaults: tuple[tuple[str, bytes], ...] = ()

    @property
    def short_name(self) -> str:
        """The function's own name: ``fit_ridge`` for ``__main__.fit_ridge``."""
        return self.name.rsplit(".", 1)[-1]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.params + self.outputs


@dataclass
class Call:
    """One stored call: values by column (scalars, or :class:`Opaque` descriptions)."""

    #: the calls table's integer key (``calls.id``), local to the file
    key: int
    #: the call's row id (history id + deps id): what ``storage.delete_calls`` takes
    row_id: bytes
    version: int
    created_at: float
    duration: float | None
    values: dict[str, Any] = field(default_factory=dict)
    #: the version the call is stored under (two versions of an op may share ``version``)
    version_id: bytes = b""


class Catalog:
    """A storage opened for reading by name (see the module docstring)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.blobs = None if store.path is None else blob_dir_of(store.path)

    @property
    def conn(self) -> sqlite3.Connection:
        """The store's connection as it is now: after ``close()``, one whose every use is a
        StorageClosedError naming the file (kept from before, it raised sqlite3's own)."""
        return self.store.conn

    @classmethod
    def open(cls, path: str | Path) -> Catalog:
        """Open an existing storage file; a missing one is an error (never created)."""
        return cls(SQLiteStore(existing_storage_file(path)))

    def close(self) -> None:
        self.store.close()

    # -- ops and versions ------------------------------------------------------------------

    def ops(self) -> list[StoredOp]:
        """Every op stored, by name (the internal ops of collection elements and of collections
        built by hand left out)."""
        defaults: dict[str, list[tuple[str, bytes]]] = {}
        for op_name, param, cid in self.conn.execute(_DEFAULTS_SQL):
            defaults.setdefault(op_name, []).append((param, cid))
        rows = self.conn.execute(_OPS_SQL, (ITEM_OP_NAME, BUILD_OP_NAME))
        return [_stored_op(name, nout, signature, defaults.get(name, [])) for name, nout, signature in rows]

    def find_op(self, name: str) -> StoredOp:
        """The op called ``name``: its full stored name, or its function's name if only one
        op has it. Otherwise :class:`UnknownOpError`, naming the ops there are."""
        ops = self.ops()
        matches = [op for op in ops if op.name == name] or [op for op in ops if op.short_name == name]
        if len(matches) == 1:
            return matches[0]
        names = [op.name for op in ops]
        if matches:
            raise UnknownOpError(f"op {name!r} is ambiguous: {', '.join(op.name for op in matches)}; give one of these full names")
        renamed = self._renamed_to(name, set(names)) or self._short_name_renamed_to(name, set(names))
        if renamed:
            raise UnknownOpError(f"no op {name!r} in {self.store.path}: it was renamed to {renamed} (rename_op)")
        close = difflib.get_close_matches(name, names + [op.short_name for op in ops], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownOpError(
            f"no op {name!r} in {self.store.path}{hint}; stored ops: {', '.join(names) or 'none'}"
        )

    def _short_name_renamed_to(self, name: str, stored: set[str]) -> str | None:
        """What an op whose function was called ``name`` (``inc`` for ``__main__.inc``) became,
        when that is one op."""
        if "." in name or not self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'renames'").fetchone():
            return None
        olds = [old for (old,) in self.conn.execute(_RENAMED_FROM_SQL) if old.rsplit(".", 1)[-1] == name]
        found = {new for new in (self._renamed_to(old, stored) for old in olds) if new}
        return found.pop() if len(found) == 1 else None

    def _renamed_to(self, name: str, stored: set[str]) -> str | None:
        """The stored op that op ``name`` became through renames (one after another), if any."""
        if not self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'renames'").fetchone():
            return None  # a file from before renames, read as it is
        seen = {name}
        while True:
            row = self.conn.execute(_RENAMED_SQL, (name,)).fetchone()
            if row is None or row[0] in seen:
                return None
            name = row[0]
            if name in stored:
                return name
            seen.add(name)

    def versions(self, op: StoredOp) -> list[Version]:
        """The op's versions, oldest first, with their call counts and source text. Each
        call counts once, on the version it is stored under (``stored_id``): one accepted as
        the same code as an earlier one (accept_change, a rename) shares that one's calls."""
        rows = self.conn.execute(_VERSIONS_SQL, (op.name,)).fetchall()
        return [
            Version(number, vid, fp, canonical or vid, created, self.store.count_calls(vid), self._source(fp))
            for number, vid, fp, canonical, created in rows
        ]

    def size_on_disk(self, version: Version) -> int:
        """Encoded bytes of the distinct values the version's calls returned."""
        return self.conn.execute(_SIZE_SQL, (version.stored_id,)).fetchone()[0]

    def _source(self, state: bytes | None) -> str | None:
        row = self.conn.execute("SELECT source FROM sources WHERE state = ?", (state,)).fetchone()
        return row[0] if row else None

    # -- calls -----------------------------------------------------------------------------

    def calls(
        self, op: StoredOp, *, where: dict[str, Any] | None = None, limit: int | None = None,
        version: Version | None = None,
    ) -> list[Call]:
        """The op's first ``limit`` calls in storage order (oldest first), those whose column
        equals the given value for each ``where`` item (matched by content id: ``1`` also
        matches a stored ``1.0``). Costs a read of ``limit`` rows per version, however many
        calls are stored. ``version``: that version's calls only."""
        if version is not None:
            versions = {version.stored_id: version.number}
        else:  # no call counts: counting a million index entries would be most of the time
            rows = self.conn.execute(_VERSIONS_SQL, (op.name,)).fetchall()
            versions = {canonical or vid: number for number, vid, _, canonical, _ in reversed(rows)}
        filters, params = self._filters(op, where or {})
        sql = _PAGE_SQL.format(where=filters)
        pages = [
            [(row, number, vid) for row in self.conn.execute(sql, (vid, *params, -1 if limit is None else limit))]
            for vid, number in versions.items()
        ]
        chosen = list(heapq.merge(*pages, key=lambda item: item[0][0]))[:limit]
        calls = [Call(row[0], row[1], number, row[2], row[3], version_id=vid) for row, number, vid in chosen]
        self._fill(op, calls, [row[4] for row, _, _ in chosen])
        return calls

    def has_input(self, op: StoredOp, name: str) -> bool:
        """Whether a stored call of ``op`` has an input ``name`` beside its parameters (the
        ``request.param`` the pytest plugin stores for a cached fixture's param)."""
        rows = self.conn.execute(_VERSIONS_SQL, (op.name,)).fetchall()
        stored = {canonical or vid for _, vid, _, canonical, _ in rows}
        return any(self.conn.execute(_NAMED_INPUT_SQL, (vid, name)).fetchone() for vid in stored)

    def _filters(self, op: StoredOp, where: dict[str, Any]) -> tuple[str, list]:
        sql, params = "", []
        for column, value in where.items():
            cids = _candidate_cids(value)
            marks = ", ".join("?" * len(cids))
            if column in op.outputs:
                sql += _OUTPUT_FILTER.format(marks=marks)
                params += [op.outputs.index(column), *cids]
            elif dict(op.defaults).get(column) in cids:  # also the calls stored before the parameter
                sql += _INPUT_OR_DEFAULT_FILTER.format(marks=marks)
                params += [column, *cids, column]
            else:
                sql += _INPUT_FILTER.format(marks=marks)
                params += [column, *cids]
        return sql, params

    def _fill(self, op: StoredOp, calls: list[Call], packed: list[bytes]) -> None:
        """Describe every input and output of ``calls`` with two reads in all."""
        inputs = self._inputs([call.key for call in calls])
        inline: dict[bytes, Any] = {}
        wanted: set[bytes] = set()
        for call, blob in zip(calls, packed):
            for name, (cid, codec, data) in zip(op.outputs, unpack_outputs(blob or b"")):
                call.values[name] = cid
                if codec is None or data is None:  # not inline (both None together)
                    wanted.add(cid)
                else:
                    inline[cid] = describe(codec, data, cid)
            call.values.update(inputs.get(call.key, {}))
            for name, cid in op.defaults:  # a call stored before the parameter: its default
                call.values.setdefault(name, cid)
            wanted.update(cid for name, cid in call.values.items() if name not in op.outputs)
        described = {**self.describe_values(list(wanted - inline.keys())), **inline}
        # Keyword arguments of **kwargs are inputs of their own ("**name"): a column each,
        # the same columns for every call of the page.
        fixed = [name for name in op.params if not name.startswith("**")]
        extra = sorted({name for call in calls for name in call.values} - set(fixed) - set(op.outputs))
        for call in calls:
            call.values = {
                column: described.get(call.values[column]) if column in call.values else None
                for column in (*fixed, *extra, *op.outputs)
            }

    def _inputs(self, keys: list[int]) -> dict[int, dict[str, bytes]]:
        found: dict[int, dict[str, bytes]] = {}
        for chunk in _chunks(keys):
            for call_id, name, cid in self.conn.execute(_INPUTS_SQL.format(marks=_marks(chunk)), chunk):
                found.setdefault(call_id, {})[name] = cid
        return found

    def describe_values(self, cids: list[bytes]) -> dict[bytes, Any]:
        """``cid -> scalar or Opaque`` for the given values (one read per IN_CHUNK)."""
        rows: dict[bytes, tuple] = {}
        for chunk in _chunks(cids):
            for cid, *row in self.conn.execute(_VALUES_SQL.format(marks=_marks(chunk)), chunk):
                rows[cid] = tuple(row)
        return {cid: describe_row(rows.get(cid), cid, self.blobs) for cid in cids}


def existing_storage_file(path: str | Path) -> Path:
    """``path``, if a storage may be there: tools that read one never create it, nor write a
    schema into an empty file (``touch results.db``, a copy that failed) as ``Storage`` would.

    >>> existing_storage_file("results.db")     # doctest: +SKIP
    PosixPath('results.db')
    """
    path = Path(path)
    if not path.exists():
        raise StorageFormatError(f"{path}: no such storage file")
    if path.is_file() and path.stat().st_size == 0:
        raise StorageFormatError(f"{path} is empty: no storage was ever written to it; left untouched")
    return path


def source_diff(old: Any, new: Any) -> str:
    """Unified diff between two stored versions' sources (`versions --diff`, the export)."""
    before, after = (old.source or "").splitlines(keepends=True), (new.source or "").splitlines(keepends=True)
    old_label, new_label = (f"version {v.number} ({v.version_id.hex()[:12]})" for v in (old, new))
    text = "".join(difflib.unified_diff(before, after, old_label, new_label))
    if not text and old.number != new.number:
        # A source is kept per code fingerprint, which `version=` is no part of: both versions
        # show the text stored first, decorator included.
        return f"--- {old_label}\n+++ {new_label}\n(the same code: only version= changed, from {old.number} to {new.number})\n"
    return text if text.endswith("\n") or not text else text + "\n"


def _stored_op(name: str, nout: int, signature: str | None, defaults: list[tuple[str, bytes]]) -> StoredOp:
    info = json.loads(signature) if signature and signature.startswith("{") else {}
    text = info.get("signature", signature or "()")
    outputs = info.get("outputs") or (["output"] if nout == 1 else [f"output_{i}" for i in range(nout)])
    params = _parameters(text)
    ignored = info.get("ignore")  # None: written before it was recorded, so not known
    found = () if ignored is None else tuple(
        (param, cid) for param, cid in sorted(defaults) if param in params and param not in ignored
    )
    # An output named like a parameter (`output`, an op taking `output=`) would hide it.
    return StoredOp(name, params, tuple(clear_of(params, outputs)), text, found)


def _parameters(signature: str) -> tuple[str, ...]:
    """Parameter names from ``inspect.Signature`` text (``*args`` as ``*args``)."""
    try:
        args = parsing.parse(f"def f{signature}: pass").body[0].args
    except SyntaxError:  # annotations that print as no valid Python (``<class 'x'>``)
        args = parsing.parse(f"def f{_strip_annotations(signature)}: pass").body[0].args
    names = [a.arg for a in (*args.posonlyargs, *args.args)]
    names += [f"*{args.vararg.arg}"] if args.vararg else []
    names += [a.arg for a in args.kwonlyargs]
    return tuple(names + ([f"**{args.kwarg.arg}"] if args.kwarg else []))


def _strip_annotations(signature: str) -> str:
    params = signature.split(") ->")[0].strip("()")
    names = [part.split(":")[0].split("=")[0].strip() for part in params.split(",") if part.strip()]
    return f"({', '.join(names)})"


def _candidate_cids(value: Any) -> list[bytes]:
    """The content ids a value typed on a command line may be stored under: ``1`` as int
    and as float (``alpha=1`` finds ``alpha=1.0``); a text as itself and as the ValuePointer of
    that name (``data=imagenet``: a pointer is stored by its name alone)."""
    values = [value]
    if type(value) is int:
        values.append(float(value))
    elif type(value) is float and value.is_integer():
        values.append(int(value))
    elif type(value) is str:
        from .pointers import ValuePointer  # (late: the command line rarely asks)

        values.append(ValuePointer(value))
    return [content_id(v) for v in values]


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def _marks(chunk: list) -> str:
    return ", ".join("?" * len(chunk))


def value_text(value: Any) -> str:
    """How a described value prints in a table cell."""
    return str(value) if isinstance(value, Opaque) else repr(value) if isinstance(value, str) else str(value)
