#!/usr/bin/env python
"""Queries with `if` guards and derived columns, before and after, in one run (issue 13).

The data is bench_query.py's (for i in range(N // 2): y = inc(i); z = add(y, i); its cached
stores are reused, or built by its worker). Each query runs in a fresh interpreter, once with
this worktree's mandala_ast ("after") and once with the code at --baseline ("before", put first
on PYTHONPATH), each timed as the best of --runs runs on a new Storage object:

- plain:         x = Q(); y = inc(x); z = add(y, x)                         (N/2 rows)
- guarded:       x = Q(); y = inc(x); if x % 2 == 0: z = add(y, x)          (N/2 rows)
- guarded loop:  for x in range(1000): y = inc(x); if x % 2 == 0: z = add(y, x)  (1000 rows)
- derived:       plain + w = z * 2 + x; big = z > 1000 and x % 3 != 0;
                 if w > 10: v = w - 1                                       (N/2 rows)
- builtins:      plain + s = str(z); if len(s) > 5: t = max(x, y)           (N/2 rows)
- guarded, uncompiled calls: the guarded block on a copy of the store with UNCOMPILED more
                 add(inc(k), k) calls stored by uncompiled code (no history on add's first
                 input: found by content), cached beside the store   (N/2 + UNCOMPILED rows)

"per row" = (query − plain) / rows: what the guards and derived columns cost on top of
matching and loading the same calls.

Usage:
    python benchmarks/bench_query_guards.py                       # 1M stored calls, baseline /work/main
    python benchmarks/bench_query_guards.py --sizes 100k --baseline ../main
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_query as bq  # noqa: E402

GUARDS_PATH = os.path.join(bq.STORES_DIR, "bench_query_guards_blocks.py")
GUARDS_MODULE = "bench_query_guards_blocks"
GUARDS_SOURCE = '''\
"""Query blocks for benchmarks/bench_query_guards.py (written out by it; do not edit here)."""
from bench_query_ops import add, inc
from mandala_ast import Q


def plain(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        z = add(y, x)
    return q


def guarded(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        if x % 2 == 0:
            z = add(y, x)
    return q


def guarded_loop(storage):
    with storage.query() as q:
        for x in range(1000):
            y = inc(x)
            if x % 2 == 0:
                z = add(y, x)
    return q


def derived(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        z = add(y, x)
        w = z * 2 + x
        big = z > 1000 and x % 3 != 0
        if w > 10:
            v = w - 1
    return q


def builtins(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        z = add(y, x)
        s = str(z)
        if len(s) > 5:
            t = max(x, y)
    return q
'''
KINDS = [
    ("plain", "2-op pattern, no guard (reference)"),
    ("guarded", "guarded call: `if x % 2 == 0: z = add(y, x)`, every x"),
    ("guarded_loop", "guarded call in a 1000-value loop"),
    ("derived", "3 derived columns + a guard (vectorisable)"),
    ("builtins", "str(), len(), max() (row by row) + a guard"),
    ("guarded_uncompiled", "guarded call, 10 of add's calls stored by uncompiled code (by content)"),
]
#: Calls the "guarded_uncompiled" kind's copy of the store gets from uncompiled code.
UNCOMPILED = 10
#: The block each kind runs (its own name but for these).
BLOCKS = {"guarded_uncompiled": "guarded"}


def write_blocks():
    bq.write_ops_module()
    with open(GUARDS_PATH + ".tmp", "w") as fh:
        fh.write(GUARDS_SOURCE)
    os.replace(GUARDS_PATH + ".tmp", GUARDS_PATH)


def worker(args):
    """Fresh process: import, compile the blocks, then the best of ``runs`` runs."""
    import mandala_ast
    from mandala_ast import Storage

    bq.load_ma_ops()
    blocks = mandala_ast.compile_module(GUARDS_PATH, name=GUARDS_MODULE)
    path = os.path.join(args.store, "results.db")
    if args.kind == "tables":
        return tables_worker(args, blocks, Storage(path))
    if args.kind == "store_uncompiled":
        return store_uncompiled(Storage(path), bq.load_ma_ops(), args.n)
    times, rows = [], None
    for _ in range(args.runs):
        storage = Storage(path)
        t0 = time.perf_counter()
        frame = getattr(blocks, BLOCKS.get(args.kind, args.kind))(storage).df()
        times.append(time.perf_counter() - t0)
        rows = len(frame)
        del frame
        storage.close()
    result = {"times": times, "rows": rows, "code": os.path.dirname(os.path.dirname(mandala_ast.__file__))}
    with open(args.out, "w") as fh:
        json.dump(result, fh)


#: The queries whose table (not their SQL statement) "tables" times, interleaved.
TABLE_KINDS = ["plain", "guarded", "derived", "builtins"]
TABLE_REPEATS = 3


def store_uncompiled(storage, ops, n):
    """UNCOMPILED calls add(inc(k), k) for k past the stored ones, from this (uncompiled) code:
    add's first input then has no recorded source."""
    with storage.run():
        for k in range(n // 2, n // 2 + UNCOMPILED):
            ops.add(ops.inc(k), k)
    storage.close()


def uncompiled_store(store, n, env, timeout):
    """A copy of ``store`` with UNCOMPILED calls stored by uncompiled code, built once by the
    code in ``env`` (cached beside it)."""
    copy = f"{store}-uncompiled{UNCOMPILED}"
    done = os.path.join(copy, "done")
    if os.path.exists(done):
        return copy
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--kind", "store_uncompiled", "--store", copy,
           "--n", str(n)]
    subprocess.run(cmd, env=env, check=True, timeout=timeout, capture_output=True)
    open(done, "w").close()
    return copy


