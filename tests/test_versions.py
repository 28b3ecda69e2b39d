"""Versions and dependency tracking, with real module files edited on disk.

Each run is a fresh interpreter: it imports the edited module, runs the same block, and
prints which inputs the op bodies actually executed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

BASE = '''
RUNS = []

def helper(x):
    return x * 2

def unused_helper(x):
    return x - 1

@op
def train(x):
    """Train."""
    RUNS.append(x)
    y = helper(x)
    return y + 1
'''

DRIVER = '''
import sys
from mandala_ast import Storage
import experiment as ex
storage = Storage("s.db", on_change=sys.argv[1] if len(sys.argv) > 1 else "report")
with storage:
    for x in range(4):
        ex.train(x)
print("RUNS", ex.RUNS)
'''


class Project:
    """A scratch directory with experiment.py and a driver script, run in subprocesses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "driver.py").write_text(DRIVER)

    def write(self, source: str, name: str = "experiment.py") -> None:
        text = "from mandala_ast import op, Storage\n" + textwrap.dedent(source)
        (self.root / name).write_text(text)

    def run(self, *args: str, script: str = "driver.py", check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, script, *args], cwd=self.root, capture_output=True, text=True,
            # No .pyc files: edits within one second that keep the size would hit a stale one.
            env={"PYTHONPATH": f"{self.root}:{REPO}", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        )
        if check and proc.returncode:
            raise AssertionError(proc.stderr)
        return proc

    def runs(self, *args: str) -> list[int]:
        out = self.run(*args).stdout
        line = next(line for line in out.splitlines() if line.startswith("RUNS"))
        return eval(line[5:])


@pytest.fixture
def project(tmp_path) -> Project:
    project = Project(tmp_path)
    project.write(BASE)
    assert project.runs() == [0, 1, 2, 3]
    return project


COSMETIC_EDITS = {
    "comment": BASE.replace("    y = helper(x)", "    # double it first\n    y = helper(x)  # ok"),
    "docstring": BASE.replace('"""Train."""', '"""Train the model, now documented at length."""'),
    "formatting": BASE.replace("return y + 1", "return (\n        y\n        + 1\n    )"),
    "local rename": BASE.replace("y = helper(x)", "doubled = helper(x)").replace("y + 1", "doubled + 1"),
    "blank lines": BASE.replace("def helper(x):", "\n\n\ndef helper(x):"),
    "unreached helper": BASE.replace("return x - 1", "return x - 100"),
    "decorator spelling": BASE.replace("@op\n", "@op()\n"),
}


@pytest.mark.parametrize("edit", sorted(COSMETIC_EDITS))
def test_cosmetic_edits_do_not_recompute(project, edit):
    project.write(COSMETIC_EDITS[edit])
    assert project.runs() == []


@pytest.mark.parametrize(
    "edited",
    [
        BASE.replace("return y + 1", "return y + 2"),  # the op's body
        BASE.replace("return x * 2", "return x * 3"),  # a helper in the same module
    ],
    ids=["body", "helper"],
)
def test_real_edits_recompute_every_call(project, edited):
    project.write(edited)
    assert project.runs() == [0, 1, 2, 3]


