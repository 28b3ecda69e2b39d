"""Files an op body reads are dependencies of its calls (file_deps.py)."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mandala_ast import Storage, op

RUNS: list[str] = []


@op
def count_rows(path: str) -> int:
    RUNS.append("count_rows")
    return len(pd.read_csv(path))


@op
def first_line(path: str) -> str:
    RUNS.append("first_line")
    with open(path) as handle:
        return handle.readline().strip()


@op
def text_length(path: str) -> int:
    RUNS.append("text_length")
    return len(Path(path).read_text())


@op
def array_sum(path: str) -> float:
    RUNS.append("array_sum")
    return float(np.load(path).sum())


@op
def raw_bytes(path: str) -> int:
    RUNS.append("raw_bytes")
    fd = os.open(path, os.O_RDONLY)
    try:
        return len(os.read(fd, 1 << 20))
    finally:
        os.close(fd)


@op(track_files=False)
def untracked_length(path: str) -> int:
    RUNS.append("untracked_length")
    return len(Path(path).read_text())


@op
def write_report(path: str, text: str) -> int:
    RUNS.append("write_report")
    return Path(path).write_text(text)


@op
def scratch_round_trip(path: str, text: str) -> str:
    RUNS.append("scratch_round_trip")
    with open(path, "w+") as handle:  # emptied on opening: nothing read from before
        handle.write(text)
        handle.seek(0)
        return handle.read()


@op
def summary(path: str) -> int:
    RUNS.append("summary")
    return count_rows(path) * 10


SHARED_POOL = ThreadPoolExecutor(2)  # its threads outlive any one op body
#: Where rows_of reads: the outer ops' arguments name no file, so only the inner calls'
#: dependencies can tell them a file changed.
FOLDER: dict[str, str] = {}


@op
def rows_of(name: str) -> int:
    RUNS.append("rows_of")
    return len(pd.read_csv(os.path.join(FOLDER["path"], name)))


@op
def rows_in_shared_pool(names: tuple) -> int:
    RUNS.append("rows_in_shared_pool")
    return sum(SHARED_POOL.map(rows_of, names))


@op
def rows_in_new_pool(names: tuple) -> int:
    RUNS.append("rows_in_new_pool")
    with ThreadPoolExecutor(2) as pool:
        return sum(pool.map(rows_of, names))


@op
def parquet_rows(path: str) -> int:
    """pyarrow reads the file from C++: Python's open never sees it."""
    RUNS.append("parquet_rows")
    return len(pd.read_parquet(path))


def _read_fixed_parquet() -> pd.DataFrame:
    return pd.read_parquet("fixed.parquet")  # a literal path, relative to the working directory


@op
def fixed_parquet_rows() -> int:
    RUNS.append("fixed_parquet_rows")
    return len(_read_fixed_parquet())


@op
def optional_config(path: str) -> str:
    RUNS.append("optional_config")
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return "default"


@op
def shard_texts(folder: str) -> list:
    RUNS.append("shard_texts")
    return sorted(Path(folder, name).read_text() for name in os.listdir(folder))


@op
def csv_names(folder: str) -> list:
    RUNS.append("csv_names")
    return sorted(p.name for p in Path(folder).glob("*.csv"))


@op
def walked_sizes(folder: str) -> int:
    RUNS.append("walked_sizes")
    return sum(len(files) for _, _, files in os.walk(folder))


@op
def read_in(folder: str, name: str) -> str:
    RUNS.append("read_in")
    before = os.getcwd()
    os.chdir(folder)  # a relative name, opened in another directory (contextlib.chdir: 3.11+)
    try:
        return Path(name).read_text()
    finally:
        os.chdir(before)


@pytest.fixture(autouse=True)
def _clear_runs():
    RUNS.clear()