def tables_worker(args, blocks, storage):
    """The table a query builds from its matched rows, without the SQL statement: each query's
    statement runs once (a query keeps its rows), then its DataFrame is built TABLE_REPEATS
    times, the queries interleaved so that a burst of load hits them alike; best of each."""
    queries = {kind: getattr(blocks, kind)(storage) for kind in TABLE_KINDS}
    rows = {kind: len(q.df()) for kind, q in queries.items()}
    times = {kind: [] for kind in TABLE_KINDS}
    for _ in range(TABLE_REPEATS):
        for kind, query in queries.items():
            t0 = time.perf_counter()
            query.df()
            times[kind].append(time.perf_counter() - t0)
    result = {"tables": {kind: min(ts) for kind, ts in times.items()}, "rows": rows["plain"],
              "code": os.path.dirname(os.path.dirname(mandala_ast_file()))}
    with open(args.out, "w") as fh:
        json.dump(result, fh)


def mandala_ast_file():
    import mandala_ast

    return mandala_ast.__file__


def run_worker(kind, store, baseline, runs, timeout):
    out = os.path.join(bq.RESULTS_DIR, "query-logs", f"guards-{kind}-{'before' if baseline else 'after'}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    env = _baseline_env(baseline) if baseline else dict(os.environ)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--kind", kind, "--store", store,
           "--out", out, "--runs", str(runs)]
    load = os.getloadavg()[0]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "load": load}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1][:200], "load": load}
    with open(out) as fh:
        result = json.load(fh)
    result["load"] = load
    return result


def _baseline_env(baseline):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (baseline, env.get("PYTHONPATH")) if p)
    return env


def baseline_store(n, baseline, after_dir, timeout):
    """The store the baseline code reads: the same as this code's, unless the storage format
    changed between them (the baseline refuses a newer file); then one built by the baseline
    code itself, cached like bench_query's, under its own format's name."""
    env = _baseline_env(baseline)
    fmt = subprocess.run([sys.executable, "-c", "from mandala_ast.runtime.store import FORMAT; print(FORMAT)"],
                         env=env, capture_output=True, text=True, check=True, cwd=HERE).stdout.strip()
    if fmt == bq.ma_format():
        return after_dir
    store = os.path.join(bq.STORES_DIR, f"{fmt.replace('/', '-')}-ops{bq.OPS_HASH}-n{n}")
    if not os.path.exists(os.path.join(store, "meta.json")):
        bq._log(f"building the baseline's store ({fmt}) of {bq._k(n)} calls in {store}")
        cmd = [sys.executable, bq.__file__, "--worker", "ma-build", "--store", store, "--n", str(n)]
        subprocess.run(cmd, env=env, check=True, timeout=timeout, capture_output=True)
    return store


