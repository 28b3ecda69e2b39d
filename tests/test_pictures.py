"""Pictures of computations (issue 5): DOT text, rendering with graphviz, stored graphs."""

from __future__ import annotations

import shutil
import sys
import textwrap

import pytest

import mandala_ast.runtime.compiled as rt
from mandala_ast import (
    ArgumentError,
    MandalaRenderWarning,
    PictureSaveError,
    RenderError,
    Storage,
    op,
)
from mandala_ast.runtime.pictures import Edge, Graph, Node, render, to_dot

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="graphviz's dot is not installed")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@op
def inc(x: int) -> int:
    return x + 1


@op
def add(y: int, x: int) -> int:
    return y + x


@op
def square(z: int) -> int:
    return z * z


@op
def count_up(n: int) -> list:
    return list(range(1, n + 1))


@pytest.fixture
def chain(tmp_path) -> Storage:
    """``y = inc(x); z = add(y, x); square(z)`` for three x, in uncompiled code (provenance by
    content; the values are chosen so that no raw input equals an earlier output)."""
    storage = Storage(tmp_path / "chain.db")
    with storage:
        for x in [1, 10, 100]:
            square(add(inc(x), x))
    return storage


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def labelled_edges(graph: Graph) -> set[tuple[str, str, str]]:
    """Edges as (source label, target label, edge label)."""
    labels = {node.id: node.label for node in graph.nodes}
    return {(labels[e.source], labels[e.target], e.label) for e in graph.edges}


def parse_graph(dot_text: str) -> Graph:
    """Nodes and edges back from our own DOT output (enough for these tests)."""
    nodes, edges = [], []
    for line in dot_text.splitlines():
        line = line.strip()
        if line.startswith('"') and " -> " in line:
            source, rest = line.split(" -> ", 1)
            target = rest.split(" [")[0].rstrip(";")
            label = rest.split('label="', 1)[1].split('"]')[0] if "label=" in rest else ""
            edges.append(Edge(source.strip('"'), target.strip('"'), label))
        elif line.startswith('"'):
            node_id, rest = line.split(" [", 1)
            label = rest.split('label="', 1)[1].split('", shape=')[0].replace("\\n", "\n")
            kind = {"box": "op", "ellipse": "var", "note": "value"}[rest.split("shape=")[1].split(",")[0]]
            nodes.append(Node(node_id.strip('"'), label, kind))
    return Graph(nodes, edges)


class TestToDot:
    def test_hand_built_graph(self):
        """Node kinds get their shapes, labels are escaped, the title goes on top."""
        graph = Graph(
            [
                Node("x", 'the "x"\nline 2 \\ end', "var"),
                Node("inc", "inc", "op", highlight=True),
                Node("v", "41", "value"),
            ],
            [Edge("x", "inc", "x ×3"), Edge("inc", "v")],
        )
        assert to_dot(graph, title="a\ttitle") == textwrap.dedent(
            """\
            digraph mandala {
              graph [fontname="Helvetica", fontsize=12];
              node [fontname="Helvetica", fontsize=11, color="#4d4d4d"];
              edge [fontname="Helvetica", fontsize=9, color="#666666", fontcolor="#333333"];
              label="a title"; labelloc=t;
              "inc" [label="inc", shape=box, style="rounded,filled", fillcolor="#dbe8f7", penwidth=2.5];
              "v" [label="41", shape=note, style=filled, fillcolor="#fff6d5"];
              "x" [label="the \\"x\\"\\nline 2 \\\\ end", shape=ellipse, style=filled, fillcolor="#f2f2f2"];
              "inc" -> "v";
              "x" -> "inc" [label="x ×3"];
            }
            """
        )

    def test_order_and_duplicates_do_not_change_the_text(self):
        nodes = [Node("a", "a", "op"), Node("b", "b", "var"), Node("c", "c", "value")]
        edges = [Edge("a", "b", "1"), Edge("b", "c"), Edge("a", "c", "2")]
        forward = to_dot(Graph(nodes, edges))
        shuffled = Graph(nodes[::-1] + [Node("a", "a", "op")], edges[::-1] + [Edge("b", "c")])
        assert to_dot(shuffled) == forward
        assert forward.count('"b" -> "c"') == 1

    def test_ids_are_quoted_too(self):
        text = to_dot(Graph([Node('a"b', "x", "op"), Node("c d", "y", "var")], [Edge('a"b', "c d")]))
        assert '"a\\"b" -> "c d";' in text

    def test_edge_to_an_unknown_node_is_an_error(self):
        with pytest.raises(ValueError, match="no node has id 'nope'"):
            to_dot(Graph([Node("a", "a", "op")], [Edge("a", "nope")]))

    def test_unknown_node_kind_is_an_error(self):
        with pytest.raises(ValueError, match="node kind"):
            Node("a", "a", "function")

    def test_add_node_keeps_the_first_node_with_an_id(self):
        graph = Graph()
        graph.add_node(Node("a", "first", "op"))
        graph.add_node(Node("a", "second", "op"))
        graph.add_edge(Edge("a", "a"))
        graph.add_edge(Edge("a", "a"))
        assert [n.label for n in graph.nodes] == ["first"] and len(graph.edges) == 1


