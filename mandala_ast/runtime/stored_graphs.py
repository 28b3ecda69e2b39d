"""Graphs of what a storage holds, for ``storage.draw``: the flow of values around an op, and
the calls a value came from.

An input's producer is the call compiled code recorded (``inputs.src_call``); for calls made
by uncompiled code it is the earliest earlier call whose output has the same content, as in
``storage.provenance`` (runtime/tables.py). Raw inputs have no producer.

A list, tuple or dict compiled code built by hand (runtime/built.py) is recorded as a call of
the internal op ``mandala_ast.__build__``; no user wrote that op, so it is never drawn as one.
An op's picture draws, per input given such collections, a "collection built by hand" node fed
by its elements' producers (its nested collections: nodes of their own); a value's picture
draws the collection's value, its elements' values going into it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .built import BUILD_OP_NAME, BUILD_VERSION_ID
from .hashing import content_id
from .ops import Op, Workflow
from .pictures import FORMATS, Edge, Graph, Node, Picture, render
from .tables import producer_by_content

if TYPE_CHECKING:
    from .store import SQLiteStore

__all__ = ["draw_stored", "op_graph", "value_graph"]

#: A value's graph stops growing at about this many nodes (then a "…" node marks the cut).
MAX_NODES = 200
#: Labels of values are cut to this many characters.
LABEL_CHARS = 40
#: Stored values larger than this are described by codec and size, not loaded for a label.
LOAD_FOR_LABEL_BYTES = 4096

# Per (parameter, producing op, output index): how many distinct calls of the op took that
# input from there, and how many distinct values. One statement for all of an op's calls, so a
# million calls cost one pass, not a million queries. A by-content input may match several
# earlier outputs: ROW_NUMBER keeps the earliest (see the module docstring). CROSS JOIN pins
# the join order: from the op's versions to its calls (a primary-key range) to their inputs,
# where SQLite would otherwise scan every input in the file.
_FLOWS_SQL = """
WITH edges AS (
  SELECT c.cid AS call_cid, i.name AS param, i.cid AS value,
         pv.op_name AS producer, COALESCE(i.src_index, o.idx) AS idx,
         ROW_NUMBER() OVER (
           PARTITION BY c.id, i.name ORDER BY p.created_at IS NULL, p.created_at, o.idx
         ) AS rank
  FROM versions v
  CROSS JOIN calls c ON c.version_id = v.version_id
  CROSS JOIN call_inputs i ON i.call_id = c.id
  LEFT JOIN call_outputs o ON i.src_call IS NULL AND c.exact = 0 AND o.cid = i.cid
  LEFT JOIN calls p ON p.id = COALESCE(i.src_call, o.call_id)
       AND (i.src_call IS NOT NULL OR (p.created_at <= c.created_at AND p.id != c.id))
  LEFT JOIN versions pv ON pv.version_id = p.version_id
  WHERE v.op_name = ?
)
SELECT param, producer, CASE WHEN producer IS NULL THEN NULL ELSE idx END,
       COUNT(DISTINCT call_cid), COUNT(DISTINCT value)
