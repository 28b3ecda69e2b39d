"""``%load_ext mandala_ast`` in a real IPython ``InteractiveShell`` (each session a fresh
interpreter, driven by ipython_cells.py), and the cell compiler on its own."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from textwrap import dedent

import pytest

pytest.importorskip("IPython")

from mandala_ast import MandalaDiagnosticWarning  # noqa: E402
from mandala_ast.ipython import CellCompiler  # noqa: E402

DRIVER = Path(__file__).with_name("ipython_cells.py")

SETUP = """
from mandala_ast import Q, Storage, op, workflow as wf
COMPUTED = []
storage = Storage({db!r})
"""

HELPER = """
def scale(x):
    return 10 * x
"""

OPS = """
@op
def inc(x: int) -> int:
    COMPUTED.append(("inc", x))
    return scale(x) + 1

@op
def add(x: int, y: int) -> int:
    COMPUTED.append(("add", x, y))
    return x + y
"""

RUN = """with storage.run():
    for x in [1, 2]:
        y = inc(x)
        z = add(y, x)
"""

QUERY = """with storage.query() as q:
    x = Q()
    y = inc(x)
    z = add(y, x)
q.df().to_dict("list")
"""

WORKFLOW = """
@wf
def pipeline(x):
    y = inc(x)
    return add(y, y)

with storage.run():
    w = pipeline(1)
w
"""

SHOW = "COMPUTED"


def session(tmp_path: Path, *cells: str, options: tuple[str, ...] = ()) -> list[dict]:
    """Run *cells* in a fresh IPython shell; one result dict per cell."""
    cells_file = tmp_path / "cells.json"
    cells_file.write_text(json.dumps([dedent(c).format(db=str(tmp_path / "nb.db")) for c in cells]))
    command = [sys.executable, str(DRIVER), str(cells_file), *options]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def value(result: dict):
    assert result["success"], result["stdout"]
    return eval(result["value"]) if result["value"] is not None else None


def test_run_query_delete_and_workflow_blocks_work_in_cells(tmp_path):
    delete = "with storage.delete() as d:\n    y = inc(2)\nd.report.calls"
    results = session(tmp_path, SETUP, HELPER, OPS, RUN, QUERY, WORKFLOW, SHOW, delete)
    assert all(r["success"] for r in results), [r["stdout"] for r in results]
    assert value(results[7]) == 2  # inc(2), and add(21, 2) computed from it
    assert value(results[4]) == {"x": [1, 2], "y": [11, 21], "z": [12, 23]}  # needs compiled code
    assert value(results[5]) == 22
    assert value(results[6]) == [("inc", 1), ("add", 11, 1), ("inc", 2), ("add", 21, 2), ("add", 11, 11)]
    assert "deleted 2 calls (1 matched, 1 computed from them)" in results[7]["stdout"]
    assert not any(r["warnings"] for r in results)


def test_a_restarted_kernel_loads_everything_computed_before(tmp_path):
    session(tmp_path, SETUP, HELPER, OPS, RUN, WORKFLOW)
    again = session(tmp_path, SETUP, HELPER, OPS, RUN, WORKFLOW, QUERY, SHOW)
    assert value(again[-1]) == []
    assert value(again[-2])["z"] == [12, 23]


def test_editing_a_helper_in_a_later_cell_recomputes_with_the_diff(tmp_path):
    edited = HELPER.replace("10 * x", "100 * x")
    results = session(tmp_path, SETUP, HELPER, OPS, RUN, "COMPUTED.clear()", edited, RUN, SHOW)
    assert value(results[-1]) == [("inc", 1), ("add", 101, 1), ("inc", 2), ("add", 201, 2)]
    assert "-    return 10 * x" in results[-2]["stdout"] and "+    return 100 * x" in results[-2]["stdout"]


def test_an_op_edited_in_a_later_cell_recomputes_and_a_cosmetic_edit_does_not(tmp_path):
    cosmetic = OPS.replace("return x + y", "return x + y  # a comment").replace("def inc(x: int)", "def inc(x: int)  ")
    real = OPS.replace("return x + y", "return y + x + 0")
    results = session(tmp_path, SETUP, HELPER, OPS, RUN, "COMPUTED.clear()", cosmetic, RUN, SHOW, real, RUN, SHOW)
    assert value(results[7]) == []
    assert value(results[10]) == [("add", 11, 1), ("add", 21, 2)]
    assert "__main__.add" in results[9]["stdout"]


def test_a_traceback_points_at_the_cells_line_as_typed(tmp_path):
    failing = """with storage.run():
    y = inc(1)
    boom = y / 0
