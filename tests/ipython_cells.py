"""Run notebook cells in a real IPython ``InteractiveShell`` in a fresh interpreter.

``python ipython_cells.py cells.json`` runs each cell (after ``%load_ext mandala_ast``) and
prints one JSON object per cell: whether it succeeded, what it printed (tracebacks included,
without colours), the repr of its value, and the warnings it raised. A fresh interpreter per
session stands for a fresh kernel: nothing the library caches in-process survives.
"""

from __future__ import annotations

import json
import sys
import warnings

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config


def run_cells(cells: list[str]) -> list[dict]:
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "nocolor"
    shell = InteractiveShell.instance(config=config)
    shell.run_cell("%load_ext mandala_ast")
    return [run_one(shell, cell) for cell in cells]


def run_one(shell: InteractiveShell, cell: str) -> dict:
    with warnings.catch_warnings(record=True) as caught, capture_output() as out:
        warnings.simplefilter("always")
        result = shell.run_cell(cell, store_history=True)
    return {
        "success": result.success,
        "stdout": out.stdout + out.stderr,
        "value": None if result.result is None else repr(result.result),
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }


def fail_marked_cells() -> None:
    """Stand in for a libcst grammar gap (LibCST #989/#993): a real libcst parse failure for
    cells containing ``# LIBCST_FAILS``; every other cell goes through the real transform."""
    import libcst

    from mandala_ast import compiler
    from mandala_ast.transforms import transform_source

    def transform(text: str, path: str):
        if "# LIBCST_FAILS" in text:
            libcst.parse_module("def (:\n")
        return transform_source(text, path)

    compiler._transform_override = transform


if __name__ == "__main__":
    if "--libcst-fails" in sys.argv:
        fail_marked_cells()
    with open(sys.argv[1], encoding="utf-8") as file:
        print(json.dumps(run_cells(json.load(file))))
