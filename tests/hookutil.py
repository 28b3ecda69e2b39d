"""Helpers for the compiler and import-hook tests (test_hook.py, test_compiler.py, test_cli.py).

Anything that touches sys.meta_path or sys.modules runs in a fresh `sys.executable` process.
A module with its own name (not conftest) so tests can import it unambiguously.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: A stand-in for mandala_ast.transforms.transform_source, driven by markers in the source, so
#: hook tests do not depend on what the real transform rewrites.
STANDIN_TRANSFORM = '''
from types import SimpleNamespace

CALLS = []

def transform(text, path):
    import libcst  # like the real transform: a miss imports libcst, a hit must not

    CALLS.append(path)
    if "FAIL_TRANSFORM" in text:
        raise ValueError("stand-in cannot parse this")
    new = text.replace("COMPILED = False", "COMPILED = True")
    if "ADD_LINE" in text:
        new += "\\nextra = 1\\n"
    if "BREAK_OUTPUT" in text:
        new = new.replace("BREAK_OUTPUT", "BREAK_OUTPUT = (")
    diagnostics = ("stand-in diagnostic",) if "DIAG" in text else ()
    return SimpleNamespace(source=new, changed=new != text, diagnostics=diagnostics)
'''

#: Prepended to every subprocess script: use the stand-in transform, show all warnings.
PRELUDE = """
import sys, warnings
warnings.simplefilter("always")
import mandala_ast.compiler as compiler
import _standin
compiler._transform_override = _standin.transform
from mandala_ast.hook import install
"""


class PyRunner:
    """Runs Python snippets in fresh interpreters, in a scratch project directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "_standin.py").write_text(STANDIN_TRANSFORM)

    def write(self, relpath: str, text: str) -> Path:
        """Write a dedented file under the project root, creating packages' directories."""
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), str(REPO_ROOT)])
        env["MANDALA_AST_CACHE_DIR"] = str(self.cache_dir)  # never the user's own cache
        env.update(extra)
        return env

    def run(
        self, code: str, *args: str, prelude: bool = True, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run *code* (dedented, after PRELUDE) with ``sys.executable *args -c``."""
        source = (PRELUDE if prelude else "") + textwrap.dedent(code)
        proc = subprocess.run(
            [sys.executable, *args, "-c", source],
            cwd=self.root, env=self.env(**env), capture_output=True, text=True, timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        return proc

    @property
    def cache_dir(self) -> Path:
        """This project's compiled-module cache directory (``MANDALA_AST_CACHE_DIR``)."""
        return self.root.parent / f"{self.root.name}-cache-dir"

    def cached_files(self) -> list[Path]:
        return sorted(self.root.rglob("*-mandala_ast-*.pyc"))

    def dir_files(self) -> list[Path]:
        """Entries in the cache directory (used where ``__pycache__`` is not)."""
        return sorted(self.cache_dir.rglob("*.pyc"))
