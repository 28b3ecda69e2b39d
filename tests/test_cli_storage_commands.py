"""The storage commands, run as the user runs them: the installed `mandala-ast` console script
in a subprocess, on a storage built by examples/quickstart.py."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hookutil import REPO_ROOT

EXE = Path(sys.executable).parent / "mandala-ast"
COMMANDS = ["ops", "calls", "versions", "why", "graph", "verify", "gc", "delete", "export", "browse",
            "run", "show", "cache clear", "cache show"]


def cli(*args: str, cwd: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([str(EXE), *args], cwd=cwd, env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """quickstart's storage, built once by running the example as users do."""
    root = tmp_path_factory.mktemp("quickstart")
    shutil.copy(REPO_ROOT / "examples" / "quickstart.py", root)
    proc = cli("run", "quickstart.py", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture
def db(built: Path, tmp_path: Path) -> Path:
    """A copy of that storage a test may change, beside the example's code."""
    shutil.copy(built / "quickstart.py", tmp_path)
    shutil.copy(built / "quickstart.db", tmp_path)
    return tmp_path / "quickstart.db"


def snapshot(path: Path) -> bytes:
    return path.read_bytes()


class TestOps:
    def test_lists_ops_with_versions_calls_and_size(self, db):
        proc = cli("ops", str(db))
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0].split() == ["op", "versions", "calls", "size"]
        rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
        assert set(rows) == {"__main__.fit_ridge", "__main__.make_data", "__main__.r2_score"}
        assert rows["__main__.fit_ridge"][:2] == ["1", "8"]
        assert rows["__main__.make_data"][1] == "2" and rows["__main__.make_data"][3] == "kB"


