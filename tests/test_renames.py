"""Renaming and moving ops and renaming arguments keeps stored calls (renames.py).

The code before and after a rename lives in real module files, run in separate processes:
the process that renames never saw the old code.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from formats import format_7_layout

from mandala_ast import MandalaWarning, RenameError, Storage, op
from mandala_ast._errors import UnknownOpError

#: First on the subprocesses' path, ahead of the editable install's finder (which names
#: another checkout): the processes run this tree's code, as the test process does.
REPO = Path(__file__).resolve().parent.parent

OLD_STEPS = """
from mandala_ast import op

COMPUTED = []

@op
def double(x):
    COMPUTED.append(x)
    return 2 * x
"""
OLD_MAIN = """
import json, steps
from mandala_ast import Q, op

RUNS = []

@op
def add(a, b):
    RUNS.append((a, b))
    return a + b

def run(storage):
    with storage.run():
        out = [add(steps.double(i), i) for i in range(3)]
    return out
"""
# The same code after a refactoring: double is now shapes.twice, add's b is now c.
NEW_SHAPES = """
from mandala_ast import op

COMPUTED = []

@op
def twice(x):
    COMPUTED.append(x)
    return 2 * x
"""
NEW_MAIN = """
import json, shapes
from mandala_ast import Q, op

RUNS = []

@op
def add(a, c):
    RUNS.append((a, c))
    return a + c

def run(storage):
    with storage.run():
        out = [add(shapes.twice(i), i) for i in range(3)]
    return out

def query(storage):
    with storage.query() as q:
        x = Q()
        y = shapes.twice(x)
        z = add(y, c=x)
    return q.df()
"""
DRIVER = """
import json, sys
import mandala_ast
from mandala_ast import Storage
main = mandala_ast.compile_module(sys.argv[2], name="main")
import shapes_or_steps
storage = Storage(sys.argv[1])
{before}
out = main.run(storage)
{after}
print(json.dumps(dict(out=out, runs=main.RUNS, computed=shapes_or_steps.COMPUTED, **report)))
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))


