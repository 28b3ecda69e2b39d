"""Compiled run blocks through the real import hook and transform (issue 3 acceptance).

Every test runs in a fresh interpreter: the hook changes sys.meta_path and sys.modules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mandala_ast import Storage

REPO = Path(__file__).resolve().parent.parent

MODULE = '''\
"""A user module with ops and a run block."""
from mandala_ast import Storage, op

RUNS = []


@op
def inc(x: int) -> int:
    RUNS.append(x)
    return x + 1


@op
def fails(x):
    raise ValueError(f"bad {x}")


def block(path):
    storage = Storage(path)
    with storage.run():
        y = inc(1)
        z = inc(2)
        w = inc(y)
        half = w / 2
    return storage, (y, z, w, half)


def failing_block(path):
    with Storage(path):
        a = inc(10)
        fails(a)
'''


def run(root: Path, code: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(REPO)])
    proc = subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )
    if check and proc.returncode:
        raise AssertionError(proc.stderr)
    return proc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "user_mod.py").write_text(MODULE)
    return tmp_path


PROVENANCE = """
    import sys
    {setup}
    import user_mod
    storage, values = user_mod.block("s.db")
    print("values", values, "runs", user_mod.RUNS)
    prov = storage.provenance(user_mod.inc)
    df = storage.df(user_mod.inc).set_index("call")
    for _, row in prov.iterrows():
        source = df.loc[row.producer_call, "x"] if isinstance(row.producer_call, str) else None
        print("edge", row.exact, source)
