"""Rows printed for people and programs: aligned tables that fit the terminal, CSV, JSON.

>>> print(render(["n", "name"], [[1, "a"], [20, "bcd"]], "table", width=80), end="")
 n  name
 1  a
20  bcd
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Sequence
from typing import Any

__all__ = ["FORMATS", "render", "terminal_width"]

FORMATS = ("table", "csv", "json")
_GAP = "  "
_NARROWEST = 6  # a column is never cut below this many characters
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def terminal_width() -> int:
    """The terminal's width (``COLUMNS``, else 80 when not a terminal)."""
    return shutil.get_terminal_size((80, 24)).columns


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], format: str, *, width: int | None = None) -> str:
    """``rows`` (cells: any value; ``str()`` is shown) as a table, CSV or JSON text."""
    if format == "csv":
        return _csv(columns, rows)
    if format == "json":
        cells = [dict(zip(columns, map(_json_cell, row))) for row in rows]
        return json.dumps(cells, indent=1, allow_nan=False) + "\n"
    return _table(columns, rows, width or terminal_width())


def _csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if cell is None else str(cell) for cell in row] for row in rows])
    return out.getvalue()


def _json_cell(cell: Any) -> Any:
    if type(cell) is float and not math.isfinite(cell):
        # JSON has no NaN or Infinity: json.dumps's bare tokens break every other parser
        # (jq, JavaScript); the text float() reads back, as the export writes a NaN.
        return _NON_FINITE.get(cell, "NaN")
    return cell if cell is None or type(cell) in (bool, int, float, str) else str(cell)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int) -> str:
    texts = [list(columns)] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in texts) for i in range(len(columns))]
    _fit(widths, width - len(_GAP) * (len(columns) - 1))
    numeric = [all(_is_number(row[i]) for row in texts[1:]) and len(texts) > 1 for i in range(len(columns))]
    lines = [_GAP.join(_cell(row[i], widths[i], numeric[i]) for i in range(len(columns))).rstrip() for row in texts]
    return "\n".join(lines) + "\n"


def _fit(widths: list[int], room: int) -> None:
    """Narrow the widest columns, one character at a time, until the row fits ``room``."""
    while sum(widths) > room and max(widths) > _NARROWEST:
        widths[widths.index(max(widths))] -= 1


def _cell(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == ""
    return True