@needs_dot
class TestRender:
    def test_svg(self):
        picture = render(Graph([Node("a", "a <&> b", "op")]), "svg")
        assert picture.data.startswith((b"<?xml", b"<svg")) and b"</svg>" in picture.data
        assert picture._repr_svg_() == picture.data.decode() and picture._repr_png_() is None
        assert str(picture) == picture.dot and "SVG" in repr(picture)

    def test_png(self):
        picture = render(Graph([Node("a", "a", "op")]), "png")
        assert picture.data.startswith(PNG_MAGIC)
        assert picture._repr_png_() == picture.data and picture._repr_svg_() is None

    def test_save(self, tmp_path):
        picture = render(Graph([Node("a", "a", "op")]), "svg")
        assert picture.save(tmp_path / "g.svg").read_bytes() == picture.data
        assert picture.save(tmp_path / "g.dot").read_text() == picture.dot
        with pytest.raises(ValueError, match="format='png'"):
            picture.save(tmp_path / "g.png")


class TestSaveErrors:
    @pytest.mark.parametrize("suffix", [".svg", ".dot"])
    def test_saving_into_a_missing_directory_creates_it(self, tmp_path, suffix):
        """As `Storage("results/run.db")` does; it was a raw FileNotFoundError."""
        picture = render(Graph([Node("a", "a", "op")]), "svg")
        written = picture.save(tmp_path / "pictures" / "new" / f"g{suffix}")
        assert written.parent == tmp_path / "pictures" / "new" and written.stat().st_size > 0

    @pytest.mark.parametrize("suffix", [".svg", ".dot"])
    def test_saving_where_no_file_can_be_written_is_an_error_naming_the_file(self, tmp_path, suffix):
        """A file where the directory should be: a raw NotADirectoryError (FileExistsError
        once directories are made), naming no picture."""
        (tmp_path / "file").write_text("not a directory")
        target = tmp_path / "file" / f"g{suffix}"
        with pytest.raises(PictureSaveError, match=f"cannot save the picture to {target}") as info:
            render(Graph([Node("a", "a", "op")]), "svg").save(target)
        assert isinstance(info.value, OSError)

    def test_a_suffix_that_is_no_format_is_not_suggested_as_one(self, tmp_path):
        """Saving an SVG as `g.txt` said "draw it with format='txt'", which is refused."""
        picture = render(Graph([Node("a", "a", "op")]), "svg")
        if picture.data is None:
            pytest.skip("graphviz's dot is not installed")
        with pytest.raises(ArgumentError, match=r"save it as \.svg") as info:
            picture.save(tmp_path / "g.txt")
        assert "format='txt'" not in str(info.value)

    def test_an_unknown_format_is_an_argument_error(self):
        with pytest.raises(ArgumentError, match="format must be one of"):
            render(Graph(), "pdf")