class TestCalls:
    def test_table_fits_80_columns_and_shows_scalars_and_shapes(self, db):
        proc = cli("calls", str(db), "fit_ridge")
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert len(lines) == 9 and all(len(line) <= 80 for line in lines)
        assert lines[0].split() == ["X", "y", "alpha", "output", "version", "call"]
        assert "f64[200,20]" in lines[1] and lines[1].split()[4] == "0.1"

    def test_where_limit_and_csv(self, db):
        proc = cli("calls", str(db), "fit_ridge", "--where", "alpha=10", "--format", "csv", "--limit", "1")
        rows = list(csv.DictReader(io.StringIO(proc.stdout)))
        assert proc.returncode == 0 and len(rows) == 1
        assert rows[0]["alpha"] == "10.0" and rows[0]["X"].startswith("<ndarray float64 (200, 20) ")
        assert len(rows[0]["call"]) == 64

    def test_json_decodes_scalars(self, db):
        proc = cli("calls", str(db), "__main__.make_data", "--format", "json")
        rows = json.loads(proc.stdout)
        assert [(row["n"], row["seed"]) for row in rows] == [(200, 0), (2000, 0)]
        assert rows[0]["output_1"].startswith("<ndarray float64 (200,) ")

    def test_a_float_argument_shows_as_a_float_not_as_the_int_beside_it(self, tmp_path):
        """1 and 1.0, 0.0 and -0.0 are different arguments, but the table printed floats with
        %g: two calls both showed x=1, and -0.0 showed as -0."""
        from mandala_ast import Storage, op

        @op
        def f(x):
            return 0

        with Storage(tmp_path / "s.db").run():
            for x in (1, 1.0, -0.0, 0.0, 2.5, 1e20, 123456789.0):
                f(x)
        table = cli("calls", "s.db", "f", cwd=tmp_path).stdout.splitlines()
        assert [line.split()[0] for line in table[1:]] == ["1", "1.0", "-0.0", "0.0", "2.5", "1e+20", "1.23457e+08"]

    def test_calls_of_two_versions_with_one_number_say_which_version_they_are(self, tmp_path):
        """An edited op keeps `version=0`: its old and new calls showed the same version 0,
        x=1 with output 2 and with output 3, nothing telling which code made which."""
        script = tmp_path / "s.py"
        script.write_text("from mandala_ast import Storage, op\n\n@op\ndef f(x):\n    return x * 2\n\n"
                          "if __name__ == '__main__':\n    with Storage('s.db').run():\n        f(1)\n")
        assert cli("run", "s.py", cwd=tmp_path).returncode == 0
        script.write_text(script.read_text().replace("x * 2", "x * 3"))
        assert cli("run", "s.py", cwd=tmp_path).returncode == 0
        ids = [line.split()[1] for line in cli("versions", "s.db", "f", cwd=tmp_path).stdout.splitlines()[1:]]
        table = cli("calls", "s.db", "f", cwd=tmp_path).stdout.splitlines()
        assert [line.split()[:4] for line in table[1:]] == [["1", "2", "0", f"({ids[0][:6]})"], ["1", "3", "0", f"({ids[1][:6]})"]]
        rows = json.loads(cli("calls", "s.db", "f", "--format", "json", cwd=tmp_path).stdout)
        assert [(row["output"], row["version"], row["version_id"][:12]) for row in rows] == [(2, 0, ids[0]), (3, 0, ids[1])]

    def test_unknown_op_exit_1_names_the_ops(self, db):
        before = snapshot(db)
        proc = cli("calls", str(db), "fit_ridg")
        assert proc.returncode == 1
        assert "no op 'fit_ridg'" in proc.stderr and "did you mean 'fit_ridge'" in proc.stderr
        assert "Traceback" not in proc.stderr and snapshot(db) == before

    @pytest.mark.parametrize("where", ["alpha", "=3", "nope=1"])
    def test_malformed_where_is_a_usage_error(self, db, where):
        proc = cli("calls", str(db), "fit_ridge", "--where", where)
        assert proc.returncode == 2 and "--where" in proc.stderr and "Traceback" not in proc.stderr

    @pytest.mark.parametrize("where", ["alpha=[0.1,", "alpha=(1", "alpha='0.1", 'alpha={"a": 1'])
    def test_a_literal_cut_short_is_a_usage_error_not_a_string_matching_nothing(self, db, where):
        """`--where alpha=[0.1,` (a list cut short) was taken for the text "[0.1,": no call has
        it, so `calls` printed an empty table and `delete` deleted nothing, exit status 0."""
        proc = cli("calls", str(db), "fit_ridge", "--where", where)
        assert proc.returncode == 2 and "not a Python literal" in proc.stderr, (proc.stdout, proc.stderr)

    def test_bad_limit_is_a_usage_error(self, db):
        assert cli("calls", str(db), "fit_ridge", "--limit", "-3").returncode == 2

    def test_missing_file_exit_1_and_not_created(self, tmp_path):
        proc = cli("calls", str(tmp_path / "nope.db"), "fit_ridge")
        assert proc.returncode == 1 and "no such storage file" in proc.stderr
        assert not (tmp_path / "nope.db").exists()

    def test_corrupt_file_exit_1_file_untouched(self, tmp_path):
        bad = tmp_path / "bad.db"
        bad.write_bytes(b"this is not a database" * 100)
        for command in (["ops"], ["calls", "f"], ["export"], ["verify"], ["gc"], ["delete", "f", "--all", "--yes"]):
            args = [command[0], str(bad), *command[1:]] + ([str(tmp_path / "out.db")] if command == ["export"] else [])
            proc = cli(*args)
            assert proc.returncode == 1, (command, proc.stderr)
            assert "not a mandala_ast storage" in proc.stderr and "Traceback" not in proc.stderr
        assert bad.read_bytes() == b"this is not a database" * 100
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db"]

    def test_an_empty_file_is_refused_and_left_empty(self, tmp_path):
        """`touch results.db` (or a copy that failed) then `mandala-ast ops results.db`: the
        commands that only look made a 160 kB storage of it, and showed an empty one."""
        empty = tmp_path / "empty.db"
        empty.touch()
        for command in (["ops"], ["calls", "f"], ["versions", "f"], ["export"], ["verify"], ["gc"],
                        ["delete", "f", "--all", "--yes"]):
            args = [command[0], str(empty), *command[1:]] + ([str(tmp_path / "out.db")] if command == ["export"] else [])
            proc = cli(*args)
            assert proc.returncode == 1 and f"{empty} is empty" in proc.stderr, (command, proc.stderr)
        assert empty.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]

    def test_foreign_sqlite_file_is_refused(self, tmp_path):
        import sqlite3

        other = tmp_path / "other.db"
        with sqlite3.connect(other) as conn:
            conn.execute("CREATE TABLE t (x)")
        proc = cli("ops", str(other))
        assert proc.returncode == 1 and "another program" in proc.stderr


