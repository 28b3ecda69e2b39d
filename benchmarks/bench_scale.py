#!/usr/bin/env python
"""Per-call cost against the size of the storage, and a realistic array op (issue 13).

1. ``f(x) = x + 1`` with 1k, 10k, 100k, 1M and 10M stored calls (``--sizes``):
   - miss: 2000 new calls in one ``with storage:`` block, timed through the block exit (the
     commit), a new Storage object per repeat (3 repeats, median);
   - hit: a new process opens the store and hits 2000 stored calls drawn at random (3 new
     processes, median); that every "hit" skipped the body is checked (sys.monitoring);
   - bytes/call: the store's files (database, WAL, blobs) / stored calls.
   joblib beside it up to ``--joblib-max`` stored calls (built through its API).
2. ``norm(a)`` over ``--array-calls`` distinct 1,000-float64 arrays (8,000 bytes each): miss
   µs/call, new-process hit µs/call, bytes/call against the raw 8,000; joblib, rote and the
   bare call beside it (peers over ``--peer-array-calls`` arrays: joblib's misses cost ms).

mandala_ast stores are built once and cached (``--stores``, default
benchmarks/results/stores/), keyed by N, the storage FORMAT and the op's source. A store of
millions of calls is not built by millions of op calls: one call goes through the API, which
gives the op's version and dependency rows and the exact row format; the other rows are
computed from the same public hash functions, checked against that API-made row, and written
through ``SQLiteStore``'s own buffers and flush (secondary indexes dropped during the load and
built again after it, values sorted by key); the last tenth of the calls (at most 200k) is
then inserted with the indexes in place, so that their leaves are as full as use leaves them
(AGED_SHARE). The hit workload then proves, through the normal API, that the store answers
with hits. Misses on a store of 1M calls or more run on the cached
store itself (copying gigabytes per repeat would dominate), with arguments never used before
(``meta.json`` records how far they got); the store grows by 6,000 calls per run and is
rebuilt once it has grown by 2%.

Usage:
    python benchmarks/bench_scale.py                         # everything (10M: ~15 min build once)
    python benchmarks/bench_scale.py --sizes 1k,1M --only calls
    python benchmarks/bench_scale.py --only array
    PYTHONPATH=/path/to/old/checkout python benchmarks/bench_scale.py ...   # the old code

Old and new code compare in one run by running this twice with different PYTHONPATHs (each
gets its own cached stores when the FORMAT differs). The table goes to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import functools
import hashlib
import inspect
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
MISS_N = 2000
HIT_N = 2000
REPEATS = 3
ARRAY_LEN = 1000
IN_PLACE_FROM = 1_000_000  # stores at least this large take their misses in place
REBUILD_GROWTH = 0.02
BUILD_CHUNK = 200_000
#: The last tenth of a store's calls (at most 200k) is inserted with the indexes in place, as
#: use inserts them. Indexes created after a sorted load have packed leaves (95% full), and
#: the first random inserts split them (SQLite rebalances a full leaf with its siblings): the
#: misses measured on a freshly built store paid for those splits, which a storage grown by
#: use does not (random inserts leave leaves ~89% full). At 1M, 79.5 kB written a miss on a
#: packed store against 49.4 kB on one built so; at 10M, 16 pages written a miss on a packed
#: store, falling to 6.2 (the 1M figure) after 120k misses.
AGED_SHARE, AGED_MAX = 0.1, 200_000
AGE_CHUNK = 20_000


# --------------------------------------------------------------------------- the ops
# Module-level, imported as ``bench_scale`` in every process (op identities must match).

def inc(x):
    return x + 1


def norm(a):
    return float((a * a).sum() ** 0.5)


OPS_HASH = hashlib.sha256((inspect.getsource(inc) + inspect.getsource(norm)).encode()).hexdigest()[:8]


def _k(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def _parse_n(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * mult)


def _log(msg):
    print(f"  {msg}", file=sys.stderr, flush=True)


def dir_size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if f != "meta.json")
    return total


_LAYOUT = """
import hashlib, os, tempfile
from mandala_ast.runtime.store import FORMAT, SQLiteStore
with tempfile.TemporaryDirectory() as tmp:
    store = SQLiteStore(os.path.join(tmp, "probe.db"))
    page = store.conn.execute("PRAGMA page_size").fetchone()[0]
    schema = sorted(row[0] or "" for row in store.conn.execute("SELECT sql FROM sqlite_master"))
    store.close()