"""
    results = session(tmp_path, SETUP, HELPER, OPS, failing)
    out = results[-1]["stdout"]
    assert not results[-1]["success"]
    assert "ZeroDivisionError" in out and "line 3" in out
    assert "boom = y / 0" in out and "__mandala_rt__" not in out


def test_a_cell_libcst_cannot_rewrite_runs_as_written_with_one_warning(tmp_path):
    unparsable = "with storage.run():  # LIBCST_FAILS\n    y = inc(1)\ny\n"
    results = session(tmp_path, SETUP, HELPER, OPS, unparsable, options=("--libcst-fails",))
    assert value(results[-1]) == 11
    assert [w.split(":")[0] for w in results[-1]["warnings"]] == ["MandalaFallbackWarning"]
    assert "could not compile this cell" in results[-1]["warnings"][0]


def test_a_cell_with_a_syntax_error_shows_pythons_error_and_no_fallback_warning(tmp_path):
    # The warning quoted libcst's parse error about a line of the frame the cell is
    # compiled in ("from mandala_ast import workflow as workflow"), which the user never wrote.
    results = session(tmp_path, SETUP, "with storage.run():\n    y = inc(1\n")
    assert not results[-1]["success"] and "SyntaxError" in results[-1]["stdout"]
    assert results[-1]["warnings"] == []


def test_a_query_block_in_a_script_run_with_percent_run_says_how_to_run_it_compiled(tmp_path):
    # %run compiles with Python's own compile: the error said to use `mandala-ast run` or the
    # import hook, nothing about %run, in a notebook where cells are compiled.
    script = tmp_path / "script.py"
    script.write_text("from mandala_ast import Q, Storage\nwith Storage().query() as q:\n    Q()\n")
    results = session(tmp_path, f"%run {script}", f"import mandala_ast\nmandala_ast.compile_module({str(script)!r}).q")
    assert f"IPython's %run runs {script} as written" in results[0]["stdout"]
    assert f"mandala_ast.compile_module({str(script)!r})` runs it compiled" in results[0]["stdout"]
    assert results[1]["success"] and results[1]["value"].startswith("<query of")


def test_a_cell_without_blocks_or_workflows_is_left_untouched():
    compiler = CellCompiler(types.SimpleNamespace(user_ns={}))
    for text in ["x = 1\n", "import mandala_ast\nstorage.df(inc)", "with open('f') as f:\n    f.read()\n"]:
        assert compiler.compile_cell(text) is text or compiler.compile_cell(text) == text


def test_a_block_cell_keeps_every_line_on_its_line():
    text = "with storage.run():\n    y = inc(1)\n    z = add(y, 2)\ny"
    compiled = CellCompiler(types.SimpleNamespace(user_ns={})).compile_cell(text)
    assert compiled != text
    assert len(compiled.splitlines()) == len(text.splitlines()) and compiled.endswith("\ny")


def test_storages_queries_why_and_pictures_display_rich_in_jupyter_and_as_text_in_a_terminal(tmp_path):
    formats = "fmt = lambda obj: get_ipython().display_formatter.format(obj)[0]"
    edited = OPS.replace("return x + y", "return x + y + 0")
    results = session(
        tmp_path, SETUP, formats, HELPER, OPS, RUN, QUERY.replace('q.df().to_dict("list")', ""), edited,
        "fmt(storage)", "fmt(q)", "fmt(storage.versions(add))", "fmt(storage.why(add, 11, 1))",
    )
    storage, query, versions, why = (value(r) for r in results[-4:])
    assert "<td><code>__main__.inc</code></td><td>1</td><td>2</td>" in storage["text/html"]
    assert storage["text/plain"] == f"Storage({str(tmp_path / 'nb.db')!r})"
    assert "<table" in query["text/html"] and "<th>z</th>" in query["text/html"]
    assert "<table" in versions["text/html"]
    assert why["text/plain"].startswith("miss: __main__.add(x=11, y=1) was computed by another version")
    assert '<span style="color: #116329; background: #dafbe1">+    return x + y + 0</span>' in why["text/html"]


def test_a_class_defined_in_a_cell_has_its_source_for_fingerprints_and_diffs(tmp_path):
    # inspect.getsource finds classes through their module's file; a notebook's __main__ has none.
    cls = "class Scaler:\n    K = 2\n\n    def apply(self, x):\n        return self.K * x\n"
    ask = "from mandala_ast.runtime.fingerprints import fingerprint\nfingerprint(Scaler).source"
    results = session(tmp_path, cls, ask)
    assert value(results[-1]) == cls


def test_a_transform_diagnostic_names_the_cells_line():
    text = "x = 1\nwith storage.run():\n    __mandala_rt__ = 1\n"
    with pytest.warns(MandalaDiagnosticWarning, match=r"^cell line 1: not rewritten: it already refers to __mandala_rt__"):
        assert CellCompiler(types.SimpleNamespace(user_ns={})).compile_cell(text) == text


def test_workflow_aliases_bound_by_earlier_cells_are_seen():
    import mandala_ast

    text = "@flow\ndef pipeline(x):\n    return inc(x)\n"
    compiler = CellCompiler(types.SimpleNamespace(user_ns={"flow": mandala_ast.workflow}))
    assert compiler.compile_cell(text) != text
    assert CellCompiler(types.SimpleNamespace(user_ns={"flow": print})).compile_cell(text) == text


def _autoreload_edit(tmp_path, before: str, after: str, *, new_storage: bool = False) -> list:
    """A session whose helper module is edited from ``before`` to ``after`` under
    %autoreload 2, which swaps the new code into the existing function objects: nothing is
    rebound, so only the functions' code (and defaults) tell that the helper changed."""
    module = tmp_path / "helpers_ar.py"
    module.write_text(before)
    setup = f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n%load_ext autoreload\n%autoreload 2\n"
    ops = "from helpers_ar import scale\n" + OPS
    edit = (
        f"import os\nopen({str(module)!r}, 'w').write({after!r})\n"
        f"os.utime({str(module)!r}, (os.stat({str(module)!r}).st_mtime + 10,) * 2)"
    )
    reopen = SETUP.replace("COMPUTED = []\n", "") if new_storage else "None"  # the storage cell run again
    results = session(tmp_path, setup, SETUP, ops, RUN, "COMPUTED.clear()", edit, "scale(1)", reopen, RUN, SHOW)
    assert value(results[6]) == 100  # autoreload did reload the module
    assert value(results[-1]) == [("inc", 1), ("add", 101, 1), ("inc", 2), ("add", 201, 2)]
    return results


