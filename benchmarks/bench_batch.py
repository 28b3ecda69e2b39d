#!/usr/bin/env python
"""Batch blocks side by side with joblib.Parallel + Memory, dask.delayed and bare
concurrent.futures, on the same functions, in one run.

Workloads (wall-clock seconds; the median of --repeat runs):

1. parallel: N independent calls that each wait 10 ms (time.sleep: the GIL is released, so
   threads and processes both overlap them), 2 workers, fresh caches. "speedup" is the
   serial loop's time over the system's.
2. overhead: N trivial calls (x + 1), 2 workers, fresh caches: per-call microseconds, and
   the ratio to the bare executor running the same functions (pool.submit / client.submit);
   "beyond storing" takes off first what storing the calls costs in a serial run block.
   Two rows say what storing the calls costs with no executor at all (a batch running bodies
   in its own thread, and a plain run block): the bare executor stores nothing, so a batch
   costs at least the bare executor plus these.
3. stored: a batch of S calls that are all stored already, opened in a fresh Storage: the
   whole block (lookups, loads, names made plain).
4. async: A async ops awaiting 50 ms each with max_concurrency=50.

Usage:
    python benchmarks/bench_batch.py            # full sizes (N=1000, S=100k, A=200)
    python benchmarks/bench_batch.py --quick    # small sizes, smoke test
    python benchmarks/bench_batch.py --workload 2 --executor dask   # only the Dask row of 2.

In workload 2 each pair (bare executor, batch) runs once untimed first (a fresh Dask cluster
serves its first tasks slower), then their timed runs alternate, so that a machine busy with
other work slows both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from mandala_ast import Storage, op  # noqa: E402

WORKERS = 2
#: Workload 2's executors (``--executor``).
EXECUTORS = frozenset({"threads", "processes", "dask"})


# -- the functions every system runs (module level: worker processes import them) -------------

def wait10(x):
    time.sleep(0.01)
    return x


def trivial(x):
    return x + 1


async def fetch(x):
    await asyncio.sleep(0.05)
    return x


@op
def wait10_op(x):
    return wait10(x)


@op
def trivial_op(x):
    return x + 1


@op
async def fetch_op(x):
    return await fetch(x)


# -- one timing per system ----------------------------------------------------------------------

def timed(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fresh_dir() -> str:
    return tempfile.mkdtemp(prefix="bench_batch_")


def serial(fn, n):
    return lambda: [fn(x) for x in range(n)]


def bare(executor_kind, fn, n):
    def run():
        pool_type = cf.ThreadPoolExecutor if executor_kind == "threads" else cf.ProcessPoolExecutor
        with pool_type(WORKERS) as pool:
            [f.result() for f in [pool.submit(fn, x) for x in range(n)]]
    return run


def mandala(executor, op_, n):
    def run():
        folder = fresh_dir()
        try:
            with Storage(os.path.join(folder, "s.db")).batch(executor=executor, max_concurrency=WORKERS,
                                                             progress=False):
                [op_(x) for x in range(n)]
        finally:
            shutil.rmtree(folder)
    return run


def run_block(op_, n):
    """The same calls stored by a run block in a fresh storage: no executor, no deferral."""
    def run():
        folder = fresh_dir()
        try:
            with Storage(os.path.join(folder, "s.db")).run():
                [op_(x) for x in range(n)]
        finally:
            shutil.rmtree(folder)
    return run


def joblib_memory(backend, fn, n):
    def run():
        import joblib

        folder = fresh_dir()
        try:
            cached = joblib.Memory(folder, verbose=0).cache(fn)
            joblib.Parallel(n_jobs=WORKERS, backend=backend)(joblib.delayed(cached)(x) for x in range(n))
        finally:
            shutil.rmtree(folder)
    return run


def dask_delayed(scheduler, fn, n):
    def run():
        import dask

        dask.compute(*[dask.delayed(fn)(x) for x in range(n)], scheduler=scheduler, num_workers=WORKERS)
    return run


def dask_client(client, fn, n):
    return lambda: client.gather([client.submit(fn, x, pure=False) for x in range(n)])


def mandala_dask(client, op_, n):
    return mandala(client, op_, n)


# -- workloads ------------------------------------------------------------------------------------

def parallel_rows(n: int, repeat: int) -> list[tuple]:
    base = timed(serial(wait10, n), 1)
    rows = [("serial loop", base, 1.0)]
    systems = [
        ("concurrent.futures threads", bare("threads", wait10, n)),
        ("concurrent.futures processes", bare("processes", wait10, n)),
        ("joblib Parallel+Memory threading", joblib_memory("threading", wait10, n)),
        ("joblib Parallel+Memory loky", joblib_memory("loky", wait10, n)),
        ("dask.delayed threads", dask_delayed("threads", wait10, n)),
        ("dask.delayed processes", dask_delayed("processes", wait10, n)),
        ("mandala_ast batch threads", mandala("threads", wait10_op, n)),
        ("mandala_ast batch processes", mandala("processes", wait10_op, n)),
    ]
    for name, run in systems:
        seconds = _guarded(run, repeat)
        rows.append((name, seconds, base / seconds if seconds else None))
    return rows


def overhead_rows(n: int, repeat: int, client, executors: set[str]) -> list[tuple]:
    rows = []
    pairs = [
        ("threads", bare("threads", trivial, n), mandala("threads", trivial_op, n)),
        ("processes", bare("processes", trivial, n), mandala("processes", trivial_op, n)),
    ]
    if client is not None:
        pairs.append(("dask Client", dask_client(client, trivial, n), mandala_dask(client, trivial_op, n)))
    for name, bare_run, ours in pairs:
        if name.split()[0] not in executors:
            continue
        bare_s, ours_s = _guarded_pair(bare_run, ours, repeat)
        rows.append((name, _per_call(bare_s, n), _per_call(ours_s, n), ours_s / bare_s if bare_s and ours_s else None))
    if executors != EXECUTORS:
        return rows
    # What storing costs without any executor: the floor of "mandala_ast batch" above, which
    # stores every call the bare executor only runs (ours minus bare, against these rows).
    here_s = _guarded(mandala(None, trivial_op, n), repeat)
    run_block_s = _guarded(run_block(trivial_op, n), repeat)
    rows.append(("none: bodies run here (storing alone)", None, here_s / n * 1e6, None))
    rows.append(("run block, serial (storing alone)", None, run_block_s / n * 1e6, None))
    joblib_s = _guarded(joblib_memory("threading", trivial, n), repeat)
    delayed_s = _guarded(dask_delayed("threads", trivial, n), repeat)
    rows.append(("joblib Parallel+Memory threading", None, joblib_s / n * 1e6, None))
    rows.append(("dask.delayed threads", None, delayed_s / n * 1e6, None))
    return rows


def stored_seconds(s: int) -> tuple[float, float]:
    folder = fresh_dir()
    path = os.path.join(folder, "s.db")
    try:
        with Storage(path).run():
            for x in range(s):
                trivial_op(x)
        Storage(path).close()

        def run():
            with Storage(path).batch(progress=False) as b:
                ys = [trivial_op(x) for x in range(s)]
            assert b.stats.dispatched == 0 and ys[-1] == s

        ours = timed(run, 1)

        def run_block():
            with Storage(path).run():
                [trivial_op(x) for x in range(s)]

        return ours, timed(run_block, 1)
    finally:
        shutil.rmtree(folder)


def async_seconds(a: int) -> float:
    def run():
        folder = fresh_dir()
        try:
            with Storage(os.path.join(folder, "s.db")).batch(max_concurrency=50, progress=False):
                [fetch_op(x) for x in range(a)]
        finally:
            shutil.rmtree(folder)
    return timed(run, 3)


def _guarded_pair(first, second, repeat: int) -> tuple[float | None, float | None]:
    """Median seconds of ``first`` and of ``second``, each run once untimed, then timed in
    turns (first, second, first, ...); None for one that raised."""
    try:
        first(), second()
        times: tuple[list, list] = ([], [])
        for _ in range(repeat):
            times[0].append(timed(first, 1))
            times[1].append(timed(second, 1))
    except Exception as exc:  # a missing peer is a row of n/a, not a failed run
        print(f"  ({exc!r})", file=sys.stderr)
        return None, None
    return statistics.median(times[0]), statistics.median(times[1])


def _per_call(seconds: float | None, n: int) -> float | None:
    return None if seconds is None else seconds / n * 1e6


def _guarded(run, repeat: int) -> float | None:
    try:
        return timed(run, repeat)
    except Exception as exc:  # a missing peer is a row of n/a, not a failed run
        print(f"  ({exc!r})", file=sys.stderr)
        return None


def _fmt(value, spec=".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workload", type=int, action="append", choices=[1, 2, 3, 4],
                        help="run only this workload (repeatable; default: all)")
    parser.add_argument("--executor", action="append", choices=sorted(EXECUTORS),
                        help="workload 2: only this executor's row (repeatable; default: all rows)")
    options = parser.parse_args()
    n, s, a = (200, 10_000, 200) if options.quick else (1000, 100_000, 200)
    repeat = 1 if options.quick else options.repeat
    workloads = set(options.workload or (1, 2, 3, 4))
    executors = set(options.executor or EXECUTORS)

    if 1 in workloads:
        print(f"## 1. {n} independent 10 ms calls, {WORKERS} workers\n")
        print("| system | seconds | speedup vs serial |\n|---|---:|---:|")
        for name, seconds, speedup in parallel_rows(n, repeat):
            print(f"| {name} | {_fmt(seconds)} | {_fmt(speedup, '.2f')} |")

    if 2 in workloads:
        client = _dask_client() if "dask" in executors else None
        print(f"\n## 2. {n * 2} trivial calls, {WORKERS} workers: per-call µs\n")
        print("| executor | bare executor | mandala_ast batch | ratio | ratio beyond storing |\n|---|---:|---:|---:|---:|")
        rows = overhead_rows(n * 2, repeat, client, executors)
        storing = next((ours_us for name, _, ours_us, _ in rows if name.startswith("run block")), None)
        for name, bare_us, ours_us, ratio in rows:
            beyond = (ours_us - storing) / bare_us if storing is not None and bare_us and ours_us else None
            print(f"| {name} | {_fmt(bare_us, '.1f')} | {_fmt(ours_us, '.1f')} | {_fmt(ratio, '.2f')} | {_fmt(beyond, '.2f')} |")
        print("\n(ratio beyond storing: the batch's per-call time less a serial run block's, which stores the same"
              " calls with no executor, over the bare executor's: what the executor adds, where the bare one stores nothing)")
        if client is not None:
            client.close()

    if 3 in workloads:
        print_stored(s)
    if 4 in workloads:
        print(f"\n## 4. {a} async ops awaiting 50 ms, max_concurrency=50: {async_seconds(a):.3f} s")


def print_stored(s: int) -> None:
    ours, run_block = stored_seconds(s)
    print(f"\n## 3. a batch of {s} calls, all stored (fresh Storage): {ours:.2f} s "
          f"(the same calls in a run block: {run_block:.2f} s)")


def _dask_client():
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return None
    cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=False, dashboard_address=None)
    return Client(cluster)


if __name__ == "__main__":
    main()
