"""What enters an op's version beyond its own code, with real module files edited between
runs (a new interpreter each run): decorators of helpers, constants read by name through
``globals()`` or ``getattr``, attributes set on functions, single entries of registries, and
helpers moved to another module.

A missed input serves a stale result; an input counted too broadly recomputes for nothing.
The first is never traded for the second.
"""

from __future__ import annotations

import pytest
from test_versions import (
    BASE,
    Project,
    edit_recomputes,
    edit_recomputes_every_call,
    helpers_project,
)

TIMER = '''
import functools

def my_timer(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        return fn(*args) + 1
    return wrapper

class Scaled:
    def __init__(self, k):
        self.k = k

    def __call__(self, fn):
        scaled = self

        class Wrapped:
            def __call__(self, x):
                return fn(x) * scaled.k

        wrapped = Wrapped()
        functools.update_wrapper(wrapped, fn)
        return wrapped

class Counted:
    def __init__(self, fn):
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, x):
        return self.fn(x) + 1

@{decorator}
def scale(x):
    return x * 10
'''


@pytest.mark.parametrize(
    ("before", "after"),
    [("functools.lru_cache", "my_timer"), ("my_timer", "functools.lru_cache"), ("functools.lru_cache", "Counted"),
     ("Scaled(2)", "Scaled(3)")],
    ids=["lru_cache to my_timer", "my_timer to lru_cache", "lru_cache to a class", "arguments changed"],
)
def test_a_helper_given_another_decorator_while_the_old_one_still_exists_recomputes(tmp_path, before, after):
    """The decorator line of a helper was not code: switching ``@functools.lru_cache`` to a
    decorator of the user's that changes the result (or the reverse, or a decorator's
    arguments), with both decorators still defined and unchanged, served the old result."""
    project = edit_recomputes(tmp_path, TIMER.format(decorator=before), TIMER.format(decorator=after),
                               "helpers.scale(x)")
    assert project.runs() == []
    project.write(TIMER.format(decorator=before), name="helpers.py")  # reverted: the first results
    assert project.runs() == []


def test_a_helper_whose_decorator_line_is_only_reformatted_hits(tmp_path):
    project = helpers_project(tmp_path, TIMER.format(decorator="Scaled(2)"), "helpers.scale(x)")
    assert project.runs() == [0, 1, 2, 3]
    project.write(TIMER.format(decorator="Scaled( 2 )  # the same"), name="helpers.py")
    assert project.runs() == []


GLOBAL_READS = {
    "globals() in the op": ("K = {k}\n", "x * globals()['K']", ""),
    "globals().get in the op": ("K = {k}\n", "x * globals().get('K', 0)", ""),
    "globals() in a helper": ("K = {k}\n\ndef scale(x):\n    return x * globals()['K']\n", "helpers.scale(x)", "helpers"),
    "getattr of a module": ("K = {k}\n", "x * getattr(helpers, 'K')", "helpers"),
    "getattr with a default": ("K = {k}\n", "x * getattr(helpers, 'K', 1)", "helpers"),
    "vars of a module": ("K = {k}\n", "x * vars(helpers)['K']", "helpers"),
    "__dict__ of a module": ("K = {k}\n", "x * helpers.__dict__['K']", "helpers"),
    # a name computed at run time: any public constant of the module may be the one read
    "getattr with a computed name": ("K = {k}\n", "x * getattr(helpers, 'k'.upper())", "helpers"),
    "vars with a computed name": ("K = {k}\n", "x * vars(helpers)['k'.upper()]", "helpers"),
    "globals() with a computed name": ("K = {k}\n", "x * globals()['k'.upper()]", ""),
    "globals().get with a computed name": ("K = {k}\n", "x * globals().get('k'.upper())", ""),
}