def _run(root: Path, db: Path, main: str, module: str, before: str = "", after: str = "") -> dict:
    """Run the pipeline in a new process, with the old or the new code."""
    script = DRIVER.replace("shapes_or_steps", module)
    script = script.format(before=textwrap.dedent(before) or "pass", after=textwrap.dedent(after) or "report = {}")
    proc = subprocess.run(
        [sys.executable, "-c", script, str(db), str(root / main)],
        cwd=root, capture_output=True, text=True, env={"PYTHONPATH": f"{root}:{REPO}", "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture
def renamed_project(tmp_path: Path) -> tuple[Path, Path]:
    """A storage computed by the old code; the project's files then hold the new code."""
    db = tmp_path / "runs.db"
    _write(tmp_path, {"steps.py": OLD_STEPS, "main_v1.py": OLD_MAIN})
    first = _run(tmp_path, db, "main_v1.py", "steps")
    assert first["out"] == [0, 3, 6] and len(first["runs"]) == 3 and first["computed"] == [0, 1, 2]
    (tmp_path / "steps.py").unlink()
    _write(tmp_path, {"shapes.py": NEW_SHAPES, "main_v2.py": NEW_MAIN})
    return tmp_path, db


RENAME = """
print(storage.rename_op("steps.double", shapes.twice), file=sys.stderr)
print(storage.rename_arg(main.add, "b", "c"), file=sys.stderr)
"""
REPORT = """
report = dict(
    df=storage.df(main.add).drop(columns=["created_at", "duration_s", "call"]).to_dict("list"),
    twice=len(storage.df(shapes.twice)),
    producers=sorted(set(storage.provenance(main.add)["producer_op"].dropna())),
    inputs=sorted(set(storage.provenance(main.add)["input"])),
    query=main.query(storage).to_dict("list"),
    versions=storage.versions(shapes.twice)["renamed"].dropna().tolist(),
    why=str(storage.why(main.add, 2, 1)),
)
"""


def test_a_renamed_and_moved_op_and_a_renamed_argument_compute_nothing(renamed_project):
    root, db = renamed_project
    after = _run(root, db, "main_v2.py", "shapes", before=RENAME, after=REPORT)
    assert after["out"] == [0, 3, 6]
    assert after["runs"] == [] and after["computed"] == []  # every call found under its new names
    assert after["df"] == {"a": [0, 2, 4], "c": [0, 1, 2], "output": [0, 3, 6], "version": [0, 0, 0], "current": [True] * 3}
    assert after["twice"] == 3
    assert after["producers"] == ["shapes.twice"] and after["inputs"] == ["a", "c"]
    assert sorted(after["query"]["z"]) == [0, 3, 6] and sorted(after["query"]["x"]) == [0, 1, 2]
    assert [note[:39] for note in after["versions"]] == ["op steps.double renamed to shapes.twice"]
    assert "hit" in after["why"] and "argument b renamed to c" in after["why"]
    again = _run(root, db, "main_v2.py", "shapes")  # and in a process that renames nothing
    assert again["runs"] == [] and again["computed"] == []


def test_a_script_that_renames_runs_again_without_error_or_recomputing(renamed_project):
    """The README puts the renames beside the run block: the script's second run used to stop
    at rename_op with UnknownOpError (the old name is gone: it was renamed)."""
    root, db = renamed_project
    _run(root, db, "main_v2.py", "shapes", before=RENAME)
    again = _run(root, db, "main_v2.py", "shapes", before=RENAME + "\nprint('renamed again')")
    assert again["out"] == [0, 3, 6] and again["runs"] == [] and again["computed"] == []


def test_without_the_rename_the_new_code_computes_again(renamed_project):
    root, db = renamed_project
    after = _run(root, db, "main_v2.py", "shapes")
    assert after["computed"] == [0, 1, 2] and len(after["runs"]) == 3


def test_new_calls_after_an_argument_rename_are_stored_under_the_new_name(renamed_project):
    root, db = renamed_project
    more = RENAME + "\nwith storage.run():\n    main.add(10, 20)\n"
    after = _run(root, db, "main_v2.py", "shapes", before=more, after=REPORT)
    assert after["runs"] == [[10, 20]]
    assert after["df"]["c"] == [0, 1, 2, 20]


def test_why_after_an_argument_rename_names_the_stored_call_nearest_to_a_miss(renamed_project):
    """add(2, 7) was never computed; add(2, 1) was. Without a rename why says the nearest
    stored call differs in the second argument; after rename_arg(add, "b", "c") it said
    "b: not an argument of the stored call" (or, with no other argument shared, nothing): it
    compared inputs under the name call ids hash, b, and the rename had named them c."""
    root, db = renamed_project
    after = _run(root, db, "main_v2.py", "shapes", before=RENAME, after="report = dict(why=str(storage.why(main.add, 2, 7)))")
    assert "never computed" in after["why"]
    assert "the stored call nearest to it differs in 1 of its 2 arguments:\n  c: " in after["why"], after["why"]
    assert "stored 1, here 7" in after["why"]


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        tables = ["calls", "call_inputs", "versions", "ops", "defaults", "renames", "arg_names", "dep_sets"]
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}


@op
def area(width, height):
    return width * height


@op
def surface(width, height):
    return width * height + 1


def test_renaming_onto_an_op_with_calls_raises_and_changes_nothing(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        area(2, 3)
        surface(2, 3)
    before = _counts(storage.path)
    with pytest.raises(RenameError, match="surface has 1 stored calls"):
        storage.rename_op(area, surface)
    assert _counts(storage.path) == before
    with storage.run():
        assert area(2, 3) == 6 and surface(2, 3) == 7


@op
def sides(width, height) -> tuple[int, int]:
    return width, height


def test_renaming_onto_an_op_with_another_output_count_raises_and_changes_nothing(tmp_path):
    """area's stored calls have one output: as calls of sides, which returns two, they came
    back as a 1-tuple holding area's output, and storage.df(sides) raised a bare KeyError."""
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        area(2, 3)
    before = _counts(storage.path)
    with pytest.raises(RenameError, match=r"area.*1 output.*sides.*2"):
        storage.rename_op(area, sides)
    assert _counts(storage.path) == before
    with storage.run():
        assert sides(2, 3) == (2, 3)


def test_renaming_an_op_to_its_own_name_says_there_is_nothing_to_do(tmp_path):
    """It said the storage held no op of that name, though it held that very op."""
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        area(2, 3)
    assert "nothing to do" in storage.rename_op(f"{area.name}", area)


def test_renaming_an_argument_onto_an_existing_one_raises_and_changes_nothing(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        area(2, 3)
    before = _counts(storage.path)
    with pytest.raises(RenameError, match="'height'"):
        storage.rename_arg(area, "width", "height")
    with pytest.raises(RenameError, match="no stored call has it"):
        storage.rename_arg(area, "depth", "length")
    with pytest.raises(UnknownOpError, match="nothing.here"):
        storage.rename_op("nothing.here", area)
    assert _counts(storage.path) == before


def test_an_argument_renamed_to_a_name_the_op_does_not_take_warns_naming_its_parameters(tmp_path):
    """A typo in the new name was taken silently: every stored call then missed."""
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        area(2, 3)
    with pytest.warns(MandalaWarning, match=r"area takes no argument 'hieght' \(it takes width, height\)"):
        storage.rename_arg(area, "height", "hieght")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        storage.rename_arg(area, "hieght", "height")
    with storage.run():
        area(2, 3)
    assert len(storage.df(area)) == 1


def test_an_argument_renamed_twice_and_its_old_name_reused(tmp_path):
    """w -> width -> breadth, then a new parameter named w again is not the old w."""
    path = tmp_path / "s.db"
    namespace: dict = {"__name__": "boxes"}
    exec("from mandala_ast import op\n@op\ndef box(w, h):\n    return w * h\n", namespace)
    storage = Storage(path)
    with storage.run():
        namespace["box"](2, 3)
    exec("from mandala_ast import op\n@op\ndef box(breadth, h):\n    return breadth * h\n", namespace)
    with pytest.warns(MandalaWarning, match="takes no argument 'width'"):  # a step of the history
        storage.rename_arg(namespace["box"], "w", "width")
    storage.rename_arg(namespace["box"], "width", "breadth")
    with storage.run():
        assert namespace["box"](2, 3) == 6
    assert list(storage.df(namespace["box"])["breadth"]) == [2]
    exec("from mandala_ast import op\n@op\ndef box(breadth, h, w=1):\n    return breadth * h * w\n", namespace)
    with storage.run():
        assert namespace["box"](2, 3, 5) == 30  # a new call: w is a new argument
    assert len(storage.df(namespace["box"])) == 2


def test_a_format_6_file_is_upgraded_with_the_rename_tables(tmp_path, capfd):
    path = tmp_path / "v6.db"
    with Storage(path).run():
        area(1, 2)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE renames")
        conn.execute("DROP TABLE arg_names")
        format_7_layout(conn, "mandala_ast/6")
    storage = Storage(path)
    assert "upgrading" in capfd.readouterr().err
    with pytest.warns(MandalaWarning, match="takes no argument 'w'"):
        storage.rename_arg(area, "width", "w")
    assert storage.df(area)["w"].tolist() == [1]  # (area itself still says width)


CALLER = """
import sys
from {module} import inner
from mandala_ast import Storage, op

RUNS = []

@op
def outer(x):
    RUNS.append(x)
    return inner(x) + 1

storage = Storage(sys.argv[1])
{rename}
with storage.run():
    print([outer(i) for i in range(3)], RUNS)
"""
INNER = """
from mandala_ast import op

@op
def inner(x):
    return 10 * x
"""


def _run_caller(tmp_path, source: str) -> str:
    """What ``source`` (written as caller.py) prints, run in a new process on tmp_path/s.db."""
    (tmp_path / "caller.py").write_text(textwrap.dedent(source))
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "caller.py"), str(tmp_path / "s.db")], capture_output=True, text=True,
        env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_an_op_whose_callee_moved_to_another_module_stays_valid(tmp_path):
    """Moving inner and updating the import leaves outer's code unchanged: its calls, which
    depend on inner by its old name, stay valid once the move is declared."""

    def run(module: str, rename: str = "") -> str:
        return _run_caller(tmp_path, CALLER.format(module=module, rename=rename))

    (tmp_path / "helpers.py").write_text(textwrap.dedent(INNER))
    assert run("helpers") == "[1, 11, 21] [0, 1, 2]"
    (tmp_path / "helpers.py").unlink()
    (tmp_path / "models.py").write_text(textwrap.dedent(INNER))
    assert run("models", 'storage.rename_op("helpers.inner", "models.inner")') == "[1, 11, 21] []"


def test_a_plain_function_given_to_rename_op_is_a_mandala_error_naming_it(tmp_path):
    """`rename_op("a.f", print)` was a bare TypeError, not a MandalaError users can catch."""
    from mandala_ast import NotAnOpError

    with pytest.raises(NotAnOpError, match="rename.*builtin_function_or_method"):
        Storage(tmp_path / "s.db").rename_op("pipeline.train", print)


@pytest.mark.parametrize(("before", "after"), [
    ("from helpers import inner", "from models import twice as inner"),
    ("from helpers import inner as f", "from models import twice as f"),
], ids=["old-name", "alias"])
def test_an_op_whose_callee_was_renamed_and_is_imported_under_the_name_it_used_stays_valid(tmp_path, before, after):
    """`from models import twice as inner` keeps outer's code as it was, but outer's calls,
    which depend on `inner` pointing to helpers.inner, computed again after the rename: the
    name now points to code of another name (an alias), which the rename did not accept; so
    did those of an outer that imported it under an alias already."""
    name = before.split()[-1]
    caller = CALLER.replace("from {module} import inner", "{imported}").replace("inner(x)", f"{name}(x)")

    def run(imported: str, rename: str = "") -> str:
        return _run_caller(tmp_path, caller.format(imported=imported, rename=rename))

    (tmp_path / "helpers.py").write_text(textwrap.dedent(INNER))
    assert run(before) == "[1, 11, 21] [0, 1, 2]"
    (tmp_path / "helpers.py").unlink()
    (tmp_path / "models.py").write_text(textwrap.dedent(INNER.replace("def inner", "def twice")))
    assert run(after, 'storage.rename_op("helpers.inner", "models.twice")') == "[1, 11, 21] []"


MODEL = """
from mandala_ast import op

RUNS = []

class Model:
    K = 10

    def __init__(self, k):
        self.k = k

    def scale(self, x):
        return x * self.k + self.K

    @op
    def fit(self, x):
        RUNS.append(x)
        return self.scale(x)

    @op
    @classmethod
    def make(cls, k):
        RUNS.append("make")
        return cls(k)
"""
#: Runs with the class where it is now (`import {module}`, `{cls}`), as compiled code if asked.
MODEL_CALLER = """
import json, sys
import mandala_ast
from mandala_ast import Storage
import {module} as where
main = mandala_ast.compile_module(sys.argv[2], name="main") if sys.argv[2:] else None

def run():
    m = where.{cls}.make(3)
    return [m.fit(x) for x in range(3)]

storage = Storage(sys.argv[1])
renamed = [{rename}]
with storage.run():
    out = main.run(where.{cls}) if main else run()
selves = storage.df(where.{cls}.fit)["self"]
print(json.dumps(dict(out=out, runs=where.RUNS, renamed=renamed, selves=sorted({{type(s).__module__ + "." + type(s).__qualname__ for s in selves}}))))
"""
COMPILED_MAIN = """
def run(cls):
    m = cls.make(3)
    return [m.fit(x) for x in range(3)]
"""
MOVES = {"to another module": ("models", "Model"), "renamed in its module": ("pipeline", "Estimator")}


def _model_run(tmp_path: Path, module: str, cls: str, rename: str = "", compiled: bool = False) -> dict:
    (tmp_path / "caller.py").write_text(MODEL_CALLER.format(module=module, cls=cls, rename=rename))
    (tmp_path / "main.py").write_text(COMPILED_MAIN)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "caller.py"), str(tmp_path / "s.db"), *[str(tmp_path / "main.py")] * compiled],
        capture_output=True, text=True, env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def _move_model(tmp_path: Path, module: str, cls: str, source: str = MODEL, old: str = "pipeline") -> None:
    (tmp_path / f"{old}.py").unlink()
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source.replace("class Model:", f"class {cls}:")))


