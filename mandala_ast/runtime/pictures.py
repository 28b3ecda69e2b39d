"""Pictures of computations: a small graph model, its DOT text, and rendering with graphviz.

We write DOT ourselves and run graphviz's ``dot`` program instead of depending on the
``graphviz`` Python package: the text is a few lines, and the program is what users lack
anyway (the package is only a wrapper around it). Without ``dot`` a picture still carries its
DOT text, so nothing fails; one warning says how to install graphviz.

>>> graph = Graph([Node("x", "x", "var"), Node("inc", "inc", "op")], [Edge("x", "inc", "x")])
>>> print(to_dot(graph).splitlines()[0])
digraph mandala {
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import ArgumentError, MandalaRenderWarning, PictureSaveError, RenderError

__all__ = ["FORMATS", "KINDS", "Edge", "Graph", "Node", "Picture", "render", "to_dot"]

#: Image formats :func:`render` produces.
FORMATS = ("svg", "png")
#: What a node stands for: an op (or one call of it), a variable, a concrete value.
KINDS = ("op", "var", "value")
#: How long ``dot`` may take: a picture of a few hundred nodes renders in well under a second.
DOT_TIMEOUT_SECONDS = 60

_STYLES = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#dbe8f7"',
    "var": 'shape=ellipse, style=filled, fillcolor="#f2f2f2"',
    "value": 'shape=note, style=filled, fillcolor="#fff6d5"',
}
_HEADER = (
    'graph [fontname="Helvetica", fontsize=12];',
    'node [fontname="Helvetica", fontsize=11, color="#4d4d4d"];',
    'edge [fontname="Helvetica", fontsize=9, color="#666666", fontcolor="#333333"];',
)
_INSTALL_HINT = (
    "Install graphviz to get images: `apt install graphviz`, `brew install graphviz`, "
    "`conda install graphviz`, or see https://graphviz.org/download/."
)


@dataclass(frozen=True)
class Node:
    """One node of a :class:`Graph`; ``kind`` is ``"op"`` (a box), ``"var"`` (an ellipse) or
    ``"value"`` (a note), and ``highlight`` draws it with a thick border.

    >>> Node("call:1", "inc", "op")
    Node(id='call:1', label='inc', kind='op', highlight=False)
    """

    id: str
    label: str
    kind: str
    highlight: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"node kind must be one of {KINDS}, not {self.kind!r}")


@dataclass(frozen=True)
class Edge:
    """An arrow from node ``source`` to node ``target`` (ids), with an optional label such as a
    parameter name or a count.

    >>> Edge("x", "inc", "x ×3")
    Edge(source='x', target='inc', label='x ×3')
    """

    source: str
    target: str
    label: str = ""


@dataclass
class Graph:
    """Nodes and edges to draw. Order does not matter: :func:`to_dot` sorts them.

    >>> graph = Graph()
    >>> graph.add_node(Node("inc", "inc", "op"))
    >>> graph.add_node(Node("inc", "ignored: the id is taken", "op"))
    >>> [node.label for node in graph.nodes], graph.has_node("inc")
    (['inc'], True)
    """

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def has_node(self, node_id: str) -> bool:
        """Whether a node with this id is in the graph."""
        return any(node.id == node_id for node in self.nodes)

    def add_node(self, node: Node) -> None:
        """Add ``node`` unless a node with its id is already there (the first one wins)."""
        if not self.has_node(node.id):
            self.nodes.append(node)

    def add_edge(self, edge: Edge) -> None:
        """Add ``edge`` unless the same edge is already there."""
        if edge not in self.edges:
            self.edges.append(edge)


def to_dot(graph: Graph, title: str | None = None) -> str:
    """The graph as DOT text, in a stable order (nodes by id, edges by endpoints then label),
    so equal graphs give equal text whatever order they were built in.

    >>> graph = Graph([Node("a", 'say "hi"', "value")], [])
    >>> print(to_dot(graph, title="demo"))  # doctest: +NORMALIZE_WHITESPACE
    digraph mandala {
      graph [fontname="Helvetica", fontsize=12];
      node [fontname="Helvetica", fontsize=11, color="#4d4d4d"];
      edge [fontname="Helvetica", fontsize=9, color="#666666", fontcolor="#333333"];
      label="demo"; labelloc=t;
      "a" [label="say \\"hi\\"", shape=note, style=filled, fillcolor="#fff6d5"];
    }
    """
    nodes = _unique_nodes(graph.nodes)
    lines = ["digraph mandala {", *(f"  {line}" for line in _HEADER)]
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t;")
    lines += [f"  {_node_line(node)}" for node in sorted(nodes.values(), key=lambda n: n.id)]
    for edge in sorted(set(graph.edges), key=lambda e: (e.source, e.target, e.label)):
        _check_endpoints(edge, nodes)
        label = f" [label={_quote(edge.label)}]" if edge.label else ""
        lines.append(f"  {_quote(edge.source)} -> {_quote(edge.target)}{label};")
    return "\n".join([*lines, "}"]) + "\n"


@dataclass(frozen=True)
class Picture:
    """What ``draw`` returns: the DOT text and, when graphviz is installed, the image.

    Shown inline in Jupyter; ``str(picture)`` is the DOT text; ``data`` is None when ``dot``
    was missing.

    >>> picture = Picture(dot="digraph mandala {}\\n", format="svg", data=None)
    >>> str(picture)
    'digraph mandala {}\\n'
    """

    dot: str
    format: str
    data: bytes | None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the image to ``path`` and return it. Without an image (graphviz missing), or
        for a ``.dot`` path, the DOT text is written beside it as ``<stem>.dot`` (with a
        warning when an image was asked for).

        >>> picture.save("stored-graph.svg")          # doctest: +SKIP
        PosixPath('stored-graph.svg')
        """
        path = Path(path)
        if self.data is None or path.suffix.lower() == ".dot":
            return self._save_dot(path)
        if path.suffix and path.suffix.lower() != f".{self.format}":
            other = path.suffix[1:].lower()
            instead = f"draw it with format={other!r} or " if other in FORMATS else ""
            raise ArgumentError(
                f"this picture is {self.format.upper()}, not {path.suffix}: {instead}save it as "
                f".{self.format} (or .dot for its DOT text)"
            )
        _write(path, self.data)
        return path

    def _save_dot(self, path: Path) -> Path:
        target = path.with_suffix(".dot")
        _write(target, self.dot.encode("utf-8"))
        if path.suffix.lower() != ".dot":
            warnings.warn(
                f"graphviz's `dot` is missing, so {path} was not drawn; wrote the DOT text to "
                f"{target} instead. {_INSTALL_HINT}",
                MandalaRenderWarning,
                stacklevel=3,
            )
        return target

    def _repr_svg_(self) -> str | None:
        if self.format != "svg" or self.data is None:
            return None
        return self.data.decode("utf-8")

    def _repr_png_(self) -> bytes | None:
        return self.data if self.format == "png" else None

    def __str__(self) -> str:
        return self.dot

    def __repr__(self) -> str:
        if self.data is None:
            return "<Picture: not rendered (graphviz's `dot` is missing); str() gives the DOT text>"
        return f"<Picture: {self.format.upper()}, {len(self.data):,} bytes>"


