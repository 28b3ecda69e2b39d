"""What importing a compiled module costs, against importing it plainly (issue 13).

For each generated module (a small one and 2,000-line ones of two shapes) and each library
checkout given with ``--library`` (default: this repository), in fresh interpreters
(``sys.executable``) interleaved so machine load hits every variant alike:

* ``plain``: ``import benchproj.mod`` with CPython's own ``.pyc`` warm;
* ``install()``: the user's call, ``mandala_ast.install("benchproj")`` after ``import
  mandala_ast`` (it loads the hook); and ``install()`` with no package, with pandas already
  imported (the all-modules form scans every loaded module);
* ``warm``: ``install()`` + the import, from mandala_ast's cache in ``__pycache__``;
* ``warm -B``: the same with ``PYTHONDONTWRITEBYTECODE=1`` (Docker's habit): from the cache
  directory (``MANDALA_AST_CACHE_DIR``), or by compiling again where there is none;
* ``cold``: the import on an empty cache (libcst imported, transform, compile, write), against
  ``libcst.parse_module`` of the same text alone (libcst already imported);
* ``.pyc``: the size of mandala_ast's cached file against CPython's for the same module.

Times are medians over ``--repeat`` processes (cold: ``--cold-repeat``), measured inside the
process with the garbage collector off (a full collection landing on either side is chance,
not the code measured); ``mandala_ast`` is imported before the clock starts in every variant.

Usage::

    python benchmarks/bench_import.py [--repeat 15] [--library old=/path/to/checkout ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

IMPORT = """
import gc, sys, time
import mandala_ast
gc.disable()
t0 = time.perf_counter()
if {compiled}:
    mandala_ast.install("benchproj")
t1 = time.perf_counter()
import benchproj.mod
t2 = time.perf_counter()
loader = type(benchproj.mod.__loader__).__name__
assert (loader == "CompilingLoader") == {compiled}, loader
print(t1 - t0, t2 - t1, "libcst" in sys.modules)
"""

INSTALL_ALL = """
import gc, sys, time
import mandala_ast, pandas
gc.disable()
t0 = time.perf_counter()
mandala_ast.install()
print(time.perf_counter() - t0, len(sys.modules))
"""

PARSE = """
import sys, time, libcst
text = open(sys.argv[1], encoding="utf-8").read()
t0 = time.perf_counter()
libcst.parse_module(text)
print(time.perf_counter() - t0)
"""


def ops_module(functions: int) -> str:
    """A library module: ops, helpers and one pipeline function with a storage block."""
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


def workflows_module(functions: int) -> str:
    """An experiments module: every function is a storage block of op calls (call-dense)."""
    parts = ["from mandala_ast import op\n\n", "@op\ndef load(seed, size):\n    return [seed] * size\n\n"]
    for name in ("train", "evaluate", "pick"):
        parts.append(f"@op\ndef {name}(*args, **kwargs):\n    return len(args)\n\n")
    for i in range(functions):
        parts.append(textwrap.dedent(f'''\
            def experiment_{i}(storage, seeds, alpha=0.1):
                """Train and evaluate model family {i} on each seed; keep the best."""
                scores = []
                with storage.run():
                    for seed in seeds:
                        dataset = load(seed, size={i} + 10)
                        model = train(dataset, alpha=alpha, family={i})
                        score = evaluate(model, dataset)
                        scores.append(score)
                    best = pick(scores)
                return best

            '''))
    return "".join(parts)


MODULES = {
    "small (ops, 5 ops)": lambda: ops_module(5),
    "2,000 lines: ops + helpers": lambda: ops_module(250),
    "2,000 lines: workflows": lambda: workflows_module(165),
}


def run(root: Path, library: Path, code: str, *args: str, nobytecode: bool = False) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(library)])
    env["MANDALA_AST_CACHE_DIR"] = str(root / "cache-dir")
    if nobytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"benchmark subprocess failed:\n{proc.stderr}")
    return proc.stdout.split()


def make_project(root: Path, source: str) -> None:
    package = root / "benchproj"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(source)


def pyc_sizes(root: Path) -> tuple[int, int]:
    cache = root / "benchproj" / "__pycache__"
    ours = [p for p in cache.glob("mod.*.pyc") if "-mandala_ast-" in p.name]
    plain = [p for p in cache.glob("mod.*.pyc") if "-mandala_ast-" not in p.name]
    return ours[0].stat().st_size, plain[0].stat().st_size


def clear_ours(root: Path) -> None:
    for path in (root / "benchproj" / "__pycache__").glob("*-mandala_ast-*.pyc"):
        path.unlink()
    shutil.rmtree(root / "cache-dir", ignore_errors=True)


def measure_module(base: Path, libraries: dict[str, Path], source: str, repeat: int, cold_repeat: int) -> dict:
    """{library: {metric: value}} for one module, the libraries' samples interleaved."""
    roots, nobytecode_roots = {}, {}
    for name in libraries:  # -B gets a project of its own: nothing in its __pycache__, ever
        roots[name], nobytecode_roots[name] = base / name, base / f"{name}-B"
        make_project(roots[name], source)
        make_project(nobytecode_roots[name], source)
    results: dict[str, dict[str, list[float]]] = {name: {} for name in libraries}
    plain, compiled = IMPORT.format(compiled=False), IMPORT.format(compiled=True)
    for _ in range(cold_repeat):
        for name, library in libraries.items():
            clear_ours(roots[name])
            _, cold, libcst = run(roots[name], library, compiled)
            assert libcst == "True"
            results[name].setdefault("cold", []).append(float(cold))
            (parse,) = run(roots[name], library, PARSE, str(roots[name] / "benchproj" / "mod.py"))
            results[name].setdefault("parse", []).append(float(parse))
    for name, library in libraries.items():  # warm every cache
        run(roots[name], library, plain)
        run(roots[name], library, compiled)
        run(nobytecode_roots[name], library, compiled, nobytecode=True)
    order = list(libraries.items())
    for _ in range(repeat):
        order.reverse()  # neither checkout always runs first
        for name, library in order:
            samples = results[name]
            _, imported, _ = run(roots[name], library, plain)
            samples.setdefault("plain", []).append(float(imported))
            install, imported, libcst = run(roots[name], library, compiled)
            assert libcst == "False"
            samples.setdefault("install", []).append(float(install))
            samples.setdefault("warm", []).append(float(install) + float(imported))
            install, imported, libcst = run(nobytecode_roots[name], library, compiled, nobytecode=True)
            samples.setdefault("warm -B", []).append(float(install) + float(imported))
            samples.setdefault("-B uses libcst", []).append(float(libcst == "True"))
    table = {}
    for name in libraries:
        row = {metric: statistics.median(values) for metric, values in results[name].items()}
        row["-B uses libcst"] = max(results[name]["-B uses libcst"])
        row["pyc"], row["cpython pyc"] = pyc_sizes(roots[name])
        table[name] = row
    return table