FROM edges WHERE rank = 1
GROUP BY 1, 2, 3
"""
# Ops with an input equal to one of this op's outputs: candidates for its consumers (every
# recorded producer's output has the input's content, so this covers exact provenance too).
_CONSUMERS_SQL = """
SELECT DISTINCT cv.op_name
FROM versions pv
CROSS JOIN calls p ON p.version_id = pv.version_id
CROSS JOIN call_outputs o ON o.call_id = p.id
CROSS JOIN call_inputs i ON i.cid = o.cid
JOIN calls c ON c.id = i.call_id JOIN versions cv ON cv.version_id = c.version_id
WHERE pv.op_name = ?
"""
_CALL_COUNT_SQL = """
SELECT COUNT(DISTINCT c.cid) FROM versions v JOIN calls c ON c.version_id = v.version_id
WHERE v.op_name = ?
"""
# Per nesting depth, (producing op, output index) of the elements of the collections built by
# hand given to op ?1 as input ?2, as _FLOWS_SQL has it for an op's inputs: how many distinct
# build calls took elements from there, and how many distinct values. Depth 1: the collections
# given to the op; depth 2: the collections among their elements; and so on.
_ELEMENT_FLOWS_SQL = f"""
WITH RECURSIVE builds(id, depth) AS (
  SELECT DISTINCT i.src_call, 1
  FROM versions v
  CROSS JOIN calls c ON c.version_id = v.version_id
  CROSS JOIN call_inputs i ON i.call_id = c.id AND i.name = ?2
  CROSS JOIN calls b ON b.id = i.src_call AND b.version_id = X'{BUILD_VERSION_ID.hex()}'
  WHERE v.op_name = ?1
  UNION
  SELECT i.src_call, builds.depth + 1 FROM builds
  CROSS JOIN call_inputs i ON i.call_id = builds.id
  CROSS JOIN calls b ON b.id = i.src_call AND b.version_id = X'{BUILD_VERSION_ID.hex()}'
), edges AS (
  SELECT builds.depth AS depth, c.cid AS call_cid, i.cid AS value,
         pv.op_name AS producer, COALESCE(i.src_index, o.idx) AS idx,
         ROW_NUMBER() OVER (
           PARTITION BY builds.depth, c.id, i.name ORDER BY p.created_at IS NULL, p.created_at, o.idx
         ) AS rank
  FROM builds
  CROSS JOIN calls c ON c.id = builds.id
  CROSS JOIN call_inputs i ON i.call_id = c.id
  LEFT JOIN call_outputs o ON i.src_call IS NULL AND c.exact = 0 AND o.cid = i.cid
  LEFT JOIN calls p ON p.id = COALESCE(i.src_call, o.call_id)
       AND (i.src_call IS NOT NULL OR p.created_at <= c.created_at)
  LEFT JOIN versions pv ON pv.version_id = p.version_id
)
SELECT depth, producer, CASE WHEN producer IS NULL THEN NULL ELSE idx END,
       COUNT(DISTINCT call_cid), COUNT(DISTINCT value)