print(f"{FORMAT}-p{page}-s{hashlib.sha256(repr(schema).encode()).hexdigest()[:6]}")
"""


def ma_format(system: str = "mandala_ast") -> str:
    """The storage format, the page size of a new file and a digest of its schema: what a
    cached store must share with the code measured on it."""
    code = _LAYOUT
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(system), cwd=HERE,
                          check=True).stdout.strip()


def _adapters():
    sys.path.insert(0, HERE)
    import bench_memo
    return bench_memo


# --------------------------------------------------------------------------- building

def _row_maker(vid: bytes, deps_id: bytes, exact: int):
    """Rows of f(x) as ``Storage`` buffers them, from the public hash and packing functions."""
    from mandala_ast.runtime import codecs
    from mandala_ast.runtime.hashing import content_id, digest
    from mandala_ast.runtime.packing import pack_outputs

    def rows(x: int):
        x_cid, out = content_id(x), x + 1
        out_cid, encoded = content_id(out), codecs.encode(out)
        key = digest(vid + b"x\0" + x_cid)  # the call's content id = its history id (raw input)
        hid = digest(b"row|%s|%s" % (key, deps_id))
        call = (hid, key, key, vid, deps_id, time.time(), 0.0, exact, pack_outputs((out_cid,), (encoded,)))
        value = (out_cid, encoded.codec, encoded.data, len(encoded.data), 0)
        return call, (hid, "x", x_cid, None, None), (hid, 0, out_cid), value

    return rows


def _stage(conn, rows, marks):
    conn.executemany(f"INSERT INTO bench_staging VALUES ({marks})", rows)


def build_ma(path: str, n: int) -> dict:
    """A store of f(0..n-1): f(0) through the API, the rest as rows (module docstring)."""
    from mandala_ast import Storage, op
    from mandala_ast.runtime.store import FIELDS, SQLiteStore

    os.makedirs(os.path.dirname(path), exist_ok=True)
    t0 = time.perf_counter()
    storage = Storage(path)
    with storage:
        op(inc)(0)
    storage.close()
    store = SQLiteStore(path)
    conn = store.conn
    api_row = conn.execute("SELECT hid, lkey, cid, version_id, deps_id, exact, outputs FROM calls").fetchone()
    rows = _row_maker(api_row[3], api_row[4], api_row[5])
    call, _, _, value = rows(0)
    made = (call[0], call[1], call[2], call[3], call[4], call[7], call[8])
    assert made == tuple(api_row), f"generated row differs from the API's:\n{made}\n{tuple(api_row)}"
    stored_value = conn.execute("SELECT cid, codec, data, size, external FROM vals WHERE cid = ?", (value[0],)).fetchone()
    assert tuple(stored_value) == value, f"generated value row differs: {value} vs {stored_value}"
    widths = (FIELDS["calls"], FIELDS["inputs"], FIELDS["outputs"], FIELDS["vals"])
    assert widths == (9, 5, 3, 5), f"buffer layout changed: {widths}; update bench_scale's _row_maker"
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('calls', 'call_inputs', 'call_outputs', 'val_rows')").fetchall()
    # Dropping an index drops its planner statistics (sqlite_stat1), which the schema writes
    # once: kept and written back, or lookups would scan a version's calls.
    stats = conn.execute("SELECT * FROM sqlite_stat1").fetchall()
    store.write_transaction(lambda c: [c.execute(f"DROP INDEX {name}") for name, _ in indexes])
    store.write_transaction(lambda c: c.execute("CREATE TABLE bench_staging AS SELECT * FROM vals WHERE 0"))
    marks = ", ".join("?" * FIELDS["vals"])
    bulk = max(1, n - min(int(n * AGED_SHARE), AGED_MAX))
    for lo in range(1, bulk, BUILD_CHUNK):
        staged = []
        for x in range(lo, min(bulk, lo + BUILD_CHUNK)):
            call, inp, out, value = rows(x)
            store.rows["calls"] += call
            store.rows["inputs"] += inp
            store.rows["outputs"] += out
            staged.append(value)
        store.write_transaction(functools.partial(_stage, rows=staged, marks=marks))
        store.flush()
        _log(f"built {min(bulk, lo + BUILD_CHUNK):,} of {n:,} calls ({time.perf_counter() - t0:.0f} s)")
    store.write_transaction(lambda c: (
        c.execute("INSERT OR IGNORE INTO val_rows SELECT * FROM bench_staging ORDER BY 1"),
        c.execute("DROP TABLE bench_staging"),
        [c.execute(sql) for _, sql in indexes],
        c.execute("DELETE FROM sqlite_stat1"),
        c.executemany("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", stats)))
    _age(store, rows, bulk, n, t0)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    meta = {"n": n, "stored": n, "next_x": n, "format": ma_format(), "bytes": dir_size(os.path.dirname(path)),
            "build_s": time.perf_counter() - t0}
    _log(f"built {_k(n)} in {meta['build_s']:.0f} s, {meta['bytes'] / n:.0f} bytes/call")
    return meta


def _age(store, rows, lo: int, n: int, t0: float) -> None:
    """Insert f(lo..n-1) with the indexes in place (see AGED_SHARE)."""
    for start in range(lo, n, AGE_CHUNK):
        for x in range(start, min(n, start + AGE_CHUNK)):
            call, inp, out, value = rows(x)
            store.rows["calls"] += call
            store.rows["inputs"] += inp
            store.rows["outputs"] += out
            store.rows["vals"] += value
        store.flush()
        if (start - lo) % (10 * AGE_CHUNK) == 0:
            _log(f"aged {min(n, start + AGE_CHUNK):,} of {n:,} calls ({time.perf_counter() - t0:.0f} s)")


def build_peer(system: str, path: str, n: int, budget: float) -> dict:
    bm = _adapters()
    ad = bm._fresh_adapter(system, path)
    f = ad.wrap(inc)
    t0 = time.perf_counter()
    for lo in range(0, n, 2000):
        with ad.block():
            for x in range(lo, min(n, lo + 2000)):
                f(x)
        if time.perf_counter() - t0 > budget and lo + 2000 < n:
            raise RuntimeError(f"{system} store not built: {lo + 2000} of {n} in {budget:.0f} s")
    return {"n": n, "stored": n, "next_x": n, "bytes": dir_size(path), "build_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------- workers

def _open(system: str, store_dir: str):
    """(adapter, wrapped op) for ``store_dir``."""
    bm = _adapters()
    ad = bm.ADAPTERS["mandala_ast" if system == "old" else system]()
    ad.import_lib()
    ad.open(store_dir)
    return ad, ad.wrap(inc)


def work_miss(system: str, store_dir: str, first_x: int) -> dict:
    samples, cpu, written = [], [], []
    for r in range(REPEATS):
        ad, f = _open(system, store_dir)
        xs = range(first_x + r * MISS_N, first_x + (r + 1) * MISS_N)
        w0 = _bytes_written()
        t0, c0 = time.perf_counter(), time.process_time()
        with ad.block():
            for x in xs:
                f(x)
        samples.append((time.perf_counter() - t0) / MISS_N * 1e6)
        cpu.append((time.process_time() - c0) / MISS_N * 1e6)
        written.append((_bytes_written() - w0) / MISS_N)
        if system in ("mandala_ast", "old"):
            ad.storage.close()
    return {"miss_us": statistics.median(samples), "samples": samples, "miss_cpu_us": statistics.median(cpu),
            "written_per_miss": statistics.mean(written)}


def _bytes_written() -> int:
    """Bytes this process has handed to write() so far (Linux): the WAL frames and the
    checkpoints' copies, a measure the load of other processes does not change."""
    try:
        with open("/proc/self/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("wchar"))
    except OSError:
        return 0


def work_hit(system: str, store_dir: str, n: int, seed: int) -> dict:
    bm = _adapters()
    counter = bm.BodyCounter(inc)
    t0 = time.perf_counter()
    ad, f = _open(system, store_dir)
    opened = time.perf_counter() - t0
    xs = random.Random(seed).sample(range(n), min(n, HIT_N))
    t0, c0 = time.perf_counter(), time.process_time()
    with ad.block():
        for x in xs:
            f(x)
    elapsed = time.perf_counter() - t0
    counter.close()
    return {"hit_us": elapsed / len(xs) * 1e6, "hit_cpu_us": (time.process_time() - c0) / len(xs) * 1e6,
            "open_ms": opened * 1e3, "body_runs": counter.count,
            "verified": counter.available}


def _arrays(block: int):
    import numpy as np
    return np.random.default_rng(block).standard_normal((MISS_N, ARRAY_LEN))


def work_array(system: str, store_dir: str, calls: int) -> dict:
    """Misses over ``calls`` distinct arrays (blocks of 2000), then the store's size."""
    blocks = range(calls // MISS_N)
    if system == "bare":
        f, block = norm, None
    else:
        ad, _ = _open(system, store_dir)
        f, block = ad.wrap(norm), ad.block
    elapsed = cpu = 0.0
    for b in blocks:
        arrays = list(_arrays(b))
        t0, c0 = time.perf_counter(), time.process_time()
        _call_all(f, block, arrays)
        elapsed += time.perf_counter() - t0
        cpu += time.process_time() - c0
    done = len(blocks) * MISS_N
    if system in ("mandala_ast", "old"):
        ad.storage.close()
    size = 0 if system == "bare" else dir_size(store_dir)
    return {"miss_us": elapsed / done * 1e6, "miss_cpu_us": cpu / done * 1e6, "calls": done, "bytes": size,
            "bytes_per_call": size / done}


def _call_all(f, block, arrays) -> None:
    """``f`` on each array, inside the system's block if it has one (the bare call has none)."""
    if block is None:
        for a in arrays:
            f(a)
        return
    with block():
        for a in arrays:
            f(a)


def work_array_hit(system: str, store_dir: str, calls: int, seed: int) -> dict:
    bm = _adapters()
    if system == "bare":
        f, block = norm, None
    else:
        ad, _ = _open(system, store_dir)
        f, block = ad.wrap(norm), ad.block
    rng = random.Random(seed)
    b = rng.randrange(calls // MISS_N)
    arrays = list(_arrays(b))
    counter = bm.BodyCounter(norm)
    t0, c0 = time.perf_counter(), time.process_time()
    _call_all(f, block, arrays)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    counter.close()
    runs = 0 if system == "bare" else counter.count
    return {"hit_us": elapsed / len(arrays) * 1e6, "hit_cpu_us": cpu / len(arrays) * 1e6, "body_runs": runs, "verified": counter.available}


def worker_main(args) -> None:
    kind, system = args.worker, args.system
    if kind == "build":
        if system in ("mandala_ast", "old"):
            res = build_ma(os.path.join(args.store, "results.db"), args.n)
        else:
            res = build_peer(system, args.store, args.n, args.budget)
    elif kind == "miss":
        res = work_miss(system, args.store, args.first_x)
    elif kind == "hit":
        res = work_hit(system, args.store, args.n, args.seed)
    elif kind == "array":
        res = work_array(system, args.store, args.n)
    elif kind == "array_hit":
        res = work_array_hit(system, args.store, args.n, args.seed)
    else:
        raise SystemExit(f"unknown worker {kind}")
    with open(args.out, "w") as fh:
        json.dump(res, fh)


# --------------------------------------------------------------------------- driver

#: ``--old DIR``: the system "old" is mandala_ast imported from DIR (another checkout), measured
#: alternately with the current code in the same run, so that a ratio survives a noisy machine.
OLD_TREE: str | None = None


def _env(system: str) -> dict:
    env = dict(os.environ)
    if system == "old":
        env["PYTHONPATH"] = OLD_TREE + os.pathsep + HERE
    return env


def run_worker(kind: str, system: str, store: str, timeout: float, **extra) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--system", system,
               "--store", store, "--out", out]
        for key, value in extra.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, timeout=timeout, env=_env(system))
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0 or not os.path.exists(out):
            tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"{kind} worker for {system} failed: {tail}")
        with open(out) as fh:
            return json.load(fh)


