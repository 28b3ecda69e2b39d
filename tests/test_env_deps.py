"""Environment variables an op body reads are dependencies of its calls (env_deps.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mandala_ast import Storage, op

cfg_env = types.ModuleType("cfg_env")  # a config module of the user's: ENV = os.environ
cfg_env.ENV = os.environ

#: Ops in a script of their own: each run is a new process with its own environment, as when a
#: user changes DATA_ROOT in the shell and runs again.
_SCRIPT = textwrap.dedent('''
    import json, os, sys
    from mandala_ast import Storage, op

    RUNS = []

    def configured_root():  # a helper: what it reads, the op that calls it reads
        return os.getenv("HELPER_ROOT", "unset")

    @op
    def load(name):
        RUNS.append("load")
        return os.environ["DATA_ROOT"] + "/" + name

    @op
    def size(text):
        RUNS.append("size")
        return len(text)

    @op
    def report(name):
        RUNS.append("report")
        return "report of " + load(name)

    @op
    def versioned(name):
        RUNS.append("versioned")
        return name + "@" + os.environ.get("DATASET_VERSION", "v0")

    @op
    def seeded(n):
        RUNS.append("seeded")
        return n + int(os.getenv("SEED", "0"))

    @op
    def debug_flag():
        RUNS.append("debug_flag")
        return "DEBUG" in os.environ

    @op
    def via_helper(name):
        RUNS.append("via_helper")
        return configured_root() + "/" + name

    @op
    def plain(n):
        RUNS.append("plain")
        return n * 2

    storage = Storage(sys.argv[1])
    why = {"load": str(storage.why(load, "a")), "debug_flag": str(storage.why(debug_flag))}
    with storage.run():
        results = dict(size=size(load("a")), report=report("a"), versioned=versioned("a"),
                       seeded=seeded(1), debug=debug_flag(), helper=via_helper("a"), plain=plain(3))
    print(json.dumps(dict(runs=sorted(RUNS), results=results, why=why)))
''')

_OURS = ("DATA_ROOT", "DATASET_VERSION", "SEED", "DEBUG", "HELPER_ROOT", "UNRELATED")
_BASE = {"DATA_ROOT": "/data/one", "DATASET_VERSION": "v1", "SEED": "1", "HELPER_ROOT": "/h1"}
_EVERYTHING = ["debug_flag", "load", "plain", "report", "seeded", "size", "versioned", "via_helper"]


def _runner(tmp_path: Path):
    """Runs the script in a new process under the environment given (on top of the test's
    own, without the variables the ops read); returns its JSON report."""
    script = tmp_path / "env_ops.py"
    script.write_text(_SCRIPT)

    def run(**variables: str) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in _OURS}
        proc = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "s.db")],
            capture_output=True, text=True, cwd=tmp_path, env={**env, **variables},
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.splitlines()[-1])

    return run


def test_a_changed_environment_variable_the_op_read_recomputes_its_call(tmp_path):
    run = _runner(tmp_path)
    first = run(**_BASE)
    assert first["runs"] == _EVERYTHING and first["results"]["size"] == len("/data/one/a")
    assert run(**_BASE)["runs"] == []  # same environment: every call is a hit
    changed = run(**{**_BASE, "DATA_ROOT": "/data/second"})
    # load read it; size takes load's new output; report called load from its body
    assert changed["runs"] == ["load", "report", "size"]
    assert changed["results"]["size"] == len("/data/second/a")
    assert changed["results"]["report"] == "report of /data/second/a"
    why = changed["why"]["load"]
    assert why.startswith("miss") and "dependency environment variable DATA_ROOT changed" in why
    assert "/data/one" not in why and "/data/second" not in why  # values may be secrets
    assert run(**{**_BASE, "DATA_ROOT": "/data/second"})["runs"] == []
    assert run(**_BASE)["runs"] == []  # back to the first value: the first calls again


@pytest.mark.parametrize("variable, reader", [
    ("DATASET_VERSION", "versioned"),  # os.environ.get
    ("SEED", "seeded"),                # os.getenv
    ("HELPER_ROOT", "via_helper"),     # os.getenv in a helper the op calls
])
def test_each_way_of_reading_a_variable_recomputes_the_call_that_read_it(tmp_path, variable, reader):
    run = _runner(tmp_path)
    run(**_BASE)
    assert run(**{**_BASE, variable: "2"})["runs"] == [reader]


def test_a_variable_that_was_absent_then_set_recomputes_the_call_that_missed_it(tmp_path):
    run = _runner(tmp_path)
    without = {k: v for k, v in _BASE.items() if k != "DATASET_VERSION"}
    assert run(**without)["results"]["versioned"] == "a@v0"
    assert run(**without)["runs"] == []
    now_set = run(**{**without, "DATASET_VERSION": "v7"})
    assert now_set["runs"] == ["versioned"] and now_set["results"]["versioned"] == "a@v7"
    assert run(**without)["runs"] == []  # unset again: the call made without it is valid again


def test_a_variable_an_op_only_tests_for_recomputes_when_it_appears_not_when_its_value_changes(tmp_path):
    run = _runner(tmp_path)
    assert run(**_BASE)["results"]["debug"] is False
    appeared = run(**_BASE, DEBUG="1")
    assert appeared["runs"] == ["debug_flag"] and appeared["results"]["debug"] is True
    assert "environment variable DEBUG" in appeared["why"]["debug_flag"]
    assert run(**_BASE, DEBUG="verbose")["runs"] == []  # `"DEBUG" in os.environ` is unchanged


def test_a_variable_no_op_reads_changing_recomputes_nothing(tmp_path):
    run = _runner(tmp_path)
    run(**_BASE, UNRELATED="1")
    assert run(**_BASE, UNRELATED="2")["runs"] == []
    assert run(**_BASE)["runs"] == []


# -- in this process ----------------------------------------------------------------------

RUNS: list[str] = []


@op
def token_length() -> int:
    RUNS.append("token_length")
    return len(os.environ["MANDALA_TEST_TOKEN"])


@op
def threshold(x: int) -> int:
    RUNS.append("threshold")
    return x + int(os.environ.get("MANDALA_TEST_LEVEL", "0"))


@op(track_env=False)
def untracked_threshold(x: int) -> int:
    RUNS.append("untracked_threshold")
    return x + int(os.environ.get("MANDALA_TEST_LEVEL", "0"))


@op
def sets_then_reads(x: int) -> str:
    RUNS.append("sets_then_reads")
    os.environ["MANDALA_TEST_OWN"] = str(x)
    return os.environ["MANDALA_TEST_OWN"]


@op
def copies_the_environment(x: int) -> int:
    RUNS.append("copies_the_environment")
    copies = [dict(os.environ), os.environ.copy(), {**os.environ}, dict(os.environ.items()), list(os.environ.values())]
    named = os.environ.get("MANDALA_TEST_LEVEL", "0")  # after the copies: read by name, a dependency
    return x + sum(map(len, copies)) * 0 + int(named)


@op
def bumps_level(x: int) -> int:
    RUNS.append("bumps_level")
    level = int(os.environ["MANDALA_TEST_LEVEL"])
    os.environ["MANDALA_TEST_LEVEL"] = str(level + 1)  # the body's effect, not its input
    return x + level


@op
def home_from_the_standard_library(x: int) -> int:
    RUNS.append("home_from_the_standard_library")
    home = os.path.expanduser("~")  # posixpath reads HOME: not this op's own read
    return x + len(home) * 0 + int(os.environ.get("MANDALA_TEST_LEVEL", "0"))


SETTINGS = os.environ  # another name for the environment: its op names neither environ nor getenv


@op
def module_held_threshold(x: int) -> int:
    RUNS.append("module_held_threshold")
    return x + int(cfg_env.ENV.get("MANDALA_TEST_LEVEL", "0"))


@op
def aliased_threshold(x: int) -> int:
    RUNS.append("aliased_threshold")
    return x + int(SETTINGS.get("MANDALA_TEST_LEVEL", "0"))


@op
def levels_in_pool(xs: tuple) -> int:
    RUNS.append("levels_in_pool")
    with ThreadPoolExecutor(2) as pool:
        return sum(pool.map(threshold, xs))


@op(ignore_env="MANDALA_TEST_LOG")
def logged_threshold(x: int) -> int:
    RUNS.append("logged_threshold")
    os.environ.get("MANDALA_TEST_LOG")  # where to log: not what the result is
    return x + int(os.environ.get("MANDALA_TEST_LEVEL", "0"))


@op
def seeded_with_default(x: int) -> int:
    RUNS.append("seeded_with_default")
    if "MANDALA_TEST_OWN" not in os.environ:
        os.environ["MANDALA_TEST_OWN"] = "0"
    return x + int(os.environ["MANDALA_TEST_OWN"])


def _run(storage: Storage, *calls) -> list:
    with storage.run():
        return [fn(*args) for fn, *args in calls]


def _env_dependencies(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM dep_sets") if row[0].startswith("<env")}


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    RUNS.clear()
    for name in ("MANDALA_TEST_TOKEN", "MANDALA_TEST_LEVEL", "MANDALA_TEST_OWN", "MANDALA_TEST_UNREAD", "MANDALA_TEST_LOG"):
        monkeypatch.delenv(name, raising=False)


def test_the_same_storage_notices_a_variable_changed_between_blocks(tmp_path, monkeypatch):
    storage = Storage(tmp_path / "s.db")
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")
    assert _run(storage, (threshold, 1)) == [2]
    assert _run(storage, (threshold, 1)) == [2]
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "5")
    assert _run(storage, (threshold, 1)) == [6]
    assert RUNS == ["threshold", "threshold"]
    assert _env_dependencies(storage.path) == {"<env>:MANDALA_TEST_LEVEL"}


def test_a_variable_the_op_ignores_changing_recomputes_nothing_and_the_others_still_count(tmp_path, monkeypatch):
    # A log path or a device list differs from run to run without changing a result: each
    # process with its own LOG_PATH recomputed every call that read it.
    storage = Storage(tmp_path / "s.db")
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")
    monkeypatch.setenv("MANDALA_TEST_LOG", "/tmp/run-1.log")
    assert _run(storage, (logged_threshold, 1)) == [2]
    monkeypatch.setenv("MANDALA_TEST_LOG", "/tmp/run-2.log")
    assert _run(storage, (logged_threshold, 1)) == [2]
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "5")
    assert _run(storage, (logged_threshold, 1)) == [6]
    assert RUNS == ["logged_threshold", "logged_threshold"]
    assert _env_dependencies(storage.path) == {"<env>:MANDALA_TEST_LEVEL"}


def _logs_then_levels(x: int) -> int:  # one function, decorated with and without ignore_env
    RUNS.append("logs_then_levels")
    os.environ.get("MANDALA_TEST_LOG")
    return x + int(os.environ.get("MANDALA_TEST_LEVEL", "0"))


def _calls_inner_logger(x: int) -> int:
    RUNS.append("calls_inner_logger")
    return inner_logger(x) * 2


inner_logger = op(_logs_then_levels)
outer_of_logger = op(_calls_inner_logger)


def test_ignore_env_added_later_keeps_the_calls_stored_before_it(tmp_path, monkeypatch):
    # They kept the variable as a dependency: a new log path recomputed each of them once.
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")
    monkeypatch.setenv("MANDALA_TEST_LOG", "/tmp/run-1.log")
    assert _run(Storage(tmp_path / "s.db"), (op(_logs_then_levels), 1)) == [2]
    later = op(ignore_env="MANDALA_TEST_LOG")(_logs_then_levels)
    monkeypatch.setenv("MANDALA_TEST_LOG", "/tmp/run-2.log")
    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (later, 1)) == [2]
    assert "hit" in str(storage.why(later, 1)) and bool(storage.df(later)["current"].all())
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "5")  # what it does not ignore still counts
    assert _run(Storage(tmp_path / "s.db"), (later, 1)) == [6]
    assert RUNS == ["logs_then_levels", "logs_then_levels"]


def test_track_env_false_added_later_keeps_the_calls_stored_before_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")
    assert _run(Storage(tmp_path / "s.db"), (op(_logs_then_levels), 1)) == [2]
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "5")  # as asked: a stale hit
    assert _run(Storage(tmp_path / "s.db"), (op(track_env=False)(_logs_then_levels), 1)) == [2]
    assert RUNS == ["logs_then_levels"]


def test_ignore_env_added_later_to_an_inner_op_recomputes_no_caller_at_every_change(tmp_path, monkeypatch):
    # The caller took the inner call's stored dependencies, ignored variable included: each
    # new log path recomputed it again.
    monkeypatch.setenv("MANDALA_TEST_LOG", "/tmp/run-1.log")
    assert _run(Storage(tmp_path / "s.db"), (outer_of_logger, 1)) == [2]
    monkeypatch.setattr(sys.modules[__name__], "inner_logger",
                        op(ignore_env="MANDALA_TEST_LOG")(_logs_then_levels))
    for run in (2, 3, 4):
        monkeypatch.setenv("MANDALA_TEST_LOG", f"/tmp/run-{run}.log")
        assert _run(Storage(tmp_path / "s.db"), (outer_of_logger, 1)) == [2]
    # the caller may have read the variable itself: computed once more, then never again
    assert RUNS == ["calls_inner_logger", "logs_then_levels", "calls_inner_logger"]


def test_ignore_env_on_a_caller_keeps_a_variable_its_inner_op_reads(tmp_path, monkeypatch):
    # The caller's stored call holds the variable through the inner op, which does not ignore
    # it: the caller's ignore_env must not turn that into a stale hit.
    monkeypatch.setenv("MANDALA_TEST_LOG", "/tmp/run-1.log")
    assert _run(Storage(tmp_path / "s.db"), (outer_of_logger, 1)) == [2]
    later = op(ignore_env="MANDALA_TEST_LOG")(_calls_inner_logger)
    monkeypatch.setenv("MANDALA_TEST_LOG", "/tmp/run-2.log")
    assert _run(Storage(tmp_path / "s.db"), (later, 1)) == [2]
    assert RUNS == ["calls_inner_logger", "logs_then_levels"] * 2


def test_ignore_env_takes_names():
    from mandala_ast import ArgumentError

    with pytest.raises(ArgumentError, match="ignore_env= takes environment variable names"):
        op(ignore_env=[3])(lambda x: x)


def test_an_op_reading_the_environment_under_another_name_recomputes(tmp_path, monkeypatch):
    """The op runs untraced (it reaches no user code), where only code that may read the
    environment is watched: an alias must count."""
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")
    assert _run(Storage(tmp_path / "s.db"), (aliased_threshold, 1)) == [2]
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "2")
    assert _run(Storage(tmp_path / "s.db"), (aliased_threshold, 1)) == [3]
    assert _env_dependencies(tmp_path / "s.db") == {"<env>:MANDALA_TEST_LEVEL"}


def test_an_op_reading_the_environment_a_module_holds_recomputes(tmp_path, monkeypatch):
    # `cfg.ENV.get(...)`, cfg a module that did `ENV = os.environ`: the op names neither the
    # environment nor anything holding it directly, and ran untraced and unwatched.
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")
    assert _run(Storage(tmp_path / "s.db"), (module_held_threshold, 1)) == [2]
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "2")
    assert _run(Storage(tmp_path / "s.db"), (module_held_threshold, 1)) == [3]
    assert _env_dependencies(tmp_path / "s.db") == {"<env>:MANDALA_TEST_LEVEL"}


def test_a_secret_value_never_reaches_the_storage_file_or_why(tmp_path, monkeypatch):
    secret = "hunter2-very-secret-token"
    monkeypatch.setenv("MANDALA_TEST_TOKEN", secret)
    storage = Storage(tmp_path / "s.db")
    _run(storage, (token_length,))
    monkeypatch.setenv("MANDALA_TEST_TOKEN", secret + "-rotated")
    why = str(storage.why(token_length))
    assert "environment variable MANDALA_TEST_TOKEN" in why and secret not in why
    storage.commit()
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file


def test_reads_outside_op_bodies_are_not_dependencies(tmp_path, monkeypatch):
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "3")
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        level = int(os.environ["MANDALA_TEST_LEVEL"])  # the block reads it, no op body does
        untracked_threshold(level)
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "4")
    assert _run(storage, (untracked_threshold, 3)) == [6]  # track_env=False: a stale hit, as asked
    assert _env_dependencies(storage.path) == set()


def test_a_variable_the_body_sets_before_reading_is_no_dependency(tmp_path, monkeypatch):
    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (sets_then_reads, 1)) == ["1"]
    monkeypatch.setenv("MANDALA_TEST_OWN", "something else")  # (the body set it: put back after)
    assert _run(Storage(tmp_path / "s.db"), (sets_then_reads, 1)) == ["1"]
    assert RUNS == ["sets_then_reads"] and _env_dependencies(storage.path) == set()


def test_a_variable_tested_for_then_given_a_default_by_the_body_hits_in_the_next_run(tmp_path, monkeypatch):
    # It depended on the value the body itself wrote, found unset again in every new block:
    # the call was computed every time.
    assert _run(Storage(tmp_path / "s.db"), (seeded_with_default, 1)) == [1]
    monkeypatch.delenv("MANDALA_TEST_OWN")  # a new process: the default is not set yet
    assert _run(Storage(tmp_path / "s.db"), (seeded_with_default, 1)) == [1]
    monkeypatch.setenv("MANDALA_TEST_OWN", "5")  # set by the user: another result
    assert _run(Storage(tmp_path / "s.db"), (seeded_with_default, 1)) == [6]
    assert RUNS == ["seeded_with_default", "seeded_with_default"]
    # unset, then defaulted: whether it is set; set by the user: its value
    assert _env_dependencies(tmp_path / "s.db") == {"<env-set>:MANDALA_TEST_OWN", "<env>:MANDALA_TEST_OWN"}


def test_copying_the_whole_environment_makes_only_variables_read_by_name_dependencies(tmp_path, monkeypatch):
    """Every variable would include those that differ in every shell (OLDPWD, SHLVL, ...): the
    call would never be a hit again."""
    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (copies_the_environment, 1)) == [1]
    monkeypatch.setenv("MANDALA_TEST_UNREAD", "9")  # in every copy, read by no name
    assert _run(Storage(tmp_path / "s.db"), (copies_the_environment, 1)) == [1]
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "2")
    assert _run(Storage(tmp_path / "s.db"), (copies_the_environment, 1)) == [3]
    assert RUNS == ["copies_the_environment"] * 2
    assert _env_dependencies(storage.path) == {"<env>:MANDALA_TEST_LEVEL"}


def test_a_variable_the_body_reads_then_changes_depends_on_what_it_read(tmp_path, monkeypatch):
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")
    assert _run(Storage(tmp_path / "s.db"), (bumps_level, 10)) == [11]
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")  # as the next process would find it
    assert _run(Storage(tmp_path / "s.db"), (bumps_level, 10)) == [11]
    assert RUNS == ["bumps_level"]


def test_variables_the_standard_library_reads_for_the_body_are_no_dependencies(tmp_path):
    storage = Storage(tmp_path / "s.db")
    _run(storage, (home_from_the_standard_library, 1))
    assert _env_dependencies(storage.path) == {"<env>:MANDALA_TEST_LEVEL"}


def test_an_op_mapping_an_env_reading_op_over_a_thread_pool_depends_on_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")
    assert _run(Storage(tmp_path / "s.db"), (levels_in_pool, (1, 2))) == [5]
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "2")
    assert _run(Storage(tmp_path / "s.db"), (levels_in_pool, (1, 2))) == [7]
    assert sorted(RUNS) == ["levels_in_pool"] * 2 + ["threshold"] * 4


@pytest.mark.parametrize("executor", [None, "threads", "processes"])
def test_a_changed_variable_recomputes_a_call_a_batch_block_computed(tmp_path, monkeypatch, executor):
    path = tmp_path / "s.db"
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "1")
    with Storage(path).batch(executor=executor, progress=False):
        before = threshold(10)
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "2")
    with Storage(path).batch(executor=executor, progress=False):
        after = threshold(10)
    assert (before, after) == (11, 12)
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "3")
    assert _run(Storage(path), (threshold, 10)) == [13]


def test_the_environment_keeps_its_own_behaviour(tmp_path, monkeypatch):
    """Reads are noted by a subclass of the environment's own class: errors, defaults and
    bytes access stay as they were, in op bodies and out."""
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "7")
    _run(Storage(tmp_path / "s.db"), (threshold, 1))  # tracking installed
    with pytest.raises(KeyError):
        os.environ["MANDALA_TEST_MISSING"]
    with pytest.raises(TypeError):
        os.environ[1]  # type: ignore[index]
    assert os.environ.get("MANDALA_TEST_MISSING", "d") == "d" and os.getenv("MANDALA_TEST_LEVEL") == "7"
    assert "MANDALA_TEST_LEVEL" in os.environ and "MANDALA_TEST_MISSING" not in os.environ
    assert os.environ.copy()["MANDALA_TEST_LEVEL"] == "7" and isinstance(os.environ.copy(), dict)
    if hasattr(os, "environb"):
        assert os.environb[b"MANDALA_TEST_LEVEL"] == b"7"


def test_an_op_of_an_installed_package_depends_on_the_variables_its_own_body_reads(tmp_path, monkeypatch):
    # A team's package of ops, pip-installed: its helpers are libraries, but what an op's own
    # body reads is what it computes from; such reads went unnoted and served stale results.
    packages = tmp_path / "lib" / "site-packages"
    packages.mkdir(parents=True)
    (packages / "teamops_env.py").write_text(
        "import os\nfrom mandala_ast import op\n\n"
        "@op\ndef load(name):\n    return os.environ['MANDALA_TEST_LEVEL'] + '/' + name\n"
    )
    monkeypatch.syspath_prepend(str(packages))
    import teamops_env

    monkeypatch.setenv("MANDALA_TEST_LEVEL", "a")
    assert _run(Storage(tmp_path / "s.db"), (teamops_env.load, "x")) == ["a/x"]
    monkeypatch.setenv("MANDALA_TEST_LEVEL", "b")
    assert _run(Storage(tmp_path / "s.db"), (teamops_env.load, "x")) == ["b/x"]
    assert _env_dependencies(tmp_path / "s.db") == {"<env>:MANDALA_TEST_LEVEL"}


_SCANS_THEN_READS = textwrap.dedent('''
    import os, sys
    from mandala_ast import Storage, op

    @op
    def load(name):
        on_a_cluster = any(key.startswith("SLURM_") for key in os.environ)  # a scan, then a read
        return os.environ["DATA_ROOT"] + "/" + name + ("@slurm" if on_a_cluster else "")

    with Storage(sys.argv[1]).run():
        print(load("x"))
''')


def test_a_variable_read_right_after_a_loop_over_the_environment_is_a_dependency(tmp_path):
    # The loop is the user's, not a copy's: the read after it was taken for the copy reading
    # its first key, and missed, where the launcher put DATA_ROOT first (env -i, Kubernetes).
    (tmp_path / "scan.py").write_text(_SCANS_THEN_READS)
    repo = str(Path(__file__).resolve().parent.parent)

    def run(root: str) -> str:
        env = {"DATA_ROOT": root, "PYTHONPATH": repo, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        done = subprocess.run([sys.executable, "scan.py", str(tmp_path / "s.db")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    assert run("/a") == "/a/x"
    assert run("/b") == "/b/x"
