"""What file dependency tracking costs (issue 17): per computed call of an op that opens no
file, and for code outside op bodies once ``open``/``os.open`` are wrapped (for good).

    python benchmarks/bench_evolution.py [--calls 20000] [--repeat 7]

Each process below runs once with every op ``track_files=False`` (tracking never starts,
nothing is wrapped) and once with tracking on. The overhead of tracking per computed call of
an op that opens no file is what ``file_deps.start``/``stop`` cost (measured alone: a
computed call takes tens of microseconds, too noisy on a busy machine to show a
sub-microsecond difference end to end, whose times are printed too). Prints a markdown table;
each figure is a median of --repeat runs (best-of for the nanosecond-scale loops).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

_PROCESS = """
import collections, json, os, statistics, sys, tempfile, time
from mandala_ast import Storage, op
from mandala_ast.runtime import file_deps

TRACK = {track}
REPEAT = {repeat}
CALLS = {calls}

def measure(fn, n, pick=statistics.median):
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter_ns(); fn(n); times.append((time.perf_counter_ns() - t) / n)
    return pick(times)

@op(track_files=TRACK)
def trivial(x):
    return x

with Storage().run():
    trivial(-1)  # with TRACK, installs the audit hook for good

def misses(n, base=[0]):
    base[0] += n
    with Storage().run():
        for i in range(n):
            trivial(base[0] + i)

path = tempfile.mktemp()
open(path, "w").close()

def opens(n):
    for _ in range(n):
        open(path).close()

def pair(n):
    start, stop = file_deps.start, file_deps.stop
    for _ in range(n):
        stop(start(True), None)

out = dict(
    miss=measure(misses, CALLS),
    open=measure(opens, 20_000, min),
)
if TRACK:
    out["pair"] = measure(pair, 300_000, min)
os.remove(path)
print(json.dumps(out))
"""


def run(track: bool, calls: int, repeat: int) -> dict:
    script = textwrap.dedent(_PROCESS.format(track=track, calls=calls, repeat=repeat))
    with tempfile.TemporaryDirectory() as directory:  # a file: `-c` code has no source to trace
        path = Path(directory) / "bench_evolution_process.py"
        path.write_text(script)
        out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    off, on = run(False, args.calls, args.repeat), run(True, args.calls, args.repeat)
    rows = [
        ("**file_deps.start + stop: tracking an op body that opens no file**", on["pair"]),
        ("computed call of a trivial op, no tracking / tracking (end to end, noisy)", (off["miss"], on["miss"])),
        ("open() + close() of a file outside ops, plain / wrapped", (off["open"], on["open"])),
    ]
    print("| what | ns |")
    print("|---|---|")
    for label, value in rows:
        if value is None:
            print(f"| {label} | |")
        elif isinstance(value, tuple):
            print(f"| {label} | {value[0]:.0f} / {value[1]:.0f} |")
        else:
            print(f"| {label} | {value:.0f} |")


if __name__ == "__main__":
    main()