RENAME_METHODS = "storage.rename_op('{old}.fit', where.{cls}.fit), storage.rename_op('{old}.make', where.{cls}.make)"


@pytest.mark.parametrize("compiled", [False, True], ids=["uncompiled", "compiled"])
@pytest.mark.parametrize("move", list(MOVES))
def test_moving_a_class_whose_methods_are_ops_keeps_their_calls(tmp_path, move, compiled):
    """rename_op said "3 stored calls kept", and every call computed again: `self` (and `cls`)
    are keyed by content, which names the class's module and name. The stored objects now
    load as the class where it is."""
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(MODEL))
    first = _model_run(tmp_path, "pipeline", "Model", compiled=compiled)
    assert first["out"] == [10, 13, 16] and first["runs"] == ["make", 0, 1, 2]
    module, cls = MOVES[move]
    _move_model(tmp_path, module, cls)
    after = _model_run(tmp_path, module, cls, RENAME_METHODS.format(old="pipeline.Model", cls=cls), compiled)
    assert after["out"] == [10, 13, 16] and after["runs"] == []
    assert "3 stored calls kept" in after["renamed"][0] and f"pipeline.Model are those of {module}.{cls}" in after["renamed"][0]
    assert after["selves"] == [f"{module}.{cls}"]
    again = _model_run(tmp_path, module, cls, compiled=compiled)  # a process that renames nothing
    assert again["runs"] == [] and again["selves"] == [f"{module}.{cls}"]


