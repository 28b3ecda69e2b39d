"""A storage as a flat SQLite file for people who never run Python: one readable table per op
version, browsable in Datasette or any SQLite viewer (``mandala-ast export``, ``browse``).

Tables of the flat file:

- one per op version (``fit_ridge``, or ``fit_ridge_v1`` when the op has several): a row per
  call, a column per input and output. A column of scalars holds the values; a column with any
  other value holds ids into ``values`` (foreign keys) and a ``<column>_type`` column says what
  they are (``ndarray float64 (200, 20)``, ``sklearn.linear_model.Ridge 1.2 kB``).
- ``values``: every value those columns name: id, codec, type, size, and the value itself when
  it is a scalar.
- ``ops``: each op version with its table, signature, call count, source and the diff from the
  version before (searchable: full-text index on name and source).
- ``call_index`` and ``edges``, and the ``calls`` view that joins them: for every input of
  every call, the call that produced it, as ``storage.provenance`` has it (recorded by compiled
  code, else the earliest earlier call that returned the same content, an element's
  ``__item__`` call first), so producers link to consumers. The internal ``__item__`` and
  ``__build__`` calls are in ``call_index`` and ``edges`` too (no table of their own): a
  producer through them is named, and leads on.

Exporting never unpickles (values are described from their codec, ``.npy`` header or pickle
opcodes): it is safe on a storage you do not trust. Loading its values in Python is not.

>>> print(export_storage(Catalog.open("results.db"), "flat.db"))      # doctest: +SKIP
flat.db: 3 op tables, 18 calls, 23 values
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import ExportError
from .export_files import remove_killed_exports_files, temp_path
from .runtime.built import BUILD_OP_NAME, BUILD_VERSION_ID
from .runtime.catalog import Catalog, StoredOp, Version, source_diff
from .runtime.column_names import clear_of
from .runtime.described import Opaque, is_scalar
from .runtime.structures import ITEM_OP_NAME, ITEM_VERSION_ID
from .runtime.tables import DELETED_CALL, provenance_rows

__all__ = ["ExportReport", "browse", "export_storage"]

_INSTALL = "pip install 'mandala_ast[browse]'"
#: The flat file's own tables, view and indexes (SQLite's names ignore case, and share one
#: namespace): an op's table takes another name.
_RESERVED = {"values", "ops", "calls", "call_index", "edges", "idx_edges_consumer", "idx_edges_producer"}
_RESERVED_PREFIXES = ("sqlite_", "ops_fts")  # SQLite's own tables; the ops table's full-text index
# The calls of the internal ops that stand between an op and the values it was given: an
# element of a stored collection (its __item__ call), a collection built by hand (__build__).
_INTERNAL_CALLS_SQL = "SELECT hid FROM calls WHERE version_id = ?"
_CALLS_VIEW = """
SELECT e.consumer AS call, ci.op AS op, ci.op_table AS op_table, e.input AS input,
       e.value AS value, e.producer AS producer_call, pi.op AS producer_op,
       pi.op_table AS producer_table, e.output_index AS output_index
FROM edges e JOIN call_index ci ON ci.call = e.consumer
LEFT JOIN call_index pi ON pi.call = e.producer
"""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_storage` wrote."""

    path: Path
    tables: int
    calls: int
    values: int

    def __str__(self) -> str:
        return f"{self.path}: {self.tables} op tables, {self.calls} calls, {self.values} values"


