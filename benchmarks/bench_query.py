#!/usr/bin/env python
"""Query speed, side by side: mandala_ast vs pymandala on the same stored data.

Data: for i in range(N // 2): y = inc(i); z = add(y, i)  — N stored calls (N/2 of each op),
where inc(x) = x + 1 and add(x, y) = x + y. The same ops and the same data for both systems.

Queries, each timed as a fresh process sees it (a new interpreter; imports done first and
reported apart; then a new Storage object, the query and the DataFrame), once cold ("first
run") and then 3 more times in the same process, each with a new Storage object ("warm",
median of 3):

1. 2-op pattern to a DataFrame: every (x, y, z) with y = inc(x), z = add(y, x) — N/2 rows.
   mandala_ast: a `with storage.query() as q:` block with x = Q(), then q.df().
   pymandala (0.2, no Q()): storage.cf(add).expand_back(recursive=True).df(include_calls=False).
2. point query to a DataFrame: the row of one x = k.
   mandala_ast: the same block with the literal-like argument k instead of Q().
   pymandala: storage.cf(wrap_atom(k)).expand_forward(recursive=True).df(include_calls=False).
3. point lookup by re-running the code (memoized hits, no query API): `y = inc(k);
   z = add(y, k)` in a run block, values put in a one-row DataFrame.

pymandala gets the largest N (from 1k, 2k, 5k, 10k, 20k, ...) whose build fits in a 3-minute
budget (--pm-budget); mandala_ast runs at that N too (like for like) and at --sizes (1M).

Usage:
    python benchmarks/bench_query.py                     # full: pymandala search + mandala_ast 1M
    python benchmarks/bench_query.py --quick             # mandala_ast 10k/100k, 30 s pymandala budget
    python benchmarks/bench_query.py --sizes 100k,1M     # mandala_ast sizes
    python benchmarks/bench_query.py --only mandala_ast  # skip pymandala
    python benchmarks/bench_query.py --rebuild           # rebuild cached stores (all|pymandala|mandala_ast)

Built stores are cached under benchmarks/results/stores/ (mandala_ast: keyed by N, the store
FORMAT and the ops module; pymandala: by its version and the budget). The table is printed and
written to benchmarks/results/ (markdown + raw JSON).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
STORES_DIR = os.path.join(RESULTS_DIR, "stores")
OPS_PATH = os.path.join(STORES_DIR, "bench_query_ops.py")
OPS_MODULE = "bench_query_ops"

SYSTEMS = ["pymandala", "mandala_ast"]
KINDS = ["pattern", "point", "lookup"]
WARM_RUNS = 3
# pymandala: stored-call counts at which the growing store is snapshotted; N = the largest
# one reached within the budget.
CHECKPOINTS = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
               1_000_000]
PM_CHUNK = 500       # loop iterations (= 1000 stored calls) per pymandala `with storage:` block
MA_CHUNK = 10_000    # loop iterations (= 20k stored calls) per mandala_ast run block


# --------------------------------------------------------------------------- the ops
# mandala_ast: query blocks must be compiled, so the ops and the blocks live in a module of
# their own, written to results/stores/ and loaded with mandala_ast.compile_module (the same
# path and module name in every process, so op identities match). The build is compiled too:
# it records that add's first argument *is* inc's output (exact provenance), which the
# pattern add(inc(x), x) matches.

OPS_SOURCE = '''\
"""Ops and blocks for benchmarks/bench_query.py (written out by it; do not edit here)."""
from mandala_ast import Q, op


@op
def inc(x: int) -> int:
    return x + 1


@op
def add(x: int, y: int) -> int:
    return x + y


def build(storage, lo, hi):
    with storage.run():
        for i in range(lo, hi):
            y = inc(i)
            z = add(y, i)


def pattern(storage):
    with storage.query() as q:
        x = Q()
        y = inc(x)
        z = add(y, x)
    return q.df()


def point(storage, k):
    with storage.query() as q:
        y = inc(k)
        z = add(y, k)
    return q.df()


def lookup(storage, k):
    with storage.run(allow_new_calls=False):
        y = inc(k)
        z = add(y, k)
    return y, z
'''
OPS_HASH = hashlib.sha256(OPS_SOURCE.encode()).hexdigest()[:8]


# pymandala: plain functions wrapped with its @op in the worker (op names "inc" and "add").

def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def point_key(n: int) -> int:
    """The x of the point query: 12345 when stored, else an interior value."""
    return 12345 % (n // 2)


# --------------------------------------------------------------------------- helpers

def _log(msg):
    print(f"  {msg}", file=sys.stderr, flush=True)


def _k(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def _parse_n(s: str) -> int:
    s = s.strip().lower().replace("_", "")
    mult = 1
    if s.endswith("m"):
        mult, s = 1_000_000, s[:-1]
    elif s.endswith("k"):
        mult, s = 1000, s[:-1]
    n = int(float(s) * mult)
    if n < 4 or n % 2:
        raise argparse.ArgumentTypeError(f"size {n}: need an even number ≥ 4 (N/2 of each op)")
    return n


def dir_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            if f != "meta.json":
                total += os.path.getsize(os.path.join(root, f))
    return total


def ma_format() -> str:
    from mandala_ast.runtime.store import FORMAT
    return FORMAT


def ma_store_dir(n: int) -> str:
    fmt = ma_format().replace("/", "-")
    return os.path.join(STORES_DIR, f"{fmt}-ops{OPS_HASH}-n{n}")


def pm_version() -> str:
    import importlib.metadata as md
    return md.version("pymandala")


def pm_search_dir(budget: float) -> str:
    return os.path.join(STORES_DIR, f"pymandala-{pm_version()}-budget{budget:g}s")


def write_ops_module():
    os.makedirs(STORES_DIR, exist_ok=True)
    try:
        with open(OPS_PATH) as fh:
            if fh.read() == OPS_SOURCE:
                return
    except OSError:
        pass
    with open(OPS_PATH + ".tmp", "w") as fh:
        fh.write(OPS_SOURCE)
    os.replace(OPS_PATH + ".tmp", OPS_PATH)


def load_ma_ops():
    import mandala_ast
    return mandala_ast.compile_module(OPS_PATH, name=OPS_MODULE)


def pm_import():
    import pandas as pd
    # pymandala 0.2.0a0 calls DataFrame.applymap, which pandas 3 removed (renamed to .map in
    # pandas 2.1). Without this alias every cf.df() raises AttributeError.
    if not hasattr(pd.DataFrame, "applymap"):
        pd.DataFrame.applymap = pd.DataFrame.map
    from mandala.imports import op
    return op(inc), op(add)


def _json_dump(path, data):
    with open(path + ".tmp", "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(path + ".tmp", path)


# --------------------------------------------------------------------------- workers

def worker_pm_search(args):
    """Build one pymandala store, snapshotting it at each checkpoint; stop at the budget."""
    out_dir = args.store
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    inc_op, add_op = pm_import()
    from mandala.imports import Storage
    db = os.path.join(out_dir, "build.db")
    storage = Storage(db_path=db)
    budget = args.budget
    info = {"version": pm_version(), "budget_s": budget, "max_n": args.max_n,
            "checkpoints": [], "stopped": None,
            "chunk_calls": 2 * PM_CHUNK, "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "loadavg": [os.getloadavg()[0]]}
    elapsed = 0.0  # build time only (snapshots excluded)
    built = 0      # loop iterations done; stored calls = 2 * built
    cps = [c for c in CHECKPOINTS if c <= args.max_n]
    ci = 0
    while ci < len(cps):
        target = cps[ci] // 2
        lo, hi = built, min(target, built + PM_CHUNK)
        tc = time.perf_counter()
        with storage:
            for i in range(lo, hi):
                y = inc_op(i)
                add_op(y, i)
        dt = time.perf_counter() - tc
        elapsed += dt
        built = hi
        per_call = dt / (2 * (hi - lo))
        if elapsed > budget:
            info["stopped"] = (f"budget: {2 * built} calls stored after {elapsed:.0f} s "
                               f"(> {budget:.0f} s) on the way to {_k(cps[ci])}")
            break
        if built == target:
            snap = os.path.join(out_dir, f"n{cps[ci]}.db")
            src, dst = sqlite3.connect(db), sqlite3.connect(snap + ".tmp")
            src.backup(dst)
            dst.close()
            src.close()
            os.replace(snap + ".tmp", snap)
            info["checkpoints"].append({"n": cps[ci], "build_s": elapsed,
                                        "last_block_us_per_call": per_call * 1e6})
            _log(f"[pymandala] {_k(cps[ci])} calls stored in {elapsed:.1f} s "
                 f"(latest block {per_call * 1e3:.1f} ms/call)")
            ci += 1
            _json_dump(os.path.join(out_dir, "search.json"), info)
            if ci == len(cps):
                info["stopped"] = f"reached the largest size tried ({_k(cps[-1])})"
                break
        # cost per call only grows with the store: at the latest block's rate is a lower bound
        projected = elapsed + (cps[ci] - 2 * built) * per_call
        if projected > budget:
            info["stopped"] = (f"projected ≥ {projected:.0f} s to reach {_k(cps[ci])} "
                               f"(budget {budget:.0f} s; latest block {per_call * 1e3:.1f} "
                               f"ms/call at {_k(2 * built)} stored)")
            break
    info["loadavg"].append(os.getloadavg()[0])
    os.remove(db)
    for suffix in ("-wal", "-shm", "-journal"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    info["complete"] = True
    _json_dump(os.path.join(out_dir, "search.json"), info)
    _log(f"[pymandala] stopped: {info['stopped']}")


def worker_ma_build(args):
    """Build the mandala_ast store for N calls into a .partial dir, then move it in place."""
    final = args.store
    tmp = final + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    mod = load_ma_ops()
    from mandala_ast import Storage
    storage = Storage(os.path.join(tmp, "results.db"))
    half = args.n // 2
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    step = max(1, half // 10)
    next_log = step
    for lo in range(0, half, MA_CHUNK):
        hi = min(half, lo + MA_CHUNK)
        mod.build(storage, lo, hi)
        if hi >= next_log or hi == half:
            el = time.perf_counter() - t0
            _log(f"[mandala_ast] build {_k(args.n)}: {2 * hi:,} calls in {el:.0f} s "
                 f"({el / (2 * hi) * 1e6:.0f} µs/call)")
            next_log += step
    storage.close()
    build_s = time.perf_counter() - t0
    from bench_memo import MandalaAstAdapter
    meta = {"n": args.n, "build_s": build_s, "format": ma_format(), "ops_hash": OPS_HASH,
            "mandala_ast": MandalaAstAdapter().version(), "chunk_calls": 2 * MA_CHUNK,
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "loadavg": [load0, os.getloadavg()[0]]}
    _json_dump(os.path.join(tmp, "meta.json"), meta)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def _check_pattern(df, n):
    """N/2 rows; some column order (a, b, c) has b = a + 1, c = a + b, a = 0..N/2-1."""
    import itertools
    half = n // 2
    if len(df) != half:
        return f"{len(df)} rows, expected {half}"
    if df.shape[1] != 3:
        return f"columns {list(df.columns)}, expected 3"
    cols = [df[c].astype("int64").to_numpy() for c in df.columns]
    for a, b, c in itertools.permutations(range(3)):
        A, B, C = cols[a], cols[b], cols[c]
        if (B == A + 1).all() and (C == A + B).all():
            import numpy as np
            if np.array_equal(np.sort(A), np.arange(half)):
                return None
    return "values do not match y = x + 1, z = x + y over x = 0..N/2-1"


def _check_point(df, k):
    if len(df) != 1:
        return f"{len(df)} rows, expected 1"
    vals = set(int(v) for v in df.iloc[0].tolist())
    if not {k + 1, 2 * k + 1} <= vals:
        return f"row {df.iloc[0].to_dict()} lacks y={k + 1}, z={2 * k + 1}"
    return None


def worker_query(args):
    """Fresh process: imports, then first run + WARM_RUNS warm runs, each on a new Storage."""
    res = {}
    try:
        system, kind, n = args.system, args.kind, args.n
        k = point_key(n)
        t0 = time.perf_counter()
        import pandas as pd
        if system == "mandala_ast":
            mod = load_ma_ops()
            from mandala_ast import Storage
            path = os.path.join(args.store, "results.db")

            def open_():
                return Storage(path)

            def close(s):
                s.close()

            def run(s):
                if kind == "pattern":
                    return mod.pattern(s)
                if kind == "point":
                    return mod.point(s, k)
                y, z = mod.lookup(s, k)
                return pd.DataFrame({"x": [k], "y": [y], "z": [z]})
            counters = []
        else:
            inc_op, add_op = pm_import()
            from mandala.imports import Storage, wrap_atom
            sys.path.insert(0, HERE)
            from bench_memo import BodyCounter

            def open_():
                return Storage(db_path=args.store)

            def close(s):
                pass

            def run(s):
                if kind == "pattern":
                    return s.cf(add_op).expand_back(recursive=True).df(include_calls=False)
                if kind == "point":
                    return (s.cf(wrap_atom(k)).expand_forward(recursive=True)
                            .df(include_calls=False))
                with s:
                    y = inc_op(k)
                    z = add_op(y, k)
                return pd.DataFrame({"x": [k], "y": [s.unwrap(y)], "z": [s.unwrap(z)]})
            # a lookup must not execute the ops: count body runs
            counters = [BodyCounter(inc), BodyCounter(add)] if kind == "lookup" else []
        res["import_ms"] = (time.perf_counter() - t0) * 1e3

        def once():
            ts = time.perf_counter()
            s = open_()
            df = run(s)
            el = time.perf_counter() - ts
            close(s)
            return el, df

        first, df = once()
        res["first_s"] = first
        res["rows"] = len(df)
        res["columns"] = [str(c) for c in df.columns]
        res["check"] = _check_pattern(df, n) if kind == "pattern" else _check_point(df, k)
        del df
        res["warm_s"] = [once()[0] for _ in range(WARM_RUNS)]
        res["body_runs"] = sum(c.count for c in counters)
        for c in counters:
            c.close()
    except Exception as e:
        traceback.print_exc()
        res["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
    _json_dump(args.out, res)


# --------------------------------------------------------------------------- driver

class Run:
    def __init__(self, args):
        self.args = args
        self.loads = []
        self.logs_dir = os.path.join(RESULTS_DIR, "query-logs")
        os.makedirs(self.logs_dir, exist_ok=True)

    def worker(self, name, extra, timeout):
        """Run this script as a worker subprocess; returns (ok, reason)."""
        log = os.path.join(self.logs_dir, f"{name}.log")
        cmd = [sys.executable, os.path.abspath(__file__)] + extra
        self.loads.append(os.getloadavg()[0])
        t0 = time.perf_counter()
        reason = None
        with open(log, "w") as lf:
            try:
                p = subprocess.run(cmd, stdout=lf, stderr=subprocess.PIPE, text=True,
                                   timeout=timeout)
                lf.write(p.stderr)
                for ln in p.stderr.splitlines():
                    if ln.startswith("  ["):
                        print(ln, file=sys.stderr, flush=True)
                if p.returncode != 0:
                    from bench_memo import _tail
                    reason = f"worker exit {p.returncode}: {_tail(log)}"
            except subprocess.TimeoutExpired:
                reason = f"timed out after {timeout:.0f} s"
        self.loads.append(os.getloadavg()[0])
        _log(f"{name}: {time.perf_counter() - t0:.1f} s" + (f" — {reason}" if reason else ""))
        return reason

    def rebuild(self, system):
        r = self.args.rebuild
        return r == "all" or r == system

    # -- pymandala ------------------------------------------------------------------------
    def pm_search(self):
        budget = self.args.pm_budget
        d = pm_search_dir(budget)
        info_path = os.path.join(d, "search.json")
        cached = False
        if not self.rebuild("pymandala") and os.path.exists(info_path):
            with open(info_path) as fh:
                info = json.load(fh)
            cached = bool(info.get("complete")) and info.get("max_n") == self.args.pm_max
        if not cached:
            print(f"[pymandala] building, {budget:.0f} s budget ...", file=sys.stderr, flush=True)
            reason = self.worker("pymandala-build",
                                 ["--worker", "pm-search", "--store", d, "--budget", str(budget),
                                  "--max-n", str(self.args.pm_max)],
                                 timeout=budget * 1.5 + 600)
            if not os.path.exists(info_path):
                return {"error": reason or "no search.json"}
            with open(info_path) as fh:
                info = json.load(fh)
            if reason:
                info["error"] = reason
        else:
            print(f"[pymandala] reusing stores in {os.path.relpath(d, REPO)}", file=sys.stderr)
        info["cached"] = cached
        info["dir"] = d
        return info

    # -- mandala_ast ----------------------------------------------------------------------
    def ma_build(self, n):
        d = ma_store_dir(n)
        meta_path = os.path.join(d, "meta.json")
        if self.rebuild("mandala_ast") or not os.path.exists(meta_path):
            print(f"[mandala_ast] building {_k(n)} calls ...", file=sys.stderr, flush=True)
            reason = self.worker(f"mandala_ast-build-{_k(n)}",
                                 ["--worker", "ma-build", "--store", d, "--n", str(n)],
                                 timeout=self.args.build_timeout)
            if reason or not os.path.exists(meta_path):
                return {"error": reason or "no meta.json"}
            cached = False
        else:
            print(f"[mandala_ast] reusing {os.path.relpath(d, REPO)}", file=sys.stderr)
            cached = True
        with open(meta_path) as fh:
            meta = json.load(fh)
        meta["cached"] = cached
        meta["dir"] = d
        meta["size_bytes"] = dir_size(d)
        return meta

    def queries(self, system, n, store):
        out = {}
        for kind in KINDS:
            name = f"{system}-{kind}-{_k(n)}"
            res_path = os.path.join(self.logs_dir, f"{name}.json")
            if os.path.exists(res_path):
                os.remove(res_path)
            reason = self.worker(name, ["--worker", "query", "--system", system, "--kind", kind,
                                        "--n", str(n), "--store", store, "--out", res_path],
                                 timeout=self.args.timeout)
            res = {}
            if os.path.exists(res_path):
                with open(res_path) as fh:
                    res = json.load(fh)
            if reason:
                res.setdefault("error", reason)
            out[kind] = res
            if "first_s" in res:
                _log(f"[{system}] {kind} at {_k(n)}: first {res['first_s'] * 1e3:,.1f} ms, warm "
                     f"{statistics.median(res['warm_s']) * 1e3:,.1f} ms, {res['rows']} rows"
                     + (f" — CHECK FAILED: {res['check']}" if res.get("check") else ""))
        return out


def run_driver(args):
    sys.path.insert(0, HERE)
    only = [t.strip() for t in (args.only or "").split(",") if t.strip()]
    bad = [t for t in only if t not in SYSTEMS]
    if bad:
        sys.exit(f"--only: unknown system(s) {bad}; systems: {SYSTEMS}")
    systems = only or SYSTEMS
    if args.sizes:
        sizes = sorted(set(args.sizes))
    else:
        sizes = [10_000, 100_000] if args.quick else [1_000_000]
    if args.pm_budget is None:
        args.pm_budget = 30.0 if args.quick else 180.0
    write_ops_module()
    run = Run(args)
    t_all = time.perf_counter()
    print(f"bench_query: {'quick' if args.quick else 'full'} run; systems {systems}; "
          f"mandala_ast sizes {[_k(n) for n in sizes]}; stores in "
          f"{os.path.relpath(STORES_DIR, REPO)}", file=sys.stderr, flush=True)
    results = {"pymandala": {}, "mandala_ast": {}}
    pm_n = None
    if "pymandala" in systems:
        info = run.pm_search()
        results["pymandala"]["search"] = info
        cps = info.get("checkpoints") or []
        if cps:
            pm_n = cps[-1]["n"]
            results["pymandala"][pm_n] = {
                "build": {"n": pm_n, "build_s": cps[-1]["build_s"], "cached": info["cached"],
                          "size_bytes": dir_size(os.path.join(info["dir"], f"n{pm_n}.db"))},
                "queries": run.queries("pymandala", pm_n,
                                       os.path.join(info["dir"], f"n{pm_n}.db")),
            }
    ma_sizes = sorted(set(sizes + ([pm_n] if pm_n and "mandala_ast" in systems else [])))
    if "mandala_ast" in systems:
        for n in ma_sizes:
            meta = run.ma_build(n)
            entry = {"build": meta}
            if "error" not in meta:
                entry["queries"] = run.queries("mandala_ast", n, meta["dir"])
            results["mandala_ast"][n] = entry
    else:
        ma_sizes = []
    report = render(results, systems, pm_n, ma_sizes, args, time.perf_counter() - t_all,
                    run.loads)
    print(report)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    tag = "quick" if args.quick else "full"
    md_path = os.path.join(RESULTS_DIR, f"query-{stamp}-{tag}.md")
    with open(md_path, "w") as fh:
        fh.write(report + "\n")
    with open(os.path.join(RESULTS_DIR, f"query-{stamp}-{tag}.json"), "w") as fh:
        json.dump({"argv": sys.argv, "loadavg": run.loads, "pm_n": pm_n, "ma_sizes": ma_sizes,
                   "results": {s: {str(k): v for k, v in d.items()} for s, d in results.items()}},
                  fh, indent=1)
    shutil.copyfile(md_path, os.path.join(RESULTS_DIR, f"query-latest-{tag}.md"))
    print(f"\nwritten: {os.path.relpath(md_path, REPO)} (+ .json)", file=sys.stderr)


# --------------------------------------------------------------------------- table

ROWS = [
    # key, label, unit, target (op, value) or None
    ("pattern.first", "1a. 2-op pattern → DataFrame, fresh process: first run", "s", ("le", 3.0)),
    ("pattern.warm", "1b. 2-op pattern → DataFrame, warm (median of 3)", "s", ("le", 3.0)),
    ("pattern.rows", "1c. 2-op pattern: rows returned (N/2 expected)", "rows", None),
    ("point.first", "2a. point query → DataFrame, fresh process: first run", "ms", ("le", 20.0)),
    ("point.warm", "2b. point query → DataFrame, warm (median of 3)", "ms", ("le", 20.0)),
    ("lookup.first", "3a. point lookup by re-running the code (memo hits), first run", "ms", None),
    ("lookup.warm", "3b. point lookup by re-running the code, warm (median of 3)", "ms", None),
    ("import", "4. fresh process: import library + pandas + ops (once; not in 1a–3a)", "ms",
     None),
    ("build.per_call", "5a. build: time per stored call", "µs/call", None),
    ("build.total", "5b. build: total time", "s", None),
    ("size.total", "6a. store size on disk", "MB", None),
    ("size.per_call", "6b. store size per stored call", "bytes", None),
]
SCALE = {"s": 1.0, "ms": 1e3}


def measure(entry, key, n):
    """A bench_memo-style record ({"value": v} or {"na": reason}) for one cell."""
    if entry is None:
        return {"na": "not run"}
    build = entry.get("build", {})
    if key.startswith("build.") or key.startswith("size."):
        if "error" in build:
            return {"na": f"build failed: {build['error']}"}
        if key == "build.per_call":
            return {"value": build["build_s"] / n * 1e6}
        if key == "build.total":
            return {"value": build["build_s"]}
        if key == "size.total":
            return {"value": build["size_bytes"] / 1e6}
        return {"value": build["size_bytes"] / n}
    queries = entry.get("queries")
    if queries is None:
        return {"na": f"build failed: {build.get('error', '?')}"}
    if key == "import":
        vals = [q["import_ms"] for q in queries.values() if "import_ms" in q]
        return {"value": statistics.median(vals)} if vals else {"na": "no run"}
    kind, what = key.split(".")
    q = queries.get(kind, {})
    if "first_s" not in q:
        return {"na": q.get("error", "not run")}
    note = None
    if q.get("check"):
        note = f"wrong result: {q['check']}"
    if q.get("body_runs"):
        note = f"{q['body_runs']} op bodies executed (not a pure lookup)"
    if what == "rows":
        return {"value": q["rows"], "note": note} if note else {"value": q["rows"]}
    unit = next(r[2] for r in ROWS if r[0] == key)
    v = (q["first_s"] if what == "first" else statistics.median(q["warm_s"])) * SCALE[unit]
    rec = {"value": v, "samples": [s * SCALE[unit] for s in q.get("warm_s", [])]}
    if q.get("error"):
        note = (note + "; " if note else "") + q["error"]
    if note:
        rec["note"] = note
    return rec


def render(results, systems, pm_n, ma_sizes, args, elapsed, loads=()):
    from bench_memo import MandalaAstAdapter, _cpu_name, _fmt, _short
    cols = []  # (header, system, n)
    if "pymandala" in systems:
        cols.append((f"pymandala ({_k(pm_n)})" if pm_n else "pymandala", "pymandala", pm_n))
    for n in ma_sizes:
        tag = " (same N)" if n == pm_n else ""
        cols.append((f"mandala_ast ({_k(n)}){tag}", "mandala_ast", n))
    top = ma_sizes[-1] if ma_sizes else None
    ratio = pm_n is not None and pm_n in ma_sizes

    def cell(system, n, key):
        entry = results.get(system, {}).get(n) if n else None
        if system == "pymandala" and n is None:
            err = results["pymandala"].get("search", {}).get("error")
            return {"na": f"no store built ({err})" if err else "no store built"}
        return measure(entry, key, n)

    head = ["measure", "unit"] + [c[0] for c in cols] + ["target"]
    if top:
        head.append(f"met? (mandala_ast {_k(top)})")
    if ratio:
        head.append(f"pymandala / mandala_ast ({_k(pm_n)})")
    lines = [f"## mandala_ast query benchmark ({'--quick' if args.quick else 'full'})", ""]
    lines.append(f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}; "
                 f"wall time {elapsed / 60:.1f} min")
    lines.append(f"- python: {platform.python_version()} ({sys.executable}); "
                 f"{platform.platform()}; {os.cpu_count()} CPUs; {_cpu_name()}")
    vers = []
    if "pymandala" in systems:
        try:
            vers.append(f"pymandala {pm_version()}")
        except Exception:
            vers.append("pymandala (not installed)")
    if "mandala_ast" in systems:
        vers.append(f"mandala_ast {MandalaAstAdapter().version()}, store format {ma_format()}")
    lines.append("- versions: " + "; ".join(vers))
    lines.append("- data: for i in range(N/2): y = inc(i); z = add(y, i) → N stored calls; "
                 f"point query/lookup at x = 12345 mod N/2; first run + median of {WARM_RUNS} "
                 "warm runs, each on a new Storage object, in one fresh process per query")
    if loads:
        busy = max(loads) > 1.5
        lines.append(f"- 1-min load average around the workers: {min(loads):.1f}–{max(loads):.1f}"
                     f" on {os.cpu_count()} CPUs"
                     + (" — **other processes were competing for the CPU: numbers are "
                        "pessimistic; rerun on an idle machine**" if busy else " (quiet)"))
    lines.append("")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * len(head)) + "|")
    notes = []
    for key, label, unit, target in ROWS:
        recs = [cell(s, n, key) for _, s, n in cols]
        row = [label, unit] + [_short(_fmt(r), 40) for r in recs]
        row.append(f"≤ {target[1]:g} {unit}" if target else "—")
        if top:
            r = cell("mandala_ast", top, key)
            if target is None or "value" not in r:
                row.append("—")
            else:
                row.append("yes" if r["value"] <= target[1] else "NO")
        if ratio:
            a = cell("pymandala", pm_n, key)
            b = cell("mandala_ast", pm_n, key)
            if ("value" in a and "value" in b and b["value"] and unit in ("s", "ms")):
                x = a["value"] / b["value"]
                row.append(f"{x:,.0f}×" if x >= 10 else f"{x:.2f}×")
            elif "value" in a and "value" in b and b["value"] and key.startswith(("build", "size")):
                x = a["value"] / b["value"]
                row.append(f"{x:,.0f}×" if x >= 10 else f"{x:.2f}×")
            else:
                row.append("—")
        lines.append("| " + " | ".join(row) + " |")
        for (h, _, _), r in zip(cols, recs):
            if r.get("note"):
                notes.append(f"{h}, {label}: * {r['note']}")
            if "na" in r and len(f"n/a: {r['na']}") > 40:
                notes.append(f"{h}, {label}: n/a: {r['na']}")
    lines.append("")
    lines.append("Rows 1–3: a new interpreter per query; imports (library, pandas, ops module) "
                 "first, untimed there and reported in row 4; then each run = construct the "
                 "Storage + query + DataFrame. Row 3 is not the query API: it re-runs the code "
                 "in a run block (memoized hits) and puts the values in a one-row DataFrame. "
                 "Row 5: build from empty through each system's ordinary run API "
                 f"(mandala_ast: compiled run blocks of {2 * MA_CHUNK:,} calls; pymandala: "
                 f"`with storage:` blocks of {2 * PM_CHUNK:,} calls). Row 6: all files of the "
                 "store (database, WAL, blobs). The last column says how many times faster "
                 "mandala_ast is (or how many times smaller its store is) at pymandala's N.")
    lines.append("")
    lines.append("How each system queries:")
    if "mandala_ast" in systems:
        lines.append("- mandala_ast: `with storage.query() as q: x = Q(); y = inc(x); "
                     "z = add(y, x)` then `q.df()` (columns x, y, z); point query: the same "
                     "block with `inc(k)`, `add(y, k)` (columns y, z); lookup: `with "
                     "storage.run(allow_new_calls=False): y = inc(k); z = add(y, k)`. Code "
                     "compiled with `mandala_ast.compile_module`.")
    if "pymandala" in systems:
        lines.append("- pymandala (0.2 has no Q()/query blocks; ComputationFrames instead): "
                     "pattern = `storage.cf(add).expand_back(recursive=True)"
                     ".df(include_calls=False)` (columns y, x, var_0 = our x, y, z); point query "
                     "= `storage.cf(wrap_atom(k)).expand_forward(recursive=True)"
                     ".df(include_calls=False)`; lookup = `with storage: y = inc(k); "
                     "z = add(y, k)` + `storage.unwrap`. Shim: `pd.DataFrame.applymap = "
                     "pd.DataFrame.map` (pymandala 0.2.0a0 calls applymap, removed in pandas 3).")
        info = results["pymandala"].get("search") or {}
        if info:
            cps = ", ".join(f"{_k(c['n'])} in {c['build_s']:.0f} s" for c in info.get("checkpoints", []))
            lines.append(f"- pymandala store size search ({info.get('budget_s', 0):.0f} s "
                         f"budget{', cached from ' + info.get('date', '?') if info.get('cached') else ''}): "
                         f"{cps or 'no size reached'}; stopped: {info.get('stopped')}")
    for n in ma_sizes:
        b = results["mandala_ast"].get(n, {}).get("build", {})
        if b.get("cached"):
            lines.append(f"- mandala_ast {_k(n)} store: cached, built {b.get('date')} by "
                         f"{b.get('mandala_ast')} (`--rebuild` to redo)")
    if top and top < 1_000_000:
        lines.append(f"- the targets are for 1M stored calls; `met?` here is at {_k(top)}")
    if notes:
        lines.append("")
        lines.append("Notes:")
        lines += [f"- {x}" for x in notes]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="mandala_ast at 10k/100k, pymandala budget 30 s")
    ap.add_argument("--sizes", type=lambda s: [_parse_n(x) for x in s.split(",")],
                    help="mandala_ast store sizes in stored calls, e.g. 100k,1M (default 1M)")
    ap.add_argument("--only", metavar="SYSTEM[,SYSTEM]", help=f"restrict to {SYSTEMS}")
    ap.add_argument("--rebuild", nargs="?", const="all",
                    choices=["all", "pymandala", "mandala_ast"],
                    help="rebuild cached stores (default: all)")
    ap.add_argument("--pm-budget", type=float, default=None,
                    help="seconds allowed to build pymandala's store (default 180; 30 with --quick)")
    ap.add_argument("--pm-max", type=int, default=CHECKPOINTS[-1],
                    help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds per query worker process (default 900)")
    ap.add_argument("--build-timeout", type=float, default=3600.0,
                    help="seconds per mandala_ast build process (default 3600)")
    # internal
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--system", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--max-n", type=int, default=CHECKPOINTS[-1], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, HERE)
    if args.worker == "pm-search":
        worker_pm_search(args)
    elif args.worker == "ma-build":
        worker_ma_build(args)
    elif args.worker == "query":
        worker_query(args)
    else:
        run_driver(args)


if __name__ == "__main__":
    # Run as the module ``bench_query`` (not ``__main__``), as bench_memo does, so the
    # pymandala ops are the same functions in every process.
    sys.path.insert(0, HERE)
    import bench_query

    bench_query.main()
