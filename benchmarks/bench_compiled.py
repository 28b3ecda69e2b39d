"""Run-form overhead per op call: the same block compiled (exact provenance) and uncompiled.

    python benchmarks/bench_compiled.py [--calls 2000] [--repeat 7]

Each figure is the median over --repeat fresh interpreters of the per-call time of a loop
of op calls inside one run block, for: warm hits (every call stored and already seen in
this process), hits from a new process (stored by an earlier run), and misses (committed
at block exit). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MODULE = '''
import time
from mandala_ast import Storage, op

@op
def inc(x):
    return x + 1

@op
def add(x, y):
    return x + y

def chain(path, n, passes):
    """y = inc(i); z = add(y, i) for each i: the second call consumes the first's output."""
    storage = Storage(path)
    timings = []
    for _ in range(passes):
        started = time.perf_counter()
        with storage:
            for i in range(n):
                y = inc(i)
                z = add(y, i)
        timings.append((time.perf_counter() - started) / (2 * n) * 1e6)
    return timings
'''

DRIVER = """
import json, sys
{setup}
import bench_module
print(json.dumps(bench_module.chain(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
"""


def run(root: Path, compiled: bool, db: str, calls: int, passes: int) -> list[float]:
    setup = "import mandala_ast; mandala_ast.install()" if compiled else ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(REPO)])
    out = subprocess.run(
        [sys.executable, "-c", DRIVER.format(setup=setup), db, str(calls), str(passes)],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


def measure(compiled: bool, calls: int, repeat: int) -> dict[str, float]:
    miss, new_process, warm = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bench_module.py").write_text(textwrap.dedent(MODULE))
        run(root, compiled, "warmup.db", 10, 1)  # fills the compiled-module cache
        for i in range(repeat):
            db = f"s{i}.db"
            miss.append(run(root, compiled, db, calls, 1)[0])
            first, second = run(root, compiled, db, calls, 2)
            new_process.append(first)
            warm.append(second)
    return {
        "miss (committed)": statistics.median(miss),
        "hit from a new process": statistics.median(new_process),
        "warm hit": statistics.median(warm),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    plain = measure(False, args.calls, args.repeat)
    compiled = measure(True, args.calls, args.repeat)
    print("| per op call (µs) | uncompiled | compiled | compiled / uncompiled |")
    print("|---|---|---|---|")
    for name in plain:
        print(f"| {name} | {plain[name]:.2f} | {compiled[name]:.2f} | {compiled[name] / plain[name]:.2f}× |")


if __name__ == "__main__":
    main()