FROM edges WHERE rank = 1
GROUP BY 1, 2, 3
"""
# The ops given collections built by hand: candidates for the consumers of their elements.
_BUILD_CONSUMERS_SQL = f"""
SELECT DISTINCT cv.op_name FROM calls b
CROSS JOIN call_inputs i ON i.src_call = b.id
JOIN calls c ON c.id = i.call_id JOIN versions cv ON cv.version_id = c.version_id
WHERE b.version_id = X'{BUILD_VERSION_ID.hex()}' AND c.version_id != X'{BUILD_VERSION_ID.hex()}'
"""
_NOUT_SQL = "SELECT nout FROM ops WHERE name = ?"
_CALL_SQL = """
SELECT c.cid, c.exact, c.created_at, v.op_name FROM calls c
JOIN versions v ON v.version_id = c.version_id WHERE c.hid = ?
"""
_CALL_INPUTS_SQL = "SELECT name, cid, src_call FROM inputs WHERE call_hid = ? ORDER BY name"
_CALL_OUTPUTS_SQL = "SELECT idx, cid FROM outputs WHERE call_hid = ? ORDER BY idx"
_PRODUCERS_SQL = """
SELECT c.hid FROM call_outputs o JOIN calls c ON c.id = o.call_id
WHERE o.cid = ? ORDER BY c.created_at, c.hid
"""
_IS_STORED_SQL = "SELECT 1 FROM vals WHERE cid = ?1 UNION ALL SELECT 1 FROM call_outputs WHERE cid = ?1 LIMIT 1"
_VALUE_INFO_SQL = "SELECT codec, size FROM vals WHERE cid = ?"


def draw_stored(
    store: SQLiteStore,
    target: Any,
    load: Callable[[bytes], Any],
    *,
    format: str = "svg",
    path: str | Path | None = None,
) -> Picture:
    """The picture ``Storage.draw`` returns: :func:`op_graph` for an op, :func:`value_graph`
    for any other value; saved to ``path`` too when given.

    >>> draw_stored(storage.engine.store, add, storage.engine.loader.load)   # doctest: +SKIP
    <Picture: SVG, 5,123 bytes>
    """
    if format not in FORMATS:  # before any query: a typo should not wait for a big scan
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    if isinstance(target, Workflow):
        raise TypeError(f"{target!r} is a workflow, which is not stored itself: draw one of its ops")
    if isinstance(target, Op):
        graph, title = op_graph(store, target.name), f"op {target.name}"
    else:
        cid = content_id(target)
        graph, title = value_graph(store, cid, load), f"where {_value_label(store, cid, load)} came from"
    picture = render(graph, format, title=title)
    if path is not None:
        picture.save(path)
    return picture


# -- op level ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Flow:
    """``calls`` distinct calls of an op took input ``param`` (``values`` distinct values) from
    output ``index`` of op ``producer``, or as raw values when ``producer`` is None."""

    param: str
    producer: str | None
    index: int | None
    calls: int
    values: int


def op_graph(store: SQLiteStore, op_name: str) -> Graph:
    """The op-level graph around an op: the ops upstream of its inputs and downstream of its
    outputs (transitively), each op's outputs and raw inputs as variables, and per edge how
    many stored calls took that path. Calls are aggregated, so the picture stays small.

    >>> [n.label for n in op_graph(storage.engine.store, "app.add").nodes]   # doctest: +SKIP
    ['add', 'inc', 'output', 'output', 'x\\n3 values', 'x\\n3 values']
    """
    flows = functools.lru_cache(maxsize=None)(lambda name: _flows_into(store, name))
    elements = functools.lru_cache(maxsize=None)(lambda name, param: _element_flows(store, name, param))
    producers = functools.lru_cache(maxsize=None)(lambda name: _producers(flows, elements, name))
    drawn = _upstream(producers, op_name) | _downstream(store, producers, op_name)
    graph = Graph()
    for name in sorted(drawn):
        _add_op(graph, store, name, highlight=name == op_name)
    for name in sorted(drawn):
        for flow in flows(name):
            if flow.producer == BUILD_OP_NAME:
                _add_collection(graph, store, name, flow, elements(name, flow.param))
            else:
                _add_flow(graph, store, name, flow)
    return _shorten_op_labels(graph)


def _flows_into(store: SQLiteStore, op_name: str) -> tuple[_Flow, ...]:
    rows = store.conn.execute(_FLOWS_SQL, (op_name,)).fetchall()
    return tuple(_Flow(*row) for row in rows)


def _element_flows(store: SQLiteStore, op_name: str, param: str) -> tuple[tuple[int, _Flow], ...]:
    """``(depth, flow)`` of the elements of the collections built by hand given to the op as
    ``param`` (``flow.param`` is unused: elements are drawn together)."""
    rows = store.conn.execute(_ELEMENT_FLOWS_SQL, (op_name, param)).fetchall()
    return tuple((depth, _Flow("elements", *rest)) for depth, *rest in rows)


def _producers(flows: Callable[[str], tuple[_Flow, ...]], elements: Callable[[str, str], Any], name: str) -> set[str]:
    """The ops whose outputs the op's calls took, directly or as elements of collections built
    by hand (the internal build op itself is none of them)."""
    found: set[str | None] = set()
    for flow in flows(name):
        if flow.producer == BUILD_OP_NAME:
            found.update(element.producer for _, element in elements(name, flow.param))
        else:
            found.add(flow.producer)
    return {producer for producer in found if producer is not None and producer != BUILD_OP_NAME}


def _upstream(producers: Callable[[str], set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for producer in producers(todo.pop()):
            if producer not in seen:
                seen.add(producer)
                todo.append(producer)
    return seen


def _downstream(store: SQLiteStore, producers: Callable[[str], set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        name = todo.pop()
        for consumer in _consumer_candidates(store, name):
            # Equal content is not enough: the consumer's input must be attributed to this op.
            if consumer not in seen and name in producers(consumer):
                seen.add(consumer)
                todo.append(consumer)
    return seen


def _consumer_candidates(store: SQLiteStore, name: str) -> list[str]:
    found = [consumer for (consumer,) in store.conn.execute(_CONSUMERS_SQL, (name,)).fetchall()]
    if BUILD_OP_NAME in found:  # its elements went into collections: the ops given those
        found += [consumer for (consumer,) in store.conn.execute(_BUILD_CONSUMERS_SQL).fetchall()]
    return [consumer for consumer in found if consumer != BUILD_OP_NAME]


def _add_op(graph: Graph, store: SQLiteStore, name: str, *, highlight: bool = False) -> None:
    """The op's node, and its outputs as variables with an edge counting its calls."""
    graph.add_node(Node(_op_id(name), name, "op", highlight))
    calls = store.conn.execute(_CALL_COUNT_SQL, (name,)).fetchone()[0]
    nout = _output_count(store, name)
    for index in range(nout):
        graph.add_node(Node(_output_id(name, index), _output_name(nout, index), "var"))
        graph.add_edge(Edge(_op_id(name), _output_id(name, index), f"×{calls} calls"))