RELEASE = """\
from mandala_ast import Storage, op

@op
def release(version: int, output: str, call: int, created_at: int, output_type: str = "csv") -> int:
    return version * 100 + call

with Storage("r.db").run():
    release(3, "out.csv", 7, 2020)
    release(4, "out.npy", 8, 2021, output_type="npy")
"""


@pytest.fixture
def release_db(tmp_path) -> Path:
    """A storage of an op whose arguments are named like the tables' own columns."""
    (tmp_path / "release.py").write_text(RELEASE)
    assert cli("run", "release.py", cwd=tmp_path).returncode == 0
    return tmp_path / "r.db"


def test_calls_shows_arguments_named_like_its_own_columns_beside_them(release_db):
    """`calls` of an op taking `version`, `output` and `call` printed two `version` and two
    `call` columns, the argument `output` where the output belonged, and no output at all."""
    proc = cli("calls", str(release_db), "release", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["version"], r["output"], r["call"], r["output_"], r["version_"]) for r in rows] == [
        (3, "out.csv", 7, 307, 0), (4, "out.npy", 8, 408, 0)]
    assert len(rows[0]["call_"]) == 64
    table = cli("calls", str(release_db), "release").stdout.splitlines()[0].split()
    assert table == ["version", "output", "call", "created_at", "output_type", "output_", "version_", "call_"]
    where = cli("calls", str(release_db), "release", "--where", "output_=408", "--format", "json")
    assert [r["version"] for r in json.loads(where.stdout)] == [4]


def test_where_on_a_keyword_a_double_star_parameter_took_says_how_to_name_it(tmp_path):
    """`calls DB kws --where foo=1` for `def kws(x, **opts)` (shown as the column `**foo`): the
    error listed `**opts` among the columns, which the table never shows and matches nothing."""
    (tmp_path / "kws.py").write_text("from mandala_ast import Storage, op\n@op\ndef kws(x: int, **opts) -> int:\n"
                                      "    return x\nwith Storage('k.db').run():\n    kws(1, foo=1)\n    kws(2, foo=2)\n")
    assert cli("run", "kws.py", cwd=tmp_path).returncode == 0
    proc = cli("calls", "k.db", "kws", "--where", "foo=1", cwd=tmp_path)
    assert proc.returncode == 2 and "--where '**foo=1'" in proc.stderr, proc.stderr
    found = cli("calls", "k.db", "kws", "--where", "**foo=1", cwd=tmp_path)
    assert found.stdout.split()[:6] == ["x", "**foo", "output", "version", "call", "1"]


class TestVersions:
    def test_lists_versions_and_diffs_a_changed_op(self, db):
        path = db.parent / "quickstart.py"
        path.write_text(path.read_text().replace("return float(1 - residual.var() / y.var())",
                                                 "return float(1.0 - residual.var() / y.var())"))
        assert cli("run", "quickstart.py", cwd=db.parent).returncode == 0
        proc = cli("versions", str(db), "r2_score", "--diff")
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert [line.split()[0] for line in lines[1:3]] == ["0", "0"]  # the code changed, not version=
        assert lines[1].split()[1] != lines[2].split()[1]
        assert "-    return float(1 - residual" in proc.stdout and "+    return float(1.0 - residual" in proc.stdout


    def test_a_version_bump_with_the_same_code_says_so_in_the_diff(self, db):
        """Sources are kept per code fingerprint, which `version=` is no part of: `@op(version=1)`
        over the same code printed the two versions and no diff at all, as if nothing changed."""
        path = db.parent / "quickstart.py"
        path.write_text(path.read_text().replace("@op\ndef r2_score", "@op(version=1)\ndef r2_score"))
        assert cli("run", "quickstart.py", cwd=db.parent).returncode == 0
        proc = cli("versions", str(db), "r2_score", "--diff")
        assert proc.returncode == 0, proc.stderr
        assert [line.split()[0] for line in proc.stdout.splitlines()[1:3]] == ["0", "1"]
        assert "the same code: only version= changed, from 0 to 1" in proc.stdout

    def test_counts_the_calls_of_an_accepted_change_once(self, tmp_path):
        """As storage.versions did, the accepted version's row repeated the calls of the one
        they are stored under: 3 and 3 for 3 stored calls, where `ops` said 3."""
        script = tmp_path / "s.py"
        script.write_text("import sys\nfrom mandala_ast import Storage, op\n\n@op\ndef f(x):\n    return x * 2\n\n"
                          "storage = Storage('s.db')\nif sys.argv[1:]:\n    storage.accept_change(f)\n"
                          "with storage.run():\n    [f(x) for x in range(len(sys.argv))]\n")
        assert cli("run", "s.py", cwd=tmp_path).returncode == 0
        script.write_text(script.read_text().replace("x * 2", "2 * x"))
        assert cli("run", "s.py", "accept", "3", cwd=tmp_path).returncode == 0
        rows = [line.split() for line in cli("versions", "s.db", "f", cwd=tmp_path).stdout.splitlines()[1:]]
        assert (rows[0][2], rows[1][2:4]) == ("3", [rows[0][1], "0"])  # (no same_as on the first row)
        assert cli("ops", "s.db", cwd=tmp_path).stdout.split()[-2] == "3"