def test_a_class_moved_twice_and_back_keeps_its_method_ops_calls(tmp_path):
    """Its objects are keyed under the name they were first stored under, through each move;
    moved back, under its own name again."""
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(MODEL))
    _model_run(tmp_path, "pipeline", "Model")
    for old, (module, cls) in [("pipeline.Model", ("models", "Model")), ("models.Model", ("shapes", "Estimator")),
                               ("shapes.Estimator", ("pipeline", "Model"))]:
        _move_model(tmp_path, module, cls, old=old.partition(".")[0])
        after = _model_run(tmp_path, module, cls, RENAME_METHODS.format(old=old, cls=cls))
        assert after["runs"] == [] and after["selves"] == [f"{module}.{cls}"], old


def test_a_class_moved_with_its_data_edited_computes_its_method_ops_calls_again(tmp_path):
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(MODEL))
    _model_run(tmp_path, "pipeline", "Model")
    _move_model(tmp_path, "models", "Model", MODEL.replace("K = 10", "K = 11"))
    after = _model_run(tmp_path, "models", "Model", RENAME_METHODS.format(old="pipeline.Model", cls="Model"))
    assert after["out"] == [11, 14, 17] and after["runs"] == ["make", 0, 1, 2]


def test_a_class_moved_while_its_old_place_holds_another_class_says_its_calls_compute_again(tmp_path):
    """Objects of two classes cannot be keyed alike: the rename says so, not "kept" alone."""
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(MODEL))
    _model_run(tmp_path, "pipeline", "Model")
    (tmp_path / "models.py").write_text(textwrap.dedent(MODEL))
    (tmp_path / "pipeline.py").write_text("class Model:\n    pass\n")
    after = _model_run(tmp_path, "models", "Model", RENAME_METHODS.format(old="pipeline.Model", cls="Model"))
    assert "class pipeline.Model is still there" in after["renamed"][0] and "compute again" in after["renamed"][0]
    assert after["runs"] == ["make", 0, 1, 2]
    (tmp_path / "pipeline.py").unlink()  # then gone, the same renames say it moved: the first calls again
    again = _model_run(tmp_path, "models", "Model", RENAME_METHODS.format(old="pipeline.Model", cls="Model"))
    assert "before: nothing to do; objects of class pipeline.Model are those of models.Model now" in again["renamed"][0]
    assert again["runs"] == [] and again["out"] == [10, 13, 16]