def test_edit_of_a_helper_in_another_user_module(tmp_path):
    project = Project(tmp_path)
    project.write("def scale(x):\n    return x * 10\n", name="helpers.py")
    project.write(BASE.replace("y = helper(x)", "y = helpers.scale(x)").replace("RUNS = []", "import helpers\nRUNS = []"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write("def scale(x):\n    return x * 11\n", name="helpers.py")
    assert project.runs() == [0, 1, 2, 3]


def test_edit_of_a_method_called_through_an_object(tmp_path):
    """The op never names the class: only tracing what ran can see the method."""
    project = Project(tmp_path)
    model = "class Model:\n    def predict(self, x):\n        return x + {k}\nMODEL = Model()\n"
    project.write(model.format(k=1), name="models.py")
    experiment = BASE.replace("def train(x):", "def train(x, model=None):").replace(
        "y = helper(x)", "y = model.predict(x)"
    )
    project.write(experiment)
    (project.root / "driver.py").write_text(DRIVER.replace("ex.train(x)", "ex.train(x, __import__('models').MODEL)"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(model.format(k=2), name="models.py")
    assert project.runs() == [0, 1, 2, 3]


def helpers_project(tmp_path, helpers: str, expression: str, module: str = "helpers") -> Project:
    """A project whose op computes ``expression`` (instead of ``helper(x)``), ``module``
    written as ``helpers``."""
    project = Project(tmp_path)
    project.write(helpers, name=f"{module}.py")
    project.write(BASE.replace("RUNS = []", f"import {module}\nRUNS = []").replace("y = helper(x)", f"y = {expression}"))
    return project


def edit_recomputes(tmp_path, before: str, after: str, expression: str, module: str = "helpers") -> Project:
    """With ``module`` written as ``before``, the second run computes nothing; with ``after``,
    every call computes again."""
    project = helpers_project(tmp_path, before, expression, module)
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(after, name=f"{module}.py")
    assert project.runs() == [0, 1, 2, 3]
    return project


_BASE_AND_CHILD = "class Base:\n    K = 1\n    def score(self, x):\n        return x * self.K\n\nclass Child(Base):\n"


def test_override_added_in_a_subclass_recomputes_the_op_that_called_the_inherited_method(tmp_path):
    """The trace saw Base.score run, reached through a Child: once Child defines its own
    score, the same call runs other code and must not be served the stored result."""
    models = _BASE_AND_CHILD + "    pass\n"
    project = edit_recomputes(tmp_path, models, models.replace("    pass", "    def score(self, x):\n        return x * 3"),
                               "models.Child().score(x)", "models")
    assert project.runs() == []
    project.write(models, name="models.py")  # the override removed: the first results are back
    assert project.runs() == []


def test_edit_of_a_class_constant_a_subclass_overrides_recomputes_its_inherited_method(tmp_path):
    """Base.score reads self.K; run for a Child, whose own K it read."""
    edit_recomputes(tmp_path, _BASE_AND_CHILD + "    K = 2\n", _BASE_AND_CHILD + "    K = 3\n", "models.Child().score(x)", "models")


def test_edit_of_a_class_constant_of_the_second_model_of_an_ensemble_recomputes(tmp_path):
    """``Base.score`` runs for a Base, then for a Child whose own K it reads."""
    edit_recomputes(tmp_path, _BASE_AND_CHILD + "    K = 2\n", _BASE_AND_CHILD + "    K = 3\n",
                     "sum(m.score(x) for m in [models.Base(), models.Child()])", "models")


def test_alias_pointed_at_another_helper_recomputes(tmp_path):
    """``act = relu`` then ``act = halve``: the op calls ``helpers.act``; relu itself did not
    change, but the op now runs other code."""
    helpers = "def relu(x):\n    return max(x, 0)\n\ndef halve(x):\n    return x / 2\n\nact = {target}\n"
    edit_recomputes(tmp_path, helpers.format(target="relu"), helpers.format(target="halve"), "helpers.act(x)")


def test_class_alias_pointed_at_another_class_recomputes(tmp_path):
    """``MODEL = Small`` then ``MODEL = Large``: a config that names the class to build."""
    models = ("class Small:\n    def fit(self, x):\n        return x\n\n"
              "class Large:\n    def fit(self, x):\n        return x * 10\n\nMODEL = {target}\n")
    project = helpers_project(tmp_path, models.format(target="Small"), "models.MODEL().fit(x)", "models")
    assert project.runs() == [0, 1, 2, 3]
    project.write(models.format(target="Small").replace("return x\n", "return x  # same code\n"), name="models.py")
    assert project.runs() == []
    project.write(models.format(target="Large"), name="models.py")
    assert project.runs() == [0, 1, 2, 3]


def test_edit_of_a_singledispatch_implementation_recomputes(tmp_path):
    """Implementations registered as ``_`` share one name, which finds the last of them."""
    helpers = ("import functools\n\n@functools.singledispatch\ndef process(x):\n    return 0\n\n"
               "@process.register\ndef _(x: int):\n    return x + {k}\n\n"
               "@process.register\ndef _(x: str):\n    return x\n")
    edit_recomputes(tmp_path, helpers.format(k=1), helpers.format(k=2), "helpers.process(x)")


@pytest.mark.parametrize("decorator", ["property", "functools.cached_property"])
def test_edit_of_a_property_getter_recomputes(tmp_path, decorator):
    models = f"import functools\n\nclass Settings:\n    @{decorator}\n    def factor(self):\n        return {{k}}\n"
    edit_recomputes(tmp_path, models.format(k=2), models.format(k=3), "x * models.Settings().factor", "models")


def test_edit_of_a_function_passed_as_an_argument(tmp_path):
    project = Project(tmp_path)
    project.write("def transform(x):\n    return x + 1\n", name="funcs.py")
    project.write(BASE.replace("def train(x):", "def train(x, fn=None):").replace("y = helper(x)", "y = fn(x)"))
    (project.root / "driver.py").write_text(DRIVER.replace("ex.train(x)", "ex.train(x, __import__('funcs').transform)"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write("def transform(x):\n    return x + 2\n", name="funcs.py")
    assert project.runs() == [0, 1, 2, 3]


def test_edit_of_a_constant_the_op_reads(tmp_path):
    project = Project(tmp_path)
    source = BASE.replace("RUNS = []", "RUNS = []\nOFFSET = {k}").replace("return y + 1", "return y + OFFSET")
    project.write(source.format(k=1))
    assert project.runs() == [0, 1, 2, 3]
    project.write(source.format(k=1).replace("def helper", "\ndef helper"))
    assert project.runs() == []
    project.write(source.format(k=2))
    assert project.runs() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("before", "after", "expression"),
    [
        ("import enum\nclass Mode(enum.Enum):\n    FAST = 1\n", "import enum\nclass Mode(enum.Enum):\n    FAST = 5\n",
         "x * helpers.Mode.FAST.value"),
        ("LIMITS = range(0, 2)\n", "LIMITS = range(0, 3)\n", "x in helpers.LIMITS"),
        ("import types\nCONFIG = types.SimpleNamespace(k=1)\n", "import types\nCONFIG = types.SimpleNamespace(k=2)\n",
         "x * helpers.CONFIG.k"),
        ("import argparse\nARGS = argparse.Namespace(k=1)\n", "import argparse\nARGS = argparse.Namespace(k=2)\n",
         "x * helpers.ARGS.k"),
        ("class AttrDict(dict):\n    __getattr__ = dict.__getitem__\n\nCONFIG = AttrDict(k=1)\n",
         "class AttrDict(dict):\n    __getattr__ = dict.__getitem__\n\nCONFIG = AttrDict(k=2)\n", "x * helpers.CONFIG.k"),
        ("import statistics\nAGG = statistics.mean\n", "import statistics\nAGG = statistics.median_high\n",
         "helpers.AGG([x, x + 1, x + 5])"),
        ("import fractions, decimal\nNUM = fractions.Fraction\n", "import fractions, decimal\nNUM = decimal.Decimal\n",
         "len(str(helpers.NUM(x)))"),
    ],
    # AttrDict: missing attributes raise KeyError, which probing it for code raised raw.
    ids=["enum", "range", "SimpleNamespace", "argparse", "AttrDict", "library function alias", "library class alias"],
)
def test_edit_of_a_module_setting_of_a_standard_type_recomputes(tmp_path, before, after, expression):
    """An enum member's value, a range, a SimpleNamespace or argparse.Namespace config read
    through another module, a name pointed at other library code: each counts."""
    edit_recomputes(tmp_path, before, after, expression)


_FIELD_DEFAULTS = [
    ("import dataclasses\n@dataclasses.dataclass\nclass Cfg:\n    k: int = 1\n",
     "import dataclasses\n@dataclasses.dataclass\nclass Cfg:\n    k: int = 2\n"),
    ("import dataclasses\n@dataclasses.dataclass\nclass Cfg:\n    k: list = dataclasses.field(default_factory=lambda: [1])\n",
     "import dataclasses\n@dataclasses.dataclass\nclass Cfg:\n    k: list = dataclasses.field(default_factory=lambda: [1, 1])\n"),
    ("import typing\nclass Cfg(typing.NamedTuple):\n    k: int = 1\n", "import typing\nclass Cfg(typing.NamedTuple):\n    k: int = 2\n"),
    ("import dataclasses\n@dataclasses.dataclass(frozen=True)\nclass Cfg:\n    k: float = 0.1\n    layers: tuple = (64, 32)\n",
     "import dataclasses\n@dataclasses.dataclass(frozen=True)\nclass Cfg:\n    k: float = 0.5\n    layers: tuple = (64, 32)\n"),
    ("import dataclasses\n@dataclasses.dataclass(frozen=True)\nclass Cfg:\n    k: tuple = ((64, (32, (16,))),)\n",
     "import dataclasses\n@dataclasses.dataclass(frozen=True)\nclass Cfg:\n    k: tuple = ((64, (32, (8,))),)\n"),
    ("import dataclasses\n@dataclasses.dataclass\nclass Base:\n    k: int = 1\n\nclass Cfg(Base):\n    pass\n",
     "import dataclasses\n@dataclasses.dataclass\nclass Base:\n    k: int = 2\n\nclass Cfg(Base):\n    pass\n"),
    ("import typing\nclass Base(typing.NamedTuple):\n    k: int = 1\n\nclass Cfg(Base):\n    pass\n",
     "import typing\nclass Base(typing.NamedTuple):\n    k: int = 2\n\nclass Cfg(Base):\n    pass\n"),
]


@pytest.mark.parametrize(("before", "after"), _FIELD_DEFAULTS, ids=[
    "dataclass default", "dataclass default_factory", "NamedTuple default", "a number beside a tuple",
    "a nested tuple", "undecorated dataclass subclass", "undecorated NamedTuple subclass"])
def test_edit_of_a_field_default_of_a_class_the_op_builds_recomputes(tmp_path, before, after):
    """``Cfg().k``: the only code that ran is the constructor Python generated for the class,
    which has no source of its own to fingerprint (a tuple default hid all the defaults once)."""
    edit_recomputes(tmp_path, before, after, "x * len(str(helpers.Cfg().k))")


def test_edit_of_a_method_of_a_class_a_factory_made_recomputes(tmp_path):
    """``Model = make_model(3)``: the class has no name of its own (``make_model.<locals>.M``),
    so it counts by the name it is reached through, code and all."""
    helpers = ("def make_model(k):\n    class M:\n        def predict(self, x):\n            return x * {body}\n"
               "    return M\n\nModel = make_model(3)\n")
    edit_recomputes(tmp_path, helpers.format(body="k"), helpers.format(body="k + 1"), "helpers.Model().predict(x)")


@pytest.mark.parametrize("helpers", [
    "import collections\nPoint = collections.namedtuple('Pt', 'x y', defaults=(1,))\n",
    "import typing\nclass Pt(typing.NamedTuple):\n    x: int\n    y: int = 1\nPoint = Pt\n",
], ids=["namedtuple", "NamedTuple alias"])
def test_a_namedtuple_under_another_name_than_its_own_hits(tmp_path, helpers):
    """A dependency named after the class's own name (``Pt``), which no module attribute holds,
    was found gone at every check: the op recomputed on every run."""
    project = edit_recomputes(tmp_path, helpers, helpers.replace("1", "2"), "sum(helpers.Point(x))")
    assert project.runs() == []


def test_a_singledispatch_implementation_another_module_registers_in_the_op_hits(tmp_path):
    """The plugin registers its implementation when the body imports it: what the registry
    holds then is not what a new process finds before running the body."""
    project = helpers_project(tmp_path, "import functools\n@functools.singledispatch\ndef f(v):\n    return 0\n"
                               "@f.register\ndef _(v: int):\n    return v + 1\n", "(__import__('plugin'), helpers.f(x))[1]")
    (project.root / "plugin.py").write_text("import helpers\n@helpers.f.register\ndef _(v: str):\n    return v\n")
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    assert project.runs() == []


def test_a_singledispatch_implementation_registered_for_another_type_recomputes(tmp_path):
    helpers = ("import functools\n@functools.singledispatch\ndef f(v):\n    return 0\n"
               "@f.register({kind})\ndef _(v):\n    return 1\n")
    edit_recomputes(tmp_path, helpers.format(kind="int"), helpers.format(kind="float"), "helpers.f(x)")


def test_report_of_an_edited_constant_shows_old_and_new_value_on_lines_of_their_own(tmp_path):
    project = Project(tmp_path)
    source = BASE.replace("RUNS = []", "RUNS = []\nOFFSET = {k}").replace("return y + 1", "return y + OFFSET")
    project.write(source.format(k=1))
    project.run()
    project.write(source.format(k=2))
    assert "\n-1\n+2\n" in project.run().stderr


def test_a_constant_whose_shortened_text_is_unchanged_still_recomputes(tmp_path):
    # Unchanged source text keeps calls (another Python's fingerprints); a constant's text is
    # a repr cut at 2000 characters, so equal text does not mean an equal value.
    project = Project(tmp_path)
    source = BASE.replace("RUNS = []", "RUNS = []\nTAIL = 'a' * 3000 + {k!r}").replace(
        "return y + 1", "return y + len(TAIL.strip('a'))"
    )
    project.write(source.format(k="x"))
    assert project.runs() == [0, 1, 2, 3]
    project.write(source.format(k="y"))
    assert project.runs() == [0, 1, 2, 3]


def test_revert_reuses_the_earlier_calls(project):
    project.write(BASE.replace("return x * 2", "return x * 3"))
    assert project.runs() == [0, 1, 2, 3]
    project.write(BASE)
    assert project.runs() == []


def test_per_call_dependency_sets(tmp_path):
    """Helper A for even inputs, B for odd: editing B recomputes only the odd calls."""
    project = Project(tmp_path)
    source = '''
    RUNS = []

    def helper_a(x):
        return x + 100

    def helper_b(x):
        return x + {k}

    @op
    def train(x):
        RUNS.append(x)
        return helper_a(x) if x % 2 == 0 else helper_b(x)
    '''
    project.write(source.format(k=200))
    assert project.runs() == [0, 1, 2, 3]
    assert _helpers_per_call(project.root / "s.db") == {
        0: ["experiment:helper_a"], 1: ["experiment:helper_b"],
        2: ["experiment:helper_a"], 3: ["experiment:helper_b"],
    }
    project.write(source.format(k=300))
    assert project.runs() == [1, 3]


def _helpers_per_call(db: Path) -> dict[int, list[str]]:
    import json
    import sqlite3

    rows = sqlite3.connect(db).execute(
        "SELECT v.data, d.name FROM calls c JOIN inputs i ON i.call_hid = c.hid "
        "JOIN vals v ON v.cid = i.cid JOIN dep_sets d ON d.deps_id = c.deps_id ORDER BY d.name"
    )
    found: dict[int, list[str]] = {}
    for data, name in rows:
        found.setdefault(json.loads(data), []).append(name)
    return found


def test_accept_change_keeps_results(project):
    project.write(BASE.replace("return x * 2", "return x * 2  # same\n    pass"))
    script = DRIVER.replace("with storage:", "print(storage.accept_change(ex.helper))\nwith storage:")
    (project.root / "accept.py").write_text(script)
    out = project.run(script="accept.py").stdout
    assert "change accepted" in out and "RUNS []" in out
    assert project.runs() == []


LOGGED_HELPER = BASE.replace("def helper(x):", """import functools

def logged(fn):
    @functools.wraps(fn)
    def wrapper(x):
        return fn(x)
    return wrapper

@logged
def helper(x):""")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="a decorator's wrapper is seen through co_qualname (3.11+; README says so)")
def test_accept_change_names_a_decorated_helper_as_the_recompute_report_does(tmp_path):
    """accept_change reported "experiment:logged: change accepted" (the colon spelling the
    file keeps) where the report of the same edit said "dependency experiment.logged
    changed", as every other message and the docs do."""
    project = Project(tmp_path)
    project.write(LOGGED_HELPER)
    assert project.runs() == [0, 1, 2, 3]
    project.write(LOGGED_HELPER.replace("return fn(x)", "return fn(x)  # same\n        pass"))
    changed = project.run().stderr  # the edit as the recompute report shows it
    assert "dependency experiment.logged changed" in changed
    project.write(LOGGED_HELPER.replace("return fn(x)", "return fn(x)  # the same again\n        pass\n        pass"))
    script = DRIVER.replace("with storage:", "print(storage.accept_change(ex.logged))\nwith storage:")
    (project.root / "accept.py").write_text(script)
    out = project.run(script="accept.py").stdout
    assert "experiment.logged: change accepted" in out and "RUNS []" in out


def test_accept_change_of_the_op_itself(project):
    project.write(BASE.replace("return y + 1", "return 1 + y"))
    script = DRIVER.replace("with storage:", "print(storage.accept_change(ex.train))\nwith storage:")
    (project.root / "accept.py").write_text(script)
    assert "RUNS []" in project.run(script="accept.py").stdout


def test_accepting_an_op_s_change_does_not_report_that_its_calls_recompute(project):
    """accept_change(op) printed "op experiment.train changed; its calls recompute." with the
    diff, as it registered the new version, though it kept every stored call."""
    project.write(BASE.replace("return y + 1", "return 1 + y"))
    script = DRIVER.replace("with storage:", "print(storage.accept_change(ex.train))\nwith storage:")
    (project.root / "accept.py").write_text(script)
    proc = project.run(script="accept.py")
    assert "change accepted" in proc.stdout and "RUNS []" in proc.stdout
    assert "recompute" not in proc.stderr


def test_the_recompute_report_diffs_against_the_code_the_stored_calls_ran(project):
    """An edit refused under on_change="error" registers its version, which computes nothing;
    the next edit's report showed the diff from that version's code, never run, instead of
    from the code the stored calls were computed with."""
    project.write(BASE.replace("return y + 1", "return y + 2"))
    assert project.run("error", check=False).returncode == 1
    project.write(BASE.replace("return y + 1", "return y + 3"))
    proc = project.run()
    assert "-    return y + 1" in proc.stderr and "+    return y + 3" in proc.stderr
    assert "y + 2" not in proc.stderr


def test_on_change_error_raises_before_computing(project):
    project.write(BASE.replace("return x * 2", "return x * 5"))
    proc = project.run("error", check=False)
    assert proc.returncode == 1
    assert "VersionChangeError" in proc.stderr and "helper changed" in proc.stderr
    assert "-    return x * 2" in proc.stderr and "+    return x * 5" in proc.stderr
    assert "RUNS" not in proc.stdout


def test_change_report_is_printed_once_with_a_diff(project):
    project.write(BASE.replace("return x * 2", "return x * 4"))
    proc = project.run()
    assert proc.stderr.count("dependency experiment.helper changed") == 1
    assert "+    return x * 4" in proc.stderr


def test_why_names_the_changed_helper_with_a_diff(project):
    project.write(BASE.replace("return x * 2", "return x * 7"))
    script = DRIVER.replace("with storage:", "print(storage.why(ex.train, 1))\nwith storage:")
    (project.root / "why.py").write_text(script + "print(storage.why(ex.train, 1))\nprint(storage.why(ex.train, 99))\n")
    out = project.run(script="why.py").stdout
    assert "miss: experiment.train(x=1) was computed before" in out
    assert "dependency experiment.helper changed" in out and "+    return x * 7" in out
    assert "hit: experiment.train(x=1) is stored" in out
    assert "miss: experiment.train(x=99) was never computed" in out


def test_why_explains_an_op_change(project):
    project.write(BASE.replace("return y + 1", "return y + 3"))
    (project.root / "why.py").write_text(DRIVER.replace("with storage:", "print(storage.why(ex.train, 1))\nwith storage:"))
    out = project.run(script="why.py").stdout
    assert "computed by another version of the op" in out and "+    return y + 3" in out


def test_versions_table(project):
    project.write(BASE.replace("return y + 1", "return y + 9"))
    script = DRIVER + "print(storage.versions(ex.train)[['calls', 'current']].to_string())\n"
    (project.root / "versions.py").write_text(script)
    out = project.run(script="versions.py").stdout
    rows = [line.split()[1:] for line in out.splitlines()[-2:]]
    assert rows == [["4", "False"], ["4", "True"]]


def test_versions_counts_the_calls_of_an_accepted_change_once(project):
    """An edit accepted as cosmetic stores its calls under the earlier version: the table gave
    both rows all of them, 6 and 6 for 6 stored calls. They count on the version they are
    stored under; the accepted one names it in same_as."""
    project.write(BASE.replace("return y + 1", "return 1 + y"))
    script = DRIVER.replace("with storage:", "storage.accept_change(ex.train)\nwith storage:")
    table = "print(storage.versions(ex.train)[['version_id', 'same_as', 'calls']].to_csv(index=False))\n"
    (project.root / "accept.py").write_text(script.replace("range(4)", "range(6)") + table)
    out = project.run(script="accept.py").stdout
    [first, accepted] = [line.split(",") for line in out.strip().splitlines()[-2:]]
    assert (first[2], accepted[1], accepted[2]) == ("6", first[0], "0")
    assert "RUNS [4, 5]" in out


def test_adding_a_defaulted_parameter_keeps_old_calls(project):
    """A call that leaves the new parameter at its default finds the old calls."""
    project.write(BASE.replace("def train(x):", "def train(x, alpha=0.5):"))
    assert project.runs() == []
    (project.root / "alpha.py").write_text(DRIVER.replace("ex.train(x)", "ex.train(x, alpha=0.5); ex.train(x, alpha=0.7)"))
    assert "RUNS [0, 1, 2, 3]" in project.run(script="alpha.py").stdout


def test_changing_a_default_value_is_a_different_call(project):
    project.write(BASE.replace("def train(x):", "def train(x, alpha=0.5):"))
    assert project.runs() == []
    project.write(BASE.replace("def train(x):", "def train(x, alpha=0.9):"))
    assert project.runs() == [0, 1, 2, 3]  # train(x) now means alpha=0.9: not the stored calls
    (project.root / "old.py").write_text(DRIVER.replace("ex.train(x)", "ex.train(x, alpha=0.5)"))
    assert "RUNS []" in project.run(script="old.py").stdout


def test_redefining_a_helper_in_the_same_process(tmp_path, monkeypatch):
    """Reloading an edited helper module (as %autoreload does): the next block recomputes
    only what used it, and reverting brings the old results back in the same process."""
    import importlib

    from mandala_ast import Storage, op

    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "reload_helpers.py"
    module.write_text("def helper(x):\n    return x + 1\n\ndef other(x):\n    return x\n")
    helpers = importlib.import_module("reload_helpers")
    runs = []

    @op
    def uses(x):
        runs.append("uses")
        return helpers.helper(x)

    @op
    def does_not(x):
        runs.append("does_not")
        return helpers.other(x)

    storage = Storage(tmp_path / "s.db")
    with storage:
        uses(1), does_not(1)
    module.write_text("def helper(x):\n    return x + 2\n\ndef other(x):\n    return x\n")
    importlib.reload(helpers)
    with storage:
        assert uses(1) == 3 and does_not(1) == 1
    assert runs == ["uses", "does_not", "uses"]
    module.write_text("def helper(x):\n    return x + 1\n\ndef other(x):\n    return x\n")
    importlib.reload(helpers)
    with storage:
        assert uses(1) == 2  # reverted: the first result is valid again
    assert runs == ["uses", "does_not", "uses"]


def test_edit_of_a_method_of_a_global_instance(tmp_path):
    """Plain arguments, but the op's own code calls a user object's method: still traced."""
    project = Project(tmp_path)
    model = "class Scaler:\n    def scale(self, x):\n        return x * {k}\nSCALER = Scaler()\n"
    project.write(model.format(k=2), name="scalers.py")
    project.write(BASE.replace("y = helper(x)", "y = scalers.SCALER.scale(x)").replace("RUNS = []", "import scalers\nRUNS = []"))
    assert project.runs() == [0, 1, 2, 3]
    project.write(model.format(k=3), name="scalers.py")
    assert project.runs() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "reference, call",
    [
        ("REGISTRY = {'scale': helpers.scale}\n", "REGISTRY['scale'](x)"),
        ("SCALE = functools.partial(helpers.scale, k=1)\n", "SCALE(x)"),
        ("CACHED = functools.cache(helpers.scale)\n", "CACHED(x)"),
    ],
    ids=["registry", "partial", "lru_cache"],
)
def test_helpers_reached_through_wrappers_and_registries(tmp_path, reference, call):
    """Regression: an op calling a helper through a dict, a partial or functools.cache with
    plain arguments was not traced, so editing the helper recomputed nothing."""
    project = Project(tmp_path)
    helper = "def scale(x, k=1):\n    return x * {k}\n"
    project.write(helper.format(k=10), name="helpers.py")
    body = BASE.replace("RUNS = []", "import functools\nimport helpers\n" + reference + "RUNS = []")
    project.write(body.replace("y = helper(x)", f"y = {call}"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(helper.format(k=1000), name="helpers.py")
    assert project.runs() == [0, 1, 2, 3]


def test_stale_calls_found_by_prefetch_are_still_reported(tmp_path):
    """Regression: after a bulk prefetch, a stale call was dropped silently, so
    on_change="error" recomputed it instead of raising."""
    project = Project(tmp_path)
    project.write(f"def even(x):\n    return x\n\ndef odd(x):\n    return x + {1}\n", name="helpers.py")
    project.write(
        "import helpers\nRUNS = []\n\n@op\ndef f(x):\n    RUNS.append(x)\n"
        "    return helpers.even(x) if x % 2 == 0 else helpers.odd(x)\n"
    )
    (project.root / "fill.py").write_text(DRIVER.replace("range(4)", "range(200)").replace("ex.train", "ex.f"))
    project.run(script="fill.py")
    project.write("def even(x):\n    return x\n\ndef odd(x):\n    return x + 1000\n", name="helpers.py")
    script = DRIVER.replace("for x in range(4):\n        ex.train(x)", "[ex.f(i) for i in range(0, 200, 2)]\n    ex.f(1)")
    (project.root / "check.py").write_text(script)
    proc = project.run("error", script="check.py", check=False)
    assert proc.returncode == 1 and "VersionChangeError" in proc.stderr
    assert "dependency helpers.odd changed" in proc.stderr


def test_df_shows_what_todays_code_computed(project):
    """Regression: after a helper change, df kept the first (stale) row of a call."""
    project.write(BASE.replace("return x * 2", "return x * 5"))
    script = DRIVER + "print('OUT', storage.df(ex.train).sort_values('x')['output'].tolist())\n"
    (project.root / "df.py").write_text(script)
    out = project.run(script="df.py").stdout
    assert "OUT [1, 6, 11, 16]" in out


def test_df_after_reverting_a_helper_edit_shows_what_the_run_block_loads(project):
    """Edit a helper, run, revert it: the run block loads the first results again, but
    storage.df showed the edited helper's (its newest row of each call), as if current."""
    script = DRIVER + (
        "frame = storage.df(ex.train).sort_values('x')\n"
        "print('OUT', frame['output'].tolist(), frame['current'].tolist())\n"
    )
    (project.root / "df.py").write_text(script)
    project.write(BASE.replace("return x * 2", "return x * 5"))
    assert "OUT [1, 6, 11, 16] [True, True, True, True]" in project.run(script="df.py").stdout
    project.write(BASE)
    out = project.run(script="df.py").stdout
    assert "RUNS []" in out
    assert "OUT [1, 3, 5, 7] [True, True, True, True]" in out
    project.write(BASE.replace("return x * 2", "return x * 7"))  # no row is current: the newest, saying so
    (project.root / "df_only.py").write_text(
        "from mandala_ast import Storage\nimport experiment as ex\n"
        "frame = Storage('s.db').df(ex.train).sort_values('x')\n"
        "print('OUT', frame['output'].tolist(), frame['current'].tolist())\n"
    )
    assert "OUT [1, 6, 11, 16] [False, False, False, False]" in project.run(script="df_only.py").stdout


def test_on_change_error_keeps_refusing_until_accepted(project):
    """Regression: the second run after a refused change recomputed silently."""
    project.write(BASE.replace("return y + 1", "return y + 2"))
    for _ in range(2):
        proc = project.run("error", check=False)
        assert proc.returncode == 1 and "VersionChangeError" in proc.stderr


def test_two_accepted_changes_in_a_row_keep_the_oldest_results(project):
    """Regression: with a call computed between two accepted helper changes, the results from
    before the first change stopped being valid (accepted changes did not chain)."""
    for k in (3, 4):
        project.write(BASE.replace("return x * 2", f"return x * 2  # v{k}\n    _ = {k}"))
        script = DRIVER.replace("with storage:", "storage.accept_change(ex.helper)\nwith storage:")
        script = script.replace("ex.train(x)", f"ex.train(x)\n    ex.train({100 + k})")
        (project.root / "accept.py").write_text(script)
        assert f"RUNS [{100 + k}]" in project.run(script="accept.py").stdout


def test_an_empty_diff_says_what_changed_instead():
    from mandala_ast.runtime.versions import _diff

    assert "only the op's version= changed" in _diff("a\n", "a\n", (b"same", b"same"))
    assert "the code is unchanged" in _diff("a\n", "a\n", (b"old", b"new"))
    assert _diff("a\n", "b\n", (b"old", b"new")).startswith("--- stored")


def test_unchanged_code_fingerprinted_by_another_python_keeps_its_calls(project):
    """Regression: a store built under Python 3.12 saw every op and helper changed under 3.11
    (fingerprints hashed ast.dump text, which differs between versions) and recomputed
    everything. Source text that is unchanged now keeps its calls, whatever fingerprinted it;
    an edit is still seen."""
    other = "import mandala_ast.runtime.fingerprints as fp\nfp._serialise = lambda tree: 'other' + fp.ast.dump(tree)\n"
    (project.root / "other.py").write_text(other + DRIVER)
    proc = project.run(script="other.py")
    assert "RUNS []" in proc.stdout
    assert "changed" not in proc.stderr
    assert project.runs() == []  # and back under the usual fingerprints: still nothing to do
    project.write(BASE.replace("return y + 1", "return y + 2"))
    proc = project.run(script="other.py")
    assert "RUNS [0, 1, 2, 3]" in proc.stdout and "op experiment.train changed" in proc.stderr

def test_code_without_source_is_never_taken_for_unchanged_text():
    # Unchanged source text keeps calls across fingerprint changes; the stand-in text for code
    # without source names an object and its address, which another function may reuse.
    from mandala_ast.runtime.fingerprints import fingerprint
    from mandala_ast.runtime.versions import _is_text

    made = {}
    exec("def f(x):\n    return x + 1\n", made)  # no file: inspect finds no source
    assert not _is_text(fingerprint(made["f"]).source)
    # A function with a file (not this test: pytest rewrites its asserts, so a test file
    # younger than the process, a fresh clone's, compiles to other code than it runs).
    import textwrap

    assert _is_text(fingerprint(textwrap.dedent).source)


INNER_OPS = '''
from mandala_ast import workflow

RUNS = []

@op
def f_1(x):
    RUNS.append("f_1")
    return x + 1

def plain_helper(x):
    return f_1(x)

@workflow
def flow_helper(x):
    return f_1(x)

@op
def f_2(x):
    RUNS.append("f_2")
    return CALL * 10

def block(path, inner_first):
    storage = Storage(path)
    with storage:
        if inner_first:
            f_1(1)
        out = f_2(1)
    return storage, out
'''

INNER_DRIVER = '''
import sys
if sys.argv[1] == "compiled":
    import mandala_ast; mandala_ast.install("experiment")
import experiment as ex
assert hasattr(ex, "__mandala_rt__") == (sys.argv[1] == "compiled")
from mandala_ast import Storage
why = Storage("s.db").why(ex.f_2, 1)
storage, out = ex.block("s.db", sys.argv[2] == "hit")
print("OUT", out, "RUNS", sorted(ex.RUNS))
print("WHY", why)
'''


@pytest.mark.parametrize("inner", ["hit", "miss"])
@pytest.mark.parametrize(
    "module, via",
    # Uncompiled, a workflow is a plain helper; compiled, it calls f_1 with provenance.
    [("plain", "direct"), ("plain", "helper"), ("compiled", "direct"), ("compiled", "helper"), ("compiled", "workflow")],
)
def test_edited_inner_op_recomputes_outer_op(tmp_path, inner, module, via):
    """f_2's body calls f_1; editing f_1 must recompute f_2, also when f_1's call was already
    stored (a hit: f_1's body never ran inside f_2, so tracing alone cannot see it)."""
    project = Project(tmp_path)
    (tmp_path / "inner.py").write_text(INNER_DRIVER)
    call = {"direct": "f_1(x)", "helper": "plain_helper(x)", "workflow": "flow_helper(x)"}[via]
    source = INNER_OPS.replace("CALL", call)
    project.write(source)
    out = project.run(module, inner, script="inner.py").stdout
    assert "OUT 20 RUNS ['f_1', 'f_2']" in out
    project.write(source.replace("x + 1", "x + 2"))
    proc = project.run(module, inner, script="inner.py")
    assert "OUT 30 RUNS ['f_1', 'f_2']" in proc.stdout
    assert "WHY miss: experiment.f_2(x=1) was computed before" in proc.stdout
    for text in (proc.stdout, proc.stderr):  # why, and the change report of the run
        assert "dependency experiment.f_1 changed" in text
        assert "-    return x + 1" in text and "+    return x + 2" in text


def test_every_op_that_called_an_edited_op_recomputes(tmp_path):
    """Three op bodies call the same stored f_1(1) in one block (the later ones answered
    from memory): editing f_1 recomputes all three."""
    project = Project(tmp_path)
    source = INNER_OPS.replace("CALL", "f_1(x)").replace("def block", "def unused")
    source += "\n@op\ndef f_3(x):\n    RUNS.append('f_3')\n    return f_1(x) + f_1(x)\n"
    source += "\n@op\ndef f_4(x):\n    RUNS.append('f_4')\n    return -f_1(x)\n"
    (tmp_path / "many.py").write_text(DRIVER.replace("ex.train(x)", "print('OUT', ex.f_2(1), ex.f_3(1), ex.f_4(1))"))
    project.write(source)
    assert "OUT 20 4 -2" in project.run(script="many.py").stdout
    project.write(source.replace("x + 1", "x + 2"))
    out = project.run(script="many.py").stdout
    assert "OUT 30 6 -3" in out and "RUNS ['f_2', 'f_1', 'f_3', 'f_4']" in out


def test_edited_helper_of_an_inner_op_recomputes_outer_op(tmp_path):
    """f_1(1) is a hit inside f_2, so f_2 must take on what f_1's stored call depended on:
    editing f_1's helper recomputes f_1(1), and f_2(1) with it."""
    project = Project(tmp_path)
    (tmp_path / "inner.py").write_text(INNER_DRIVER)
    source = INNER_OPS.replace("CALL", "f_1(x)").replace("x + 1", "scale(x)")
    source = "import helpers\n" + source.replace("scale(", "helpers.scale(")
    project.write(source)
    project.write("def scale(x):\n    return x + 1\n", name="helpers.py")
    assert "OUT 20 RUNS ['f_1', 'f_2']" in project.run("plain", "hit", script="inner.py").stdout
    project.write("def scale(x):\n    return x + 2\n", name="helpers.py")
    out = project.run("plain", "hit", script="inner.py").stdout
    assert "OUT 30 RUNS ['f_1', 'f_2']" in out
    assert "dependency helpers.scale changed" in out and "+    return x + 2" in out


POOL_OPS = '''
import concurrent.futures as cf

RUNS = []
SHARED_POOL = cf.ThreadPoolExecutor(2)  # made before any op runs: its threads already exist

def helper(x):
    return x + 1

@op
def f_1(x):
    RUNS.append("f_1")
    return helper(x)

@op
def f_2(xs):
    RUNS.append("f_2")
    with POOL as pool:
        return sum(pool.map(TARGET, xs))

def block(path):
    storage = Storage(path)
    with storage:
        out = f_2((1, 2))
    SHARED_POOL.shutdown()
    return out
'''

POOL_DRIVER = '''
import experiment as ex
print("OUT", ex.block("s.db"), "RUNS", sorted(set(ex.RUNS)))
'''

POOLS = {
    "new threads": "cf.ThreadPoolExecutor(2)",
    "existing threads": "contextlib.nullcontext(SHARED_POOL)",
    "processes": "cf.ProcessPoolExecutor(2)",
}


@pytest.mark.parametrize(
    "pool, target",
    # (an op cannot be sent to a process pool by itself: it does not pickle)
    [(pool, target) for pool in POOLS for target in ("helper", "f_1") if (pool, target) != ("processes", "f_1")],
)
def test_edit_of_code_an_op_body_ran_in_a_pool_recomputes_the_op(tmp_path, pool, target):
    """f_2's body maps helper (or the op f_1) over a thread or process pool: that code runs
    in other threads or processes, where tracing the body does not reach. Editing it must
    still recompute f_2 (a stale hit otherwise), and an unchanged second run must not."""
    project = Project(tmp_path)
    (tmp_path / "pool.py").write_text(POOL_DRIVER)
    source = POOL_OPS.replace("POOL", POOLS[pool]).replace("TARGET", target)
    source = source.replace("SHARED_" + POOLS[pool], "SHARED_POOL")  # (the name itself)
    project.write("import contextlib\n" + source)
    assert "OUT 5" in project.run(script="pool.py").stdout
    assert "RUNS []" in project.run(script="pool.py").stdout
    project.write("import contextlib\n" + source.replace("x + 1", "x + 2"))
    out = project.run(script="pool.py").stdout
    assert "OUT 7" in out and "'f_2'" in out


NAMELESS_HELPERS = {
    # a module-level lambda bound to a name
    "lambda": ("scale = lambda x: x * 2\n", "scale(x)", "x * 2", "x * 3"),
    # a lambda held in a module-level registry
    "registry": ('HANDLERS = {"double": lambda x: x * 2}\n', 'HANDLERS["double"](x)', "x * 2", "x * 3"),
    # a function made by a factory: its code, and the value it closes over
    "factory code": ("def make(k):\n    def scale(x):\n        return x * k\n    return scale\nscale = make(2)\n",
                     "scale(x)", "x * k", "x * k * 3 // 2"),
    "factory value": ("def make(k):\n    def scale(x):\n        return x * k\n    return scale\nscale = make(2)\n",
                      "scale(x)", "make(2)", "make(3)"),
    # a classmethod: reached through its class, it is a bound method, not a function
    "classmethod": ("class Model:\n    @classmethod\n    def scale(cls, x):\n        return x * 2\n",
                    "Model.scale(x)", "x * 2", "x * 3"),
    # functools.partial of a helper, with its bound argument
    "partial": ("import functools\ndef mul(x, k):\n    return x * k\nscale = functools.partial(mul, k=2)\n",
                "scale(x)", "k=2", "k=3"),
}


@pytest.mark.parametrize("kind", list(NAMELESS_HELPERS))
def test_editing_a_helper_that_has_no_name_of_its_own_recomputes_the_op(tmp_path, kind):
    """Code an op reaches through a module-level name but whose own name leads nowhere (a
    lambda, a lambda in a dict, a closure a factory made, a partial) was no dependency:
    editing it served the stale result."""
    helper, call, old, new = NAMELESS_HELPERS[kind]
    edit_recomputes_every_call(tmp_path, helper, f"{call} + 1", old, new)


def edit_recomputes_every_call(tmp_path, definitions: str, returned: str, old: str, new: str) -> None:
    """``train(x)`` returning ``returned`` after ``definitions``: stored for x in 0..3, all
    hits in a new process, all computed again once ``old`` is edited to ``new``."""
    source = definitions + f"RUNS = []\n\n@op\ndef train(x):\n    RUNS.append(x)\n    return {returned}\n"
    project = Project(tmp_path)
    project.write(source)
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(source.replace(old, new))
    assert project.runs() == [0, 1, 2, 3]


MODULE_OBJECTS = {
    "dataclass": ("from dataclasses import dataclass\n@dataclass\nclass Config:\n    scale: int\n"
                  "CONFIG = Config(scale=2)\n", "CONFIG.scale", "scale=2", "scale=3"),
    "instance": ("class Model:\n    def __init__(self, k):\n        self.k = k\n"
                 "    def predict(self, x):\n        return x * self.k\nMODEL = Model(2)\n",
                 "MODEL.predict(x) // x if x else MODEL.k * 0", "Model(2)", "Model(3)"),
    "class attribute": ("class Model:\n    K = 2\n    def predict(self, x):\n        return x * self.K\n",
                        "Model().predict(x) // x if x else Model.K * 0", "K = 2", "K = 3"),
    "inherited class attribute": ("class Base:\n    K = 2\nclass Model(Base):\n    @classmethod\n"
                                  "    def scale(cls):\n        return cls.K\n",
                                  "Model.scale()", "K = 2", "K = 3"),
    "path": ("from pathlib import Path\nDATA = Path('/data/v1')\n", "len(DATA.parts)", "/data/v1", "/data/v1/x"),
    "date": ("import datetime\nCUTOFF = datetime.date(2020, 1, 1)\n", "CUTOFF.year - 2019", "2020, 1, 1", "2021, 1, 1"),
    "enum": ("import enum\nclass Mode(enum.Enum):\n    FAST = 1\n    SLOW = 2\nMODE = Mode.FAST\n",
             "MODE.value", "MODE = Mode.FAST", "MODE = Mode.SLOW"),
    "named tuple": ("from typing import NamedTuple\nclass Config(NamedTuple):\n    scale: int\n"
                    "CONFIG = Config(2)\n", "CONFIG.scale", "Config(2)", "Config(3)"),
}


@pytest.mark.parametrize("kind", list(MODULE_OBJECTS))
def test_editing_a_module_level_config_object_an_op_reads_recomputes_the_op(tmp_path, kind):
    """CONFIG = Config(lr=...) at module level, read by an op: an instance of the user's
    class was no dependency (neither code nor a plain constant), so changing it served
    the results computed with the old settings."""
    definition, read, old, new = MODULE_OBJECTS[kind]
    edit_recomputes_every_call(tmp_path, definition, f"x * ({read}) + 1", old, new)


LIBRARY_OBJECTS = {
    "random generator": ("import random\nRNG = random.Random(2)\n", "int(RNG.random() * 0) + x", "Random(2)", "Random(3)"),
    "generator seeded by a constant": ("import random\nSEED = 2\nRNG = random.Random(SEED)\n", "int(RNG.random() * 0) + x",
                                       "SEED = 2", "SEED = 3"),
    "numpy dtype": ("import numpy as np\nDT = np.dtype('f4')\n", "int(np.zeros(1, DT).itemsize) + x", "'f4'", "'f8'"),
    "string template": ("import string\nT = string.Template('$a-1')\n", "len(T.substitute(a=x))", "-1", "-22"),
    "time zone": ("import datetime\nTZ = datetime.timezone(datetime.timedelta(hours=1))\n",
                  "x + TZ.utcoffset(None).seconds // 3600", "hours=1", "hours=2"),
    "decimal context": ("import decimal\nCTX = decimal.Context(prec=3)\n", "CTX.prec + x", "prec=3", "prec=4"),
    "item getter": ("import operator\nGET = operator.itemgetter(0)\n", "GET((x, 2 * x))", "itemgetter(0)", "itemgetter(1)"),
    "bound builtin method": ("FMT = '{:.2f}'.format\n", "len(FMT(x / 3))", "{:.2f}", "{:.3f}"),
    "method descriptor": ("UP = str.upper\n", "len(UP('a' * x))", "str.upper", "str.title"),
    "class-level time zone": ("import datetime\nclass C:\n    TZ = datetime.timezone(datetime.timedelta(hours=1))\n",
                              "x + C.TZ.utcoffset(None).seconds // 3600", "hours=1", "hours=2"),
    "time zone in a dict": ("import datetime\nCFG = {'tz': datetime.timezone(datetime.timedelta(hours=1))}\n",
                            "x + CFG['tz'].utcoffset(None).seconds // 3600", "hours=1", "hours=2"),
    "class-level time zone read as self.TZ": (
        "import datetime\nclass C:\n    TZ = datetime.timezone(datetime.timedelta(hours=1))\n"
        "    def hours(self):\n        return self.TZ.utcoffset(None).seconds // 3600\n",
        "x + C().hours()", "hours=1", "hours=2"),
    "time zone read by a computed name": ("import datetime\nTZ = datetime.timezone(datetime.timedelta(hours=1))\n",
                                          "x + globals()['T' + 'Z'].utcoffset(None).seconds // 3600", "hours=1", "hours=2"),
}


@pytest.mark.parametrize("kind", list(LIBRARY_OBJECTS))
def test_editing_a_module_level_library_object_an_op_reads_recomputes_the_op(tmp_path, kind):
    """``RNG = random.Random(2)`` made ``Random(3)``, a template, a time zone, a dtype, a
    getter or a bound method at module level: a library object with no content key was no
    dependency at all, so editing how it is made served the results of the old one. It
    counts by the text that defines it (its state may move as calls run: a generator's
    does, and a new process still hits)."""
    definition, read, old, new = LIBRARY_OBJECTS[kind]
    edit_recomputes_every_call(tmp_path, definition, read, old, new)


RUN_TIME_MODULE_NAMES = {
    "__import__": "__import__('helpers').scale(x)",
    "importlib.import_module": "importlib.import_module('helpers').scale(x)",
    "sys.modules": "sys.modules['helpers'].scale(x)",
}


@pytest.mark.parametrize("kind", list(RUN_TIME_MODULE_NAMES))
def test_edit_of_a_helper_reached_through_a_module_named_at_run_time_recomputes(tmp_path, kind):
    """``importlib.import_module("helpers").scale(x)``: the op's code names no code of the
    user's, only a library function, so it was not traced, and editing ``scale`` served the
    stale result."""
    project = Project(tmp_path)
    project.write("def scale(x):\n    return x * 10\n", name="helpers.py")
    header = "import importlib\nimport sys\nimport helpers\nRUNS = []"
    project.write(BASE.replace("RUNS = []", header).replace("y = helper(x)", f"y = {RUN_TIME_MODULE_NAMES[kind]}"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write("def scale(x):\n    return x * 11\n", name="helpers.py")
    assert project.runs() == [0, 1, 2, 3]


MUTATED_OBJECT = '''
class Model:
    def __init__(self, k):
        self.k = k
        self.seen = []

    def fit(self, x):
        self.seen.append(x)
        return self

MODEL = Model(2)
RUNS = []

@op
def train(x):
    RUNS.append(x)
    return MODEL.fit(x).k * x + 1
'''


def test_a_module_level_object_an_op_changes_through_its_methods_hits_in_a_new_process(tmp_path):
    """MODEL.fit(x) changes MODEL: taken as it was after the body, its state never matched a
    new process's fresh MODEL, and every new process trained again. The op depends on the
    object as the body found it; changing how it is made still recomputes. (A second call
    in the same block found MODEL as the first one left it, so it depends on that history:
    a process that does not run the first body finds MODEL otherwise, and computes it.)"""
    project = Project(tmp_path)
    (tmp_path / "once.py").write_text(DRIVER.replace("for x in range(4)", "for x in range(1)"))
    project.write(MUTATED_OBJECT)
    assert "RUNS [0]" in project.run(script="once.py").stdout
    assert "RUNS []" in project.run(script="once.py").stdout
    project.write(MUTATED_OBJECT.replace("Model(2)", "Model(3)"))
    out = project.run(script="once.py")
    assert "RUNS [0]" in out.stdout and "Model(k=2, seen=[])" in out.stderr and "Model(k=3, seen=[])" in out.stderr


def test_version_bump_of_an_inner_op_recomputes_outer_op(tmp_path):
    """version= bumped by hand on f_1 (its code unchanged) recomputes f_1(1), and f_2(1)."""
    project = Project(tmp_path)
    (tmp_path / "inner.py").write_text(INNER_DRIVER)
    source = INNER_OPS.replace("CALL", "f_1(x)")
    project.write(source)
    assert "OUT 20 RUNS ['f_1', 'f_2']" in project.run("plain", "hit", script="inner.py").stdout
    project.write(source.replace("@op\ndef f_1", "@op(version=1)\ndef f_1"))
    out = project.run("plain", "hit", script="inner.py").stdout
    assert "OUT 20 RUNS ['f_1', 'f_2']" in out
    assert "dependency experiment.f_1 changed" in out and "+@op(version=1)" in out


def test_accepted_change_of_an_inner_op_keeps_the_outer_results(tmp_path):
    """accept_change(f_1) says f_1's edit is cosmetic: f_2's calls made with the old f_1
    stay valid too (f_2 depends on f_1, so its calls were stale without this)."""
    project = Project(tmp_path)
    (tmp_path / "inner.py").write_text(INNER_DRIVER.replace("why = ", "Storage(\"s.db\").accept_change(ex.f_1)\nwhy = "))
    source = INNER_OPS.replace("CALL", "f_1(x)")
    project.write(source)
    assert "OUT 20 RUNS ['f_1', 'f_2']" in project.run("plain", "miss", script="inner.py").stdout
    project.write(source.replace("return x + 1", "return 1 + x"))
    out = project.run("plain", "miss", script="inner.py").stdout
    assert "OUT 20 RUNS []" in out and "WHY hit" in out


def test_why_sees_a_helper_edited_since_the_last_block(tmp_path, monkeypatch):
    """why gives the answer the next block would act on: a helper reloaded since the last
    block makes the call a miss, with the helper's diff; and asking changes nothing stored."""
    import importlib

    from mandala_ast import Storage, op

    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "why_helpers.py"
    module.write_text("def helper(x):\n    return x + 1\n")
    helpers = importlib.import_module("why_helpers")
    runs = []

    @op
    def uses(x):
        runs.append(x)
        return helpers.helper(x)

    storage = Storage(tmp_path / "s.db")
    with storage:
        uses(1)
    stored = _contents(tmp_path / "s.db")
    module.write_text("def helper(x):\n    return x + 2\n")
    importlib.reload(helpers)
    answer = storage.why(uses, 1)
    assert answer.startswith("miss:") and "dependency why_helpers.helper changed" in answer
    assert "-    return x + 1" in answer and "+    return x + 2" in answer
    storage.commit()
    assert _contents(tmp_path / "s.db") == stored
    with storage:
        assert uses(1) == 3
    assert runs == [1, 1]


def test_why_of_an_edited_op_stores_nothing(tmp_path, monkeypatch):
    """Asking about a new version of an op registers nothing (and reports nothing): why is
    read-only; the next block still reports the change and computes."""
    import importlib

    from mandala_ast import Storage

    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "why_ops.py"
    module.write_text("from mandala_ast import op\n\n@op\ndef f(x):\n    return x + 1\n")
    ops = importlib.import_module("why_ops")
    storage = Storage(tmp_path / "s.db")
    with storage:
        ops.f(1)
    stored = _contents(tmp_path / "s.db")
    module.write_text("from mandala_ast import op\n\n@op\ndef f(x):\n    return x + 2\n")
    importlib.reload(ops)
    answer = storage.why(ops.f, 1)
    assert "computed by another version of the op" in answer and "+    return x + 2" in answer
    storage.commit()
    assert _contents(tmp_path / "s.db") == stored
    with storage:
        assert ops.f(1) == 3
    assert len(storage.versions(ops.f)) == 2


def _contents(db: Path) -> dict[str, list]:
    import sqlite3

    conn = sqlite3.connect(db)
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    contents = {table: sorted(map(repr, conn.execute(f"SELECT * FROM {table}"))) for table in tables}
    conn.close()
    return contents


def test_returning_another_local_variable_recomputes_and_reports(tmp_path):
    """Locals are renamed by first appearance before fingerprinting, so that renaming one is
    cosmetic; two distinct locals must keep distinct names, or `return a` -> `return b` would
    serve the stale result and report nothing."""
    project = Project(tmp_path)
    source = '''
    RUNS = []

    @op
    def train(x):
        RUNS.append(x)
        plus = x + 1
        times = x * 10
        return {name}
    '''
    project.write(source.format(name="plus"))
    assert project.runs() == [0, 1, 2, 3]
    project.write(source.format(name="times"))
    proc = project.run()
    assert "RUNS [0, 1, 2, 3]" in proc.stdout
    assert "-    return plus" in proc.stderr and "+    return times" in proc.stderr


def test_edit_of_a_constant_only_a_helper_reads_recomputes_and_reports(tmp_path):
    """The op never names SCALE: only its helper does, and the helper's reads count too."""
    project = Project(tmp_path)
    source = BASE.replace("RUNS = []", "RUNS = []\nSCALE = {k}").replace("return x * 2", "return x * SCALE")
    project.write(source.format(k=2))
    assert project.runs() == [0, 1, 2, 3]
    project.write(source.format(k=3))
    proc = project.run()
    assert "RUNS [0, 1, 2, 3]" in proc.stdout
    assert "dependency experiment.SCALE changed" in proc.stderr and "+3" in proc.stderr


@pytest.mark.parametrize(
    "spelling",
    [
        BASE.replace("@op\n", "@op(version=1)\n"),
        # op() applied outside the definition: the function's source text stays the same.
        BASE.replace("@op\n", "") + "\ntrain = op(version=1)(train)\n",
    ],
    ids=["decorator", "applied after the definition"],
)
def test_bumping_version_by_hand_recomputes_every_call(tmp_path, spelling):
    project = Project(tmp_path)
    project.write(spelling)
    assert project.runs() == [0, 1, 2, 3]
    project.write(spelling.replace("version=1", "version=2"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []


def test_why_of_an_op_never_called_stores_nothing_not_even_its_defaults(tmp_path):
    """why peeks at the defaults a first call would record (they key later calls): asking
    records none of them; the next block still computes and stores the call."""
    from mandala_ast import Storage, op

    @op
    def scaled(x, factor=3):
        return x * factor

    storage = Storage(tmp_path / "s.db")
    with storage:
        pass
    stored = _contents(tmp_path / "s.db")
    assert storage.why(scaled, 1).startswith("miss:")
    storage.commit()
    assert _contents(tmp_path / "s.db") == stored
    with storage:
        assert scaled(1) == 3
    assert storage.why(scaled, 1).startswith("hit:")


def test_df_and_query_agree_with_the_run_block_across_helper_edits_reverts_and_deletions(tmp_path, monkeypatch):
    """Generated: a helper edited and reverted in any order between run blocks over any inputs,
    and deletions of some inputs' calls. After each step, storage.df's current rows and a
    query of the same code give exactly what a run block of today's code loads, and df lists
    each input still stored once."""
    import importlib

    from hypothesis import HealthCheck, given, settings, strategies as st
    from test_query import run

    from mandala_ast import Storage, op

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # same-size edits: no stale .pyc
    module = tmp_path / "edited_helpers.py"
    module.write_text("def helper(x):\n    return x * 1\n")
    helpers = importlib.import_module("edited_helpers")

    @op
    def uses(x: int) -> int:
        return helpers.helper(x)

    # A step runs the block under a helper multiplying by a factor, or (factor 0) deletes the
    # calls of some inputs: every row of such a call goes, whatever helper computed it.
    steps = st.lists(st.tuples(st.sampled_from([0, 1, 2, 3]), st.sets(st.integers(0, 4), min_size=1)), min_size=1, max_size=6)

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(steps=steps)
    def check(steps: list[tuple[int, set[int]]]) -> None:
        storage = Storage()
        computed: dict[int, set[int]] = {}  # factor -> inputs computed under it
        factor = 1
        module.write_text("def helper(x):\n    return x * 1\n")
        importlib.reload(helpers)
        for step, xs in steps:
            if step == 0:
                frame = storage.df(uses)
                storage.delete_calls(frame[frame["x"].isin(xs)], dependents=False)  # (uncompiled
                # code's dependents go by content: uses(2) took the 2 that uses(1) returned)
                for inputs in computed.values():
                    inputs -= xs
            else:
                factor = step
                module.write_text(f"def helper(x):\n    return x * {factor}\n")
                importlib.reload(helpers)
                with storage:
                    loaded = {x: uses(x) for x in sorted(xs)}
                assert loaded == {x: x * factor for x in xs}
                computed.setdefault(factor, set()).update(xs)
            frame = storage.df(uses)
            assert sorted(frame["x"]) == sorted(set().union(*computed.values()))
            current = frame[frame["current"]]
            assert sorted(zip(current["x"], current["output"])) == sorted((x, x * factor) for x in computed.get(factor, ()))
            query = run("import mandala_ast\nwith storage.query() as q:\n    x = Q()\n    y = uses(x)\n",
                        storage, uses=uses)["q"].df()
            assert sorted(zip(query["x"], query["y"])) == sorted((x, x * factor) for x in computed.get(factor, ()))

    check()


def test_a_parameter_added_with_a_default_in_the_same_process_keeps_the_stored_calls(tmp_path, monkeypatch):
    """A reload (or a notebook cell run again) adding `scale: int = 2`: the op keeps its
    version, but the defaults were cached by version for the old op object, so f(1) was
    computed again as a new call and storage.df showed x=1 twice (scale None and 2)."""
    import importlib

    from mandala_ast import Storage

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    module = tmp_path / "grows_here.py"
    body = "from mandala_ast import op\n\nRUNS = []\n\n@op\ndef f(x: int{extra}) -> int:\n    RUNS.append(x)\n    return x * 2\n"
    module.write_text(body.format(extra=""))
    grows = importlib.import_module("grows_here")
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        grows.f(1)
    module.write_text(body.format(extra=", scale: int = 2"))
    importlib.reload(grows)
    with storage.run():
        assert grows.f(1) == 2
    assert grows.RUNS == []
    assert storage.df(grows.f)[["x", "scale"]].values.tolist() == [[1, 2]]


def _made_op(k: int):
    from mandala_ast import op

    @op
    def scaled(x, factor=2):
        return x * factor + k

    return scaled


def test_ops_a_factory_makes_in_a_loop_are_not_kept_alive(tmp_path, monkeypatch):
    """The defaults the storage remembers per op object held every op a loop made."""
    import gc
    import weakref

    from mandala_ast import Storage
    from mandala_ast.runtime import versions

    monkeypatch.setattr(versions, "_MAX_OPS_REMEMBERED", 50)
    first = _made_op(0)
    first_ref = weakref.ref(first)
    storage = Storage(tmp_path / "s.db")  # (a long-lived storage: a notebook's)
    with storage:
        first(1)
        del first
        for k in range(1, 120):
            _made_op(k)(1)
    gc.collect()
    assert first_ref() is None and storage.path is not None


def test_a_misspelt_on_change_is_an_argument_error_that_creates_no_file(tmp_path):
    """Storage(path, on_change="recompute") raised a bare ValueError, after creating the file."""
    from mandala_ast import ArgumentError, Storage

    with pytest.raises(ArgumentError, match=r"Storage: on_change= must be .*'recompute'"):
        Storage(tmp_path / "s.db", on_change="recompute")
    assert list(tmp_path.iterdir()) == []


PAIRS: list[int] = []


def _pair(x: int):  # one function, decorated with one output and with two
    PAIRS.append(x)
    return x, x * 2


@pytest.mark.parametrize("before, after", [(1, 2), (2, 1)])
def test_an_op_given_another_output_count_computes_its_calls_again_not_in_the_old_shape(tmp_path, before, after):
    # nout=2 added to an op whose calls were stored with one output: the stored tuple came
    # back as the only output, ((3, 6),) where (3, 6) was due.
    from mandala_ast import Storage, op

    PAIRS.clear()
    with Storage(tmp_path / "s.db").run():
        assert op(nout=before)(_pair)(3) == (3, 6)
    for _ in range(2):
        with Storage(tmp_path / "s.db").run():
            assert op(nout=after)(_pair)(3) == (3, 6)
    with Storage(tmp_path / "s.db").run():  # back as it was: the first calls again
        assert op(nout=before)(_pair)(3) == (3, 6)
    assert PAIRS == [3, 3]
    assert list(Storage(tmp_path / "s.db").df(op(nout=after)(_pair))["current"]) == [False, True]


def _pair_edited(x: int):  # _pair with its code edited (and the same name)
    PAIRS.append(x)
    return (x, x * 2)


_pair_edited.__qualname__ = _pair.__qualname__


def test_accepting_an_ops_new_output_count_computes_its_calls_in_that_shape_and_keeps_the_old_ones(tmp_path):
    # accept_change said the stored calls stay valid, computed them again all the same, and
    # pointed the version at the new shape's: going back to one output computed them again.
    from mandala_ast import Storage, VersionChangeError, op

    PAIRS.clear()
    with Storage(tmp_path / "s.db").run():
        assert op(_pair)(3) == (3, 6)
    storage = Storage(tmp_path / "s.db", on_change="error")
    with pytest.raises(VersionChangeError, match="2 output"):
        with storage.run():
            op(nout=2)(_pair)(3)
    said = storage.accept_change(op(nout=2)(_pair))
    with storage.run():
        assert op(nout=2)(_pair)(3) == (3, 6)
    with Storage(tmp_path / "s.db").run():
        assert op(_pair)(3) == (3, 6)
    assert PAIRS == [3, 3]
    assert "computed again" in said and "stay valid" not in said


def test_accepting_an_edit_that_also_gives_an_op_another_output_count_hands_back_no_old_shape(tmp_path):
    # In the process that accepted it, the stored tuple came back as the only output: ((3, 6),).
    from mandala_ast import Storage, op

    PAIRS.clear()
    with Storage(tmp_path / "s.db").run():
        assert op(_pair)(3) == (3, 6)
    storage = Storage(tmp_path / "s.db")
    said = storage.accept_change(op(nout=2)(_pair_edited))
    with storage.run():
        assert op(nout=2)(_pair_edited)(3) == (3, 6)
    assert PAIRS == [3, 3]
    assert "computed again" in said and "stay valid" not in said


LOCAL_IMPORTS = {
    "from-import of a constant": ("from helpers import K", "x * K"),
    "import of a module": ("import helpers", "x * helpers.K"),
    "import of a module under another name": ("import helpers as h", "x * h.K"),
    "from-import of a helper reading the constant": ("from helpers import scale", "scale(x)"),
}


@pytest.mark.parametrize("kind", list(LOCAL_IMPORTS))
def test_edit_of_what_an_op_imports_inside_its_body_recomputes_and_only_then(tmp_path, kind):
    """Names an op imports inside its body were taken for local variables: a constant read
    through them was no dependency (editing it served the old result), and a helper so
    imported was looked up before its module was imported, so it seemed gone and the first
    call of every new process computed again."""
    statement, expression = LOCAL_IMPORTS[kind]
    project = Project(tmp_path)
    helpers = "K = {k}\n\ndef scale(x):\n    return x * K\n"
    project.write(helpers.format(k=2), name="helpers.py")
    project.write(BASE.replace("y = helper(x)", f"{statement}\n    y = {expression}"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(helpers.format(k=3), name="helpers.py")
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []


DECORATED = '''
import functools

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args) + {added}
    return wrapper

@logged
def scale(x):
    return x * 10
'''


@pytest.mark.skipif(sys.version_info < (3, 11), reason="no co_qualname before 3.11 (README says so)")
def test_edit_of_the_wrapper_of_a_decorated_helper_recomputes(tmp_path):
    """A helper decorated with a functools.wraps decorator of the user's counted by the code
    it wraps alone (its source is what inspect finds): the wrapper's own code, which runs
    in the op, was nobody's dependency, so editing it served the stale result."""
    project = edit_recomputes(tmp_path, DECORATED.format(added=1), DECORATED.format(added=2), "helpers.scale(x)")
    assert project.runs() == []


def test_edit_of_a_helper_an_op_looks_up_by_name_in_a_module_recomputes(tmp_path):
    """``getattr(helpers, name)(x)``: the op's code names the module alone, no function of it,
    so it was taken for code that cannot reach the user's and was not traced; editing the
    helper it looked up served the stale result."""
    before, after = "def scale(x):\n    return x * 10\n", "def scale(x):\n    return x * 11\n"
    edit_recomputes(tmp_path, before, after, "getattr(helpers, 'sca' + 'le')(x)")


GENERATED = {
    "exec'd helper": ("exec('def scale(x):\\n    return x * 10\\n')\n", "x * 10", "x * 11", "helpers.scale(x)"),
    "dataclass fields swapped": ("from dataclasses import dataclass\n@dataclass\nclass Cfg:\n    a: int = 1\n    b: int = 2\n",
                                 "a: int = 1\n    b: int = 2", "b: int = 1\n    a: int = 2", "x * helpers.Cfg().a"),
}


@pytest.mark.parametrize("kind", list(GENERATED))
def test_edit_of_generated_code_whose_stand_in_text_is_unchanged_recomputes(tmp_path, kind):
    """Code with no source (exec'd text, a dataclass's __init__) is shown by a stand-in text
    of its name and defaults. That text was taken for source, so when it was unchanged the
    new fingerprint was accepted as the same code: the stored result was served."""
    helpers, old, new, expression = GENERATED[kind]
    edit_recomputes(tmp_path, helpers, helpers.replace(old, new), expression)


def test_edit_of_a_lambda_a_module_level_object_holds_recomputes(tmp_path):
    """``BOX = Box(lambda x: ...)`` read by an op: pickle cannot take the lambda, so the
    object had no content id and was no dependency at all; editing the lambda served the
    stale result."""
    definitions = "class Box:\n    def __init__(self, fn):\n        self.fn = fn\n\nBOX = Box(lambda x: x * 2)\n"
    edit_recomputes_every_call(tmp_path, definitions, "BOX.fn(x) + 1", "x * 2", "x * 3")


CLASS_DATA_READS = {
    "self.__class__.K": ("class Model:\n    K = 2\n    def scale(self):\n        return self.__class__.K\n", "Model().scale()"),
    "type(self).K": ("class Model:\n    K = 2\n    def scale(self):\n        return type(self).K\n", "Model().scale()"),
    "an instance's class attribute": ("class Model:\n    K = 2\n\nMODEL = Model()\n", "MODEL.K"),
}


@pytest.mark.parametrize("kind", list(CLASS_DATA_READS))
def test_edit_of_a_class_constant_read_through_the_class_of_an_object_recomputes(tmp_path, kind):
    """Class-level data counted when read as ``self.K``, ``cls.K`` or ``Model.K``; read as
    ``type(self).K``, ``self.__class__.K`` or through a module-level instance (``MODEL.K``)
    it was no dependency, so editing it served the stale result."""
    definitions, read = CLASS_DATA_READS[kind]
    edit_recomputes_every_call(tmp_path, definitions, f"x * {read} + 1", "K = 2", "K = 3")


#: An import switched from slow.py to fast.py: the op's code is the same, and the stored call
#: depended on ``slow.scale``, which is unchanged (and imported: the op checks it), so the
#: result of the other module's helper was served.
SWITCHED_IMPORTS = {
    "a helper imported under the same name": ("from slow import scale", "scale(x)", "from slow import", "from fast import"),
    "a module alias": ("import slow as impl", "impl.scale(x)", "import slow as", "import fast as"),
}


@pytest.mark.parametrize(("imported", "called", "before", "after"), SWITCHED_IMPORTS.values(), ids=list(SWITCHED_IMPORTS))
def test_an_import_switched_to_another_module_recomputes(tmp_path, imported, called, before, after):
    project = Project(tmp_path)
    project.write("def scale(x):\n    return x * 10\n", name="slow.py")
    project.write("def scale(x):\n    return x * 11\n", name="fast.py")
    source = BASE.replace("RUNS = []", f"{imported}\nRUNS = []").replace("y = helper(x)", f"y = {called}")
    project.write(source)
    assert project.runs() == [0, 1, 2, 3]
    project.write(source.replace(before, after))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(source)  # back as it was: the first results again
    assert project.runs() == []


COMMAND_LINE_CODE = """
from mandala_ast import Storage, op

K = {k}

def helper(x):
    return x + K

@op
def scaled(x):
    return x * K

@op
def shifted(x):
    return helper(x)

with Storage("s.db").run():
    print(scaled(2), shifted(2))
"""


def test_an_op_given_to_python_dash_c_is_computed_again_once_the_constant_it_reads_changes(tmp_path):
    """Code given with ``python -c`` has no source to read: the names an op (or a helper it
    called) reads were taken from its source only, so ``K = 5`` made ``K = 7`` on the command
    line served the results computed with 5."""
    def run(k: int) -> str:
        command = [sys.executable, "-c", COMMAND_LINE_CODE.format(k=k)]
        env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert run(5) == "10 7"
    assert run(7) == "14 9"
    assert run(5) == "10 7"


CLASS_DATA_THROUGH_THE_CLASS = {
    # Class-level data read through an instance the op makes: no code of the class runs.
    "an instance made in the op": ("class Model:\n    K = 2\n", "Model().K * x", "K = 2", "K = 3"),
    "an instance a helper made": ("class Model:\n    K = 2\n\ndef make():\n    return Model()\n",
                                  "make().K * x", "K = 2", "K = 3"),
    # The class as a whole: Enum's lookups, iteration and len run the library's code only.
    "an enum looked up by value": ("import enum\nclass Mode(enum.Enum):\n    FAST = 1\n    SLOW = 2\n",
                                   "int(Mode(1).name == 'FAST') * x", "FAST = 1\n    SLOW = 2", "FAST = 2\n    SLOW = 1"),
    "an enum looked up by name": ("import enum\nclass Mode(enum.Enum):\n    FAST = 1\n", "Mode['FAST'].value * x",
                                  "FAST = 1", "FAST = 2"),
    "an enum iterated": ("import enum\nclass Mode(enum.Enum):\n    FAST = 1\n", "sum(m.value for m in Mode) * x",
                         "FAST = 1", "FAST = 2"),
    "an enum's length": ("import enum\nclass Mode(enum.Enum):\n    FAST = 1\n", "len(Mode) * x",
                         "FAST = 1\n", "FAST = 1\n    SLOW = 2\n"),
    "vars(a class)": ("class Model:\n    K = 2\n", "vars(Model)['K'] * x", "K = 2", "K = 3"),
    # Set where no text in the class body defines it: by its value.
    "a class attribute set by setattr": ("class Model:\n    pass\n\nfor name, value in {'K': 2}.items():\n"
                                         "    setattr(Model, name, [value])\n", "Model().K[0] * x", "'K': 2", "'K': 3"),
    # A class found by a name computed at run time: any class of the module may be the one.
    "a class found by a computed name": ("class Model:\n    K = 2\n\nNAME = 'Model'\n", "globals()[NAME]().K * x",
                                         "K = 2", "K = 3"),
    # A nested class, read as Outer.Inner.K or through an instance of it.
    "a nested class's constant": ("class Outer:\n    class Inner:\n        K = 2\n", "Outer.Inner.K * x", "K = 2", "K = 3"),
    "an instance of a nested class": ("class Outer:\n    class Inner:\n        K = 2\n", "Outer.Inner().K * x",
                                      "K = 2", "K = 3"),
    # An instance module-level data holds: its content leaves its class's data out.
    "an instance in a module-level list": ("class Model:\n    K = 2\n\nMODELS = [Model()]\n", "MODELS[0].K * x",
                                           "K = 2", "K = 3"),
    "an instance a module-level object holds": ("class Model:\n    K = 2\n\nclass Pipe:\n    def __init__(self):\n"
                                                "        self.model = Model()\n\nPIPE = Pipe()\n", "PIPE.model.K * x",
                                                "K = 2", "K = 3"),
    # `case Point(a, _)` reads Point.__match_args__, which no code of the class reads.
    "a class pattern's positions": ("class Point:\n    __match_args__ = ('a', 'b')\n    def __init__(self):\n"
                                    "        self.a, self.b = 2, 5\n\ndef first(p):\n    match p:\n"
                                    "        case Point(v, _):\n            return v\n",
                                    "first(Point()) * x", "('a', 'b')", "('b', 'a')"),
    # A partialmethod (or a staticmethod holding a partial) reached through an instance: the
    # method's code runs, the arguments the class binds are no code.
    "a partialmethod through an instance": ("import functools\nclass Model:\n    def scale(self, x, k):\n"
                                            "        return x * k\n    double = functools.partialmethod(scale, k=2)\n",
                                            "Model().double(x)", "k=2", "k=3"),
    "a staticmethod partial through an instance": ("import functools\ndef scale(x, k):\n    return x * k\n"
                                                   "class Model:\n    double = staticmethod(functools.partial(scale, k=2))\n",
                                                   "Model().double(x)", "k=2", "k=3"),
}


@pytest.mark.parametrize("kind", list(CLASS_DATA_THROUGH_THE_CLASS))
def test_class_data_read_without_running_the_classes_code_recomputes_when_edited(tmp_path, kind):
    """Class-level data counted when read as ``Model.K``, ``self.K`` or ``MODEL.K``; read
    through an instance the op made (``Model().K``), or through the class as a whole (an
    Enum's ``Mode(1)``, ``list(Mode)``, ``len(Mode)``, ``vars(Model)``, a ``match`` class
    pattern), nothing of the class was a dependency and editing it served the stale result."""
    definitions, returned, old, new = CLASS_DATA_THROUGH_THE_CLASS[kind]
    edit_recomputes_every_call(tmp_path, definitions, f"{returned} + 1", old, new)


def test_class_data_read_through_an_argument_recomputes_when_edited(tmp_path):
    """``train(x, model)`` reading ``model.K``, a class-level constant of the argument's
    class: the argument is keyed by its own attributes, its class by name, and nothing of the
    class ran, so ``K = 2`` edited to ``K = 3`` served the stale result."""
    project = Project(tmp_path)
    models = "class Model:\n    K = {k}\n"
    project.write(models.format(k=2), name="models.py")
    project.write(BASE.replace("def train(x):", "def train(x, model):").replace("y = helper(x)", "y = x * model.K"))
    (project.root / "driver.py").write_text(DRIVER.replace("ex.train(x)", "ex.train(x, __import__('models').Model())"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(models.format(k=3), name="models.py")
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []


def test_a_class_cache_filled_through_an_instance_does_not_recompute_in_a_new_process(tmp_path):
    """A class-level dict the op fills through an instance (``Memo().cache.setdefault(...)``)
    moves as calls run, and no code of the class's module writes it: counted by its value,
    each call's state held what the calls before it had put there, and every new process
    (which starts with it empty) computed every call again. It counts by its text."""
    project = Project(tmp_path)
    project.write("class Memo:\n    cache = {}\n", name="memo.py")
    project.write(BASE.replace("RUNS = []", "import memo\nRUNS = []").replace(
        "y = helper(x)", "y = memo.Memo().cache.setdefault(x, x * 2)"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write("class Memo:\n    cache = {0: 0}\n", name="memo.py")
    assert project.runs() == [0, 1, 2, 3]


def test_an_enum_member_argument_does_not_recompute_when_another_member_is_edited(tmp_path):
    """A member is keyed by its value: the data of its class (the other members) is no
    dependency of the op it is given, so editing ``SLOW = 2`` keeps ``train(x, Mode.FAST)``."""
    project = Project(tmp_path)
    modes = "import enum\nclass Mode(enum.Enum):\n    FAST = 1\n    SLOW = {slow}\n"
    project.write(modes.format(slow=2), name="modes.py")
    project.write(BASE.replace("def train(x):", "def train(x, mode):").replace("y = helper(x)", "y = x * mode.value"))
    (project.root / "driver.py").write_text(DRIVER.replace("ex.train(x)", "ex.train(x, __import__('modes').Mode.FAST)"))
    assert project.runs() == [0, 1, 2, 3]
    project.write(modes.format(slow=3), name="modes.py")
    assert project.runs() == []


def test_a_flag_combination_looked_up_does_not_recompute_in_a_new_process(tmp_path):
    """``Perm(3)`` on an IntFlag makes the member READ|WRITE and keeps it in the class's
    ``_value2member_map_``: counted by value, the class's data moved as calls ran, and every
    new process computed every call again. Its members count, not that bookkeeping."""
    definitions = "import enum\nclass Perm(enum.IntFlag):\n    READ = 1\n    WRITE = 2\n"
    source = definitions + "RUNS = []\n\n@op\ndef train(x):\n    RUNS.append(x)\n    return int(Perm(3)) * x\n"
    project = Project(tmp_path)
    project.write(source)
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(source.replace("WRITE = 2", "WRITE = 2\n    EXEC = 4"))
    assert project.runs() == [0, 1, 2, 3]


def test_a_class_list_its_constructor_fills_does_not_recompute_in_a_new_process(tmp_path):
    """``Node.ALL.append(self)`` in ``Node.__init__``: the constructor reads ``Node.ALL`` by
    the class's name, which counted by its value, the nodes made so far: every new process
    (which starts with none) computed every call that made a node again. State the class's
    module writes counts by its text, as it does read as ``self.ALL`` or ``cls.ALL``."""
    project = Project(tmp_path)
    nodes = "class Node:\n    ALL = []\n\n    def __init__(self):\n        Node.ALL.append(self)\n"
    project.write(nodes, name="nodes.py")
    project.write(BASE.replace("RUNS = []", "import nodes\nRUNS = []").replace(
        "y = helper(x)", "y = x * 2 if nodes.Node() else 0"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []


ATTRS_POINT = ("import attrs\n\n@attrs.define\nclass Point:\n    x: int = 2\n"
               "    tags: list = attrs.field(factory=lambda: [1])\n")


def test_an_attrs_class_made_in_the_op_does_not_recompute_in_a_new_process(tmp_path):
    """attrs compiles its ``__init__`` with globals of its own (``attr_dict``, a factory as
    ``__attr_factory_tags``): read by the op's module's name, ``experiment:attr_dict['x']``
    was gone in every new process, which computed every call that made one again."""
    source = ATTRS_POINT + "RUNS = []\n\n@op\ndef train(x):\n    RUNS.append(x)\n    return Point().x * x + len(Point().tags)\n"
    project = Project(tmp_path)
    project.write(source)
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []


@pytest.mark.parametrize("old, new", [("x: int = 2", "x: int = 3"), ("lambda: [1]", "lambda: [1, 2]")], ids=["default", "factory"])
def test_an_attrs_class_made_in_the_op_recomputes_when_its_defaults_are_edited(tmp_path, old, new):
    """What attrs' ``__init__`` takes from its own globals (a field's default, its factory)
    counts with its code."""
    edit_recomputes_every_call(tmp_path, ATTRS_POINT, "Point().x * x + len(Point().tags)", old, new)


def test_class_data_the_script_sets_between_blocks_recomputes_the_next_block(tmp_path):
    """``Model.K = 4`` set by the script between two blocks: the op reads it through an
    instance (``Model().K``); the block-entry check compared the class by identity, which the
    assignment keeps, so the second block was served the calls computed with K = 3."""
    project = Project(tmp_path)
    project.write("class Model:\n    K = 3\n", name="models.py")
    project.write(BASE.replace("RUNS = []", "import models\nRUNS = []").replace("y = helper(x)", "y = models.Model().K * x"))
    (project.root / "driver.py").write_text(DRIVER.replace(
        'print("RUNS", ex.RUNS)', 'ex.RUNS.clear()\nex.models.Model.K = 4\nwith storage:\n    for x in range(4):\n'
        '        ex.train(x)\nprint("RUNS", ex.RUNS)'))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []  # (K = 3, then 4: both stored)


@pytest.mark.xfail(strict=True, reason="a class held in another class's mutable data (a registry __init_subclass__ "
                   "fills) is not followed: that data counts by its text, which the registered class's edit leaves as it was")
def test_a_class_a_base_class_registry_holds_recomputes_when_its_data_is_edited(tmp_path):
    """``Base().registry['Small']().K``: ``registry = {}`` counts by its text; ``Small``'s data
    is no dependency, as no code of it runs and the op's code does not name it."""
    definitions = ("class Base:\n    registry = {}\n\n    def __init_subclass__(cls, **kw):\n"
                   "        super().__init_subclass__(**kw)\n        Base.registry[cls.__name__] = cls\n\n"
                   "class Small(Base):\n    K = 2\n")
    edit_recomputes_every_call(tmp_path, definitions, "Base().registry['Small']().K * x + 1", "K = 2", "K = 3")


@pytest.mark.xfail(strict=True, reason="a module bound under its own name (import helpers) records no binding: "
                   "rebinding the name to another module (import helpers2 as helpers) is not seen")
def test_a_module_name_rebound_to_another_module_recomputes(tmp_path):
    project = Project(tmp_path)
    project.write("def scale(x):\n    return x * 10\n", name="helpers.py")
    project.write("def scale(x):\n    return x * 11\n", name="helpers2.py")
    source = BASE.replace("RUNS = []", "import helpers\nRUNS = []").replace("y = helper(x)", "y = helpers.scale(x)")
    project.write(source)
    assert project.runs() == [0, 1, 2, 3]
    project.write(source.replace("import helpers\n", "import helpers2 as helpers\n"))
    assert project.runs() == [0, 1, 2, 3]
