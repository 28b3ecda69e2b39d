#!/usr/bin/env python
"""Memoization overhead, side by side: mandala_ast vs its peers.

Systems: functools.lru_cache (in-memory floor), joblib.Memory, pymandala (import name
``mandala``), rote and mandala_ast. Each system runs in its own worker subprocess, so a
peer that is missing or crashes shows up as "n/a: reason" instead of killing the run.

Workloads (f(x) = x + 1 unless said; medians over repeats; each repeat times a whole loop
and divides by the number of calls):

1. warm hit in process: N calls, each already cached by this process.
2. hit from a NEW process with 10k / 100k stored calls: a fresh interpreter imports the
   library, opens the store and hits all N calls. Reported separately: the per-call hit time
   (the loop, including the storage block's enter/exit), the time to open the store
   (construct Storage/Memory + wrap the op, library import excluded) and the library import.
3. miss overhead until durable: N new calls, timed through the block exit (mandala_ast and
   pymandala commit there); joblib writes its files without fsync; rote fsyncs (its default).
4. hit with a large float64 numpy argument (100 MB): per-call time and hashing GB/s =
   bytes / per-call time. Each repeat passes a fresh copy (same content, new object), so no
   system can get away with caching by object identity.

Usage:
    python benchmarks/bench_memo.py                 # full run (~15-25 min; pymandala dominates)
    python benchmarks/bench_memo.py --quick         # small sizes, smoke test (~1-2 min)
    python benchmarks/bench_memo.py --only joblib,mandala_ast
    python benchmarks/bench_memo.py --only warm     # only workload 1, all systems

The table is printed and written to benchmarks/results/ (markdown + raw JSON).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")

SYSTEMS = ["lru_cache", "joblib", "rote", "pymandala", "mandala_ast"]
PEERS = [s for s in SYSTEMS if s != "mandala_ast"]
WORKLOADS = ["warm", "newproc", "miss", "bigarg"]


# --------------------------------------------------------------------------- the ops
# Plain module-level functions; each worker wraps them with its system's decorator. The
# worker imports this file as the module ``bench_memo`` (not ``__main__``), so op identities
# (module-qualified names) are the same in the populating and in the fresh hit process.

def inc(x):
    return x + 1


def first(a):
    return float(a.flat[0])


# --------------------------------------------------------------------------- sizes

def sizes(quick: bool) -> dict:
    if quick:
        return dict(warm_n=200, miss_n=200, stored=[500, 2000], array_mb=10,
                    rep_warm=3, rep_miss=2, rep_newproc=1, rep_big=2)
    return dict(warm_n=2000, miss_n=2000, stored=[10_000, 100_000], array_mb=100,
                rep_warm=7, rep_miss=5, rep_newproc=3, rep_big=5)


def _k(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def measure_rows(sz: dict) -> list[tuple[str, str, str, str]]:
    """(key, label, unit, target) in display order."""
    n10, n100 = sz["stored"]
    mb = sz["array_mb"]
    return [
        ("warm_hit", f"1. warm hit, in process ({sz['warm_n']} calls)", "µs/call", "≤ 5"),
        (f"newproc_hit_{n10}", f"2a. hit from new process, {_k(n10)} stored", "µs/call", "≤ 20"),
        (f"newproc_hit_{n100}", f"2b. hit from new process, {_k(n100)} stored", "µs/call", "≤ 20"),
        (f"newproc_open_{n10}", f"2c. new process: open store, {_k(n10)} stored (once)", "ms", "—"),
        (f"newproc_open_{n100}", f"2d. new process: open store, {_k(n100)} stored (once)", "ms", "—"),
        ("newproc_import", "2e. new process: import library (once)", "ms", "—"),
        ("miss_committed", f"3. miss until durable/committed ({sz['miss_n']} new calls)", "µs/call", "≤ 25"),
        ("bigarg_hit", f"4a. hit, {mb} MB float64 argument", "ms/call", "—"),
        ("bigarg_gbps", f"4b. hit, {mb} MB argument: hashing rate", "GB/s", "≥ 8"),
    ]


HIGHER_IS_BETTER = {"bigarg_gbps"}
TARGETS = {"warm_hit": ("le", 5.0), "miss_committed": ("le", 25.0), "bigarg_gbps": ("ge", 8.0)}


def target_for(key: str):
    if key.startswith("newproc_hit_"):
        return ("le", 20.0)
    return TARGETS.get(key)


# --------------------------------------------------------------------------- body counter
# Counts executions of an op body through sys.monitoring (Python >= 3.12) local events on
# that one code object: zero cost on hits (the body never runs), and it proves that a "hit"
# really did not recompute. Unavailable on older Pythons (then reported as unverified).

class BodyCounter:
    def __init__(self, fn):
        self.count = 0
        self.available = False
        self._tool = None
        self._code = fn.__code__
        mon = getattr(sys, "monitoring", None)
        if mon is None:
            return
        for tool in (3, 2, 1, 0):
            if mon.get_tool(tool) is None:
                try:
                    mon.use_tool_id(tool, "bench_memo-counter")
                except ValueError:
                    continue
                self._tool = tool
                break
        if self._tool is None:
            return

        def _cb(code, offset):
            self.count += 1

        mon.register_callback(self._tool, mon.events.PY_START, _cb)
        mon.set_local_events(self._tool, self._code, mon.events.PY_START)
        self.available = True

    def close(self):
        if self._tool is not None:
            mon = sys.monitoring
            mon.set_local_events(self._tool, self._code, 0)
            mon.register_callback(self._tool, mon.events.PY_START, None)
            mon.free_tool_id(self._tool)
            self._tool = None


# --------------------------------------------------------------------------- adapters

class NA(Exception):
    """A measure that does not apply to a system (reported as n/a: reason)."""


class Adapter:
    name = "?"
    durable = True

    def version(self) -> str:
        raise NotImplementedError

    def import_lib(self):
        pass

    def open(self, path: str):
        """Create/open the store at ``path`` (a directory the adapter may fill)."""

    def wrap(self, fn):
        raise NotImplementedError

    def block(self):
        return contextlib.nullcontext()

    def value(self, r):
        return r

    def notes(self) -> list[str]:
        return []


class LruAdapter(Adapter):
    name = "lru_cache"
    durable = False

    def version(self):
        return f"stdlib (Python {platform.python_version()})"

    def wrap(self, fn):
        import functools
        return functools.lru_cache(maxsize=None)(fn)

    def notes(self):
        return ["lru_cache: in-memory floor; its 'miss' row is not durable (nothing is written)."]


class JoblibAdapter(Adapter):
    name = "joblib"

    def version(self):
        import joblib
        return joblib.__version__

    def import_lib(self):
        import joblib  # noqa: F401

    def open(self, path):
        import joblib
        import joblib.memory
        # joblib remembers, per function object and process-wide, that it has checked the
        # function's code, and then never writes func_code.py into a *second* location: the
        # first call in a later process would then miss. Forget it, as a fresh process would.
        joblib.memory._FUNCTION_HASHES.clear()
        self.mem = joblib.Memory(location=path, verbose=0)

    def wrap(self, fn):
        return self.mem.cache(fn)

    def notes(self):
        return ["joblib: Memory(location, verbose=0), defaults otherwise; files are written "
                "without fsync."]


class RoteAdapter(Adapter):
    name = "rote"

    def version(self):
        import importlib.metadata as md
        return md.version("rote")

    def import_lib(self):
        if sys.version_info < (3, 12):
            raise NA("rote needs Python >= 3.12")
        import rote  # noqa: F401

    def open(self, path):
        import rote
        from rote import session as _rs
        # rote only caches calls that ran >= min_duration_s (default 1 s), so a trivial op
        # would never be cached. Lower the threshold to 0. It also blacklists a function whose
        # cache write (encode + fsync) took longer than its run and >= 5 ms; disable that guard
        # too, or a slow fsync would silently stop it caching f(x) = x + 1.
        sess = _rs._get_session()
        if sess.store is not None:  # rote keeps one process-global store: point it at `path`
            sess.store.close()
            sess.store = None
        rote.configure(cache_dir=path, min_duration_s=0.0)
        _rs._PERF_GUARD_MIN_WRITE_NS = 1 << 62

    def wrap(self, fn):
        import rote
        return rote.cache(fn)

    def stats(self):
        import rote
        s = rote.stats()
        return {k: s.get(k) for k in ("hits", "misses", "too_fast_skips", "impure_skips")}

    def notes(self):
        return ["rote: rote.configure(min_duration_s=0.0) (default 1 s: trivial calls are never "
                "cached) and session._PERF_GUARD_MIN_WRITE_NS raised to disable its "
                "write-slower-than-run blacklist; fsync_writes and eager hit counters left at "
                "their defaults (on). Its in-memory hit tier holds 256 entries, so warm hits over "
                "more distinct calls than that mostly go to SQLite + blob files."]


class PyMandalaAdapter(Adapter):
    name = "pymandala"

    def version(self):
        import importlib.metadata as md
        return md.version("pymandala")

    def import_lib(self):
        import mandala.imports  # noqa: F401

    def open(self, path):
        from mandala.imports import Storage
        os.makedirs(path, exist_ok=True)
        # Without an overflow_dir pymandala refuses values > 50 MB ("too large ... and no
        # overflow storage is provided"), e.g. the 100 MB argument of workload 4.
        self.storage = Storage(db_path=os.path.join(path, "pymandala.db"),
                               overflow_dir=os.path.join(path, "overflow"))

    def wrap(self, fn):
        from mandala.imports import op
        return op(fn)

    def block(self):
        return self.storage

    def value(self, r):
        return self.storage.unwrap(r)

    def notes(self):
        return ["pymandala: Storage(db_path=..., overflow_dir=...) (values > 50 MB need the "
                "overflow dir), `with storage:` blocks; every result is unwrapped with "
                "storage.unwrap (inside the timing) to get the plain value."]


class MandalaAstAdapter(Adapter):
    name = "mandala_ast"

    def version(self):
        import importlib.metadata as md
        v = md.version("mandala_ast")
        try:
            rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
            dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "mandala_ast"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            if rev:
                v += f" ({rev}{'+uncommitted' if dirty else ''})"
        except Exception:
            pass
        return v

    def import_lib(self):
        from mandala_ast import Storage, op  # noqa: F401

    def open(self, path):
        from mandala_ast import Storage
        os.makedirs(path, exist_ok=True)
        self.storage = Storage(os.path.join(path, "results.db"))

    def wrap(self, fn):
        from mandala_ast import op
        return op(fn)

    def block(self):
        return self.storage

    def notes(self):
        return ["mandala_ast: uncompiled code (no import hook), `with storage:` blocks; values "
                "come back plain."]


ADAPTERS = {a.name: a for a in (LruAdapter, JoblibAdapter, RoteAdapter, PyMandalaAdapter,
                                 MandalaAstAdapter)}


# --------------------------------------------------------------------------- worker

def _log(system, msg):
    print(f"  [{system}] {msg}", file=sys.stderr, flush=True)


class Recorder:
    def __init__(self, path):
        self.path = path
        self.data = {"measures": {}, "notes": [], "version": None}

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, self.path)

    def put(self, key, value=None, na=None, note=None, samples=None):
        rec = {"na": na} if na is not None else {"value": value}
        if note:
            rec["note"] = note
        if samples is not None:
            rec["samples"] = samples
        self.data["measures"][key] = rec
        self.save()


def _time_loop(fn, xs, ad) -> float:
    """Seconds for: with block: for x in xs: value(fn(x))."""
    val = ad.value
    if type(ad).value is Adapter.value:  # plain values: keep the loop minimal
        t0 = time.perf_counter()
        with ad.block():
            for x in xs:
                fn(x)
        return time.perf_counter() - t0
    t0 = time.perf_counter()
    with ad.block():
        for x in xs:
            val(fn(x))
    return time.perf_counter() - t0


def _fresh_adapter(system, path):
    ad = ADAPTERS[system]()
    ad.import_lib()
    ad.open(path)
    return ad


def work_warm(system, sz, wd, rec):
    n = sz["warm_n"]
    ad = _fresh_adapter(system, os.path.join(wd, "warm"))
    f = ad.wrap(inc)
    xs = list(range(n))
    counter = BodyCounter(inc)
    with ad.block():
        prime = [ad.value(f(x)) for x in xs]
    assert prime == [x + 1 for x in xs], "wrong values on priming"
    calibrated = counter.count == n  # the counter does see this system's misses
    counter.count = 0
    samples = []
    for _ in range(sz["rep_warm"]):
        samples.append(_time_loop(f, xs, ad) / n * 1e6)
    counter.close()
    note = None
    if counter.available and counter.count:
        note = f"{counter.count} of {n * len(samples)} 'hits' executed the body"
    elif not counter.available:
        note = "hits unverified (needs Python >= 3.12)"
    elif not calibrated:
        note = "hits unverified (body counter did not see the priming misses)"
    rec.put("warm_hit", statistics.median(samples), note=note, samples=samples)


def work_miss(system, sz, wd, rec):
    n = sz["miss_n"]
    ad = _fresh_adapter(system, os.path.join(wd, "miss"))
    f = ad.wrap(inc)
    # warm-up block: creates the schema/dirs and registers the op (untimed)
    with ad.block():
        for x in range(-10, 0):
            ad.value(f(x))
    samples = []
    for r in range(sz["rep_miss"]):
        xs = range(1_000_000 * (r + 1), 1_000_000 * (r + 1) + n)
        samples.append(_time_loop(f, xs, ad) / n * 1e6)
    note = None if ad.durable else "not durable: in-memory only (no ratio)"
    if system == "rote":
        st = ad.stats()
        if st.get("too_fast_skips") or st.get("impure_skips"):
            note = f"rote skipped caching: {st}"
    rec.put("miss_committed", statistics.median(samples), note=note, samples=samples)


def work_bigarg(system, sz, wd, rec):
    import numpy as np
    if system == "lru_cache":
        raise NA("ndarray is unhashable")
    nbytes = sz["array_mb"] * 1_000_000
    base = np.random.default_rng(0).random(nbytes // 8)
    ad = _fresh_adapter(system, os.path.join(wd, "bigarg"))
    f = ad.wrap(first)
    counter = BodyCounter(first)
    with ad.block():
        v = ad.value(f(base))
    assert v == float(base[0])
    calibrated = counter.count == 1
    counter.count = 0
    samples = []
    for _ in range(sz["rep_big"]):
        arr = base.copy()  # same content, new object: no identity shortcuts
        t0 = time.perf_counter()
        with ad.block():
            ad.value(f(arr))
        samples.append(time.perf_counter() - t0)
        del arr
    counter.close()
    note = None
    if counter.available and counter.count:
        note = f"{counter.count} of {len(samples)} 'hits' executed the body"
    elif counter.available and not calibrated:
        note = "hits unverified (body counter did not see the priming miss)"
    med = statistics.median(samples)
    rec.put("bigarg_hit", med * 1e3, note=note, samples=[s * 1e3 for s in samples])
    rec.put("bigarg_gbps", nbytes / med / 1e9, note=note)


def work_newproc(system, sz, wd, rec, args):
    if system == "lru_cache":
        for n in sz["stored"]:
            rec.put(f"newproc_hit_{n}", na="in-memory only")
            rec.put(f"newproc_open_{n}", na="in-memory only")
        rec.put("newproc_import", na="in-memory only")
        return
    imports = []
    for n in sz["stored"]:
        path = os.path.join(wd, f"stored{n}")
        try:
            calibrated = _populate(system, path, n, args.populate_budget)
        except NA as e:
            rec.put(f"newproc_hit_{n}", na=str(e))
            rec.put(f"newproc_open_{n}", na=str(e))
            continue
        hits, opens, notes = [], [], set()
        for r in range(sz["rep_newproc"]):
            out = os.path.join(wd, f"hit{n}-{r}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--hit", system,
                   "--store", path, "--n", str(n), "--out", out]
            with open(os.path.join(wd, f"hit{n}-{r}.log"), "w") as log:
                p = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                   timeout=args.timeout)
            if p.returncode != 0 or not os.path.exists(out):
                raise RuntimeError(f"hit subprocess failed (exit {p.returncode}): "
                                   + _tail(os.path.join(wd, f"hit{n}-{r}.log")))
            with open(out) as fh:
                res = json.load(fh)
            if res.get("error"):
                raise RuntimeError(res["error"])
            hits.append(res["hit_us"])
            opens.append(res["open_ms"])
            imports.append(res["import_ms"])
            if res.get("body_runs"):
                notes.add(f"{res['body_runs']} of {n} calls executed the body (not hits)")
            if not res.get("verified"):
                notes.add("hits unverified (needs Python >= 3.12)")
            elif not calibrated:
                notes.add("hits unverified (body counter did not see the populating misses)")
        note = "; ".join(sorted(notes)) or None
        bad = [m for m in notes if "executed the body" in m]
        if bad:
            rec.put(f"newproc_hit_{n}", na=bad[0], samples=hits)
        else:
            rec.put(f"newproc_hit_{n}", statistics.median(hits), note=note, samples=hits)
        rec.put(f"newproc_open_{n}", statistics.median(opens), samples=opens)
        _log(system, f"new-process hit, {n} stored: {statistics.median(hits):.1f} µs/call, "
                     f"open {statistics.median(opens):.1f} ms")
    if imports:
        rec.put("newproc_import", statistics.median(imports), samples=imports)


def _populate(system, path, n, budget):
    """Store f(0..n-1) through the system's ordinary API, in blocks of 2000 calls."""
    ad = _fresh_adapter(system, path)
    f = ad.wrap(inc)
    if system == "rote":
        # Only population: skip rote's per-write fsync to save time (hits are unaffected).
        import rote
        rote.configure(fsync_writes=False)
    counter = BodyCounter(inc)
    t0 = time.perf_counter()
    chunk = 2000
    for lo in range(0, n, chunk):
        tc = time.perf_counter()
        with ad.block():
            for x in range(lo, min(n, lo + chunk)):
                f(x)
        now = time.perf_counter()
        el, done = now - t0, min(n, lo + chunk)
        projected = el + (n - done) * (now - tc) / (done - lo)  # at the latest chunk's rate
        if done < n and (el > budget or projected > 3 * budget):
            raise NA(f"store not built: {done} of {n} calls stored in {el:.0f} s, "
                     f"projected ≥ {projected:.0f} s in all (--populate-budget {budget:.0f} s)")
    _log(system, f"populated {n} calls in {time.perf_counter() - t0:.1f} s")
    counter.close()
    if system == "rote":
        st = ad.stats()
        if st.get("too_fast_skips") or st.get("impure_skips"):
            raise NA(f"rote did not cache the calls: {st}")
    return counter.count == n


