"""Pictures of query patterns (``q.draw()``): compiled query blocks drawn as DOT and images."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pictures import PNG_MAGIC, labelled_edges, needs_dot, parse_graph
from test_query import run

from mandala_ast import MList, Storage, op


@op
def split(n: int) -> tuple[int, int]:
    return n // 2, n % 2


@op
def make(n: int) -> MList[int]:
    return list(range(n))


OPS = {"split": split, "make": make}


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "results.db")


def draw(body: str, storage: Storage, **kwargs) -> str:
    """The DOT text of ``q.draw()`` for a query block with this body (4-space indented)."""
    q = run("import mandala_ast\nwith storage.query() as q:\n" + body, storage, **OPS)["q"]
    return q.draw(**kwargs).dot


def node_line(dot: str, label: str) -> str:
    """The DOT line of the node labelled ``label`` (exactly one must exist)."""
    found = [line for line in dot.splitlines() if f'[label="{label}",' in line]
    assert len(found) == 1, (label, found)
    return found[0]


DESIGN_EXAMPLE = """\
    n = Q()
    for alpha in [0.1, 0.2]:
        data = load(n)
        model = train(data, alpha=alpha)
        acc = evaluate(model, data)
"""


class TestNodesAndEdges:
    def test_design_example(self, storage: Storage) -> None:
        """Ops as boxes, variables by column name, Q() and loop values shown, edges named."""
        graph = parse_graph(draw(DESIGN_EXAMPLE, storage))
        kinds = {node.label: node.kind for node in graph.nodes}
        assert kinds == {
            "n = Q()": "var", "alpha ∈ [0.1, 0.2]": "var", "data": "var", "model": "var", "acc": "var",
            "load": "op", "train": "op", "evaluate": "op",
        }
        assert labelled_edges(graph) == {
            ("n = Q()", "load", "n"), ("load", "data", ""),
            ("data", "train", "data"), ("alpha ∈ [0.1, 0.2]", "train", "alpha"), ("train", "model", ""),
            ("model", "evaluate", "model"), ("data", "evaluate", "data"), ("evaluate", "acc", ""),
        }

    def test_constants_unnamed_variables_and_several_outputs(self, storage: Storage) -> None:
        graph = parse_graph(draw("    w = add(inc(inc(3)), 10)\n    half, odd = split(w)\n", storage))
        kinds = {node.label: node.kind for node in graph.nodes}
        unnamed = sorted(label for label in kinds if label.startswith("_"))
        assert len(unnamed) == 2 and all(kinds[label] == "var" for label in unnamed)
        assert kinds["3"] == kinds["10"] == "value"
        edges = labelled_edges(graph)
        assert {("3", "inc", "x"), ("10", "add", "y"), ("w", "split", "n")} <= edges
        assert {("split", "half", "output_0"), ("split", "odd", "output_1")} <= edges

    def test_long_loop_domains_are_shortened(self, storage: Storage) -> None:
        dot = draw("    for x in range(100):\n        y = inc(x)\n", storage)
        node_line(dot, "x ∈ [0, 1, 2, …, 99]")

    def test_element_iteration_is_an_element_of_node(self, storage: Storage) -> None:
        graph = parse_graph(draw("    xs = make(3)\n    for i, e in enumerate(xs):\n        y = inc(e)\n", storage))
        assert {
            ("xs", "element of", "struct"), ("i", "element of", "key"), ("element of", "e", ""), ("e", "inc", "x"),
        } <= labelled_edges(graph)
        assert not any("enumerate" in node.label for node in graph.nodes)


class TestDerivedAndGuarded:
    def test_derived_variable_shows_its_expression_and_inputs(self, storage: Storage) -> None:
        body = "    x = Q()\n    y = inc(x)\n    twice = (y + 1) * 2\n    z = inc(x - 1)\n"
        graph = parse_graph(draw(body, storage))
        edges = labelled_edges(graph)
        assert ("y", "twice = (y + 1) * 2", "") in edges
        assert {("x = Q()", "x - 1", ""), ("x - 1", "inc", "x")} <= edges
        assert not any(node.label == "y + 1" for node in graph.nodes)  # part of twice's text

    def test_what_an_if_creates_is_highlighted_with_its_condition(self, storage: Storage) -> None:
        body = (
            "    x = Q()\n    y = inc(x)\n"
            "    if y > 2 and not x == 3:\n        z = add(y, 1)\n        flag = z + y\n"
            "    else:\n        w = mul(y)\n"
        )
        dot = draw(body, storage)
        for label in ("add\\n(if y > 2 and not x == 3)", "flag = z + y\\n(if y > 2 and not x == 3)",
                      "mul\\n(if not (y > 2 and not x == 3))", "z", "w"):
            assert "penwidth=2.5" in node_line(dot, label), label
        for label in ("inc", "y", "x = Q()"):
            assert "penwidth" not in node_line(dot, label), label

    def test_same_block_gives_the_same_text(self, storage: Storage) -> None:
        body = DESIGN_EXAMPLE + "        if acc > 0.5:\n            best = mul(model, 3)\n"
        assert draw(body, storage) == draw(body, storage)


@needs_dot
class TestImages:
    def test_png_bytes(self, storage: Storage) -> None:
        q = run("import mandala_ast\nwith storage.query() as q:\n" + DESIGN_EXAMPLE, storage)["q"]
        picture = q.draw(format="png")
        assert picture.format == "png" and picture.data.startswith(PNG_MAGIC)

    def test_svg_saved_to_a_path(self, storage: Storage, tmp_path: Path) -> None:
        q = run("import mandala_ast\nwith storage.query() as q:\n" + DESIGN_EXAMPLE, storage)["q"]
        q.draw(path=tmp_path / "pattern.svg")
        svg = (tmp_path / "pattern.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "evaluate" in svg
