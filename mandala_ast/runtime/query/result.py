"""What ``with storage.query() as q:`` gives: the matched rows, as a DataFrame on demand.

One SQL statement finds the matching calls (sql.py); values are then loaded in bulk, each
distinct content id decoded once; derived columns and ``if`` guards are applied per row.
"""

from __future__ import annotations

import functools
import itertools
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..._errors import (
    ArgumentError,
    CorruptValueError,
    QueryError,
    StorageBusyError,
    UnknownColumnError,
)
from .. import codecs
from ..deletion_watch import deletion_epoch
from ..hashing import content_id
from ..integrity import damage_as_error
from ..lone_elements import QueryMatches
from ..tables import value_series
from .columns import is_plain, plain_table
from .distinct import distinct_rows
from .holes import filled_by
from .pattern import CallNode, Derived, DomainVar, FreeVar, Node, OutputVar, Pattern, call_value
from .row_calls import RowCalls, RowValues
from .sql import CompiledQuery, compile_pattern
from .table import table, takes
from .tracked import Edges, tracked_calls

if TYPE_CHECKING:
    import pandas as pd

    from ..deletion import DeleteReport
    from ..storage import Storage

__all__ = ["Query"]

#: Reads of a query's rows when a deletion elsewhere keeps removing value files under it.
_READS = 5


#: Every call under an ``if`` found by history or content (the statement's columns are the same).
_CONTENT_TOO = Edges()


