"""Rich display: the HTML Jupyter shows, and the text a terminal shows."""

from __future__ import annotations

from mandala_ast import Storage, op
from mandala_ast.runtime.display import Explanation, explanation_html


@op
def double(x: int) -> int:
    return 2 * x


def test_why_is_text_in_a_terminal_and_a_coloured_diff_in_jupyter():
    answer = Explanation("miss: f(x=1) was computed before, but\n--- stored\n+++ current\n-old <\n+new\n same")
    assert isinstance(answer, str) and answer.startswith("miss:")
    html = explanation_html(answer)
    assert "<b>" not in html and "old &lt;" in html and "\n same" in html
    assert '<span style="color: #116329; background: #dafbe1">+new</span>' in html


def test_storage_why_answers_with_an_explanation(tmp_path):
    storage = Storage(tmp_path / "d.db")
    with storage:
        double(2)
    answer = storage.why(double, 2)
    assert isinstance(answer, Explanation) and answer.startswith("hit: ")
    assert answer._repr_html_().startswith("<pre>hit: ")


def test_a_storage_shows_its_ops_versions_and_calls(tmp_path):
    storage = Storage(tmp_path / "d.db")
    assert "0 ops, 0 stored calls" in storage._repr_html_()
    with storage:
        for x in range(3):
            double(x)
        html = storage._repr_html_()  # inside a block: the buffered calls count too
    assert "1 op, 3 stored calls" in html
    assert "<tr><td><code>test_display.double</code></td><td>1</td><td>3</td></tr>" in html