"""


def test_compiled_block_records_the_exact_producer(project):
    """y = inc(1); z = inc(2); w = inc(y): body runs twice; w's input came from y's call."""
    out = run(project, PROVENANCE.format(setup="import mandala_ast; mandala_ast.install()")).stdout
    assert "values (2, 3, 3, 1.5) runs [1, 2]" in out
    edges = [line.split()[1:] for line in out.splitlines() if line.startswith("edge")]
    # three calls: inc(1) and inc(2) raw inputs, inc(y) produced by inc(1) (x == 1)
    assert sorted(edges) == [["True", "1"], ["True", "None"], ["True", "None"]]


def test_uncompiled_block_still_memoizes_with_content_provenance(project):
    out = run(project, PROVENANCE.format(setup="")).stdout
    assert "values (2, 3, 3, 1.5) runs [1, 2]" in out
    edges = [line.split()[1:] for line in out.splitlines() if line.startswith("edge")]
    assert all(exact == "False" for exact, _ in edges)


def test_names_are_plain_values_during_and_after_the_block(project):
    out = run(project, """
        import mandala_ast; mandala_ast.install()
        import user_mod
        _, values = user_mod.block("s.db")
        print([type(v).__name__ for v in values])
    """).stdout
    assert out.strip() == "['int', 'int', 'int', 'float']"


def test_traceback_from_an_op_in_a_compiled_block_shows_the_users_lines(project):
    proc = run(project, """
        import mandala_ast; mandala_ast.install()
        import user_mod
        user_mod.failing_block("s.db")
    """, check=False)
    path = project / "user_mod.py"
    assert proc.returncode == 1
    assert f'File "{path}", line 31, in failing_block\n    fails(a)' in proc.stderr
    assert f'File "{path}", line 15, in fails\n    raise ValueError(f"bad {{x}}")' in proc.stderr
    assert "ValueError: bad 11" in proc.stderr


def test_traced_lines_match_the_uncompiled_module(project):
    """What coverage and debuggers see: the same (file, line) events compiled or not."""
    code = """
        import sys
        {setup}
        import user_mod
        lines = set()
        def tracer(frame, event, arg):
            if frame.f_code.co_filename.endswith("user_mod.py"):
                lines.add((frame.f_code.co_name, frame.f_lineno))
            return tracer
        sys.settrace(tracer)
        user_mod.block("s{n}.db")
        sys.settrace(None)
        print(sorted(lines))
    """
    compiled = run(project, code.format(setup="import mandala_ast; mandala_ast.install()", n=1)).stdout
    plain = run(project, code.format(setup="", n=2)).stdout
    assert compiled == plain and "('block', 23)" in plain


def test_quickstart_computes_then_loads_through_the_cli(tmp_path):
    """The README's main command: the second run computes nothing."""
    example = tmp_path / "quickstart.py"
    shutil.copy(REPO / "examples" / "quickstart.py", example)
    cli = [sys.executable, "-m", "mandala_ast.cli", "run", str(example)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(REPO)
    first = subprocess.run(cli, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    second = subprocess.run(cli, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert "computed 18 calls" in first.stdout
    assert "computed nothing: every call loaded from quickstart.db" in second.stdout
    assert "good fit" in second.stdout  # the plain-float `if` ran on loaded values


UNSTORABLE = '''\
import threading
from mandala_ast import Storage, op


@op
def locked(n):
    return threading.Lock(), n


@op
def inc(x):
    return x + 1


def block(path):
    with Storage(path).run():
        lock, n = locked(1)
        m = inc(n)
    return lock, n, m
'''


def test_compiled_block_gets_an_output_that_cannot_be_stored_with_one_warning(tmp_path):
    (tmp_path / "unstorable_mod.py").write_text(UNSTORABLE)
    code = """
        import warnings, mandala_ast
        mandala_ast.install()
        import unstorable_mod
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lock, n, m = unstorable_mod.block("s.db")
        print(type(lock).__name__, n, m, [type(w.message).__name__ for w in caught])
    """
    out = run(tmp_path, code).stdout.split()
    assert out == ["lock", "1", "2", "['MandalaUnstoredWarning']"]


REBOUND = """\
import contextlib
from mandala_ast import Storage, op


@op
def inc(x: int) -> int:
    return x + 1


@op
def add(x: int, y: int) -> int:
    return x + y


storage = Storage()
with storage.run():
    y = inc(1)
    with contextlib.nullcontext(2) as y:
        add(y, 10)
    y = inc(3)
    match 4:
        case y:
            add(y, 20)
prov = storage.provenance(add)
print(sorted(set(prov[prov.exact].producer_op.dropna())))
"""


def test_a_name_rebound_by_with_as_or_a_match_capture_is_no_op_output(tmp_path):
    # `y` held inc(1)'s output 2; `with ... as y` bound another 2 (the same small-int object):
    # add(2, 10) was recorded as computed from inc(1), exactly (and deleting inc(1) took it).
    # (What `__enter__` returns may be anything, an op's output too: matched by content.)
    (tmp_path / "rebound.py").write_text(REBOUND)
    proc = run(tmp_path, "import sys\nfrom mandala_ast.cli import main\nsys.exit(main(['run', 'rebound.py']))")
    assert proc.stdout.strip() == "[]"


RETURNED = """\
from mandala_ast import Storage, op, workflow


@op
def inc(x: int) -> int:
    return x + 1000


@op
def add(x: int, y: int) -> int:
    return x + y


@workflow
def direct(n):
    return inc(n)


@workflow
def pair(n):
    a = inc(n)
    return a, inc(a)


storage = Storage()
with storage.run():
    add(direct(1), 2)
    p, q = pair(5)
    add(p, q)
prov = storage.provenance(add)
print([op if isinstance(op, str) else None for op in prov.producer_op], prov.exact.tolist())
"""


def test_a_workflow_returning_an_op_call_or_a_tuple_gives_the_caller_its_history(tmp_path):
    # `return inc(n)` and `return a, b` handed the caller no history: its next op call
    # recorded inc's outputs as raw inputs, exactly (a query saw no inc behind add).
    (tmp_path / "returned.py").write_text(RETURNED)
    proc = run(tmp_path, "import sys\nfrom mandala_ast.cli import main\nsys.exit(main(['run', 'returned.py']))")
    assert proc.stdout.strip() == "['__main__.inc', None, '__main__.inc', '__main__.inc'] [True, True, True, True]"


#: An op making a value, one using it, and a plain helper between them: the module of the
#: scripts below that pass make's output to use by ways compiled code cannot follow.
MAKE_USE_HELPER = """\
@op
def make(x: int) -> int:
    return x + 100


@op
def use(y: int) -> int:
    return y * 2


def helper(v):
    return v


storage = Storage()
"""


HIDDEN_PRODUCER = """\
import asyncio
from mandala_ast import Q, Storage, op


@op
async def fetch(x: int) -> int:
    return x + 100


""" + MAKE_USE_HELPER + """


async def main():
    with storage.run():
{body}


asyncio.run(main())
prov = storage.provenance(use)
print([op if isinstance(op, str) else None for op in prov.producer_op], prov.exact.tolist())
with storage.query() as q:
    y = make(Q())
    z = use(y)
print(len(q.df()))
"""


def hidden_producer(tmp_path: Path, body: str) -> list[str]:
    """What provenance and a query say of ``use``'s inputs after *body* ran in a compiled block."""
    source = HIDDEN_PRODUCER.format(body=textwrap.indent(textwrap.dedent(body), " " * 8))
    (tmp_path / "hidden.py").write_text(source)
    proc = run(tmp_path, "import sys\nfrom mandala_ast.cli import main\nsys.exit(main(['run', 'hidden.py']))")
    return proc.stdout.strip().splitlines()


def test_an_op_output_passed_through_a_helper_is_not_stored_as_a_raw_input_exactly(tmp_path):
    # Compiled code recorded use's input as raw, exactly (no producer, exact True), and the
    # query found no make behind use; uncompiled code matches it to make's output by content.
    lines = hidden_producer(tmp_path, """
        y = helper(make(1))
        use(y)
        use(helper(make(2)))
    """)
    assert lines == ["['__main__.make', '__main__.make'] [False, False]", "2"]


def test_an_op_output_taken_from_a_list_in_a_loop_is_not_stored_as_a_raw_input_exactly(tmp_path):
    lines = hidden_producer(tmp_path, """
        ys = [make(i) for i in range(2)]
        for y in ys:
            use(y)
        [use(y) for y in [make(5)]]
    """)
    assert lines == ["['__main__.make', '__main__.make', '__main__.make'] [False, False, False]", "3"]


def test_an_awaited_op_output_is_not_stored_as_a_raw_input_exactly(tmp_path):
    # Once recorded raw, exactly; then matched by content (exact False); now the awaited
    # call's output carries its history as a plain op call's does (tests/test_async_history.py).
    lines = hidden_producer(tmp_path, """
        a = await fetch(1)
        use(a)
    """)
    assert lines[0] == "['__main__.fetch'] [True]"


def test_literals_and_values_computed_from_outputs_stay_raw_exactly(tmp_path):
    # The fix must not cost the inputs compiled code does know: a literal, a literal loop's
    # value and a value an operator computed are raw, exactly; a name bound to an op's
    # output has that call as its producer, exactly.
    lines = hidden_producer(tmp_path, """
        y = make(1)
        use(y)
        use(7)
        for n in [8, 9]:
            use(n)
        use(y + 1)
    """)
    assert lines == ["['__main__.make', None, None, None, None] [True, True, True, True, True]", "1"]


def test_a_literal_loop_over_a_name_that_also_holds_op_outputs_stays_raw_exactly(tmp_path):
    # `for y in [8, 9]` forgot y's history each turn: unknown, so use(y) was recorded inexact
    # and its 8 could be matched to any earlier output equal to 8.
    lines = hidden_producer(tmp_path, """
        y = make(1)
        use(y)
        for y in [8, 9]:
            use(y)
    """)
    assert lines[0] == "['__main__.make', None, None] [True, True, True]"


def test_an_op_output_through_a_helper_equal_to_an_earlier_literal_is_not_that_literals_call(tmp_path):
    # use(101) was stored raw, exactly; use(helper(make(1))) has the same content and no
    # known history, so it was taken for that very call: provenance and queries never saw
    # make behind it. Its history is unknown, not "raw": a call of its own (not computed again).
    lines = hidden_producer(tmp_path, """
        use(101)
        use(helper(make(1)))
    """)
    assert lines == ["[None, '__main__.make'] [True, False]", "1"]


DELETED_PRODUCER = """\
from mandala_ast import Storage, op


""" + MAKE_USE_HELPER + """with storage.run():
    use(helper(make(1)))
    use(102)
    for y in [make(3)]:
        use(y)
storage.delete_calls(storage.df(make))
print(sorted(storage.df(use).y.tolist()))
"""


def test_deleting_an_op_output_deletes_the_calls_a_helper_or_a_loop_passed_it_to(tmp_path):
    # Recorded raw, exactly, use(101) and use(103) were not computed from make as far as the
    # storage knew: deleting make's calls left them behind. The literal use(102) stays.
    (tmp_path / "deleted.py").write_text(DELETED_PRODUCER)
    proc = run(tmp_path, "import sys\nfrom mandala_ast.cli import main\nsys.exit(main(['run', 'deleted.py']))")
    assert proc.stdout.strip() == "[102]"


def test_an_op_output_combined_with_a_neutral_value_is_not_stored_as_a_raw_input_exactly(tmp_path):
    # 0 + y and acc += y from acc = 0 are y itself (the very int object, here): they were
    # recorded as values an operator made anew, raw, exactly. (y + 1 is new: raw, exactly.)
    lines = hidden_producer(tmp_path, """
        y = make(1)
        use(0 + y)
        z = make(2)
        acc = 0
        acc += z
        use(acc)
        use(y + 1)
    """)
    assert lines == ["['__main__.make', '__main__.make', None] [False, False, True]", "2"]


#: Two functions whose calls look alike: each `y = inc(x)` and `dbl(y)` compiles to the same
#: constant spec, shared by both functions; outer calls inner between binding y and using it.
ALIKE = """\
from mandala_ast import op


@op
def inc(x):
    return x + 1


@op
def dbl(y):
    return 2 * y


def inner(storage, x):
    with storage.run():
        y = inc(x)
        dbl(y)


def outer(storage, x):
    with storage.run():
        y = inc(x)
        inner(storage, x + 10)
        dbl(y)
"""


def test_functions_whose_calls_look_alike_each_keep_their_own_producers(compile_user, tmp_path):
    """The sites of both functions share one spec, the scope passed beside it: expanded once
    for the first scope that met it, inner's y took outer's key (and outer's dbl(y) found
    inner's value there), so both dbl calls were recorded inexact, with no producer."""
    user = compile_user(ALIKE, "alike")
    storage = Storage(tmp_path / "s.db")
    user.outer(storage, 1)
    prov = storage.provenance(user.dbl)
    assert sorted(zip(prov.producer_op, prov.exact)) == [(user.inc.name, True)] * 2
