"""Fingerprints: what changes them and what does not."""

from __future__ import annotations

import ast
import glob
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from mandala_ast.runtime import fingerprints
from mandala_ast.runtime.fingerprints import fingerprint

REPO = Path(__file__).resolve().parent.parent

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
    """Adding a parameter with a default leaves an op's fingerprint alone."""
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


@pytest.mark.parametrize(
    ("one", "other"),
    [("x[:k]", "x[k:]"), ("1", "1.0"), ("1", "True"), ("1", "'1'"), ("None", "...")],
)
def test_skipping_empty_fields_keeps_different_code_apart(tmp_path, one, other):
    """The serialisation skips None and [] fields; named fields and typed constants keep
    these apart all the same."""
    first = define(f"def f(x, k):\n    return {one}\n", tmp_path, "a")
    second = define(f"def f(x, k):\n    return {other}\n", tmp_path, "b")
    assert fingerprint(first).digest != fingerprint(second).digest


# Code every interpreter from 3.10 on parses: signatures, f-strings (3.12 parses nested format
# specs differently), match, lambdas, comprehensions, a class, a nested async function.
ACROSS_VERSIONS = '''
def f(x, /, y: int = 1, *args, z, w=None, **kw) -> "list[int]":
    """Doc."""
    from os import path as p
    total = [i * 2 for i in range(x) if i % 2] + list({k: v for k, v in kw.items()})
    s = {1, 1.0, True, "1", b"1", 1j, None, ..., -1e999}
    g = lambda a, *, b=2: a + b
    if (n := len(total)) > 3:
        total = total[:n] + total[n:] + total[::2]
    match x:
        case [1, *rest] if rest:
            pass
        case {"a": 1, **others}:
            pass
        case _:
            pass
    try:
        with open(p.__name__) as fh, open("b"):
            raise ValueError("no") from None
    except ValueError as e:
        del e
    finally:
        assert x, f"{x!r:>{y}} {y=} {z:.2f}"
    async def inner():
        async for c in b:
            await c
        yield
    return total, s, g, not x, x if y else z, x @ y, {**kw}, (*args,), x[1, 2]


class C(object, metaclass=type):
    a: int = 1

    def m(self, k=3):
        return super().m(k)
'''

# Run by each interpreter. blake3 is compiled and only the venv has it, so every run hashes
# with the same stand-in (sha256): equal digests then mean equal fingerprinted text, which is
# what blake3 turns into equal fingerprints.
SCRIPT = '''
import hashlib, sys, types
stand_in = types.ModuleType("blake3")
stand_in.blake3 = lambda data=b"": hashlib.sha256(bytes(data))
sys.modules["blake3"] = stand_in
print(sys.version.split()[0])
try:
    from mandala_ast.runtime.fingerprints import fingerprint
except ImportError as error:
    print("cannot import:", error)
    raise SystemExit(0)
import sample
for obj, defaults in ((sample.f, True), (sample.f, False), (sample.C, True)):
    print(fingerprint(obj, signature_defaults=defaults).digest.hex())
'''


def _interpreters() -> list[str]:
    found = {sys.executable}
    for minor in ("10", "11", "12", "13"):
        found.update(glob.glob(f"/root/.pyenv/versions/3.{minor}*/bin/python"))
    return sorted(found)


