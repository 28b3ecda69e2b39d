"""Calls computed while their op tracked no files or no environment are recomputed once the
op tracks them again (untracked.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mandala_ast import Storage, op

#: ``script.py DB on|off``: an op reading a file and a variable, with tracking as asked, and
#: an op calling it; prints what ran, the results and why's answer, as JSON.
_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from mandala_ast import Storage, op

    RUNS = []
    TRACKED = sys.argv[2] == "on"

    def length(path):
        RUNS.append("length")
        return len(Path(path).read_text()) + len(os.environ.get("LO_SUFFIX", ""))

    length = op(track_files=TRACKED, track_env=TRACKED)(length)

    @op
    def tenfold(path):
        RUNS.append("tenfold")
        return length(path) * 10

    storage = Storage(sys.argv[1])
    with storage.run():
        results = [length("data.txt"), tenfold("data.txt")]
    print(json.dumps({"runs": RUNS, "results": results, "why": str(storage.why(length, "data.txt"))}))
""")


@pytest.fixture
def script(tmp_path: Path):
    (tmp_path / "script.py").write_text(_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "LO_SUFFIX"}

    def run(tracking: str, **variables: str) -> dict:
        proc = subprocess.run([sys.executable, "script.py", "s.db", tracking], capture_output=True, text=True,
                              cwd=tmp_path, env={**env, **variables})
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.splitlines()[-1])

    return run


def test_turning_track_files_back_on_recomputes_calls_that_read_a_file_edited_meanwhile(tmp_path, script):
    (tmp_path / "data.txt").write_text("abc")
    assert script("off")["results"] == [3, 30]
    (tmp_path / "data.txt").write_text("abcdef")
    assert script("off")["results"] == [3, 30]  # untracked: stale, as asked
    tracked = script("on")
    assert tracked["runs"] == ["length", "tenfold"] and tracked["results"] == [6, 60]
    assert script("on")["runs"] == []  # computed with tracking: hits from now on
    (tmp_path / "data.txt").write_text("abcdefgh")
    assert script("on")["results"] == [8, 80]


def test_turning_track_env_back_on_recomputes_calls_that_read_a_variable_changed_meanwhile(tmp_path, script):
    (tmp_path / "data.txt").write_text("abc")
    assert script("off", LO_SUFFIX="x")["results"] == [4, 40]
    tracked = script("on", LO_SUFFIX="xyz")
    assert tracked["runs"] == ["length", "tenfold"] and tracked["results"] == [6, 60]
    assert "untracked" not in tracked["why"] and tracked["why"].startswith("hit")


def test_why_names_the_tracking_turned_back_on(tmp_path):
    (tmp_path / "data.txt").write_text("abc")
    asks = "if TRACKED:\n    print(json.dumps({'why': str(storage.why(length, 'data.txt'))}))\n    sys.exit()\n"
    (tmp_path / "script.py").write_text(_SCRIPT.replace("with storage.run():", asks + "with storage.run():"))
    subprocess.run([sys.executable, "script.py", "s.db", "off"], cwd=tmp_path, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "script.py", "s.db", "on"], cwd=tmp_path, check=True, capture_output=True, text=True)
    why = json.loads(done.stdout.splitlines()[-1])["why"]
    assert why.startswith("miss") and "dependency untracked files of op __main__.length changed" in why


RUNS: list[str] = []


@op
def measured(path: str) -> int:
    RUNS.append("measured")
    return len(Path(path).read_text())


def test_an_untracked_op_made_from_a_tracked_ops_function_hits(tmp_path):
    # Both are named by the function: the marker is judged by the untracked op itself, not by
    # the tracked op its name reaches (which would recompute it at every run).
    (tmp_path / "data.txt").write_text("abc")
    quick = op(track_files=False)(measured.fn)
    for _ in range(2):
        with Storage(tmp_path / "s.db").run():
            assert quick(str(tmp_path / "data.txt")) == 3
    assert RUNS == ["measured"]
