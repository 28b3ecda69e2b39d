#!/usr/bin/env python
"""What deleting many calls named by row id costs on a large store (session 14).

On a COPY of a store built by bench_scale.py (``--store DIR``, holding results.db; copied to
``--workdir`` and deleted afterwards: the cached store is never written), a new process calls
``storage.delete_calls`` with the row ids of ``--calls`` calls drawn at random (``--seed``),
as ``storage.delete_calls(df[...])`` or the CLI's ``delete`` would. It prints the seconds of
each step of the deletion (deletion.py's progress steps: "matching calls" is where the
targets' row ids are looked up) and of the whole call. Each repeat deletes from a fresh copy.

Without ``--dependents`` the calls computed from them stay (``dependents=False``): the
stores of bench_scale.py are one chain of ``inc`` calls stored as uncompiled code stores
them, so each call's output is the next one's input by content, and 10,000 targets drawn
at random take nearly every call after the first of them with them (that ran for over ten
minutes at 1M calls, and measures the chain, not the lookup of the targets).

    python benchmarks/bench_delete.py --store /work/scale-stores/scale-...-n1000000 --workdir /tmp
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time


def row_ids(db: str, calls: int, seed: int) -> list[str]:
    """The row ids (hex) of ``calls`` stored calls drawn at random."""
    conn = sqlite3.connect(db)
    last = conn.execute("SELECT max(id) FROM calls").fetchone()[0]
    keys = random.Random(seed).sample(range(1, last + 1), min(calls * 2, last))
    found: list[str] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        found += [h.hex() for (h,) in conn.execute(f"SELECT hid FROM calls WHERE id IN ({marks})", chunk)]
    conn.close()
    return found[:calls]


def worker(db: str, ids_file: str, dependents: bool) -> None:
    """Delete the calls named in ``ids_file``; print the steps' seconds as JSON."""
    from mandala_ast import Storage
    from mandala_ast.runtime import progress

    with open(ids_file) as fh:
        hids = [bytes.fromhex(line) for line in fh.read().split()]
    marks: list[tuple[str, float]] = []
    step = progress.Stages.step

    def timed(self, name):
        marks.append((name, time.perf_counter()))
        return step(self, name)

    progress.Stages.step = timed  # type: ignore[method-assign]
    storage = Storage(db)
    t0 = time.perf_counter()
    report = storage.delete_calls(hids, dependents=dependents)
    end = time.perf_counter()
    storage.close()
    names = [name.split(" ")[0] + " " + name.split(" ")[-1] for name, _ in marks]
    times = [t for _, t in marks] + [end]
    steps = {name: times[i + 1] - times[i] for i, name in enumerate(names)}
    print(json.dumps({"total": end - t0, "steps": steps, "report": str(report)}))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", help="a store directory of bench_scale.py (holds results.db); copied, never written")
    p.add_argument("--calls", type=int, default=10_000, help="how many calls to name by row id")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dependents", action="store_true", help="delete the calls computed from them too")
    p.add_argument("--workdir", default=None)
    p.add_argument("--worker", nargs=3, metavar=("DB", "IDS", "DEPENDENTS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        db, ids, dependents = args.worker
        return worker(db, ids, dependents == "1")
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            db, ids = os.path.join(tmp, "results.db"), os.path.join(tmp, "ids.txt")
            shutil.copyfile(os.path.join(args.store, "results.db"), db)
            with open(ids, "w") as fh:
                fh.write("\n".join(row_ids(db, args.calls, args.seed + repeat)))
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", db, ids, str(int(args.dependents))]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
        steps = ", ".join(f"{name} {s:.2f} s" for name, s in result["steps"].items())
        print(f"repeat {repeat + 1}: {result['total']:.2f} s ({steps}); {result['report']}")


if __name__ == "__main__":
    main()