def store_dir(stores: str, system: str, n: int) -> str:
    if system in ("mandala_ast", "old"):
        label = ma_format(system).replace("/", "-") + f"-aged{AGED_SHARE:g}m{AGED_MAX // 1000}k" + ("-old" if system == "old" else "")
    else:
        import importlib.metadata as md
        label = f"{system}-{md.version(system)}"
    return os.path.join(stores, f"scale-{label}-ops{OPS_HASH}-n{n}")


def ensure_store(stores: str, system: str, n: int, args) -> tuple[str, dict]:
    path = store_dir(stores, system, n)
    meta_path = os.path.join(path, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as fh:
            meta = json.load(fh)
        if meta["stored"] <= n * (1 + REBUILD_GROWTH):
            return path, meta
    shutil.rmtree(path, ignore_errors=True)
    _log(f"building {system} store of {_k(n)} calls in {path}")
    meta = run_worker("build", system, path, args.build_timeout, n=n, budget=args.budget)
    with open(meta_path, "w") as fh:
        json.dump(meta, fh)
    return path, meta


def measure_calls(system: str, n: int, args) -> dict:
    path, meta = ensure_store(args.stores, system, n, args)
    hits = [run_worker("hit", system, path, args.timeout, n=n, seed=r) for r in range(REPEATS)]
    bad = sum(h["body_runs"] for h in hits)
    if n >= IN_PLACE_FROM:
        miss = run_worker("miss", system, path, args.timeout, first_x=meta["next_x"])
        meta["next_x"] += REPEATS * MISS_N
        meta["stored"] += REPEATS * MISS_N
        with open(os.path.join(path, "meta.json"), "w") as fh:
            json.dump(meta, fh)
    else:
        with tempfile.TemporaryDirectory(dir=args.stores) as tmp:
            copy = os.path.join(tmp, "store")
            shutil.copytree(path, copy)
            miss = run_worker("miss", system, copy, args.timeout, first_x=meta["next_x"])
    return {"miss_us": miss["miss_us"], "miss_samples": miss["samples"], "miss_cpu_us": miss["miss_cpu_us"],
            "written_per_miss": miss["written_per_miss"],
            "hit_us": statistics.median(h["hit_us"] for h in hits),
            "hit_cpu_us": statistics.median(h["hit_cpu_us"] for h in hits), "hit_samples": [h["hit_us"] for h in hits],
            "open_ms": statistics.median(h["open_ms"] for h in hits), "body_runs": bad,
            "bytes_per_call": meta["bytes"] / meta["n"], "build_s": meta["build_s"]}


def measure_array(system: str, calls: int, args) -> dict:
    with tempfile.TemporaryDirectory(dir=args.stores) as tmp:
        res = run_worker("array", system, tmp, args.timeout, n=calls)
        hits = [run_worker("array_hit", system, tmp, args.timeout, n=calls, seed=r) for r in range(REPEATS)]
    res["hit_us"] = statistics.median(h["hit_us"] for h in hits)
    res["hit_cpu_us"] = statistics.median(h["hit_cpu_us"] for h in hits)
    res["body_runs"] = sum(h["body_runs"] for h in hits)
    return res


def _both(res: dict | None, what: str) -> str:
    """Wall-clock µs, and in parentheses the process's CPU µs (steadier on a loaded machine)."""
    if res is None or "error" in res:
        return _cell(res, f"{what}_us")
    return f"{res[f'{what}_us']:.1f} ({res[f'{what}_cpu_us']:.1f})"


def _cell(res: dict | None, key: str, fmt: str = "{:.1f}") -> str:
    if res is None:
        return "—"
    if "error" in res:
        return f"n/a: {res['error'][:40]}"
    return fmt.format(res[key])


def render(calls: dict, arrays: dict, args) -> str:
    lines = [f"# bench_scale {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
             "", f"mandala_ast: {_version()}; format {ma_format()}; load {os.getloadavg()[0]:.1f}", ""]
    if calls:
        systems = sorted({s for (s, _) in calls}, key=lambda s: ("mandala_ast", "old").index(s) if s in ("mandala_ast", "old") else 2)
        head = "| stored calls |" + "".join(f" {s} miss µs | {s} hit µs | {s} B/call | {s} B written/miss |" for s in systems)
        lines += ["µs: wall clock (process CPU time)", "", head, "|---|" + "---|---|---|---|" * len(systems)]
        for n in args.sizes:
            row = f"| {_k(n)} |"
            for s in systems:
                r = calls.get((s, n))
                row += (f" {_both(r, 'miss')} | {_both(r, 'hit')} | {_cell(r, 'bytes_per_call', '{:,.0f}')} |"
                        f" {_cell(r, 'written_per_miss', '{:,.0f}')} |")
            lines.append(row)
        base = calls.get(("mandala_ast", min(args.sizes)))
        if base and "error" not in base:
            lines.append("")
            for n in args.sizes:
                r = calls.get(("mandala_ast", n))
                if r and "error" not in r and n != min(args.sizes):
                    lines.append(f"- {_k(n)}: miss {r['miss_us'] / base['miss_us']:.2f}× (CPU "
                                 f"{r['miss_cpu_us'] / base['miss_cpu_us']:.2f}×) and hit "
                                 f"{r['hit_us'] / base['hit_us']:.2f}× (CPU {r['hit_cpu_us'] / base['hit_cpu_us']:.2f}×)"
                                 f" the {_k(min(args.sizes))} figures"
                                 + (f" — {r['body_runs']} 'hits' ran the body!" if r["body_runs"] else ""))
    if arrays:
        raw = ARRAY_LEN * 8
        lines += ["", f"norm(a), {ARRAY_LEN}-float64 arrays ({raw:,} bytes each):", "",
                  "| system | calls | miss µs/call | new-process hit µs/call | bytes/call | × raw |",
                  "|---|---|---|---|---|---|"]
        for s, r in arrays.items():
            if "error" in r:
                lines.append(f"| {s} | n/a: {r['error'][:60]} | | | | |")
                continue
            per = r["bytes_per_call"]
            lines.append(f"| {s} | {r['calls']:,} | {_both(r, 'miss')} | {_both(r, 'hit')} | "
                         f"{per:,.0f} | {per / raw:.2f} |")
    return "\n".join(lines) + "\n"


def _version() -> str:
    import mandala_ast
    root = os.path.dirname(os.path.dirname(os.path.abspath(mandala_ast.__file__)))
    rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    return f"{root} @ {rev.strip()}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1k,10k,100k,1M,10M")
    p.add_argument("--only", default="calls,array,mandala_ast,joblib,rote,bare")
    p.add_argument("--stores", default=os.path.join(RESULTS_DIR, "stores"))
    p.add_argument("--joblib-max", default="100k")
    p.add_argument("--array-calls", type=int, default=50_000)
    p.add_argument("--peer-array-calls", type=int, default=2000)
    p.add_argument("--budget", type=float, default=600.0, help="seconds to build a peer's store")
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--build-timeout", type=float, default=5400.0)
    p.add_argument("--label", default="")
    p.add_argument("--old", help="another checkout, measured as the system 'old' beside this one")
    # worker options
    p.add_argument("--worker")
    p.add_argument("--system")
    p.add_argument("--store")
    p.add_argument("--out")
    p.add_argument("--n", type=int)
    p.add_argument("--first-x", type=int)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.worker:
        sys.path.insert(0, HERE)
        import bench_scale  # the ops under the module name every process uses
        globals()["inc"], globals()["norm"] = bench_scale.inc, bench_scale.norm
        return worker_main(args)
    global OLD_TREE
    OLD_TREE = args.old and os.path.abspath(args.old)
    if OLD_TREE:
        args.only += ",old"
    args.sizes = sorted(_parse_n(s) for s in args.sizes.split(","))
    only = set(args.only.split(","))
    os.makedirs(args.stores, exist_ok=True)
    calls, arrays = {}, {}
    if "calls" in only:
        for n in args.sizes:
            for system in ("mandala_ast", "old", "joblib"):
                if system not in only or (system == "joblib" and n > _parse_n(args.joblib_max)):
                    continue
                try:
                    calls[(system, n)] = measure_calls(system, n, args)
                except Exception as exc:  # a peer that fails is reported, the run goes on
                    calls[(system, n)] = {"error": str(exc)}
                _log(f"{system} at {_k(n)}: {calls[(system, n)]}")
    if "array" in only:
        for system in ("bare", "mandala_ast", "old", "joblib", "rote"):
            if system not in only:
                continue
            count = args.array_calls if system in ("mandala_ast", "old", "bare") else args.peer_array_calls
            try:
                arrays[system] = measure_array(system, count, args)
            except Exception as exc:
                arrays[system] = {"error": str(exc)}
            _log(f"array {system}: {arrays[system]}")
    text = render(calls, arrays, args)
    print(text)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = os.path.join(RESULTS_DIR, f"scale-{stamp}{'-' + args.label if args.label else ''}")
    with open(base + ".md", "w") as fh:
        fh.write(text)
    with open(base + ".json", "w") as fh:
        json.dump({"calls": {f"{s}:{n}": r for (s, n), r in calls.items()}, "arrays": arrays}, fh, indent=1)


if __name__ == "__main__":
    main()