class Query:
    """The result of a query block: ``q.df()``, ``q.df("n", "acc")``, ``q.df(values="ids")``.

    >>> with storage.query() as q:        # doctest: +SKIP
    ...     x = Q()
    ...     y = inc(x)
    >>> q.df()                            # doctest: +SKIP
       x  y
    0  1  2
    """

    def __init__(self, storage: Storage, pattern: Pattern) -> None:
        self.storage = storage
        self.pattern = pattern
        self.report: DeleteReport | None = None  # a delete block's report
        self._raw: list[tuple] | None = None  # what the SQL statement returned
        self._rows: list[dict[int, Any]] | None = None  # node number -> content id, per row
        self._calls: RowCalls = RowCalls()  # matched call ids, per row
        #: the statement's variants, by the calls under an ``if`` found by history alone (_statement)
        self._compiled: dict[Edges, CompiledQuery] = {}
        self._compile_with: Callable[..., CompiledQuery] | None = None
        self._epoch: Any = None  # the file's deletion epoch when _raw was read

    def __repr__(self) -> str:
        return f"<query of {len(self.pattern.calls)} op calls, columns {list(self.pattern.columns)}>"

    def _repr_html_(self) -> str:
        """Jupyter shows a query result as its table."""
        from ..display import query_html

        return query_html(repr(self), self.df())

    @property
    def sql(self) -> str:
        """The SQL statement the pattern compiles to (for the curious and for bug reports)."""
        return self._statement().sql

    def df(self, *columns: str, values: str = "objs") -> pd.DataFrame:
        """The matched rows, one column per variable of the block (or the ``columns`` named,
        as names or one list of names: ``q.df("alpha", "score")``, ``q.df(["alpha", "score"])``).

        ``values="objs"`` loads the stored values; ``values="ids"`` gives their content ids
        (hex) instead. Rows are distinct; a name assigned under an ``if`` whose condition
        fails in a row is None there.
        """
        import pandas as pd

        if values not in ("objs", "ids"):
            raise ArgumentError(f"q.df: values= must be 'objs' or 'ids', not {values!r}")
        names = self._columns(columns)
        table, calls = self._table(names, values == "ids")
        frame = pd.DataFrame({name: value_series(column) for name, column in zip(names, table)}, columns=names)
        frame.attrs["mandala_ast.calls"] = calls
        frame.attrs["mandala_ast.rows"] = RowValues(names, table)
        return frame

    def matched_calls(self) -> QueryMatches:
        """Ids of every stored call some row matched (what a delete block removes)."""
        self._table(list(self.pattern.columns), True)
        return QueryMatches(row_id for row in self._calls for row_id in row)

    def draw(self, *, format: str = "svg", path: str | None = None) -> Any:
        """A picture of the pattern: op calls as boxes, variables as ellipses."""
        from ..pictures import render
        from .drawing import pattern_graph

        picture = render(pattern_graph(self.pattern), format=format)
        if path is not None:
            picture.save(path)
        return picture

    # -- running the statement -------------------------------------------------------------

    def _columns(self, wanted: tuple) -> list[str]:
        if len(wanted) == 1 and isinstance(wanted[0], (list, tuple)):
            wanted = tuple(wanted[0])  # q.df(["a", "b"]), as pandas selects columns
        for name in wanted:
            if not isinstance(name, str):
                raise ArgumentError(f"q.df: columns are variable names (str), not {name!r}")
        known = list(self.pattern.columns)
        unknown = [name for name in wanted if name not in self.pattern.columns]
        if unknown:
            message = f"no variable {unknown[0]!r} in the query block; its variables: {known}"
            raise UnknownColumnError(message + self._inline_hint(unknown[0]))
        return list(wanted) or known

    def _inline_hint(self, name: str) -> str:
        """What to write when ``name`` is an argument given an unnamed variable (``alpha=Q()``):
        columns are the names the block assigns, and that one is assigned to none."""
        for call in self.pattern.calls:
            given = call.inputs.get(name)
            if isinstance(given, FreeVar) and given.name is None:
                return (
                    f". {name}=Q() is given in the call to {call.op.name}, unnamed: write "
                    f"`{name} = Q()` above it and pass `{name}={name}` to make it a column"
                )
            if isinstance(given, Node) and given.name is None:
                return (
                    f". {name} of the call to {call.op.name} is given a value the block does not "
                    f"name: assign it to a name and pass that to make it a column"
                )
        return ""

    def _compile(self, edges: Edges = _CONTENT_TOO) -> CompiledQuery:
        """The statement, the calls under an ``if`` found as ``edges`` says (tracked.py). Its
        variants differ in their join conditions only: the same columns."""
        if self._compile_with is None:
            self._compile_with = self._compiler()
        if edges not in self._compiled:
            self._compiled[edges] = self._compile_with(tracked=edges.by_history, loose=dict(edges.loose))
        return self._compiled[edges]

    def _compiler(self) -> Callable[..., CompiledQuery]:
        """``compile_pattern`` given what the file and the code say of the pattern's ops."""
        self._check_pattern()
        storage = self.storage
        # Evaluated lazily, maybe after a helper was redefined (a reload, a notebook cell)
        # since the block was entered: notice it as a block entered now would, or rows
        # computed under the old code would pass for current.
        storage.engine.enter_block()
        storage.commit()
        versions = storage.engine.versions
        defaults = {
            call.number: versions.defaults(call.op) for call in self.pattern.calls if hasattr(call.op, "default_cids")
        }
        cids = list({cid for per_call in defaults.values() for cid in per_call.values()})
        stored = frozenset(storage.engine.store.find_values(cids)) if cids else frozenset()
        invalid = _invalid_states(storage, self.pattern.calls)
        return functools.partial(compile_pattern, self.pattern, defaults, invalid, stored)

    def _statement(self) -> CompiledQuery:
        """The statement to run on the file as it stands. Which calls may be found by history
        alone depends on what is stored: asked again in each read's snapshot, or a call under
        an ``if`` that uncompiled code stored since (here, or in another process, after
        ``q.sql`` or before a read again after a deletion) would be missed."""
        self._compile()  # (first: it commits, which it cannot inside a read snapshot)
        # Under the storage's lock (a snapshot takes it): the temp tables tracked.py fills are
        # the connection's, which threads share; refilled by ``q.sql`` outside it, they were
        # emptied while another thread's statement read them.
        with self.storage.engine.store.snapshot():
            return self._compile(tracked_calls(self.storage.engine.store.conn, self.pattern))

    def _check_pattern(self) -> None:
        used = {node.number for call in self.pattern.calls for node in call.inputs.values() if isinstance(node, Node)}
        for node in self.pattern.nodes:
            if isinstance(node, FreeVar) and node.number not in used:
                raise QueryError(
                    f"query variable {node.label} = Q() is not an argument of any op call, so "
                    f"nothing stored can match it{self._plain_calls_hint(node)}"
                )
        if not self.pattern.calls:
            raise QueryError("the query block calls no op: there is nothing to match")

    def _plain_calls_hint(self, node: Node) -> str:
        """Why an op called inside a plain function given the variable matched nothing."""
        derived = [d for d in self.pattern.nodes if isinstance(d, Derived) and node in d.inputs() and d.text]
        # Only a function of the user's may call ops (`prep(x)`); `x * 2` or `len(x)` cannot.
        taking = [d.text for d in derived if d.fn is call_value and isinstance(d.args[0], types.FunctionType)]
        if derived and not taking:
            return (
                f"; it is only used in `{derived[0].text}`, computed from it: a query matches what op "
                f"calls were given, not what was computed from it. Give {node.label} to an op as it "
                f"is, or list its values (`for {node.label} in [...]:`)"
            )
        if not taking:
            return ""
        return (
            f"; it is only passed to `{taking[0]}`, computed row by row from matched values, "
            "so op calls inside it match nothing: make that function a @workflow (its op "
            "calls are then matched) or call the ops in the block"
        )

    def _sql_rows(self) -> list[tuple]:
        if self._raw is None:
            self._compile()  # (it commits: not inside a read snapshot)
            with self.storage.engine.store.snapshot():  # (row_table's reads too: see _statement)
                compiled = self._statement()
                conn = self.storage.engine.store.conn
                self._epoch = deletion_epoch(conn)  # before the rows: a deletion between is seen next time
                self._raw = conn.execute(compiled.sql, compiled.params).fetchall()
        return self._raw

    def _matches(self) -> list[dict[int, Any]]:
        if self._rows is None:
            compiled = self._compile()
            matches = _expand_domains(self.pattern, compiled, _node_ids(self.pattern, compiled, self._sql_rows()))
            self._rows = list(_same_items(self.pattern, matches))
        return self._rows

    def _table(self, names: list[str], ids: bool) -> tuple[list, RowCalls]:
        """The distinct rows as columns (in ``names`` order), and each row's matched calls.

        Rows and values are read in one snapshot of the file, so a deletion another process
        commits meanwhile is not seen half (rows whose values are gone). Its value files,
        though, are removed outside any snapshot: a load that misses one while the file's
        deletion counter moved reads the rows again, in a new snapshot without them.
        """
        with damage_as_error(self.storage.path, "running a query"):
            self._compile()  # (it commits: not inside a read snapshot)
            conn = self.storage.engine.store.conn
            for attempt in range(_READS):
                try:
                    with self.storage.engine.store.snapshot():
                        self._forget_deleted()
                        return self._table_of(names, ids)
                except (CorruptValueError, LookupError) as error:
                    if deletion_epoch(conn) == self._epoch:
                        raise  # not a deletion's doing: damage
                    if attempt == _READS - 1:
                        raise StorageBusyError(
                            f"{self.storage.path}: other processes deleted calls this query was reading, "
                            f"{_READS} times in a row, while it read them; the file is intact: run the query again"
                        ) from error
            raise AssertionError("unreachable")

    def _forget_deleted(self) -> None:
        """Rows read before a deletion (``storage.delete_calls(q.df()[...])``, another process's)
        may name calls and values that are gone: read the file again. (Calls stored since are
        not a reason to: a result keeps the rows of its first read, as a DataFrame would.)"""
        if self._raw is not None and deletion_epoch(self.storage.engine.store.conn) != self._epoch:
            self._raw = self._rows = None
            self._calls = RowCalls()

    def _table_of(self, names: list[str], ids: bool) -> tuple[list, RowCalls]:
        compiled = self._compile()
        plain = is_plain(self.pattern, compiled)
        if plain or takes(self.pattern, compiled):
            from ..progress import stages  # a query over a million calls takes seconds

            with stages("query", 2) as steps:
                steps.step("matching stored calls")
                rows = self._sql_rows()
                steps.step(f"loading {len(rows):,} rows")
                found: tuple[list, RowCalls] | None
                if plain:
                    found = plain_table(self.storage, self.pattern, compiled, rows, names, ids)
                else:  # None: an expression raised for some row; the row-wise evaluation decides
                    found = table(self.storage, self.pattern, compiled, rows, names, ids)
            if found is not None:
                self._calls = found[1]
                return found
        return self.row_table(names, ids)

    def row_table(self, names: list[str], ids: bool) -> tuple[list, RowCalls]:
        """:meth:`_table` a row at a time: any pattern, each expression computed only in the
        rows that need it (the reference the column-wise evaluations agree with)."""
        matches = self._matches()
        # Shown as ids, values are loaded only for what reads them: expressions and guards.
        guarded = any(c.guard for c in self.pattern.calls) or any(a.guard for s in self.pattern.columns.values() for a in s)
        derived = any(isinstance(node, Derived) for node in self.pattern.nodes)
        values = _Values(self.storage, self.pattern, matches) if not ids or derived or guarded else None
        from ..progress import progress  # this path costs ~40 µs a row: big queries take a while

        found = [self._row(_Row(match, values), names, ids) for match in progress(matches, desc="query rows", unit="row")]
        # A guarded call whose expression argument (`inc(x + 1)`) matched no stored call is
        # missing from its row, not a reason to drop the row: keep, per match of the required
        # calls, the rows that lost the fewest guarded calls.
        fewest: dict[tuple, int] = {}
        for row in found:
            if row is not None:
                fewest[row.base] = min(fewest.get(row.base, row.lost), row.lost)
        kept = [row for row in found if row is not None and row.lost <= fewest[row.base]]
        filled = filled_by([self._every(row.evaluated) for row in kept]) if any(r.holes for r in kept) else {}
        # A row shown once stands for the calls of the rows equal to it, and of those it fills.
        key_columns = [list(column) for column in zip(*(row.key for row in kept))] if names else []
        calls = RowCalls.from_rows([row.calls for row in kept])
        distinct = distinct_rows(key_columns, len(kept), filled)
        rows = [row.values for row in kept] if distinct is None else [kept[i].values for i in distinct.keep]
        self._calls = calls if distinct is None else calls.kept(distinct)
        return (list(zip(*rows)) if rows else [() for _ in names]), self._calls

    def _every(self, evaluated: _Row) -> tuple:
        """A row's content ids of every variable, and the branches it took (holes.py)."""
        every = tuple(_or_apart(_column_id, evaluated, a) for a in self.pattern.columns.values())
        return every + tuple(_or_apart(g.holds, evaluated.value) for g in self.pattern.guards())

    def _row(self, evaluate: _Row, names: list[str], ids: bool) -> _Found | None:
        failed = evaluate.failed_calls(self.pattern)
        if any(not call.optional for call in failed):
            return None
        for call in failed:
            evaluate.unmatch(call)
        key, row = [], []
        for name in names:
            value, cid = evaluate.column(self.pattern.columns[name])
            key.append(cid)
            row.append(cid.hex() if ids and cid is not None else value)
        row_calls = tuple(
            evaluate.match[("call", call.number)]
            for call in self.pattern.calls
            if evaluate.match.get(("call", call.number)) is not None
            and (call.guard is None or call.guard.holds(evaluate.value))
        )
        # What the row is without its guarded calls: the required calls and the loop values.
        base = tuple(evaluate.match.get(("call", c.number)) for c in self.pattern.calls if not c.optional)
        base += tuple(evaluate.match.get(n.number) for n in self.pattern.nodes if isinstance(n, DomainVar))
        holes = any(_or_apart(_hole, evaluate, c) is True for c in self.pattern.calls if c.optional)
        return _Found(tuple(key), tuple(row), row_calls, base, len(failed), evaluate, holes)


