"""A picture of a query block's pattern (``q.draw()``): what the block matches, not the rows.

Op call nodes are boxes, query variables ellipses and constants notes, as in pictures of
stored graphs (runtime/stored_graphs.py). Everything a branch of an ``if`` on variables
created is drawn with a thick border and says its condition: those parts may be missing from
a row. Ids follow creation order, so the same block always gives the same DOT text.
"""

from __future__ import annotations

from typing import Any

from ..pictures import Edge, Graph, Node as PictureNode
from .pattern import (
    PRECEDENCE,
    TEXT_CHARS,
    CallNode,
    Const,
    Derived,
    DomainVar,
    FreeVar,
    Guard,
    Node,
    Pattern,
    operand_text,
)

__all__ = ["pattern_graph"]

#: A loop variable's label lists at most this many of its values.
SHOWN_VALUES = 5
#: How the internal element op (runtime/structures.py) is labelled.
ELEMENT_LABEL = "element of"


def pattern_graph(pattern: Pattern) -> Graph:
    """The pattern of a query block as a :class:`~mandala_ast.runtime.pictures.Graph`.

    Edges into an op carry the parameter name; edges out of an op with several outputs carry
    the output's name. A derived variable (``twice = y * 2``) is drawn with its expression and
    an edge from each variable it is computed from.

    >>> with storage.query() as q:                # doctest: +SKIP
    ...     for alpha in [0.1, 0.2]:
    ...         model = train(Q(), alpha=alpha)
    >>> [n.label for n in pattern_graph(q.pattern).nodes]   # doctest: +SKIP
    ['alpha ∈ [0.1, 0.2]', '_1 = Q()', 'model', 'train']
    """
    graph = Graph()
    drawn = _drawn_derived(pattern)
    for node in pattern.nodes:
        if not isinstance(node, Derived) or node.number in drawn:
            graph.add_node(PictureNode(_var_id(node), _var_label(node), "var", node.guard is not None))
    labels = _op_labels(pattern.calls)
    for call in pattern.calls:
        _add_call(graph, call, labels[call.op.name])
    for node in pattern.nodes:
        if isinstance(node, Derived) and node.number in drawn:
            for source in _sources(node):
                graph.add_edge(Edge(_var_id(source), _var_id(node)))
    return graph


def _add_call(graph: Graph, call: CallNode, label: str) -> None:
    call_id = f"call{call.number:04d}"
    graph.add_node(PictureNode(call_id, label + _condition(call.guard), "op", call.guard is not None))
    for position, (name, value) in enumerate(call.inputs.items()):
        if isinstance(value, Const):
            source = f"{call_id}.const{position}"
            graph.add_node(PictureNode(source, _short(value.value), "value"))
        else:
            source = _var_id(value)
        graph.add_edge(Edge(source, call_id, name))
    names = call.op.output_names()
    for output in call.outputs:
        # A single output's name ("output") says nothing the variable's own label does not.
        graph.add_edge(Edge(call_id, _var_id(output), names[output.index] if len(names) > 1 else ""))


# -- which derived variables are drawn ------------------------------------------------------------


def _drawn_derived(pattern: Pattern) -> set[int]:
    """Named derived variables and expressions passed to ops. An unnamed expression inside
    another one is part of that one's text; ``enumerate(xs)`` feeding a loop is not drawn."""
    roots = [node for node in pattern.nodes if isinstance(node, Derived) and node.name is not None]
    roots += [v for call in pattern.calls for v in call.inputs.values() if isinstance(v, Derived)]
    return {node.number for node in roots}


def _sources(node: Derived) -> list[Node]:
    """The drawn variables ``node`` is computed from, looking through unnamed expressions."""
    found: list[Node] = []
    for value in node.inputs():
        inner = _sources(value) if isinstance(value, Derived) and value.name is None else [value]
        found += [source for source in inner if not any(source is seen for seen in found)]
    return found


# -- labels -------------------------------------------------------------------------------------


def _var_id(node: Node) -> str:
    return f"var{node.number:04d}"


def _var_label(node: Node) -> str:
    if isinstance(node, FreeVar):
        return f"{node.label} = Q()"
    if isinstance(node, DomainVar):
        return f"{node.label} ∈ {_values(node.values)}"
    if isinstance(node, Derived):
        text = node.text if node.name is None else f"{node.name} = {node.text}"
        return text + _condition(node.guard)
    return node.label


def _values(values: list) -> str:
    shown = [_short(v) for v in values]
    if len(shown) > SHOWN_VALUES:
        shown = [*shown[: SHOWN_VALUES - 2], "…", shown[-1]]
    return f"[{', '.join(shown)}]"


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def _condition(guard: Guard | None) -> str:
    """``"\\n(if y > 2)"`` for what a branch created; nothing outside branches."""
    if guard is None:
        return ""
    parts = [
        operand_text(node, PRECEDENCE["and"]) if wanted else f"not {operand_text(node, PRECEDENCE['not'])}"
        for node, wanted in guard.conditions
    ]
    return f"\n(if {' and '.join(parts)})"


def _op_labels(calls: list[CallNode]) -> dict[str, str]:
    """Op name -> label: the function's own name (``inc``, not ``app.steps.inc``) unless two
    ops of the pattern share it."""
    from ..structures import ITEM_OP_NAME

    short = {call.op.name: call.op.name.rsplit(".", 1)[-1] for call in calls}
    clashes = {s for s in short.values() if list(short.values()).count(s) > 1}
    labels = {name: name if s in clashes else s for name, s in short.items()}
    if ITEM_OP_NAME in labels:
        labels[ITEM_OP_NAME] = ELEMENT_LABEL
    return labels