@pytest.fixture
def csvs(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x,y\n1,2\n")
    b.write_text("x,y\n5,6\n7,8\n")
    return a, b


def _run(storage: Storage, *calls) -> list:
    with storage.run():
        return [fn(*args) for fn, *args in calls]


def _edit(path: Path, text: str) -> None:
    """Change content and stat (a same-size edit within one mtime tick is another story)."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_editing_a_csv_recomputes_exactly_the_calls_that_read_it(tmp_path, csvs):
    a, b = csvs
    calls = [(count_rows, str(a)), (count_rows, str(b)), (first_line, str(a)), (text_length, str(b))]
    assert _run(Storage(tmp_path / "s.db"), *calls) == [1, 2, "x,y", 12]
    RUNS.clear()
    _edit(a, "x,y\n1,2\n3,4\n9,9\n")
    storage = Storage(tmp_path / "s.db")
    why = str(storage.why(count_rows, str(a)))
    assert why.startswith("miss") and f"file {a}" in why
    assert "hit" in str(storage.why(count_rows, str(b)))
    assert _run(storage, *calls) == [3, 2, "x,y", 12]
    assert sorted(RUNS) == ["count_rows", "first_line"]


def test_touching_a_file_without_changing_it_recomputes_nothing(tmp_path, csvs):
    a, _ = csvs
    storage = Storage(tmp_path / "s.db")
    _run(storage, (count_rows, str(a)))
    _edit(a, a.read_text())  # same content, new mtime
    assert _run(storage, (count_rows, str(a))) == [1]
    assert _run(Storage(tmp_path / "s.db"), (count_rows, str(a))) == [1]
    assert RUNS == ["count_rows"]


def test_the_same_storage_notices_an_edit_between_blocks(tmp_path, csvs):
    a, _ = csvs
    storage = Storage(tmp_path / "s.db")
    _run(storage, (first_line, str(a)))
    _edit(a, "z\n")
    assert _run(storage, (first_line, str(a))) == ["z"]
    assert RUNS == ["first_line", "first_line"]


def test_numpy_load_and_os_open_are_seen(tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.arange(4.0))
    storage = Storage(tmp_path / "s.db")
    _run(storage, (array_sum, str(path)), (raw_bytes, str(path)))
    np.save(path, np.arange(5.0))
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000))
    assert _run(storage, (array_sum, str(path)), (raw_bytes, str(path)))[0] == 10.0
    assert RUNS == ["array_sum", "raw_bytes", "array_sum", "raw_bytes"]


def test_track_files_false_ignores_the_file(tmp_path, csvs):
    a, _ = csvs
    storage = Storage(tmp_path / "s.db")
    _run(storage, (untracked_length, str(a)))
    _edit(a, "changed\n")
    assert _run(storage, (untracked_length, str(a))) == [8]  # stale on purpose
    assert RUNS == ["untracked_length"]


def test_track_files_false_added_later_holds_for_the_calls_stored_before_it(tmp_path, csvs):
    # They kept the file as a dependency: an edit recomputed them once more.
    a, _ = csvs
    _run(Storage(tmp_path / "s.db"), (op(untracked_length.fn), str(a)))
    _edit(a, "changed\n")
    assert _run(Storage(tmp_path / "s.db"), (op(track_files=False)(untracked_length.fn), str(a))) == [8]  # as asked
    assert RUNS == ["untracked_length"]


def _dependency_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM dep_sets")}


def test_written_files_stored_values_and_libraries_are_not_dependencies(tmp_path):
    storage = Storage(tmp_path / "s.db")
    _run(storage, (write_report, str(tmp_path / "out.txt"), "hello"))
    _run(storage, (scratch_round_trip, str(tmp_path / "scratch.txt"), "hello"))
    big = tmp_path / "big.csv"
    pd.DataFrame({"x": range(300_000)}).to_csv(big, index=False)
    _run(storage, (count_rows, str(big)))  # imports pandas modules, reads big.csv
    assert _dependency_names(storage.path) == {f"<file>:{big}"}


def test_an_op_calling_an_op_that_reads_a_file_depends_on_the_file(tmp_path, csvs):
    a, _ = csvs
    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (summary, str(a))) == [10]
    _edit(a, "x,y\n1,2\n3,4\n")
    assert _run(Storage(tmp_path / "s.db"), (summary, str(a))) == [20]
    assert RUNS == ["summary", "count_rows", "summary", "count_rows"]


@pytest.mark.parametrize("outer", [rows_in_shared_pool, rows_in_new_pool])
def test_an_op_mapping_a_file_reading_op_over_a_thread_pool_depends_on_the_files(tmp_path, csvs, outer, monkeypatch):
    """The inner calls run in pool threads, not in the outer body's thread: what they depend
    on (here the files rows_of reads) must still reach the outer call."""
    monkeypatch.setitem(FOLDER, "path", str(tmp_path))
    names = tuple(path.name for path in csvs)
    assert _run(Storage(tmp_path / "s.db"), (outer, names)) == [3]
    RUNS.clear()
    assert _run(Storage(tmp_path / "s.db"), (outer, names)) == [3] and RUNS == []
    _edit(csvs[0], "x,y\n1,2\n3,4\n")
    assert _run(Storage(tmp_path / "s.db"), (outer, names)) == [4]
    assert sorted(RUNS) == [outer.__name__, "rows_of"]


def test_editing_a_parquet_file_read_from_c_recomputes_the_op_that_read_it(tmp_path):
    """A reader in C or C++ (pyarrow, polars, HDF5) opens files without Python's open: the file
    an argument names was no dependency, and a changed file gave the stale result."""
    path = tmp_path / "data.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    assert _run(Storage(tmp_path / "s.db"), (parquet_rows, str(path))) == [2]
    assert _run(Storage(tmp_path / "s.db"), (parquet_rows, str(path))) == [2] and RUNS == ["parquet_rows"]
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(path)
    assert _run(Storage(tmp_path / "s.db"), (parquet_rows, str(path))) == [3]


def test_editing_a_parquet_file_a_helper_names_by_a_literal_path_recomputes_the_op(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"a": [1, 2]}).to_parquet("fixed.parquet")
    assert _run(Storage(tmp_path / "s.db"), (fixed_parquet_rows,)) == [2]
    assert _run(Storage(tmp_path / "s.db"), (fixed_parquet_rows,)) == [2] and RUNS == ["fixed_parquet_rows"]
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet("fixed.parquet")
    assert _run(Storage(tmp_path / "s.db"), (fixed_parquet_rows,)) == [3]


#: Paths built at module level: what a C reader opens through them is named in no string of
#: the op's code and by no argument.
BUILT_STR, BUILT_PATH = os.path.join("built", "rows.parquet"), Path("built") / "rows.parquet"


@op
def built_str_rows() -> int:
    RUNS.append("built_str_rows")
    return len(pd.read_parquet(BUILT_STR))


@op
def built_path_rows() -> int:
    RUNS.append("built_path_rows")
    return len(pd.read_parquet(BUILT_PATH))


@pytest.mark.parametrize("read", [built_str_rows, built_path_rows], ids=["str", "Path"])
def test_editing_a_parquet_file_named_by_a_module_level_path_recomputes_the_op(tmp_path, monkeypatch, read):
    """``DATA = os.path.join(ROOT, "rows.parquet")`` at module level, read from C++ by pyarrow:
    Python's open never saw the file, and its name was in no string of the op's code and no
    argument, so a changed file gave the stale result."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "built").mkdir()
    pd.DataFrame({"a": [1, 2]}).to_parquet(BUILT_STR)
    assert _run(Storage(tmp_path / "s.db"), (read,)) == [2]
    assert _run(Storage(tmp_path / "s.db"), (read,)) == [2] and len(RUNS) == 1
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(BUILT_STR)
    assert _run(Storage(tmp_path / "s.db"), (read,)) == [3]


@op
def logged_sum(x: int) -> int:
    RUNS.append("logged_sum")
    with open("run.log", "a") as log:  # a literal path it only writes: no dependency
        log.write(f"{x}\n")
    return x + 1


def test_a_log_file_an_op_names_and_appends_to_is_no_dependency(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _run(Storage(tmp_path / "s.db"), (logged_sum, 1)) == [2]
    assert _run(Storage(tmp_path / "s.db"), (logged_sum, 1)) == [2]  # the log changed: no matter
    assert RUNS == ["logged_sum"]


@op
def logged_twice(x: int) -> int:
    RUNS.append("logged_twice")
    return logged_sum(x) * 2


def test_an_op_whose_inner_op_appends_to_a_log_does_not_depend_on_the_log(tmp_path, monkeypatch):
    """The inner op only writes run.log, a name in its code; the outer op ran that code (the
    inner call computed in its body), but not the write, so it depended on the log's content:
    any call appending to the log (another logged_sum) made every outer call compute again."""
    monkeypatch.chdir(tmp_path)
    assert _run(Storage(tmp_path / "s.db"), (logged_twice, 1)) == [4]
    assert _run(Storage(tmp_path / "s.db"), (logged_sum, 5)) == [6]  # the log grows
    assert _run(Storage(tmp_path / "s.db"), (logged_twice, 1)) == [4]
    assert RUNS == ["logged_twice", "logged_sum", "logged_sum"]


def test_a_file_that_appears_later_recomputes_the_call_that_missed_it(tmp_path):
    config = tmp_path / "config.txt"
    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (optional_config, str(config))) == ["default"]
    assert _run(storage, (optional_config, str(config))) == ["default"]
    config.write_text("tuned")
    assert _run(storage, (optional_config, str(config))) == ["tuned"]
    assert RUNS == ["optional_config", "optional_config"]


def _python(*args: object, cwd: Path) -> str:
    """The last line a new Python process running ``args`` (a script and its arguments, or
    ``-c`` and code) prints, checked to succeed."""
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()[-1]


def test_an_edit_between_processes_recomputes_and_why_names_the_file(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n2\n")
    (tmp_path / "reader.py").write_text(textwrap.dedent("""
        import json, sys
        import pandas as pd
        from mandala_ast import Storage, op

        RUNS = []

        @op
        def rows(path):
            RUNS.append(path)
            return len(pd.read_csv(path))

        storage = Storage(sys.argv[1])
        why = str(storage.why(rows, sys.argv[2]))
        with storage.run():
            n = rows(sys.argv[2])
        print(json.dumps(dict(n=n, runs=len(RUNS), why=why)))
    """))

    def run() -> dict:
        return json.loads(_python(tmp_path / "reader.py", tmp_path / "s.db", data, cwd=tmp_path))

    assert run()["runs"] == 1
    assert run()["runs"] == 0
    os.utime(data)
    assert run()["runs"] == 0
    _edit(data, "x\n1\n2\n3\n")
    last = run()
    assert last["n"] == 3 and last["runs"] == 1 and f"dependency file {data} changed" in last["why"]


def _splits(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two data splits of one size with one mtime (extracted from one archive, say), and the
    file an op reads, which the user switches between them with shutil.copy2."""
    splits = []
    for name, text in (("a", "x\n1\n2\n"), ("b", "x\n7\n9\n")):
        split = tmp_path / f"split_{name}.csv"
        split.write_text(text)
        os.utime(split, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
        splits.append(split)
    return splits[0], splits[1], tmp_path / "current.csv"


def test_a_data_file_copied_over_with_copy2_from_a_split_of_one_size_and_mtime_recomputes(tmp_path):
    """copy2 writes in place (the inode stays) and copies the mtime: the file's stat key
    (mtime, size, inode) was unchanged, and the first split's result was served."""
    import shutil

    a, b, current = _splits(tmp_path)
    storage = Storage(tmp_path / "s.db")
    for split, want in ((a, "1"), (b, "7"), (a, "1")):
        shutil.copy2(split, current)
        with storage.run():
            assert first_line_after_header(str(current)) == want


def test_a_new_process_recomputes_a_data_file_copied_over_with_the_same_size_and_mtime(tmp_path):
    """The stat cache kept in the storage (file_stats) must not vouch for it either."""
    import shutil

    a, b, current = _splits(tmp_path)
    script = (
        "import sys; from mandala_ast import Storage; import test_file_deps as user\n"
        "with Storage(sys.argv[1]).run():\n    print(user.first_line_after_header(sys.argv[2]))\n"
    )
    for split, want in ((a, "1"), (b, "7")):
        shutil.copy2(split, current)
        assert _python("-c", script, tmp_path / "s.db", current, cwd=Path(__file__).parent) == want


@op
def first_line_after_header(path: str) -> str:
    with open(path) as handle:
        return handle.read().splitlines()[1]


_HASHED_IN_A_NEW_PROCESS = """
import sys
from mandala_ast import Storage
from mandala_ast.runtime import file_deps
import test_file_deps as user

hashed = []
digest = file_deps.file_digest
file_deps.file_digest = lambda path: hashed.append(str(path)) or digest(path)  # counts, then hashes
with Storage(sys.argv[1]).run():
    user.first_line(sys.argv[2])
print(len(hashed), len(user.RUNS))
"""


def _hashed_and_computed(db: Path, data: Path) -> list[str]:
    """How many files a new process reading ``data`` through first_line hashed, and how many
    calls it computed."""
    return _python("-c", _HASHED_IN_A_NEW_PROCESS, db, data, cwd=Path(__file__).parent).split()


def test_a_new_process_does_not_hash_an_unchanged_file_again(tmp_path, csvs):
    """The stat cache is kept in the storage: only a file whose stat changed is hashed."""
    a, _ = csvs
    db = tmp_path / "s.db"

    assert _hashed_and_computed(db, a) == ["1", "1"]  # computed: hashed once
    assert _hashed_and_computed(db, a) == ["0", "0"]  # a hit, and the file's hash is known
    os.utime(a, ns=(0, a.stat().st_mtime_ns + 1_000_000))
    assert _hashed_and_computed(db, a) == ["1", "0"]  # touched: hashed again, same content: a hit
    assert _hashed_and_computed(db, a) == ["0", "0"]  # and the new stat is kept


def test_a_format_7_stat_cache_is_upgraded_and_its_rows_are_hashed_once_more_not_trusted(tmp_path, csvs):
    """Format 7 kept no change time: its rows cannot tell a copy2 from no change, so the
    first process after the upgrade hashes the file again (and computes nothing)."""
    from formats import format_7_layout

    a, _ = csvs
    db = tmp_path / "s.db"

    assert _hashed_and_computed(db, a) == ["1", "1"]
    with sqlite3.connect(db) as conn:
        format_7_layout(conn)
    assert _hashed_and_computed(db, a) == ["1", "0"]  # upgraded: hashed once more, a hit
    assert _hashed_and_computed(db, a) == ["0", "0"]  # and its row now has the change time


def test_a_process_of_format_7_still_open_across_the_upgrade_keeps_writing_its_stat_cache(tmp_path, csvs):
    # A process of the previous release that opened the file before another upgraded it goes
    # on with the statement it knows; had format 8 added a column to its table, that insert
    # would fail its whole commit (its run block's calls lost).
    from formats import format_7_layout

    a, _ = csvs
    db = tmp_path / "s.db"
    with Storage(db).run():
        first_line(str(a))
    with sqlite3.connect(db) as conn:
        format_7_layout(conn)
    old = sqlite3.connect(db, isolation_level=None)
    old.execute("SELECT COUNT(*) FROM file_stats").fetchone()
    Storage(db).close()  # the upgrade
    old.execute("INSERT OR REPLACE INTO file_stats VALUES (?, ?, ?, ?, ?)", (str(a), 1, 2, 3, b"x"))
    old.close()
    RUNS.clear()
    with Storage(db).run():  # its row vouches for nothing here: hashed again, a hit
        assert first_line(str(a)) == "x,y"
    assert RUNS == []


@op
def big_array(n: int) -> np.ndarray:
    return np.arange(float(n))


@op
def array_and_file(n: int, path: str) -> float:
    return float(big_array(n).sum()) + len(Path(path).read_text())


def test_the_storages_own_files_are_not_dependencies_but_a_file_named_like_it_is(tmp_path):
    storage = Storage(tmp_path / "s.db")
    neighbour = tmp_path / "s.db.csv"
    neighbour.write_text("abc")
    with storage.run():
        big_array(300_000)  # 2.4 MB: a blob file, loaded from disk inside the next body
    storage.close()
    with Storage(tmp_path / "s.db").run():
        array_and_file(300_000, str(neighbour))
    files = {name for name in _dependency_names(tmp_path / "s.db") if name.startswith("<file>:")}
    assert files == {f"<file>:{neighbour}"}
    assert any((tmp_path / "s.db.blobs").rglob("*"))


def test_the_wrapped_open_keeps_its_own_errors_and_modes(tmp_path):
    """A bad argument to open() inside an op body fails as open() fails, not in the tracking."""
    path = tmp_path / "f.txt"
    path.write_text("abc")

    @op
    def misuse(p: str) -> str:
        for bad in (dict(mode=3), dict(mode="rw"), dict(buffering="x")):
            try:
                open(p, **bad)
            except (TypeError, ValueError) as exc:
                RUNS.append(type(exc).__name__)
        with open(p, "ab+") as handle:  # appends, and may read what was there
            handle.seek(0)
            return handle.read().decode()

    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (misuse, str(path))) == ["abc"]
    assert RUNS == ["TypeError", "ValueError", "TypeError"]
    assert {n for n in _dependency_names(storage.path) if n.startswith("<file>:")} == {f"<file>:{path}"}


@pytest.mark.parametrize("executor", [None, "threads", "processes"])
def test_editing_a_file_recomputes_a_call_a_batch_block_computed(tmp_path, csvs, executor):
    """Calls computed in a batch block used to be stored without the files they read: after an
    edit, batch and run blocks alike kept loading the old result."""
    a, _ = csvs
    path = tmp_path / "s.db"
    with Storage(path).batch(executor=executor, progress=False):
        before = first_line(str(a))
    _edit(a, "z,w\n1,2\n")
    with Storage(path).batch(executor=executor, progress=False):
        after = first_line(str(a))
    assert (before, after) == ("x,y", "z,w")
    _edit(a, "u,v\n1,2\n")
    assert _run(Storage(path), (first_line, str(a))) == ["u,v"]


def _shards(tmp_path: Path) -> Path:
    folder = tmp_path / "shards"
    folder.mkdir()
    for i in range(2):
        (folder / f"part-{i}.csv").write_text(f"x\n{i}\n")
    return folder


@pytest.mark.parametrize("reader", [shard_texts, csv_names, walked_sizes])
def test_a_file_added_to_a_directory_an_op_listed_recomputes_the_call(tmp_path, reader):
    folder = _shards(tmp_path)
    storage = Storage(tmp_path / "s.db")
    first = _run(storage, (reader, str(folder)))
    assert _run(storage, (reader, str(folder))) == first and RUNS == [reader.__name__]
    (folder / "part-2.csv").write_text("x\n2\n")
    assert _run(storage, (reader, str(folder))) != first and len(RUNS) == 2
    (folder / "part-2.csv").unlink()
    assert _run(storage, (reader, str(folder))) == first and len(RUNS) == 2  # the earlier result again


def test_a_new_process_recomputes_a_call_whose_directory_gained_a_file_and_why_names_it(tmp_path):
    folder = _shards(tmp_path)
    (tmp_path / "lister.py").write_text(textwrap.dedent("""
        import json, os, sys
        from mandala_ast import Storage, op

        RUNS = []

        @op
        def names(folder):
            RUNS.append(folder)
            return sorted(os.listdir(folder))

        storage = Storage(sys.argv[1])
        why = str(storage.why(names, sys.argv[2]))
        with storage.run():
            found = names(sys.argv[2])
        print(json.dumps(dict(found=found, runs=len(RUNS), why=why)))
    """))

    def run() -> dict:
        return json.loads(_python(tmp_path / "lister.py", tmp_path / "s.db", folder, cwd=tmp_path))

    assert run()["runs"] == 1
    assert run()["runs"] == 0
    (folder / "part-2.csv").write_text("x\n2\n")
    last = run()
    assert last["found"] == ["part-0.csv", "part-1.csv", "part-2.csv"] and last["runs"] == 1
    assert f"dependency directory {folder}{os.sep} changed" in last["why"]


@op
def squares_stored_elsewhere(n: int, work: str) -> list:
    """Keeps its intermediate results in a storage of its own (a cached pytest fixture
    that computes its data set in a batch, say)."""
    RUNS.append("squares_stored_elsewhere")
    with Storage(work).run():
        ys = [text_length(str(Path(work).parent / "three.txt")) * x for x in range(n)]
    with Storage(work).run():  # and once more, loading them (values of 1 MiB and more: from files)
        big = big_array(300_000)
    return [int(y) for y in ys] + [int(big.sum())]


def test_an_op_that_keeps_results_in_another_storage_does_not_depend_on_that_storages_files(tmp_path):
    """The op's body opened another storage, whose file (read to check its header) became a
    dependency of the call: it changes whenever anything is stored there (by this op or any
    other code), and the call computed again ("file work.db changed"): a cached pytest
    fixture that computes its data in a batch recomputed on the run after the first."""
    (tmp_path / "three.txt").write_text("abc")
    work = str(tmp_path / "work.db")
    expected = [0, 3, 6, sum(range(300_000))]
    assert _run(Storage(tmp_path / "s.db"), (squares_stored_elsewhere, 3, work)) == [expected]
    elsewhere = Storage(work)  # other code stores more there
    _run(elsewhere, (text_length, str(tmp_path / "three.txt")), (big_array, 400_000))
    elsewhere.close()
    gc.collect()  # the body's storages close (as at a process's exit): the last one writes its log into the file
    RUNS.clear()
    assert _run(Storage(tmp_path / "s.db"), (squares_stored_elsewhere, 3, work)) == [expected]
    assert RUNS == []


def test_listing_the_storages_own_directory_is_a_hit_the_next_time(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "input.csv").write_text("x\n1\n")
    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (csv_names, ".")) == [["input.csv"]]
    _run(storage, (big_array, 300_000), (csv_names, "."))  # the storage's blobs directory appears
    assert _run(Storage(tmp_path / "s.db"), (csv_names, ".")) == [["input.csv"]] and RUNS == ["csv_names"]


def test_accepting_a_data_files_change_by_its_path_keeps_the_calls_that_read_it(tmp_path, csvs):
    """storage.accept_change(Path("a.csv")) raised a raw AttributeError ('PosixPath' object
    has no attribute '__qualname__'): a data file re-saved with cosmetic changes could not be
    declared so."""
    a, _ = csvs
    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (first_line, str(a))) == ["x,y"]
    _edit(a, "x,y\n1,2.0\n")
    assert "change accepted" in storage.accept_change(a)
    assert _run(Storage(tmp_path / "s.db"), (first_line, str(a))) == ["x,y"] and RUNS == ["first_line"]