def _or_apart(compute: Callable[..., Any], *args: Any) -> Any:
    """``compute(*args)``, or where it raises (a column no shown value needed in this row), a
    key equal to no other: the row is then told apart from every other, never filled (holes.py)."""
    try:
        return compute(*args)
    except Exception:
        return object()


def _column_id(evaluated: _Row, assignments: list) -> bytes | None:
    return evaluated.column(assignments)[1]


def _hole(evaluated: _Row, call: CallNode) -> bool:
    """Whether guarded ``call`` matched no stored call in this row, where its guard holds."""
    guard = call.guard
    return evaluated.match.get(("call", call.number)) is None and guard is not None and guard.holds(evaluated.value)


@dataclass
class _Found:
    """One evaluated match: its distinct-row key, values, matched calls, the match of its
    required calls, how many guarded calls it lost, its evaluation, and whether a guarded
    call matched nothing in it (a hole another row may fill: holes.py)."""

    key: tuple
    values: tuple
    calls: tuple
    base: tuple
    lost: int
    evaluated: _Row
    holes: bool


# -- rows: content ids of every variable ---------------------------------------------------------


def _invalid_states(storage: Storage, calls: Iterable[CallNode]) -> dict[int, list[bytes]]:
    """Per call node, the dependency states changed since for its op: their calls are
    invisible to queries. Judged for the op, as run blocks judge them: a call stored before
    its op said ``ignore_env=`` (or ``track_files=False``) still matches after the ignored
    input changed."""
    versions = storage.engine.versions
    rows = storage.engine.store.conn.execute("SELECT DISTINCT deps_id FROM dep_sets").fetchall()
    invalid = [deps_id for (deps_id,) in rows if not versions.is_valid(deps_id)]
    return {
        call.number: [deps_id for deps_id in invalid if not versions.is_valid(deps_id, call.op)]
        if invalid and hasattr(call.op, "ignores_env") else invalid
        for call in calls
    }


