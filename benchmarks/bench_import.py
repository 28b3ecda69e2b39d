"""Warm import of a compiled module vs a plain import of the same module (DESIGN §7: <= 1.2x).

Every sample is a fresh interpreter (``sys.executable``), with both caches warm: CPython's
``.pyc`` for the plain import, mandala_ast's own cache file for the compiled one. Two numbers:

* ``module import``: measured inside the process, from just before ``import mandala_ast.hook``
  (compiled) or just before the module import (plain) to just after the module import, with
  ``mandala_ast`` itself already imported in both (it is the module's own dependency);
  the garbage collector is off for that span: whether a ~4 ms full collection falls inside it
  depends on allocation counts, not on the code measured;
* ``process``: wall time of the whole interpreter run, what a user waits for.

Usage::

    python benchmarks/bench_import.py [--repeat 30] [--functions 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEASURE = """
import gc, sys, time
import mandala_ast
gc.disable()  # a full collection (~4 ms with pandas loaded) lands on either side by chance
t0 = time.perf_counter()
if {compiled}:
    import mandala_ast.hook
    mandala_ast.hook.install("benchproj")
import benchproj.mod
t1 = time.perf_counter()
import mandala_ast.compiler as compiler
assert ("CompilingLoader" in type(benchproj.mod.__loader__).__name__) == {compiled}
assert not {compiled} or compiler.STATS["hits"] == 1, compiler.STATS
assert not {compiled} or "libcst" not in sys.modules
print(t1 - t0)
"""


def module_source(functions: int) -> str:
    """A realistic module: ops, helpers and a storage block that the transform rewrites."""
    parts = ["import contextlib\nfrom mandala_ast import op\n\n"]
    for i in range(functions):
        parts.append(f"@op\ndef step{i}(x: int, k: int = {i}) -> int:\n    return x * 2 + k\n\n")
        parts.append(f"def helper{i}(values):\n    return [v + {i} for v in values if v % 2]\n\n")
    calls = "".join(f"        y{i} = step{i}(y{i - 1 if i else 'seed'})\n" for i in range(functions))
    parts.append(
        "class Storage:\n    def run(self):\n        return contextlib.nullcontext()\n\n"
        f"def pipeline(seed):\n    storage = Storage()\n    with storage.run():\n{calls}"
        f"    return y{functions - 1}\n"
    )
    return "".join(parts)


def run(root: Path, code: str) -> tuple[float, float]:
    """(in-process seconds printed by *code*, wall seconds of the process)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(Path(__file__).resolve().parent.parent)])
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"benchmark subprocess failed:\n{proc.stderr}")
    return float(proc.stdout.split()[-1]), wall


def make_project(root: Path, functions: int) -> None:
    package = root / "benchproj"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(module_source(functions))


def measure(repeat: int, functions: int) -> dict[str, list[tuple[float, float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root, functions)
        codes = {name: MEASURE.format(compiled=name == "compiled") for name in ("plain", "compiled")}
        cold_code = codes["compiled"].replace('STATS["hits"] == 1', 'STATS["misses"] == 1')
        cold = run(root, cold_code.replace('"libcst" not in', '"libcst" in'))
        for code in codes.values():  # warm both caches
            run(root, code)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in codes}
        for _ in range(repeat):  # interleaved, so drift in machine load hits both alike
            for name, code in codes.items():
                samples[name].append(run(root, code))
        samples["compiled (cold, cache miss)"] = [cold]
        return samples


def report(samples: dict[str, list[tuple[float, float]]], repeat: int, functions: int) -> None:
    """Print medians and minima; the minimum is the least disturbed by other load on the box."""
    base = {stat.__name__: (stat(s[0] for s in samples["plain"]), stat(s[1] for s in samples["plain"]))
            for stat in (statistics.median, min)}
    print(f"warm import, {functions} ops + a storage block, {repeat} fresh processes each")
    print(f"{'':30} {'stat':>6} {'module import':>14} {'ratio':>7} {'process':>10} {'ratio':>7}")
    for name, rows in samples.items():
        for stat in (statistics.median, min):
            inner, wall = stat(s[0] for s in rows), stat(s[1] for s in rows)
            plain_in, plain_wall = base[stat.__name__]
            print(f"{name:30} {stat.__name__:>6} {inner * 1e3:11.2f} ms {inner / plain_in:6.2f}x "
                  f"{wall * 1e3:7.1f} ms {wall / plain_wall:6.2f}x")
    print("target (DESIGN §7): compiled warm <= 1.20x plain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="processes per variant (default 30)")
    parser.add_argument("--functions", type=int, default=60, help="ops in the module (default 60)")
    args = parser.parse_args()
    report(measure(args.repeat, args.functions), args.repeat, args.functions)


if __name__ == "__main__":
    main()