def test_fingerprint_is_the_same_on_every_python_version(tmp_path):
    """A store built under 3.12 saw every op "changed" under 3.11: the fingerprint hashed
    ast.dump, whose text differs between Python versions for the same source."""
    (tmp_path / "sample.py").write_text(ACROSS_VERSIONS)
    (tmp_path / "script.py").write_text(SCRIPT)
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    digests: dict[str, list[str]] = {}
    for python in _interpreters():
        proc = subprocess.run([python, "script.py"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{python}:\n{proc.stderr}"
        version, *lines = proc.stdout.split("\n")
        if not lines[0].startswith("cannot import"):
            digests[version] = lines
    if len({version.rsplit(".", 1)[0] for version in digests}) < 2:
        pytest.skip(f"fewer than two Python versions can import mandala_ast: {sorted(digests)}")
    assert len({tuple(d) for d in digests.values()}) == 1, digests


class _EmulatedAst(types.ModuleType):
    """The ast module, but each parsed tree is edited the way another Python version differs."""

    def __init__(self, edit) -> None:
        super().__init__("ast")
        self._edit = edit

    def __getattr__(self, name):
        return getattr(ast, name)

    def parse(self, *args, **kwargs):
        tree = ast.parse(*args, **kwargs)
        for node in list(ast.walk(tree)):
            self._edit(node)
        return tree


def _add_type_params(node: ast.AST) -> None:  # 3.12 added type_params=[] to every def
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    if isinstance(node, definitions) and "type_params" not in node._fields:
        node.type_params = []
        node._fields = (*node._fields, "type_params")


def _drop_empty_fields(node: ast.AST) -> None:  # older versions lack fields newer ones leave empty
    if not isinstance(node, ast.Constant):  # (a constant None is a value, not an empty field)
        node._fields = tuple(f for f in node._fields if getattr(node, f, None) not in (None, []))


def _add_empty_format_part(node: ast.AST) -> None:  # 3.12.1 ends nested format specs with ''
    if isinstance(node, ast.FormattedValue) and isinstance(node.format_spec, ast.JoinedStr):
        node.format_spec.values.append(ast.Constant(value=""))


@pytest.mark.parametrize("edit", [_add_type_params, _drop_empty_fields, _add_empty_format_part])
def test_fingerprint_ignores_how_python_versions_differ(tmp_path, monkeypatch, edit):
    """The same check as above within one interpreter (CI runs one): parse as another version
    would and expect the same fingerprints."""
    (tmp_path / "emulated.py").write_text(ACROSS_VERSIONS)
    sys.path.insert(0, str(tmp_path))
    monkeypatch.setattr(sys, "path", sys.path)
    import emulated

    monkeypatch.delitem(sys.modules, "emulated")
    objects = [(emulated.f, True), (emulated.f, False), (emulated.C, True)]
    native = [fingerprints._compute(obj, defaults).digest for obj, defaults in objects]
    monkeypatch.setattr(fingerprints, "ast", _EmulatedAst(edit))
    assert [fingerprints._compute(obj, defaults).digest for obj, defaults in objects] == native



def _run_main(tmp_path: Path, *args: str) -> str:
    """``python main.py *args`` in ``tmp_path`` (a new process, no .pyc written); its output."""
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "main.py", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


EDITED_WHILE_RUNNING = """
import sys
from mandala_ast import Storage, op
import helpers

@op
def g(x):
    return helpers.scale(x)

if sys.argv[1:] == ["edit"]:  # the user edits the helper while this process runs
    with open(helpers.__file__, "w") as file:
        file.write(EDIT)
with Storage("s.db"):
    print("g(1) =", g(1))
"""


@pytest.mark.parametrize(
    "edited", ["def scale(x):\n    return x * 5\n", "\n\ndef scale(x):\n    return x * 5\n"], ids=["in-place", "moved-down"]
)
def test_helper_edited_while_a_process_runs_does_not_label_its_results_with_the_new_code(tmp_path, edited):
    """A process computes with the code it imported; a helper file edited meanwhile (before
    its first call was fingerprinted) must not be read as that code, or the next process,
    running the edited helper, loads the old helper's result. Moved lines too: the old line
    number then points at other text."""
    (tmp_path / "helpers.py").write_text("def scale(x):\n    return x * 3\n")
    (tmp_path / "main.py").write_text(f"EDIT = {edited!r}\n" + EDITED_WHILE_RUNNING)
    assert _run_main(tmp_path, "edit") == "g(1) = 3"  # computed by the helper in memory
    assert _run_main(tmp_path) == "g(1) = 5"


EDITED_BY_ARGUMENT = """
import sys
from mandala_ast import Storage, op
import helpers

@op
def g(x):
    return helpers.scale(x)

with open(helpers.__file__, "w") as file:  # the user edits the helper while this process runs
    file.write(sys.argv[1])
with Storage("s.db"):
    print("g(1) =", g(1))
"""


def test_two_processes_each_running_a_helper_edited_under_it_do_not_share_results(tmp_path):
    # Each fingerprints the helper from the bytecode it runs, with the same stand-in text:
    # taken for unchanged source text, it kept the first process's calls for the second.
    (tmp_path / "helpers.py").write_text("def scale(x):\n    return x * 3\n")
    (tmp_path / "main.py").write_text(EDITED_BY_ARGUMENT)
    assert _run_main(tmp_path, "def scale(x):\n    return x * 5\n") == "g(1) = 3"  # ran the x * 3 it imported
    assert _run_main(tmp_path, "def scale(x):\n    return x * 7\n") == "g(1) = 5"  # x * 5: not the first one's 3


CALLS_A_CACHED_HELPER = """
from mandala_ast import Storage, op
import helpers

@op
def g(x):
    return helpers.scale(x)

with Storage("s.db"):
    print("g(1) =", g(1))
"""


def test_an_edited_helper_under_a_decorator_recomputes_its_callers(tmp_path):
    # Python 3.10 has no co_qualname: a code object is named through its module's namespace,
    # where a decorated helper (functools.lru_cache, wraps; pytest's fixtures) is the wrapper:
    # its code had no name, no dependency was stored, and the edit served the old result.
    (tmp_path / "helpers.py").write_text("import functools\n\n@functools.lru_cache\ndef scale(x):\n    return x * 3\n")
    (tmp_path / "main.py").write_text(CALLS_A_CACHED_HELPER)
    assert _run_main(tmp_path) == "g(1) = 3"
    helpers = tmp_path / "helpers.py"
    helpers.write_text(helpers.read_text().replace("x * 3", "x * 5"))
    assert _run_main(tmp_path) == "g(1) = 5"