def _node_ids(pattern: Pattern, compiled: CompiledQuery, cursor: Iterable[tuple]) -> Iterable[dict]:
    outputs = [(call, compiled.call_columns[call.number]) for call in pattern.calls]
    var_columns = list(compiled.var_columns.items())
    derived = list(compiled.derived_inputs.items())
    for row in cursor:
        match: dict[Any, Any] = {}
        for call, column in outputs:
            row_id, packed = row[column], row[column + 1]
            match[("call", call.number)] = row_id
            for out in call.outputs:
                match[out.number] = None if packed is None else _output_cid(packed, out.index)
                match[("inline", out.number)] = packed
        for number, column in var_columns:
            match[number] = row[column]
        for (call_number, position), column in derived:
            match[("input", call_number, position)] = row[column]
        yield match


def _output_cid(packed: bytes, index: int) -> bytes:
    if index == 0:
        return packed[:32]
    from ..packing import unpack_outputs

    return unpack_outputs(packed)[index][0]


def _expand_domains(pattern: Pattern, compiled: CompiledQuery, matches: Iterable[dict]) -> Iterable[dict]:
    """Loop variables the statement does not bind (no op call, or only calls under an ``if``,
    use them) take each of their values in turn, as the run block ran its body once per
    value; tuple targets keep their items together."""
    free = [n for n in pattern.nodes if isinstance(n, DomainVar) and n.number not in compiled.var_columns]
    groups: dict[Any, list[DomainVar]] = {}
    for node in free:
        groups.setdefault(node.group if node.group is not None else ("single", node.number), []).append(node)
    choices = [_group_choices(nodes) for nodes in groups.values()]
    for match in matches:
        if not choices:
            yield match
            continue
        for combination in itertools.product(*choices):
            expanded = dict(match)
            for assignment in combination:
                expanded.update(assignment)
            yield expanded