@pytest.mark.parametrize("kind", list(GLOBAL_READS))
def test_a_constant_read_by_its_name_as_a_string_recomputes_when_edited(tmp_path, kind):
    """``globals()['K']`` and ``getattr(helpers, 'K')`` name the constant in a string: no
    name chain reached it, so it was no dependency and editing it served the stale result."""
    constants, expression, module = GLOBAL_READS[kind]
    if module:
        edit_recomputes(tmp_path, constants.format(k=2), constants.format(k=3), expression, module)
        return
    source = BASE.replace("RUNS = []", "RUNS = []\n" + constants).replace("y = helper(x)", f"y = {expression}")
    project = Project(tmp_path)
    project.write(source.format(k=2))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(source.format(k=3))
    assert project.runs() == [0, 1, 2, 3]


def test_a_class_constant_a_method_reads_through_getattr_on_self_recomputes_when_edited(tmp_path):
    """``getattr(self, "K")``: class data counted when read as ``self.K``, not so."""
    definitions = "class Model:\n    K = 2\n\n    def scale(self):\n        return getattr(self, 'K')\n"
    edit_recomputes_every_call(tmp_path, definitions, "x * Model().scale() + 1", "K = 2", "K = 3")


FUNCTION_ATTRIBUTES = {
    "read by the op": ("def scale(x):\n    return x * 10\n\nscale.factor = {k}\n", "helpers.scale(x) * helpers.scale.factor"),
    "read by the helper": ("def scale(x):\n    return x * scale.factor\n\nscale.factor = {k}\n", "helpers.scale(x)"),
    "read through getattr": ("def scale(x):\n    return x * 10\n\nscale.factor = {k}\n",
                             "getattr(helpers.scale, 'factor') * x"),
}


@pytest.mark.parametrize("kind", list(FUNCTION_ATTRIBUTES))
def test_an_attribute_set_on_a_helper_recomputes_when_edited(tmp_path, kind):
    """``scale.factor = 2`` at module level, read as ``scale.factor``: an attribute of a
    function was neither code nor a constant, so editing it served the stale result."""
    helpers, expression = FUNCTION_ATTRIBUTES[kind]
    project = edit_recomputes(tmp_path, helpers.format(k=2), helpers.format(k=3), expression)
    assert project.runs() == []


REGISTRY = '''
def fa(x):
    return x * {a}

def fb(x):
    return x * {b}

REGISTRY = {{"a": fa, "b": fb, "c": lambda x: x * {c}}}
CONFIGS = {{"small": {{"lr": {a}}}, "large": {{"lr": {b}}}}}
'''


def _registry(a: int = 2, b: int = 3, c: int = 4) -> str:
    return REGISTRY.format(a=a, b=b, c=c)


@pytest.mark.parametrize(
    "expression",
    ["helpers.REGISTRY['a'](x)", "helpers.REGISTRY.get('a')(x)", "x * helpers.CONFIGS['small']['lr']"],
    ids=["subscript", "get", "nested"],
)
def test_editing_another_entry_of_a_registry_an_op_indexes_with_a_literal_key_hits(tmp_path, expression):
    """``REGISTRY["a"](x)`` depended on the whole dict: editing the entry ``"b"`` it never
    reads recomputed every call. Its own entry still counts."""
    project = helpers_project(tmp_path, _registry(), expression)
    assert project.runs() == [0, 1, 2, 3]
    project.write(_registry(b=5, c=6), name="helpers.py")
    assert project.runs() == []
    project.write(_registry(a=7, b=5, c=6), name="helpers.py")
    assert project.runs() == [0, 1, 2, 3]


def test_an_entry_a_literal_key_names_pointed_at_another_function_recomputes(tmp_path):
    before = _registry()
    project = edit_recomputes(tmp_path, before, before.replace('"a": fa', '"a": fb'), "helpers.REGISTRY['a'](x)")
    assert project.runs() == []


@pytest.mark.parametrize(
    "expression",
    ["helpers.REGISTRY[KEY](x)", "helpers.REGISTRY['a'](x) + len(helpers.REGISTRY)",
     "helpers.REGISTRY['a'](x) + sum(f(x) for f in helpers.REGISTRY.values()) * 0"],
    ids=["variable key", "also read whole", "also iterated"],
)
def test_editing_any_entry_of_a_registry_an_op_reads_as_a_whole_recomputes(tmp_path, expression):
    """Indexed with a variable, or also read as a whole, the registry counts as a whole:
    the entry the op reaches cannot be told from its code."""
    project = helpers_project(tmp_path, _registry(), expression)
    project.write(BASE.replace("RUNS = []", "import helpers\nRUNS = []\nKEY = 'a'").replace(
        "y = helper(x)", f"y = {expression}"))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(_registry(c=6), name="helpers.py")
    assert project.runs() == [0, 1, 2, 3]


