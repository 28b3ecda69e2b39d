"""A pattern as one SQL statement over the calls and inputs tables.

Each call node becomes a subquery over ``calls`` joined with the ``inputs`` rows it
constrains (SQLite flattens these into the outer join, so they cost nothing):

    SELECT c.id, c.hid, c.outputs, i0.cid AS in0_cid, i0.src_call AS in0_src, ... FROM calls c
    JOIN call_inputs i0 ON i0.call_id = c.id AND i0.name = 'x' WHERE c.version_id = ?

Required nodes are inner-joined, guarded ones (under an ``if``) left-joined, in creation order
(required first), so every join condition refers only to subqueries already joined. A guarded
node is looked up per row: ``LEFT JOIN calls g1 ON g1.id IN (SELECT h1.id FROM (subquery) AS h1
WHERE conditions)``, then its input rows by primary key.

An edge "this input is that call's output k" holds by history when compiled code recorded
where the input came from (``src_call``), and by content when it did not (uncompiled code, or
a value that went through a container): then the input's content id must equal the output's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .pattern import CallNode, Const, Derived, DomainVar, FreeVar, Node, OutputVar, Pattern

__all__ = ["CompiledQuery", "compile_pattern"]

#: The index of inputs by content id (store.py creates it with the schema).
_CID_INDEX = "idx_inputs_cid"
#: The subqueries' names for an input's columns -> the call_inputs table's.
_INPUT_FIELDS = {"cid": "cid", "src": "src_call", "idx": "src_index"}


@dataclass
class CompiledQuery:
    """The statement, its parameters, and where each node's content id sits in a row."""

    sql: str
    params: list[Any]
    #: call node number -> index of its (hid, packed outputs) pair in a row
    call_columns: dict[int, int] = field(default_factory=dict)
    #: node number -> column index of the content id of a variable defined by an input
    var_columns: dict[int, int] = field(default_factory=dict)
    #: (call node number, input position) -> column of a stored input that a derived
    #: variable (or a loop variable Python expands) must equal, checked per row
    derived_inputs: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass
class _Use:
    call: CallNode
    position: int  # the input's position within its call node


def compile_pattern(pattern: Pattern, defaults: dict[int, dict[str, bytes]],
                    invalid_states: dict[int, list[bytes]], stored_defaults: frozenset[bytes] = frozenset(),
                    tracked: frozenset[int] = frozenset(), loose: Mapping[int, str] | None = None) -> CompiledQuery:
    """``defaults``: call node number -> first-seen default content ids of its op;
    ``invalid_states``: call node number -> the dependency states whose code changed for its
    op (their calls are not matched; an op ignoring a variable keeps the calls that read it);
    ``stored_defaults``: those defaults whose values are in the file (a ``Q()`` can load them);
    ``tracked``: the calls under an ``if`` none of whose stored calls lacks history
    (tracked.py): their edges are written by history alone; ``loose``: calls under an ``if``
    whose few calls without history on their one edge are in a temp table (call node number
    -> its name): found by history, or among those by content."""
    order = _join_order(pattern)
    definitions = _definitions(order)
    builder = _Builder(invalid_states, defaults, definitions, _edge_components(pattern))
    builder.stored_defaults = stored_defaults
    builder.tracked = tracked
    builder.loose = dict(loose or {})
    for call in order:
        builder.join(call)
    return builder.finish()


def _join_order(pattern: Pattern) -> list[CallNode]:
    """Required calls first, then guarded ones. (No required call consumes a guarded one's
    output: block.py refuses a value made under an ``if`` outside it.)"""
    return [c for c in pattern.calls if not c.optional] + [c for c in pattern.calls if c.optional]


