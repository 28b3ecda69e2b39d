"""Progress bars (tqdm.auto) on long work: deleting, collecting garbage, big queries."""

from __future__ import annotations

import subprocess
import sys
from textwrap import dedent

import pytest

from mandala_ast import MList, Storage, op
from mandala_ast.runtime import progress as progress_module

pytest.importorskip("tqdm")


@op
def tick(x: int) -> int:
    return x + 1


@pytest.fixture
def at_once(monkeypatch):
    """Bars wait DELAY_SECONDS before showing, and redraw at most every 0.1 s; tests cannot
    wait for work to be slow."""
    monkeypatch.setattr(progress_module, "DELAY_SECONDS", 0)
    monkeypatch.setattr(progress_module, "REDRAW_SECONDS", 0)


@pytest.fixture
def bars_at_once(at_once, monkeypatch):
    """As on a terminal: pytest's captured stderr is none, and bars skip what is not one."""
    monkeypatch.setattr(progress_module, "drawn_here", lambda: True)


def test_a_bar_is_not_written_into_a_log(tmp_path, capsys, at_once):
    """A job's stderr going to a file (or a pipe, or CI) gets no bar: tqdm's redrawn lines
    would fill the log."""
    storage = stored(tmp_path)
    storage.delete_calls(storage.df(tick))
    storage.gc()
    assert list(progress_module.progress(iter(range(4)), desc="counting", total=4)) == [0, 1, 2, 3]
    assert capsys.readouterr().err == ""


def stored(tmp_path, n=5):
    storage = Storage(tmp_path / "p.db")
    with storage:
        for x in range(n):
            tick(x)
    return storage


def test_deleting_and_collecting_garbage_show_their_steps(tmp_path, capsys, bars_at_once):
    storage = stored(tmp_path)
    storage.delete_calls(storage.df(tick))
    storage.gc()
    err = capsys.readouterr().err
    assert "deleting calls" in err and "removing unused values" in err and "5/5" in err
    assert "collecting garbage" in err and "VACUUM" in err and "3/3" in err


@op
def squares(n: int) -> MList[int]:
    return [i * i for i in range(n)]


def test_deleting_a_long_list_says_how_many_calls_computed_from_it_were_found(tmp_path, capsys, bars_at_once):
    """Finding what was computed from a 100,000-element list is a long step: the bar said
    only "finding the calls computed from them" until it ended."""
    storage = Storage(tmp_path / "p.db")
    with storage:
        squares(300)
    storage.delete_calls(storage.df(squares))
    assert "finding the calls computed from them: 300 so far" in capsys.readouterr().err


def test_quick_work_shows_no_bar(tmp_path, capsys):
    storage = stored(tmp_path)
    storage.delete_calls(storage.df(tick))
    storage.gc()
    assert capsys.readouterr().err == ""


def test_progress_counts_the_items_it_passes_on(capsys, bars_at_once):
    assert list(progress_module.progress(iter(range(4)), desc="counting", total=4)) == [0, 1, 2, 3]
    assert "counting" in capsys.readouterr().err


def test_without_tqdm_the_work_runs_silently(tmp_path):
    script = dedent(f"""
        import sys
        sys.modules["tqdm"] = None  # as if tqdm were not installed
        from mandala_ast import MList, Storage, op
        from mandala_ast.runtime import progress
        progress.DELAY_SECONDS = 0

        @op
        def tick(x: int) -> int:
            return x + 1

        storage = Storage({str(tmp_path / "q.db")!r})
        with storage:
            tick(1)
        print(storage.delete_calls(storage.df(tick)))
        print(storage.gc())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("deleted 1 call") and proc.stderr == ""


def test_memoizing_and_quick_work_never_import_tqdm(tmp_path):
    script = dedent(f"""
        import sys
        from mandala_ast import MList, Storage, op
        @op
        def tick(x: int) -> int:
            return x + 1
        storage = Storage({str(tmp_path / "q.db")!r})
        with storage:
            tick(1)
        memoizing = "tqdm" in sys.modules
        storage.delete_calls(storage.df(tick))
        storage.gc()
        print(memoizing, "tqdm" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["False", "False"], proc.stderr