def test_a_registry_entry_reached_by_a_literal_key_in_a_helper_recomputes_when_edited(tmp_path):
    helpers = _registry() + "\ndef pick(x):\n    return REGISTRY['c'](x)\n"
    edit_recomputes(tmp_path, helpers, helpers.replace("x * 4", "x * 5"), "helpers.pick(x)")



MOVED = "K = {k}\n\ndef scale(x):\n    return x * K\n"
RENAME = """
import sys
from mandala_ast import Storage
import utils
print(Storage("s.db").rename_helper(sys.argv[1], utils.scale))
"""


def _moved_project(tmp_path) -> Project:
    """``train`` calls ``scale``, imported from helpers.py, stored for x in 0..3; then scale
    (and the constant it reads) moved unchanged to utils.py, helpers.py deleted."""
    project = Project(tmp_path)
    project.write(MOVED.format(k=2), name="helpers.py")
    source = BASE.replace("RUNS = []", "from helpers import scale\nRUNS = []").replace("y = helper(x)", "y = scale(x)")
    project.write(source)
    assert project.runs() == [0, 1, 2, 3]
    (project.root / "helpers.py").unlink()
    project.write(MOVED.format(k=2), name="utils.py")
    project.write(source.replace("from helpers import", "from utils import"))
    (project.root / "rename.py").write_text(RENAME)
    return project


def test_a_helper_moved_to_another_module_and_declared_moved_keeps_its_results(tmp_path):
    """Moving a helper (not an op) to another module recomputed every op using it, and
    nothing could say it moved: storage.rename_helper does, as rename_op does for ops."""
    project = _moved_project(tmp_path)
    out = project.run("helpers.scale", script="rename.py").stdout
    assert "helpers.scale renamed to utils.scale" in out
    assert project.runs() == []
    assert "nothing to do" in project.run("helpers.scale", script="rename.py").stdout  # the script run again
    project.write(MOVED.format(k=2).replace("x * K", "x * K + 1"), name="utils.py")  # its code counts
    assert project.runs() == [0, 1, 2, 3]
    project.write(MOVED.format(k=3).replace("x * K", "x * K + 1"), name="utils.py")  # so does what it reads there
    assert project.runs() == [0, 1, 2, 3]


def test_a_helper_renamed_and_imported_under_its_old_name_keeps_its_results_once_accepted(tmp_path):
    """`from utils import triple as scale` leaves train's code as it was; rename_helper, then
    accept_change (a def's name is part of its code), said its calls stay valid, and they
    computed again: `scale` now points to code of another name (an alias), which neither
    accepted in place of the import the calls recorded."""
    project = _moved_project(tmp_path)
    project.write(MOVED.format(k=2).replace("def scale", "def triple"), name="utils.py")
    source = (project.root / "experiment.py").read_text()
    project.write(source.replace("from utils import scale", "from utils import triple as scale"))
    rename = RENAME.replace("utils.scale))", "utils.triple))\nprint(Storage('s.db').accept_change(utils.triple))")
    (project.root / "rename.py").write_text(rename)
    out = project.run("helpers.scale", script="rename.py").stdout
    assert "renamed to utils.triple" in out and "change accepted" in out
    assert project.runs() == []


def test_a_helper_moved_but_not_declared_recomputes(tmp_path):
    """Not declared, a move is a change: ``helpers.scale`` is gone (nothing says the new code
    found elsewhere under the same name is it, with what it reads there)."""
    assert _moved_project(tmp_path).runs() == [0, 1, 2, 3]