def hit_main(args):
    """Fresh process: import, open the store and hit all N stored calls."""
    res = {}
    try:
        t0 = time.perf_counter()
        ad = ADAPTERS[args.hit]()
        ad.import_lib()
        t1 = time.perf_counter()
        ad.open(args.store)
        f = ad.wrap(inc)
        t2 = time.perf_counter()
        counter = BodyCounter(inc)
        xs = range(args.n)
        el = _time_loop(f, xs, ad)
        counter.close()
        check = [ad.value(f(x)) for x in (0, args.n // 2, args.n - 1)]
        if check != [1, args.n // 2 + 1, args.n]:
            raise RuntimeError(f"wrong values: {check}")
        res = dict(import_ms=(t1 - t0) * 1e3, open_ms=(t2 - t1) * 1e3,
                   hit_us=el / args.n * 1e6, body_runs=counter.count,
                   verified=counter.available)
    except Exception as e:
        traceback.print_exc()
        res = {"error": f"{type(e).__name__}: {e}"}
    with open(args.out, "w") as fh:
        json.dump(res, fh)


def worker_main(args):
    system = args.worker
    rec = Recorder(args.out)
    sz = sizes(args.quick)
    wd = args.store
    ad = ADAPTERS[system]()
    try:
        ad.import_lib()
        rec.data["version"] = ad.version()
    except NA as e:
        rec.data["fatal"] = str(e)
        rec.save()
        return
    except Exception as e:
        traceback.print_exc()
        rec.data["fatal"] = f"import failed: {type(e).__name__}: {e}"
        rec.save()
        return
    rec.data["notes"] = ad.notes()
    rec.save()
    jobs = {"warm": lambda: work_warm(system, sz, wd, rec),
            "miss": lambda: work_miss(system, sz, wd, rec),
            "bigarg": lambda: work_bigarg(system, sz, wd, rec),
            "newproc": lambda: work_newproc(system, sz, wd, rec, args)}
    keys_of = {"warm": ["warm_hit"], "miss": ["miss_committed"],
               "bigarg": ["bigarg_hit", "bigarg_gbps"],
               "newproc": [k for n in sz["stored"] for k in (f"newproc_hit_{n}",
                                                             f"newproc_open_{n}")]
               + ["newproc_import"]}
    for w in args.workloads.split(","):
        _log(system, f"{w} ...")
        t0 = time.perf_counter()
        try:
            jobs[w]()
        except NA as e:
            for k in keys_of[w]:
                rec.data["measures"].setdefault(k, {"na": str(e)})
            rec.save()
        except Exception as e:
            traceback.print_exc()
            reason = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            for k in keys_of[w]:
                rec.data["measures"].setdefault(k, {"na": reason})
            rec.save()
        _log(system, f"{w} done in {time.perf_counter() - t0:.1f} s: "
             + ", ".join(f"{k}={_fmt(rec.data['measures'].get(k))}" for k in keys_of[w]))


# --------------------------------------------------------------------------- driver

def _tail(path, n=3):
    try:
        with open(path, errors="replace") as fh:
            lines = [ln.rstrip() for ln in fh if ln.strip()]
        return " | ".join(lines[-n:])[-400:]
    except OSError:
        return "(no log)"


def _fmt(rec, unit=None):
    if rec is None:
        return "—"
    if "na" in rec:
        return f"n/a: {rec['na']}"
    v = rec["value"]
    s = (f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 1 else f"{v:.2f}" if v >= 0.1
         else f"{v:.3f}")
    if rec.get("note"):
        s += "*"
    return s


def _short(s, n=48):
    return s if len(s) <= n else s[: n - 1] + "…"


def run_driver(args):
    sz = sizes(args.quick)
    only = [t.strip() for t in (args.only or "").split(",") if t.strip()]
    bad = [t for t in only if t not in SYSTEMS and t not in WORKLOADS]
    if bad:
        sys.exit(f"--only: unknown name(s) {bad}; systems: {SYSTEMS}; workloads: {WORKLOADS}")
    systems = [s for s in SYSTEMS if s in only] or SYSTEMS
    workloads = [w for w in WORKLOADS if w in only] or WORKLOADS
    root = args.workdir or tempfile.mkdtemp(prefix="bench_memo-")
    os.makedirs(root, exist_ok=True)
    print(f"bench_memo: {'quick' if args.quick else 'full'} run; systems {systems}; "
          f"workloads {workloads}; workdir {root}", file=sys.stderr, flush=True)
    results = {}
    loads = []  # 1-minute load average around each worker: is anything else running?
    t_all = time.perf_counter()
    for system in systems:
        data = {"measures": {}, "notes": [], "version": None}
        t0 = time.perf_counter()
        print(f"[{system}] starting", file=sys.stderr, flush=True)
        for w in workloads:  # one worker process per (system, workload): full isolation
            wd = os.path.join(root, system, w)
            shutil.rmtree(wd, ignore_errors=True)
            os.makedirs(wd)
            loads.append(os.getloadavg()[0])
            part = _run_worker(system, w, wd, args)
            loads.append(os.getloadavg()[0])
            data["version"] = data["version"] or part.get("version")
            data["notes"] = data["notes"] or part.get("notes", [])
            data["measures"].update(part.get("measures", {}))
            if part.get("fatal"):
                data["fatal"] = part["fatal"]
                break  # e.g. not importable: the other workloads would say the same
            if part.get("worker_error"):
                for k in _measure_keys_for([w], sz):
                    data["measures"].setdefault(k, {"na": part["worker_error"]})
        results[system] = data
        print(f"[{system}] finished in {time.perf_counter() - t0:.0f} s"
              + (f" ({data['fatal']})" if data.get("fatal") else ""),
              file=sys.stderr, flush=True)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    report = render(results, systems, workloads, sz, args, time.perf_counter() - t_all, loads)
    print(report)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    tag = "quick" if args.quick else "full"
    md_path = os.path.join(RESULTS_DIR, f"memo-{stamp}-{tag}.md")
    with open(md_path, "w") as fh:
        fh.write(report + "\n")
    with open(os.path.join(RESULTS_DIR, f"memo-{stamp}-{tag}.json"), "w") as fh:
        json.dump({"sizes": sz, "argv": sys.argv, "loadavg": loads, "results": results}, fh,
                  indent=1)
    shutil.copyfile(md_path, os.path.join(RESULTS_DIR, f"memo-latest-{tag}.md"))
    print(f"\nwritten: {os.path.relpath(md_path, REPO)} (+ .json)", file=sys.stderr)


def _run_worker(system, workload, wd, args) -> dict:
    out = os.path.join(wd, "result.json")
    log = os.path.join(wd, "worker.log")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", system, "--store", wd,
           "--out", out, "--workloads", workload,
           "--timeout", str(args.timeout), "--populate-budget", str(args.populate_budget)]
    if args.quick:
        cmd.append("--quick")
    fatal = None
    with open(log, "w") as lf:
        try:
            p = subprocess.run(cmd, stdout=lf, stderr=subprocess.PIPE, text=True,
                               timeout=args.timeout)
            lf.write(p.stderr)
            for ln in p.stderr.splitlines():
                if ln.startswith("  ["):
                    print(ln, file=sys.stderr, flush=True)
            if p.returncode != 0:
                fatal = f"worker exit {p.returncode}: {_tail(log)}"
        except subprocess.TimeoutExpired:
            fatal = f"worker timed out after {args.timeout:.0f} s"
    data = {}
    if os.path.exists(out):
        with open(out) as fh:
            data = json.load(fh)
    if fatal:
        data["worker_error"] = fatal
    return data


def _measure_keys_for(workloads, sz):
    keys = set()
    if "warm" in workloads:
        keys.add("warm_hit")
    if "newproc" in workloads:
        for n in sz["stored"]:
            keys |= {f"newproc_hit_{n}", f"newproc_open_{n}"}
        keys.add("newproc_import")
    if "miss" in workloads:
        keys.add("miss_committed")
    if "bigarg" in workloads:
        keys |= {"bigarg_hit", "bigarg_gbps"}
    return keys


def render(results, systems, workloads, sz, args, elapsed, loads=()):
    keys = _measure_keys_for(workloads, sz)
    rows = [r for r in measure_rows(sz) if r[0] in keys]
    peers = [s for s in systems if s != "mandala_ast"]
    has_m = "mandala_ast" in systems

    def cell(system, key):
        d = results.get(system, {})
        if d.get("fatal"):
            return f"n/a: {_short(d['fatal'])}"
        return _short(_fmt(d.get("measures", {}).get(key)))

    def val(system, key):
        rec = results.get(system, {}).get("measures", {}).get(key)
        return rec.get("value") if rec and "na" not in rec else None

    head = ["measure", "unit"] + systems + ["target"]
    if has_m:
        head += ["meets?"] + [f"m_ast vs {p}" for p in peers]
    lines = []
    lines.append(f"## mandala_ast memoization benchmark ({'--quick' if args.quick else 'full'})")
    lines.append("")
    lines.append(f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}; "
                 f"wall time {elapsed / 60:.1f} min")
    lines.append(f"- python: {platform.python_version()} ({sys.executable}); "
                 f"{platform.platform()}; {os.cpu_count()} CPUs; {_cpu_name()}")
    lines.append("- versions: " + "; ".join(
        f"{s} {results.get(s, {}).get('version') or '(not importable)'}" for s in systems))
    lines.append(f"- sizes: {json.dumps(sz)}; medians over repeats")
    if loads:
        busy = max(loads) > 1.5
        lines.append(f"- 1-min load average around the workers: {min(loads):.1f}–{max(loads):.1f}"
                     f" on {os.cpu_count()} CPUs"
                     + (" — **other processes were competing for the CPU: numbers are "
                        "pessimistic; rerun on an idle machine**" if busy else " (quiet)"))
    lines.append("")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * len(head)) + "|")
    for key, label, unit, target in rows:
        row = [label, unit] + [cell(s, key) for s in systems] + [f"{target}"]
        if has_m:
            m = val("mandala_ast", key)
            tg = target_for(key)
            if m is None or tg is None:
                row.append("—")
            else:
                ok = m <= tg[1] if tg[0] == "le" else m >= tg[1]
                row.append("yes" if ok else "NO")
            for p in peers:
                pv = val(p, key)
                prec = results.get(p, {}).get("measures", {}).get(key) or {}
                if (m is None or pv is None or m == 0 or pv == 0
                        or "no ratio" in prec.get("note", "")):
                    row.append("—")
                else:
                    ratio = (m / pv) if key in HIGHER_IS_BETTER else (pv / m)
                    row.append(f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2f}×"
                               if ratio >= 0.1 else f"{ratio:.2g}×")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if has_m:
        lines.append("`m_ast vs X` = how many times faster mandala_ast is than X on that row "
                     "(> 1: mandala_ast faster; for GB/s, the ratio of rates).")
    lines.append("Row 2: a fresh interpreter per repeat; 2a/2b time the loop over all stored "
                 "calls (block enter/exit included, store opening excluded); 2c/2d = construct "
                 "the Storage/Memory and wrap the op (import excluded; anything a system defers "
                 "to first use lands in 2a/2b); 2e = import of the library. "
                 "Row 3 includes the block exit (commit). "
                 "Row 4: each repeat passes a fresh copy of the array (same content); "
                 "GB/s = array bytes / per-call time.")
    lines.append("")
    notes = []
    for s in systems:
        d = results.get(s, {})
        notes += d.get("notes", [])
        if d.get("fatal"):
            notes.append(f"{s}: n/a: {d['fatal']}")
        for key, label, _unit, _ in rows:
            rec = d.get("measures", {}).get(key)
            if rec and rec.get("note"):
                notes.append(f"{s}, {label}: * {rec['note']}")
            if rec and "na" in rec and len(f"n/a: {rec['na']}") > 48:
                notes.append(f"{s}, {label}: n/a: {rec['na']}")
    if notes:
        lines.append("Notes:")
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for ln in fh:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for smoke-testing")
    ap.add_argument("--only", metavar="NAME[,NAME]",
                    help=f"restrict to systems {SYSTEMS} and/or workloads {WORKLOADS}")
    ap.add_argument("--workdir", help="where stores are built (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir afterwards")
    ap.add_argument("--timeout", type=float, default=2400.0,
                    help="seconds per system worker (default 2400)")
    ap.add_argument("--populate-budget", type=float, default=240.0,
                    help="seconds allowed to build one stored-calls store (default 240); "
                         "a system slower than that gets n/a for that row")
    # internal
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--hit", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker_main(args)
    elif args.hit:
        hit_main(args)
    else:
        run_driver(args)


if __name__ == "__main__":
    # Run as the module ``bench_memo`` (not ``__main__``) so ops have a stable,
    # module-qualified identity in every process.
    sys.path.insert(0, HERE)
    import bench_memo

    bench_memo.main()