def _definitions(order: list[CallNode]) -> dict[int, _Use]:
    """Which input defines each variable that is not an output: its first use in join order.

    A loop variable only calls under an ``if`` use is defined by none: its values would then
    come from the calls that matched, and a row whose condition fails has none. Python takes
    each of its values instead (result.py), and those calls are checked against it per row.
    """
    found: dict[int, _Use] = {}
    for call in order:
        for position, node in enumerate(call.inputs.values()):
            if isinstance(node, DomainVar) and call.optional:
                continue
            if isinstance(node, Node) and not isinstance(node, (OutputVar, Derived)):
                found.setdefault(node.number, _Use(call, position))
    return found


def _edge_components(pattern: Pattern) -> dict[int, int]:
    """Call node number -> a representative of the calls linked to it through edges (one
    call's output going into another) between required calls. (A call under an `if` is
    joined last, so edges through it cannot lead SQLite from one required call to another.)"""
    parent = {call.number: call.number for call in pattern.calls if not call.optional}

    def root(number: int) -> int:
        while parent[number] != number:
            number = parent[number]
        return number

    for call in pattern.calls:
        for node in call.inputs.values():
            if isinstance(node, OutputVar) and node.call.number in parent and call.number in parent:
                parent[root(node.call.number)] = root(call.number)
    return {number: root(number) for number in parent}


