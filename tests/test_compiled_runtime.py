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


def test_compiled_spec_names_its_scopes_own_variables_by_bare_name(tmp_path):
    """The spec compiled code passes, ``(scope, targets, pos_keys, kw_keys[, site, slot])``:
    ``w = inc(y)`` in scope ``m`` learns y's history from ``y``, as from ``y@m``; a key with
    ``@`` names another scope's variable, which ``forget`` reaches by its whole key."""
    storage = Storage(tmp_path / "s.db")
    with storage:
        y = rt.call(("m", ("y",), (None,), None), inc, 1)
        z = rt.call(("m", ("z",), (None,), None), inc, 2)
        w = rt.call(("m", ("w",), ("y",), None), inc, y)
        rt.call(("f", None, None, (("x", "z@m"),)), inc, x=z)
        z = rt.forget("z@m", z)
        rt.call(("f", None, None, (("x", "z@m"),)), inc, x=z)
    assert (y, z, w) == (2, 3, 3) and RUNS == [1, 2, 3]
    prov = storage.provenance(inc)
    # Five histories: inc(1), inc(2), inc(y) and inc(x=z) from those calls, inc(x=3)
    # forgotten (its producer found by content).
    assert len(prov) == 5 and (prov["producer_call"].notna() & prov["exact"]).sum() == 2


def test_compiled_spec_with_sites_hands_history_to_its_parent(tmp_path):
    """``inc(inc(1))`` compiled: site and slot follow the scope and the three key fields."""
    with Storage(tmp_path / "s.db") as storage:
        rt.callee(("m", None, (None,), None, 1, None), inc)(rt.callee(("m", None, (None,), None, None, (1, 0)), inc)(1))
    assert storage.provenance(inc)["producer_call"].notna().sum() == 1


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
    # y's history is unknown now, not "none": its producer is found by content, inexactly.
    assert storage.provenance(inc)["exact"].tolist() == [True, False]


def test_direct_argument_call_hands_its_history_to_its_site(tmp_path):
    """``inc(inc(1))``: the inner call names the outer call's site and its position."""
    with Storage(tmp_path / "s.db") as storage:
        rt.callee((None, (None,), None, 1, None), inc)(rt.callee((None, (None,), None, None, (1, 0)), inc)(1))
    assert storage.provenance(inc)["producer_call"].notna().sum() == 1


def test_a_non_op_between_keeps_the_inner_history_from_the_outer_call(tmp_path):
    """``inc(str(inc(1)) and 5)``-like nesting: a child names its own parent's site only."""
    with Storage(tmp_path / "s.db") as storage:
        outer = rt.callee((None, (None,), None, 1, None), inc)
        middle = rt.callee((None, (None,), None, 2, (1, 0)), int)
        outer(middle(rt.callee((None, (None,), None, None, (2, 0)), inc)(1)))
    assert storage.provenance(inc)["producer_call"].isna().all()


def test_multiple_outputs_bind_each_target(tmp_path):
    with Storage(tmp_path / "s.db") as storage:
        q, r = rt.call((("q@m", "r@m"), (None, None), None), divmod_op, 7, 2)
        rt.call(spec(None, ("r@m",)), inc, r)
    assert (q, r) == (3, 1)
    assert storage.provenance(inc)["producer_op"].item() == divmod_op.name


def test_one_name_for_several_outputs_keeps_each_outputs_history(tmp_path):
    """``qr = divmod_op(7, 2); inc(qr[1])``: qr[1] is output 1, by history."""
    with Storage(tmp_path / "s.db") as storage:
        qr = rt.call((("qr@m",), (None, None), None), divmod_op, 7, 2)
        rt.call(spec(None, (("qr@m", 1),)), inc, qr[1])
        qr = rt.forget("qr@m", (3, 1))
        rt.call(spec(None, (("qr@m", 1),)), inc, qr[1])  # rebound: no history any more
    prov = storage.provenance(inc)
    assert list(prov["output_index"]) == [1, 1] and list(prov["exact"]) == [True, False]


def test_workflow_return_carries_provenance(tmp_path):
    with Storage(tmp_path / "s.db") as storage:
        out = rt.call(spec(("out@m",)), twice, 1)
        rt.call(spec(None, ("out@m",)), inc, out)
    assert out == 3 and RUNS == [1, 2, 3]
    assert storage.provenance(inc)["producer_call"].notna().sum() == 2


