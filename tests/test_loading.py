"""Values loaded from a storage: passed on, they are the stored values.

A user re-runs a script in a new process; every value it gets back was unpickled there, so
these tests run each script in fresh interpreters, with and without the compiler.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mandala_ast import MandalaUnstoredWarning, Storage, ValueEncodingError, op

REPO = Path(__file__).resolve().parent.parent

#: Ops returning values whose pickle is not the same after a round trip, and ops using them.
MODULE = '''
"""Ops over fitted models, objects with dict/set attributes, frames with object columns."""
import os

import pandas as pd
from mandala_ast import Storage, op

RUNS = []


class Tagged:
    """Attributes that change shape in a pickle round trip: a set (rebuilt in another order)
    and strings shared with attribute names (pickle shares them once, not after loading)."""

    def __init__(self, n):
        self.tags = {f"tag{i}" for i in range(n)} | {"tags", "meta"}
        self.meta = {"names": ["tags", "meta"], "sizes": {"tags": n}}


class Reloaded:
    """A value that notes the process that loaded it: its pickle differs in every process that
    loads it, so no canonical hashing can make it stable."""

    def __init__(self, x):
        self.x, self.loaded_in = x, None

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.loaded_in = os.getpid()


def data(seed):
    from sklearn.datasets import make_classification

    return make_classification(n_samples=60, n_features=5, random_state=seed)


@op(nout=2)
def train_model(seed):
    from sklearn.ensemble import RandomForestClassifier

    RUNS.append("train_model")
    X, y = data(seed)
    return RandomForestClassifier(n_estimators=4, random_state=seed).fit(X, y), len(y)


@op
def eval_model(model):
    RUNS.append("eval_model")
    return float(model.score(*data(0)))


@op
def make_tagged(n):
    RUNS.append("make_tagged")
    return Tagged(n)


@op
def make_frame(n):
    RUNS.append("make_frame")
    return pd.DataFrame({"name": [f"row{i}" for i in range(n)], "obj": [{"k": i, "s": {i}} for i in range(n)]})


@op
def make_reloaded(x):
    RUNS.append("make_reloaded")
    return Reloaded(x)


@op
def describe(value):
    RUNS.append(f"describe {type(value).__name__}")
    return repr(type(value))


def script(path, mutate=False):
    with Storage(path):
        model, n = train_model(1)
        score = eval_model(model)
        tagged = make_tagged(5)
        reloaded = make_reloaded(7)
        if mutate:
            tagged.tags.add("new")
            reloaded.x += 1
        described = [describe(tagged), describe(make_frame(3)), describe(reloaded)]
    return score, described
'''

SCRIPT = """
{setup}
import models
models.script("s.db", mutate={mutate})
print(sorted(models.RUNS))
"""


def run_script(root: Path, compiled: bool, mutate: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(REPO)])
    setup = "import mandala_ast; mandala_ast.install()" if compiled else ""
    code = textwrap.dedent(SCRIPT.format(setup=setup, mutate=mutate))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models.py").write_text(MODULE)
    return tmp_path


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_second_run_of_a_script_recomputes_nothing_with_loaded_values(project, compiled):
    """A fitted estimator, objects with dict/set attributes, a frame with object columns and a
    value whose pickle changes at every load, passed on to other ops: all loaded, none recomputed."""
    first = run_script(project, compiled)
    ops = ["train_model", "eval_model", "make_tagged", "make_frame", "make_reloaded"]
    assert first == str(sorted(ops + ["describe Tagged", "describe DataFrame", "describe Reloaded"]))
    assert run_script(project, compiled) == "[]"
    assert run_script(project, compiled) == "[]"  # a value loaded twice over is still the stored one


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_mutated_loaded_value_is_a_new_argument(project, compiled):
    """Recognising a loaded value is by content: once changed, it is a new argument (also one
    whose pickle differs in every process)."""
    run_script(project, compiled)
    assert run_script(project, compiled, mutate=True) == "['describe Reloaded', 'describe Tagged']"


# -- deep nesting ----------------------------------------------------------------------------

DEPTH = 100_000


def deep_list(depth: int = DEPTH) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@op
def depth_of(value) -> int:
    n = 0
    while value:
        value, n = value[0], n + 1
    return n


@op
def nest(depth: int) -> list:
    return deep_list(depth)


def test_deeply_nested_argument_is_a_value_encoding_error_not_a_recursion_error(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage:
        with pytest.raises(ValueEncodingError, match=r"depth_of, argument 'value'.*nested too deeply"):
            depth_of(deep_list())
        assert depth_of([[[]]]) == 2  # the storage is still usable
    assert storage.df(depth_of)["value"].tolist() == [[[[]]]]


def test_deeply_nested_output_is_returned_with_a_warning_and_nothing_is_stored(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage:
        with pytest.warns(MandalaUnstoredWarning, match=r"nest, output 0.*nested too deeply"):
            assert len(nest(DEPTH)) == 1
        assert nest(2) == [[[]]]
    assert storage.df(nest)["depth"].tolist() == [2]


# -- NaN and signed zeros ----------------------------------------------------------------------

CALLS: list = []


@op
def reciprocal(x):
    CALLS.append(x)
    return 1 / x if x else math.copysign(math.inf, x)


@op
def negate(x):
    return -x


def test_zero_and_negative_zero_are_different_calls_and_come_back_with_their_sign(tmp_path):
    with Storage(tmp_path / "s.db"):
        assert reciprocal(0.0) == math.inf and reciprocal(-0.0) == -math.inf
        negate(0.0)
    CALLS.clear()
    with Storage(tmp_path / "s.db") as storage:  # a new Storage: values decoded from the file
        assert reciprocal(-0.0) == -math.inf and reciprocal(0.0) == math.inf
        assert math.copysign(1.0, negate(0.0)) == -1.0
    assert CALLS == [] and len(storage.df(reciprocal)) == 2


@op
def first(values):
    CALLS.append(values)
    return values[0]


def test_every_float_nan_is_one_argument_and_numpy_arrays_key_by_their_bits(tmp_path):
    nan, negative_nan = float("nan"), -float("nan")
    with Storage(tmp_path / "s.db"):
        first((nan, 1))
        first((negative_nan, 1))  # the same argument: all float NaNs are one key
        first(np.array([np.nan, 1.0]))
        first(np.array([-np.nan, 1.0]))  # arrays are keyed by their bytes: another argument
        first(np.array([0.0]))
        first(np.array([-0.0]))
    assert len(CALLS) == 5


# -- what loading costs ------------------------------------------------------------------------

class CountsLoads:
    loads = 0

    def __init__(self, x):
        self.x = x

    def __setstate__(self, state):
        self.__dict__.update(state)
        CountsLoads.loads += 1


@op
def counted(x):
    return CountsLoads(x)


@op
def unwrap(value):
    return value.x


def test_a_hit_unpickles_its_output_once_and_a_miss_checks_it_once(tmp_path):
    """Recognising loaded values costs hits nothing: the first miss after loading decodes each
    pickled value loaded since once more, to hash it as loaded."""
    with Storage(tmp_path / "s.db"):
        unwrap(counted(1))
    CountsLoads.loads = 0
    with Storage(tmp_path / "s.db"):
        value = counted(1)
        assert CountsLoads.loads == 1
        assert unwrap(value) == 1  # a hit: nothing more decoded
        assert CountsLoads.loads == 1
        assert unwrap(CountsLoads(2)) == 2  # a miss: the loaded value is checked, once
        assert unwrap(CountsLoads(3)) == 3
        assert CountsLoads.loads == 2


def test_decode_values_gives_stored_values_and_leaves_out_missing_ones(tmp_path):
    from mandala_ast.runtime.hashing import content_id

    @op
    def pair(n: int) -> list:
        return [n, n]

    storage = Storage(tmp_path / "values.db")
    with storage:
        pair(3)
    values = storage.engine.loader.decode_values([content_id([3, 3]), content_id("never stored")])
    assert values == {content_id([3, 3]): [3, 3]}


def test_a_value_deleted_by_another_storage_is_computed_again_not_a_lookup_error(tmp_path):
    @op
    def rows(n: int) -> list:
        return list(range(n))

    path = tmp_path / "gone.db"
    first, second = Storage(path), Storage(path)
    with first:
        rows(4)
    with second:
        second.delete_calls(second.df(rows))
    with first:  # the first storage remembered the call: it must notice the deletion
        assert rows(4) == [0, 1, 2, 3]
    assert len(first.df(rows)) == 1


def test_a_stored_value_whose_class_is_gone_is_an_error_naming_the_value_and_its_call(tmp_path):
    """A researcher renames a class in a helper module (or upgrades the library a model comes
    from): the pickles stored before name a class that no longer loads. storage.df and a run
    block that finds the call raised pickle's own error, naming neither the value nor the call."""
    from mandala_ast import UnloadableValueError

    (tmp_path / "shapes_helpers.py").write_text("class Box:\n    def __init__(self, v):\n        self.v = v\n")
    (tmp_path / "shapes_ops.py").write_text(textwrap.dedent("""
        from mandala_ast import op
        import shapes_helpers

        @op
        def boxed(x: int):
            return shapes_helpers.Box(x)
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        import shapes_ops

        with Storage(tmp_path / "s.db").run():
            shapes_ops.boxed(3)
        del sys.modules["shapes_helpers"].Box  # renamed away: its pickles no longer load
        with pytest.raises(UnloadableValueError, match=r"boxed\(x=3\).*Box") as caught:
            Storage(tmp_path / "s.db").df(shapes_ops.boxed)
        assert "delete_calls" in str(caught.value) and caught.value.call == "shapes_ops.boxed(x=3)"
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("shapes_helpers", "shapes_ops"):
            sys.modules.pop(name, None)


ARRAYS = '''
import numpy as np
from mandala_ast import op

@op
def filled(n: int):
    return np.full(1 << 17, n, dtype=np.float64)  # 1 MiB: a value file, loaded memory-mapped
'''

DELETER = '''
import sys, time
from mandala_ast import Storage
import arrays_ops

storage = Storage(sys.argv[1])
print("ready", flush=True)
end = time.time() + 4
while time.time() < end:
    with storage.run():
        for n in range(8):
            arrays_ops.filled(n)
    storage.delete_calls(storage.df(arrays_ops.filled))
'''


def test_an_array_whose_file_another_process_deletes_as_it_is_loaded_is_computed_again(tmp_path):
    """A notebook loads large arrays while a clean-up job deletes their calls. A file removed
    between its digest check and numpy opening it (memory-mapped) escaped the run block as a
    raw FileNotFoundError naming a file under .blobs/ instead of the call being computed
    again. Racy by nature: the deleter runs for 4 s, long enough to hit it many times."""
    (tmp_path / "arrays_ops.py").write_text(ARRAYS)
    sys.path.insert(0, str(tmp_path))
    try:
        import arrays_ops

        path = tmp_path / "shared.db"
        storage = Storage(path)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}
        deleter = subprocess.Popen([sys.executable, "-c", DELETER, str(path)], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert deleter.stdout.readline().strip() == "ready"
            while deleter.poll() is None:
                with storage.run():
                    for n in range(8):
                        assert arrays_ops.filled(n)[-1] == n
            out, err = deleter.communicate(timeout=60)
        finally:
            deleter.kill()
        assert deleter.returncode == 0, err
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("arrays_ops", None)