class Sizes:
    @op
    @classmethod
    def area(cls, width, height):
        return width * height


def test_a_class_method_op_reached_through_its_class_can_be_renamed(tmp_path):
    """`rename_op("pipeline.area", Sizes.area)` raised NotAnOpError "not partial": a class
    method op reached through its class is the op with the class bound, as storage.df takes it."""
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        area(2, 3)
    assert "1 stored calls kept" in storage.rename_op(area, Sizes.area)
    with pytest.warns(MandalaWarning, match="takes no argument 'w'"):  # (it takes width)
        assert "renamed to w in 1 stored calls" in storage.rename_arg(Sizes.area, "width", "w")


HELD = """
import sys
from {module} import Model
from mandala_ast import Storage, op

RUNS = []

@op
def fit(model, x):
    RUNS.append(x)
    return model.scale(x)

storage = Storage(sys.argv[1])
{rename}
with storage.run():
    print([fit(Model(3), x) for x in range(3)], RUNS)
"""


def test_a_class_declared_moved_with_rename_helper_keeps_the_calls_given_its_objects(tmp_path):
    """rename_helper moved the calls' dependencies on the class, and the calls computed again
    all the same: an argument holding its objects is keyed by the class's module and name,
    and so was the class's data (K) it counted."""
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(MODEL))
    assert _run_caller(tmp_path, HELD.format(module="pipeline", rename="")) == "[10, 13, 16] [0, 1, 2]"
    _move_model(tmp_path, "models", "Model")
    out = _run_caller(tmp_path, HELD.format(module="models", rename="print(storage.rename_helper('pipeline.Model', Model))"))
    assert "3 stored calls kept; objects of class pipeline.Model are those of models.Model now" in out
    assert out.endswith("[10, 13, 16] []")


