#!/usr/bin/env python
"""How fast the command line answers on a large storage: `mandala-ast calls DB OP --limit 20`.

The storage is bench_query.py's (N stored calls: y = inc(i); z = add(y, i), N/2 of each op),
built by its own worker and cached in the same place (benchmarks/results/stores/), so either
script reuses what the other built. Each command runs as the user runs it: a fresh process of
the installed console script, timed from start to exit (imports included), the median of
--repeat runs after one warm-up run (which reads the file into the page cache).

Usage:
    python benchmarks/bench_cli.py                 # 1M calls (builds it the first time: minutes)
    python benchmarks/bench_cli.py --sizes 10k     # a quick look
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_query  # noqa: E402  (the store layout and builder are shared with it)

#: (label, arguments after DB): what the user types.
COMMANDS = [
    ("calls add --limit 20", ["calls", "{db}", "add", "--limit", "20"]),
    ("calls inc --limit 20", ["calls", "{db}", "inc", "--limit", "20"]),
    ("calls add --where y=5 --limit 20", ["calls", "{db}", "add", "--where", "y=5", "--limit", "20"]),
    ("calls inc --limit 20 --format json", ["calls", "{db}", "inc", "--limit", "20", "--format", "json"]),
    ("versions add", ["versions", "{db}", "add"]),
    ("ops", ["ops", "{db}"]),  # counts and sizes every op: reads every call, unlike the others
]


def store_for(n: int) -> str:
    """The storage file for ``n`` calls, built by bench_query's worker unless cached."""
    bench_query.write_ops_module()
    directory = bench_query.ma_store_dir(n)
    if not os.path.exists(os.path.join(directory, "meta.json")):
        print(f"building {bench_query._k(n)} calls in {directory} ...", file=sys.stderr, flush=True)
        worker = [sys.executable, os.path.join(HERE, "bench_query.py"), "--worker", "ma-build",
                  "--store", directory, "--n", str(n)]
        subprocess.run(worker, check=True)
    return os.path.join(directory, "results.db")


def time_command(argv: list[str], repeat: int) -> tuple[float, str]:
    """Median wall time of ``argv`` as a fresh process, and its output of the last run."""
    subprocess.run(argv, check=True, capture_output=True)  # warm-up: page cache
    times, out = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(argv, check=True, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        out = proc.stdout
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M", type=lambda s: [bench_query._parse_n(x) for x in s.split(",")])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    script = shutil.which("mandala-ast") or sys.exit("mandala-ast is not installed (pip install -e .)")
    empty, _ = time_command([sys.executable, "-c", "pass"], args.repeat)
    print("| command | stored calls | median wall time (s), fresh process | rows |")
    print("|---|---:|---:|---:|")
    print(f"| `python -c pass` (interpreter start, for scale) | - | {empty:.3f} | - |")
    for n in args.sizes:
        db = store_for(n)
        for label, argv in COMMANDS:
            seconds, out = time_command([script, *(a.format(db=db) for a in argv)], args.repeat)
            rows = out.count("\n") - 1 if "--format" not in argv else out.count('"call"')
            print(f"| `mandala-ast {label}` | {bench_query._k(n)} | {seconds:.3f} | {rows} |", flush=True)


if __name__ == "__main__":
    main()
