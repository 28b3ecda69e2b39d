"""What dependency tracking costs (issue 4): per user-function call, per block entry, per hit.

    python benchmarks/bench_versions.py [--functions 200] [--repeat 7]

Prints a markdown table. Each figure is the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mandala_ast import Storage, op


def _median_ns(fn, number: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        fn(number)
        times.append((time.perf_counter_ns() - started) / number)
    return statistics.median(times)


def user_function_call_ns(repeat: int) -> dict[str, float]:
    """A user-function call: plain, inside a storage block, and inside an op being computed."""

    def helper(x):
        return x

    def loop(n):
        for i in range(n):
            helper(i)

    results = {"plain": _median_ns(loop, 200_000, repeat)}
    with Storage():
        results["inside a run block"] = _median_ns(loop, 200_000, repeat)

    @op
    def computing(n):
        return _median_ns(loop, n, 1)

    with Storage():
        results["inside an op body while it computes (traced)"] = statistics.median(
            computing(200_000 + i) for i in range(repeat)
        )
    return results


def make_project(root: Path, functions: int) -> str:
    """A module with `functions` helpers and functions/10 ops, each calling 10 helpers."""
    lines = ["from mandala_ast import op", "SCALE = 3", ""]
    for i in range(functions):
        lines += [f"def helper_{i}(x):", f"    return x + {i} * SCALE", ""]
    for j in range(functions // 10):
        calls = " + ".join(f"helper_{j * 10 + k}(x)" for k in range(10))
        lines += ["@op", f"def op_{j}(x):", f"    return {calls}", ""]
    (root / "project200.py").write_text("\n".join(lines))
    return "project200"


def block_entry_us(functions: int, repeat: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        module = importlib.import_module(make_project(Path(tmp), functions))
        storage = Storage(Path(tmp) / "s.db")
        with storage:
            for j in range(functions // 10):
                getattr(module, f"op_{j}")(1)

        def enter(n):
            for _ in range(n):
                with storage:
                    pass

        value = _median_ns(enter, 200, repeat) / 1000
        sys.path.remove(tmp)
        return value


def warm_hit_us(repeat: int) -> float:
    @op
    def inc(x):
        return x + 1

    storage = Storage()
    with storage:
        for i in range(2000):
            inc(i)

        def hits(n):
            for i in range(n):
                inc(i % 2000)

        return _median_ns(hits, 20_000, repeat) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    calls = user_function_call_ns(args.repeat)
    print("| measure | figure | target |")
    print("|---|---|---|")
    for where, ns in calls.items():
        target = "≤ 50 ns over plain" if where == "inside a run block" else ""
        print(f"| user-function call, {where} | {ns:.0f} ns | {target} |")
    entry = block_entry_us(args.functions, args.repeat)
    print(f"| block entry (version check), project of {args.functions} functions | {entry:.1f} µs | |")
    print(f"| warm hit, trivial op, in process | {warm_hit_us(args.repeat):.2f} µs | ≤ 5 µs |")


if __name__ == "__main__":
    main()
