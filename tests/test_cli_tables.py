"""Rows printed by the command line: tables within the width, CSV and JSON for programs."""

from __future__ import annotations

import csv
import io
import json

from mandala_ast.cli.tables import render


def test_table_is_cut_to_the_width_widest_columns_first():
    rows = [["x" * 60, "y" * 60, 1]]
    lines = render(["a", "b", "n"], rows, "table", width=80).splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].split()[0].endswith("…") and lines[1].split()[-1] == "1"


def test_numbers_align_right_text_left():
    text = render(["n", "s"], [[1, "a"], [200, "bc"]], "table", width=80)
    assert text.splitlines() == ["  n  s", "  1  a", "200  bc"]


def test_csv_and_json_keep_everything():
    rows = [["a,b", None, 1.5]]
    parsed = list(csv.reader(io.StringIO(render(["s", "none", "f"], rows, "csv"))))
    assert parsed == [["s", "none", "f"], ["a,b", "", "1.5"]]
    assert json.loads(render(["s", "none", "f"], rows, "json")) == [{"s": "a,b", "none": None, "f": 1.5}]
