"""Faults and bad input: real files, real subprocesses, observable outcomes.

Ops defined here are checked "from a new process" by a script that imports this very module
(same code, so the same op identities) and calls them with ``allow_new_calls=False``: a stored
call loads, a missing one raises NewCallError, and nothing ever executes. Ops that only run in
subprocesses live in a ``faultops.py`` written to tmp_path; their bodies append to a log file, so
a re-execution is visible.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from disks import tmpfs

from mandala_ast import (
    MandalaUnstoredWarning,
    OutputCountError,
    Storage,
    StorageFormatError,
    ValueEncodingError,
    op,
)

HERE = Path(__file__).resolve()

# --------------------------------------------------------------------------------------------
# helpers


def table_counts(path: Path) -> dict[str, int]:
    """Row count of every table in the file, read through a separate read-only connection."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    # The repository this test file is in, not whatever copy is installed: a scratch copy
    # (benchmarks/mutants.py) must be what the child processes import too.
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parent.parent)])
    env.update(extra)
    return env


def run_py(tmp_path: Path, code: str, *args: str, timeout: float = 60, **env: str):
    """Run a script (written into tmp_path) with ``sys.executable``; fail loudly on error."""
    script = tmp_path / f"script_{abs(hash(code)) % 10**8}.py"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path, env=child_env(tmp_path, **env), capture_output=True, text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


#: Ops used only in subprocesses: each execution appends its argument to $FAULT_EXEC_LOG.
#: (``track_env=False``: where a process logs and how long it sleeps are no part of what
#: they compute; as dependencies, each process would compute every call for itself.)
FAULTOPS = '''
import os, time
from mandala_ast import op

def _log(x):
    path = os.environ.get("FAULT_EXEC_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{x}\\n")

@op(track_env=False)
def square(x):
    _log(x)
    time.sleep(float(os.environ.get("FAULT_SLEEP", "0")))
    return x * x

@op(track_env=False)
def payload(i):
    _log(i)
    return f"{i}:" + "x" * 300

@op(track_env=False)
def slow(x):
    _log(x)
    time.sleep(60)  # SLOW_BODY
    return x
'''


def write_faultops(tmp_path: Path) -> None:
    (tmp_path / "faultops.py").write_text(FAULTOPS)