def test_a_helper_declared_moved_to_a_module_where_its_constant_differs_recomputes(tmp_path):
    """The moved code reads ``K`` in its new module: the old module's ``K`` (kept there,
    unchanged) is not what it computes with."""
    project = _moved_project(tmp_path)
    project.write(MOVED.format(k=2), name="helpers.py")
    project.write(MOVED.format(k=3), name="utils.py")
    rename = project.run("helpers.scale", script="rename.py", check=False)
    assert "RenameError" in rename.stderr and "helpers.scale" in rename.stderr  # still there, other code
    project.write("K = 2\n", name="helpers.py")
    project.run("helpers.scale", script="rename.py")
    assert project.runs() == [0, 1, 2, 3]


def test_a_class_given_other_decorator_arguments_recomputes(tmp_path):
    """``@dataclass(eq=False)`` made ``@dataclass``: instances that compared by identity now
    compare by their fields, and the class's own code is unchanged."""
    helpers = "from dataclasses import dataclass\n\n@dataclass(eq=False)\nclass Cfg:\n    k: int = 1\n"
    project = edit_recomputes(tmp_path, helpers, helpers.replace("(eq=False)", ""), "int(helpers.Cfg(x) == helpers.Cfg(x))")
    assert project.runs() == []


def test_a_class_moved_to_another_module_and_declared_moved_keeps_its_results(tmp_path):
    """A class moves with its methods: calls depend on ``helpers.Model.fit``, which the
    declaration moves with it, and on what it reads where it is now."""
    models = "K = {k}\n\nclass Model:\n    def fit(self, x):\n        return x * K\n"
    project = Project(tmp_path)
    project.write(models.format(k=2), name="helpers.py")
    source = BASE.replace("RUNS = []", "from helpers import Model\nRUNS = []").replace("y = helper(x)", "y = Model().fit(x)")
    project.write(source)
    assert project.runs() == [0, 1, 2, 3]
    (project.root / "helpers.py").unlink()
    project.write(models.format(k=2), name="utils.py")
    project.write(source.replace("from helpers import", "from utils import"))
    (project.root / "rename.py").write_text(RENAME.replace("utils.scale", "utils.Model"))
    project.run("helpers.Model", script="rename.py")
    assert project.runs() == []
    project.write(models.format(k=3), name="utils.py")
    assert project.runs() == [0, 1, 2, 3]


def test_a_helper_named_get_called_with_a_literal_recomputes_when_edited(tmp_path):
    """``helpers.get("a")`` reads no dict: it calls the module's function ``get``, which
    taken for a dict's entry would leave the op untraced and the edit unseen."""
    helpers = "def get(name):\n    return {'a': 10}[name]\n"
    project = edit_recomputes(tmp_path, helpers, helpers.replace("10", "11"), "x * helpers.get('a')")
    assert project.runs() == []


def test_a_helper_declared_moved_keeps_the_calls_that_did_not_reach_what_it_calls(tmp_path):
    """``scale`` calls ``g`` (moved with it) for odd inputs only, and ``g`` reads ``M``: the
    even calls never read ``M``, so its absence from what they depended on says nothing."""
    helpers = "M = 5\n\ndef g(x):\n    return x * M\n\ndef scale(x):\n    return g(x) if x % 2 else x * 10\n"
    project = Project(tmp_path)
    project.write(helpers, name="helpers.py")
    source = BASE.replace("RUNS = []", "from helpers import scale\nRUNS = []").replace("y = helper(x)", "y = scale(x)")
    project.write(source)
    assert project.runs() == [0, 1, 2, 3]
    (project.root / "helpers.py").unlink()
    project.write(helpers, name="utils.py")
    project.write(source.replace("from helpers import", "from utils import"))
    (project.root / "rename.py").write_text(RENAME)
    project.run("helpers.scale", script="rename.py")
    assert project.runs() == []
    project.write(helpers.replace("M = 5", "M = 6"), name="utils.py")
    assert project.runs() == [1, 3]


def test_a_helper_moved_and_edited_keeps_its_results_once_the_edit_is_accepted(tmp_path):
    """The move declared, an edit made with it is a change of the helper's new name, which
    accept_change takes as it takes any other (what the README promises)."""
    project = _moved_project(tmp_path)
    project.write(MOVED.format(k=2).replace("x * K", "K * x"), name="utils.py")
    project.run("helpers.scale", script="rename.py")
    (project.root / "accept.py").write_text(
        "import utils\nfrom mandala_ast import Storage\nprint(Storage('s.db').accept_change(utils.scale))\n"
    )
    assert "change accepted" in project.run(script="accept.py").stdout
    assert project.runs() == []


