"""The flat export (`mandala-ast export`) and browsing it in Datasette (`mandala-ast browse`),
through the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlite_utils
from disks import tmpfs
from test_cli_storage_commands import EXE, built, cli, db, release_db, snapshot  # noqa: F401  (fixtures)

#: This machine's name as export's temporary files carry it (letters, digits, - and _).
HOST = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname()) or "host"


@pytest.fixture
def flat(db, tmp_path) -> sqlite_utils.Database:
    out = tmp_path / "flat.db"
    proc = cli("export", str(db), str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{out}: 3 op tables, 18 calls, 19 values"
    return sqlite_utils.Database(out)


class TestExport:
    def test_tables_views_and_rows(self, flat):
        assert set(flat.table_names()) >= {"fit_ridge", "make_data", "r2_score", "values", "ops", "edges", "call_index"}
        assert flat.view_names() == ["calls"]
        assert [flat[name].count for name in ("fit_ridge", "make_data", "r2_score")] == [8, 2, 8]

    def test_op_table_columns(self, flat):
        table = flat["fit_ridge"]
        assert table.pks == ["call"]
        assert list(table.columns_dict)[:5] == ["call", "X", "y", "alpha", "output"]
        assert table.columns_dict["alpha"] is float
        assert {(fk.column, fk.other_table, fk.other_column) for fk in table.foreign_keys} == {
            ("X", "values", "id"), ("y", "values", "id"), ("output", "values", "id")}
        row = next(table.rows_where("alpha = ?", [0.1]))
        assert row["X_type"] == "ndarray float64 (200, 20)" and row["version"] == 0
        assert flat["values"].get(row["X"])["type"] == "ndarray float64 (200, 20)"

    def test_scalars_are_values(self, flat):
        assert sorted(r["n"] for r in flat["make_data"].rows) == [200, 2000]
        scores = [r["output"] for r in flat["r2_score"].rows]
        assert all(isinstance(score, float) and 0.8 < score < 1 for score in scores)

    def test_calls_view_links_producers_to_consumers(self, flat):
        links = list(flat.query("SELECT * FROM calls WHERE op_table = 'fit_ridge' AND input = 'X'"))
        assert len(links) == 8
        assert {(link["producer_op"], link["producer_table"], link["output_index"]) for link in links} == {
            ("__main__.make_data", "make_data", 0)}
        raw = list(flat.query("SELECT * FROM calls WHERE input = 'alpha'"))
        assert raw and all(row["producer_call"] is None for row in raw)
        assert flat["values"].get(raw[0]["value"])["type"] == "float"

    def test_ops_table_has_source_searchable(self, flat):
        ops = {row["table_name"]: row for row in flat["ops"].rows}
        assert "np.linalg.solve" in ops["fit_ridge"]["source"]
        assert [row["name"] for row in flat["ops"].search("linalg")] == ["__main__.fit_ridge"]

    def test_two_versions_two_tables_with_a_diff(self, db, tmp_path):
        script = db.parent / "quickstart.py"
        script.write_text(script.read_text().replace("COMPUTED.append(\"r2_score\")", "COMPUTED.append('r2')"))
        assert cli("run", "quickstart.py", cwd=db.parent).returncode == 0
        out = tmp_path / "two.db"
        assert cli("export", str(db), str(out)).returncode == 0
        flat = sqlite_utils.Database(out)
        assert {"r2_score_v1", "r2_score_v2"} <= set(flat.table_names())
        diff = flat["ops"].get("r2_score_v2")["diff"]
        assert "-    COMPUTED.append(\"r2_score\")" in diff and "+    COMPUTED.append('r2')" in diff

    def test_a_renamed_op_with_one_version_is_one_unnumbered_table(self, tmp_path):
        """The rename's alias version (it shares the old version's calls, and is no table)
        was counted: the op's only table was called `increment_v1`, with no `_v2` anywhere."""
        first = "from mandala_ast import Storage, op\n@op\ndef inc(x: int) -> int:\n    return x + 1\n"
        then = ("from mandala_ast import Storage, op\n@op\ndef increment(x: int) -> int:\n    return x + 1\n"
                "Storage('s.db').rename_op('__main__.inc', increment)\n")
        (tmp_path / "a.py").write_text(first + "with Storage('s.db').run():\n    inc(1)\n")
        (tmp_path / "b.py").write_text(then + "with Storage('s.db').run():\n    increment(2)\n")
        for script in ("a.py", "b.py"):
            assert cli("run", script, cwd=tmp_path).returncode == 0
        assert cli("export", "s.db", "flat.db", cwd=tmp_path).returncode == 0
        flat = sqlite_utils.Database(tmp_path / "flat.db")
        assert "increment" in flat.table_names() and flat["increment"].count == 2
        assert [row["table_name"] for row in flat["ops"].rows] == ["increment"]

    def test_arguments_named_like_the_tables_own_columns_keep_their_values(self, release_db, tmp_path):
        """An op taking `call`, `version`, `output`, `created_at`: its table's key `call` held the
        argument (two calls with call=1 would have been one row), and the arguments `version`,
        `output` and `created_at` were replaced by the version, the output and the time."""
        assert cli("export", str(release_db), str(tmp_path / "flat.db")).returncode == 0
        flat = sqlite_utils.Database(tmp_path / "flat.db")
        table = flat["release"]
        assert table.pks == ["call_"]
        rows = list(table.rows)
        assert [(r["version"], r["output"], r["call"], r["created_at"], r["output_type"], r["output_"], r["version_"])
                for r in rows] == [(3, "out.csv", 7, 2020, "csv", 307, 0), (4, "out.npy", 8, 2021, "npy", 408, 0)]
        links = list(flat.query("SELECT op_table, input FROM calls WHERE op_table = 'release' ORDER BY input"))
        assert {link["input"] for link in links} == {"version", "output", "call", "created_at", "output_type"}

    def test_existing_output_needs_force(self, db, tmp_path):
        out = tmp_path / "flat.db"
        out.write_text("mine")
        proc = cli("export", str(db), str(out))
        assert proc.returncode == 2 and "--force" in proc.stderr and out.read_text() == "mine"
        assert cli("export", str(db), str(out), "--force").returncode == 0
        assert "fit_ridge" in sqlite_utils.Database(out).table_names()

    def test_export_onto_the_storage_itself_with_force_is_refused_and_keeps_its_results(self, db, tmp_path):
        """`export results.db results.db --force` replaced the storage by its own flat copy:
        every stored result was gone (and the next `ops` called the file another program's)."""
        before = cli("ops", str(db)).stdout
        proc = cli("export", str(db), str(db), "--force")
        assert proc.returncode == 1 and str(db) in proc.stderr and "storage" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and cli("ops", str(db)).stdout == before

    def test_export_over_another_storage_with_force_is_refused(self, db, tmp_path):
        other = tmp_path / "other.db"
        shutil.copy(db, other)
        proc = cli("export", str(db), str(other), "--force")
        assert proc.returncode == 1 and f"{other} is a mandala_ast storage" in proc.stderr, proc.stderr
        assert cli("ops", str(other)).stdout == cli("ops", str(db)).stdout

    @pytest.mark.parametrize("where", ["missing/dir/flat.db", "file/flat.db"])
    def test_an_output_in_a_directory_that_cannot_hold_it_is_an_error_naming_it(self, db, tmp_path, where):
        (tmp_path / "file").write_text("not a directory")
        out = tmp_path / where
        proc = cli("export", str(db), str(out))
        assert proc.returncode == 1 and str(out) in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and not out.exists()

    def test_a_full_disk_is_an_error_naming_the_output_and_leaves_nothing_behind(self, db, tmp_path):
        with tmpfs(tmp_path / "disk", "12k") as disk:
            out = disk / "flat.db"
            proc = cli("export", str(db), str(out))
            assert proc.returncode == 1 and f"cannot write {out}" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr and list(disk.iterdir()) == []

    @pytest.mark.skipif(os.name != "posix", reason="tells a finished process by its pid")
    def test_the_temporary_files_an_export_killed_midway_left_are_removed_by_the_next_export(self, db, tmp_path):
        # A kill -9 (an out-of-memory kill) left them, hidden and as large as the export had
        # got, for good. Those of an export still running (another process's) stay.
        ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                               capture_output=True, text=True, check=True)
        killed = [tmp_path / f".flat.db.{HOST}.{ended.stdout.strip()}.tmp{end}" for end in ("", "-journal")]
        for left in killed:
            left.write_bytes(b"partial" * 1000)
        running = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        try:
            busy = tmp_path / f".flat.db.{HOST}.{running.pid}.tmp"
            busy.write_bytes(b"in progress")
            assert cli("export", str(db), str(tmp_path / "flat.db")).returncode == 0
            assert not any(left.exists() for left in killed) and busy.exists()
        finally:
            running.communicate(b"")

    @pytest.mark.skipif(os.name != "posix", reason="tells a finished process by its pid")
    def test_an_export_on_a_shared_file_system_leaves_other_hosts_exports_alone(self, db, tmp_path):
        """Two machines export into one shared directory: the other machine's temporary file
        (named, by an earlier version, with its pid alone) was removed because no process here
        has that pid, and its export failed. Files of other hosts go only once a day old."""
        ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                               capture_output=True, text=True, check=True)
        pid = ended.stdout.strip()  # running on no host here: a pid means nothing elsewhere
        theirs = [tmp_path / f".flat.db.{pid}.tmp", tmp_path / f".flat.db.node-b.{pid}.tmp-journal"]
        stale = [tmp_path / f".flat.db.{pid}.tmp-journal", tmp_path / f".flat.db.node-b.{pid}.tmp"]
        for file in theirs + stale:
            file.write_bytes(b"partial")
        two_days_ago = time.time() - 2 * 86400
        for file in stale:
            os.utime(file, (two_days_ago, two_days_ago))
        assert cli("export", str(db), str(tmp_path / "flat.db")).returncode == 0
        assert all(file.exists() for file in theirs) and not any(file.exists() for file in stale)

    def test_an_output_name_of_255_characters_exports(self, db, tmp_path):
        # The temporary file, named .<out>.<host>.<pid>.tmp, was longer than the file system
        # allows a name to be: "File name too long", for an output name that is valid.
        out = tmp_path / ("f" * 252 + ".db")
        proc = cli("export", str(db), str(out))
        assert proc.returncode == 0, proc.stderr
        assert sqlite_utils.Database(out)["make_data"].count == 2
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    @pytest.mark.skipif(os.name != "posix", reason="tells a finished process by its pid")
    def test_the_temporary_files_a_killed_export_to_a_long_name_left_are_removed_by_the_next_export(self, db, tmp_path):
        # The temporary file of a 255-character output is named otherwise than the output
        # (cut short): the next export must still know it as its own to remove it.
        out = tmp_path / ("f" * 252 + ".db")
        ended = subprocess.run(
            [sys.executable, "-c", f"from pathlib import Path; from mandala_ast.export_files import temp_path; "
                                   f"print(temp_path(Path({str(out)!r})))"],
            capture_output=True, text=True, check=True)
        killed = [Path(ended.stdout.strip() + end) for end in ("", "-journal")]
        for left in killed:
            assert left.parent == tmp_path and len(left.name.encode()) <= 255
            left.write_bytes(b"partial" * 1000)
        assert cli("export", str(db), str(out)).returncode == 0
        assert not any(left.exists() for left in killed)

    def test_never_unpickles(self, tmp_path, monkeypatch):
        """An untrusted storage whose pickle would run code when loaded: export describes it."""
        (tmp_path / "evilmod.py").write_text(textwrap.dedent(f"""
            from pathlib import Path

            def touch():
                Path({str(tmp_path / 'RAN')!r}).write_text("code ran")

            class Payload:
                def __reduce__(self):
                    return touch, ()
        """))
        (tmp_path / "evil.py").write_text(textwrap.dedent("""
            from mandala_ast import Storage, op
            from evilmod import Payload

            @op
            def make() -> Payload:
                return Payload()

            with Storage("evil.db").run():
                make()
        """))
        assert subprocess.run([sys.executable, "evil.py"], cwd=tmp_path).returncode == 0
        (tmp_path / "RAN").unlink(missing_ok=True)  # storing checks a round trip: it ran then
        # evilmod importable, unpickling would run it. Prepended, and put back after: the
        # PYTHONPATH a scratch copy's tests run with (benchmarks/mutants.py) must stay theirs.
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
        proc = cli("export", "evil.db", "flat.db", cwd=tmp_path)
        calls = cli("calls", "evil.db", "make", "--format", "json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert not (tmp_path / "RAN").exists()
        row = next(sqlite_utils.Database(tmp_path / "flat.db")["make"].rows)
        assert row["output_type"].startswith("evilmod.touch ")  # what it would call, named
        assert json.loads(calls.stdout)[0]["output"].startswith("<evilmod.touch ")


    def test_a_nan_exports_as_nan_not_as_a_missing_value(self, tmp_path):
        """SQLite stores a NaN float as NULL: the flat file showed a computed NaN as no value."""
        import math

        from mandala_ast import Storage, op

        @op
        def ratio(a: float, b: float) -> float:
            return a / b if b else math.nan

        with Storage(tmp_path / "ratios.db").run():
            ratio(ratio(1.0, 0.0), 2.0)
            ratio(-0.0, 2.0)
        proc = cli("export", "ratios.db", "flat.db", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        flat = sqlite_utils.Database(tmp_path / "flat.db")
        rows = {(row["a"], row["b"]): row["output"] for row in flat["ratio"].rows}
        assert rows == {(1.0, 0.0): "NaN", ("NaN", 2.0): "NaN", (0.0, 2.0): -0.0}
        assert all(math.isnan(float(v)) for v in rows.values() if v != -0.0)
        # The values table has no type affinity: a zero keeps its sign there (op tables'
        # float columns cannot: SQLite stores an integral REAL as an integer).
        values = [row["value"] for row in flat["values"].rows if row["type"] == "float"]
        assert "NaN" in values and any(v == 0 and math.copysign(1, v) < 0 for v in values if v != "NaN")

    def test_the_calls_view_names_the_producers_provenance_names_through_elements_and_built_lists(self, tmp_path):
        """The view's producer of `double(p)` for an element p of a stored MList was an earlier
        `double` call that happened to return an equal value (provenance: the element's
        __item__ call), and a producer through a list built by hand or an element was a call
        id the file held nowhere: no op, no way on to the calls behind it."""
        (tmp_path / "flow.py").write_text(textwrap.dedent("""
            from mandala_ast import MList, Storage, op

            @op
            def double(x):
                return 2 * x

            @op
            def total(xs):
                return sum(xs)

            @op
            def parts(n) -> MList[int]:
                return [i * 10 for i in range(n)]

            storage = Storage("flow.db")
            with storage.run():
                t = total([double(x) for x in range(2)])
                for p in parts(2):
                    double(p)
            for op_ in (double, total):
                storage.provenance(op_).to_csv(f"{op_.__name__}.csv", index=False)
        """))
        proc = cli("run", "flow.py", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert cli("export", "flow.db", "flat.db", cwd=tmp_path).returncode == 0
        flat = sqlite_utils.Database(tmp_path / "flat.db")
        import csv

        for name in ("double", "total"):
            with open(tmp_path / f"{name}.csv", newline="") as file:
                expected = {(r["call"], r["input"], r["producer_call"] or None, r["producer_op"] or None)
                            for r in csv.DictReader(file)}
            view = {(r["call"], r["input"], r["producer_call"], r["producer_op"])
                    for r in flat.query("SELECT * FROM calls WHERE op_table = ?", [name])}
            assert view == expected
        # Through the element's __item__ call, on to the call of parts that returned the list.
        item = next(flat.query("SELECT producer_call FROM calls WHERE producer_op = 'mandala_ast.__item__'"))
        upstream = flat.query("SELECT producer_op FROM calls WHERE call = ? AND input = 'struct'", [item["producer_call"]])
        assert [row["producer_op"] for row in upstream] == ["__main__.parts"]

    def test_a_producer_deleted_without_its_dependents_is_named_a_deleted_call_as_provenance_names_it(self, tmp_path):
        """The view named no op for a producer `delete_calls(..., dependents=False)` removed,
        where storage.provenance names it `<deleted call>`: the same as a raw input."""
        (tmp_path / "d.py").write_text(textwrap.dedent("""
            import json
            from mandala_ast import Storage, op

            @op
            def inc(x: int) -> int:
                return x + 1

            storage = Storage("d.db")
            with storage.run():
                y = inc(inc(1))
            first = storage.df(inc).sort_values("x")["call"].iloc[0]
            storage.delete_calls([first], dependents=False)
            rows = storage.provenance(inc)[["input", "producer_call", "producer_op"]].values.tolist()
            print(json.dumps([first, rows]))
        """))
        proc = cli("run", "d.py", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        first, rows = json.loads(proc.stdout)
        assert rows == [["x", first, "<deleted call>"]]
        assert cli("export", "d.db", "flat.db", cwd=tmp_path).returncode == 0
        flat = sqlite_utils.Database(tmp_path / "flat.db")
        view = [[r["input"], r["producer_call"], r["producer_op"]] for r in flat.query("SELECT * FROM calls")]
        assert view == rows

    def test_ops_whose_names_differ_only_in_case_or_are_sqlites_own_export_each_to_its_table(self, tmp_path):
        """SQLite's table names ignore case: ops `f` and `F` (or `Ops` beside the ops table)
        failed the export, "table "f" already exists", and `sqlite_stat1` is SQLite's own."""
        (tmp_path / "names.py").write_text(textwrap.dedent("""
            from mandala_ast import Storage, op

            @op
            def f(x):
                return x + 1

            @op
            def F(x):
                return x * 100

            @op
            def Ops(x):
                return -x

            @op
            def sqlite_stat1(x):
                return x * 2

            with Storage("names.db").run():
                f(1), F(1), Ops(1), sqlite_stat1(1)
        """))
        assert cli("run", "names.py", cwd=tmp_path).returncode == 0
        proc = cli("export", "names.db", "flat.db", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        flat = sqlite_utils.Database(tmp_path / "flat.db")
        tables = {row["name"]: row["table_name"] for row in flat["ops"].rows}
        outputs = {name: [row["output"] for row in flat[table].rows] for name, table in tables.items()}
        assert outputs == {"__main__.f": [2], "__main__.F": [100], "__main__.Ops": [-1], "__main__.sqlite_stat1": [2]}
        assert len({table.lower() for table in tables.values()}) == 4

    def test_arguments_whose_names_differ_only_in_case_export_each_to_its_column(self, tmp_path):
        """`def g(x, X)`: SQLite's column names ignore case, and the export failed with
        "duplicate column name: X"; so did `A_type` beside the type column of an array `a`."""
        (tmp_path / "cols.py").write_text(textwrap.dedent("""
            from mandala_ast import Storage, op

            @op
            def g(x, X):
                return x - X

            @op
            def h(a, A_type):
                return len(a)

            with Storage("cols.db").run():
                g(1, 10), h([1, 2], "t")
        """))
        assert cli("run", "cols.py", cwd=tmp_path).returncode == 0
        proc = cli("export", "cols.db", "flat.db", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        flat = sqlite_utils.Database(tmp_path / "flat.db")
        (g,) = flat["g"].rows
        assert (g["x"], g["X_2"], g["output"]) == (1, 10, -9)
        (h,) = flat["h"].rows
        assert (h["A_type"], h["a_type_2"], h["output"]) == ("t", "list 20 B", 2)  # the argument keeps its name

    def test_a_flat_export_given_where_a_storage_goes_is_named_an_export(self, db, tmp_path):
        """`mandala-ast ops flat.db` said "a SQLite database of another program (tables: ...)
        ... Give Storage a new file name", of the file mandala-ast export had just written."""
        assert cli("export", str(db), str(tmp_path / "flat.db")).returncode == 0
        before = snapshot(tmp_path / "flat.db")
        proc = cli("ops", str(tmp_path / "flat.db"))
        assert proc.returncode == 1
        assert "flat.db is a flat export (written by `mandala-ast export`), not a storage" in proc.stderr, proc.stderr
        assert "another program" not in proc.stderr and snapshot(tmp_path / "flat.db") == before

    def test_text_that_is_no_utf8_a_file_name_decoded_by_os_exports_escaped(self, tmp_path):
        """Python text may hold lone surrogates (os.fsdecode of a name that is not UTF-8),
        which SQLite text cannot: the export crashed with a raw UnicodeEncodeError."""
        from mandala_ast import Storage, op

        @op
        def stem(name: str) -> str:
            return name.rsplit(".", 1)[0]

        name = os.fsdecode(b"caf\xe9.csv")  # 'caf\udce9.csv'
        with Storage(tmp_path / "names.db").run():
            stem(name)
            stem("plain.csv")
        proc = cli("export", "names.db", "flat.db", cwd=tmp_path)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        rows = sorted(sqlite_utils.Database(tmp_path / "flat.db")["stem"].rows, key=lambda row: row["name"])
        assert [(row["name"], row["output"]) for row in rows] == [("caf\\udce9.csv", "caf\\udce9"), ("plain.csv", "plain")]
        values = {row["value"] for row in sqlite_utils.Database(tmp_path / "flat.db")["values"].rows}
        assert "caf\\udce9.csv" in values  # an input: the edges name it


class TestBrowse:
    def test_serves_op_tables_as_json_and_html(self, db, tmp_path):
        port = _free_port()
        server = subprocess.Popen([str(EXE), "browse", str(db), "--port", str(port)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}/quickstart/fit_ridge"
            rows = json.loads(_get(f"{base}.json?_shape=array", server))
            assert len(rows) == 8 and {row["alpha"] for row in rows} == {0.1, 1.0, 10.0, 100.0}
            html = _get(base, server)
            assert "<html" in html.lower() and "ndarray float64 (200, 20)" in html
        finally:
            _stop(server)
        assert server.returncode == 0, server.stderr.read()

    def test_the_printed_address_of_a_storage_whose_name_has_a_space_opens(self, db, tmp_path):
        """`serving on http://127.0.0.1:PORT/my results` (a space): the link a terminal makes
        of it stops at the space."""
        spaced = tmp_path / "my results.db"
        shutil.copy(db, spaced)
        server = subprocess.Popen([str(EXE), "browse", str(spaced), "--port", str(_free_port())], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            lines = [server.stdout.readline() for _ in range(2)]
            url = lines[1].split()[2]
            assert url.endswith("/my%20results"), lines
            assert "<title>my results" in _get(url, server)
        finally:
            _stop(server)

    def test_browse_on_a_port_in_use_is_an_error_naming_the_port(self, db):
        """It printed "serving on http://127.0.0.1:PORT" and then exited with Datasette's
        status 3 after uvicorn's bind error: neither the documented status nor true."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            proc = subprocess.run([str(EXE), "browse", str(db), "--port", str(port)], capture_output=True,
                                  text=True, timeout=120)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert f"127.0.0.1:{port}" in proc.stderr and "--port" in proc.stderr and "serving" not in proc.stdout
        for bad in ("99999", "-1", "http"):
            proc = subprocess.run([str(EXE), "browse", str(db), "--port", bad], capture_output=True, text=True, timeout=60)
            assert proc.returncode == 2 and "expected a port number" in proc.stderr and "Traceback" not in proc.stderr


def _free_port() -> int:
    from mandala_ast.export import free_port

    return free_port()


def _get(url: str, server: subprocess.Popen, wait: float = 60.0) -> str:
    """The page at ``url`` once the server answers (bounded wait)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no answer from {url}: {server.stderr.read() if server.poll() is not None else 'timeout'}") from None
            time.sleep(0.2)


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM, as a user's kill; the whole session (Datasette too) if that did not end it."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.mark.parametrize("command, missing", [("browse", "datasette"), ("export", "sqlite_utils")])
def test_without_the_browse_extra_says_how_to_install(db, tmp_path, command, missing):
    """As if the extra were not installed: the module cannot be imported."""
    args = [command, str(db)] + ([str(tmp_path / "out.db")] if command == "export" else [])
    code = f"import sys; sys.modules[{missing!r}] = None\nfrom mandala_ast.cli import main\nsys.exit(main({args!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "pip install 'mandala_ast[browse]'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.db").exists()