class TestRenderErrors:
    def test_bad_format(self):
        with pytest.raises(ValueError, match="format must be one of"):
            render(Graph(), "pdf")

    def test_without_dot_the_dot_text_is_returned(self, no_dot, tmp_path):
        graph = Graph([Node("a", "a", "op")])
        with pytest.warns(MandalaRenderWarning) as record:
            picture = render(graph, "svg")
        assert len(record) == 1
        message = str(record[0].message)
        for hint in ("apt install graphviz", "brew install graphviz", "conda install graphviz",
                     "https://graphviz.org/download/", "DOT text is returned"):
            assert hint in message
        assert picture.data is None and picture.dot == str(picture) == to_dot(graph)
        assert picture._repr_svg_() is None and picture._repr_png_() is None
        assert "not rendered" in repr(picture)
        with pytest.warns(MandalaRenderWarning, match="wrote the DOT text to"):
            written = picture.save(tmp_path / "g.svg")
        assert written == tmp_path / "g.dot" and written.read_text() == picture.dot
        assert not (tmp_path / "g.svg").exists()

    @pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for dot")
    def test_dot_failing_raises_with_its_message(self, tmp_path, monkeypatch):
        fake = tmp_path / "bin" / "dot"
        fake.parent.mkdir()
        fake.write_text("#!/bin/sh\necho 'Error: syntax error in line 3' >&2\nexit 1\n")
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", str(fake.parent))
        with pytest.raises(RenderError, match="exit status 1.*syntax error in line 3"):
            render(Graph([Node("a", "a", "op")]))


class TestOpGraph:
    def graph(self, storage: Storage, target) -> Graph:
        return parse_graph(storage.draw(target).dot)

    def test_chain_around_add(self, chain):
        """Upstream (inc), downstream (square), raw inputs, and call counts on the edges."""
        graph = self.graph(chain, add)
        assert sorted(n.label for n in graph.nodes if n.kind == "op") == ["add", "inc", "square"]
        edges = labelled_edges(graph)
        assert ("output", "add", "y ×3") in edges  # inc's output feeds add's y
        assert ("x\n3 values", "add", "x ×3") in edges and ("x\n3 values", "inc", "x ×3") in edges
        assert ("inc", "output", "×3 calls") in edges and ("output", "square", "z ×3") in edges
        assert {(e.source, e.target) for e in graph.edges} >= {
            (f"op:{inc.name}", f"out:{inc.name}:0"),
            (f"out:{inc.name}:0", f"op:{add.name}"),
            (f"out:{add.name}:0", f"op:{square.name}"),
        }

    def test_the_target_is_highlighted(self, chain):
        line = next(s for s in chain.draw(add).dot.splitlines() if s.strip().startswith(f'"op:{add.name}"'))
        assert "penwidth" in line

    def test_downstream_is_transitive(self, chain):
        graph = self.graph(chain, inc)
        assert sorted(n.label for n in graph.nodes if n.kind == "op") == ["add", "inc", "square"]

    def test_exact_provenance_is_used_when_recorded(self, tmp_path):
        """With compiled code's provenance, x=2 is a raw input even though inc(1) returned 2."""
        storage = Storage(tmp_path / "s.db")
        with storage:
            for x in [1, 2, 3]:
                y = rt.call((("y@m",), (None,), None), inc, x)
                rt.call((("z@m",), ("y@m", None), None), add, y, x)
        edges = labelled_edges(self.graph(storage, add))
        assert ("output", "add", "y ×3") in edges and ("x\n3 values", "add", "x ×3") in edges
        uncompiled = Storage(tmp_path / "u.db")
        with uncompiled:
            for x in [1, 2, 3]:
                add(inc(x), x)
        edges = labelled_edges(self.graph(uncompiled, add))
        # By content, the x values 2 and 3 look like earlier outputs: not all raw any more.
        assert ("x\n1 value", "add", "x ×1") in edges and ("x\n3 values", "add", "x ×3") not in edges

    def test_an_op_feeding_itself(self, tmp_path):
        storage = Storage(tmp_path / "s.db")
        with storage:
            inc(inc(1000))
        graph = self.graph(storage, inc)
        assert {("output", "inc", "x ×1"), ("x\n1 value", "inc", "x ×1")} <= labelled_edges(graph)
        line = next(s for s in storage.draw(inc).dot.splitlines() if f'"op:{inc.name}" [' in s)
        assert "penwidth" in line  # the target is drawn highlighted, its own producer or not

    def test_an_op_without_calls(self, tmp_path):
        graph = self.graph(Storage(tmp_path / "s.db"), add)
        assert [n.label for n in graph.nodes if n.kind == "op"] == ["add"]

    def test_many_calls_make_a_small_picture(self, tmp_path):
        storage = Storage(tmp_path / "s.db")
        with storage:
            for x in range(500):
                add(inc(x * 1000), x * 1000)
        graph = self.graph(storage, add)
        assert len(graph.nodes) == 6 and ("inc", "output", "×500 calls") in labelled_edges(graph)