MOVED_OP = "from mandala_ast import op\n\nK = {k}\nRUNS = []\n\n@op\ndef train(x):\n    RUNS.append(x)\n    return x * K\n"


def _op_moved_project(tmp_path, left_behind: str, k: int) -> Project:
    """An op ``pipeline.train`` reading ``K``, stored for x in 0..3, then moved to models.py
    (with ``K = k`` there) and declared moved with rename_op; pipeline.py keeps
    ``left_behind`` (deleted if empty)."""
    project = Project(tmp_path)
    project.write(MOVED_OP.format(k=2), name="pipeline.py")
    project.write("from pipeline import train, RUNS\n")
    assert project.runs() == [0, 1, 2, 3]
    if left_behind:
        project.write(left_behind, name="pipeline.py")
    else:
        (project.root / "pipeline.py").unlink()
    project.write(MOVED_OP.format(k=k), name="models.py")
    project.write("from models import train, RUNS\n")
    (project.root / "rename.py").write_text(
        "import models\nfrom mandala_ast import Storage\nprint(Storage('s.db').rename_op('pipeline.train', models.train))\n"
    )
    project.run(script="rename.py")
    return project


def test_an_op_moved_with_rename_op_to_a_module_where_its_constant_differs_recomputes(tmp_path):
    """rename_op moved the op's calls, which depended on ``pipeline.K`` (kept there, unchanged),
    while the moved op reads ``models.K``: the results computed with the old K were served."""
    assert _op_moved_project(tmp_path, "K = 2\n", 3).runs() == [0, 1, 2, 3]


def test_an_op_moved_with_rename_op_out_of_a_module_now_gone_keeps_its_results(tmp_path):
    """The op's calls depended on ``pipeline.K``, gone with pipeline.py: rename_op kept them,
    and every one computed again. What the op reads where it is now counts instead."""
    project = _op_moved_project(tmp_path, "", 2)
    assert project.runs() == []
    project.write(MOVED_OP.format(k=3), name="models.py")
    assert project.runs() == [0, 1, 2, 3]


def test_a_read_by_computed_name_hits_when_module_state_another_function_writes_changed(tmp_path):
    """``getattr(helpers, name)`` counts every datum of ``helpers``: but a cache its own
    function fills as calls run (``CACHE[x] = ...``) is state, not an input. Counted, it
    differed between any two calls, and a second run computed every call but the first again."""
    helpers = "K = 2\nCACHE = {}\n\ndef remember(x):\n    CACHE[x] = x\n    return x\n"
    project = helpers_project(tmp_path, helpers, "helpers.remember(x) * getattr(helpers, 'k'.upper())")
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []


def test_a_module_function_named_get_given_a_computed_name_is_code_not_a_read_of_every_global(tmp_path):
    """``config.get(name)`` calls the module's own function ``get``: a module has no ``get``
    of its own (``vars(config).get`` is the dict's). Taken for a read of any global, editing
    an unrelated constant of ``config`` computed every call again."""
    helpers = "DEFAULTS = {'K': 2}\nUNRELATED = 5\n\ndef get(name):\n    return DEFAULTS[name]\n"
    project = helpers_project(tmp_path, helpers, "x * helpers.get('k'.upper())")
    assert project.runs() == [0, 1, 2, 3]
    project.write(helpers.replace("UNRELATED = 5", "UNRELATED = 6"), name="helpers.py")
    assert project.runs() == []
    project.write(helpers.replace("'K': 2", "'K': 3"), name="helpers.py")
    assert project.runs() == [0, 1, 2, 3]


