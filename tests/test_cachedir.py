"""Where compiled modules are cached when ``__pycache__`` cannot be used."""

from __future__ import annotations

import doctest
import sys

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
    (tmp_path / f"mod-{'0' * 32}.pyc.12.34.tmp").write_bytes(b"x")
    (tmp_path / "other.pyc").write_bytes(b"the user's")
    assert cachedir.clear_dir(str(tmp_path)) == 2
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["other.pyc"]


def test_doctests(monkeypatch):
    monkeypatch.delenv("MANDALA_AST_CACHE_DIR")
    assert doctest.testmod(cachedir).failed == 0