def render(n, results, baseline, args):
    lines = [f"## Guarded and derived queries at {bq._k(n)} stored calls: before ({baseline}) and after",
             "",
             f"- date {_dt.datetime.now().isoformat(timespec='seconds')}; best of {args.runs} runs per "
             "query, each on a new Storage, in a fresh process per query and code version; "
             f"1-min load {min(r.get('load', 0) for r in results.values()):.1f}–"
             f"{max(r.get('load', 0) for r in results.values()):.1f} on {os.cpu_count()} CPUs",
             "",
             "| query | rows | before s | after s | before / after | before µs/row | after µs/row |",
             "|---|---|---|---|---|---|---|"]

    def best(kind, side):
        r = results.get((kind, side), {})
        return min(r["times"]) if "times" in r else None

    for kind, label in KINDS:
        if (kind, "after") not in results:
            continue
        cells = [label]
        rows = results[(kind, "after")].get("rows") or results[(kind, "before")].get("rows")
        cells.append(f"{rows:,}" if rows else "—")
        b, a = best(kind, "before"), best(kind, "after")
        cells += [f"{b:.2f}" if b is not None else results[(kind, 'before')].get("error", "—"),
                  f"{a:.2f}" if a is not None else results[(kind, 'after')].get("error", "—")]
        cells.append(f"{b / a:.1f}×" if a and b else "—")
        for side, value in (("before", b), ("after", a)):
            plain = best("plain", side)
            extra = None if kind in ("plain", "guarded_loop") or value is None or plain is None or not rows \
                else (value - plain) / rows * 1e6
            cells.append(f"{extra:.1f}" if extra is not None else "—")
        lines.append("| " + " | ".join(cells) + " |")
    if ("tables", "after") not in results:
        return "\n".join(lines)
    lines += ["", "The tables alone (each query's SQL statement run once first; best of "
              f"{TABLE_REPEATS}, the queries interleaved in one process per code version):", "",
              "| query | before s | after s | before µs/row | after µs/row |", "|---|---|---|---|---|"]
    for kind in TABLE_KINDS:
        cells = [kind]
        per_row = []
        for side in ("before", "after"):
            r = results[("tables", side)]
            t = r.get("tables", {}).get(kind)
            cells.append(f"{t:.2f}" if t is not None else r.get("error", "—"))
            plain = r.get("tables", {}).get("plain")
            per_row.append("—" if kind == "plain" or t is None else f"{(t - plain) / r['rows'] * 1e6:.2f}")
        lines.append("| " + " | ".join(cells + per_row) + " |")
    lines += ["", "µs/row: (query − plain 2-op pattern) / rows, the cost of the guards and derived "
              "columns on top of matching and loading the same calls (target ≤ 2 µs a row for what "
              "can be vectorised). Target for a pattern with a guarded call at 1M stored calls: ≤ 3 s."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=lambda s: [bq._parse_n(x) for x in s.split(",")], default=[1_000_000])
    ap.add_argument("--baseline", default="/work/main", help="a checkout of the old code (put on PYTHONPATH)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--kinds", default="all",
                    help="comma-separated: plain,guarded,guarded_loop,derived,builtins,guarded_uncompiled,tables")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    write_blocks()
    build = bq.Run(argparse.Namespace(rebuild=None, build_timeout=3600.0))
    reports = []
    for n in args.sizes:
        meta = build.ma_build(n)
        if "error" in meta:
            sys.exit(f"store of {bq._k(n)} calls: {meta['error']}")
        results = {}
        stores = {"after": meta["dir"], "before": baseline_store(n, args.baseline, meta["dir"], args.timeout)}
        chosen = [k for k, _ in KINDS] + ["tables"] if args.kinds == "all" else args.kinds.split(",")
        if "guarded_uncompiled" in chosen:  # (built by this code; the baseline's format may differ)
            stores["after_uncompiled"] = uncompiled_store(stores["after"], n, dict(os.environ), args.timeout)
            stores["before_uncompiled"] = stores["after_uncompiled"] if stores["before"] == stores["after"] else \
                uncompiled_store(stores["before"], n, _baseline_env(args.baseline), args.timeout)
        for kind in chosen:
            for side in ("before", "after"):
                store = stores[f"{side}_uncompiled" if kind == "guarded_uncompiled" else side]
                results[(kind, side)] = run_worker(kind, store, args.baseline if side == "before" else None,
                                                   args.runs, args.timeout)
                bq._log(f"{kind} {side}: {results[(kind, side)]}")
        reports.append(render(n, results, args.baseline, args))
    report = "\n\n".join(reports)
    print(report)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(bq.RESULTS_DIR, f"query-guards-{stamp}.md"), "w") as fh:
        fh.write(report + "\n")


if __name__ == "__main__":
    main()