def test_a_helper_declared_moved_to_a_module_where_a_constant_named_like_it_differs_recomputes(tmp_path):
    """``scale`` reads ``scale_k``, a name that starts with its own: taken for a name under the
    helper (its decorators, its attributes), what it reads where it is now never counted, and
    the results computed with the old module's ``scale_k`` were served."""
    moved = "scale_k = {k}\n\ndef scale(x):\n    return x * scale_k\n"
    project = Project(tmp_path)
    project.write(moved.format(k=2), name="helpers.py")
    source = BASE.replace("RUNS = []", "from helpers import scale\nRUNS = []").replace("y = helper(x)", "y = scale(x)")
    project.write(source)
    assert project.runs() == [0, 1, 2, 3]
    project.write("scale_k = 2\n", name="helpers.py")
    project.write(moved.format(k=3), name="utils.py")
    project.write(source.replace("from helpers import", "from utils import"))
    (project.root / "rename.py").write_text(RENAME)
    project.run("helpers.scale", script="rename.py")
    assert project.runs() == [0, 1, 2, 3]


def test_a_read_by_computed_name_recomputes_when_a_constant_named_like_a_local_of_the_op_is_edited(tmp_path):
    """The op has a local ``K`` of its own and reads ``getattr(helpers, name)``: the local was
    taken for state the op writes, so ``helpers.K`` did not count and editing it served the
    stale result."""
    edit_recomputes(tmp_path, "K = 2\n", "K = 3\n", "(K := 0) + x * getattr(helpers, 'k'.upper())")


def test_a_read_by_computed_name_hits_when_the_op_appends_to_a_list_it_imported_from_that_module(tmp_path):
    """``from helpers import LOG`` and ``LOG.append(x)`` in the op, which reads
    ``getattr(helpers, name)``: ``LOG`` is state the op writes, not data it reads, though no
    function of ``helpers`` writes it."""
    project = helpers_project(tmp_path, "K = 2\nLOG = []\n", "(LOG.append(x), x * getattr(helpers, 'k'.upper()))[1]")
    source = (project.root / "experiment.py").read_text().replace("import helpers\n", "import helpers\nfrom helpers import LOG\n")
    (project.root / "experiment.py").write_text(source)
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []


REBOUND = "K = {k}\nCOUNT = 0\n\ndef set_k(v):\n    global K\n    K = v\n\ndef bump():\n    global COUNT\n    COUNT += 1\n    return 0\n"


@pytest.mark.parametrize(
    ("expression", "module"),
    [("x * getattr(helpers, 'k'.upper())", "helpers"), ("helpers.bump() + x * getattr(helpers, 'k'.upper())", "helpers"),
     ("x * globals()['k'.upper()]", "")],
    ids=["getattr", "getattr while another global moves", "globals() in the op's module"],
)
def test_a_read_by_computed_name_recomputes_when_a_constant_a_function_rebinds_with_global_is_edited(
        tmp_path, expression, module):
    """``set_k`` rebinds ``K`` with ``global K``: taken for state that moves as calls run, ``K``
    did not count at all, and editing its literal served the stale result. It counts by the
    text of its module-level assignment, which no call moves: ``bump`` moving ``COUNT`` as
    calls run recomputes nothing in a new process."""
    if module:
        project = edit_recomputes(tmp_path, REBOUND.format(k=2), REBOUND.format(k=3), expression)
        assert project.runs() == []
        return
    source = BASE.replace("RUNS = []", "RUNS = []\n" + REBOUND).replace("y = helper(x)", f"y = {expression}")
    project = Project(tmp_path)
    project.write(source.format(k=2))
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(source.format(k=3))
    assert project.runs() == [0, 1, 2, 3]


CLASS_READS = {
    "in the op": ("class Model:\n    K = {k}\n", "x * getattr(helpers.Model, 'k'.upper())"),
    "in a helper": ("class Model:\n    K = {k}\n\ndef scale(x):\n    return x * getattr(Model, 'k'.upper())\n",
                    "helpers.scale(x)"),
    "of a base class": ("class Base:\n    K = {k}\n\nclass Model(Base):\n    pass\n", "x * getattr(helpers.Model, 'k'.upper())"),
    "vars of the class": ("class Model:\n    K = {k}\n", "x * vars(helpers.Model)['k'.upper()]"),
    "of an object": ("class Model:\n    K = {k}\n\nMODEL = Model()\n", "x * getattr(helpers.MODEL, 'k'.upper())"),
    "on self in a method": ("class Model:\n    K = {k}\n\n    def scale(self, x):\n        return x * getattr(self, 'k'.upper())\n",
                            "helpers.Model().scale(x)"),
}