def _same_items(pattern: Pattern, matches: Iterable[dict]) -> Iterable[dict]:
    """``for x, y in [(1, 10), (2, 20)]``: x and y must come from the same item."""
    groups: dict[int, list[DomainVar]] = {}
    for node in pattern.nodes:
        if isinstance(node, DomainVar) and node.group is not None:
            groups.setdefault(node.group, []).append(node)
    allowed = [
        ([n.number for n in nodes], {tuple(content_id(n.values[i]) for n in nodes) for i in range(len(nodes[0].values))})
        for nodes in groups.values()
    ]
    for match in matches:
        if all(tuple(match.get(number) for number in numbers) in items for numbers, items in allowed):
            yield match


def _group_choices(nodes: list[DomainVar]) -> list[dict]:
    length = len(nodes[0].values)
    return [
        {node.number: content_id(node.values[i]) for node in nodes} | {("plain", node.number): node.values[i] for node in nodes}
        for i in range(length)
    ]


class _Values:
    """Content id -> value for every id the matched rows need, loaded in bulk."""

    def __init__(self, storage: Storage, pattern: Pattern, matches: list[dict]) -> None:
        self.storage = storage
        # Literal loop values are known without loading (and a parameter's default, matched
        # for calls stored before the parameter existed, may not be stored at all).
        self.values: dict[bytes, Any] = {
            content_id(value): value
            for node in pattern.nodes if isinstance(node, DomainVar)
            for value in node.values
        }
        inline: dict[bytes, tuple[str, bytes]] = {}
        wanted: set[bytes] = set()
        for match in matches:
            for key, item in match.items():
                if type(key) is int and item is not None:
                    wanted.add(item)
                elif type(key) is tuple and key[0] == "inline" and item is not None:
                    _collect_inline(item, inline)
        for cid, (codec, data) in inline.items():
            if cid in wanted:
                self.values[cid] = codecs.decode(codec, data)
        self._load(wanted - self.values.keys())

    def _load(self, cids: set[bytes]) -> None:
        self.values.update(self.storage.engine.loader.decode_values(list(cids)))

    def __getitem__(self, cid: bytes) -> Any:
        try:
            return self.values[cid]
        except KeyError:
            raise LookupError(f"value {cid.hex()} is missing from {self.storage!r}") from None