NEW_AT_OLD_NAME = """
import sys
from pipeline import Estimator, Model
from mandala_ast import Storage, op

@op
def fresh(k):
    return Model()

storage = Storage(sys.argv[1])
with storage.run():
    made, new = Estimator.make(3), fresh(1)
print(type(made).__name__, type(new).__name__)
"""


def test_a_new_class_at_a_moved_class_s_old_name_does_not_take_its_stored_objects(tmp_path):
    """pipeline.Model renamed Estimator, then a new class named Model: the stored Model objects
    (pickled as `pipeline.Model`, which imports again) loaded as the new class, so
    `Estimator.make(3)` gave a Model that has no `fit`."""
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(MODEL))
    _model_run(tmp_path, "pipeline", "Model")
    _move_model(tmp_path, "pipeline", "Estimator")
    _model_run(tmp_path, "pipeline", "Estimator", RENAME_METHODS.format(old="pipeline.Model", cls="Estimator"))
    with (tmp_path / "pipeline.py").open("a") as module:
        module.write("\n\nclass Model:\n    pass\n")
    for _ in range(2):  # the new class's objects, stored, load as that class again
        assert _run_caller(tmp_path, NEW_AT_OLD_NAME) == "Estimator Model"
    again = _model_run(tmp_path, "pipeline", "Estimator")
    assert again["out"] == [10, 13, 16] and again["runs"] == []