@pytest.mark.parametrize("kind", list(CLASS_READS))
def test_a_class_constant_read_by_getattr_with_a_computed_name_recomputes_when_edited(tmp_path, kind):
    """``getattr(Model, name)``: any class-level datum of ``Model`` may be the one read, and
    none counted (the class's code does not run), so editing ``K`` served the stale result."""
    helpers, expression = CLASS_READS[kind]
    project = edit_recomputes(tmp_path, helpers.format(k=2), helpers.format(k=3), expression)
    assert project.runs() == []


def test_a_class_read_by_getattr_with_a_computed_name_hits_when_state_its_methods_write_moved(tmp_path):
    """``Model.note`` appends to the class-level list ``SEEN`` as calls run: state, not data.
    Counted by its content, every call but the first was stale in a new process."""
    helpers = ("class Model:\n    K = 2\n    SEEN = []\n\n    @classmethod\n    def note(cls, x):\n"
               "        cls.SEEN.append(x)\n        return 0\n")
    project = helpers_project(tmp_path, helpers, "helpers.Model.note(x) + x * getattr(helpers.Model, 'k'.upper())")
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(helpers.replace("K = 2", "K = 3"), name="helpers.py")
    assert project.runs() == [0, 1, 2, 3]


SAME_TEXT = "K = {k}\n\ndef f(x):\n    return x * K\n"


@pytest.mark.parametrize(
    ("registry", "expression"),
    [("REG = {{'a': mod{n}.f}}", "helpers.REG['a'](x)"), ("REG = {{'a': mod{n}.f}}", "helpers.REG['a'.lower()](x)"),
     ("REG = [mod{n}.f]", "helpers.REG[0](x)")],
    ids=["literal key", "computed key", "list"],
)
def test_a_registry_entry_pointed_at_a_same_text_function_of_another_module_recomputes(tmp_path, registry, expression):
    """``mod1.f`` and ``mod2.f`` have the same text, but each reads its own module's ``K``:
    the registry counted its functions by their text alone, so re-pointing the entry at
    ``mod2.f`` served the results of ``mod1.f``."""
    helpers = "import mod1, mod2\n\n" + registry + "\n"
    project = helpers_project(tmp_path, helpers.format(n=1), expression)
    project.write(SAME_TEXT.format(k=2), name="mod1.py")
    project.write(SAME_TEXT.format(k=3), name="mod2.py")
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(helpers.format(n=2), name="helpers.py")
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []


LONG_RUN = """
from mandala_ast import Storage
import experiment as ex
storage = Storage("s.db")
with storage:
    ex.train(0)
source = open("helpers.py").read()
open("helpers.py", "w").write(source.replace("K = 2", "K = 3"))  # the user edits it meanwhile
with storage:
    ex.train(1)
print("RUNS", ex.RUNS)
"""


def test_a_rebound_constant_edited_while_a_process_runs_labels_that_process_s_calls_with_the_text_it_ran(tmp_path):
    """``K = 2`` edited to ``K = 3`` after the process imported helpers: its later call (which
    reaches other code, so its state is worked out anew) still computes with 2, and labelled
    with the text read then, the next process, running ``K = 3``, loaded it."""
    helpers = REBOUND.format(k=2) + "\ndef odd(x):\n    return 1\n"
    project = helpers_project(tmp_path, helpers, "(helpers.odd(x) if x % 2 else 0) + x * getattr(helpers, 'k'.upper())")
    (project.root / "long.py").write_text(LONG_RUN)
    assert "RUNS [0, 1]" in project.run(script="long.py").stdout
    assert project.runs() == [0, 1, 2, 3]