def _collect_inline(packed: bytes, into: dict) -> None:
    from ..packing import unpack_outputs

    for cid, codec, data in unpack_outputs(packed):
        if codec is not None:
            into[cid] = (codec, data)


class _Row:
    """One match: the value of any node, derived ones computed on first use."""

    def __init__(self, match: dict, values: _Values | None) -> None:
        self.match = match
        self.values = values
        self.derived: dict[int, tuple[Any, bytes | None]] = {}

    def value(self, node: Node) -> Any:
        return self.entry(node)[0]

    def entry(self, node: Node) -> tuple[Any, bytes | None]:
        if isinstance(node, Derived):
            known = self.derived.get(node.number)
            if known is None:
                known = self.derived[node.number] = self._compute(node)
            return known
        cid = self.match.get(node.number)
        if cid is None:
            return None, None
        plain = self.match.get(("plain", node.number), _NOTHING)
        if plain is not _NOTHING:
            return plain, cid
        return (self.values[cid] if self.values is not None else None), cid

    def _compute(self, node: Derived) -> tuple[Any, bytes | None]:
        if any(self.value(arg) is None and self._missing(arg) for arg in node.inputs()):
            return None, None
        value = node.compute(self.value)
        try:
            return value, content_id(value)
        except Exception:  # an unhashable derived value still shows; rows keep it apart
            return value, id(value).to_bytes(8, "little")

    def _missing(self, node: Node) -> bool:
        return self.entry(node)[1] is None

    def failed_calls(self, pattern: Pattern) -> list[CallNode]:
        """Calls whose expression argument (``f(x + 1)``), or loop variable expanded in
        Python, has other content than the stored input, and the guarded calls matched
        through their outputs."""
        failed: list[CallNode] = []
        for call in pattern.calls:
            if self.match.get(("call", call.number)) is None:
                continue
            if any(isinstance(node, OutputVar) and node.call in failed for node in call.inputs.values()):
                failed.append(call)
                continue
            for position, node in enumerate(call.inputs.values()):
                if ("input", call.number, position) not in self.match:
                    continue
                stored = self.match[("input", call.number, position)]
                # (only derived inputs and loop variables, both Nodes, have "input" entries)
                if stored is not None and self.entry(node)[1] != stored:  # type: ignore[arg-type]
                    failed.append(call)
                    break
        return failed

    def unmatch(self, call: CallNode) -> None:
        """Treat a guarded call as not found in this row."""
        self.match[("call", call.number)] = None
        for out in call.outputs:
            self.match[out.number] = None
        self.derived.clear()

    def column(self, assignments: list) -> tuple[Any, bytes | None]:
        result: tuple[Any, bytes | None] = (None, None)
        for assignment in assignments:
            if assignment.guard is not None and not assignment.guard.holds(self.value):
                continue
            if isinstance(assignment.value, Node):
                result = self.entry(assignment.value)
            else:
                result = (assignment.value, content_id(assignment.value))
        return result


_NOTHING = object()
