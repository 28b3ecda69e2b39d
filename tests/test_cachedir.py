"""Where compiled modules are cached when ``__pycache__`` cannot be used."""

from __future__ import annotations

import doctest
import importlib.machinery
import os
import sys
import time

import pytest

from mandala_ast import cachedir


def test_env_var_places_the_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("MANDALA_AST_CACHE_DIR", str(tmp_path / "c"))
    assert cachedir.cache_dir() == str(tmp_path / "c")


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the XDG rule is Linux's")
def test_default_is_the_xdg_user_cache_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MANDALA_AST_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cachedir.cache_dir() == str(tmp_path / "mandala_ast")


def test_entries_are_keyed_by_content_python_and_compiler(monkeypatch, tmp_path):
    monkeypatch.setenv("MANDALA_AST_CACHE_DIR", str(tmp_path))
    entry = cachedir.entry_path(b"x = 1\n", "/src/mod.py", "ab" * 32)
    assert entry == cachedir.entry_path(b"x = 1\n", "/elsewhere/mod.py", "ab" * 32)
    assert entry != cachedir.entry_path(b"x = 2\n", "/src/mod.py", "ab" * 32)
    assert entry != cachedir.entry_path(b"x = 1\n", "/src/mod.py", "cd" * 32)
    assert f"{sys.implementation.cache_tag}-abababababab" in entry


def test_clear_removes_only_our_entries(monkeypatch, tmp_path):
    ours = tmp_path / "cpython-311-abababababab" / f"mod-{'0' * 32}.pyc"
    ours.parent.mkdir()
    ours.write_bytes(b"x")
    (ours.parent / f"mod-{'0' * 32}.pyc.12.34.tmp").write_bytes(b"x")  # an interrupted write
    (tmp_path / "other.pyc").write_bytes(b"the user's")
    # MANDALA_AST_CACHE_DIR=/tmp is allowed: a file like ours outside our subdirectories, or
    # in a directory of someone else's, is not ours to delete.
    (tmp_path / f"lookalike-{'1' * 32}.pyc").write_bytes(b"not ours")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / f"lookalike-{'2' * 32}.pyc").write_bytes(b"not ours")
    assert cachedir.clear_dir(str(tmp_path)) == 2
    assert not ours.exists() and (tmp_path / "other.pyc").exists()
    assert (tmp_path / f"lookalike-{'1' * 32}.pyc").exists()
    assert (tmp_path / "project" / f"lookalike-{'2' * 32}.pyc").exists()


def test_doctests(monkeypatch):
    monkeypatch.delenv("MANDALA_AST_CACHE_DIR")
    assert doctest.testmod(cachedir).failed == 0


def _entry(root, name: str, size: int, days_unused: float):
    path = root / "cpython-311-abababababab" / f"{name}-{'0' * 32}.pyc"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"x" * size)
    used = time.time() - days_unused * 86400
    os.utime(path, (used, used))
    return path


def test_entries_within_the_size_limit_are_all_kept(tmp_path):
    entries = [_entry(tmp_path, f"m{i}", 100, days_unused=400) for i in range(5)]
    assert cachedir.prune(str(tmp_path), max_bytes=500) == 0
    assert all(path.exists() for path in entries)


def test_over_the_limit_the_least_recently_used_entries_go_first(tmp_path):
    old = [_entry(tmp_path, f"old{i}", 100, days_unused=30 + i) for i in range(4)]
    recent = [_entry(tmp_path, f"new{i}", 100, days_unused=i) for i in range(4)]
    (tmp_path / "notes.pyc").write_bytes(b"x" * 10_000)  # the user's own file: never ours to delete
    assert cachedir.prune(str(tmp_path), max_bytes=700) == 3  # 800 bytes -> at most 525
    assert [path.exists() for path in old] == [True, False, False, False]
    assert all(path.exists() for path in recent) and (tmp_path / "notes.pyc").exists()


def test_a_hit_marks_an_entry_used_at_most_once_a_day(tmp_path):
    stale, fresh = _entry(tmp_path, "stale", 1, days_unused=3), _entry(tmp_path, "fresh", 1, days_unused=0.5)
    before = fresh.stat().st_mtime
    cachedir.note_use(str(stale))
    cachedir.note_use(str(fresh))
    assert time.time() - stale.stat().st_mtime < 60 and fresh.stat().st_mtime == before


def test_writing_an_entry_prunes_the_least_recently_used_but_never_itself(monkeypatch, tmp_path):
    from mandala_ast import compiler

    monkeypatch.setenv("MANDALA_AST_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(cachedir, "MAX_BYTES", 1)  # any new entry takes the directory over
    source = tmp_path / "src" / "mod.py"
    source.parent.mkdir()
    source.write_text("from mandala_ast import op\n\n@op\ndef f(x):\n    return x\n")
    stale = _entry(tmp_path, "stale", 100, days_unused=90)
    loader = importlib.machinery.SourceFileLoader("mod", str(source))
    compiler.code_for(loader, source.read_bytes(), str(source), "mod")
    assert not stale.exists()
    assert [os.path.basename(path)[:4] for path in cachedir.dir_files(str(tmp_path))] == ["mod-"]


def test_a_hit_from_the_cache_directory_marks_its_entry_used(monkeypatch, tmp_path):
    from mandala_ast import compiler

    monkeypatch.setenv("MANDALA_AST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    source = tmp_path / "mod.py"
    source.write_text("from mandala_ast import op\n\n@op\ndef f(x):\n    return x\n")
    loader = importlib.machinery.SourceFileLoader("mod", str(source))
    compiler.code_for(loader, source.read_bytes(), str(source), "mod")
    (entry,) = cachedir.dir_files(str(tmp_path / "cache"))
    long_ago = time.time() - 3 * 86400
    os.utime(entry, (long_ago, long_ago))
    hits = compiler.STATS["hits"]
    compiler.code_for(loader, source.read_bytes(), str(source), "mod")
    assert compiler.STATS["hits"] == hits + 1 and time.time() - os.stat(entry).st_mtime < 60
