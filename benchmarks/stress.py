#!/usr/bin/env python
"""Stress: many processes and threads on one storage file, then kill -9s; counts what was lost.

Two phases on one file, then a check from a fresh process:

1. **steady**: ``--processes`` worker processes of ``--threads`` threads each run for
   ``--seconds``, each thread looping over run blocks (small values, values of ~1 kB whose bytes
   go to ``val_bytes``, values >= 1 MiB that go to blob files, hits on its earlier calls and on
   calls shared by every thread), ``storage.df``,
   ``storage.delete_calls`` and ``storage.gc()``.
2. **kills**: the same number of workers, more deletions and gcs; ``--kills`` times the parent
   waits for a worker to be inside a block, a ``gc`` or a ``delete_calls`` (in turn), kills it
   with SIGKILL and starts a new one.
3. **check**: a fresh process opens the file, loads every call a worker logged as committed
   (with new calls forbidden, so a missing call is an error, not a recomputation), checks
   every stored value, and compares blob rows with blob files.

Lost and wrong are exact because every value derives from its arguments, and every thread
works in its own key range: its calls, their inputs and outputs belong to no other thread,
so only its own ``delete_calls`` can remove them (the calls of ``shared(i)``, computed by
everyone, are never deleted). A thread appends to its own log, fsynced before it goes on:
"made" after a block exited (committed), "deleting" before a ``delete_calls`` and "deleted"
after. A call is owed if its last entry is "made"; one whose deletion was interrupted may be
there or not. Work a kill interrupted was never logged, so it may be lost; nothing logged may.

Usage:
    python benchmarks/stress.py                      # 16 processes x 8 threads, 60 s, 50 kills
    python benchmarks/stress.py --small              # CI size: 3 x 2, 8 s, 5 kills
    python benchmarks/stress.py --no-threads-share-storage   # one Storage per thread

Prints a markdown table; exit status 1 when a "must be 0" row is not 0, integrity fails, or a
blob row has no file.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import itertools
import json
import mmap
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from mandala_ast import MandalaError, NewCallError, Storage, op

HERE = Path(__file__).resolve().parent
#: New keys per block; each is small(key), tail(small(key)) and, for one key in BLOB_EVERY, a blob.
BLOCK_KEYS = 8
HITS_PER_BLOCK = 4
SHARED_CALLS = 64
BLOB_EVERY = 16
DELETE_KEYS = 4
#: What a thread does next, by weight: mostly blocks in the steady phase; more deletions and
#: gcs while kills are aimed at them.
STEADY_WEIGHTS = {"block": 0.89, "df": 0.03, "delete": 0.06, "gc": 0.02}
KILL_WEIGHTS = {"block": 0.6, "df": 0.05, "delete": 0.2, "gc": 0.15}
#: One byte per thread in a worker's status file: what the thread is inside right now.
STATUS = {"idle": b".", "block": b"B", "df": b"D", "delete": b"X", "gc": b"G"}
KILL_TARGETS = ("block", "gc", "delete")
MOMENT_NAMES = {"block": "block", "gc": "gc", "delete": "delete_calls", "df": "df", "idle": "between actions"}


# -- ops: every output derives from the arguments, so any value loaded can be checked ------


def small_value(key: str) -> str:
    return f"small|{key}"


def tail_value(key: str) -> str:
    """A little over 1 kB: its bytes are stored apart from its key (runtime/value_rows.py)."""
    return f"tail|{small_value(key)}|" + "." * 1000


def blob_value(key: str) -> bytes:
    """Just over 1 MiB, different for every key: stored as a blob file of its own."""
    return hashlib.blake2b(key.encode()).digest() * (1 << 14) + key.encode()


def has_blob(key: str) -> bool:
    return hashlib.blake2b(key.encode()).digest()[0] % BLOB_EVERY == 0


def key_of(value: str) -> str:
    """The key a small value was made from."""
    return value.split("|", 1)[1]


@op
def small(key: str) -> str:
    ran(key)
    return small_value(key)


@op
def tail(value: str) -> str:
    ran(key_of(value))
    return tail_value(key_of(value))


@op
def blob(value: str) -> bytes:
    ran(key_of(value))
    return blob_value(key_of(value))


@op
def shared(i: int) -> str:
    return f"shared|{i}"


_RAN = threading.local()


def ran(key: str) -> None:
    """Note an executed body: a call whose body runs again after it was committed was not found."""
    executed = getattr(_RAN, "keys", None)
    if executed is not None:
        executed.add(key)


def calls_of(key: str) -> int:
    return 3 if has_blob(key) else 2


# -- a worker thread: its own keys, its own log ------------------------------------------


class Log:
    """A thread's append-only record; each entry is on disk (fsync) before the thread goes on,
    so an entry written before a kill -9 is never lost."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "a", encoding="utf-8")

    def write(self, ev: str, **fields) -> None:
        self.file.write(json.dumps({"ev": ev, **fields}) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def error(self, action: str, exc: BaseException) -> None:
        kind = "mandala" if isinstance(exc, MandalaError) else "raw"
        where = traceback.extract_tb(exc.__traceback__)[-1]
        place = f"{Path(where.filename).name}:{where.lineno} {where.name}"
        self.write("error", kind=kind, action=action, type=type(exc).__name__, msg=str(exc)[:300], at=place)


class Scope:
    """One thread's work: keys ``<prefix>:<n>`` that no other thread calls or deletes."""

    def __init__(self, prefix: str, storage: Storage, log: Log, rng: random.Random) -> None:
        self.prefix, self.storage, self.log, self.rng = prefix, storage, log, rng
        self.alive: list[str] = []  # committed (logged) and not deleted
        self.count = itertools.count()

    def block(self) -> None:
        new = [f"{self.prefix}:{next(self.count)}" for _ in range(BLOCK_KEYS)]
        hits = self.rng.sample(self.alive, min(HITS_PER_BLOCK, len(self.alive)))
        shared_ids = [self.rng.randrange(SHARED_CALLS) for _ in range(2)]
        _RAN.keys = executed = set()
        with self.storage.run():
            for key in new + hits:
                self.compute(key)
            for i in shared_ids:
                self.expect(shared(i), f"shared|{i}", "shared", str(i))
        _RAN.keys = None
        self.log.write("made", keys=new, shared=shared_ids, hits=len(hits))
        self.alive += new
        if executed & set(hits):
            self.log.write("recomputed", keys=sorted(executed & set(hits)))

    def compute(self, key: str) -> None:
        value = small(key)
        self.expect(value, small_value(key), "small", key)
        self.expect(tail(value), tail_value(key), "tail", key)
        if has_blob(key):
            self.expect(blob(value), blob_value(key), "blob", key)

    def expect(self, got, wanted, name: str, key: str) -> None:
        if got != wanted:
            self.log.write("wrong", op=name, key=key, got=repr(got)[:80])

    def df(self) -> None:
        frame = self.storage.df(small)
        wrong = frame[frame["output"] != frame["key"].map(small_value)]
        if len(wrong):
            self.log.write("wrong", op="small (df)", key=str(list(wrong["key"][:3])), got=len(wrong))
        unseen = set(self.alive) - set(frame["key"])
        if unseen:
            self.log.write("unseen", keys=sorted(unseen))

    def delete(self) -> None:
        if not self.alive:
            return
        victims = self.rng.sample(self.alive, min(DELETE_KEYS, len(self.alive)))
        self.log.write("deleting", keys=victims)
        frame = self.storage.df(small)
        report = self.storage.delete_calls(frame[frame["key"].isin(victims)])
        gone = set(victims)
        self.alive = [key for key in self.alive if key not in gone]
        self.log.write("deleted", keys=victims, calls=report.calls, matched=report.matched)
        if report.matched != len(victims) or report.calls != sum(map(calls_of, victims)):
            self.log.write("delete_mismatch", keys=victims, report=str(report))

    def gc(self) -> None:
        self.storage.gc()


class StatusBoard:
    """One byte per thread in a shared file: the parent reads it to aim its kills."""

    def __init__(self, path: Path, threads: int, create: bool) -> None:
        if create:
            path.write_bytes(STATUS["idle"] * threads)
        self.file = open(path, "r+b")
        self.map = mmap.mmap(self.file.fileno(), threads)

    def set(self, thread: int, action: str) -> None:
        self.map[thread] = STATUS[action][0]

    def actions(self) -> set[str]:
        codes = set(self.map[:])
        return {name for name, code in STATUS.items() if code[0] in codes}


def thread_main(args, index: int, storage: Storage | None, board: StatusBoard) -> None:
    prefix = f"{args.worker}.{index}"
    log = Log(Path(args.logs) / f"{prefix}.jsonl")
    rng = random.Random(f"{args.seed}.{prefix}")
    try:
        storage = storage or Storage(args.path)
    except Exception as exc:
        log.error("open", exc)
        return
    scope, weights = Scope(prefix, storage, log, rng), json.loads(args.weights)
    stop = Path(args.logs) / "STOP"
    while time.time() < args.until and not stop.exists():
        action = rng.choices(list(weights), list(weights.values()))[0]
        board.set(index, action)
        try:
            getattr(scope, action)()
        except Exception as exc:
            _RAN.keys = None
            log.error(action, exc)
            time.sleep(0.02)  # a storage left broken would otherwise fill the log
        board.set(index, "idle")


def worker_main(args) -> None:
    board = StatusBoard(Path(args.logs) / f"{args.worker}.status", args.threads, create=False)
    shared_storage = None
    if args.threads_share_storage:
        try:
            shared_storage = Storage(args.path)
        except Exception as exc:
            Log(Path(args.logs) / f"{args.worker}.main.jsonl").error("open", exc)
            return
    threads = [
        threading.Thread(target=thread_main, args=(args, i, shared_storage, board))
        for i in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- the parent: phases, kills ------------------------------------------------------------


class Worker:
    """A worker process and its status board."""

    def __init__(self, args, name: str, weights: dict, until: float) -> None:
        self.name = name
        logs = Path(args.logs)
        self.board = StatusBoard(logs / f"{name}.status", args.threads, create=True)
        share = "--threads-share-storage" if args.threads_share_storage else "--no-threads-share-storage"
        command = [
            sys.executable, str(Path(__file__).resolve()), "--worker", name, "--path", str(args.path),
            "--logs", str(logs), "--threads", str(args.threads), share, "--until", str(until),
            "--weights", json.dumps(weights), "--seed", str(args.seed),
        ]
        stderr = open(logs / f"{name}.stderr", "wb")
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)


def steady_phase(args) -> dict:
    until = time.time() + args.seconds
    workers = [Worker(args, f"s{i:02d}", STEADY_WEIGHTS, until) for i in range(args.processes)]
    return {"abnormal exits": finish(workers, timeout=args.seconds + 120)}


def finish(workers: list[Worker], timeout: float) -> list[str]:
    """Wait for the workers to exit; kill those that hang. Returns what went wrong."""
    problems, deadline = [], time.time() + timeout
    for worker in workers:
        try:
            code = worker.proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()
            problems.append(f"{worker.name} hung and was killed")
            continue
        if code != 0:
            problems.append(f"{worker.name} exited with {code}")
    return problems


def kill_phase(args) -> dict:
    rng = random.Random(f"{args.seed}.kills")
    names = (f"k{i:03d}" for i in itertools.count())
    far = time.time() + 3600
    workers = [Worker(args, next(names), KILL_WEIGHTS, far) for _ in range(args.processes)]
    moments = collections.Counter()
    for target in itertools.islice(itertools.cycle(KILL_TARGETS), args.kills):
        time.sleep(rng.uniform(0.0, 0.3))
        victim, moment = aim(workers, target, rng)
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        moments[MOMENT_NAMES[moment]] += 1
        workers[workers.index(victim)] = Worker(args, next(names), KILL_WEIGHTS, far)
    (Path(args.logs) / "STOP").touch()
    return {"kills": dict(moments), "abnormal exits": finish(workers, timeout=120)}


def aim(workers: list[Worker], target: str, rng: random.Random) -> tuple[Worker, str]:
    """A worker with a thread inside ``target`` (polled for up to 10 s), else any worker."""
    deadline = time.time() + 10.0
    while time.time() < deadline:
        ready = [w for w in workers if target in w.board.actions()]
        if ready:
            return rng.choice(ready), target
        time.sleep(0.002)
    victim = rng.choice(workers)
    busy = victim.board.actions() - {"idle"}
    return victim, (sorted(busy)[0] if busy else "idle")


# -- the check, in a fresh process ----------------------------------------------------------


def replay(logs: Path) -> dict:
    """What the logs say: calls owed, deletions interrupted, and what workers reported."""
    last: dict[str, str] = {}
    shared_ids: set[int] = set()
    counts, errors = collections.Counter(), collections.Counter()
    for path in sorted(logs.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            ev = entry["ev"]
            counts[ev] += 1
            if ev == "made":
                last.update(dict.fromkeys(entry["keys"], "made"))
                shared_ids.update(entry["shared"])
                counts["calls made"] += sum(map(calls_of, entry["keys"]))
                counts["hits"] += entry["hits"] * 2 + len(entry["shared"])
            elif ev in ("deleting", "deleted"):
                last.update(dict.fromkeys(entry["keys"], ev))
                counts["calls deleted"] += entry.get("calls", 0)
            elif ev in ("recomputed", "unseen"):
                counts[f"{ev} calls"] += len(entry["keys"])
            elif ev == "error":
                message = without_ids(entry["msg"])
                errors[(entry["kind"], entry["type"], message, entry["at"], entry["action"])] += 1
    owed = sorted(key for key, ev in last.items() if ev == "made")
    unsure = sorted(key for key, ev in last.items() if ev == "deleting")
    counts["calls made"] += len(shared_ids)
    return {"owed": owed, "unsure": unsure, "shared": sorted(shared_ids), "counts": counts, "errors": errors}


def without_ids(message: str) -> str:
    """Errors grouped by their text, not by the ids in it (hex, or a KeyError's bytes)."""
    return re.sub(r"[0-9a-f]{16,}|^b['\"].*", "…", message)[:120]


def load_owed(storage: Storage, owed: list[str], unsure: list[str], shared_ids: list[int]) -> dict:
    """Load every owed call with new calls forbidden: missing is lost, a different value wrong."""
    result = collections.Counter()
    examples: list[str] = []

    def check(call, wanted, owed_call: bool, label: str) -> None:
        try:
            got = call()
        except NewCallError:
            if owed_call:
                result["lost"] += 1
                examples.append(f"lost: {label}")
            return
        except Exception as exc:  # stored, but its value cannot be loaded
            result["unloadable"] += 1
            examples.append(f"unloadable: {label}: {type(exc).__name__}: {str(exc)[:100]}")
            return
        result["checked"] += 1
        if got != wanted:
            result["wrong"] += 1
            examples.append(f"wrong: {label}")

    with storage.run(allow_new_calls=False):
        for key, owed_call in [*((k, True) for k in owed), *((k, False) for k in unsure)]:
            check(lambda key=key: small(key), small_value(key), owed_call, f"small({key!r})")
            check(lambda key=key: tail(small_value(key)), tail_value(key), owed_call, f"tail of {key!r}")
            if has_blob(key):
                check(lambda key=key: blob(small_value(key)), blob_value(key), owed_call, f"blob of {key!r}")
        for i in shared_ids:
            check(lambda i=i: shared(i), f"shared|{i}", True, f"shared({i})")
    kinds = collections.defaultdict(list)
    for example in examples:
        kinds[example.split(":", 1)[0]].append(example)
    return {"counts": result, "examples": [e for some in kinds.values() for e in some[:4]]}


def wrong_rows(storage: Storage) -> int:
    """Stored calls (logged or not) whose output is not what their arguments give."""
    bad = 0
    for fn, expected in ((small, small_value), (tail, lambda v: tail_value(key_of(v)))):
        frame = storage.df(fn)
        column = frame.columns[0]
        bad += int((frame["output"] != frame[column].map(expected)).sum())
    frame = storage.df(shared)
    bad += int((frame["output"] != frame["i"].map(lambda i: f"shared|{i}")).sum())
    return bad


def integrity(storage: Storage, path: Path) -> str:
    """``storage.verify()`` where it exists, else the tests' dangling-rows check; and SQLite's
    own integrity_check. "ok" or what is wrong."""
    with sqlite3.connect(path) as conn:
        sqlite_says = conn.execute("PRAGMA integrity_check").fetchone()[0]
    problems = [] if sqlite_says == "ok" else [f"integrity_check: {sqlite_says}"]
    verify = getattr(storage, "verify", None)
    if verify is not None:
        try:
            report = verify()
        except MandalaError as exc:
            problems.append(f"verify(): {exc}")
        else:
            if not getattr(report, "ok", True):
                problems.append(f"verify(): {report}")
        return "; ".join(problems) or "ok (integrity_check, storage.verify())"
    sys.path.insert(0, str(HERE.parent / "tests"))
    from integrity import dangling_references

    dangling = dangling_references(path)
    if dangling:
        problems.append(f"{dangling} dangling rows")
    return "; ".join(problems) or "ok (integrity_check, no dangling rows)"


def blob_census(path: Path) -> dict:
    """Blob rows vs blob files: a row without its file is a lost value; a file without a row
    is what a killed process wrote before committing (gc removes it after an hour)."""
    with sqlite3.connect(path) as conn:
        rows = {cid.hex() for (cid,) in conn.execute("SELECT cid FROM vals WHERE external = 1")}
    root = Path(f"{path}.blobs")
    files, temps = set(), 0
    for file in root.rglob("*") if root.is_dir() else ():
        if file.is_file() and file.name.endswith(".tmp"):
            temps += 1
        elif file.is_file():
            files.add(file.name)
    return {"rows": len(rows), "files": len(files), "rows without file": len(rows - files),
            "files without row": len(files - rows), "temp files": temps}


def check_main(args) -> None:
    logs, path = Path(args.logs), Path(args.path)
    told = replay(logs)
    storage = Storage(path)
    loaded = load_owed(storage, told["owed"], told["unsure"], told["shared"])
    result = {
        "counts": dict(told["counts"]),
        "errors": [[*key, n] for key, n in told["errors"].most_common()],
        "owed": len(told["owed"]), "unsure": len(told["unsure"]),
        "loaded": dict(loaded["counts"]), "examples": loaded["examples"],
        "wrong rows": attempt(lambda: wrong_rows(storage)),
        "integrity": attempt(lambda: integrity(storage, path)),
        "blobs": blob_census(path),
    }
    print(json.dumps(result))


def attempt(check):
    """A check's result; on a broken file the check itself may fail: then how, as text."""
    try:
        return check()
    except Exception as exc:
        return f"failed: {type(exc).__name__}: {without_ids(str(exc))}"


# -- the report -----------------------------------------------------------------------------


def summarize(args, steady: dict, kills: dict, checked: dict, elapsed: float) -> dict:
    counts, loaded, blobs = checked["counts"], checked["loaded"], checked["blobs"]
    raw = sum(row[-1] for row in checked["errors"] if row[0] == "raw")
    mandala = sum(row[-1] for row in checked["errors"] if row[0] == "mandala")
    rows = checked["wrong rows"]  # a number, or why the tables could not be read
    wrong = counts.get("wrong", 0) + loaded.get("wrong", 0) + (rows if isinstance(rows, int) else 0)
    return {
        "calls made": counts.get("calls made", 0),
        "calls lost": loaded.get("lost", 0),
        "calls stored but unloadable": loaded.get("unloadable", 0),
        "wrong values": wrong,
        "raw errors": raw,
        "integrity": checked["integrity"],
        "every stored row checked": "yes" if isinstance(rows, int) else rows,
        "blob rows vs files": f"{blobs['rows']} rows, {blobs['files']} files: "
        f"{blobs['rows without file']} rows without a file, {blobs['files without row']} files "
        f"without a row, {blobs['temp files']} temp files",
        "blob rows without a file": blobs["rows without file"],
        "MandalaErrors": mandala,
        "hits checked in blocks": counts.get("hits", 0),
        "committed calls recomputed": counts.get("recomputed calls", 0),
        "committed calls missing from df": counts.get("unseen calls", 0),
        "calls deleted": counts.get("calls deleted", 0),
        "calls checked at the end": loaded.get("checked", 0),
        "delete reports off": counts.get("delete_mismatch", 0),
        "kills": ", ".join(f"{n} in {m}" for m, n in sorted(kills["kills"].items())) or "none",
        "workers that failed": "; ".join(steady["abnormal exits"] + kills["abnormal exits"]) or "none",
        "elapsed": f"{elapsed:.0f} s",
    }


MUST_BE_ZERO = ("calls lost", "calls stored but unloadable", "wrong values", "raw errors", "blob rows without a file")


def failed(summary: dict) -> list[str]:
    bad = [name for name in MUST_BE_ZERO if summary[name]]
    bad += [] if summary["integrity"].startswith("ok") else ["integrity"]
    return bad + ([] if summary["every stored row checked"] == "yes" else ["every stored row checked"])


def markdown(args, summary: dict, checked: dict) -> str:
    mode = "one Storage shared by the threads" if args.threads_share_storage else "one Storage per thread"
    lines = [
        f"stress: {args.processes} processes x {args.threads} threads ({mode}), {args.seconds:g} s, "
        f"{args.kills} kills",
        "",
        "| | value | must be |",
        "|---|---|---|",
    ]
    for name, value in summary.items():
        must = "0" if name in MUST_BE_ZERO else {"integrity": "ok", "every stored row checked": "yes"}.get(name, "")
        if name != "blob rows without a file":
            lines.append(f"| {name} | {value} | {must} |")
    if checked["errors"]:
        lines += ["", "| errors | type | message | at | during | count |", "|---|---|---|---|---|---|"]
        for kind, kind_type, msg, at, action, n in checked["errors"][:15]:
            lines.append(f"| {kind} | {kind_type} | {msg.replace('|', '/')} | {at} | {action} | {n} |")
    lines += [f"- {example}" for example in checked["examples"]]
    return "\n".join(lines)


def parent_main(args) -> int:
    keep = args.path is not None
    workdir = Path(args.path).parent if keep else Path(tempfile.mkdtemp(prefix="mandala-stress-"))
    args.path = Path(args.path) if keep else workdir / "stress.db"
    if args.path.exists():
        sys.exit(f"{args.path} exists: give --path a new file")
    args.logs = Path(f"{args.path}.stress-logs")
    args.logs.mkdir(parents=True)
    started = time.time()
    try:
        steady = steady_phase(args)
        kills = kill_phase(args)
        checked = run_check(args)
        summary = summarize(args, steady, kills, checked, time.time() - started)
        print(markdown(args, summary, checked))
        if args.json:
            Path(args.json).write_text(json.dumps({"summary": summary, "check": checked}, indent=1))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    problems = failed(summary)
    if problems:
        print(f"\nFAILED: {', '.join(problems)}")
    return 1 if problems else 0


def run_check(args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--check", "--path", str(args.path),
               "--logs", str(args.logs)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"the check failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=None, help="worker processes (16; --small: 3)")
    ap.add_argument("--threads", type=int, default=None, help="threads per process (8; --small: 2)")
    ap.add_argument("--seconds", type=float, default=None, help="steady phase (60; --small: 8)")
    ap.add_argument("--kills", type=int, default=None, help="kill -9s in the kill phase (50; --small: 5)")
    ap.add_argument("--path", help="storage file to create (default: in a temp dir, removed after)")
    ap.add_argument("--threads-share-storage", action=argparse.BooleanOptionalAction, default=True,
                    help="threads of a process share one Storage (default) or open one each")
    ap.add_argument("--small", action="store_true", help="CI size: 3 processes, 2 threads, 8 s, 5 kills")
    ap.add_argument("--seed", default="0")
    ap.add_argument("--json", help="also write the results to this file")
    for hidden in ("--worker", "--logs", "--weights"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    ap.add_argument("--until", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = (3, 2, 8.0, 5) if args.small else (16, 8, 60.0, 50)
    for name, size in zip(("processes", "threads", "seconds", "kills"), sizes):
        if getattr(args, name) is None:
            setattr(args, name, size)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    if args.check:
        check_main(args)
        return 0
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