def _add_flow(graph: Graph, store: SQLiteStore, consumer: str, flow: _Flow) -> None:
    label = f"{flow.param} ×{flow.calls}"
    if flow.producer is None:
        source = f"raw:{consumer}:{flow.param}"
        plural = "" if flow.values == 1 else "s"
        graph.add_node(Node(source, f"{flow.param}\n{flow.values} value{plural}", "var"))
    else:
        if not graph.has_node(_op_id(flow.producer)):  # a producer outside the picture's ops
            _add_op(graph, store, flow.producer)
        assert flow.index is not None  # a flow with a producer comes from one of its outputs
        source = _output_id(flow.producer, flow.index)
    graph.add_edge(Edge(source, _op_id(consumer), label))


def _add_collection(
    graph: Graph, store: SQLiteStore, consumer: str, flow: _Flow, elements: tuple[tuple[int, _Flow], ...]
) -> None:
    """``flow.param`` of the consumer's calls came from collections built by hand: one node for
    them, fed by their elements' producers (nested collections: a node per depth)."""
    graph.add_node(Node(_collection_id(consumer, flow.param, 1), _COLLECTION_LABEL, "var"))
    graph.add_edge(Edge(_collection_id(consumer, flow.param, 1), _op_id(consumer), f"{flow.param} ×{flow.calls}"))
    for depth, element in elements:
        target = _collection_id(consumer, flow.param, depth)
        graph.add_node(Node(target, _COLLECTION_LABEL, "var"))
        label = f"elements ×{element.calls}"
        if element.producer == BUILD_OP_NAME:
            source = _collection_id(consumer, flow.param, depth + 1)
            graph.add_node(Node(source, _COLLECTION_LABEL, "var"))
        elif element.producer is None:
            source = f"raw:{target}"
            values = "value" if element.values == 1 else "values"
            graph.add_node(Node(source, f"elements\n{element.values} {values}", "var"))
        else:
            if not graph.has_node(_op_id(element.producer)):
                _add_op(graph, store, element.producer)
            assert element.index is not None  # a flow with a producer comes from one of its outputs
            source = _output_id(element.producer, element.index)
        graph.add_edge(Edge(source, target, label))


_COLLECTION_LABEL = "collection\nbuilt by hand"


def _collection_id(consumer: str, param: str, depth: int) -> str:
    return f"built:{consumer}:{param}:{depth}"


def _output_count(store: SQLiteStore, name: str) -> int:
    row = store.conn.execute(_NOUT_SQL, (name,)).fetchone()
    return 1 if row is None else row[0]


def _output_name(nout: int, index: int) -> str:
    # The column names of storage.df (Op.output_names).
    return "output" if nout == 1 else f"output_{index}"


def _op_id(name: str) -> str:
    return f"op:{name}"


def _output_id(name: str, index: int) -> str:
    return f"out:{name}:{index}"


# -- call level ----------------------------------------------------------------------------


def value_graph(
    store: SQLiteStore, cid: bytes, load: Callable[[bytes], Any], *, max_nodes: int = MAX_NODES
) -> Graph:
    """The calls that produced the value with content id ``cid`` and, transitively, the calls
    upstream of them, with the values in between (about ``max_nodes`` nodes at most).

    >>> value_graph(storage.engine.store, content_id(12), storage.engine.loader.load)    # doctest: +SKIP
    Graph(nodes=[Node(id='val:…', label='12', kind='value', highlight=True), ...], edges=[...])
    """
    if store.conn.execute(_IS_STORED_SQL, (cid,)).fetchone() is None:
        raise LookupError(
            "this value is not in the storage: no stored call takes or returns it "
            "(to draw an op's graph, pass the @op itself)"
        )
    graph = Graph([Node(_value_id(cid), _value_label(store, cid, load), "value", True)])
    todo = deque((hid, _value_id(cid)) for (hid,) in store.conn.execute(_PRODUCERS_SQL, (cid,)))
    drawn: dict[bytes, str] = {}  # call cid -> node id: a call recorded twice is drawn once
    while todo and len(graph.nodes) < max_nodes:
        hid, _ = todo.popleft()
        todo.extend(_add_call(graph, store, hid, load, drawn))
    cut = {fed for hid, fed in todo if _call_cid(store, hid) not in (None, *drawn)}
    if cut:
        _mark_cut(graph, cut)
    return _shorten_op_labels(graph)