class TestValueGraph:
    def test_the_calls_a_value_came_from(self, chain):
        graph = parse_graph(chain.draw(square(add(inc(10), 10))).dot)
        assert sorted(n.label for n in graph.nodes if n.kind == "op") == ["add", "inc", "square"]
        assert sorted(n.label for n in graph.nodes if n.kind == "value") == ["10", "11", "21", "441"]
        edges = labelled_edges(graph)
        assert {("10", "inc", "x"), ("11", "add", "y"), ("10", "add", "x"), ("21", "square", "z")} <= edges
        assert ("square", "441", "") in edges

    def test_the_value_is_highlighted_in_the_title(self, chain):
        text = chain.draw(21).dot
        assert 'label="where 21 came from"' in text and "penwidth" in text

    def test_long_histories_stop_at_a_marker(self, tmp_path):
        storage = Storage(tmp_path / "s.db")
        with storage:
            value = 0
            for _ in range(150):
                value = inc(value)
        graph = parse_graph(storage.draw(150).dot)
        assert 150 <= len(graph.nodes) <= 210
        assert any(n.label.startswith("…") for n in graph.nodes)
        assert "0" not in {n.label for n in graph.nodes}  # the start is beyond the cut

    def test_labels_are_short(self, tmp_path):
        storage = Storage(tmp_path / "s.db")
        with storage:
            count_up(5000)  # large: described, not loaded
            add("a" * 100, "b")  # long: truncated
        graph = parse_graph(storage.draw("a" * 100 + "b").dot)
        assert ("'" + "a" * 38 + "…") in {n.label for n in graph.nodes}
        big = parse_graph(storage.draw(list(range(1, 5001))).dot)
        assert any(n.label.startswith("<pickle value, ") for n in big.nodes)

    def test_a_raw_input_alone(self, chain):
        graph = parse_graph(chain.draw(100).dot)
        assert [(n.label, n.kind) for n in graph.nodes] == [("100", "value")]

    def test_a_value_not_stored_is_an_error(self, chain):
        with pytest.raises(LookupError, match="this value is not in the storage"):
            chain.draw(12345)


class TestStorageDraw:
    def test_bad_format(self, chain):
        with pytest.raises(ValueError, match="format must be one of"):
            chain.draw(add, format="jpg")

    def test_draw_commits_pending_calls(self, tmp_path):
        storage = Storage(tmp_path / "s.db")
        with storage:
            inc(41)
            assert "inc" in storage.draw(42).dot

    @needs_dot
    def test_path_saves_the_image(self, chain, tmp_path):
        picture = chain.draw(add, format="png", path=tmp_path / "add.png")
        assert (tmp_path / "add.png").read_bytes() == picture.data and picture.data.startswith(PNG_MAGIC)

    def test_without_dot_path_saves_the_dot_text(self, chain, no_dot, tmp_path):
        with pytest.warns(MandalaRenderWarning):
            picture = chain.draw(add, path=tmp_path / "add.svg")
        assert picture.data is None and (tmp_path / "add.dot").read_text() == picture.dot

    def test_a_workflow_is_not_a_target(self, chain):
        from mandala_ast import workflow

        with pytest.raises(TypeError, match="workflow"):
            chain.draw(workflow(lambda x: x))
