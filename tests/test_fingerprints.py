"""Fingerprints: what changes them and what does not."""

from __future__ import annotations

import textwrap
import types

import pytest

from mandala_ast.runtime.fingerprints import fingerprint

BASE = '''
def f(x, k=1):
    """Doc."""
    total = x + k  # add
    return total * 2
'''


def define(source: str, tmp_path, name: str = "fpmod") -> types.FunctionType:
    """Write source to a real file (inspect.getsource needs one) and return its `f`."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    namespace: dict = {"__name__": name}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace["f"]


@pytest.mark.parametrize(
    "edited",
    [
        BASE.replace("# add", "# a different comment"),
        BASE.replace('"""Doc."""', '"""A much longer docstring."""'),
        BASE.replace("return total * 2", "return (\n        total\n        * 2\n    )"),
        BASE.replace("total", "subtotal"),
        "\n\n" + BASE,
    ],
    ids=["comment", "docstring", "formatting", "local rename", "blank lines"],
)
def test_cosmetic_edits_keep_the_fingerprint(tmp_path, edited):
    assert fingerprint(define(BASE, tmp_path, "a")).digest == fingerprint(define(edited, tmp_path, "b")).digest


@pytest.mark.parametrize(
    "edited",
    [
        BASE.replace("* 2", "* 3"),
        BASE.replace("def f(x, k=1)", "def f(y, k=1)").replace("x + k", "y + k"),
        BASE.replace("k=1", "k=2"),
    ],
    ids=["body", "parameter name", "default value"],
)
def test_real_edits_change_the_fingerprint(tmp_path, edited):
    assert fingerprint(define(BASE, tmp_path, "a")).digest != fingerprint(define(edited, tmp_path, "b")).digest


def test_ops_ignore_defaulted_parameters(tmp_path):
    """Adding a parameter with a default leaves an op's fingerprint alone (DESIGN §3.1)."""
    added = BASE.replace("def f(x, k=1)", "def f(x, k=1, extra=None)")
    before, after = define(BASE, tmp_path, "a"), define(added, tmp_path, "b")
    assert fingerprint(before, signature_defaults=False).digest == fingerprint(after, signature_defaults=False).digest
    assert fingerprint(before).digest != fingerprint(after).digest


def test_source_is_kept_for_diffs(tmp_path):
    assert "total * 2" in fingerprint(define(BASE, tmp_path)).source


def test_code_without_source_falls_back_to_bytecode():
    namespace: dict = {}
    exec("def f(x):\n    return x + 1\n", namespace)
    assert len(fingerprint(namespace["f"]).digest) == 32