def test_a_helper_module_edited_under_autoreload_recomputes(tmp_path):
    results = _autoreload_edit(tmp_path, "def scale(x):\n    return 10 * x\n", "def scale(x):\n    return 100 * x\n")
    assert "-    return 10 * x" in results[-2]["stdout"] and "+    return 100 * x" in results[-2]["stdout"]


@pytest.mark.parametrize("new_storage", [False, True], ids=["same storage", "storage cell run again"])
def test_a_helper_default_edited_under_autoreload_recomputes(tmp_path, new_storage):
    # Only the default differs: the reloaded code object equals the old one, and a fingerprint
    # cached for it was served, also to a Storage object made after the edit.
    before, after = "def scale(x, k=10):\n    return k * x\n", "def scale(x, k=100):\n    return k * x\n"
    _autoreload_edit(tmp_path, before, after, new_storage=new_storage)


def test_a_process_pool_started_before_a_helper_edit_stores_no_result_of_the_old_code(tmp_path):
    # The pool's workers were forked before the edit and run the old helper; the batch
    # stored what they computed under the new code, and later blocks served it.
    setup = "from concurrent.futures import ProcessPoolExecutor\npool = ProcessPoolExecutor(2)\n"
    batch = (
        "try:\n    with storage.batch(executor=pool, progress=False):\n        ys = [inc(x) for x in [1, 2]]\n"
        "except BaseException as exc:\n    ys = repr(exc)\nys\n"
    )
    edited = HELPER.replace("10 * x", "100 * x")
    results = session(tmp_path, SETUP, setup, HELPER, OPS, batch, edited, batch,
                      "with storage.run():\n    zs = [inc(x) for x in [1, 2]]\nzs")
    assert value(results[4]) == [11, 21]
    assert "BatchWorkerError" in results[6]["value"] and "run other code than this process" in results[6]["value"]
    assert value(results[-1]) == [101, 201]


def test_a_script_of_ops_and_a_class_edited_and_run_again_with_percent_run_recomputes(tmp_path):
    # No plain function to tell the namespace's module: the ops' own functions and the
    # class's methods do (the helper is a static method here).
    script = tmp_path / "script.py"
    helper = "class Scale:\n    @staticmethod\n    def scale(x):\n        return 10 * x\n"
    script.write_text("from mandala_ast import op\nCOMPUTED = []\n" + helper + OPS.replace("scale(x)", "Scale.scale(x)"))
    edit = f"import pathlib\np = pathlib.Path({str(script)!r})\np.write_text(p.read_text().replace('10 * x', '100 * x'))"
    results = session(tmp_path, SETUP, f"%run {script}", RUN, edit, f"%run {script}", RUN, SHOW)
    assert value(results[-1]) == [("inc", 1), ("add", 101, 1), ("inc", 2), ("add", 201, 2)]