class TestWhy:
    def test_hit_and_miss_with_the_scripts_code(self, db):
        hit = cli("why", str(db), "make_data", "200", "--import", "quickstart.py", cwd=db.parent)
        assert hit.returncode == 0 and hit.stdout.startswith("hit: __main__.make_data(n=200, seed=0)"), hit.stderr
        miss = cli("why", str(db), "make_data", "300", "seed=1", "--import", "quickstart.py", cwd=db.parent)
        assert miss.stdout.startswith("miss: __main__.make_data(n=300, seed=1) was never computed")

    def test_script_ops_helpers_are_its_dependencies(self, tmp_path):
        """A script's op calling a helper of the script: stored as __main__.f and
        __main__:helper; `why` imports the script and sees both under those names."""
        script = tmp_path / "s.py"
        script.write_text("from mandala_ast import Storage, op\n\ndef helper(x):\n    return x * 2\n\n"
                          "@op\ndef f(x):\n    return helper(x) + 1\n\nif __name__ == '__main__':\n"
                          "    with Storage('s.db').run():\n        f(1)\n")
        assert cli("run", "s.py", cwd=tmp_path).returncode == 0
        assert cli("why", "s.db", "f", "1", "--import", "s.py", cwd=tmp_path).stdout.startswith("hit: ")
        script.write_text(script.read_text().replace("x * 2", "x * 3"))
        miss = cli("why", "s.db", "f", "1", "--import", "s.py", cwd=tmp_path).stdout
        assert miss.startswith("miss: ") and "dependency __main__.helper changed" in miss

    def test_needs_import(self, db):
        assert cli("why", str(db), "make_data", "200").returncode == 2

    @pytest.mark.parametrize("arguments", [[], ["200", "0", "7"], ["200", "colour=1"]])
    def test_arguments_the_op_cannot_take_are_a_usage_error_naming_it(self, db, arguments):
        """A missing or unexpected argument ended in a Python traceback (TypeError)."""
        proc = cli("why", str(db), "make_data", *arguments, "--import", "quickstart.py", cwd=db.parent)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "__main__.make_data()" in proc.stderr

    @pytest.mark.parametrize("module", ["broken.py", "broken"])
    def test_a_module_that_raises_on_import_is_named_with_its_own_traceback(self, db, module):
        """A script whose top level raises (or runs a query block, uncompiled here) ended in
        a traceback through mandala_ast's own frames, or in a bare "a query block must be
        compiled" that named neither the module nor why it ran."""
        (db.parent / "broken.py").write_text("import mandala_ast\n\nLIMIT = 3\nraise RuntimeError('no data here')\n")
        proc = cli("why", str(db), "make_data", "200", "--import", module, cwd=db.parent)
        assert proc.returncode == 2, proc.stderr
        assert f"--import {module!r}: importing it raised RuntimeError: no data here" in proc.stderr
        assert "`if __name__ == '__main__':`" in proc.stderr
        assert 'broken.py", line 4' in proc.stderr and "mandala_ast/cli" not in proc.stderr

    @pytest.mark.parametrize("block", ["run()", "batch()", "query() as q"])
    def test_why_of_a_script_with_top_level_blocks_stores_nothing(self, tmp_path, block):
        """`why --import s.py` of a script whose experiment runs at its top level (the usual
        script) ran the experiment again: every call computed and stored a second time under
        the import name (s.f beside __main__.f), before `why` said anything. The script is now
        read up to its first block, and `why` answers from the ops defined above it."""
        script = tmp_path / "s.py"
        script.write_text("import pathlib\nfrom mandala_ast import Storage, op\n\n@op\ndef f(x):\n"
                          "    pathlib.Path('ran').touch()\n    return x + 1\n\n"
                          "with Storage('s.db').run():\n    y = f(1)\n\n@op\ndef g(x):\n    return x\n\n"
                          "with Storage('s.db').run():\n    z = g(2)\n")
        assert cli("run", "s.py", cwd=tmp_path).returncode == 0
        (tmp_path / "ran").unlink()
        script.write_text(script.read_text().replace(".run():", f".{block}:"))
        proc = cli("why", "s.db", "f", "1", "--import", "s.py", cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout.startswith("hit: __main__.f(x=1)"), proc.stderr
        assert "read s.py up to its first storage block (" in proc.stderr
        assert 's.py, line 9): ops defined after it are not seen' in proc.stderr, proc.stderr
        assert not (tmp_path / "ran").exists()
        assert [line.split()[0] for line in cli("ops", "s.db", cwd=tmp_path).stdout.splitlines()[1:]] == ["__main__.f", "__main__.g"]
        after = cli("why", "s.db", "g", "2", "--import", "s.py", cwd=tmp_path)
        assert after.returncode == 2 and "defines no op 'g'" in after.stderr, after.stderr

    def test_why_of_a_package_module_its_package_imports_reads_it_up_to_its_block(self, tmp_path):
        """`--import pkg.mod` where pkg/__init__.py imports mod, whose block is at its top
        level: importing the package ran into the block, and why failed ("importing it raised
        BlockRefusedError") where `--import pkg/mod.py` read the module up to its block."""
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / "__init__.py").write_text("from .mod import f\n")
        (tmp_path / "pkg" / "mod.py").write_text(
            "from mandala_ast import Storage, op\n\n@op\ndef f(x):\n    return x + 1\n\n"
            "with Storage('s.db').run():\n    f(1)\n")
        assert cli("run", "pkg/mod.py", cwd=tmp_path).returncode == 0
        proc = cli("why", "s.db", "f", "1", "--import", "pkg.mod", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("hit: __main__.f(x=1) is stored"), proc.stdout
        assert 'read pkg.mod up to its first storage block' in proc.stderr and 'mod.py, line 7' in proc.stderr

    def test_why_of_a_script_that_parses_its_command_line_at_its_top_level_answers(self, tmp_path):
        """A script calling argparse at its top level parsed `why`'s own command line on
        import: "unrecognized arguments: why s.db sq 1 --import s.py", its usage, exit 2."""
        (tmp_path / "s.py").write_text(
            "import argparse\nfrom mandala_ast import Storage, op\n\n"
            "parser = argparse.ArgumentParser()\nparser.add_argument('--n', type=int, default=3)\n"
            "args = parser.parse_args()\n\n@op\ndef sq(x):\n    return x * x\n\n"
            "if __name__ == '__main__':\n    with Storage('s.db').run():\n        [sq(i) for i in range(args.n)]\n")
        assert cli("run", "s.py", "--n", "2", cwd=tmp_path).returncode == 0
        proc = cli("why", "s.db", "sq", "1", "--import", "s.py", cwd=tmp_path)
        assert proc.returncode == 0 and proc.stdout.startswith("hit: __main__.sq(x=1) is stored"), proc.stderr
        # A script that needs arguments exits: said as such, naming the module, not a bare usage.
        (tmp_path / "s.py").write_text((tmp_path / "s.py").read_text().replace("default=3", "required=True"))
        proc = cli("why", "s.db", "sq", "1", "--import", "s.py", cwd=tmp_path)
        assert proc.returncode == 2
        assert "--import 's.py': its top level exited (status 2)" in proc.stderr, proc.stderr
        assert "unrecognized arguments" not in proc.stderr

    def test_module_without_the_op(self, db):
        (db.parent / "other.py").write_text("x = 1\n")
        proc = cli("why", str(db), "make_data", "200", "--import", "other.py", cwd=db.parent)
        assert proc.returncode == 2 and "defines no op 'make_data'" in proc.stderr


class TestGraph:
    def test_op_graph_as_dot(self, db, tmp_path):
        out = tmp_path / "g.dot"
        proc = cli("graph", str(db), "fit_ridge", "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        assert out.read_text().startswith("digraph") and "make_data" in out.read_text()

    def test_value_graph_by_id_prefix(self, db, tmp_path):
        rows = json.loads(cli("calls", str(db), "fit_ridge", "--format", "json", "--limit", "1").stdout)
        cid = rows[0]["output"].split()[-1].rstrip(">")
        out = tmp_path / "v.dot"
        proc = cli("graph", str(db), cid[:10], "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        assert "fit_ridge" in out.read_text() and "make_data" in out.read_text()

    def test_bad_suffix_and_unknown_target(self, db, tmp_path):
        assert cli("graph", str(db), "fit_ridge", "-o", str(tmp_path / "g.txt")).returncode == 2
        assert cli("graph", str(db), "nothing", "-o", str(tmp_path / "g.dot")).returncode == 1

    def test_an_id_no_value_has_is_named_as_a_value_id(self, db, tmp_path):
        """`graph DB 00000000` said "no op '00000000'": the digits were meant as a value's id."""
        proc = cli("graph", str(db), "00000000", "-o", str(tmp_path / "g.dot"))
        assert proc.returncode == 1 and "no value whose id starts with 00000000" in proc.stderr, proc.stderr

    @pytest.mark.parametrize("suffix", [".dot", ".svg"])
    def test_a_picture_into_a_missing_directory_makes_it_and_one_that_cannot_be_written_names_it(self, db, tmp_path, suffix):
        """A .dot output went through Path.write_text: a raw "[Errno 2] No such file or
        directory" where Python (storage.draw) makes the directory."""
        out = tmp_path / "new" / f"g{suffix}"
        proc = cli("graph", str(db), "fit_ridge", "-o", str(out))
        assert proc.returncode == 0 and out.stat().st_size > 0, proc.stderr
        (tmp_path / "file").write_text("in the way")
        blocked = tmp_path / "file" / f"g{suffix}"
        proc = cli("graph", str(db), "fit_ridge", "-o", str(blocked))
        assert proc.returncode == 1 and f"cannot save the picture to {blocked}" in proc.stderr, proc.stderr


class TestMaintenance:
    def test_verify_ok(self, db):
        proc = cli("verify", str(db))
        assert proc.returncode == 0 and ": OK (" in proc.stdout

    def test_delete_asks_and_refuses_without_yes(self, db):
        before = snapshot(db)
        proc = cli("delete", str(db), "fit_ridge", "--where", "alpha=100.0", stdin="n\n")
        assert proc.returncode == 1 and "delete 2 call(s)" in proc.stderr
        assert "nothing deleted" in proc.stderr
        assert len(json.loads(cli("calls", str(db), "fit_ridge", "--format", "json").stdout)) == 8
        assert snapshot(db) == before

    def test_delete_yes_prints_the_report_then_gc(self, db):
        proc = cli("delete", str(db), "fit_ridge", "--where", "alpha=100", "--yes")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("deleted 4 calls (2 matched, 2 computed from them)")
        assert len(json.loads(cli("calls", str(db), "fit_ridge", "--format", "json").stdout)) == 6
        gc = cli("gc", str(db))
        assert gc.returncode == 0 and gc.stdout.startswith("removed ")

    def test_delete_needs_a_choice(self, db):
        assert cli("delete", str(db), "fit_ridge", "--yes").returncode == 2

    def test_delete_with_one_column_given_twice_deletes_nothing(self, db):
        """`--where alpha=100 --where alpha=10` (all must hold: no call) deleted the alpha=10
        calls: the second value replaced the first."""
        before = snapshot(db)
        proc = cli("delete", str(db), "fit_ridge", "--where", "alpha=100", "--where", "alpha=10", "--yes")
        assert proc.returncode == 2 and "alpha" in proc.stderr and "Traceback" not in proc.stderr
        assert snapshot(db) == before
        assert cli("calls", str(db), "fit_ridge", "--where", "alpha=100", "--where", "alpha=100").returncode == 0


class TestHelp:
    @pytest.mark.parametrize("command", COMMANDS)
    def test_every_command_has_help_with_an_example(self, command):
        proc = cli(*command.split(), "--help")
        assert proc.returncode == 0
        assert "\nexample:\n  mandala-ast " in proc.stdout

    def test_readme_lists_every_command_with_its_help(self):
        readme = (REPO_ROOT / "README.md").read_text()
        blocks = dict(re.findall(r"### `mandala-ast ([a-z ]+)`\n\n```text\n(.*?)```", readme, re.S))
        assert list(blocks) == COMMANDS
        assert sorted(COMMANDS[:-2] + ["cache"]) == sorted(_parser_commands())
        for command, text in blocks.items():
            assert cli(*command.split(), "--help").stdout == text, f"README's help of {command} is stale"


def _parser_commands() -> list[str]:
    """The commands `mandala-ast --help` lists, one per line under COMMAND."""
    listing = cli("--help").stdout.split("  COMMAND\n")[1].split("\n\n")[0]
    return [line.split()[0] for line in listing.splitlines()]


def test_importing_the_cli_is_light():
    code = "import sys, mandala_ast.cli; print(sorted({'pandas', 'numpy', 'libcst', 'sqlite_utils'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_calls_shows_a_pointer_by_its_name_and_where_finds_it_by_its_name(tmp_path):
    """A ValuePointer argument showed as `<pointer 8 B …>`, and `--where data=imagenet`
    matched no call: a pointer is stored by its name alone, which neither used."""
    (tmp_path / "ptr.py").write_text(
        "from mandala_ast import Storage, ValuePointer, op\n@op\ndef rows(data: list) -> int:\n    return len(data)\n"
        "with Storage('p.db').run():\n    rows(ValuePointer('imagenet', [1, 2, 3]))\n    rows(ValuePointer('mnist', [1]))\n")
    assert cli("run", "ptr.py", cwd=tmp_path).returncode == 0
    found = cli("calls", "p.db", "rows", "--where", "data=imagenet", "--format", "json", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert [(r["data"][:25], r["output"]) for r in json.loads(found.stdout)] == [("<ValuePointer 'imagenet' ", 3)]


def _strict_json(text: str):
    """JSON as RFC 8259 (and jq, JavaScript, Go) reads it: no NaN or Infinity tokens."""
    def refuse(token: str):
        raise ValueError(f"{token} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_calls_as_json_with_a_nan_or_infinite_float_is_valid_json_that_float_reads_back(tmp_path):
    # json.dumps wrote the bare tokens NaN and Infinity, which no JSON parser but Python's
    # accepts: `mandala-ast calls ... --format json | jq` (or JSON.parse) failed on the row.
    (tmp_path / "s.py").write_text(
        "from mandala_ast import Storage, op\n\n@op\ndef scale(x: float) -> float:\n    return x * 2\n\n"
        "with Storage('s.db').run():\n    for x in [float('nan'), float('inf'), float('-inf'), 1.5]:\n"
        "        scale(x)\n"
    )
    assert cli("run", "s.py", cwd=tmp_path).returncode == 0
    proc = cli("calls", "s.db", "scale", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = _strict_json(proc.stdout)
    assert [(row["x"], row["output"]) for row in rows] == [
        ("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), (1.5, 3.0)]
    assert [float(row["x"]) for row in rows[1:]] == [float("inf"), float("-inf"), 1.5]


def test_where_naming_a_star_parameter_without_its_star_points_at_its_column(tmp_path):
    # `--where rest=(2,)` for `f(a, *rest, **opts)` advised `--where '**rest=(2,)'`, the column
    # of a keyword argument named rest, which no call has: the *-parameter's column is *rest.
    (tmp_path / "s.py").write_text("from mandala_ast import Storage, op\n\n@op\ndef f(a, *rest, **opts):\n"
                                   "    return a + sum(rest)\n\nwith Storage('s.db').run():\n    f(1, 2)\n")
    assert cli("run", "s.py", cwd=tmp_path).returncode == 0
    proc = cli("calls", "s.db", "f", "--where", "rest=(2,)", cwd=tmp_path)
    assert proc.returncode == 2
    assert "the *-parameter rest is the column *rest: --where '*rest=(2,)'" in proc.stderr, proc.stderr
    assert cli("calls", "s.db", "f", "--where", "*rest=(2,)", cwd=tmp_path).stdout.count("\n") == 2