def _write(path: Path, data: bytes) -> None:
    """Write a picture, making its missing directories as ``Storage(path)`` does; what the
    system refuses (a file where a directory should be, a read-only or full disk) names the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise PictureSaveError(f"cannot save the picture to {path}: a file is in the way of its directory") from exc
    except OSError as exc:
        raise PictureSaveError(f"cannot save the picture to {path}: {exc.strerror or exc}") from exc
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise PictureSaveError(f"cannot save the picture to {path}: {exc.strerror or exc}") from exc


def render(graph: Graph, format: str = "svg", *, title: str | None = None) -> Picture:
    """Draw ``graph`` with graphviz's ``dot`` as ``"svg"`` or ``"png"``.

    Without ``dot`` on PATH this warns once (:class:`MandalaRenderWarning`) and returns a
    Picture holding only the DOT text; ``dot`` failing raises :class:`RenderError` with its
    message.

    >>> render(Graph([Node("inc", "inc", "op")]), "png").data[:4]       # doctest: +SKIP
    b'\\x89PNG'
    """
    if format not in FORMATS:
        raise ArgumentError(f"format must be one of {FORMATS}, not {format!r}")
    text = to_dot(graph, title)
    program = shutil.which("dot")
    if program is None:
        warnings.warn(
            f"graphviz's `dot` program was not found on PATH, so the picture was not rendered; "
            f"the DOT text is returned instead (str(picture), picture.dot). {_INSTALL_HINT}",
            MandalaRenderWarning,
            stacklevel=2,
        )
        return Picture(text, format, None)
    return Picture(text, format, _run_dot(program, text, format))


def _run_dot(program: str, text: str, format: str) -> bytes:
    try:
        done = subprocess.run(
            [program, f"-T{format}"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"graphviz's dot took more than {DOT_TIMEOUT_SECONDS} s; gave up") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip() or "no message"
        raise RenderError(f"graphviz's dot failed (exit status {done.returncode}): {message}")
    return done.stdout


def _unique_nodes(nodes: list[Node]) -> dict[str, Node]:
    unique: dict[str, Node] = {}
    for node in nodes:
        unique.setdefault(node.id, node)
    return unique


def _check_endpoints(edge: Edge, nodes: dict[str, Node]) -> None:
    # dot would silently invent a plain node for an unknown id: a bug in the caller's graph.
    for end in (edge.source, edge.target):
        if end not in nodes:
            raise ValueError(f"edge {edge.source!r} -> {edge.target!r}: no node has id {end!r}")


def _node_line(node: Node) -> str:
    bold = ", penwidth=2.5" if node.highlight else ""
    return f"{_quote(node.id)} [label={_quote(node.label)}, {_STYLES[node.kind]}{bold}];"


def _quote(text: str) -> str:
    """``text`` as a DOT double-quoted string that graphviz shows as written.

    In labels graphviz reads backslash escapes (``\\n`` is a line break, ``\\N`` the node's
    name), so a backslash is doubled, quotes are escaped and line breaks become ``\\n``.
    """
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    # Other control characters make dot reject its input ("syntax error"): show them as spaces.
    return '"' + "".join(" " if ord(ch) < 32 else ch for ch in text) + '"'