def test_a_registry_keyed_by_functions_hits_in_a_new_process(tmp_path):
    """``GRADS = {relu: relu_grad}``: which functions the registry holds was told by its keys'
    reprs, ``<function relu at 0x...>``, an address that differs in every process, so every
    call was computed again in each new one."""
    helpers = ("def relu(x):\n    return max(x, 0)\n\ndef relu_grad(x):\n    return 1 if x > 0 else 0\n\n"
               "GRADS = {relu: relu_grad}\n")
    project = edit_recomputes(tmp_path, helpers, helpers.replace("return 1 if", "return 2 if"), "helpers.GRADS[helpers.relu](x)")
    assert project.runs() == []


# Each import of helpers inserts the entries in the other order (as a registry filled from a
# set of names does, its order changing with each process's string hashes).
FLIPPED = """import pathlib
_runs = pathlib.Path(__file__).with_name("imports")
_n = int(_runs.read_text()) if _runs.exists() else 0
_runs.write_text(str(_n + 1))

def f_a(x):
    return x + 1

def f_b(x):
    return x + 2

REG = {n: globals()["f_" + n] for n in (["a", "b"] if _n % 2 else ["b", "a"])}
"""


def test_a_registry_whose_entries_come_in_another_order_in_a_new_process_hits(tmp_path):
    """Which functions the registry holds was told entry by entry in insertion order, which a
    registry filled from a set changes from process to process (the dict's own state does
    not count it): every call was computed again in each new process."""
    project = helpers_project(tmp_path, FLIPPED, "helpers.REG['a'.lower()](x)")
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    assert project.runs() == []


# State the user's functions write, whose value its own defining line does not tell: what is
# edited, what it is edited to, and the extra module the helpers import.
DEFINED_ELSEWHERE = {
    "imported from another module": (
        "from config import K\n\ndef set_k(v):\n    global K\n    K = v\n", "x * getattr(helpers, 'k'.upper())",
        ("config.py", "K = 2\n", "K = 3\n")),
    "a class attribute the module rebinds": (
        "class Model:\n    K = 2\n\n    @classmethod\n    def set_k(cls, v):\n        cls.K = v\n\nModel.K = {k}\n",
        "x * getattr(helpers.Model, 'k'.upper())", None),
    "a class attribute made from a module constant": (
        "BASE = [{k}]\n\nclass Model:\n    SEEN = list(BASE)\n\n    @classmethod\n    def note(cls, x):\n"
        "        cls.SEEN.append(x)\n", "x * getattr(helpers.Model, 'seen'.upper())[0]", None),
}


@pytest.mark.parametrize("kind", list(DEFINED_ELSEWHERE))
def test_state_functions_write_recomputes_when_what_defines_its_value_elsewhere_is_edited(tmp_path, kind):
    """``K`` counts by the text of the statements binding it in its scope (``set_k`` moves
    its value as calls run): a value imported from another module, or set by a line of the
    module after the class body, or made from another constant, was not in that text, and
    editing it there served the stale result."""
    helpers, expression, elsewhere = DEFINED_ELSEWHERE[kind]
    if elsewhere is None:
        project = edit_recomputes(tmp_path, helpers.format(k=2), helpers.format(k=3), expression)
        assert project.runs() == []
        return
    name, before, after = elsewhere
    project = helpers_project(tmp_path, helpers, expression)
    project.write(before, name=name)
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []
    project.write(after, name=name)
    assert project.runs() == [0, 1, 2, 3]
    assert project.runs() == []


@pytest.mark.parametrize(
    ("helpers", "expression"),
    [("K = [{k}]\n", "x * getattr(helpers, 'k'.upper())[0]"),
     ("class Model:\n    K = {{'lr': {k}}}\n", "x * getattr(helpers.Model, 'k'.upper())['lr']"),
     ("K = [{k}]\n", "x * vars(helpers)['k'.upper()][0]")],
    ids=["getattr of a module", "getattr of a class", "vars of a module"],
)
def test_a_read_by_computed_name_then_indexed_recomputes_when_the_constant_is_edited(tmp_path, helpers, expression):
    """``getattr(helpers, name)[0]``: the index after the computed name made the chain
    ``helpers.*[0]``, which named nothing, so no datum of the module counted and editing
    ``K`` served the stale result."""
    project = edit_recomputes(tmp_path, helpers.format(k=2), helpers.format(k=3), expression)
    assert project.runs() == []