def test_an_argument_that_raises_leaves_the_next_call_at_its_site_exact(tmp_path):
    """The call whose arguments failed never runs; the next call at the same site still gets
    its direct argument's history, and only from its own argument."""
    outer = (None, (None, None), None, 1, None)
    with Storage(tmp_path / "s.db") as storage:
        with pytest.raises(ZeroDivisionError):
            rt.callee(outer, divmod_op)(rt.callee((None, (None,), None, None, (1, 0)), inc)(1), 1 // 0)
        rt.callee(outer, divmod_op)(7, rt.callee((None, (None,), None, None, (1, 1)), inc)(1))
    prov = storage.provenance(divmod_op).set_index("input")
    assert prov.loc["b", "producer_op"] == inc.name and prov["producer_call"].isna()["a"]


def test_outside_blocks_everything_is_a_plain_call():
    assert rt.call(spec(("y@m",)), inc, 1) == 2
    assert rt.callee(spec(), inc) is inc
    assert rt.call(spec(), twice, 1) == 3
    assert rt.v(5) == 5 and rt.forget("k", 5) == 5 and rt.ret("k", 5) == 5


def test_non_op_callee_is_returned_itself(tmp_path):
    with Storage(tmp_path / "s.db"):
        assert rt.callee(spec(), str) is str
        assert rt.callee((None, (None,), None, 1, None), str)(rt.callee((None, (None,), None, None, (1, 0)), inc)(1)) == "2"


def test_the_mark_of_a_call_given_a_list_filled_step_by_step_is_not_taken_for_a_site():
    """``total(ys)`` on a list compiled code follows ends its spec with ``True``: an op call reads
    its site from the 4th item of the whole spec, which must not be that mark."""
    assert rt.whole_spec(("f", ("t",), ("?ys",), None, True)) == (("t@f",), ("ys@f",), None)
    assert rt.whole_spec(("f", ("t",), ("?ys",), None, 3, None, True)) == (("t@f",), ("ys@f",), None, 3, None)


def test_every_query_hook_is_reachable_from_compiled_code():
    """compiled.py lists the query hooks it loads on first use; a hook missing there would
    make compiled query blocks fail with AttributeError."""
    from mandala_ast.runtime.query import hooks

    for name in hooks.__all__:
        assert getattr(rt, name) is getattr(hooks, name)


# -- compiled code against the same code uncompiled (real transform, real storage) -------------

USER_CODE = '''\
import mandala_ast


@mandala_ast.op
def add(x, y):
    return x + y


def fails(x):
    raise ValueError(x)


class Counter:
    reads = 0

    @property
    def inc(self):
        Counter.reads += 1
        return self._inc

    @property
    def plain(self):
        Counter.reads += 1
        return abs


def in_block(storage, ns):
    with storage.run():
        y = ns.inc(1)
        w = add(
            ns.inc(y),
            ns.inc(
                2),
        )
    return y, w


def in_lookalike(lock, ns):
    with lock:
        return ns.plain(-1)


def failing(storage):
    with storage.run():
        z = add(
            1,
            fails(2),
        )
    return z
'''


def load_user_code(compiled: bool) -> dict:
    from mandala_ast import transform_source

    source = transform_source(USER_CODE, "user_code.py").source if compiled else USER_CODE
    namespace = {"__name__": "user_code"}
    exec(compile(source, "user_code.py", "exec"), namespace)
    namespace["Counter"]._inc = staticmethod(inc)
    return namespace


def traced_lines(function, *args) -> tuple[set[int], object]:
    """Line numbers of user_code.py that ``sys.settrace`` reports while *function* runs."""
    import sys

    lines: set[int] = set()

    def tracer(frame, event, arg):
        if frame.f_code.co_filename == "user_code.py" and event == "line":
            lines.add(frame.f_lineno)
        return tracer

    sys.settrace(tracer)
    try:
        result = function(*args)
    finally:
        sys.settrace(None)
    return lines, result


@pytest.mark.parametrize("compiled", [False, True])
def test_dotted_op_callee_in_a_storage_block_is_read_once_per_call(tmp_path, compiled):
    """``ns.inc(1)`` reads the property once, as Python does, also when it is an op."""
    user, storage = load_user_code(compiled), Storage(tmp_path / "s.db")
    y, w = user["in_block"](storage, user["Counter"]())
    assert (y, w) == (2, 6)
    assert user["Counter"].reads == 3
    if compiled:  # and the nested calls still hand their history to `add`
        assert storage.provenance(user["add"])["producer_call"].notna().all()


@pytest.mark.parametrize("compiled", [False, True])
def test_dotted_callee_in_a_lookalike_with_block_is_read_once(compiled):
    """``with self._lock:`` looks like a storage block: ``obj.method()`` there runs as written."""
    import threading

    user = load_user_code(compiled)
    assert user["in_lookalike"](threading.Lock(), user["Counter"]()) == 1
    assert user["Counter"].reads == 1


def test_multiline_op_call_keeps_the_line_events_of_its_continuation_lines(tmp_path):
    """A breakpoint on an argument's own line fires in compiled code as in plain code."""
    plain, compiled = load_user_code(False), load_user_code(True)
    lines_plain, _ = traced_lines(plain["in_block"], Storage(tmp_path / "p.db"), plain["Counter"]())
    lines_compiled, _ = traced_lines(compiled["in_block"], Storage(tmp_path / "c.db"), compiled["Counter"]())
    assert {31, 32, 33} <= lines_plain  # the continuation lines of `w = add(...)`
    assert lines_compiled == lines_plain


def test_exception_on_a_continuation_line_is_reported_on_that_line(tmp_path):
    """``fails(2)`` on the third line of ``z = add(...)``: the traceback says that line."""
    import traceback

    linenos = []
    for compiled in (False, True):
        with pytest.raises(ValueError) as info:
            load_user_code(compiled)["failing"](Storage(tmp_path / f"{compiled}.db"))
        frames = [f for f in traceback.extract_tb(info.value.__traceback__) if f.name == "failing"]
        linenos.append(frames[-1].lineno)
    assert linenos == [47, 47]


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
    assert not (provenance.loc["y", "producer_op"] == inc.name and provenance.loc["y", "exact"])


def run_compiled(source: str, namespace: dict) -> None:
    """Compile *source* with the real transform and execute it in *namespace*."""
    exec(compile(transform_source(source, "user_code.py").source, "user_code.py", "exec"), namespace)


def test_a_name_bound_by_raw_is_recorded_raw_exactly_while_it_holds_that_value(tmp_path):
    """``y = inc(1)`` then ``y = 0`` (``raw``): ``inc(y)`` takes a raw 0, exactly; once y holds
    another value (bound by code compiled code cannot follow) its history is unknown."""
    with Storage(tmp_path / "s.db") as storage:
        y = rt.call(spec(("y@m",)), inc, 1)
        y = rt.raw("y@m", 0)
        rt.call(spec(None, ("y@m",)), inc, y)
        rt.call(spec(None, ("y@m",)), inc, 2)  # not the value raw saw: a name holding something else
    assert storage.provenance(inc)["exact"].tolist() == [True, True, False]


@pytest.mark.parametrize(
    ("pos", "kw", "args", "kwargs", "exact"),
    [
        ((...,), None, (5,), {}, False),  # `inc(helper(y))`: whatever it was, no history
        ((None,), None, (5,), {}, True),  # a literal
        (..., None, (5,), {}, False),  # `inc(*xs)`
        ((), (("x", ...),), (), {"x": 5}, False),  # `inc(x=helper(y))`
        ((), (("**", ...),), (), {"x": 5}, False),  # `inc(**kw)`
        ((), (("x", None), ("**", ...)), (), {"x": 5}, True),  # `inc(x=5, **{})`
    ],
)
def test_an_argument_compiled_code_cannot_prove_raw_makes_the_call_inexact(tmp_path, pos, kw, args, kwargs, exact):
    with Storage(tmp_path / "s.db") as storage:
        rt.call((None, pos, kw), inc, *args, **kwargs)
    assert storage.provenance(inc)["exact"].tolist() == [exact]


def test_a_workflow_given_a_literal_records_its_parameter_raw_exactly(tmp_path):
    """`wf(7)`: inside, `inc(n)` takes a raw 7, exactly (a parameter is no proof by itself:
    `wf(helper(inc(6)))` passes an op's output, whose producer is then found by content)."""
    source = (
        "from mandala_ast import workflow\n"
        "@workflow\n"
        "def wf(n):\n"
        "    return inc(n)\n"
        "def helper(v):\n"
        "    return v\n"
        "with storage.run():\n"
        "    wf(7)\n"
        "    wf(helper(inc(19)))\n"
    )
    storage = Storage(tmp_path / "s.db")
    run_compiled(source, {"storage": storage, "inc": inc, "__name__": "user_code"})
    provenance = storage.provenance(inc).set_index(storage.df(inc)["x"])
    assert provenance.loc[7, "exact"] and provenance["producer_call"].isna()[7]
    assert not provenance.loc[20, "exact"] and provenance.loc[20, "producer_op"] == inc.name


@op
def total_of(xs):
    return sum(xs)


@op
def three(n):
    return list(range(n))


def test_an_op_output_changed_in_place_is_not_stored_as_a_raw_input_exactly(tmp_path):
    """``xs = three(3); xs.append(9); total_of(xs)``: xs still is three's output object, but no
    longer its content: its history no longer says what it is. It was recorded raw, exactly;
    its content says where it came from now (nowhere stored, here)."""
    with Storage(tmp_path / "s.db") as storage:
        xs = rt.call(spec(("xs@m",)), three, 3)
        xs.append(9)
        rt.call(spec(None, ("xs@m",)), total_of, xs)
    assert storage.provenance(total_of)["exact"].tolist() == [False]


@op(ignore=("verbose",))
def quiet(x, verbose=False):
    return x + 1


def test_an_ignored_argument_of_unknown_history_leaves_the_call_exact(tmp_path):
    """`quiet(1, verbose=cfg.verbose)`: verbose is no input of the call, whatever it holds."""
    with Storage(tmp_path / "s.db") as storage:
        rt.call((None, (None,), (("verbose", ...),)), quiet, 1, verbose=True)
    assert storage.provenance(quiet)["exact"].tolist() == [True]