def measure_install_all(base: Path, libraries: dict[str, Path], repeat: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in libraries}
    modules = 0
    for _ in range(repeat):
        for name, library in libraries.items():
            seconds, modules_loaded = run(base, library, INSTALL_ALL)
            samples[name].append(float(seconds))
            modules = int(modules_loaded)
    return {name: statistics.median(values) for name, values in samples.items()} | {"modules": modules}


def report(tables: dict[str, dict], install_all: dict[str, float], repeat: int) -> None:
    ms = 1e3
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"median of {repeat} fresh processes per cell (cold: fewer); Python {sys.version.split()[0]}; "
          f"1-minute load at the end {load:.1f} (above ~1.5 on 2 cores: rerun on a quiet machine)")
    print()
    print("| module | library | plain | install() | warm (install + import) | warm / plain | "
          "target 1.2x+2ms | warm -B | cold | libcst parse | cold / parse | .pyc | CPython .pyc | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for module, table in tables.items():
        for name, r in table.items():
            meets = "yes" if r["warm"] <= 1.2 * r["plain"] + 0.002 else "no"
            libcst = " (libcst)" if r["-B uses libcst"] else ""
            print(
                f"| {module} | {name} | {r['plain'] * ms:.1f} ms | {r['install'] * ms:.2f} ms | "
                f"{r['warm'] * ms:.1f} ms | {r['warm'] / r['plain']:.2f}x | {meets} | "
                f"{r['warm -B'] * ms:.1f} ms{libcst} | {r['cold'] * ms:.0f} ms | {r['parse'] * ms:.0f} ms | "
                f"{r['cold'] / r['parse']:.2f}x | {r['pyc'] / 1e3:.1f} kB | {r['cpython pyc'] / 1e3:.1f} kB | "
                f"{r['pyc'] / r['cpython pyc']:.2f}x |"
            )
    print()
    modules = int(install_all.pop("modules"))
    for name, seconds in install_all.items():
        print(f"install() with no package, pandas imported ({modules} modules loaded), {name}: "
              f"{seconds * ms:.2f} ms")
    print("targets (issue 13): warm <= 1.2x plain + 2 ms; install() <= 1 ms; .pyc <= 1.5x CPython's;"
          " warm -B without libcst")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="processes per warm cell (default 15)")
    parser.add_argument("--cold-repeat", type=int, default=3, help="processes per cold cell (default 3)")
    parser.add_argument("--library", action="append", default=[], metavar="NAME=PATH",
                        help="a checkout to measure (repeatable); default: this repository")
    parser.add_argument("--only", default="", help="substring of the module names to run")
    args = parser.parse_args()
    libraries = dict(item.split("=", 1) for item in args.library) or {"this": str(REPO)}
    paths = {name: Path(path).resolve() for name, path in libraries.items()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tables = {}
        for index, (module, build) in enumerate(MODULES.items()):
            if args.only in module:
                base = Path(tmp) / f"m{index}"
                tables[module] = measure_module(base, paths, build(), args.repeat, args.cold_repeat)
        install_all = measure_install_all(Path(tmp), paths, args.repeat)
    report(tables, install_all, args.repeat)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