@pytest.mark.parametrize("given", ["as the op opened it", "absolute"])
def test_accepting_a_change_of_a_data_file_the_op_opened_by_a_relative_name_keeps_its_calls(tmp_path, csvs, monkeypatch, given):
    """The op opened "a.csv" from the working directory, so its calls depend on that name;
    accept_change(Path("a.csv")) looked for the absolute path, found no earlier state and
    accepted nothing ("no earlier state stored"): the calls computed again."""
    monkeypatch.chdir(tmp_path)
    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (first_line, "a.csv")) == ["x,y"]
    _edit(csvs[0], "x,y\n1,2.0\n")
    said = storage.accept_change(Path("a.csv") if given == "as the op opened it" else csvs[0])
    assert said == "file a.csv: change accepted; calls computed before it stay valid"
    RUNS.clear()
    assert _run(Storage(tmp_path / "s.db"), (first_line, "a.csv")) == ["x,y"] and RUNS == []


def test_accept_change_of_something_it_cannot_track_is_an_argument_error_naming_it(tmp_path):
    from mandala_ast import ArgumentError

    with pytest.raises(ArgumentError, match="accept_change.*not int"):
        Storage(tmp_path / "s.db").accept_change(3)


def test_a_library_scanning_the_script_directory_makes_it_no_dependency(tmp_path):
    """importlib.metadata lists every directory on sys.path (the script's among them): an op
    asking a package's version recomputed whenever a file was added next to the script."""
    (tmp_path / "meta.py").write_text(textwrap.dedent("""
        import importlib.metadata, json, sys
        from pathlib import Path
        from mandala_ast import Storage, op

        RUNS = []

        @op
        def version_and_csvs(name):
            RUNS.append(name)
            return importlib.metadata.version(name), sorted(p.name for p in Path("data").glob("*.csv"))

        with Storage(sys.argv[1]).run():
            out = version_and_csvs("numpy")
        print(json.dumps(dict(csvs=out[1], runs=len(RUNS))))
    """))

    def run() -> dict:
        return json.loads(_python(tmp_path / "meta.py", tmp_path / "s.db", cwd=tmp_path))

    (tmp_path / "data").mkdir()
    assert run()["runs"] == 1
    (tmp_path / "notes.txt").write_text("not data of the op")
    assert run()["runs"] == 0
    (tmp_path / "data" / "new.csv").write_text("x\n1\n")  # the op's own glob still counts
    assert run() == dict(csvs=["new.csv"], runs=1)


