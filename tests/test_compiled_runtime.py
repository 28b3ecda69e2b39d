"""runtime/compiled.py: what compiled code calls to keep exact provenance (contract doc)."""

from __future__ import annotations

import pytest

import mandala_ast.runtime.compiled as rt
from mandala_ast import Storage, op, workflow
from mandala_ast.transforms import transform_source

RUNS: list = []


@op
def inc(x):
    RUNS.append(x)
    return x + 1


@op
def divmod_op(a, b) -> tuple[int, int]:
    return divmod(a, b)


@workflow
def twice(x):
    y = rt.call((("y@twice",), ("x@twice",), None), inc, x)
    return rt.ret("y@twice", rt.call((("y@twice",), ("y@twice",), None), inc, y))


@pytest.fixture(autouse=True)
def clear_runs():
    RUNS.clear()


def spec(targets=None, pos=(None,), kw=None):
    return (targets, pos, kw)


def test_exact_provenance_distinguishes_equal_values(tmp_path):
    """y = inc(1); z = inc(2); w = inc(y): two executions, and w's input comes from y's call."""
    storage = Storage(tmp_path / "s.db")
    with storage:
        y = rt.call(spec(("y@m",)), inc, 1)
        z = rt.call(spec(("z@m",)), inc, 2)
        w = rt.call(spec(("w@m",), ("y@m",)), inc, y)
    assert (y, z, w) == (2, 3, 3) and RUNS == [1, 2]
    prov = storage.provenance(inc)
    exact = prov[prov["producer_call"].notna()]
    assert len(exact) == 1 and exact["exact"].all()
    y_call = prov.loc[prov["producer_call"].notna(), "producer_call"].item()
    inputs = storage.df(inc).set_index("call")
    assert inputs.loc[y_call, "x"] == 1


def test_stale_key_is_ignored_when_the_name_was_rebound(tmp_path):
    with Storage(tmp_path / "s.db") as storage:
        y = rt.call(spec(("y@m",)), inc, 1)
        y = 2.0  # rebound by plain code (without forget): the identity check catches it
        rt.call(spec(None, ("y@m",)), inc, y)
    assert storage.provenance(inc)["producer_call"].isna().all()


def test_forget_drops_provenance(tmp_path):
    with Storage(tmp_path / "s.db") as storage:
        y = rt.call(spec(("y@m",)), inc, 1)
        y = rt.forget("y@m", y)
        rt.call(spec(None, ("y@m",)), inc, y)
    assert storage.provenance(inc)["producer_call"].isna().all()


def test_ref_passes_history_of_nested_calls(tmp_path):
    with Storage(tmp_path / "s.db") as storage:
        rt.call(spec(), inc, rt.ref(spec(), inc, 1))
    assert storage.provenance(inc)["producer_call"].notna().sum() == 1


def test_multiple_outputs_bind_each_target(tmp_path):
    with Storage(tmp_path / "s.db") as storage:
        q, r = rt.call((("q@m", "r@m"), (None, None), None), divmod_op, 7, 2)
        rt.call(spec(None, ("r@m",)), inc, r)
    assert (q, r) == (3, 1)
    assert storage.provenance(inc)["producer_op"].item() == divmod_op.name


def test_workflow_return_carries_provenance(tmp_path):
    with Storage(tmp_path / "s.db") as storage:
        out = rt.call(spec(("out@m",)), twice, 1)
        rt.call(spec(None, ("out@m",)), inc, out)
    assert out == 3 and RUNS == [1, 2, 3]
    assert storage.provenance(inc)["producer_call"].notna().sum() == 2


def test_outside_blocks_everything_is_a_plain_call():
    assert rt.call(spec(("y@m",)), inc, 1) == 2
    assert rt.ref(spec(), inc, 1) == 2
    assert rt.call(spec(), twice, 1) == 3
    assert rt.v(5) == 5 and rt.forget("k", 5) == 5 and rt.ret("k", 5) == 5


def test_non_op_callee_gets_plain_values(tmp_path):
    with Storage(tmp_path / "s.db"):
        assert rt.call(spec(), str, rt.ref(spec(), inc, 1)) == "2"


def test_every_query_hook_is_reachable_from_compiled_code():
    """compiled.py lists the query hooks it loads on first use; a hook missing there would
    make compiled query blocks fail with AttributeError."""
    from mandala_ast.runtime.query import hooks

    for name in hooks.__all__:
        assert getattr(rt, name) is getattr(hooks, name)


@op
def add(x, y):
    return x + y


def test_a_workflow_with_star_args_keeps_the_history_of_its_named_parameter(tmp_path):
    """Arguments that land in *rest have no history of their own; `first` keeps its own."""
    source = (
        "from mandala_ast import workflow\n"
        "@workflow\n"
        "def total(first, *rest):\n"
        "    return add(first, rest[0])\n"
        "with storage.run():\n"
        "    a = inc(1)\n"
        "    b = inc(5)\n"
        "    s = total(a, b)\n"
    )
    storage = Storage(tmp_path / "s.db")
    namespace = {"storage": storage, "inc": inc, "add": add}
    run_compiled(source, namespace)
    assert namespace["s"] == 8
    provenance = storage.provenance(add).set_index("input")
    assert provenance.loc["x", "exact"] and provenance.loc["x", "producer_op"] == inc.name


@op
def absolute(x):
    return -x if x < 0 else x


def test_an_op_bound_to_a_builtins_name_is_still_compiled_with_provenance(tmp_path):
    """`abs = absolute` rebinds the builtin's name (in the module or, here, in a function):
    calls of abs are op calls, not builtins."""
    source = (
        "import mandala_ast\n"
        "def main(storage):\n"
        "    abs = absolute\n"
        "    with storage.run():\n"
        "        a = inc(-5)\n"
        "        return abs(a)\n"
    )
    storage = Storage(tmp_path / "s.db")
    namespace = {"inc": inc, "absolute": absolute, "__name__": "user_code"}
    run_compiled(source, namespace)
    assert namespace["main"](storage) == 4
    provenance = storage.provenance(absolute)
    assert provenance["exact"].tolist() == [True] and provenance["producer_op"].tolist() == [inc.name]


@op
def pair(x):  # no tuple annotation: one output, which happens to be a tuple
    return (x + 2, 2)


def test_unpacking_a_single_output_forgets_what_the_names_held_before(tmp_path):
    """`a, b = pair(5)` unpacks one output: neither name has a history of its own now, and b
    must not keep inc(1)'s, though it holds an equal (even the very same) 2."""
    source = (
        "import mandala_ast\n"
        "with storage.run():\n"
        "    b = inc(1)\n"
        "    a, b = pair(5)\n"
        "    c = add(a, b)\n"
    )
    storage = Storage(tmp_path / "s.db")
    namespace = {"storage": storage, "inc": inc, "pair": pair, "add": add, "__name__": "user_code"}
    run_compiled(source, namespace)
    assert namespace["c"] == 9
    provenance = storage.provenance(add).set_index("input")
    assert provenance.loc["y", "producer_op"] != inc.name


def run_compiled(source: str, namespace: dict) -> None:
    """Compile *source* with the real transform and execute it in *namespace*."""
    exec(compile(transform_source(source, "user_code.py").source, "user_code.py", "exec"), namespace)