def export_storage(catalog: Catalog, out: str | Path) -> ExportReport:
    """Write the flat file ``out`` (replaced whole, atomically) from an opened storage."""
    sqlite_utils = _require("sqlite_utils")
    out = Path(out)
    if not out.parent.is_dir():  # else SQLite's "unable to open database file", naming nothing
        raise ExportError(f"cannot write {out}: {out.parent} is not a directory")
    _refuse_a_storage(out)
    temp = temp_path(out)
    remove_killed_exports_files(out)
    try:
        temp.unlink(missing_ok=True)
        db = sqlite_utils.Database(temp)
        report = _Exporter(catalog, db).run(out)
        db.close()
        os.replace(temp, out)
    except (OSError, sqlite3.Error) as exc:  # a full disk, a read-only mount: SQLite names no file
        raise ExportError(f"cannot write {out}: {getattr(exc, 'strerror', None) or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
    return report


class _Exporter:
    def __init__(self, catalog: Catalog, db: Any) -> None:
        self.catalog, self.db = catalog, db
        self.values: dict[bytes, Any] = {}  # every value a table names, described
        self.calls = 0

    def run(self, out: Path) -> ExportReport:
        ops = self.catalog.ops()
        tables = _table_names(self.catalog, ops)
        # BLOB: no type affinity, so each scalar keeps its own type (1 stays 1, "1" stays "1").
        self.db["values"].create({"id": str, "type": str, "value": bytes}, pk="id")
        op_rows = []
        for op in ops:
            versions = self.catalog.versions(op)
            for before, version in zip([None, *versions], versions):
                if version.stored_id != version.version_id:  # accepted as cosmetic: calls shared
                    continue
                table = tables[version.version_id]
                self._op_table(op, version, table)
                op_rows.append(_op_row(op, version, before, table))
        for name in [op.name for op in ops] + [ITEM_OP_NAME, BUILD_OP_NAME]:
            self._edges(name)
        self._internal_calls()
        self._metadata_tables(op_rows)
        return ExportReport(out, len(op_rows), self.calls, len(self.values))

    def _op_table(self, op: StoredOp, version: Version, table: str) -> None:
        calls = self.catalog.calls(op, version=version)
        opaque = sorted({c for call in calls for c, v in call.values.items() if v is not None and not is_scalar(v)})
        names = _Columns(list(calls[0].values if calls else op.columns), opaque)
        rows = [self._row(call, names) for call in calls]
        columns = {c: _column_type(c, set(opaque), rows) for c in names.values}
        columns.update({names.types[c]: str for c in opaque})
        columns.update({names.version: int, names.created_at: str, names.duration: float})
        # SQLite's column names ignore case: `X` after `x` (arguments first) becomes `X_2`.
        sql = _case_distinct([names.key, *columns])
        self.db[table].create({sql[c]: kind for c, kind in {names.key: str, **columns}.items()}, pk=names.key,
                              foreign_keys=[(sql[c], "values", "id") for c in opaque] or None)
        self.db[table].insert_all(({sql[c]: value for c, value in row.items()} for row in rows), batch_size=1000)
        self.db["call_index"].insert_all(
            ({"call": row[names.key], "op": op.name, "version": version.number, "op_table": table} for row in rows),
            pk="call", replace=True)
        self.calls += len(rows)

    def _row(self, call: Any, names: _Columns) -> dict:
        row: dict[str, Any] = {names.key: call.row_id.hex()}
        for column, value in call.values.items():
            if column in names.types:
                row[column] = _remember(self.values, value)
                row[names.types[column]] = _type_text(value)
            else:
                row[column] = _sqlite_value(value)
        stamp = datetime.datetime.fromtimestamp(call.created_at, datetime.timezone.utc) if call.created_at else None
        row[names.version], row[names.duration] = call.version, call.duration
        row[names.created_at] = stamp.isoformat() if stamp else None
        return row

    def _edges(self, op_name: str) -> None:
        """An edge per input of each call of the op, to the producer storage.provenance names
        (the same rows: an element of a list built by hand is an input of its own, ``xs[0]``)."""
        rows = provenance_rows(self.catalog.store, op_name)
        for row in rows:  # scalars too: `values` holds every value an edge names
            self.values.setdefault(row["value"], None)
        # A producer deleted without its dependents: in call_index as provenance names it.
        self.db["call_index"].insert_all(
            ({"call": row["producer_call"], "op": row["producer_op"], "version": None, "op_table": None}
             for row in rows if row["producer_op"] == DELETED_CALL),
            pk="call", replace=True)
        self.db["edges"].insert_all(
            ({"consumer": row["call"], "input": row["input"], "value": row["value"].hex(),
              "producer": row["producer_call"], "output_index": row["output_index"]} for row in rows),
            batch_size=1000,
        )

    def _internal_calls(self) -> None:
        """The __item__ and __build__ calls in ``call_index`` (no table of their own), so that
        a producer through them has its op, and its own edges lead on."""
        for name, version_id in ((ITEM_OP_NAME, ITEM_VERSION_ID), (BUILD_OP_NAME, BUILD_VERSION_ID)):
            hids = self.catalog.conn.execute(_INTERNAL_CALLS_SQL, (version_id,)).fetchall()
            self.db["call_index"].insert_all(
                ({"call": hid.hex(), "op": name, "version": 0, "op_table": None} for (hid,) in hids),
                pk="call", replace=True)

    def _metadata_tables(self, op_rows: list[dict]) -> None:
        described = self.catalog.describe_values([c for c, v in self.values.items() if v is None])
        self.values.update(described)
        self.db["values"].insert_all((_value_row(cid, value) for cid, value in self.values.items()),
                                     replace=True, batch_size=1000)
        self.db["ops"].insert_all(op_rows, pk="table_name", replace=True)
        if op_rows:
            self.db["ops"].enable_fts(["name", "source"], create_triggers=False)
        for name, columns in (("call_index", {"call": str, "op": str, "version": int, "op_table": str}),
                              ("edges", {"consumer": str, "input": str, "value": str, "producer": str,
                                         "output_index": int})):
            if not self.db[name].exists():
                self.db[name].create(columns)
        self.db["edges"].create_index(["consumer"], if_not_exists=True)
        self.db["edges"].create_index(["producer"], if_not_exists=True)
        self.db.create_view("calls", _CALLS_VIEW, replace=True)


class _Columns:
    """An op table's columns: the op's inputs and outputs as they are named, then the table's
    own (``call``, ``X_type``, ``version``...), each with an underscore added while an input
    has its name: an op taking ``call`` or ``version`` keeps those arguments."""

    def __init__(self, values: list[str], opaque: list[str]) -> None:
        self.values = values
        self.types = dict(zip(opaque, clear_of(values, [f"{c}_type" for c in opaque])))
        own = clear_of([*values, *self.types.values()], ["call", "version", "created_at", "duration_s"])
        self.key, self.version, self.created_at, self.duration = own


def _type_text(value: Any) -> str | None:
    if value is None:  # not passed (an empty *args): no value
        return None
    return value.kind if isinstance(value, Opaque) else type(value).__name__


def _remember(values: dict[bytes, Any], value: Any) -> str | None:
    if isinstance(value, Opaque):
        values[value.cid] = value
        return value.cid.hex()
    return None if value is None else repr(value)  # a scalar among other values: as text


def _column_type(column: str, opaque: set[str], rows: list[dict]) -> type:
    if column in opaque:
        return str
    kinds = {type(row.get(column)) for row in rows} - {type(None), _NaN}  # a NaN is a float
    if kinds <= {bool, int}:
        return int
    if kinds <= {bool, int, float}:
        return float
    return str


def _value_row(cid: bytes, value: Any) -> dict:
    if isinstance(value, Opaque):
        return {"id": cid.hex(), "type": value.kind, "value": None}
    return {"id": cid.hex(), "type": type(value).__name__, "value": _sqlite_value(value)}


class _NaN(str):
    """The text a NaN float is written as: a str (SQLite would store the float as NULL) that
    leaves its column a float column."""


_NAN = _NaN("NaN")


def _sqlite_value(value: Any) -> Any:
    """``value`` as SQLite can hold it. SQLite text is UTF-8, which a str holding lone
    surrogates is not (``os.fsdecode`` makes them of a file name that is not UTF-8): those
    are written escaped, ``\\udce9``, as ``repr`` shows them. SQLite stores a NaN float as
    NULL, which reads as "no value": it is written as the text ``NaN`` (``float()`` reads it
    back; infinities are real values)."""
    if type(value) is not str:
        return _NAN if isinstance(value, float) and value != value else value
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _op_row(op: StoredOp, version: Version, before: Version | None, table: str) -> dict:
    return {
        "table_name": table, "name": op.name, "version": version.number,
        "version_id": version.version_id.hex(), "signature": op.signature, "calls": version.calls,
        "source": version.source, "diff": source_diff(before, version) if before else None,
    }


def _refuse_a_storage(out: Path) -> None:
    """A flat copy never replaces a storage (the one exported, or another one that a
    ``--force`` meant for an old export would hit): that would lose its results."""
    if not out.is_file():
        return
    try:
        conn = sqlite3.connect(f"{out.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mandala_meta'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:  # not SQLite (or not readable as it): a file like any other to replace
        return
    if found:
        raise ExportError(
            f"{out} is a mandala_ast storage, not a flat export: replacing it would lose its "
            "results; give the export another file name"
        )


def _table_names(catalog: Catalog, ops: list[StoredOp]) -> dict[bytes, str]:
    """``fit_ridge`` for an op's only version, ``fit_ridge_v1``, ``_v2``... (oldest first) when it
    has several; the full name when two modules define ops of one name; ``op_values`` for a
    name the file's own tables or SQLite's have; ``F_2`` for a name another table has in
    another case (SQLite's names ignore it). The ``ops`` table says which is whose."""
    short = [op.short_name for op in ops]
    names: dict[bytes, str] = {}
    taken = set(_RESERVED)  # lower case: `f` and `F` would be one table
    for op in ops:
        base = op.short_name if short.count(op.short_name) == 1 else op.name.replace(".", "_")
        own = base.lower() in _RESERVED or base.lower().startswith(_RESERVED_PREFIXES)
        base = f"op_{base}" if own else base
        # Numbered by age: a code change keeps the op's version= number, so that is no name.
        # A rename's alias (it shares the old version's calls) is no table: not counted.
        ids = [v.version_id for v in catalog.versions(op) if v.stored_id == v.version_id]
        for age, version_id in enumerate(ids, 1):
            names[version_id] = _unique(base if len(ids) == 1 else f"{base}_v{age}", taken)
    return names


def _case_distinct(names: list[str]) -> dict[str, str]:
    """Each of ``names`` to itself, or, where an earlier one has it in another case, to
    :func:`_unique`'s ``name_2``: SQLite's table and column names ignore case."""
    taken: set[str] = set()
    return {name: _unique(name, taken) for name in names}


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``... when a table of that name, in any case, is taken."""
    candidate, number = name, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{name}_{number}"
    taken.add(candidate.lower())
    return candidate


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"this needs {module.replace('_', '-')}: {_INSTALL}") from None


# -- browsing --------------------------------------------------------------------------------


def browse(catalog: Catalog, *, port: int = 8001) -> int:
    """Export to a temporary file and serve it with Datasette on 127.0.0.1 until interrupted."""
    _require("datasette")
    port = port or free_port()
    _check_port(port)
    with tempfile.TemporaryDirectory(prefix="mandala_ast-browse-") as folder:
        name = Path(str(catalog.store.path)).stem or "storage"
        flat = Path(folder) / f"{name}.db"
        print(export_storage(catalog, flat), flush=True)
        metadata = Path(folder) / "metadata.json"
        metadata.write_text(json.dumps(datasette_metadata(name, catalog)))
        # A name with a space (`my results`) quoted: a terminal's link would stop at it.
        print(f"serving on http://127.0.0.1:{port}/{urllib.parse.quote(name)} (Ctrl-C stops)", flush=True)
        with _serving(flat, metadata, port) as server, _stopped_by_sigterm():
            try:
                status = server.wait()
            except KeyboardInterrupt:
                return 0
        if status != 0:  # its own error is on stderr above (a port taken since the check)
            raise ExportError(f"Datasette stopped with exit status {status} serving {catalog.store.path} on 127.0.0.1:{port}")
        return 0


def datasette_metadata(name: str, catalog: Catalog) -> dict:
    """Titles and descriptions Datasette shows above the tables."""
    return {
        "title": f"mandala_ast storage {catalog.store.path}",
        "description": "One table per op version; `values` describes non-scalar values; "
        "`calls` links each input to the call that produced it; `ops` has each version's source.",
        "databases": {name: {"tables": {"ops": {"description": "op versions: source and diff"}}}},
    }


def _check_port(port: int) -> None:
    """Datasette would bind after the export and report a port in use as its own crash."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ExportError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}; pass another --port (0: any free one)") from None


def free_port() -> int:
    """A port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, a test's cleanup) stops the server and removes the temporary file,
    as Ctrl-C does: by default it would end this process and leave Datasette running."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _serving(flat: Path, metadata: Path, port: int) -> Iterator[subprocess.Popen]:
    command = [sys.executable, "-m", "datasette", "serve", str(flat), "--host", "127.0.0.1",
               "--port", str(port), "--metadata", str(metadata), "--immutable", str(flat)]
    command.remove(str(flat))  # served as immutable: read-only, and it never changes
    server = subprocess.Popen(command)
    try:
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