def test_a_relative_path_read_from_another_working_directory_recomputes(tmp_path):
    """One storage, the same script run in two project directories: read("data.txt") in the
    second was a hit holding the first directory's data (its dependency was the first
    directory's file, unchanged)."""
    script = tmp_path / "reader.py"
    script.write_text(textwrap.dedent("""
        import json, os, sys
        from mandala_ast import Storage, op

        @op
        def read(path):
            return open(path).read()

        @op
        def names(folder):
            return sorted(os.listdir(folder))

        with Storage(sys.argv[1]).run():
            print(json.dumps([read("data.txt"), names("shards")]))
    """))

    def run(project: Path) -> list:
        return json.loads(_python(script, tmp_path / "s.db", cwd=project))

    for name, files in (("a", ["1.csv"]), ("b", ["1.csv", "2.csv"])):
        (tmp_path / name / "shards").mkdir(parents=True)
        (tmp_path / name / "data.txt").write_text(name)
        for file in files:
            (tmp_path / name / "shards" / file).write_text("x")
    assert run(tmp_path / "a") == ["a", ["1.csv"]]
    assert run(tmp_path / "b") == ["b", ["1.csv", "2.csv"]]
    assert run(tmp_path / "a") == ["a", ["1.csv"]]


def test_a_relative_name_opened_after_changing_directory_is_the_file_it_read(tmp_path):
    (tmp_path / "sub").mkdir()
    data = tmp_path / "sub" / "data.txt"
    data.write_text("a")
    storage = Storage(tmp_path / "s.db")
    assert _run(storage, (read_in, str(tmp_path / "sub"), "data.txt")) == ["a"]
    _edit(data, "b")
    assert _run(storage, (read_in, str(tmp_path / "sub"), "data.txt")) == ["b"] and len(RUNS) == 2


