"""The example notebooks, executed by a real Jupyter kernel (nbclient + ipykernel) as CI would:
twice, each time in a fresh kernel, in a scratch directory that keeps the storage file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.ipynb"))
COMPUTED = re.compile(r"computed (\d+) calls in this kernel")


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """Run every cell of the notebook at *path* in a new kernel whose working directory is
    *workdir*; a cell that raises fails the test with the kernel's traceback."""
    notebook = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(workdir)}}
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", resources=resources)
    client.execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def computed(notebook: nbformat.NotebookNode) -> int:
    texts = [o.text for o in outputs(notebook) if o.output_type == "stream"]
    counts = [int(m.group(1)) for text in texts for m in COMPUTED.finditer(text)]
    assert len(counts) == 1, "the notebook's last cell prints how many calls its kernel computed"
    return counts[0]


def shown(notebook: nbformat.NotebookNode, mime: str) -> list[str]:
    return [o.data[mime] for o in outputs(notebook) if mime in o.get("data", {})]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_notebook_computes_once_and_loads_everything_after_a_kernel_restart(path, tmp_path):
    first = execute(path, tmp_path)
    second = execute(path, tmp_path)  # a new kernel: nothing survives but the storage file
    assert computed(first) > 0
    assert computed(second) == 0
    for notebook in (first, second):
        assert any("<table" in html for html in shown(notebook, "text/html"))
    if shutil.which("dot") is None:
        pytest.skip("graphviz's `dot` is not installed, so pictures hold DOT text and no SVG")
    for notebook in (first, second):
        assert any("<svg" in svg for svg in shown(notebook, "image/svg+xml"))


def test_there_is_an_example_notebook():
    assert EXAMPLES, "examples/*.ipynb is executed in CI"