def test_a_script_edited_and_run_again_with_percent_run_recomputes(tmp_path):
    # %run deletes __name__ from the script's namespace once it ran: the functions' globals
    # named no module, so the helpers an op ran were no dependencies and edits went unseen.
    script = tmp_path / "script.py"
    script.write_text("from mandala_ast import op\nCOMPUTED = []\n" + HELPER + OPS)  # each run: a list of its own
    edit = f"import pathlib\np = pathlib.Path({str(script)!r})\np.write_text(p.read_text().replace('10 * x', '100 * x'))"
    results = session(tmp_path, SETUP, f"%run {script}", RUN, edit, f"%run {script}", RUN, SHOW)
    assert value(results[-1]) == [("inc", 1), ("add", 101, 1), ("inc", 2), ("add", 201, 2)]


def test_a_query_block_in_a_cell_run_without_the_extension_says_to_load_it(tmp_path):
    # The error told a notebook user to run the cell "with `mandala-ast run`", or that IPython's
    # %run ran the cell, or that the cell "never mentions mandala_ast": never %load_ext.
    mentioning = "import mandala_ast\n" + QUERY
    results = session(tmp_path, "%unload_ext mandala_ast", SETUP, HELPER, OPS, QUERY, mentioning)
    for result in results[-2:]:
        assert not result["success"]
        assert "QueryError: a query block must be compiled" in result["stdout"]
        assert "this cell ran before `%load_ext mandala_ast`" in result["stdout"]
        assert "%run" not in result["stdout"] and "never mentions" not in result["stdout"]


@pytest.mark.parametrize(
    "change",
    ['table["a"] = [1, 2, 4]', 'table.loc[2, "a"] = 4', "series.iloc[2] = 4"],
)
def test_a_small_frame_changed_in_place_in_a_later_cell_recomputes_the_op_that_reads_it(tmp_path, change):
    # The most common notebook edit of data (a column fixed, a value corrected in place):
    # small arrays, containers and config objects were hashed again at each block, frames
    # never, and the op served its result for the frame as it was.
    data = "import pandas as pd\ntable = pd.DataFrame(dict(a=[1, 2, 3]))\nseries = table['a'].copy()\n"
    ops = "@op\ndef total(x: int) -> int:\n    return x + int(table['a'].sum()) + int(series.sum())\n"
    run = "with storage.run():\n    y = total(0)\ny"
    results = session(tmp_path, SETUP, data, ops, run, change, run)
    assert results[4]["success"] and (value(results[3]), value(results[5])) == (12, 13)


def test_a_value_a_notebook_cell_sets_recomputes_the_op_that_reads_it(tmp_path):
    """``K`` defined in a cell, which no file holds, and rebound by ``set_k``: a direct read
    of such state counted by its definition's text, which a notebook has none of, so it
    counted not at all and ``set_k(5)`` (or ``K = 4``) in a later cell served the result of 3."""
    state = "K = 3\n\ndef set_k(v):\n    global K\n    K = v\n\ndef scaled(x):\n    return x * K\n"
    ops = "@op\ndef f(x: int) -> int:\n    return scaled(x)\n"
    run = "with storage.run():\n    y = f(2)\ny"
    results = session(tmp_path, SETUP, state, ops, run, "set_k(5)", run, "K = 4", run)
    assert [value(results[i]) for i in (3, 5, 7)] == [6, 10, 8]


def test_a_query_block_in_the_cell_that_loads_the_extension_says_to_load_it_in_a_cell_of_its_own(tmp_path):
    # A cell is compiled before it runs, so the cell whose first line is `%load_ext mandala_ast`
    # is not (`ipython -c "..."` is one such cell): the error said "this cell ran before
    # `%load_ext mandala_ast`", of the very cell that loads it.
    loading = "%load_ext mandala_ast\n" + QUERY
    results = session(tmp_path, "%unload_ext mandala_ast", SETUP, HELPER, OPS, loading)
    assert not results[-1]["success"]
    out = results[-1]["stdout"]
    assert "this cell loads the extension itself" in out and "`%load_ext mandala_ast` in a cell of its own" in out
    assert "--ext mandala_ast" in out and "this cell ran before" not in out