def test_a_parquet_file_named_by_a_relative_path_in_another_directory_recomputes(tmp_path, monkeypatch):
    """A C reader's file, named by a relative argument, was the first directory's file."""
    for name, rows in (("a", [1]), ("b", [1, 2])):
        (tmp_path / name).mkdir()
        pd.DataFrame({"x": rows}).to_parquet(tmp_path / name / "data.parquet")
    storage = Storage(tmp_path / "s.db")
    monkeypatch.chdir(tmp_path / "a")
    assert _run(storage, (parquet_rows, "data.parquet")) == [1]
    monkeypatch.chdir(tmp_path / "b")
    assert _run(storage, (parquet_rows, "data.parquet")) == [2]
    monkeypatch.chdir(tmp_path / "a")
    assert _run(storage, (parquet_rows, "data.parquet")) == [1] and len(RUNS) == 2


@pytest.mark.parametrize("whose", ["its own", "another"])
def test_a_data_file_named_like_a_storage_plus_a_dash_is_a_dependency(tmp_path, whose):
    """A storage file ``runs`` (no extension) and a data file ``runs-input.csv`` beside it:
    only the storage's ``-wal``, ``-shm`` and ``-journal`` are its own files, but every name
    it starts with a dash was left out, and editing the data served the stale result."""
    data = tmp_path / "runs-input.csv"
    data.write_text("abc")
    storage = Storage(tmp_path / ("runs" if whose == "its own" else "s.db"))
    if whose == "another":
        Storage(tmp_path / "runs").close()
    assert _run(storage, (text_length, str(data))) == [3]
    _edit(data, "abcdef")
    RUNS.clear()
    assert _run(storage, (text_length, str(data))) == [6]
    assert RUNS == ["text_length"]
