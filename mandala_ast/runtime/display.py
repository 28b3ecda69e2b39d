"""Rich display in Jupyter: HTML for storages, query results and ``why`` answers.

Jupyter asks an object for ``_repr_html_`` (and ``_repr_svg_``: pictures.py) before its text;
a terminal never does, so the text forms stay what they were. Nothing here imports pandas
unless a table is shown.

>>> print(Explanation("hit: inc(x=1) is stored"))
hit: inc(x=1) is stored
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import SQLiteStore

__all__ = ["Explanation", "explanation_html", "query_html", "storage_html", "storage_summary"]

_SUMMARY_SQL = (
    "SELECT v.op_name, COUNT(DISTINCT v.version_id),"
    " (SELECT COUNT(*) FROM calls c WHERE c.version_id IN"
    "  (SELECT version_id FROM versions w WHERE w.op_name = v.op_name))"
    " FROM versions v WHERE v.op_name NOT LIKE 'mandala_ast.%' GROUP BY v.op_name ORDER BY v.op_name"
)


class Explanation(str):
    """What ``storage.why`` returns: the text, shown as text in a terminal (not as a quoted
    string) and with its diff coloured in Jupyter.

    >>> Explanation("miss: f(x=1) was computed before, but\\n--- stored").splitlines()[0]
    'miss: f(x=1) was computed before, but'
    """

    __slots__ = ()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        return explanation_html(str(self))


def explanation_html(text: str) -> str:
    """*text* as a ``<pre>`` block; unified-diff lines coloured as a code review shows them."""
    lines = []
    for line in text.splitlines():
        style = _diff_style(line)
        escaped = html.escape(line)
        lines.append(f'<span style="{style}">{escaped}</span>' if style else escaped)
    return "<pre>" + "\n".join(lines) + "</pre>"


def _diff_style(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "font-weight: bold"
    if line.startswith("+"):
        return "color: #116329; background: #dafbe1"
    if line.startswith("-"):
        return "color: #82071e; background: #ffebe9"
    if line.startswith("@@"):
        return "color: #0550ae"
    return ""


def storage_summary(store: SQLiteStore) -> list[tuple[str, int, int]]:
    """``[(op name, versions, stored calls), ...]`` for the user's ops, by name."""
    return [tuple(row) for row in store.conn.execute(_SUMMARY_SQL).fetchall()]


def storage_html(title: str, rows: list[tuple[str, int, int]]) -> str:
    """A storage as a heading and a table of its ops (Jupyter shows it for ``storage``)."""
    head = f"<p><b>{html.escape(title)}</b>: {len(rows)} op{'s' if len(rows) != 1 else ''}, "
    head += f"{sum(r[2] for r in rows):,} stored calls</p>"
    if not rows:
        return head
    cells = "<tr><td><code>{}</code></td><td>{:,}</td><td>{:,}</td></tr>"
    body = "".join(cells.format(html.escape(name), versions, calls) for name, versions, calls in rows)
    header = "<thead><tr><th>op</th><th>versions</th><th>calls</th></tr></thead>"
    return head + f"<table>{header}<tbody>{body}</tbody></table>"


def query_html(description: str, frame: Any) -> str:
    """A query result: its description over its table (pandas' own HTML, truncated as usual)."""
    return f"<p>{html.escape(description)}</p>" + frame._repr_html_()