class _Builder:
    def __init__(self, invalid_states, defaults, definitions: dict[int, _Use],
                 components: dict[int, int]) -> None:
        self.invalid_states = invalid_states
        self.defaults = defaults
        self.definitions = definitions
        self.components = components
        self.joins: list[str] = []
        self.params: list[Any] = []
        self.columns: list[str] = []
        self.required: list[int] = []
        self.compiled = CompiledQuery("", [])
        #: call node number -> {input position: default content id} of the calls under an
        #: ``if`` joined by row (see _join_guarded), whose inputs are then plain table columns
        self.guarded_inputs: dict[int, dict[int, bytes]] = {}
        self.guarded_names: dict[int, list[str]] = {}  # their input names, by position
        self.joined: set[str] = set()  # the input rows of theirs joined so far
        #: the same defaults for every call, as _subquery found them
        self.left_defaults: dict[int, dict[int, bytes]] = {}
        self.stored_defaults: frozenset[bytes] = frozenset()
        self.tracked: frozenset[int] = frozenset()
        self.loose: dict[int, str] = {}

    def join(self, call: CallNode) -> None:
        alias = f"g{call.number}"
        if not call.optional:
            self.required.append(call.number)
        if not self.joins:
            subquery, sub_params = self._subquery(call)
            self.first = call.number
            self.joins.append(f"({subquery}) AS {alias}")
            self.params += sub_params
            self._where = self._conditions(call, alias)
        elif call.optional:
            self._join_guarded(call, alias)
        else:
            subquery, sub_params = self._subquery(call)
            conditions, condition_params = self._conditions(call, alias)
            on = " AND ".join(conditions) or "1"
            self.joins.append(f"JOIN ({subquery}) AS {alias} ON {on}")
            self.params += sub_params + condition_params
        self.compiled.call_columns[call.number] = len(self.columns)
        self.columns += [f"{alias}.hid", f"{alias}.outputs"]
        for position, node in enumerate(call.inputs.values()):
            use = self.definitions.get(node.number) if isinstance(node, Node) else None
            if isinstance(node, Node) and use is not None and use.call is call and use.position == position:
                self.compiled.var_columns[node.number] = len(self.columns)
                self.columns.append(self._input(call.number, position, "cid"))
            elif isinstance(node, Derived) or self._checked_loop_value(node):
                self.compiled.derived_inputs[(call.number, position)] = len(self.columns)
                self.columns.append(self._input(call.number, position, "cid"))

    def _join_guarded(self, call: CallNode, alias: str) -> None:
        """A call under an ``if``, looked up per row of the calls joined before it.

        As the right side of a LEFT JOIN, the call's subquery (a join of calls and inputs)
        cannot be flattened: SQLite materialized it, reading every stored call of the op
        (~4 s per 500k) even for a pattern of a handful of rows. Inside ``IN (...)`` the same
        subquery is flattened, and its conditions on the rows joined before find the call by
        index; the outer query then left-joins plain tables only: the call by row id and
        each of its inputs that the query reads by primary key (see _input).
        """
        inner = f"h{call.number}"
        subquery, sub_params = self._subquery(call)
        # A call whose few calls without history are in a temp table (tracked.py) is found by
        # either of two arms: by history, or among those calls by content. Each arm is a
        # search by index per row; one OR would make SQLite search the content index instead.
        arms = ("by_history", "loose") if call.number in self.loose else (None,)
        selects = []
        for arm in arms:
            conditions, condition_params = self._conditions(call, inner, arm)
            where = " AND ".join(conditions) or "1"
            selects.append(f"SELECT {inner}.id FROM ({subquery}) AS {inner} WHERE {where}")
            self.params += sub_params + condition_params
        self.joins.append(f"LEFT JOIN calls {alias} ON {alias}.id IN ({' UNION ALL '.join(selects)})")
        self.guarded_inputs[call.number] = self.left_defaults.get(call.number, {})
        self.guarded_names[call.number] = list(call.inputs)

    def _input(self, number: int, position: int, field: str) -> str:
        """The SQL of input ``position``'s ``field`` (cid, src, idx) of call node ``number``,
        in the outer query: a column of its subquery, or of its own input row for a call
        under an ``if`` (its default where the row is missing, as in the subquery)."""
        defaults = self.guarded_inputs.get(number)
        if defaults is None:
            return f"g{number}.in{position}_{field}"
        table = f"g{number}i{position}"
        if table not in self.joined:  # joined when first needed (most are not: 2 searches a row)
            self.joined.add(table)
            self.joins.append(f"LEFT JOIN call_inputs {table} ON {table}.call_id = g{number}.id AND {table}.name = ?")
            self.params.append(self.guarded_names[number][position])
        column = f"{table}.{_INPUT_FIELDS[field]}"
        default = defaults.get(position)
        if field != "cid" or default is None:
            return column
        return f"(CASE WHEN g{number}.id IS NULL THEN NULL ELSE COALESCE({column}, X'{default.hex()}') END)"

    def _subquery(self, call: CallNode) -> tuple[str, list]:
        params: list[Any] = []
        selects = ["c.id AS id", "c.hid AS hid", "c.outputs AS outputs", "c.exact AS exact", "c.created_at AS created_at"]
        joins, where = [], ["c.version_id = ?"]
        params_where: list[Any] = [call.version_id]
        invalid = self.invalid_states.get(call.number, ())
        if invalid:
            where.append(f"c.deps_id NOT IN ({', '.join('?' * len(invalid))})")
            params_where += invalid
        defaults = self.defaults.get(call.number, {})
        for position, (name, node) in enumerate(call.inputs.items()):
            table = f"i{position}"
            # A constant or a literal loop value equal to the default the storage first saw
            # may have no inputs row (the parameter was added later): such calls match too,
            # with the default as their input; so does a Q(), when the default's value can
            # be loaded for its column.
            default = defaults.get(name)
            left = default is not None and (
                (isinstance(node, Const) and node.cid == default)
                or (isinstance(node, DomainVar) and default in _domain_cids(node))
                or (isinstance(node, FreeVar) and default in self.stored_defaults)
            )
            cid = f"COALESCE({table}.cid, X'{default.hex()}')" if left else f"{table}.cid"
            if left:
                self.left_defaults.setdefault(call.number, {})[position] = default
            selects += [f"{cid} AS in{position}_cid", f"{table}.src_call AS in{position}_src",
                        f"{table}.src_index AS in{position}_idx"]
            # A literal is the most selective thing in a pattern: look its inputs up by content.
            # (Left to itself, SQLite may scan the op's calls instead once the history test
            # below keeps the content index from covering the lookup: 0.1 s at 500k calls.)
            literal = not left and (isinstance(node, Const) or (isinstance(node, DomainVar) and (self._defines(node, call, position) or self._checked_loop_value(node))))
            hint = f" INDEXED BY {_CID_INDEX}" if literal else ""
            joins.append(f"{'LEFT JOIN' if left else 'JOIN'} call_inputs {table}{hint} ON {table}.call_id = c.id AND {table}.name = ?")
            params.append(name)
            # A literal (a constant or a literal loop's value) is an input without history:
            # compiled code recorded a source for inputs that came from an op, and such a
            # call is another call than the one the literal made.
            if isinstance(node, Const):
                where.append(f"({table}.cid = ? OR {table}.cid IS NULL)" if left else f"{table}.cid = ?")
                where.append(f"{table}.src_call IS NULL")
                params_where.append(node.cid)
            elif isinstance(node, DomainVar) and (self._defines(node, call, position) or self._checked_loop_value(node)):
                marks = ", ".join("?" * len(node.values))
                where.append(f"({table}.cid IN ({marks}) OR {table}.cid IS NULL)" if left else f"{table}.cid IN ({marks})")
                where.append(f"{table}.src_call IS NULL")
                params_where += _domain_cids(node)
        sql = f"SELECT {', '.join(selects)} FROM calls c {' '.join(joins)} WHERE {' AND '.join(where)}"
        return sql, params + params_where

    def _checked_loop_value(self, node: Any) -> bool:
        """A loop variable defined by no input (see _definitions): compared per row."""
        return isinstance(node, DomainVar) and node.number not in self.definitions

    def _defines(self, node: Node, call: CallNode, position: int) -> bool:
        use = self.definitions.get(node.number)
        return use is not None and use.call is call and use.position == position

    def _conditions(self, call: CallNode, alias: str, arm: str | None = None) -> tuple[list[str], list]:
        """Join conditions tying this call's inputs to variables of calls joined before
        (``arm``: one of the two of a call in ``loose``, see _join_guarded)."""
        conditions: list[str] = []
        tracked = call.number in self.tracked or arm is not None
        for position, node in enumerate(call.inputs.values()):
            column = f"{alias}.in{position}"
            if isinstance(node, OutputVar):
                from_element = node.call.version_id == _item_version()
                # (A call under an `if` is only ever found from its producer, joined before it.)
                directions = ("to_consumers",) if call.optional else ("to_producer", "to_consumers")
                directions = (arm or "by_history",) if tracked else directions
                conditions.append(_edge(column, alias, f"g{node.call.number}", node.index, from_element, directions,
                                        self.loose.get(call.number)))
            elif isinstance(node, Node) and not isinstance(node, Derived) and not self._defines(node, call, position) and not self._checked_loop_value(node):
                use = self.definitions[node.number]
                # Between calls that edges already link, the edges lead from a consumer to its
                # producers by row id, in nearly the order rows were stored; the unary + keeps
                # SQLite from taking the content index instead (a random search per row:
                # 2.8 s instead of 1.3 s for a 2-op pattern over 1M calls).
                # (Not for a call under an `if`, looked up per row: by this equality it takes
                # 35.5M VM steps for 500k rows over 1M calls, by its edge 71M; unless its edge
                # is by history alone, a search by row id near the last one: see tracked.py.)
                components = self.components
                linked = components.get(use.call.number, -1) == components.get(call.number, -2)
                plus = "+" if linked or tracked else ""  # (only required calls are in components)
                conditions.append(f"{plus}{column}_cid = {plus}{self._input(use.call.number, use.position, 'cid')}")
                if isinstance(node, DomainVar):
                    conditions.append(f"{column}_src IS NULL")
        return conditions, []

    def finish(self) -> CompiledQuery:
        conditions, params = getattr(self, "_where", ([], []))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        # Rows come in the order their calls were stored: the order a run block made them
        # (the last call leads; with every call under an `if`, the first one joined). The unary
        # + keeps the order from steering the plan: ordering by row id had SQLite walk version
        # indexes nested (every inc(x) read for each dec(x), quadratic) for calls sharing only
        # a variable, calls under an `if`, or a branching chain. Joined as if unordered, then
        # sorted: at 1M calls the 2-op pattern's statement takes the same 1.4 s.
        order = ", ".join(f"+g{number}.id" for number in reversed(self.required or [self.first]))
        self.compiled.sql = f"SELECT {', '.join(self.columns)} FROM {' '.join(self.joins)}{where} ORDER BY {order}"
        self.compiled.params = self.params + params
        return self.compiled


