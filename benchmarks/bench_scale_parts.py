#!/usr/bin/env python
"""Where the time of a miss and of a hit goes on a large store (issue 13): the parts that
bench_scale.py reports as one figure.

On a COPY of a store built by bench_scale.py (``--store DIR``; copied to ``--workdir`` and
deleted afterwards: the cached store is never written), ``--blocks`` blocks of 2000 new calls
of ``f(x) = x + 1``, each through a new Storage (a cold page cache, as bench_scale's misses).
SQLite's automatic checkpoint is turned off so that the commit and the checkpoint that copies
its pages into the file are timed apart. Per call:

- ``block``: inside the ``with storage:`` block (hashing, the lookup that finds no stored
  call, buffering the rows);
- ``insert``: the INSERT statements of the flush (the b-tree descents, page reads, splits);
- ``commit``: COMMIT (writing the dirtied pages to the WAL);
- ``ckpt``: ``PRAGMA wal_checkpoint`` right after (the same pages written into the file, and
  the fsyncs);
- ``pages``: WAL frames written (pages dirtied); ``preads``: read() calls; both per call.

Then ``--hit-processes`` new processes each hit 2000 stored calls drawn at random: µs and
read() calls per hit. ``--drop-index NAME`` (repeatable) and ``--cache-kb`` try the variants
measured in session 9 on the copy only.

    python benchmarks/bench_scale_parts.py --store benchmarks/results/stores/scale-...-n1000000 --stored 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCK = 2000


def _io() -> dict[str, int]:
    with open("/proc/self/io") as fh:
        return {
            key: int(value) for key, value in (line.split(": ") for line in fh.read().splitlines())
        }


def _timed_inserts(spent: list[float]) -> None:
    """Time SQLiteStore's insert statements (the flush minus BEGIN and COMMIT)."""
    from mandala_ast.runtime import store

    insert = store.SQLiteStore._insert_pending

    def timed(self, conn):
        t0 = time.perf_counter()
        try:
            return insert(self, conn)
        finally:
            spent.append(time.perf_counter() - t0)

    store.SQLiteStore._insert_pending = timed  # type: ignore[method-assign]


def misses(path: str, first_x: int, blocks: int, cache_kb: int | None) -> list[dict]:
    import bench_scale

    from mandala_ast import Storage, op
    from mandala_ast.runtime import store

    if cache_kb:
        store._WRITE_CACHE = f"PRAGMA cache_size = -{cache_kb}"
    spent: list[float] = []
    _timed_inserts(spent)
    f, rows = op(bench_scale.inc), []
    for b in range(blocks):
        storage = Storage(path)
        conn = storage._store.conn
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        spent.clear()
        before, t0 = _io(), time.perf_counter()
        with storage:
            for x in range(first_x + b * BLOCK, first_x + (b + 1) * BLOCK):
                f(x)
            t1 = time.perf_counter()
        t2 = time.perf_counter()
        frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        t3, after = time.perf_counter(), _io()
        storage.close()
        per = 1e6 / BLOCK
        rows.append(
            {
                "block": (t1 - t0) * per,
                "insert": sum(spent) * per,
                "commit": (t2 - t1 - sum(spent)) * per,
                "ckpt": (t3 - t2) * per,
                "total": (t3 - t0) * per,
                "pages": frames / BLOCK,
                "preads": (after["syscr"] - before["syscr"]) / BLOCK,
            }
        )
    return rows


def hits(path: str, stored: int, seed: int) -> dict:
    import bench_scale

    from mandala_ast import Storage, op

    storage, f = Storage(path), op(bench_scale.inc)
    xs = random.Random(seed).sample(range(stored), min(stored, BLOCK))
    before, t0 = _io(), time.perf_counter()
    with storage:
        for x in xs:
            f(x)
    elapsed, after = time.perf_counter() - t0, _io()
    return {"hit": elapsed / len(xs) * 1e6, "preads": (after["syscr"] - before["syscr"]) / len(xs)}


def _worker(args) -> None:
    sys.path.insert(0, HERE)
    if args.worker == "miss":
        result: object = misses(args.db, args.first_x, args.blocks, args.cache_kb)
    else:
        result = hits(args.db, args.stored, args.seed)
    print(json.dumps(result))


def _run(args, kind: str, db: str, **extra) -> object:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        kind,
        "--db",
        db,
        "--stored",
        str(args.stored),
        "--first-x",
        str(args.first_x),
        "--blocks",
        str(args.blocks),
    ]
    if args.cache_kb:
        cmd += ["--cache-kb", str(args.cache_kb)]
    cmd += [arg for key, value in extra.items() for arg in (f"--{key}", str(value))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--store",
        help="a store directory of bench_scale.py (holds results.db); copied, never written",
    )
    p.add_argument(
        "--stored", type=int, required=True, help="calls stored in it (hits draw from 0..N-1)"
    )
    p.add_argument(
        "--first-x", type=int, default=50_000_000, help="first argument of the new calls"
    )
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--hit-processes", type=int, default=3)
    p.add_argument("--cache-kb", type=int, help="the write cache (KiB) instead of the store's")
    p.add_argument(
        "--drop-index", action="append", default=[], help="drop this index from the copy first"
    )
    p.add_argument("--sql", help="a script of statements run on the copy first (a schema variant)")
    p.add_argument("--workdir", default=None)
    p.add_argument("--worker")
    p.add_argument("--db")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        db = os.path.join(tmp, "results.db")
        shutil.copyfile(os.path.join(args.store, "results.db"), db)
        if args.drop_index:
            conn = sqlite3.connect(db)
            conn.executescript("".join(f"DROP INDEX {name};" for name in args.drop_index))
            conn.close()
        if args.sql:
            conn = sqlite3.connect(db)
            conn.executescript(args.sql)
            conn.close()
        found = [
            hits_ for hits_ in (_run(args, "hit", db, seed=s) for s in range(args.hit_processes))
        ]
        blocks = _run(args, "miss", db)
    keys = ("block", "insert", "commit", "ckpt", "total", "pages", "preads")
    print("| block | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1))
    for i, row in enumerate(blocks):  # type: ignore[arg-type]
        print(
            f"| {i + 1} | "
            + " | ".join(
                f"{row[k]:.1f}" if k not in ("pages", "preads") else f"{row[k]:.2f}" for k in keys
            )
            + " |"
        )
    med = {k: statistics.median(row[k] for row in blocks) for k in keys}  # type: ignore[union-attr]
    print("| median | " + " | ".join(f"{med[k]:.2f}" for k in keys) + " |")
    hit = statistics.median(h["hit"] for h in found)  # type: ignore[index]
    preads = statistics.median(h["preads"] for h in found)  # type: ignore[index]
    print(
        f"\nnew-process hit: {hit:.1f} µs, {preads:.2f} read() calls per hit (median of {len(found)})"
    )


if __name__ == "__main__":
    main()
