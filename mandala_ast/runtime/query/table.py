"""The table of a pattern with ``if`` guards or derived expressions, built a column at a time.

The row-wise evaluation (result.py) builds a dict of content ids per match and computes each
derived value and guard through a chain of method calls: ~40 µs a row, 20 s for 500k rows.
Here every variable is a column: stored values are decoded once per distinct content id (as
columns.py does for plain patterns), each derived expression is computed over its whole column
(vectorised.py: numpy where that is exact, the expression's own function row by row where not),
each ``if`` guard is a column of truths. Rows come out in the same order, with the same values,
ids and matched calls as the row-wise evaluation gives.

Two things stay with the row-wise evaluation (:func:`table` returns None):

- patterns it cannot take: a loop variable Python expands (one only calls under an ``if`` use);
- an expression that raises for some row. Here every expression is computed for every row
  whose inputs exist; the row-wise evaluation computes one only where the row needs it (not
  under a guard that fails), and so raises exactly when the query block's own logic would.
  It runs again from the start and decides.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from ..hashing import content_id
from ..packing import unpack_outputs
from .columns import NOT_STORED, Decoder, SqlColumns, gaps_of, inline_values
from .distinct import Distinct, distinct_rows, repeated_rows
from .holes import filled_by
from .pattern import Derived, DomainVar, Guard, Node, OutputVar, Pattern
from .row_calls import RowCalls
from .sql import CompiledQuery
from .vectorised import Column, evaluate

if TYPE_CHECKING:
    from ..storage import Storage

__all__ = ["table", "takes"]


def takes(pattern: Pattern, compiled: CompiledQuery) -> bool:
    """Whether each SQL row is at most one row of the pattern (see the module's doc)."""
    return all(node.number in compiled.var_columns for node in pattern.nodes if isinstance(node, DomainVar))


def table(storage: Storage, pattern: Pattern, compiled: CompiledQuery, rows: list[tuple],
          names: list[str], ids: bool) -> tuple[list[list], RowCalls] | None:
    """Columns (in ``names`` order) of the distinct rows and each row's matched calls, or None
    when the row-wise evaluation must decide (see the module's doc)."""
    if not takes(pattern, compiled):
        return None
    try:
        with _numpy_raises():
            rows = _same_items(pattern, compiled, rows)
            if compiled.derived_inputs:
                rows = _checked(storage, pattern, compiled, rows)
            return _Table(storage, pattern, compiled, rows).build(names, ids)
    except Exception:  # an expression raised for some row: see the module's doc
        return None


@contextlib.contextmanager
def _numpy_raises() -> Iterator[None]:
    """numpy's floating-point warnings raise here (a numpy scalar divided by zero warns where a
    float raises): every row is computed, rows a failing ``if`` leaves out too, which must not
    warn. The row-wise evaluation then warns where the block's own logic computes. (numpy's
    error state is per thread and context; numpy is not imported for it.)"""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        yield
        return
    with numpy.errstate(divide="raise", over="raise", invalid="raise"):
        yield


def _same_items(pattern: Pattern, compiled: CompiledQuery, rows: list[tuple]) -> list[tuple]:
    """``for n, a in [(1, .1), (2, .2)]``: the rows whose n and a come from the same item."""
    groups: dict[int, list[DomainVar]] = {}
    for node in pattern.nodes:
        if isinstance(node, DomainVar) and node.group is not None:
            groups.setdefault(node.group, []).append(node)
    for nodes in groups.values():
        items = {tuple(content_id(n.values[i]) for n in nodes) for i in range(len(nodes[0].values))}
        columns = [compiled.var_columns[n.number] for n in nodes]
        rows = [row for row in rows if tuple(row[c] for c in columns) in items]
    return rows


def _checked(storage: Storage, pattern: Pattern, compiled: CompiledQuery, rows: list[tuple]) -> list[tuple]:
    """The rows whose calls take an expression (``inc(x + 1)``) with that expression's value.

    A required call whose stored input differs drops its row; a call under an ``if`` is
    unmatched instead (its call and outputs None, and so the calls that used its outputs),
    and of the rows one match of the required calls gives, those that lost the fewest such
    calls stay: what the row-wise evaluation does.
    """
    found = _Table(storage, pattern, compiled, rows)
    expressions = [call.inputs[name] for call in pattern.calls for name in call.inputs]
    found.prepare([], [n for n in expressions if isinstance(n, Derived)], True)
    failed: dict[int, list[bool]] = {}
    for call in pattern.calls:
        failed[call.number] = found.failed(call, failed)
    required = [c.number for c in pattern.calls if not c.optional]
    keep = [not any(failed[n][i] for n in required) for i in range(found.count)]
    guarded = [c for c in pattern.calls if c.optional]
    lost = [sum(failed[c.number][i] for c in guarded) for i in range(found.count)]
    bases = list(zip(*(found.sql[compiled.call_columns[n]] for n in required),
                     *(found.sql[compiled.var_columns[d.number]] for d in pattern.nodes if isinstance(d, DomainVar))))
    fewest: dict[tuple, int] = {}
    for base, count, kept in zip(bases, lost, keep):
        if kept:
            fewest[base] = min(fewest.get(base, count), count)
    unmatched = [[compiled.call_columns[c.number], failed[c.number]] for c in guarded]
    return [
        _unmatch(row, i, unmatched) if count else row
        for i, (row, base, count, kept) in enumerate(zip(rows, bases, lost, keep))
        if kept and count <= fewest[base]
    ]


def _unmatch(row: tuple, i: int, unmatched: list) -> tuple:
    """``row`` without the guarded calls that failed in it (row ``i``): no call, no outputs."""
    values = list(row)
    for column, failed in unmatched:
        if failed[i]:
            values[column] = values[column + 1] = None
    return tuple(values)


class _Table:
    def __init__(self, storage: Storage, pattern: Pattern, compiled: CompiledQuery, rows: list[tuple]) -> None:
        self.storage, self.pattern, self.compiled = storage, pattern, compiled
        self.sql = SqlColumns(rows)
        self.count = len(rows)
        self.cids: dict[int, list] = {}  # node number -> content id per row (None: missing)
        self.values: dict[int, list] = {}  # node number -> value per row (None where missing)
        self.present: dict[int, list[bool] | None] = {}  # None: present in every row
        self.truths: dict[int, list[bool]] = {}  # id(guard) -> whether it holds, per row

    def build(self, names: list[str], ids: bool) -> tuple[list[list], RowCalls]:
        sources = [self.pattern.columns[name] for name in names]
        guards = [c.guard for c in self.pattern.calls] + [a.guard for s in sources for a in s]
        conditions = [node for guard in guards if guard is not None for node in guard.nodes()]
        shown = [a.value for s in sources for a in s if isinstance(a.value, Node)]
        self.prepare(conditions, shown, ids)
        columns = [self._column(assignments) for assignments in sources]
        calls = self._row_calls()
        filled = self._filled(columns, names, ids) if self._has_holes() else {}
        distinct = self._distinct(columns, filled)
        if ids:
            shown_columns = [[None if cid is None else cid.hex() for cid in c.keys()] for c in columns]
        else:
            shown_columns = [c.values for c in columns]
        if distinct is None:
            return shown_columns, calls
        return [[*map(column.__getitem__, distinct.keep)] for column in shown_columns], calls.kept(distinct)

    # -- variables ----------------------------------------------------------------------------

    def prepare(self, conditions: list[Node], shown: list[Node], ids: bool, keyed: Sequence[Node] = ()) -> None:
        """Content ids of every variable involved, values of those an expression or a guard
        reads or the table shows (not as ids), and the derived columns computed (``keyed``:
        variables only told apart, by their ids)."""
        derived: dict[int, Derived] = {}
        valued = {n.number: n for n in (*conditions, *([] if ids else shown)) if not isinstance(n, Derived)}
        stack = [*conditions, *shown, *keyed]
        while stack:
            node = stack.pop()
            if isinstance(node, Derived):
                if node.number not in derived:
                    derived[node.number] = node
                    stack += node.inputs()
                    valued.update((n.number, n) for n in node.inputs() if not isinstance(n, Derived))
            elif node.number not in self.cids:
                self._ids_of(node)
        self._load([valued[n] for n in sorted(valued)])
        for number in sorted(derived):  # creation order: inputs before what uses them
            self._derive(derived[number])

    def _ids_of(self, node: Node) -> None:
        if isinstance(node, OutputVar):
            packed = self.sql[self.compiled.call_columns[node.call.number] + 1]
            if node.index == 0:
                cids = [None if p is None else p[:32] for p in packed]
            else:
                cids = [None if p is None else unpack_outputs(p)[node.index][0] for p in packed]
        else:
            cids = self.sql[self.compiled.var_columns[node.number]]
        self.cids[node.number] = cids
        self.present[node.number] = [c is not None for c in cids] if None in cids else None

    def _load(self, nodes: list[Node]) -> None:
        """Values of stored variables: first outputs from their call rows, the rest by content
        id, each decoded once, those not inline loaded in one statement."""
        decoder = Decoder(self.storage)
        cast(dict, decoder.values)[None] = None  # a missing variable's value
        found: list[tuple[list, list[int]] | None] = []
        inline = []
        for node in nodes:
            if isinstance(node, OutputVar) and node.index == 0:
                column = self._first_outputs(node)
                found.append(column)
                inline.append((self.cids[node.number], *column))
                continue
            if isinstance(node, OutputVar):
                packed = self.sql[self.compiled.call_columns[node.call.number] + 1]
                decoder.take_later_outputs([p for p in packed if p is not None], node.index)
            elif isinstance(node, DomainVar):
                decoder.take_literals(node.values)
            found.append(None)
        cid_columns = [self.cids[node.number] for node in nodes]
        looked_up = iter(decoder.look_up([c for f, c in zip(found, cid_columns) if f is None], inline))
        columns = [next(looked_up) if f is None else f for f in found]
        for node, values in zip(nodes, decoder.fill(columns, cid_columns)):
            self.values[node.number] = values

    def _first_outputs(self, node: OutputVar) -> tuple[list, list[int]]:
        packed = self.sql[self.compiled.call_columns[node.call.number] + 1]
        present = self.present[node.number]
        if present is None:
            return inline_values(packed)
        values, _ = inline_values(list(itertools.compress(packed, present)))
        full = _scatter(values, present, self.count)
        return full, gaps_of(full)

    def _derive(self, node: Derived) -> None:
        """``node``'s column: None where an input is missing, computed everywhere else."""
        present = _all_present([self.present[n.number] for n in node.inputs()])

        def operand(value: Any) -> Any:
            if not isinstance(value, Node):
                return value
            column = self.values[value.number]
            return Column(column if present is None else list(itertools.compress(column, present)))

        args = tuple(map(operand, node.args))
        kwargs = {name: operand(value) for name, value in node.kwargs.items()}
        count = self.count if present is None else sum(present)
        found = evaluate(node.fn, args, kwargs, count)
        self.values[node.number] = found if present is None else _scatter(found, present, self.count)
        self.present[node.number] = present

    def derived_ids(self, node: Derived) -> list:
        """Content ids of a derived column (computed only when rows must be told apart by it,
        or shown as ids: ~1 µs a value)."""
        cids = self.cids.get(node.number)
        if cids is None:
            values, present = self.values[node.number], self.present[node.number]
            flags = present if present is not None else itertools.repeat(True)
            cids = self.cids[node.number] = [_value_id(v) if p else None for v, p in zip(values, flags)]
        return cids

    def derived_id_at(self, node: Derived, row: int) -> bytes | None:
        """Row ``row``'s entry of :meth:`derived_ids`, computed alone unless all are."""
        cids = self.cids.get(node.number)
        if cids is not None:
            return cids[row]
        present = self.present[node.number]
        return _value_id(self.values[node.number][row]) if present is None or present[row] else None

    def failed(self, call: Any, failed: dict[int, list[bool]]) -> list[bool]:
        """Per row, whether ``call`` matched but an expression it takes has another value than
        its stored input, or it used the output of a call that failed so (in ``failed``)."""
        hids = self.sql[self.compiled.call_columns[call.number]]
        found = [h is not None for h in hids]
        wrong = [False] * self.count
        for position, node in enumerate(call.inputs.values()):
            if isinstance(node, OutputVar) and node.call.number in failed:
                wrong = list(map(operator.or_, wrong, failed[node.call.number]))
            column = self.compiled.derived_inputs.get((call.number, position))
            if column is not None:
                stored, computed = self.sql[column], self.derived_ids(node)
                differs = [s is not None and c != s for s, c in zip(stored, computed)]
                wrong = list(map(operator.or_, wrong, differs))
        return list(map(operator.and_, found, wrong))

    # -- guards, columns, calls ---------------------------------------------------------------

    def _truth(self, guard: Guard | None) -> list[bool] | None:
        """Per row, whether every condition of ``guard`` is as wanted (None: no guard)."""
        if guard is None:
            return None
        found = self.truths.get(id(guard))
        if found is None:
            for node, wanted in guard.conditions:
                truth = list(map(bool, self.values[node.number]))  # a missing value is None
                if not wanted:
                    truth = list(map(operator.not_, truth))
                found = truth if found is None else list(map(operator.and_, found, truth))
            self.truths[id(guard)] = found = found if found is not None else [True] * self.count
        return found

    def _column(self, assignments: list) -> _NamedColumn:
        """The last assignment whose guard holds gives each row its value (None if none)."""
        column = _NamedColumn(self, self.count)
        for assignment in assignments:
            column.assign(assignment.value, self._truth(assignment.guard))
        return column

    def _row_calls(self) -> RowCalls:
        """Each row's calls: those it matched whose guard holds."""
        columns = []
        for call in self.pattern.calls:
            hids = self.sql[self.compiled.call_columns[call.number]]
            truth = self._truth(call.guard)
            columns.append(hids if truth is None else [h if t else None for h, t in zip(hids, truth)])
        return RowCalls(columns, sparse=any(c.optional for c in self.pattern.calls))

    def _filled(self, columns: list[_NamedColumn], names: list[str], ids: bool) -> dict[int, int]:
        """The rows another row fills (holes.py), told apart by every variable, shown or not,
        and by the branches they took (a guard may read a value no column shows)."""
        unshown = [s for n, s in self.pattern.columns.items() if n not in names]
        conditions = [node for s in unshown for a in s if a.guard is not None for node in a.guard.nodes()]
        self.prepare(conditions, [], ids, [a.value for s in unshown for a in s if isinstance(a.value, Node)])
        every: list[list] = [c.keys() for c in (*columns, *(self._column(assignments) for assignments in unshown))]
        every += [cast(list, self._truth(guard)) for guard in self.pattern.guards()]
        return filled_by(list(zip(*every)))

    def _has_holes(self) -> bool:
        """Whether a guarded call matched no stored call in a row where its guard holds."""
        for call in self.pattern.calls:
            if not call.optional:
                continue
            hids, truth = self.sql[self.compiled.call_columns[call.number]], self._truth(call.guard)
            if any(h is None and t for h, t in zip(hids, cast(list, truth))):
                return True
        return False

    def _distinct(self, columns: list[_NamedColumn], filled: dict[int, int]) -> Distinct | None:
        """None when all rows are distinct; else the rows kept, and the rows each stands for,
        rows another row fills (``filled``, holes.py) included."""
        count = self.count
        if count <= 1 and columns:
            return None
        # Rows that differ in a stored id differ, whatever the derived columns hold: their
        # ids, ~1 µs a value, are computed only for the rows whose stored ids repeat (and the
        # rows filled), which are all distinct_rows reads (1.5 s for 3 derived columns at 500k
        # rows when one row repeated).
        keys: list[Any] = [c.keys() if c.stored_only() else _RowKeys(c) for c in columns]
        stored = [k for k in keys if not isinstance(k, _RowKeys)]
        if not stored:  # (derived columns only: every row's keys are compared)
            return distinct_rows([c.keys() for c in columns], count, filled)
        suspects = repeated_rows(stored, count)
        if not suspects and not filled:
            return None
        return distinct_rows(keys, count, filled, suspects)


class _NamedColumn:
    """One column of the table: per row its value and which assignment gave it."""

    def __init__(self, table: _Table, count: int) -> None:
        self.table = table
        self.count = count
        self.values: list = [None] * count
        self.sources: list[Any] = []  # the assignments' values (a node or a constant)
        self.chosen: list[int | None] | None = [None] * count  # None: the only source everywhere

    def assign(self, value: Any, truth: list[bool] | None) -> None:
        source = len(self.sources)
        self.sources.append(value)
        if isinstance(value, Node):  # (shown as ids, a stored variable's value is not loaded)
            values = self.table.values.get(value.number) or itertools.repeat(None, self.count)
        else:
            values = itertools.repeat(value, self.count)
        if truth is None:
            self.values = list(values)
            self.chosen = None if source == 0 else [source] * self.count
            return
        if self.chosen is None:
            self.chosen = [0] * self.count
        self.values = [v if t else old for v, t, old in zip(values, truth, self.values)]
        self.chosen = [source if t else old for t, old in zip(truth, self.chosen)]

    def stored_only(self) -> bool:
        return all(isinstance(s, Node) and not isinstance(s, Derived) for s in self.sources)

    def key_at(self, row: int) -> Any:
        """Row ``row``'s entry of :meth:`keys`, computed alone."""
        source = 0 if self.chosen is None else self.chosen[row]
        if source is None or not self.sources:
            return None
        value = self.sources[source]
        if isinstance(value, Derived):
            return self.table.derived_id_at(value, row)
        if isinstance(value, Node):
            return self.table.cids[value.number][row]
        return content_id(value)

    def keys(self) -> list:
        """Each row's content id (None where no assignment's guard held)."""
        id_columns = [self._ids(source) for source in self.sources]
        if self.chosen is None:
            return id_columns[0] if id_columns else [None] * self.count
        return [None if k is None else id_columns[k][i] for i, k in enumerate(self.chosen)]

    def _ids(self, source: Any) -> list:
        if isinstance(source, Derived):
            return self.table.derived_ids(source)
        if isinstance(source, Node):
            return self.table.cids[source.number]
        return [content_id(source)] * self.count


class _RowKeys:
    """A column's keys a row at a time, for distinct_rows, which reads only the rows it
    compares."""

    def __init__(self, column: _NamedColumn) -> None:
        self.column = column

    def __getitem__(self, row: int) -> Any:
        return self.column.key_at(row)


def _value_id(value: Any) -> bytes:
    try:
        return content_id(value)
    except Exception:  # an unhashable derived value still shows; rows keep it apart
        return id(value).to_bytes(8, "little")


def _all_present(presents: list[list[bool] | None]) -> list[bool] | None:
    found = None
    for present in presents:
        if present is not None:
            found = present if found is None else list(map(operator.and_, found, present))
    return found


def _scatter(values: list, present: list[bool], count: int) -> list:
    """``values`` (one per present row) spread over ``count`` rows, None where absent."""
    full: list = [None] * count
    for i, value in zip(itertools.compress(range(count), present), values):
        full[i] = value
    return full


_ = NOT_STORED  # (inline_values marks values that are not inline with it; fill replaces them)