def read_log(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


#: Imports this very test module in a new process (same op code, so the same op identities) and
#: loads calls with new calls disallowed: nothing can execute, a missing call is reported.
TWIN = '''
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
from mandala_ast import NewCallError, Storage
module = importlib.import_module(sys.argv[2])
storage = Storage(sys.argv[3])
results = []
with storage.run(allow_new_calls=False):
    for qualname, args in json.loads(sys.argv[4]):
        try:
            results.append(["ok", getattr(module, qualname)(*args)])
        except NewCallError:
            results.append(["missing", None])
print(json.dumps(results))
'''


def twin_load(tmp_path: Path, db: Path, calls: list[tuple]) -> list[list]:
    """From a NEW process: for each ``(op, args)``, ``["ok", value]`` or ``["missing", None]``."""
    module = calls[0][0].fn.__module__
    root = HERE.parents[module.count(".")]  # the sys.path entry pytest imported us from
    spec = [[fn.fn.__qualname__, list(args)] for fn, args in calls]
    proc = run_py(tmp_path, TWIN, str(root), module, str(db), json.dumps(spec))
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------------------------
# ops of this module

# Execution logs are deques, not lists: a module-level list an op reads would be tracked as a
# constant dependency of the op, and appending to it would change the op's state.
EXECUTED: collections.deque = collections.deque()


@op
def inc(x):
    EXECUTED.append(("inc", x))
    return x + 1


@op
def takes(label, payload):
    EXECUTED.append(("takes", label))
    return label


@op
def make_lock(n):
    EXECUTED.append(("make_lock", n))
    return threading.Lock()


def _refuse_to_load(n):
    raise ValueError(f"cannot rebuild {n}")


class LoadsBackBadly:
    """Pickles fine, but loading the pickle raises: a class whose state check fails when
    rebuilt (a handle to a closed resource, a version check in __setstate__)."""

    def __init__(self, n):
        self.n = n

    def __reduce__(self):
        return (_refuse_to_load, (self.n,))


@op
def make_unloadable(n):
    EXECUTED.append(("make_unloadable", n))
    return LoadsBackBadly(n)


@op(nout=2)
def pair_second_bad(n):
    EXECUTED.append(("pair_second_bad", n))
    return n, (lambda: n)


@op(nout=2)
def two_returns_three(n):
    return n, n, n


@op
def annotated_returns_scalar(n) -> tuple[int, int]:
    return n


@op
def annotated_returns_one_tuple(n) -> tuple[int, int]:
    return (n,)


class Boom(Exception):
    pass


RAISED: collections.deque = collections.deque()


@op
def explode(x):
    exc = Boom(f"boom at {x}")
    RAISED.append(exc)
    raise exc  # <- EXPLODE


@op
def interrupt(x):
    raise KeyboardInterrupt  # <- INTERRUPT


def marker_line(marker: str, path: Path = HERE) -> int:
    lines = path.read_text().splitlines()
    (lineno,) = [i for i, line in enumerate(lines, 1) if line.rstrip().endswith(marker)]
    return lineno


def last_frame(exc: BaseException):
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A storage file holding a few unrelated calls, committed."""
    path = tmp_path / "store.db"
    storage = Storage(path)
    with storage:
        for i in range(3):
            inc(i)
    storage.close()
    return path


# --------------------------------------------------------------------------------------------
# 1. unhashable / unpicklable argument


def _generator():
    return (i for i in range(3))


BAD_ARGS = {
    "generator": _generator,
    "lambda": lambda: (lambda: 1),
    "lock": threading.Lock,
    "lock-in-list": lambda: [1, 2, threading.Lock()],
    "lock-in-dict": lambda: {"a": threading.Lock()},
}


@pytest.mark.parametrize("kind", sorted(BAD_ARGS))
def test_unhashable_argument_names_op_and_argument_and_changes_nothing(db, tmp_path, kind):
    """A value that cannot be hashed raises ValueEncodingError naming op and argument; every
    table keeps its row count; the storage then stores a good call normally."""
    before = table_counts(db)
    EXECUTED.clear()
    storage = Storage(db)
    with pytest.raises(ValueEncodingError) as info:
        with storage:
            inc(10)  # a good call earlier in the same block is kept
            takes("first", BAD_ARGS[kind]())
    message = str(info.value)
    assert takes.name in message
    assert "'payload'" in message
    assert isinstance(info.value, TypeError)  # ValueEncodingError is a TypeError too
    assert ("takes", "first") not in EXECUTED  # the body never ran
    after = table_counts(db)
    assert after["calls"] == before["calls"] + 1  # only inc(10)

    # The bad call added nothing at all: compare against a run of the good call alone.
    clean = tmp_path / "clean.db"
    reference = Storage(clean)
    with reference:
        for i in range(3):
            inc(i)
        inc(10)
    reference.close()
    assert after == table_counts(clean)

    # Still usable: a good call of the same op works, is stored, and loads elsewhere.
    with storage:
        assert takes("second", 42) == "second"
    assert table_counts(db)["calls"] == before["calls"] + 2
    assert twin_load(tmp_path, db, [(takes, ("second", 42)), (takes, ("first", 0))]) == [
        ["ok", "second"],
        ["missing", None],
    ]


def test_unhashable_argument_as_first_call_in_fresh_block_leaves_file_counts_equal(db):
    """The bad call alone in a block (first call of its op): row counts in every table equal."""
    before = table_counts(db)
    storage = Storage(db)
    with pytest.raises(ValueEncodingError, match=r"argument 'payload'"):
        with storage:
            takes("x", _generator())
    assert table_counts(db) == before
    with storage:
        takes("y", 1)
    assert table_counts(db)["calls"] == before["calls"] + 1


# --------------------------------------------------------------------------------------------
# 2. unpicklable output

CALL_ROWS = ("calls", "call_inputs", "call_outputs", "val_rows", "val_bytes")


@pytest.mark.parametrize(
    ("fn", "which"),
    [(make_lock, "output 0"), (pair_second_bad, "output 1"), (make_unloadable, "output 0")],
    ids=["lock", "nout2", "pickles-but-cannot-be-loaded-back"],
)
def test_an_output_that_cannot_be_stored_is_returned_with_one_warning_and_nothing_is_stored(db, tmp_path, fn, which):
    """An output that cannot be stored is still handed to the block (the work is not thrown
    away), with one warning naming op and output index; no call, input, output or value row is
    written, so the next block computes it again."""
    before = table_counts(db)
    storage = Storage(db)
    EXECUTED.clear()
    for _ in range(2):
        with pytest.warns(MandalaUnstoredWarning) as caught:
            with storage:
                result = fn(7)
        assert len(caught) == 1 and fn.name in str(caught[0].message) and which in str(caught[0].message)
        assert result is not None
    after = table_counts(db)
    assert {t: after[t] for t in CALL_ROWS} == {t: before[t] for t in CALL_ROWS}
    assert list(EXECUTED) == [(fn.name.rsplit(".", 1)[1], 7)] * 2  # executed again: nothing memoized

    with storage:
        assert inc(100) == 101
    assert table_counts(db)["calls"] == before["calls"] + 1
    assert twin_load(tmp_path, db, [(fn, (7,)), (inc, (100,))]) == [["missing", None], ["ok", 101]]


# --------------------------------------------------------------------------------------------
# 3. wrong number of outputs


@pytest.mark.parametrize(
    "fn", [two_returns_three, annotated_returns_scalar, annotated_returns_one_tuple],
    ids=["nout2-returns-3", "annotated-returns-scalar", "annotated-returns-1-tuple"],
)
def test_wrong_output_count_raises_and_stores_nothing(db, tmp_path, fn):
    """Returning a different number of values than declared raises OutputCountError (naming
    the op and the declared count); no call or value is stored; the storage stays usable."""
    before = table_counts(db)
    storage = Storage(db)
    with pytest.raises(OutputCountError) as info:
        with storage:
            fn(5)
    assert fn.name in str(info.value)
    assert re.search(r"\b2\b", str(info.value))  # the declared count
    after = table_counts(db)
    assert {t: after[t] for t in CALL_ROWS} == {t: before[t] for t in CALL_ROWS}
    with storage:
        assert inc(50) == 51
    assert twin_load(tmp_path, db, [(fn, (5,)), (inc, (50,))]) == [["missing", None], ["ok", 51]]


# --------------------------------------------------------------------------------------------
# 4. exception in an op body


def test_exception_in_op_propagates_unchanged_and_earlier_calls_are_kept(tmp_path):
    """The very exception object raised in the body reaches the caller, unwrapped, with the
    body's raise line as the traceback's last frame; calls completed before it in the block are
    committed (seen by a new process) and the failed call is not stored."""
    path = tmp_path / "exc.db"
    storage = Storage(path)
    RAISED.clear()
    with pytest.raises(Boom) as info:
        with storage:
            for i in range(5):
                inc(i)
            explode(3)
    exc = info.value
    assert type(exc) is Boom
    assert str(exc) == "boom at 3"
    assert list(RAISED) == [exc]  # the same object, not a copy or wrapper
    assert exc.__cause__ is None and not exc.__suppress_context__
    frame = last_frame(exc)
    assert Path(frame.tb_frame.f_code.co_filename).resolve() == HERE
    assert frame.tb_lineno == marker_line("# <- EXPLODE")

    results = twin_load(tmp_path, path, [(inc, (i,)) for i in range(5)] + [(explode, (3,))])
    assert results == [["ok", i + 1] for i in range(5)] + [["missing", None]]


# --------------------------------------------------------------------------------------------
# 5. many processes on one file

CONCURRENT_CHILD = '''
import os, sys, time
db, barrier, idx, commit_every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
from mandala_ast import Storage
from faultops import square
open(f"{barrier}.ready.{idx}", "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(barrier):
    if time.monotonic() > deadline:
        sys.exit("barrier never opened")
    time.sleep(0.001)
storage = Storage(db)          # all 8 open together (on a fresh file: all race to create it)
xs = list(range(idx * 25, idx * 25 + 200))
if idx % 2:
    xs.reverse()               # half the processes walk the range backwards: more overlap
with storage:
    for n, x in enumerate(xs, 1):
        assert square(x) == x * x, x
        if n % commit_every == 0:
            storage.commit()
print("done", idx)
'''

N_PROCS = 8
DISTINCT = 25 * (N_PROCS - 1) + 200  # process i computes square(25*i ... 25*i + 199)


@pytest.mark.slow
@pytest.mark.parametrize("fresh", [True, False], ids=["fresh-file", "existing-file"])
def test_eight_processes_store_each_call_once(tmp_path, fresh, record_property):
    """8 processes released together memoize overlapping calls on one file: all exit 0, no
    "database is locked", each distinct call stored exactly once with the right value.
    Duplicate executions (two processes computing the same call at once) are reported."""
    write_faultops(tmp_path)
    path = tmp_path / "shared.db"
    if not fresh:
        Storage(path).close()
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CONCURRENT_CHILD))
    barrier = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(barrier), str(i), "20"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_env(tmp_path, FAULT_SLEEP="0.002", FAULT_EXEC_LOG=str(tmp_path / f"exec.{i}")),
        )
        for i in range(N_PROCS)
    ]
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("go.ready.*"))) < N_PROCS and time.monotonic() < deadline:
            time.sleep(0.01)
        barrier.touch()
        outcomes = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, (out, err, rc) in enumerate(outcomes):
        assert "database is locked" not in err
        assert rc == 0, f"process {i} exited {rc}:\n{err}"
        assert out.strip() == f"done {i}"

    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT cid) FROM calls").fetchone() == (
        DISTINCT, DISTINCT,
    )
    assert conn.execute("SELECT COUNT(*) FROM outputs").fetchone()[0] == DISTINCT
    pairs = conn.execute(
        "SELECT iv.codec, iv.data, ov.codec, ov.data FROM calls c "
        "JOIN inputs i ON i.call_hid = c.hid JOIN vals iv ON iv.cid = i.cid "
        "JOIN outputs o ON o.call_hid = c.hid JOIN vals ov ON ov.cid = o.cid"
    ).fetchall()
    conn.close()
    assert {(ic, oc) for ic, _, oc, _ in pairs} == {("json", "json")}
    stored = {json.loads(i): json.loads(o) for _, i, _, o in pairs}
    assert stored == {x: x * x for x in range(DISTINCT)}

    executions = [x for i in range(N_PROCS) for x in read_log(tmp_path / f"exec.{i}")]
    assert set(map(int, executions)) == set(range(DISTINCT))  # every call ran somewhere
    duplicates = len(executions) - DISTINCT
    record_property("duplicate_executions", duplicates)
    print(f"\n[{'fresh' if fresh else 'existing'} file] {len(executions)} executions for "
          f"{DISTINCT} distinct calls ({duplicates} duplicates, of {N_PROCS * 200} calls made)")


# --------------------------------------------------------------------------------------------
# 6. kill -9 in the middle of a block

KILL_CHILD = '''
import sys
db, start, committed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
from mandala_ast import Storage
from faultops import payload
storage = Storage(db)
with storage:
    i = start
    while True:
        payload(i)
        i += 1
        if i == start + committed:
            storage.commit()
            print("COMMITTED", i, flush=True)
        elif i > start + committed and i % 50 == 0:
            storage.commit()   # keep committing so the kill can land inside a transaction
'''

VERIFY_PAYLOAD = '''
import json, sys
from mandala_ast import Storage
from faultops import payload
storage = Storage(sys.argv[1])
with storage:
    bad = [i for i in json.loads(sys.argv[2]) if payload(i) != f"{i}:" + "x" * 300]
print(json.dumps(bad))
'''


@pytest.mark.slow
def test_kill_9_mid_block_keeps_committed_calls(tmp_path):
    """SIGKILL while a block computes and commits: the file opens with Storage(path), passes
    PRAGMA integrity_check, and every call committed before the marker loads in a new process
    without executing. Three rounds on the same file, killed at different moments."""
    write_faultops(tmp_path)
    path = tmp_path / "killed.db"
    script = tmp_path / "kill_child.py"
    script.write_text(textwrap.dedent(KILL_CHILD))
    committed: list[int] = []
    rng = random.Random(1234)
    for round_ in range(3):
        start, count = round_ * 100_000, 300
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path), str(start), str(count)],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_env(tmp_path, FAULT_EXEC_LOG=str(tmp_path / f"child.{round_}.log")),
        )
        try:
            line = proc.stdout.readline()
            assert line.split() == ["COMMITTED", str(start + count)], proc.stderr.read()
            time.sleep(rng.uniform(0.05, 0.4))
            assert proc.poll() is None, "the child must still be computing when killed"
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()
        executed = read_log(tmp_path / f"child.{round_}.log")
        assert len(executed) > count  # it was past the marker, mid-block, when killed
        committed += range(start, start + count)

        storage = Storage(path)  # opens cleanly (recovers the WAL)
        storage.close()
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] >= len(committed)
        conn.close()

        verify_log = tmp_path / f"verify.{round_}.log"
        proc = run_py(tmp_path, VERIFY_PAYLOAD, str(path), json.dumps(committed),
                      FAULT_EXEC_LOG=str(verify_log))
        assert json.loads(proc.stdout) == []
        assert read_log(verify_log) == []  # every committed call loaded; none re-executed


# --------------------------------------------------------------------------------------------
# 7. corrupt, foreign, truncated files and directories


def _real_storage(path: Path, calls: int = 1500) -> None:
    storage = Storage(path)
    with storage:
        for i in range(calls):
            takes(f"label-{i:05d}-" + "y" * 40, i)
    storage.close()


def _make_random(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(16384))


def _make_sqlite_header_then_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + random.Random(8).randbytes(8192 - 16))


def _make_foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO users (name) VALUES (?)", [("ann",), ("bob",)])
    conn.commit()
    conn.close()


def _make_other_format(path: Path) -> None:
    _real_storage(path, calls=3)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE mandala_meta SET value = 'mandala_ast/999' WHERE key = 'format'")
    conn.commit()
    conn.execute("PRAGMA journal_mode = DELETE")  # fold the WAL back in: a single file
    conn.close()


def _truncator(cut):
    def make(path: Path) -> None:
        _real_storage(path)
        size = path.stat().st_size
        assert not Path(f"{path}-wal").exists() and size > 40_000
        with open(path, "r+b") as handle:
            handle.truncate(cut(size))

    return make


BAD_FILES = {
    "random-bytes": (_make_random, r"not a mandala_ast storage"),
    "sqlite-header-then-garbage": (_make_sqlite_header_then_garbage, r"not a mandala_ast storage"),
    "foreign-sqlite": (_make_foreign, r"another program.*users"),
    "other-format": (_make_other_format, r"mandala_ast/999"),
    "truncated-to-header": (_truncator(lambda size: 60), r"truncated|corrupt|malformed|not a"),
    "truncated-half": (_truncator(lambda size: size // 2), r"truncated|corrupt|malformed"),
    "truncated-by-a-page": (_truncator(lambda size: size - 4096), r"truncated|corrupt|malformed"),
    "truncated-mid-page": (_truncator(lambda size: size - 100), r"truncated|corrupt|malformed"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_and_left_untouched(tmp_path, case):
    """A corrupt, foreign, truncated or other-format file raises StorageFormatError naming the
    file; its bytes and mtime are unchanged and no -wal/-shm/.blobs appear beside it."""
    make, pattern = BAD_FILES[case]
    path = tmp_path / "bad.db"
    make(path)
    digest_before, mtime_before = sha256(path), path.stat().st_mtime_ns
    listing_before = sorted(p.name for p in tmp_path.iterdir())
    time.sleep(0.01)  # so that any write would show in mtime_ns
    for _ in range(2):  # refusing is repeatable: the first attempt left nothing behind
        with pytest.raises(StorageFormatError) as info:
            Storage(path)
        assert str(path) in str(info.value)
        assert re.search(pattern, str(info.value)), str(info.value)
    assert sha256(path) == digest_before
    assert path.stat().st_mtime_ns == mtime_before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing_before


def test_directory_path_is_refused_and_left_untouched(tmp_path):
    """A directory given as the storage path raises StorageFormatError naming it; nothing is
    created inside or beside it."""
    path = tmp_path / "adir"
    path.mkdir()
    (path / "keep.txt").write_text("x")
    with pytest.raises(StorageFormatError, match="directory") as info:
        Storage(path)
    assert str(path) in str(info.value)
    assert [p.name for p in path.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]


def test_bad_file_check_does_not_break_a_good_file(tmp_path):
    """Control for the cases above: a real storage (even a large one) reopens and loads."""
    path = tmp_path / "good.db"
    _real_storage(path)
    storage = Storage(path)
    with storage.run(allow_new_calls=False):
        assert takes(f"label-{1499:05d}-" + "y" * 40, 1499) == f"label-{1499:05d}-" + "y" * 40
    storage.close()


# --------------------------------------------------------------------------------------------
# 8. Ctrl-C


def test_keyboard_interrupt_in_op_propagates_and_earlier_calls_are_kept(tmp_path):
    """KeyboardInterrupt raised inside an op body propagates out of the block unchanged (last
    frame: the body's raise line), the calls before it are committed, the interrupted one is not."""
    path = tmp_path / "ctrlc.db"
    storage = Storage(path)
    with pytest.raises(KeyboardInterrupt) as info:
        with storage:
            for i in range(5):
                inc(i)
            interrupt(1)
    frame = last_frame(info.value)
    assert Path(frame.tb_frame.f_code.co_filename).resolve() == HERE
    assert frame.tb_lineno == marker_line("# <- INTERRUPT")
    results = twin_load(tmp_path, path, [(inc, (i,)) for i in range(5)] + [(interrupt, (1,))])
    assert results == [["ok", i + 1] for i in range(5)] + [["missing", None]]


SIGINT_CHILD = '''
import signal, sys
# Started from a background job (a test runner run with &), SIGINT would be ignored here.
signal.signal(signal.SIGINT, signal.default_int_handler)
from mandala_ast import Storage
from faultops import square, slow
storage = Storage(sys.argv[1])
with storage:
    for i in range(50):
        square(i)
    print("READY", flush=True)
    slow(1)
'''


def test_real_sigint_during_op_keeps_completed_calls(tmp_path):
    """A real SIGINT to a process blocked inside an op body: KeyboardInterrupt propagates (the
    process dies of it), yet the 50 calls completed in that block are in the file, and load in
    a new process without executing; the interrupted call is not stored."""
    write_faultops(tmp_path)
    path = tmp_path / "sigint.db"
    script = tmp_path / "sigint_child.py"
    script.write_text(textwrap.dedent(SIGINT_CHILD))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env=child_env(tmp_path, FAULT_EXEC_LOG=str(tmp_path / "child.log")),
    )
    try:
        assert proc.stdout.readline().strip() == "READY"
        deadline = time.monotonic() + 10  # wait until the body of slow(1) has started
        while "1" not in read_log(tmp_path / "child.log")[50:] and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (-signal.SIGINT, 1, 130), err
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    assert "SLOW_BODY" in err  # the interrupt surfaced in the op body, not in the runtime

    verify = '''
    import json, sys
    from mandala_ast import Storage, NewCallError
    from faultops import square, slow
    storage = Storage(sys.argv[1])
    with storage:
        ok = all(square(i) == i * i for i in range(50))
    try:
        with storage.run(allow_new_calls=False):
            slow(1)
        slow_stored = True
    except NewCallError:
        slow_stored = False
    print(json.dumps([ok, slow_stored]))
    '''
    verify_log = tmp_path / "verify.log"
    proc = run_py(tmp_path, verify, str(path), FAULT_EXEC_LOG=str(verify_log))
    assert json.loads(proc.stdout) == [True, False]
    assert read_log(verify_log) == []


# --------------------------------------------------------------------------------------------
# a full disk (a real, small tmpfs: we are root in CI; elsewhere these tests skip)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MB tmpfs mounted at tmp_path/disk, unmounted afterwards."""
    with tmpfs(tmp_path / "disk", "3m") as disk:
        yield disk


@op
def noise(n: int, k: int) -> bytes:
    return random.Random(k).randbytes(n)


def _fill_disk_then_commit(disk: Path) -> tuple[Storage, BaseException | None]:
    """A block whose commit does not fit on the disk; the filler is then removed."""
    storage = Storage(disk / "s.db")
    filler = disk / "filler"
    filler.write_bytes(b"x" * 1_500_000)
    raised = None
    try:
        with storage.run():
            for k in range(4):
                noise(400_000, k)
    except BaseException as exc:  # noqa: BLE001 - what escapes is the point of the test
        raised = exc
    filler.unlink()
    return storage, raised


def test_a_full_disk_drops_the_failed_calls_and_the_next_blocks_store_again(small_disk):
    storage, raised = _fill_disk_then_commit(small_disk)
    assert raised is not None
    with storage.run():
        noise(1000, 99)
    # The calls of the failed commit were dropped (nothing half-written); the next block
    # commits, and running the dropped calls again stores them.
    assert sorted(Storage(small_disk / "s.db").df(noise)["k"]) == [99]
    with storage.run():
        for k in range(4):
            noise(400_000, k)
    assert sorted(Storage(small_disk / "s.db").df(noise)["k"]) == [0, 1, 2, 3, 99]


def test_a_full_disk_is_a_mandala_error_naming_the_file(small_disk):
    from mandala_ast import MandalaError

    _, raised = _fill_disk_then_commit(small_disk)
    assert isinstance(raised, MandalaError) and "s.db" in str(raised)