def _add_call(
    graph: Graph, store: SQLiteStore, hid: bytes, load: Callable[[bytes], Any], drawn: dict[bytes, str]
) -> list[tuple[bytes, str]]:
    """Draw one call with its inputs and outputs; returns its inputs' producers to draw next,
    as ``(call hid, id of the value node it feeds)``."""
    row = store.conn.execute(_CALL_SQL, (hid,)).fetchone()
    if row is None or row[0] in drawn:  # None: a recorded producer that was deleted since
        return []
    call_cid, exact, created_at, op_name = row
    outputs = store.conn.execute(_CALL_OUTPUTS_SQL, (hid,)).fetchall()
    if op_name == BUILD_OP_NAME:  # a collection built by hand: its elements go into its value
        _add_value(graph, store, outputs[0][1], load)
        drawn[call_cid] = node_id = _value_id(outputs[0][1])
        outputs = []
    else:
        node_id = drawn[call_cid] = f"call:{hid.hex()}"
        graph.add_node(Node(node_id, op_name, "op"))
    for index, out_cid in outputs:
        _add_value(graph, store, out_cid, load)
        label = "" if len(outputs) == 1 else _output_name(len(outputs), index)  # "output": noise
        graph.add_edge(Edge(node_id, _value_id(out_cid), label))
    producers = []
    for name, in_cid, src_call in store.conn.execute(_CALL_INPUTS_SQL, (hid,)).fetchall():
        _add_value(graph, store, in_cid, load)
        graph.add_edge(Edge(_value_id(in_cid), node_id, name))
        producer = src_call if src_call is not None or exact else producer_by_content(store, in_cid, created_at, hid)[0]
        if producer is not None:
            producers.append((producer, _value_id(in_cid)))
    return producers


def _call_cid(store: SQLiteStore, hid: bytes) -> bytes | None:
    row = store.conn.execute(_CALL_SQL, (hid,)).fetchone()
    return None if row is None else row[0]


def _add_value(graph: Graph, store: SQLiteStore, cid: bytes, load: Callable[[bytes], Any]) -> None:
    if not graph.has_node(_value_id(cid)):  # labels may load a value: only once
        graph.add_node(Node(_value_id(cid), _value_label(store, cid, load), "value"))


def _mark_cut(graph: Graph, values: set[str]) -> None:
    """One "…" node feeding the values whose history was not drawn."""
    graph.add_node(Node("more", "… more calls upstream", "var"))
    for value_id in sorted(values):
        graph.add_edge(Edge("more", value_id))


def _value_label(store: SQLiteStore, cid: bytes, load: Callable[[bytes], Any]) -> str:
    """A short repr of a stored value; large or unloadable values by codec and size."""
    info = store.conn.execute(_VALUE_INFO_SQL, (cid,)).fetchone()
    if info is None:
        return f"<value {cid.hex()[:12]}>"
    codec, size = info
    described = f"<{codec} value, {size:,} bytes>"
    if size is None or size > LOAD_FOR_LABEL_BYTES:
        return described
    try:
        text = " ".join(repr(load(cid)).split())
    except Exception:  # e.g. a pickled class that no longer exists: the picture still draws
        return described
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _value_id(cid: bytes) -> str:
    return f"val:{cid.hex()}"


# -- labels --------------------------------------------------------------------------------


def _shorten_op_labels(graph: Graph) -> Graph:
    """Label op nodes with the function's own name (``inc``, not ``app.steps.inc``) unless two
    ops in the picture share it."""
    full = {node.label for node in graph.nodes if node.kind == "op"}
    short = {name: name.rsplit(".", 1)[-1] for name in full}
    clashes = {s for s in short.values() if list(short.values()).count(s) > 1}
    nodes = [
        dataclasses.replace(node, label=short[node.label])
        if node.kind == "op" and short[node.label] not in clashes
        else node
        for node in graph.nodes
    ]
    return Graph(nodes, graph.edges)