def _edge(column: str, consumer: str, producer: str, index: int, from_element: bool,
          directions: tuple[str, ...] = ("to_producer", "to_consumers"), loose: str | None = None) -> str:
    """The input in ``column`` is output ``index`` of ``producer``: by recorded history, or by
    content where none could be recorded: in calls of uncompiled code, and for elements of a
    collection (compiled code does not know which collection a loop variable came from).

    In a compiled call, an input without history is otherwise a literal: matching it by
    content would let ``mul(2, v0)`` (2 typed in) pass for ``mul(v0, v0)`` when v0 == 2.

    The same condition is written twice, once for each direction SQLite may walk it in:
    ``producer.id IN (...)`` finds the producer of a consumer row by row id (an OR would keep
    it from that index: ~15% slower at 1M calls), and the OR finds the consumers of a producer
    row through the consumers' inputs by source or by content (a producer constrained by a
    literal, `inc(3)` or a literal loop, then needs a handful of lookups, not a scan of every
    consumer). Whichever is not used for the lookup is a cheap filter.
    """
    # An element: compiled code records the call given it inexact, but it recorded it exact,
    # the element raw, until structures.ELEMENTS_MARKED_INEXACT_SINCE; an exact call since
    # was given a literal (`inc(110)` typed in), no element however equal.
    element = f"({consumer}.exact = 0 OR {consumer}.created_at < {_elements_marked_inexact_since()!r})"
    untracked = f"{column}_src IS NULL AND {element if from_element else f'{consumer}.exact = 0'}"
    to_producer = (
        f"{producer}.id IN (SELECT {column}_src WHERE {column}_idx = {index} UNION ALL"
        f" SELECT o.call_id FROM call_outputs o WHERE {untracked} AND o.cid = {column}_cid AND o.idx = {index})"
    )
    # Alone where no consumer can lack history (tracked.py): indexed by the producer's row id.
    by_history = f"{column}_src = {producer}.id AND {column}_idx = {index}"
    to_consumers = (
        f"(({by_history}) OR ({untracked} AND {column}_cid IN"
        f" (SELECT o.cid FROM call_outputs o WHERE o.call_id = {producer}.id AND o.idx = {index})))"
    )
    written = {"to_producer": to_producer, "to_consumers": to_consumers, "by_history": by_history}
    if loose is not None:  # by content among the consumers in a temp table (tracked.py), indexed by content id
        written["loose"] = (
            f"{untracked} AND {consumer}.id IN (SELECT l.call_id FROM temp.{loose} l WHERE l.cid IN"
            f" (SELECT o.cid FROM call_outputs o WHERE o.call_id = {producer}.id AND o.idx = {index}))"
        )
    return " AND ".join(written[direction] for direction in directions)


def _elements_marked_inexact_since() -> float:
    from ..structures import ELEMENTS_MARKED_INEXACT_SINCE

    return ELEMENTS_MARKED_INEXACT_SINCE


def _item_version() -> bytes:
    from ..structures import ITEM_VERSION_ID

    return ITEM_VERSION_ID


def _domain_cids(node: DomainVar) -> list[bytes]:
    from ..hashing import content_id

    return [content_id(value) for value in node.values]
