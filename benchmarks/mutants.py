"""Mutation score of the test suite: a curated list of plausible bugs, each one applied to a
scratch copy of the repository, and the tests that kill (or fail to kill) it.

    python benchmarks/mutants.py                 # every mutant, one at a time
    python benchmarks/mutants.py --jobs 2        # two scratch copies side by side
    python benchmarks/mutants.py --only V01,D01  # some mutants (ids, comma-separated)
    python benchmarks/mutants.py --list          # the list, nothing run
    python benchmarks/mutants.py --check         # only check that every snippet is found

Each mutant is (id, file, exact source snippet, replacement, relevant test files, one-line
description): a dropped condition, a swapped argument, an off-by-one, a missing key part —
a bug someone could plausibly write. The runner copies the working tree (``git ls-files``:
tracked and untracked-but-not-ignored files, so uncommitted edits count) once per job under
a temp directory, and for each mutant:

1. replaces the snippet (it must occur exactly once in the file),
2. runs the relevant test files, ``pytest -x -q -p no:cacheprovider``, and only if they all
   pass, the whole suite; a kill must reproduce: a test that fails in the suite but passes
   when run alone on the mutant (a deadline missed on a busy machine) is left out, and the
   suite run again (twice at most),
3. restores the file and removes the copy's ``__pycache__`` directories (a mutation that
   keeps the file's size within one second would otherwise be served from a stale .pyc).

The copy is what gets imported, in the test process and in every subprocess the tests spawn:
pytest runs with the copy as working directory and first on ``PYTHONPATH`` (ahead of the
editable install's path entry), and the tests locate the repository from their own
``__file__``, which is the copy's. The runner checks this before the first mutant.

It prints a markdown table (id, area, description, killed by / survived) and the kill rate
over the mutants not marked equivalent. Exit status: 2 if a snippet is not found (the list
has drifted from the code: the message names the mutant, the file and the snippet), 1 if the
kill rate is below ``--fail-under`` (default 95), else 0.

Why a curated runner and not mutmut 3 or cosmic-ray (both on PyPI): both generate every
mutation their operators can make (thousands for this code base), most of them equivalent or
trivial (a changed message string, ``+ 1`` in a log line), and a useful score would need each
survivor triaged by hand; at ~40 s a suite run on a 2-core machine shared by others, even a
filtered run takes hours. mutmut 3 rewrites each function into a trampoline in a ``mutants/``
copy and picks the mutant through an environment variable, which the many tests that run a
fresh interpreter (hooks, crashes, concurrency) would have to carry through; cosmic-ray
mutates the working tree in place (one worker per clone for parallel runs) and has no notion
of "these tests first". Neither takes a hand-written list. A list of about 120 bugs, each
chosen for a behaviour users rely on, runs in well under an hour and says what each test
buys; keeping the snippets exact makes the list fail loudly when the code moves.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Bumped whenever mutants are added, removed or changed (ids are never reused).
LIST_VERSION = "2026-12-07.DL11+FX12+LE5+SH19+SC1+RN5+LT3+ED7+ST11+LN8+RX7+BF11+VX10+LA10+DK4+SS11+SG2+PY3+EG3+PB16+RV3+FM7+FR3+GT8+DS5+RW3+DT7+IV2+RQ2+RZ1+LS3+TT1+PH3+IN4+IA7+PH6+IB12+RS5+IN5+PD5"

#: Tests left out of one mutant's suite run because they passed when run alone (see Workspace.suite).
_FLAKY_RETRIES = 2

#: Per mutant and test run; a mutant that hangs the suite counts as killed ("timeout").
TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Mutant:
    """One plausible bug: replace ``find`` (exactly one occurrence) by ``replace`` in ``file``."""

    id: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    description: str
    equivalent: bool = False
    reason: str = ""

    @property
    def area(self) -> str:
        return AREAS[self.id.rstrip("0123456789")]


AREAS = {"H": "hashing", "I": "identity", "V": "versions", "S": "store", "D": "deletion",
         "Q": "queries", "C": "compiler", "W": "why", "B": "blobs", "P": "paths & disks",
         "T": "threads", "Y": "types, value files & caches",
         "E": "environment variables", "F": "notebooks, pytest plugin, batch",
         "G": "durability: crashes, stale logs, full disks",
         "Z": "versions & types (session 5)"}
AREAS["J"] = "what tables say of stored work"
AREAS["K"] = "batch under failure"
AREAS["N"] = "compiled code as users write it (session 6)"
AREAS["R"] = "review of merges (R0x: session 5, R2x: session 8)"
AREAS["X"] = "evolving code and data (session 6)"
AREAS["U"] = "values as users pass them (session 6)"
AREAS["L"] = "lifecycle: options changed later, lock and value files, Ctrl-C (session 7)"
AREAS["O"] = "faults and concurrency (session 7)"
AREAS["M"] = "provenance compiled code records (session 7)"
AREAS["A"] = "reading results back: queries, delete blocks, pictures, export (session 7)"
AREAS["RV"] = "review of session-7 merges"
AREAS["LO"] = "holes reported earlier and left open (session 8)"
AREAS["VE"] = "code edited between runs (session 8)"
AREAS["LD"] = "the lead using the library (session 8)"
AREAS["CD"] = "collections, deletion and months-old storages (session 8)"
AREAS["PN"] = "pytest plugin and notebooks as a data scientist uses them (session 8)"
AREAS["RL"] = "review of the lead's session-8 commits"
AREAS["LE"] = "the lead's session-9 changes"
AREAS["DL"] = "deletion, verify and export leftovers (session 9)"
AREAS["FX"] = "fixtures, batch and why leftovers (session 9)"
AREAS["SH"] = "stale or spurious results when code changes (session 9)"
AREAS["SC"] = "flat per-call cost at scale (session 9)"
AREAS["RN"] = "review of session-9 merges"
AREAS["LT"] = "the lead's session-10 changes"
AREAS["ED"] = "edges left open: Ctrl-C on Dask, teardown, fixtures, export names (session 10)"
AREAS["ST"] = "stale results when code changes, leftovers (session 10)"
AREAS["LN"] = "lineage of collections built by hand (session 10)"
AREAS["RX"] = "review of session-10 merges"
AREAS["BF"] = "batch futures that end oddly (session 10)"
AREAS["VX"] = "library objects and modules found by name, as dependencies (session 11)"
AREAS["LA"] = "lineage of collections filled step by step (session 11)"
AREAS["DK"] = "Dask batch per-call overhead (session 11)"
AREAS["SS"] = "state set by the script before an op runs (session 11)"
AREAS["EG"] = "edges left open (session 12)"
AREAS["SG"] = "bytes hashed as segments on all cores (session 12)"
AREAS["PY"] = "compiled .pyc size (session 12)"
AREAS["PB"] = "stale or spurious results found by probing (session 12)"
AREAS["RV"] = "review of session-12 merges"
AREAS["FM"] = "storage format 9: fewer random-key indexes (session 13)"
AREAS["FR"] = "review of storage format 9 (session 13)"
AREAS["GT"] = "guarded calls found by history alone (session 14)"
AREAS["DS"] = "deleting many calls named by row id: one pass, not a skip-scan each (session 14)"
AREAS["RW"] = "review of guarded calls found by history alone (session 14)"
AREAS["DT"] = "distinct rows found by sorted hashes, not a tuple per row (session 15)"
AREAS["IV"] = "a column of ints decoded in bulk around its few other values (session 15)"
AREAS["LS"] = "a guarded call's few calls without history searched in a temp table (session 15)"
AREAS["RQ"] = "review of the session-15 distinct rows and guarded edges"
AREAS["RZ"] = "review of the session-15 derived ids on demand and Decoder.share"
AREAS["TT"] = "review of the session-15 temp tables of a guarded op's calls without history"
AREAS["PH"] = "transient placeholders under a value another op stores (session 16)"
AREAS["IN"] = "the index of calls not exact a guarded query's check reads (session 16)"
AREAS["IA"] = "feature intersections probed by a new user (session 16, A)"
AREAS["IB"] = "feature intersections probed by a new user (session 16, B)"
AREAS["RS"] = "review of session-16 merges"
AREAS["PD"] = "holes a new user found in the README's tools (session 17)"

_HASHING = ("tests/test_hashing.py", "tests/test_regressions.py")
_BUILT = ("tests/test_built_collections.py",)
_GROWN = ("tests/test_grown_collections.py", "tests/transforms/test_run_form.py")
_OPS = ("tests/test_ops.py", "tests/test_storage.py", "tests/test_recording.py", "tests/test_identity.py", "tests/test_regressions.py")
_VERSIONS = ("tests/test_versions.py", "tests/test_fingerprints.py", "tests/test_dependencies.py",
             "tests/test_regressions.py")
_STORE = ("tests/test_store.py", "tests/test_storage.py", "tests/test_recording.py", "tests/test_identity.py", "tests/test_codecs.py", "tests/test_packing.py")
_DELETION = ("tests/test_deletion.py", "tests/test_query_delete.py")
_QUERY = ("tests/test_query.py", "tests/test_query_columns.py", "tests/test_query_elements.py",
          "tests/test_query_plans.py")
_BLOBS = ("tests/test_blobs.py", "tests/test_integrity.py", "tests/test_faults.py", "tests/test_loading.py")
_LIMITS = ("tests/test_storage_limits.py", "tests/test_store.py", "tests/test_faults.py")
_THREADS = ("tests/test_storage_threads.py", "tests/test_store.py")
_COMPILER = ("tests/test_compiler.py", "tests/test_hook.py", "tests/test_compiled_blocks.py",
             "tests/test_compiled_runtime.py")

_H = "mandala_ast/runtime/hashing.py"
_DEPS = "mandala_ast/runtime/dependencies.py"
_INPUTS = ("tests/test_version_inputs.py",)
_ST = "mandala_ast/runtime/storage.py"
_ID = "mandala_ast/runtime/identity.py"
_LU = "mandala_ast/runtime/lookup.py"
_RE = "mandala_ast/runtime/recording.py"
_LO = "mandala_ast/runtime/loading.py"
_PI = "mandala_ast/runtime/pipeline.py"
_EX = "mandala_ast/runtime/explaining.py"
_FP = "mandala_ast/runtime/fingerprints.py"
_VE = "mandala_ast/runtime/versions.py"
_VR = "mandala_ast/runtime/value_rows.py"
_SO = "mandala_ast/runtime/store.py"
_DE = "mandala_ast/runtime/deletion.py"
_SQL = "mandala_ast/runtime/query/sql.py"
_BL = "mandala_ast/runtime/blocks.py"
_BLOB = "mandala_ast/runtime/blobs.py"
_IN = "mandala_ast/runtime/integrity.py"
_TA = "mandala_ast/runtime/tables.py"
_QF = "mandala_ast/runtime/query/hooks.py"
_CO = "mandala_ast/runtime/compiled.py"
_ENV = "mandala_ast/runtime/env_deps.py"
_ENV_TESTS = ("tests/test_env_deps.py",)

MUTANTS: tuple[Mutant, ...] = (
    # -- hashing: equal content, equal id; different content (or type), different id ----------
    Mutant("H01", _H, 'out += b"B1" if value else b"B0"', 'out += b"B1" if value else b"B1"', _HASHING,
           "False hashes like True"),
    Mutant("H02", _H, '_put(out, b"Y", bytes(value))', '_put(out, b"S", bytes(value))', _HASHING,
           "bytes share str's type tag: b'a' and 'a' collide"),
    Mutant("H50", _H, "    types.FunctionType: _function_stand_in,\n", "", ("tests/test_hashing.py", "tests/test_batch_workers.py"),
           "a function given to an op is keyed by name alone: edited, its old result is served on processes"),
    Mutant("H51", _H, "{exc}{_fix_for(value)}", "{exc}", ("tests/test_hashing.py",),
           "a lambda argument's error says only that pickle could not find it"),
    Mutant("H03", _H, 'b"".join(sorted(map(_item_encoding, value)))',
           'b"".join(map(_item_encoding, value))', _HASHING,
           "set elements hashed in iteration order (depends on PYTHONHASHSEED)"),
    Mutant("H04", _H, "pairs = sorted(_item_encoding(k) + _item_encoding(v) for k, v in value.items())",
           "pairs = [_item_encoding(k) + _item_encoding(v) for k, v in value.items()]", _HASHING,
           "dict hashed in insertion order"),
    Mutant("H05", _H, "    out += _LENGTH(len(payload))\n", "    out += b''\n", _HASHING,
           "no length prefix: ('ab', 'c') and ('a', 'bc') collide"),
    Mutant("H06", _H, 'list: _sequence_encoder(b"L"),', 'list: _sequence_encoder(b"T"),', _HASHING,
           "a list hashes like the tuple of its items"),
    Mutant("H07", _H, "return dtype.str if dtype.fields is None else repr(dtype.descr)", "return dtype.str",
           _HASHING, "structured dtypes of one size collide (field names and types dropped)"),
    Mutant("H08", _H, 'header = f"ndarray|{_dtype_key(array.dtype)}|{array.shape}".encode()',
           'header = f"ndarray|{_dtype_key(array.dtype)}".encode()', _HASHING,
           "array shape left out: a reshaped array keeps its id"),
    Mutant("H09", _H, "return value != 0.0 and value == value", "return value == value", _HASHING,
           "0.0 cached, so -0.0 gets 0.0's cached id"),
    Mutant("H10", _H, "return value if kind is int or kind is str else (kind, value)", "return value",
           _HASHING, "scalar cache keyed without the type: True answers with 1's id"),
    Mutant("H11", _H, '        payload = b"%x" % value\n        size = ', '        payload = b"%x" % abs(value)\n        size = ', _HASHING,
           "int fast path drops the sign: -5 and 5 collide"),
    Mutant("H12", "mandala_ast/runtime/types/pandas_types.py",
           'return ("frame", index_key(frame.index), index_key(frame.columns), columns, frame.attrs)',
           'return ("frame", index_key(frame.index), columns, frame.attrs)', _HASHING + ("tests/test_types.py",),
           "DataFrame column names left out of its id"),
    Mutant("H13", "mandala_ast/runtime/types/pandas_types.py",
           'return ("series", series.name, index_key(series.index), values_key(series.array), series.attrs)',
           'return frame_key(series.to_frame())', _HASHING + ("tests/test_types.py",), "a Series hashes like its one-column frame",
           equivalent=True,
           reason="the id also hashes the type handler's name (pandas:series vs pandas:frame) before the key: "
                  "equal keys of a Series and its frame still give two ids"),
    Mutant("H19", "mandala_ast/runtime/types/pandas_types.py",
           'return ("series", series.name, index_key(series.index), values_key(series.array), series.attrs)',
           'return ("series", index_key(series.index), values_key(series.array), series.attrs)',
           ("tests/test_types.py",) + _HASHING, "an unnamed Series collides with one named 0 (its name is left out)"),
    # -- identity: which calls are the same call ------------------------------------------------
    # (a call's content id is made by _call_id_maker, a history id by call_id: one pair each)
    Mutant("I01", _ID, "    pairs = list(zip(heads, order))\n", "    pairs = list(zip(heads, order))[:1]\n", _OPS,
           "call id covers only the first argument: add(1, 2) is add(1, 3)"),
    Mutant("I02", _ID, "    heads[:1] = [version_id + heads[0]] if heads else []\n", "", _OPS,
           "call id without the op version: inc(1) and dec(1) are one call"),
    Mutant("I15", _ID, "    for name in sorted(ids):\n        parts += (name.encode(), b\"\\0\", ids[name])",
           "    for name in sorted(ids)[:1]:\n        parts += (name.encode(), b\"\\0\", ids[name])", _OPS,
           "history id covers only the first argument: add(inc(1), 2) is add(inc(1), 3)"),
    Mutant("I16", _ID, "    parts = [version_id]\n    for name in sorted(ids):",
           "    parts = []\n    for name in sorted(ids):", _OPS,
           "history id without the op version: inc(inc(1)) and dec(inc(1)) are one call"),
    Mutant("I03", "mandala_ast/runtime/ops.py",
           "return {name: cid for name, cid in cids.items() if defaults.get(name) != cid}", "return cids",
           _OPS + ("tests/test_versions.py",),
           "an argument left at its first-seen default is in the key: adding a parameter loses old calls"),
    Mutant("I04", _ID, "cids = {n: content_id(v) for n, v in bound.items() if n not in op.ignore}",
           "cids = {n: content_id(v) for n, v in bound.items()}", _OPS, "ignore= is ignored"),
    Mutant("I05", _ID, "    return (op.serial, args, types)\n", "    return (op.serial, args)\n", _OPS,
           "in-process memo keyed without types: f(True) answers with f(1.0)'s result"),
    Mutant("I06", _ID, "if not _FAST_TYPES.issuperset(types) or 0.0 in args:",
           "if not _FAST_TYPES.issuperset(types):", _OPS, "in-process memo conflates 0.0 and -0.0"),
    Mutant("I07", _ID, 'self.row_id = digest(b"row|%s|%s" % (self.history_id, deps_id))',
           'self.row_id = digest(b"row|%s" % self.history_id)', _OPS + ("tests/test_versions.py",),
           "row id without the dependency state: a recomputation after an edit is never stored"),
    Mutant("I08", _ID, "histories.update((renamed.get(name, name), input_refs[name].hid) for name in sources)",
           "histories.update(())",
           _OPS + ("tests/test_compiled_blocks.py", "tests/test_compiled_runtime.py"),
           "history id ignores where inputs came from (compiled provenance collapses to content)"),
    Mutant("I09", "mandala_ast/runtime/ops.py",
           "if not isinstance(result, (tuple, list)) or len(result) != self.nout:",
           "if not isinstance(result, (tuple, list)):", _OPS, "a wrong number of outputs is stored"),
    Mutant("I10", "mandala_ast/runtime/ops.py",
           "if origin is tuple and items and items[-1] is not Ellipsis and items != ((),):",
           "if origin is tuple and items and items != ((),):", _OPS,
           "point 1: `-> tuple[int, ...]` (no __future__ import) counted as two outputs"),
    Mutant("I11", "mandala_ast/runtime/ops.py",
           "    if any(isinstance(i, ast.Constant) and i.value is Ellipsis for i in items):\n        return 1\n",
           "", _OPS, "text annotation `tuple[int, ...]` counted as two outputs"),
    Mutant("I12", "mandala_ast/runtime/ops.py", "if names is not None and not kwargs and len(args) == len(names):",
           "if names is not None and not kwargs:", _OPS,
           "positional fast path drops defaults when fewer arguments are passed"),
    # -- versions, fingerprints, dependencies ---------------------------------------------------
    Mutant("V01", _FP, 'order[node.id] = f"_local{len(order)}"', 'order[node.id] = "_local"', _VERSIONS,
           "point 2: every local renamed alike: `return a` -> `return b` keeps the fingerprint"),
    Mutant("V02", _FP, "            node.decorator_list = []\n", "", _VERSIONS,
           "decorators count: @op(nout=...) spelled differently changes the version"),
    Mutant("V03", _FP, 'fields.append(f"{name}={_serialise(value)}")', "fields.append(_serialise(value))",
           _VERSIONS, "field names dropped: x[:a] and x[a:] fingerprint alike"),
    Mutant("V04", _FP, "    if not signature_defaults:\n        _drop_defaulted_parameters(normalised)",
           "    if False:\n        _drop_defaulted_parameters(normalised)", _VERSIONS + ("tests/test_ops.py",),
           "adding a defaulted parameter changes the op's version"),
    Mutant("V05", "mandala_ast/runtime/ops.py",
           'return digest(b"op|%s|%d|%s" % (self.name.encode(), self.version, self.fingerprint.digest))',
           'return digest(b"op|%s|%d|%s" % (self.name.encode(), 0, self.fingerprint.digest))', _VERSIONS,
           "version= bump ignored"),
    Mutant("V06", _VE, '        parts += (name.encode(), b"\\0", found[name].state)',
           '        parts += (name.encode(), b"\\0")', _VERSIONS,
           "dependency-state id without the states: calls after a helper edit share the old id"),
    Mutant("V07", "mandala_ast/runtime/dependencies.py",
           "    owners = [fn, *(resolve(n) for n in list(found))]", "    owners = [fn]", _VERSIONS,
           "point 3: constants read only by a helper are not dependencies"),
    Mutant("V08", _LU, "            if not self.versions.is_valid(deps_id, call.op):\n                stale = deps_id",
           "            if False:\n                stale = deps_id", _VERSIONS,
           "stale calls (a dependency changed) are served"),
    Mutant("V09", _VE, "if current == state or self._accepted(name, state, current):",
           "if current == state:", _VERSIONS, "accept_change of a helper has no effect"),
    Mutant("V10", _VE, "                    frontier.append(after)\n", "", _VERSIONS,
           "only one accepted change is followed, not a chain"),
    Mutant("V11", _VE, 'if key in self._reported or self.on_change == "ignore":',
           'if self.on_change == "ignore":', _VERSIONS, "a change is reported once per call, not once"),
    Mutant("V12", _VE, "if now[0] is not seen[0] or now[1] != seen[1]:", "if now[0] is not seen[0]:",
           _VERSIONS, "a constant dict/list edited in place is not noticed at the next block"),
    Mutant("V13", "mandala_ast/runtime/dependencies.py", "if node.func.attr in _MUTATING_METHODS:",
           "if False:", _VERSIONS, "a list the op appends to counts as a constant it reads"),
    Mutant("V14", _VE, "return previous[2] == op.version and _is_text(source) and self._source(previous[1]) == source",
           "return _is_text(source) and self._source(previous[1]) == source", _VERSIONS,
           "a version= bump on unchanged text keeps the old calls"),
    Mutant("V15", _VE, '    if self.on_change == "error":\n',
           '    if self.on_change == "never":\n', _VERSIONS, 'on_change="error" only reports'),
    # -- store: SQLite, values, blobs -----------------------------------------------------------
    Mutant("S01", _SO, 'return "locked" in text or "busy" in text', 'return "busy" in text',
           _STORE, 'point 4: "database is locked" after the busy timeout is not retried'),
    Mutant("S02", _SO, "inputs[3::5] = [None if src is None else ids.get(src, 0) for src in sources]",
           "inputs[3::5] = [None for src in sources]", _STORE + ("tests/test_compiled_blocks.py",),
           "inputs are stored without the call that produced them"),
    Mutant("S03", _RE, "large = len(data) >= BLOB_BYTES and", "large = len(data) > BLOB_BYTES and",
           _STORE, "a value of exactly 1 MiB stays in the database"),
    Mutant("S04", "mandala_ast/runtime/codecs.py", "if -_INT_FAST < value < _INT_FAST:",
           "if value < _INT_FAST:", _STORE, "huge negative ints take the decimal path (fails past 4300 digits)"),
    Mutant("S05", "mandala_ast/runtime/codecs.py", 'if first.isdigit() or first == b"-":',
           "if first.isdigit():", _STORE, "negative numbers decoded by json.loads instead of int()/float()",
           equivalent=True,
           reason="json.loads gives the same value for every number json.dumps writes "
                  "(-0.0, -Infinity included); only slower"),
    Mutant("S06", "mandala_ast/runtime/packing.py", "            position += length\n", "", _STORE,
           "inline outputs after the first are read from the wrong offset"),
    Mutant("S07", "mandala_ast/runtime/codecs.py",
           'and not value.dtype.hasobject and type(value).__module__ == "numpy" \\\n',
           'and type(value).__module__ == "numpy" \\\n', _STORE, "object arrays go to .npy without pickle"),
    Mutant("S08", _SO, '                self.conn.execute("ROLLBACK")\n',
           '                pass\n', ("tests/test_migrations.py",) + _STORE,
           "a failed write transaction is left open"),
    Mutant("S09", _SO, 'retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))',
           'retry_locked(lambda: conn.execute("PRAGMA journal_mode = DELETE"))', _STORE + ("tests/test_faults.py",),
           "no WAL: readers and the writer block each other"),
    Mutant("S10", "mandala_ast/runtime/blobs.py", "        if target.exists():\n", "        if False:\n",
           _STORE + ("tests/test_faults.py",), "blob files rewritten on every store (not write-once)",
           equivalent=True,
           reason="the hard link then fails on the existing file, and its digest is returned just the "
                  "same: the file is still written once; only slower"),
    Mutant("S11", _VR, "        if placeholder is not None and not (placeholder and rows[start] in outputs):\n"
           "            dropped.append(start)  # its row stays: no bytes that no row names\n            continue\n", "",
           ("tests/test_value_rows.py",), "a medium value stored already gets a second, orphaned copy of its bytes"),
    Mutant("S12", _VR, "        if not external and data is not None and len(data) >= MEDIUM_VALUE_BYTES\n",
           "        if False\n", ("tests/test_value_rows.py",), "medium values stay in their content-keyed rows"),
    Mutant("S13", _VR, '    conn.execute(\n        f"DELETE FROM main.val_bytes', '    (\n        f"DELETE FROM main.val_bytes',
           ("tests/test_value_rows.py",), "deleting values leaves their bytes behind"),
    Mutant("S14", "mandala_ast/runtime/loading.py",
           "            self.store.restore_value_bytes(error.cid, encoded.data)\n", "",
           ("tests/test_value_rows.py",), "a value whose bytes were lost is never stored again"),
    Mutant("S15", "mandala_ast/runtime/pipeline.py",
           "        if loaded_back is not None:\n            load_back(call, outputs, out_cids, encoded, loaded_back)\n", "",
           ("tests/test_faults.py",), "an output whose pickle cannot be loaded back is stored, and fails every later run"),
    Mutant("S16", "mandala_ast/runtime/loading.py",
           '            if codec != "pickle":\n                raise\n            raise self._unloadable(cid, exc) from exc',
           "            raise", ("tests/test_loading.py",),
           "a stored pickle whose class is gone raises pickle's error, naming neither value nor call"),
    Mutant("S17", _IN, '" FROM call_inputs i WHERE i.call_id = ? ORDER BY i.name"',
           '" FROM call_inputs i LEFT JOIN vals x ON x.cid = i.cid WHERE i.call_id = ? ORDER BY i.name"',
           ("tests/test_value_rows.py",), "naming a corrupt value's call joins the view vals: it copies every stored value"),
    Mutant("S18", _VR, 'f"CREATE TRIGGER vals_delete INSTEAD OF DELETE ON vals BEGIN {_FORGET_BYTES}"',
           '"CREATE TRIGGER vals_delete INSTEAD OF DELETE ON vals BEGIN"', ("tests/test_value_rows.py",),
           "a format-7 process deleting a value stored apart after the upgrade leaves its bytes behind"),
    Mutant("S19", _VR, "        conn.execute(_LAST_ID_SQL, (str(next_id - 1),))\n", "", ("tests/test_value_rows.py",),
           "the id of the newest value's lost bytes is handed to the next value: the lost one loads as it"),
    Mutant("S20", "mandala_ast/runtime/migrations.py", 'READABLE_AS_IS = ("mandala_ast/7", "mandala_ast/8")', "READABLE_AS_IS = ()",
           ("tests/test_storage_limits.py",), "a read-only format-7 storage (shared results) no longer opens"),
    Mutant("S21", "mandala_ast/runtime/loading.py", '"stores its bytes again" if problem == BYTES_MISSING else ',
           "", ("tests/test_value_rows.py",),
           "a value whose bytes were lost from the database is said to be repaired by rewriting its file"),
    # -- deletion and gc ------------------------------------------------------------------------
    Mutant("S50", "mandala_ast/runtime/store.py", "this mandala_ast reads {FORMAT!r}{_newer(fmt)}\")", "this mandala_ast reads {FORMAT!r}\")",
           ("tests/test_store.py",), "a file a newer release wrote does not say to upgrade mandala_ast"),
    Mutant("D01", _DE, '" CROSS JOIN main.calls c ON c.id = i.call_id AND c.exact = 0 AND c.created_at >= m.first"\n',
           '" CROSS JOIN main.calls c ON c.id = i.call_id AND c.exact = 0"\n', _DELETION,
           "point 5: an uncompiled consumer recorded before the deleted call made its value is deleted"),
    Mutant("D02", _DE, '" CROSS JOIN main.calls c ON c.id = i.call_id AND c.exact = 0 AND c.created_at >= m.first"\n',
           '" CROSS JOIN main.calls c ON c.id = i.call_id AND c.created_at >= m.first"\n', _DELETION,
           "compiled consumers of an equal value from another call are deleted"),
    Mutant("D03", _DE, '" WHERE o.cid = mandala_made.cid AND c.created_at < mandala_made.first)",', '" WHERE 0)",', _DELETION,
           "a later producer of equal content takes an uncompiled consumer with it"),
    Mutant("D04", _DE, '"SELECT i.call_id FROM temp.mandala_frontier f CROSS JOIN main.call_inputs i ON i.src_call = f.id",',
           '"SELECT i.call_id FROM temp.mandala_frontier f CROSS JOIN main.call_inputs i ON i.src_call = -f.id",',
           _DELETION, "dependents by exact (compiled) history are not deleted"),
    Mutant("D05", "mandala_ast/runtime/reclaim.py", 'VALUE_REFERENCES = (("call_inputs", "cid"), ("call_outputs", "cid"))',
           'VALUE_REFERENCES = (("call_outputs", "cid"),)', _DELETION,
           "values still used as inputs are removed"),
    Mutant("D06", _DE, "        if dependents:\n            _add_dependents(conn, steps)",
           "        if not dependents:\n            _add_dependents(conn, steps)", _DELETION,
           "dependents=False deletes dependents, the default does not"),
    Mutant("D07", "mandala_ast/runtime/garbage.py", "file.is_file() and _mtime(file) < cutoff",
           "file.is_file() and _mtime(file) > cutoff", _DELETION,
           "gc removes fresh blob files another process is about to commit"),
    Mutant("D08", _DE, 'CROSS JOIN main.calls c ON c.cid = m.cid AND c.lkey != c.cid\nUNION',
           'CROSS JOIN main.calls c ON c.hid = m.hid\nUNION', _DELETION,
           "a matched call's other rows (another history) survive it"),
    Mutant("D09", _DE, "    if calls or values:\n        mark_deleted(conn)",
           "    if values:\n        mark_deleted(conn)", _DELETION + ("tests/test_storage.py", "tests/test_recording.py", "tests/test_identity.py",),
           "other Storages are not told about deleted calls"),
    # -- queries --------------------------------------------------------------------------------
    Mutant("Q01", "mandala_ast/runtime/query/columns.py",
           "cid_columns = [_cids(pattern.columns[name][-1].value,",
           "cid_columns = [_cids(pattern.columns[name][0].value,", _QUERY,
           "point 6: a rebound name's ids (and distinct rows) come from its first binding"),
    Mutant("Q02", "mandala_ast/runtime/query/result.py", "        for assignment in assignments:\n",
           "        for assignment in assignments[:1]:\n", _QUERY,
           "point 6, row-by-row path: a rebound name shows its first binding"),
    Mutant("Q03", _SQL, '                where.append(f"{table}.src_call IS NULL")\n                params_where.append(node.cid)',
           "                params_where.append(node.cid)", _QUERY,
           "a literal argument matches an input that came from an op"),
    Mutant("Q04", _SQL, "        if invalid:\n", "        if False:\n", _QUERY,
           "queries match calls of code that changed since"),
    Mutant("Q05", _SQL, 'self.joins.append(f"LEFT JOIN calls {alias} ON {alias}.id IN',
           'self.joins.append(f"JOIN calls {alias} ON {alias}.id IN', _QUERY,
           "rows whose `if` failed are dropped instead of getting nulls"),
    Mutant("Q06", _SQL, "{element if from_element else f'{consumer}.exact = 0'}", "{element if from_element else 'TRUE'}", _QUERY,
           "a compiled call's literal input is matched to an op output by content"),
    Mutant("Q07", _SQL, "            left = default is not None and (", "            left = False and (", _QUERY,
           "a query naming a new parameter's default misses calls stored before it existed"),
    Mutant("Q08", "mandala_ast/runtime/query/distinct.py",
           "    return tuple(column[i] for column in key_columns)",
           "    return tuple(column[i] for column in key_columns[:1])", _QUERY + ("tests/test_query_distinct.py",),
           "distinct rows compared on the first column only"),
    Mutant("Q09", "mandala_ast/runtime/query/distinct.py", "            at = first.setdefault(_key(key_columns, i), i)\n",
           "            at = i\n", _QUERY + ("tests/test_query_distinct.py",),
           "duplicate rows kept (the row-by-row, the column-wise and the plain path share distinct_rows)"),
    Mutant("Q10", _SQL, 'order = ", ".join(f"+g{number}.id" for number in reversed(self.required or [self.first]))',
           'order = ", ".join(f"+g{number}.id" for number in (self.required or [self.first]))', _QUERY,
           "rows ordered by the first call instead of the last"),
    # -- the compiler and the import hook -------------------------------------------------------
    Mutant("C01", "mandala_ast/compiler.py", '        f"mandala_ast={_library_version()}",\n', "", _COMPILER,
           "point 7: the compiled-file cache outlives a library upgrade"),
    Mutant("C02", "mandala_ast/compiler.py", '        f"transforms={_transforms_digest()}",\n', "", _COMPILER,
           "the compiled-file cache outlives an edit of the transform"),
    Mutant("C03", "mandala_ast/compiler.py", "        and blob[8:16] == importlib.util.source_hash(data)\n", "",
           _COMPILER, "an edited module is served from its stale compiled file"),
    Mutant("C04", "mandala_ast/compiler.py",
           "if cache_format != CACHE_FORMAT or stored_key != key or not isinstance(code, types.CodeType):",
           "if cache_format != CACHE_FORMAT or not isinstance(code, types.CodeType):", _COMPILER,
           "the key stored in a compiled file is not compared",
           equivalent=True,
           reason="the file name already holds the key's first 12 hex digits (48 bits): only a prefix "
                  "collision between two keys for one source file could tell"),
    Mutant("C05", "mandala_ast/compiler.py", "if OPT_OUT_MARKER in data or not data.strip():",
           "if not data.strip():", _COMPILER + ("tests/test_cli.py",),
           "MANDALA_AST_DONT_COMPILE is not honoured"),
    Mutant("C06", "mandala_ast/transforms/_detect.py", '            if method in LATER_METHODS:\n                return "later"',
           '            if method in LATER_METHODS:\n                return "block"', _COMPILER + _QUERY,
           "query and delete blocks compiled as run blocks"),
    Mutant("C07", "mandala_ast/transforms/_detect.py",
           'return "block" if callee.rpartition(".")[2] == "Storage" else None', "return None",
           _COMPILER + ("tests/transforms/test_run_form.py", "tests/transforms/test_end_to_end.py"),
           "`with Storage(path):` bodies are not compiled"),
    Mutant("C08", "mandala_ast/transforms/_scopes.py",
           "if name not in _BUILTINS or self.resolve(name) is not self.module:", "if name not in _BUILTINS:",
           _COMPILER + ("tests/transforms/test_run_form.py", "tests/transforms/test_semantics.py"),
           "a local that shadows a builtin name (len = ...) is taken for the builtin"),
    Mutant("C09", "mandala_ast/transforms/_lines.py", "    if len(old_lines) != len(new_lines):\n",
           "    if False:\n", ("tests/transforms/test_lines.py",) + _COMPILER,
           "a rewrite that shifts lines is not caught"),
    Mutant("C10", "mandala_ast/runtime/compiled.py", "if refs is None or len(refs) != len(targets):",
           "if refs is None:", _COMPILER, "unpacking targets get the wrong call's history"),
    Mutant("C11", "mandala_ast/runtime/compiled.py",
           "return positional[where] if where < len(positional) else None",
           "return positional[where] if where <= len(positional) else None", _COMPILER,
           "a workflow argument landing in *args crashes the block"),
    Mutant("C12", "mandala_ast/runtime/compiled.py",
           "        parent.collect(spec[4][1], known)\n",
           "        pass\n", _COMPILER, "a nested op call's output loses its history (inc(inc(1)))"),
    # -- ops called by ops are dependencies ------------------------------------------------------
    Mutant("V16", _ST, "                block.note_op_call(op, hit[1])\n", "", _VERSIONS,
           "an inner op served from the op bodies' fast cache is not a dependency of its caller"),
    Mutant("V17", _ST, "            block.note_op_call(op, deps_id)\n", "", _VERSIONS,
           "an inner op looked up or computed is not a dependency of its caller"),
    Mutant("V18", _BL, "        for collected in tuple(self.op_bodies):", "        for collected in tuple(self.op_bodies)[-1:]:",
           _VERSIONS, "an outer op does not depend on the ops its inner op called (a() -> b() -> c())",
           equivalent=True,
           reason="the outer op still gets them: a call's dependency state takes on each inner call's "
                  "stored state, which lists what that call's own inner ops called"),
    Mutant("V19", _BL, "            self.call_op = self._call_op_in_body  # type: ignore[method-assign]\n", "", _VERSIONS,
           "op calls from an uncompiled op body are not collected as dependencies"),
    # Found trying the library as a user (this list's version 2026-12-06.6): stale results
    # through pools, nameless code, module-level objects and C file readers.
    Mutant("V20", "mandala_ast/runtime/dependencies.py", "    if hands_work_off(codes):\n", "    if False:\n",
           _VERSIONS, "a helper an op body maps over a pool is no dependency"),
    Mutant("V21", _BL, "        for block in open_blocks(self.storage):\n            block.note_op_call(op, deps_id)\n",
           "", _VERSIONS + ("tests/test_file_deps.py",),
           "op calls made in a pool's threads are not the running body's op calls"),
    Mutant("V22", "mandala_ast/runtime/dependencies.py",
           "        if name not in found and (_code_object_of(value) is None or name != qualified_name(value)\n",
           "        if name not in found and (_code_object_of(value) is None\n", _VERSIONS,
           "a module-level lambda or factory-made closure is no dependency"),
    Mutant("V23", "mandala_ast/runtime/dependencies.py",
           "    return is_user_module(kind.__module__) or handler_for(kind) is not None",
           "    return handler_for(kind) is not None", _VERSIONS,
           "an object of the user's class (CONFIG = Config(...)) is no dependency"),
    Mutant("V24", "mandala_ast/runtime/dependencies.py",
           "        found.update(_class_attributes_read(name))", "        pass", _VERSIONS,
           "class-level data a method reads (self.K) is no dependency"),
    Mutant("V25", "mandala_ast/runtime/dependencies.py",
           "        return _with_cells(state, code, depth) if getattr(code, \"__closure__\", None) else state",
           "        return state", _VERSIONS,
           "what a closure closes over (scale = make(2)) is no dependency"),
    Mutant("V26", "mandala_ast/runtime/file_deps.py", "    if in_code:\n        named = named + in_code\n", "",
           ("tests/test_file_deps.py",), "a file a C reader opens by a literal path in the code is no dependency"),
    Mutant("V28", "mandala_ast/runtime/execution.py", "    ran.before = before\n", "", _VERSIONS,
           "a module-level object the body changes is taken as it left it (every new process recomputes)"),
    Mutant("V27", "mandala_ast/runtime/file_deps.py",
           "                body.named = named_paths(args, kwargs.values() if kwargs else ())\n",
           "                pass\n", ("tests/test_file_deps.py",),
           "a file a C reader opens by an argument's path is no dependency"),
    # -- storage.why: today's code, nothing stored ----------------------------------------------
    Mutant("W01", _EX, "    engine.refresh_versions()\n    versions, store = engine.versions, engine.store\n"
           "    bound, cids = hash_inputs(op, args, kwargs, engine.loader.aliases)\n    version_id = versions.peek_version_id(op)\n"
           "    ident = op.identity_inputs(cids, versions.peek_defaults(op))\n"
           "    ident = renames.renamed(ident, versions.identity_names(op))\n    key = call_id(version_id, ident)\n"
           "    shown = f\"{op.name}({describe(bound)})\"\n    candidates = store.find_calls(version_id, key, key)\n"
           "    diffs = [versions.dependency_diffs(deps_id, op) for _, _, deps_id, _ in candidates]\n"
           "    for (row_id, *_), changed in zip(candidates, diffs):\n        if not changed:\n",
           "    versions, store = engine.versions, engine.store\n"
           "    bound, cids = hash_inputs(op, args, kwargs, engine.loader.aliases)\n    version_id = versions.peek_version_id(op)\n"
           "    ident = op.identity_inputs(cids, versions.peek_defaults(op))\n"
           "    ident = renames.renamed(ident, versions.identity_names(op))\n    key = call_id(version_id, ident)\n"
           "    shown = f\"{op.name}({describe(bound)})\"\n    candidates = store.find_calls(version_id, key, key)\n"
           "    diffs = [versions.dependency_diffs(deps_id, op) for _, _, deps_id, _ in candidates]\n"
           "    for (row_id, _, deps_id, _), changed in zip(candidates, diffs):\n        if versions.is_valid(deps_id):\n",
           _VERSIONS + ("tests/test_display.py",),
           "why answers from the validity cached at the last block: a helper reloaded since is 'unchanged'"),
    Mutant("W02", _EX, "version_id = versions.peek_version_id(op)", "version_id = versions.version_id(op)",
           _VERSIONS + ("tests/test_display.py",), "asking why registers the op's new version"),
    Mutant("W03", _EX, "ident = op.identity_inputs(cids, versions.peek_defaults(op))",
           "ident = op.identity_inputs(cids, versions.defaults(op))", _VERSIONS + ("tests/test_display.py",),
           "asking why records the op's defaults as first seen"),
    # -- this session's fixes: types, value files, the compiled-module cache -------------------
    Mutant("Y01", _BLOB, "        if holds is None or found == data_digest(data) or holds(target.read_bytes()):",
           "        if True:", _BLOBS,
           "a value file whose row was lost (never flushed whole) is recorded as the value when computed again"),
    Mutant("Y02", "mandala_ast/runtime/types/pandas_types.py", "    return key if freq is None else (*key, (\"freq\", freq))",
           "    return key", ("tests/test_types.py",),
           "a frame whose DatetimeIndex has a freq is served the result of the same frame without"),
    Mutant("Y03", "mandala_ast/runtime/side_by_side.py",
           "    return [results[id(item)] for item in items]", "    return [results[id(item)] for item in distinct]",
           ("tests/test_side_by_side.py", "tests/test_hashing.py"),
           "items encoded two at a time are put back in the wrong places"),
    Mutant("Y04", "mandala_ast/compiler.py", "            cachedir.prune(keep=spare)", "            pass",
           ("tests/test_cachedir.py", "tests/test_compiler.py"), "the cache directory grows forever"),
    Mutant("Y08", "mandala_ast/compiler.py", "    cachedir.note_use(entry)  # what pruning keeps: entries in use\n", "",
           ("tests/test_cachedir.py",), "entries in use are pruned as if never used since they were written"),
    Mutant("Y09", "mandala_ast/runtime/recording.py",
           "        return found == cid or found == content_id(codecs.decode(encoded.codec, encoded.data))",
           "        return found == cid", _BLOBS,
           "another process's file of a value whose id changes in a round trip is replaced, and reads as corrupt"),
    Mutant("Y10", "mandala_ast/runtime/side_by_side.py",
           "    distinct = list({id(item): item for item in items}.values())  # each object encoded once",
           "    distinct = list(items)", ("tests/test_side_by_side.py",),
           "one lazily opened image twice in a list is loaded by two threads at once"),
    Mutant("Y11", "mandala_ast/runtime/hashing.py", '    return bool(getattr(_keying, "records", None))', "    return False",
           ("tests/test_side_by_side.py",), "a record its fields lead back to gets one of two ids by thread timing"),
    Mutant("Y12", "mandala_ast/runtime/env_deps.py", "        if frame.f_code in own:\n            return True\n", "",
           ("tests/test_env_deps.py",), "an installed package's op reading the environment depends on nothing it read"),
    Mutant("Y13", "mandala_ast/runtime/env_deps.py",
           "        modules = [value for value in found if isinstance(value, types.ModuleType) and value is not os]",
           "        modules = []", ("tests/test_env_deps.py",),
           "an op reading the environment through a config module (cfg.ENV.get) is not watched"),
    Mutant("Y14", _VE, "    if seen is not None and (seen[0] is not now[2] or seen[1] is not now[3] or seen[2] is not now[4]):",
           "    if False:", ("tests/test_ipython.py",),
           "a Storage made after a helper's default was edited under %autoreload serves the old fingerprint"),
    Mutant("Y15", "mandala_ast/runtime/env_deps.py", "        if _listed_by_a_copy(sys._getframe(1)):", "        if True:",
           ("tests/test_env_deps.py",), "a variable read right after a loop over the environment is taken for a copy's read"),
    Mutant("Y16", "mandala_ast/runtime/env_deps.py", "            reads[key] = (_PRESENT_THEN_WRITTEN, known[1])", "            pass",
           ("tests/test_env_deps.py",), "a variable the body defaults itself makes its call compute again in every process"),
    Mutant("Y17", "mandala_ast/runtime/batch/worker.py", "    if expected is not None and own is not None and own != expected:",
           "    if False:", ("tests/test_batch_workers.py", "tests/test_ipython.py"),
           "a worker process running other code than the coordinator's has its results stored"),
    Mutant("Y18", "mandala_ast/runtime/fixtures.py", '        if arg == "request" or arg in op.ignore:  # request: only its param is hashed',
           '        if arg == "request":  # request: only its param is hashed', ("tests/test_fixtures.py",),
           "the unhashable-fixture hint names an argument already ignored"),
    Mutant("Y19", "mandala_ast/runtime/dependencies.py",
           '        function = value if wrapped is None else wrapped',
           "        function = value", ("tests/test_fingerprints.py", "tests/test_pytest.py"),
           "Python 3.10: a decorated helper's edit (lru_cache, wraps, a pytest fixture) serves the old result"),
    # -- batch blocks under failure -------------------------------------------------------------
    Mutant("K01", "mandala_ast/runtime/batch/scheduler.py", "            if self.late:\n                self._keep_late()\n",
           "", ("tests/test_batch_workers.py",),
           "Ctrl-C drops a call that was running on threads though its result came back before the block exited"),
    Mutant("K02", "mandala_ast/runtime/batch/executors.py",
           "            address = op if named is None else (*named, code_signature(op), this_process())",
           "            address = op if named is None else named", ("tests/test_batch_dask.py",),
           "a Dask worker that imported an op's edited file has its result stored under this process's code"),
    Mutant("K03", "mandala_ast/runtime/batch/worker.py",
           "        return EDITED_CODE if fingerprints.EDITED in op.fingerprint.source else None",
           "        return None", ("tests/test_batch_dask.py",),
           "a worker that imported the op's own file, edited since this process imported it, is not checked"),
    Mutant("K04", "mandala_ast/runtime/batch/worker.py",
           "    if len(address) > 2 and (len(address) == 3 or address[3] != this_process()):",
           "    if len(address) > 2:", ("tests/test_batch_dask.py",),
           "a Dask cluster of threads refuses an op whose constant changed in this process (stale code check)"),
    Mutant("K05", "mandala_ast/runtime/batch/pipeline_adapter.py",
           "                checked.append(encode(call, encoded))  # a value several calls are given: once",
           "                checked.append(encode(call))", ("tests/test_batch.py",),
           "a wave of calls sharing a large argument holds one encoding of it per call (out of memory)"),
    Mutant("K06", "mandala_ast/runtime/batch/worker.py", "        stand_in = _unsendable(exc, address)",
           "        stand_in = None", ("tests/test_batch_workers.py",),
           "an exception a worker process cannot send back is pickle's bare error, or a worker that died"),
    Mutant("K07", "mandala_ast/runtime/batch/scheduler.py",
           "                if self.flight is not None and self._stored_meanwhile(node, finished):\n                    continue\n",
           "", ("tests/test_single_flight.py",),
           "single flight: a batch computes again a call another process stored after the wave's lookup"),
    Mutant("K08", "mandala_ast/runtime/pipeline.py", "                return self.index.find_in_file(call)",
           "                return self.index.find(call)", ("tests/test_single_flight.py",),
           "single flight: a run block that got a lock another process let go of trusts a miss it remembers"),
    Mutant("K09", "mandala_ast/runtime/batch/block.py",
           "            try:\n                scheduler.close()  # may wait for running calls: a second Ctrl-C lands here\n            finally:\n",
           "            scheduler.close()\n            if True:\n", ("tests/test_batch_workers.py",),
           "a second Ctrl-C while a thread pool shuts down leaves the batch block open and its calls uncommitted"),
    Mutant("K10", "mandala_ast/runtime/batch/scheduler.py",
           "            except BaseException:  # Ctrl-C in a body run here: its lock must not outlive it\n                self._unlock(node)\n                raise\n",
           "", ("tests/test_single_flight.py",),
           "single flight: Ctrl-C in a batch body run in process keeps its lock; running it again waits 10 minutes"),
    Mutant("K11", "mandala_ast/runtime/batch/worker.py",
           "        if stand_in is None:\n            raise\n    # Raised here",
           "        if stand_in is None:\n            raise\n        raise stand_in from None\n    # Raised here",
           ("tests/test_batch_dask.py", "tests/test_batch_workers.py"),
           "with dask.distributed imported, a worker's stand-in for an unsendable exception takes it along and kills the worker"),
    Mutant("K50", "mandala_ast/runtime/batch/scheduler.py",
           "        wait = _SIGNAL_CHECK if pause is None else min(pause, _SIGNAL_CHECK)\n", "        wait = pause\n",
           ("tests/test_batch_workers.py",), "a Ctrl-C the kernel hands to another thread is not seen while a threads batch waits on a long call"),
    Mutant("K51", "mandala_ast/runtime/batch/worker.py", "    if not ran.complete:\n        return None\n    before = tuple(",
           "    if True:\n        return None\n    before = tuple(", ("tests/test_batch_workers.py", "tests/test_batch_dask.py"),
           "a body run in a worker process depends on its op's static dependencies only: a model's edited methods are served stale"),
    Mutant("K53", "mandala_ast/runtime/dependencies.py", "    for cls in classes:\n", "    for cls in ():\n",
           ("tests/test_batch_async.py",), "an async op given a model depends on its op's code alone: the model's edited methods are served stale"),
    Mutant("LD1", "mandala_ast/runtime/pipeline.py", "        check_block_allowed()\n", "",
           ("tests/test_block_refusal.py", "tests/test_cli_storage_commands.py"),
           "`mandala-ast why --import script.py` runs the script's top-level blocks: every call stored again under the import name"),
    Mutant("LD2", "mandala_ast/cli/storage_commands.py", "        except BlockRefusedError as exc:\n", "        except ZeroDivisionError as exc:\n",
           ("tests/test_cli_storage_commands.py",),
           "`mandala-ast why --import script.py` of the usual script (blocks at its top level) fails instead of reading its ops up to the first block"),
    Mutant("LD3", "mandala_ast/runtime/query/table.py", "        filled = self._filled(columns, names, ids) if self._has_holes() else {}\n",
           "        filled = {}\n", ("tests/test_query.py",),
           "a query beside a call uncompiled code stored with an equal value shows a row with a hole (None) another row fills"),
    Mutant("LD4", "mandala_ast/runtime/query/result.py", "if any(r.holes for r in kept) else {}", "if False else {}",
           ("tests/test_query.py",), "the row-wise evaluation shows a row with a hole (None) another row fills"),
    Mutant("LD5", "mandala_ast/runtime/query/table.py", "            if any(h is None and t for h, t in zip(hids, cast(list, truth))):\n",
           "            if any(h is None for h, t in zip(hids, cast(list, truth))):\n", ("tests/test_query_table.py",),
           "rows whose guard fails count as holes: every unshown column is computed for nothing",
           equivalent=True, reason="only costs time: a row whose guard fails differs from every row whose guard holds in the branch "
           "taken, so no row is filled that was not; an unshown column that raises sends the query to the row-wise path, which agrees"),
    Mutant("LD6", _H, "        return _part_to_leave_out(value)\n", "        return \"\"\n", ("tests/test_hashing.py",),
           "an object holding a lock deep inside says only \"cannot pickle '_thread.lock' object\", not where it holds it"),
    Mutant("LD7", _EX, "    nearest = _nearest(engine, version_id, cids, bound)\n", "    nearest = \"\"\n",
           ("tests/test_explaining.py",), "why says only \"never computed\" beside a stored call that differs in a config's timestamp"),
    Mutant("LD8", "mandala_ast/runtime/differences.py", "        if _same(old, new):\n            continue\n", "",
           ("tests/test_differences.py",), "why names every attribute of a config, not the one that differs"),
    Mutant("K12", "mandala_ast/runtime/batch/scheduler.py", "        if unloaded is not None:\n", "        if False:\n",
           ("tests/test_batch_workers.py",),
           "a batch output whose pickle the coordinator cannot load is reported as a dead worker"),
    Mutant("E06", "mandala_ast/runtime/file_deps.py",
           "    return (info.st_mtime_ns, info.st_size, info.st_ino, info.st_ctime_ns)",
           "    return (info.st_mtime_ns, info.st_size, info.st_ino, 0)", ("tests/test_file_deps.py",),
           "a data file copied in place under its old mtime (shutil.copy2) serves the old result"),
    Mutant("Z01", "mandala_ast/runtime/dependencies.py",
           "        _add_inherited(found, code, codes.get(code) or {}, receiver)", "        pass",
           ("tests/test_versions.py",),
           "an override added to the subclass an inherited method ran for serves the old result"),
    Mutant("Z02", "mandala_ast/runtime/dependencies.py",
           "    if _accessor_functions(value) is not None:\n        return True\n", "",
           ("tests/test_versions.py",), "an edited property getter serves the old result"),
    Mutant("Z03", "mandala_ast/runtime/dependencies.py",
           '    if "<" in own or isinstance(_code_object_of(value), types.FunctionType) and _last(referenced_as) != _last(own):',
           '    if "<" in own:', ("tests/test_versions.py",),
           "a module-level alias of a helper (act = relu) pointed at another helper serves the old result"),
    Mutant("Z04", "mandala_ast/runtime/dependencies.py",
           "    alias = is_user_module(module_name) and _is_alias(referenced_as, value)\n",
           "    alias = False\n", ("tests/test_versions.py",),
           "a module-level name for a class (MODEL = Small) pointed at another class serves the old result"),
    Mutant("Z05", "mandala_ast/runtime/dependencies.py",
           '    if isinstance(registry, Mapping) and callable(_attribute(value, "dispatch")):', "    if False:",
           ("tests/test_versions.py",), "an edited singledispatch implementation (registered as _) serves the old result"),
    Mutant("Z06", "mandala_ast/runtime/dependencies.py",
           "    yield from _class_data(value, rest) or _named_value(module_name, attr, value)\n",
           "    yield from _named_value(module_name, attr, value)\n", ("tests/test_versions.py",),
           "an enum member's value read through another module (helpers.Mode.FAST.value) edited serves the old result"),
    Mutant("Z07", "mandala_ast/runtime/dependencies.py", '    "types": ("SimpleNamespace",), "argparse": ("Namespace",),\n',
           "", ("tests/test_versions.py",), "an edited SimpleNamespace or argparse.Namespace setting serves the old result"),
    Mutant("Z08", "mandala_ast/runtime/dependencies.py", "            found.update(_generated_constructor(name, value))",
           "            pass", ("tests/test_versions.py",),
           "an edited dataclass or NamedTuple field default of a class the op builds serves the old result"),
    Mutant("Z09", "mandala_ast/runtime/dependencies.py", "            state = _with_defaults(state, code, depth)",
           "            pass", ("tests/test_versions.py",),
           "an edited dataclass field default (in the generated __init__'s defaults) serves the old result"),
    Mutant("Z10", _H, "    return isinstance(value, np.ndarray) and not value.dtype.hasobject and type(value) is not np.matrix",
           "    return isinstance(value, np.ndarray) and not value.dtype.hasobject", ("tests/test_regressions.py",),
           "np.matrix served the stored result of the ndarray of the same numbers (elementwise, not a matrix product)"),
    Mutant("Z11", _H, "            return _enc_ndarray_subclass if type(value) is np.matrix else _enc_ndarray",
           "            return _enc_ndarray", ("tests/test_regressions.py",),
           "np.matrix inside a list or an object keyed as the ndarray of the same numbers"),
    Mutant("Z12", _H, '                payload = b"%x" % item\n', '                payload = b"%d" % item\n',
           ("tests/test_hashing.py",), "the fast path for ints in a list changes their stored ids"),
    Mutant("Z13", "mandala_ast/runtime/progress.py", "    tqdm = _tqdm() if drawn_here() else None",
           "    tqdm = _tqdm()", ("tests/test_progress.py",),
           "deleting and gc write tqdm's redrawn lines into a job's log (stderr not a terminal)"),
    Mutant("Z14", "mandala_ast/runtime/dependencies.py", "    if not is_user_module(cls.__module__) or resolve(name) is not cls:",
           "    if not is_user_module(cls.__module__):", ("tests/test_versions.py",),
           "a namedtuple whose typename is not its name recomputes on every run"),
    Mutant("Z15", "mandala_ast/runtime/dependencies.py", ' if _attribute(function, "__module__") == value.__module__\n', "\n",
           ("tests/test_versions.py",), "a singledispatch implementation another module registers in the op recomputes it forever"),
    Mutant("Z16", "mandala_ast/runtime/dependencies.py", "            (f\"{_attribute(kind, '__module__')}.{_attribute(kind, '__qualname__')}\", function)",
           "            (\"\", function)", ("tests/test_versions.py",),
           "a singledispatch implementation registered for another type serves the old result"),
    Mutant("Z17", "mandala_ast/runtime/dependencies.py", "        return content_id(value)\n    except UnhashableError:\n        return _holder_state(value, depth + 1)",
           "        return _holder_state(value, depth + 1)\n    except UnhashableError:\n        raise", ("tests/test_versions.py",),
           "a dataclass with a (nested) tuple default loses its defaults: an edited default serves the old result"),
    Mutant("Z18", "mandala_ast/runtime/dependencies.py", '    init = _attribute(cls, "__init__")  # a subclass', '    init = vars(cls).get("__init__")  # a subclass',
           ("tests/test_versions.py",), "an edited field default of an undecorated dataclass subclass serves the old result"),
    Mutant("Z19", "mandala_ast/runtime/dependencies.py", "    return callable(value) and isinstance(module, str) and not is_user_module(module)",
           "    return False", ("tests/test_versions.py",), "AGG = statistics.mean made median_high serves the old result"),
    Mutant("Z20", "mandala_ast/runtime/dependencies.py", "        return getattr(value, name, None)\n    except Exception:",
           "        return getattr(value, name, None)\n    except AttributeError:", ("tests/test_versions.py",),
           "a config whose missing attributes raise KeyError (AttrDict) makes every call raise a raw KeyError"),
    Mutant("Z21", "mandala_ast/runtime/tracing.py", '    return None if "<" in kind.__qualname__ else kind', "    return kind",
           ("tests/test_tracing.py",), "a class made in the op body is a receiver: a new dependency cache entry (and class kept) per call"),
    Mutant("Z22", "mandala_ast/runtime/tracing.py", "        elif code in checks:\n            note_receiver(", "        elif False:\n            note_receiver(",
           ("tests/test_versions.py", "tests/test_tracing.py"),
           "the second model of an ensemble (one inherited method) is not seen: its edited class constant serves the old result"),
    Mutant("Z23", "mandala_ast/runtime/dependencies.py", '    if not isinstance(own, str) or "<" in own:\n', "    if not isinstance(own, str):\n",
           ("tests/test_versions.py",), "an edited method of a class a factory made (Model = make_model(3)) serves the old result"),
    Mutant("Z24", "mandala_ast/runtime/versions.py", "            if len(self._defaults) >= _MAX_OPS_REMEMBERED:",
           "            if False:", ("tests/test_versions.py",),
           "every op a factory makes in a loop is kept alive by the storage's defaults cache"),
    Mutant("Y05", "mandala_ast/runtime/recursion.py",
           "    _limit.owe(threading.get_ident(), FRAMES_PER_CALL * depth)", "    pass",
           ("tests/test_recursion.py",), "a recursive op fails ten times shallower than a plain function"),
    Mutant("Y07", "mandala_ast/runtime/recursion.py", "        wanted = self.base + max(self.owed.values(), default=0)",
           "        wanted = current + max(self.owed.values(), default=0)", ("tests/test_recursion.py",),
           "threads deep at once raise the limit on top of each other's (it climbs until the C stack overflows)"),
    Mutant("Y06", "mandala_ast/runtime/recursion.py", "        _probe(room)\n", "        pass\n",
           ("tests/test_recursion.py",), "a recursive op's RecursionError is reported as a value that cannot be stored"),
    # -- canonical pickling, aliases, deep nesting ----------------------------------------------
    Mutant("H14", _H, '    return ("\\0set" if type(value) is set else "\\0frozenset", _content_order(value))',
           '    return ("\\0set" if type(value) is set else "\\0frozenset", list(value))', _HASHING,
           "a set inside an object is pickled in iteration order (depends on PYTHONHASHSEED)"),
    Mutant("H15", _H, "    return value if order == keys else dict(zip(order, map(value.__getitem__, order)))",
           "    return value", _HASHING, "a dict inside an object is pickled in insertion order"),
    Mutant("H16", _H, "            return same_string(obj, obj)\n", "            return None\n", _HASHING,
           "equal strings pickled by identity: an object and its unpickled copy key differently"),
    Mutant("H17", _H, "            return _NAN if obj != obj else None\n", "            return None\n", _HASHING,
           "NaN inside an object keys by its sign and payload bits"),
    Mutant("H18", _H, "    try:\n        return digest(encode_canonical(value))\n    except RecursionError:\n        if not stack_nearly_full() and _holds_itself(value):\n"
           "            return _cyclic_cid(value)\n        raise _too_deep_or_the_stack(value) from None\n",
           "    return digest(encode_canonical(value))\n", _HASHING + _OPS,
           "a value nested deeper than the recursion limit raises a raw RecursionError"),
    Mutant("I13", _LO, "                self.aliases[loaded] = cid\n", "                pass\n", _OPS + ("tests/test_loading.py",),
           "a loaded value that hashes differently once unpickled is a new argument when passed on"),
    Mutant("I14", _ID, "        return {name: aliases.get(cid, cid) for name, cid in cids.items()}",
           "        return cids", _OPS + ("tests/test_loading.py",), "round-trip aliases are found but never applied to arguments"),
    # -- value files: digests, damage -----------------------------------------------------------
    Mutant("B01", _BLOB, "            if data_digest(data) != digest:\n", "            if False:\n",
           _BLOBS, "a damaged pickled value file loads without notice"),
    Mutant("B02", _BLOB, "        if actual != digest:\n", "        if False:\n", _BLOBS,
           "a damaged memory-mapped array file loads without notice"),
    Mutant("B03", _BLOB, "    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)",
           "    return (stat.st_dev, stat.st_ino, stat.st_size)", _BLOBS,
           "a file rewritten in place at the same size is trusted as found intact before"),
    Mutant("B04", _IN, "    except sqlite3.DatabaseError as exc:\n        if not is_damage(exc):\n            raise\n        raise damaged_error(path, exc, doing) from exc",
           "    except sqlite3.DatabaseError as exc:\n        raise", _BLOBS,
           "a damaged database page raises a raw sqlite3 error"),
    Mutant("B05", _IN, "            blobs.check(cid, digest, again=True)\n        except BlobFault as fault:\n            faults[cid] = fault",
           "            blobs.check(cid, digest)\n        except BlobFault as fault:\n            faults[cid] = fault", _BLOBS,
           "verify() trusts files it found intact earlier in the process",
           equivalent=True,
           reason="a file is trusted only while its device, inode, size, mtime and ctime are unchanged, and "
                  "any write changes ctime: a damage is still caught"),
    Mutant("B06", _LO, "            if file_digest is not None:  # the bytes are those stored: not a corruption\n"
           "                if codec != \"pickle\":\n                    raise\n                raise self._unloadable(cid, exc) from exc\n",
           "", _BLOBS, "a value that fails to unpickle (its class changed) is reported as a corrupt file"),
    # -- paths, full disks, read-only storages --------------------------------------------------
    Mutant("P01", _SO, "        parent.mkdir(parents=True, exist_ok=True)", "        parent.mkdir(exist_ok=True)",
           _STORE, "Storage('results/2026/run.db') fails when two directories are missing"),
    Mutant("P02", _SO, "    if not stat.S_ISREG(path.stat().st_mode):", "    if False:", _STORE,
           "a device or a pipe is opened as a storage file"),
    Mutant("P03", _PI, "            except StorageFullError:\n                self._drop_unwritten_calls()\n                raise",
           "            except StorageFullError:\n                raise", _LIMITS,
           "after a full disk, the calls that were not written are still served (and never stored)"),
    Mutant("P04", _SO, "        full = exc.errno in _FULL_ERRNOS\n", "        full = False\n", _LIMITS,
           "a full disk while writing a value file raises a raw OSError"),
    Mutant("P05", _PI, "        if self.store.read_only:\n            raise ReadOnlyStorageError(",
           "        if False:\n            raise ReadOnlyStorageError(", _LIMITS,
           "a new call on a read-only storage is computed and silently not stored"),
    Mutant("P06", _SO, "            if self.read_only:\n                for rows in self.rows.values():\n                    rows.clear()\n                return\n",
           "", _LIMITS, "loading from a read-only storage fails at block exit (it writes the ops' rows)"),
    Mutant("P07", _SO, "    if path.exists() and not os.access(path, os.W_OK):\n        return False\n", "", _LIMITS,
           "a read-only storage file in a writable directory is opened for writing"),
    # -- threads sharing a Storage --------------------------------------------------------------
    Mutant("T01", _SO, "_OPENING = threading.RLock()", "_OPENING = threading.Lock()", _THREADS,
           "opening a Storage hangs when the garbage collector frees another one meanwhile"),
    Mutant("T02", _SO, "        with self.lock:\n            if not any(self.rows.values()):",
           "        if True:\n            if not any(self.rows.values()):", _THREADS,
           "a flush does not take the store's lock: another thread's rows are cleared unwritten",
           equivalent=True,
           reason="every caller (Storage.commit, versions, accept_change) already holds that same "
                  "re-entrant lock: the flush's own acquisition guards only future callers"),
    Mutant("T03", _PI, "        if found is None and self._computing:\n", "        if False:\n", _THREADS,
           "a call in progress in another thread is computed again"),
    Mutant("T04", _BL, "    if lent is not None and lent[0] == _generation:", "    if lent is not None:", _THREADS,
           "a worker thread keeps its block in a run block that has closed since"),
    Mutant("T05", _SO, "_check_existing_file(self.path, header=not _OPEN[real])",
           "_check_existing_file(self.path, header=True)", _THREADS + ("tests/test_store.py",),
           "the header is read while this process has the file open: SQLite's POSIX locks are dropped"),
    Mutant("T06", _TA, "            with store.snapshot():\n                return _read_calls_table(store, op, load, current)\n        except",
           "            if True:\n                return _read_calls_table(store, op, load, current)\n        except",
           ("tests/test_deletion.py", "tests/test_storage.py", "tests/test_recording.py", "tests/test_identity.py", "tests/test_stress.py"),
           "df reads rows, inputs and outputs in separate snapshots: a deletion in between breaks it"),
    # -- queries over values taken apart --------------------------------------------------------
    Mutant("Q11", _QF, "        return any(isinstance(b, Node) for b in (key.start, key.stop, key.step))",
           "        return False", _QUERY, "a slice bounded by a loop variable fails in a query block"),
    Mutant("Q12", _CO, "        entry = outputs.refs[key[1]]\n", "        entry = outputs.refs[0]\n",
           _COMPILER + _QUERY, "b[1] of a several-output op is matched by content, not as output 1"),
    Mutant("Q50", _QF, "    if not isinstance(value, OutputVar):\n", "    if True:\n", ("tests/test_query.py",),
           "unpacking a one-output op's tuple in a query names no op and does not say nout"),
    Mutant("Q51", "mandala_ast/runtime/query/result.py", "            wanted = tuple(wanted[0])  # q.df([\"a\", \"b\"]), as pandas selects columns\n",
           "            pass\n", ("tests/test_query.py",), "q.df([\"a\", \"b\"]) raises a raw TypeError (unhashable list)"),
    Mutant("Q52", "mandala_ast/runtime/query/result.py", "            raise UnknownColumnError(message + self._inline_hint(unknown[0]))\n",
           "            raise UnknownColumnError(message)\n", ("tests/test_query.py",),
           "q.df(\"alpha\") after train(data, alpha=Q()) does not say how to make alpha a column"),
    # -- the compiler ---------------------------------------------------------------------------
    Mutant("C13", _CO, "    if block is None:  # maybe a worker thread of another thread's block\n",
           "    if False:\n", _COMPILER + _THREADS, "compiled op calls in a worker thread record no history"),
    Mutant("C14", "mandala_ast/transforms/_lines.py", "            parts[2 * index] = before\n", "            pass\n",
           ("tests/transforms/test_lines.py", "tests/transforms/test_api.py") + _COMPILER, "lines libcst prints differently (except (A) :) are not restored"),
    Mutant("C15", "mandala_ast/transforms/_lines.py", "        if after != before and _code(after) == _code(before):",
           "        if after != before:", ("tests/transforms/test_lines.py", "tests/transforms/test_api.py") + _COMPILER,
           "lines the rewrite changed are put back as they were"),
    # -- environment variables an op body reads are dependencies (env_deps.py) -------------------
    Mutant("E01", _ENV, "    if value is os.environ or value is os.getenv:\n        return True\n", "",
           _ENV_TESTS, "an untraced op reading os.environ under another name (SETTINGS = os.environ) is not watched"),
    Mutant("E02", _ENV, "    pending = reads.get(None)\n    if pending is None:\n        return False\n",
           "    pending = None\n    if pending is None:\n        return False\n", _ENV_TESTS,
           "dict(os.environ) makes every variable a dependency: the call is never a hit in another shell"),
    Mutant("E03", _ENV, "            reads[key] = (_WRITTEN, None)\n", "            pass\n", _ENV_TESTS,
           "a variable the body sets, then reads, is a dependency: every new process recomputes"),
    Mutant("E04", _ENV, "    return _PASSING if module in _ACCESSORS else _is_user_module(module)",
           "    return _PASSING if module in _ACCESSORS else True", _ENV_TESTS,
           "variables the standard library reads for the body (HOME, PATH, COLUMNS) are dependencies"),
    Mutant("E05", "mandala_ast/runtime/versions.py",
           "    if name.startswith(env_deps.PREFIX):  # what a body would read of the variable now\n"
           "        return env_deps, env_deps.snapshot(name)\n", "", _ENV_TESTS,
           "a variable changed between two blocks of one storage is not noticed"),
    # -- front doors: notebooks (%autoreload), the pytest plugin, batch on processes -------------
    Mutant("F01", _VE, "    return len(now) > 2 and (now[2] is not seen[2] or now[3] is not seen[3] or now[4] is not seen[4])\n",
           "    return False\n", ("tests/test_ipython.py",),
           "a helper module edited under %autoreload serves the results of the old helper"),
    Mutant("F02", _VE, "        fingerprints.forget()\n    _FUNCTIONS_SEEN[now[0]] = now[2:]\n",
           "        pass\n    _FUNCTIONS_SEEN[now[0]] = now[2:]\n", ("tests/test_ipython.py",),
           "a helper's default edited under %autoreload keeps the old fingerprint"),
    Mutant("F03", "mandala_ast/runtime/fixtures.py", "        request = bound.get(\"request\")\n",
           "        request = bound.pop(\"request\", None)\n", ("tests/test_pytest.py", "tests/test_fixtures.py"),
           "a cached fixture's body runs untraced: a fixture it fetches with request.getfixturevalue is no dependency"),
    Mutant("F04", "mandala_ast/runtime/fixtures.py", "self.storage.delete_calls([ref.src[0]], dependents=True)",
           "self.storage.delete_calls([ref.src[0]], dependents=False)", ("tests/test_pytest.py", "tests/test_fixtures.py"),
           "--mandala-refresh=NAME leaves the cached fixtures that received NAME computed from its old value"),
    Mutant("F05", _BL, "    os.register_at_fork(after_in_child=_forget_after_fork)\n", "    pass\n",
           ("tests/test_batch_workers.py",), "an op calling an op on a batch's process pool hangs"),
    Mutant("F06", "mandala_ast/runtime/batch/worker.py",
           "    if len(address) > 2 and (len(address) == 3 or address[3] != this_process()):\n        _check_code(op, address[2])\n",
           "", ("tests/test_ipython.py", "tests/test_batch_workers.py"),
           "a user's process pool forked before a notebook edit stores results of the old code"),
    Mutant("F07", "mandala_ast/runtime/dependencies.py",
           '    module_name = module_globals.get("__name__") or _module_of_namespace(module_globals)\n',
           '    module_name = module_globals.get("__name__")\n', ("tests/test_ipython.py",),
           "a script run again with %run after an edit serves the results of the old helper"),
    # -- durability: crashes, stale logs, full disks ------------------------------------------------
    Mutant("G01", _SO, "    if _held_by_another_process(shm) and _empty(path):",
           "    if False:", ("tests/test_store.py",),
           "a new storage where a deleted one is still open elsewhere reads that process's log (disk I/O error)"),
    Mutant("G02", _PI, "            raise UnstoredOutputs(call, outputs, type(failed)(f\"op {op.name}: {failed}\")) from None",
           "            raise", ("tests/test_storage_limits.py",),
           "a miss whose value file fills the disk loses the computed result (StorageFullError from the call)"),
    Mutant("G03", "mandala_ast/runtime/batch/pipeline_adapter.py",
           "        _unstored_for_lack_of_space(entry[0], entry[1], result) if isinstance(result, _UNWRITABLE) else result",
           "        result", ("tests/test_storage_limits.py",),
           "a batch call whose value file fills the disk fails, its computed result lost"),
    Mutant("G04", "mandala_ast/runtime/batch/block.py",
           "                    if ran:\n                        make_plain(frame, _value_or_itself)\n",
           "                    pass\n", ("tests/test_storage_limits.py",),
           "a batch whose commit fills the disk leaves deferred proxies in its names"),
    Mutant("G05", _ST, "    if type(outputs) is not tuple:\n        return False\n", "", ("tests/test_storage_limits.py",),
           "a result a full disk kept from being stored is served from memory, so this process never stores it"),
    Mutant("G06", "mandala_ast/runtime/blobs.py", "_NOT_THERE = (FileNotFoundError, NotADirectoryError, IsADirectoryError)",
           "_NOT_THERE = (FileNotFoundError,)", ("tests/test_blobs.py",),
           "a file in place of the value files' directory is a raw NotADirectoryError from verify and loads"),
    Mutant("G08", "mandala_ast/runtime/query/result.py", "_READS = 5\n", "_READS = 1\n", ("tests/test_query.py",),
           "a query while another process deletes calls calls a deleted value's file corrupt"),
    Mutant("G09", _SO, '        if is_file_trouble(exc):\n            raise unusable_files_error(exc, self.path, "writing") from exc\n',
           "", ("tests/test_store.py",),
           "a -shm SQLite cannot write is a raw 'attempt to write a readonly database' at the first commit"),
    Mutant("G10", _SO, '    if is_file_trouble(exc):\n        raise unusable_files_error(exc, path, "opening it") from exc\n',
           "", ("tests/test_store.py",),
           "a directory in place of the -wal is a raw sqlite3 'unable to open database file' / 'disk I/O error'"),
    Mutant("G11", "mandala_ast/runtime/batch/pipeline_adapter.py",
           "        except _UNWRITABLE as failed:  # the caller has its outputs: say they are not stored\n",
           "        except ZeroDivisionError as failed:\n", ("tests/test_storage_limits.py",),
           "an awaited op whose value file fills the disk loses its result (StorageFullError from the await)"),
    Mutant("G12", "mandala_ast/runtime/integrity.py", "    faults = _still_faulty(store, blobs, faults) if faults else faults\n",
           "", ("tests/test_integrity.py",),
           "verify() while another process deletes reports the deleted values' files as missing"),
    Mutant("G13", "mandala_ast/runtime/batch/pipeline_adapter.py", "            if block is None or inspect.iscoroutinefunction(op.fn):\n",
           "            if True:\n", ("tests/test_blobs.py",),
           "a batch block meeting a damaged value file raises CorruptValueError where a run block repairs it"),
    Mutant("G14", _SO, "    if exc.errno in _CANNOT_WRITE:\n", "    if False:\n", ("tests/test_storage_limits.py",),
           "value files on a read-only mount: a raw OSError from the miss, its computed value lost"),
    Mutant("G15", "mandala_ast/runtime/loading.py", "            cannot = value_file_error(exc, Path(str(error.path)))\n",
           "            cannot = None\n", ("tests/test_storage_limits.py",),
           "repairing a damaged value file on a read-only mount raises a raw OSError"),
    Mutant("J01", "mandala_ast/runtime/query/pattern.py",
           "        for value in (*args, *(kwargs or {}).values()):\n            check_same_branch(value, pattern.guard, f\"expression `{text}`\")\n",
           "", ("tests/test_query.py",),
           "`t = z + 1` after `if y > 2: z = f(y)` shows t computed from the call the `if` left out of the row"),
    Mutant("J02", "mandala_ast/runtime/query/pattern.py",
           "        check_same_branch(value, self.guard, f\"`{name} = {operand_text(value)}`\")\n",
           "", ("tests/test_query.py",),
           "`t = z` after `if y > 2: z = f(y)` shows z's value in the rows whose `if` failed"),
    Mutant("J03", "mandala_ast/runtime/query/result.py",
           "        if self._raw is not None and deletion_epoch(self.storage.engine.store.conn) != self._epoch:\n",
           "        if False:\n", ("tests/test_query_delete.py",),
           "a query result read before storage.delete_calls(q.df()[...]) still shows the deleted rows"),
    Mutant("J04", _TA, "        if kept is not None and kept[1][1] and not valid[state]:\n",
           "        if False:\n", ("tests/test_versions.py",),
           "after a helper's edit is reverted, storage.df shows the edited helper's results, not what the run block loads"),
    Mutant("J05", _ST, "            return version_id == today and versions.is_valid(deps_id, op)\n",
           "            return version_id == today\n", ("tests/test_versions.py",),
           "storage.df calls a row computed before a helper's edit current"),
    Mutant("J06", "mandala_ast/cli/storage_commands.py", "        if column in where and where[column] != value:\n",
           "        if False:\n", ("tests/test_cli_storage_commands.py",),
           "`mandala-ast delete --where alpha=100 --where alpha=10` deletes the alpha=10 calls"),
    Mutant("J07", "mandala_ast/runtime/query/result.py",
           """            raise ArgumentError(f"q.df: values= must be 'objs' or 'ids', not {values!r}")""",
           """            raise ValueError(f"values must be 'objs' or 'ids', not {values!r}")""", ("tests/test_query.py",),
           "q.df(values='id') raises a bare ValueError naming no method"),
    Mutant("J08", _TA, "        frame[name] = value_series([row[name] for row in rows])\n", "        pass\n",
           ("tests/test_storage.py",), "storage.df shows a None output as NaN and the int argument 3 as 3.0"),
    Mutant("J09", "mandala_ast/runtime/query/pattern.py", "            check_stored(value, f\"expression `{text}`\")\n", "",
           ("tests/test_transient.py",),
           "len(xs) over a transient output in a query raises 'NotStored has no len()', naming no variable"),
    Mutant("J10", "mandala_ast/cli/storage_commands.py", "        op.bind(tuple(positional), keywords)\n", "        pass\n",
           ("tests/test_cli_storage_commands.py",),
           "`mandala-ast why` with an argument the op cannot take ends in a Python traceback"),
    Mutant("J11", _ST, "        today = versions.peek_version_id(op)", "        today = versions.version_id(op)",
           ("tests/test_storage.py",), "storage.df of an op never called stores a version (and its defaults) for it"),
    Mutant("J12", "mandala_ast/runtime/query/block.py",
           '    if _holds_node(value) and name.startswith("*") and not name.startswith("**"):  # *args (flatten_bound)\n',
           '    if False:\n', ("tests/test_query.py",),
           "a query variable passed through *args is refused with advice to annotate it as MList"),
    Mutant("J13", _TA, "       COALESCE(exact_c.hid, gone.hid), i.src_index,", "       exact_c.hid, i.src_index,",
           ("tests/test_deletion.py",),
           "provenance shows an input whose producer was deleted with dependents=False as a raw input"),
    Mutant("J14", "mandala_ast/runtime/query/result.py",
           "            raise UnknownColumnError(message + self._inline_hint(unknown[0]))",
           "            raise KeyError(message)", ("tests/test_query.py",),
           "q.df('nope') raises a bare KeyError, its message in quotes"),
    Mutant("J15", _TA, '    frame[valid_column] = frame[valid_column].astype(bool)', "    pass",
           ("tests/test_storage.py",), "df[df.current] of an op with no calls selects no columns"),
    Mutant("J16", _VE, "        known = self._defaults.get(op)\n        if known is None:\n",
           "        known = next((k for o, k in self._defaults.items() if o.version_id == op.version_id), None)\n        if known is None:\n",
           ("tests/test_versions.py",),
           "a parameter added with a default in the same process (a reload, a notebook cell) recomputes the stored calls"),
    Mutant("J17", "mandala_ast/runtime/catalog.py", "                call.values.setdefault(name, cid)\n", "                pass\n",
           ("tests/test_catalog.py",),
           "mandala-ast calls shows no value for a parameter added with a default in the calls stored before it"),
    Mutant("J18", _VE, "            if added:  # a parameter added with a default keeps the version: not its signature\n",
           "            if False:\n", ("tests/test_catalog.py",),
           "mandala-ast calls --where on a parameter added with a default: 'op has no column'"),
    Mutant("J19", "mandala_ast/cli/storage_commands.py",
           "    return lambda call: call.version if len(ids[call.version]) == 1 else",
           "    return lambda call: call.version if True else", ("tests/test_cli_storage_commands.py",),
           "mandala-ast calls shows the calls of an op's old and new code both as version 0, nothing telling them apart"),
    Mutant("N01", "mandala_ast/pytest.py", "        elif functions:\n            _rename_module(module, name, functions)\n",
           "        elif functions:\n            pass\n", ("tests/test_pytest.py",),
           "two conftest.py files' same-named cached fixtures share one op: a directory's tests get the other's value"),
    Mutant("N02", "mandala_ast/pytest.py", "        if self.root is not None and isinstance(plugin, types.ModuleType):\n",
           "        if False:\n", ("tests/test_pytest.py",),
           "a conftest.py in a subdirectory shadows the root one: an edited root conftest helper serves a stale fixture"),
    Mutant("N03", "mandala_ast/transforms/_query_form.py",
           "        if _assigned_names(target) is None and _unpacks_into_names(target):\n", "        if False:\n",
           ("tests/test_query.py",),
           "`a, *rest = f(x)` in a query block is refused as 'an assignment into an object (`x[i] = ...`)'"),
    Mutant("N04", "mandala_ast/ipython.py", "    if _is_python(text):\n", "    if True:\n", ("tests/test_ipython.py",),
           "a notebook cell with a syntax error also gets a fallback warning quoting libcst about a line the user never wrote"),
    Mutant("N05", "mandala_ast/compiler.py", '    return ".".join(parts) if importable else parts[-1]\n',
           "    return parts[-1]\n", ("tests/test_compiler.py",),
           "compile_module('pkg/sub/flow.py') names it 'flow': its relative imports fail and its ops are other ops"),
    Mutant("N06", "mandala_ast/transforms/_run_form.py",
           "        return updated_node.with_changes(item=emit.forget(keys, updated_node.item))\n", "        return updated_node\n",
           ("tests/transforms/test_run_form.py", "tests/test_compiled_blocks.py"),
           "`with cm as y` keeps y's op history: a plain 2 bound there is recorded as the op's output 2, exactly"),
    Mutant("N07", "mandala_ast/cli/__init__.py",
           "    if error is not None:  # the user's error, said as Python says it (not as libcst does)\n",
           "    if False:\n", ("tests/test_cli.py",),
           "mandala-ast show of a file with a syntax error prints libcst's parse error instead of Python's"),
    Mutant("N08", "mandala_ast/transforms/_run_form.py",
           '            return f"{slot}@{self.scope.qualname}" if original in self._rewritten_returns else None\n',
           "            return None\n", ("tests/transforms/test_run_form.py", "tests/test_compiled_blocks.py"),
           "a workflow's `return inc(x)` hands the caller no history: its next op call records inc's output as a raw input"),
    Mutant("N09", "mandala_ast/runtime/query/block.py", '    elif text and "mandala_ast" not in text:\n', "    elif False:\n",
           ("tests/test_query.py",),
           "an uncompiled query block in a module importing Q through a module of its own says to use `mandala-ast run`, which was used"),
    Mutant("N10", "mandala_ast/runtime/query/block.py", "    elif text and _run_by_ipython(frame):\n", "    elif False:\n",
           ("tests/test_ipython.py",),
           "a query block in a script run with IPython's %run says nothing of %run (it is not compiled there)"),
    Mutant("N11", "mandala_ast/runtime/query/result.py", "        if not taking:\n            return \"\"\n",
           "        if True:\n            return \"\"\n", ("tests/test_query.py",),
           "Q() passed only to a plain function that calls ops: the error says it reaches no op call, nothing about the function"),
    Mutant("R01", "mandala_ast/runtime/blobs.py", "    if target.is_dir():\n", "    if False:\n", ("tests/test_blobs.py",),
           "a directory in place of a value file: repairing or writing it is a raw IsADirectoryError"),
    Mutant("R02", "mandala_ast/runtime/batch/scheduler.py", "            if node not in started:  # (a running call's lock",
           "            if True:  # (a running call's lock", ("tests/test_batch_workers.py",),
           "Ctrl-C lets go of the single-flight lock of a call still running on a thread: another process computes it again"),
    Mutant("R03", "mandala_ast/runtime/batch/scheduler.py",
           "            results = engine.record_many(self.storage, items, commit=self.flight is not None) if items else []\n",
           "            results = engine.record_many(self.storage, items) if items else []\n"
           "            if self.flight is not None and items:\n                engine.commit(self.storage)\n",
           ("tests/test_storage_limits.py",),
           "a single-flight batch whose commit finds the disk full fails its calls: their values lost, names left deferred"),
    Mutant("R04", "mandala_ast/runtime/batch/scheduler.py", "                chunker.queued.extendleft(reversed(taken))\n",
           "                pass\n", ("tests/test_batch_workers.py",),
           "Ctrl-C as a chunk is handed to the pool leaves its calls' single-flight locks held for good"),
    Mutant("X01", "mandala_ast/runtime/file_deps.py",
           "        os.listdir, os.scandir = _listing(listdir), _listing(scandir)\n", "", ("tests/test_file_deps.py",),
           "a file added to a directory an op lists (os.listdir, Path.glob, os.walk): its stored call is a stale hit"),
    Mutant("X02", _ST, "        check_on_change(on_change)  # a typo makes no file\n", "", ("tests/test_versions.py",),
           "Storage(path, on_change='recompute') leaves an empty storage file behind before refusing the typo"),
    Mutant("X03", "mandala_ast/runtime/renames.py", "    if not _takes(op, new):\n", "    if False:\n",
           ("tests/test_renames.py",),
           "rename_arg to a name the op does not take (a typo) says nothing: every stored call then misses"),
    Mutant("X04", "mandala_ast/runtime/explaining.py",
           "    if deletion_epoch(store.conn) is not None:  # calls were deleted from this file: maybe this one\n",
           "    if False:\n", ("tests/test_deletion.py",),
           "storage.why says a call computed and deleted since 'was never computed'"),
    Mutant("X05", "mandala_ast/runtime/catalog.py", "        if renamed:\n            raise UnknownOpError(",
           "        if False:\n            raise UnknownOpError(", ("tests/test_catalog.py",),
           "`mandala-ast calls DB old.name` after rename_op says no such op, not what it was renamed to"),
    Mutant("X06", _VE, "    if isinstance(target, os.PathLike):\n", "    if False:\n", ("tests/test_file_deps.py",),
           "storage.accept_change(Path('data.csv')) is a raw AttributeError: a data file's change cannot be accepted"),
    Mutant("X07", "mandala_ast/runtime/file_deps.py", "if opened is not None and _listed_by_user_code(sys._getframe(1)):",
           "if opened is not None:", ("tests/test_file_deps.py",),
           "an op asking importlib.metadata a version recomputes whenever a file is added next to the script"),
    Mutant("X08", "mandala_ast/runtime/file_deps.py", "    if relative:\n        found = _relative_names(found, relative)\n",
           "", ("tests/test_file_deps.py",),
           "the same script run in another project directory, one storage: read('data.txt') is a hit with the first directory's data"),
    Mutant("X09", "mandala_ast/runtime/file_deps.py",
           "found.append(os.path.abspath(path) if os.path.isabs(path) else os.path.normpath(path))",
           "found.append(os.path.abspath(path))", ("tests/test_file_deps.py",),
           "pd.read_parquet('data.parquet') from another working directory is a hit with the first directory's file"),
    Mutant("U01", "mandala_ast/runtime/types/arrow_types.py", "    if pa.types.is_dictionary(kind):\n        return _dictionary_key(chunks)\n",
           "", ("tests/test_types.py",),
           "an Arrow dictionary array is keyed by its decoded values: another dictionary order or unused entries collide"),
    Mutant("U02", "mandala_ast/runtime/types/pandas_storage.py", "        return _categories_exact(dtype.categories.dtype)",
           "        return _dtype_exact(dtype.categories.dtype)", ("tests/test_types.py",),
           "a categorical with time-zone-aware, nullable or string[pyarrow] categories goes to Arrow and comes back with other categories"),
    Mutant("U03", _H, "        if isinstance(value, np.ndarray) and not value.dtype.hasobject:\n",
           "        if isinstance(value, np.ndarray) and value.dtype != object:\n", ("tests/test_types.py",),
           "a numpy StringDType array is hashed from its buffer: numpy refuses it, a raw ValueError from the op call"),
    Mutant("U04", "mandala_ast/export.py", "                row[column] = _sqlite_value(value)", "                row[column] = value",
           ("tests/test_export.py",), "the export writes text with lone surrogates as it is: a raw UnicodeEncodeError"),
    Mutant("U05", _H, "        if not stack_nearly_full() and _holds_itself(value):", "        if False:",
           _HASHING, "a dict or list that leads back to itself is a ValueEncodingError saying it is nested too deeply"),
    Mutant("U06", _H, "    if array.dtype.fields is not None:\n        array = _with_canonical_bools(_without_padding(array))\n", "",
           _HASHING + ("tests/test_types.py",), "equal aligned records whose padding bytes differ (np.empty) are two arguments: never a hit"),
    Mutant("U07", "mandala_ast/runtime/types/torch_types.py", "    except (TypeError, RuntimeError, ValueError):",
           "    except (TypeError, RuntimeError):", ("tests/test_types.py",),
           "a torch tensor sliced with a step cannot be hashed: a ValueEncodingError (killed where torch is installed)"),
    Mutant("U08", "mandala_ast/runtime/types/pil_types.py", "    if frames > 1:\n        return (\"frames\", image.tell(), _frames(image, frames))\n", "",
           ("tests/test_types.py",), "a multi-frame image (GIF, multi-page TIFF) is keyed by its current frame: stacks sharing their first page collide"),
    Mutant("U09", "mandala_ast/cli/storage_commands.py", '        return text if any(c in text for c in ".ein") else text + ".0"',
           "        return text", ("tests/test_cli_storage_commands.py",),
           "the calls table prints the float 1.0 as 1 and -0.0 as -0: two different arguments look alike"),
    Mutant("U10", "mandala_ast/runtime/types/pandas_types.py", "        return key if orders is None else (*key, (\"levels\", orders))",
           "        return key", ("tests/test_types.py",),
           "a MultiIndex whose level values are in another order (unstack's columns follow it) is served the sorted one's results"),
    Mutant("U11", "mandala_ast/runtime/types/pandas_storage.py", " and level_orders(index) is None\n", "\n",
           ("tests/test_types.py",), "a MultiIndex with unsorted level values (stack()'s) goes to Arrow and comes back sorted: unstack() changes"),
    Mutant("U12", _H, "    return isinstance(value, np.ndarray) and not value.dtype.hasobject and type(value) is not np.matrix",
           "    return isinstance(value, np.ndarray) and value.dtype != object and type(value) is not np.matrix", _HASHING,
           "a record array with an object field is hashed from its buffer (pointers): a raw TypeError from the op call"),
    # -- lifecycle: options changed after calls were stored, lock and value files, Ctrl-C -------
    Mutant("L01", _VE, "            if op is not None and self._ignored_by(op, name, members):\n                continue\n", "",
           _ENV_TESTS, "ignore_env added later: the calls stored before it recompute when the variable changes"),
    Mutant("L02", _VE, "            if isinstance(inner, Op) and not ignores(inner):\n                return False\n", "",
           _ENV_TESTS, "a caller's ignore_env hides a variable its inner op reads: a stale hit"),
    Mutant("L03", _VE, "                if not self._ignored_by(inner, name, members):\n    ", "                if True:\n    ",
           _ENV_TESTS, "a caller takes on a variable its inner op ignores: recomputed at every new value"),
    Mutant("L04", _PI, "        if all(transient.is_transient(op, i) for i in missing):",
           "        if True:", ("tests/test_transient.py",),
           "transient=True taken off an op: its stored calls compute again at every run, their values never stored"),
    Mutant("L05", _VR, "        conn.execute(f\"DELETE FROM val_rows WHERE codec = '{_PLACEHOLDER}' AND cid IN ({marks})\", chunk)\n",
           "", ("tests/test_transient.py",),
           "a value stored in place of a transient placeholder is dropped (the placeholder row stays)"),
    Mutant("L07", "mandala_ast/runtime/deletion_watch.py",
           "        raise type(error)(f\"{_ops_of(conn, rows, cid)}: {error}\") from exc\n", "        raise\n",
           ("tests/test_storage_limits.py",),
           "a value file a deletion removed, put back on a read-only mount: a raw OSError naming no op"),
    Mutant("L08", "mandala_ast/runtime/batch/scheduler.py", "            future = future or _started(self.backend.cut_short())\n", "",
           ("tests/test_batch_workers.py",),
           "Ctrl-C inside a thread pool's submit: the call runs all the same and its result is dropped"),
    Mutant("L09", "mandala_ast/runtime/batch/executors.py", "    if not ticket.set_running_or_notify_cancel():\n        return\n", "",
           ("tests/test_batch_workers.py",),
           "a call cancelled as Ctrl-C cut its hand-over short runs all the same, its result dropped"),
    Mutant("L10", _H, "            array = (array != 0).view(np.uint8)\n", "            pass\n", _HASHING,
           "a bool array viewing bytes other than 0 and 1 never hits the equal array of 0s and 1s"),
    Mutant("L12", _VE, "        return lambda op: not op.track_files\n", "        return None\n",
           ("tests/test_file_deps.py",), "track_files=False given later: the calls stored before it recompute when the file changes"),
    Mutant("L13", _PI, "            found = self.stored_before_ignore(call)\n", "            pass\n",
           ("tests/test_ops.py",), "ignore= given later: every call stored with a non-default value of the argument is computed again"),
    Mutant("L11", _VE, "        if stored == op.nout:\n            return canonical\n", "        if True:\n            return canonical\n",
           ("tests/test_versions.py",), "nout= given to an op later: its stored calls come back in the old shape ((3, 6),) or cut (3)"),
    # -- faults and concurrency as researchers hit them (session 7) ----------------------------------
    Mutant("O01", _PI, "        if found is None and (not new_calls_allowed or self.store.read_only):\n",
           "        if False:\n", ("tests/test_storage.py",),
           "a call another Storage or process just committed is a NewCallError where new calls are not allowed"),
    Mutant("O02", "mandala_ast/runtime/batch/executors.py",
           "PoolBackend(cf.ProcessPoolExecutor(max_workers=workers, initializer=exit_with_parent), True, workers)",
           "PoolBackend(cf.ProcessPoolExecutor(max_workers=workers), True, workers)", ("tests/test_batch_workers.py",),
           "a batch killed with kill -9 leaves its pool's worker processes waiting forever"),
    Mutant("O03", _SO, "        if not _log_deleted_under_another_process(path):\n            return\n",
           "        return\n", ("tests/test_store.py",),
           "a storage opened beside a process whose -wal/-shm was deleted overwrites that process's calls (or loses its own)"),
    Mutant("O04", _SO, "            _save_a_deleted_log(self.conn)\n", "            pass\n", ("tests/test_store.py",),
           "a process whose -wal was deleted while open loses every call since the last checkpoint when killed"),
    Mutant("O05", "mandala_ast/export.py", "    remove_killed_exports_files(out)\n", "", ("tests/test_export.py",),
           "an export killed midway leaves its hidden temporary files beside the output for good"),
    Mutant("O06", _SO, "    if length + len(_LONGEST_SUFFIX) > _NAME_MAX:", "    if length > _NAME_MAX + 1000:",
           ("tests/test_store.py",), "a storage file name too long for its -journal is SQLite's 'unable to open database file' (or a raw OSError)"),
    Mutant("O07", "mandala_ast/runtime/batch/pipeline_adapter.py",
           "        if block is not None and None in hits and not _may_compute(storage, block):\n",
           "        if False:\n", ("tests/test_storage.py",),
           "a call another Storage or process just committed is a NewCallError in a batch where new calls are not allowed"),
    Mutant("O08", "mandala_ast/runtime/batch/single_flight.py", "            if not _written(fd, path, self.me):\n                return True\n",
           "            with os.fdopen(fd, \"w\") as file:\n                file.write(self.me)\n", ("tests/test_storage_limits.py",),
           "a miss under single flight on a full disk is a raw OSError before its body runs, its empty lock left behind"),
    Mutant("O09", "mandala_ast/runtime/integrity.py", "        damaged = _damaged_values(store.conn)\n",
           "        damaged = []\n", ("tests/test_integrity.py",),
           "verify says OK of a value whose bytes went bad inside the database (and loads serve it)"),
    Mutant("O10", "mandala_ast/runtime/blobs.py", '    beside_file = Path(f"{os.path.realpath(path)}.blobs")\n',
           '    beside_file = Path(f"{path}.blobs")\n', ("tests/test_blobs.py",),
           "a storage opened through a symlink keeps its value files beside the link: its own name finds them missing"),
    Mutant("O11", "mandala_ast/runtime/file_deps.py", ' f"{real}.blobs{os.sep}",', "", ("tests/test_blobs.py",),
           "an op loading a stored value file of a storage opened through a symlink depends on that file as data"),
    Mutant("O12", _ST, '    return SingleFlight(Path(f"{os.path.realpath(path)}.locks"))', '    return SingleFlight(Path(f"{path}.locks"))',
           ("tests/test_single_flight.py",), "two processes opening one file by two names (a symlink) both compute a call under single flight"),
    Mutant("O13", _SO, "                _refuse_a_deleted_log(Path(real), open_here=_OPEN[real] > 0)\n",
           "                _refuse_a_deleted_log(self.path, open_here=_OPEN[real] > 0)\n", ("tests/test_store.py",),
           "a storage opened through a symlink while another process has the file open is refused as one whose log was deleted"),
    # -- exact provenance of compiled code: no "no producer, exactly" for what it cannot follow ---
    Mutant("M01", _CO, "            if key is not None and where not in hints and not _holds_raw(block, key, args[where]):\n",
           "            if type(key) is tuple and where not in hints and not _holds_raw(block, key, args[where]):\n",
           _COMPILER, "an op output passed through a helper (`y = helper(inc(1))`, an await, a loop over a list) "
           "is stored as a raw input, exactly: provenance shows no producer, a query sees no op behind it"),
    Mutant("M02", _CO, "    elif pos_keys is ... and any(where not in hints for where in range(len(args))):\n",
           "    elif False:\n", _COMPILER, "`inc(*xs)` of op outputs is stored with raw inputs, exactly"),
    Mutant("M03", _CO, '    unknown = ... if "**" in written else None', "    unknown = None", _COMPILER,
           "`inc(**kw)` of op outputs is stored with raw inputs, exactly"),
    Mutant("M04", _CO, "    return type(entry) is _Raw and entry.raw is value\n", "    return type(entry) is _Raw\n",
           _COMPILER, "`y = 0` then anything else in y: an op given y claims it raw, exactly, whatever y holds now"),
    Mutant("M05", "mandala_ast/transforms/_raw.py",
           "        return _frozen(scope, value) if deep else is_raw(scope, value)\n",
           "        return is_raw(scope, value, deep)\n", _COMPILER + ("tests/transforms/test_run_form.py",),
           "`XS = [1, 2]; XS.append(inc(3)); for x in XS: f(x)`: x is claimed raw, exactly (a list can be filled)"),
    Mutant("M06", "mandala_ast/transforms/_scopes.py",
           "        if name not in scan.counts or scan.star_import or name in self.rebound_elsewhere():\n",
           "        if name not in scan.counts or scan.star_import:\n", _COMPILER + ("tests/transforms/test_run_form.py",),
           "a module name a function rebinds to an op's output (`global G`) is claimed raw, exactly"),
    Mutant("M07", "mandala_ast/transforms/_raw.py",
           "        return not isinstance(node.operator, cst.Plus) or is_raw(scope, node.expression)\n",
           "        return True\n", _COMPILER + ("tests/transforms/test_run_form.py",),
           "`f(+y)` (y itself, for an int) is claimed raw, exactly"),
    Mutant("M08", "mandala_ast/transforms/_raw.py",
           "    return not formatted.parts or any(\n", "    return True or any(\n",
           _COMPILER + ("tests/transforms/test_run_form.py",),
           '`f(f"{s}")` (s itself, for a str) is claimed raw, exactly'),
    Mutant("M09", "mandala_ast/transforms/_run_form.py",
           '        hook = "raw" if recorded and self._vouched(keys) and self._binds_raw(node) else "forget"\n',
           '        hook = "forget"\n',
           _COMPILER + ("tests/transforms/test_run_form.py",),
           "`y = inc(1)` then `y = 0`: an op given y is recorded inexact, its 0 matched to any equal output"),
    Mutant("M10", _TA, "            found, compiled = exact, True\n", "            found = exact\n", _COMPILER,
           "storage.provenance calls an input whose producer compiled code recorded inexact, when another "
           "argument of the call was not"),
    Mutant("M11", _TA, "WHERE o.cid = ? AND c.created_at <= ? AND c.hid != ? ORDER BY c.version_id = ? DESC, c.created_at LIMIT 1",
           "WHERE o.cid = ? AND c.created_at <= ? AND c.hid != ? AND ? IS NOT NULL ORDER BY c.created_at LIMIT 1",
           ("tests/test_structures.py",) + _COMPILER,
           "`inc(xs[2])` is attributed to an earlier call whose output is equal, not to the element's __item__ call"),
    Mutant("M12", _DE, "    \" CROSS JOIN main.calls c ON c.id = i.call_id AND c.created_at >= p.created_at\"\n",
           "    \" CROSS JOIN main.calls c ON c.id = i.call_id AND c.exact = 1 AND c.created_at >= p.created_at\"\n",
           _DELETION, "deleting a collection leaves `for e in xs: inc(e)` behind when an earlier op returned an equal value"),
    Mutant("M13", _CO, "        elif _raw_argument(block, _spec_key(pos_keys, kw_keys, where), value):\n",
           "        elif False:\n", _COMPILER,
           "`wf(7)`: the workflow's op calls given its parameter are recorded inexact, the 7 matched to any equal output"),
    Mutant("M14", "mandala_ast/transforms/_run_form.py",
           "            and is_raw(self.scope, original_node.iter, deep=True)\n",
           "            and False\n", _COMPILER + ("tests/transforms/test_run_form.py",),
           "`for y in [8, 9]: use(y)` where y holds op outputs elsewhere: use is recorded inexact, 8 matched to any equal output"),
    Mutant("M15", "mandala_ast/transforms/_run_form.py",
           "        return not any(name in self.scope.resolve(name).rebound_elsewhere() for name in names)\n",
           "        return True\n", ("tests/transforms/test_run_form.py",) + _COMPILER,
           "`G = 0` in a block vouches for G while a function outside the blocks (`global G`) rebinds it to an op's 0"),
    Mutant("M16", _ID, "    exact = input_refs is not None and type(input_refs) is not InexactRefs and not _changed(input_refs, cids, sources)\n",
           "    exact = input_refs is not None and type(input_refs) is not InexactRefs\n", _COMPILER,
           "`xs = three(3); xs.append(9); total_of(xs)`: the changed list is stored as a raw input, exactly"),
    Mutant("M17", _ID, "    if unknown:  # not the history of raw values: inc(helper(inc(100))) is not inc(101) typed in\n"
           "        histories[UNKNOWN] = UNKNOWN.encode()\n", "", _COMPILER,
           "`use(101)` then `use(helper(make(1)))`: the second is taken for the first, a raw call: no make behind it"),
    Mutant("M18", _CO, "            f.ignore and _only_ignored(block, f, (pos_keys, kw_keys, hints, args, kwargs))\n",
           "            False\n", _COMPILER,
           "`quiet(1, verbose=cfg.verbose)` with verbose ignored: the call is recorded inexact for an argument that is no input"),
    Mutant("M19", "mandala_ast/transforms/_raw.py", "    return is_raw(scope, left) and is_raw(scope, right)\n",
           "    return True\n", _COMPILER + ("tests/transforms/test_run_form.py",),
           "`use(0 + y)` (y itself) is stored as a value an operator made anew: raw, exactly"),
    # -- reading results back: queries, delete blocks, pictures, export (area A) -----------------
    Mutant("A01", "mandala_ast/transforms/_query_form.py", "        carried = _carried(node)\n", "        carried = None\n",
           _QUERY + ("tests/test_query_delete.py",),
           "`x = inc(x)` in a query's for loop matches the first step only (a delete block deletes from it)"),
    Mutant("A02", "mandala_ast/export.py", "    _refuse_a_storage(out)\n", "", ("tests/test_export.py",),
           "`mandala-ast export results.db results.db --force` replaces the storage by its flat copy: every result lost"),
    Mutant("A03", "mandala_ast/runtime/pictures.py", "        path.parent.mkdir(parents=True, exist_ok=True)\n", "        pass\n",
           ("tests/test_pictures.py", "tests/test_query_drawing.py"),
           "storage.draw(path='pictures/add.svg') with pictures/ missing: a raw FileNotFoundError"),
    Mutant("A04", "mandala_ast/export.py", "    _check_port(port)\n", "", ("tests/test_export.py",),
           "`mandala-ast browse --port N` with N taken says it serves there, then exits with Datasette's status 3"),
    Mutant("A05", "mandala_ast/runtime/catalog.py", "    if not text and old.number != new.number:\n", "    if False:\n",
           ("tests/test_cli_storage_commands.py", "tests/test_export.py"),
           "`versions --diff` after a bump of version= alone prints no diff, as if nothing changed"),
    Mutant("A06", "mandala_ast/cli/storage_commands.py",
           "        if len(text) >= 8 and all(ch in \"0123456789abcdefABCDEF\" for ch in text):\n",
           "        if False:\n", ("tests/test_cli_storage_commands.py",),
           "`mandala-ast graph DB 00000000` (no such value) says there is no op '00000000'"),
    Mutant("A07", "mandala_ast/cli/storage_commands.py", "        raise _import_failed(name, exc) from None\n    return module\n",
           "        raise\n    return module\n", ("tests/test_cli_storage_commands.py",),
           "`why --import script.py` whose top level raises ends in a traceback through mandala_ast's frames"),
    Mutant("A08", "mandala_ast/runtime/catalog.py", "    if path.is_file() and path.stat().st_size == 0:\n", "    if False:\n",
           ("tests/test_cli_storage_commands.py",),
           "`mandala-ast ops` on an empty file (touch results.db) writes a storage schema into it"),
    Mutant("A09", "mandala_ast/export.py", " for v in catalog.versions(op) if v.stored_id == v.version_id]\n",
           " for v in catalog.versions(op)]\n", ("tests/test_export.py",),
           "a renamed op's only export table is called `increment_v1` (its alias version counted)"),
    Mutant("A10", "mandala_ast/runtime/query/block.py", "    if _holds_node(value) and name in op.structure_inputs:\n",
           "    if False:\n", _QUERY,
           "`msum([a, b])` in a query, xs annotated MList, is told to annotate xs as MList"),
    Mutant("A11", "mandala_ast/runtime/query/table.py",
           '    with numpy.errstate(divide="raise", over="raise", invalid="raise"):\n        yield\n', "    yield\n", _QUERY,
           "a numpy warning (divide by zero) for a row a failing `if` leaves out is emitted by a query"),
    Mutant("A12", "mandala_ast/runtime/deletion.py", "        _check_labels(frame, frame.attrs.get(ROWS_ATTR))\n", "",
           _DELETION + ("tests/test_query.py",),
           "delete_calls(q.df().sort_values(...).reset_index(drop=True).head(1)) deletes the calls of the result's first row, not the row shown"),
    Mutant("A13", "mandala_ast/runtime/column_names.py", "        while name in used:\n", "        while False:\n",
           ("tests/test_storage.py", "tests/test_cli_storage_commands.py", "tests/test_export.py"),
           "an op taking `version`, `output` or `call`: storage.df raises, `calls` and the export lose those arguments"),
    Mutant("A14", "mandala_ast/runtime/query/result.py", "        if derived and not taking:\n", "        if False:\n", _QUERY,
           "`x = Q(); y = inc(x * 2)` is told to make the function `x * 2` a @workflow"),
    Mutant("A15", "mandala_ast/transforms/_detect.py", "            return  # a query or delete block's body is the query form's alone (it refuses blocks)\n",
           "            pass\n", _QUERY + ("tests/test_query_delete.py",),
           "a run block inside a query block leaves the query uncompiled: 'a query block must be compiled' in a compiled script"),
    Mutant("A16", "mandala_ast/export.py", "/{urllib.parse.quote(name)} (Ctrl-C stops)", "/{name} (Ctrl-C stops)",
           ("tests/test_export.py",), "`browse 'my results.db'` prints an address with a space, which a terminal's link cuts"),
    Mutant("A17", "mandala_ast/cli/storage_commands.py", "                c.startswith(\"**\") for c in op.columns) else \"\"\n",
           "                c.startswith(\"**\") for c in op.columns) and False else \"\"\n", ("tests/test_cli_storage_commands.py",),
           "`calls --where foo=1` of an op taking **opts lists **opts, never saying the column is **foo"),
    Mutant("A18", "mandala_ast/runtime/catalog.py",
           "        renamed = self._renamed_to(name, set(names)) or self._short_name_renamed_to(name, set(names))\n",
           "        renamed = self._renamed_to(name, set(names))\n", ("tests/test_catalog.py",),
           "`mandala-ast calls db inc` after rename_op('__main__.inc', ...) lists the ops, never saying inc was renamed"),
    Mutant("A19", "mandala_ast/cli/storage_commands.py", "        if text[:1] in _OPENING:", "        if False:",
           ("tests/test_cli_storage_commands.py",),
           "`--where alpha=[0.1,` (a literal cut short) is the text '[0.1,': an empty table, exit status 0"),
    # -- review of session-7 merges
    Mutant("RV01", "mandala_ast/runtime/dependencies.py",
           "    if known is not None and known[0] is function.__code__:\n        return known[1]\n", "",
           ("tests/test_hashing.py",),
           "a warm hit given a function argument hashes the constants its code reads (a table, an array) again"),
    Mutant("RV02", _VE, "        deps.forget_argument_states()\n", "", ("tests/test_hashing.py",),
           "a function argument keeps the key it had in an earlier block after a constant it reads changed"),
    Mutant("RV03", _PI, "        return self.loader.find_value(cid)[0] == transient.CODEC\n",
           "        return self.loader.load(cid) is transient.NOT_STORED\n", ("tests/test_transient.py",),
           "a hit of a transient op decodes each stored output once more to see that it is stored"),
    Mutant("RV04", _QF, "        return (f\"cannot unpack the outputs of {name} into {targets} in a query: {name} has \"\n",
           "        return (f\"cannot unpack {value!r} into {targets} in a query: {name} has \"\n", ("tests/test_query.py",),
           "`a, b, c = two_outputs(x)` in a query names no op and no count of outputs"),
    Mutant("RV05", "mandala_ast/runtime/dependencies.py",
           "    if isinstance(value, types.MethodType):  # `model.predict` given: its object's class\n"
           "        return [value.__self__]\n", "", ("tests/test_batch_async.py",),
           "an async op given a bound method (`model.predict`) serves its stored result after the method was edited"),
    # -- holes reported earlier and left open (session 8)
    Mutant("LO1", _VE, "                    found[name] = deps.Dependency(name, untracked.KIND, state, source)\n", "",
           ("tests/test_untracked.py",),
           "turning track_files/track_env back on serves the calls stored without it after their file or variable changed"),
    Mutant("LO9", _VE, "            if op is not None and kind == untracked.KIND and untracked.holds_for(name, op, deps.qualified_name(op.fn)):\n                continue\n",
           "", ("tests/test_untracked.py",),
           "an untracked op made from a tracked op's function (op(track_files=False)(load.fn)) recomputes at every run"),
    Mutant("LO2", "mandala_ast/runtime/query/result.py",
           '        if invalid and hasattr(call.op, "ignores_env") else invalid\n', "        if False else invalid\n",
           ("tests/test_query.py",),
           "a query misses calls stored before ignore_env= once the ignored variable changed (run blocks serve them)"),
    Mutant("LO3", "mandala_ast/runtime/explaining.py", "    for other in [unshaped] * (unshaped != version_id) + versions.other_version_ids(op):\n",
           "    for other in versions.other_version_ids(op):\n", ("tests/test_explaining.py",),
           "why after an op's nout= changed says its call was never computed"),
    Mutant("LO5", "mandala_ast/runtime/dependencies.py",
           "    return list(itertools.islice(vars(value).values(), _HELD_ITEMS))\n", "    return []\n",
           ("tests/test_batch_async.py",),
           "an async op given a pipeline holding a model serves its stored result after the model's method was edited"),
    Mutant("LO6", "mandala_ast/runtime/dependencies.py",
           "        return [value.func, *value.args, *value.keywords.values()]\n", "        return []\n",
           ("tests/test_batch_async.py",),
           "an async op given functools.partial(model.predict) serves its stored result after the method was edited"),
    Mutant("LO7", "mandala_ast/export.py",
           "        return _NAN if isinstance(value, float) and value != value else value\n", "        return value\n",
           ("tests/test_export.py",), "the flat export shows a NaN result as a missing value (NULL)"),
    Mutant("LO8", "mandala_ast/runtime/batch/orphans.py",
           "        if os.getppid() != parent:  # adopted by another process: the parent process ended\n            os._exit(1)\n",
           "        os._exit(1)\n", ("tests/test_orphans.py",),
           "a pool's worker ends when the thread that started it ends, though its process lives on"),
    # -- review of session-7 merges, second look (session 8: R2x)
    Mutant("R21", "mandala_ast/runtime/batch/pipeline_adapter.py",
           "            hits = [hit or (engine.stored_before_ignore(call) if call.op.ignore else None)\n",
           "            hits = [hit or (None if call.op.ignore else None)\n", ("tests/test_ops.py", "tests/test_batch.py"),
           "a batch block computes again a call stored before ignore= named one of its arguments"),
    Mutant("R22", "mandala_ast/runtime/pipeline.py", "            _warn_not_deterministic(op, [i for i in wanted if i not in kept])\n",
           "            pass\n", ("tests/test_transient.py",),
           "an op no longer transient whose value comes out other than recorded is computed at every run, "
           "and the only warning says it is transient"),
    Mutant("R23", "mandala_ast/runtime/deletion.py", "        unequal = value != value\n",
           "        unequal = isinstance(value, float) and value != value\n", ("tests/test_query_delete.py",),
           "delete_calls(rows of a query result) showing a float32 NaN or a NaT is refused as renumbered"),
    Mutant("R24", "mandala_ast/runtime/blobs.py", "        if self.earlier is not None and not path.exists():\n",
           "        if False:\n", ("tests/test_blobs.py",),
           "value files an earlier version kept beside a symlink are missing through it once the file itself has some"),
    Mutant("R25", "mandala_ast/runtime/hashing.py", "        array = _with_canonical_bools(_without_padding(array))\n",
           "        array = _without_padding(array)\n", _HASHING,
           "equal records whose bool fields hold 0xFF (read from C structs) are two arguments: never a hit"),
    Mutant("R26", _VE, "        if current != self._registered(op):\n", "        if False:\n", ("tests/test_versions.py",),
           "accept_change of an op's new output count points its version at the new count's calls: going back "
           "computes the calls stored with the old count again"),
    Mutant("R27", _VE, "        shaped = self._shaped(op, canonical)\n", "        shaped = canonical\n",
           ("tests/test_versions.py",),
           "accept_change of an edit that also changed nout hands back the stored tuple as the only output: ((3, 6),)"),
    # -- review of the lead's session-8 commits (session 8: RLx)
    Mutant("RL1", "mandala_ast/runtime/hashing.py", "        if id(part) in seen:\n            continue\n", "",
           ("tests/test_hashing.py",),
           "a list holding itself and a lock says its [0][0][0][0][0][0][0][0] holds what pickle refused (a list)"),
    Mutant("RL2", "mandala_ast/runtime/differences.py", "    count = int(np.count_nonzero(unequal))\n",
           "    count = len(np.argwhere(unequal))\n", ("tests/test_differences.py",),
           "why beside a stored 1e8-element array takes an index per differing element: GBs to say where it differs"),
    Mutant("RL3", "mandala_ast/runtime/differences.py",
           '    if type(stored).__module__.partition(".")[0] == "pandas" and hasattr(stored, "to_numpy"):\n',
           "    if False:\n", ("tests/test_differences.py",),
           "why beside a stored DataFrame names its block manager and a weakref's address, not the column that differs"),
    Mutant("RL4", "mandala_ast/runtime/differences.py", '    return element.item() if type(element).__module__ == "numpy" else element\n',
           "    return element.item()\n", ("tests/test_differences.py",),
           "why beside a stored object array whose element differs is a raw AttributeError (dict has no .item)"),
    Mutant("RL5", "mandala_ast/cli/storage_commands.py", "            return _stopped_module(name, exc)\n",
           "            raise _import_failed(name, exc) from None\n", ("tests/test_cli_storage_commands.py",),
           "why --import pkg.mod fails (importing it raised BlockRefusedError) where pkg/__init__ imports mod, whose block is at its top level"),
    # -- the lead's session-9 changes
    Mutant("LE1", "mandala_ast/runtime/types/pil_types.py", "    return _SAMPLE_ELSE if width % _SAMPLE == 0 else _SAMPLE\n",
           "    return _SAMPLE\n", ("tests/test_types.py",),
           "an RGB image whose width is a multiple of the sample step, with a stripe of zero padding down it, keys apart from the same pixels made by fromarray (every read falls in the same columns)"),
    Mutant("LE2", "mandala_ast/runtime/types/pil_types.py", "        if window[::step].min() < _OPAQUE:\n",
           "        if window[:1].min() < _OPAQUE:\n", ("tests/test_types.py",),
           "an RGB image whose zero padding lies away from each block's first pixel (a resized stripe pasted down it) keys apart from the same pixels made by fromarray"),
    Mutant("LE3", "mandala_ast/runtime/types/scipy_types.py", "    return result == [True] and not zeros\n",
           "    return not zeros\n", ("tests/test_types.py",),
           "a large CSR matrix with unsorted indices keys apart from the same matrix sorted"),
    Mutant("LE4", "mandala_ast/runtime/types/scipy_types.py", "    return result == [True] and not zeros\n",
           "    return result == [True]\n", ("tests/test_types.py",),
           "a large CSR matrix holding a stored zero keys apart from the same matrix without it"),
    # -- fixtures, batch and why leftovers (session 9: FXx)
    Mutant("FX1", _VE, '            return f"{_shown(names[-1])}: no earlier state stored; nothing to accept"\n'
           '        return f"{_shown(accepted[0])}: change accepted; calls computed before it stay valid"\n',
           '            return f"{names[-1]}: no earlier state stored; nothing to accept"\n'
           '        return f"{accepted[0]}: change accepted; calls computed before it stay valid"\n',
           ("tests/test_versions.py",),
           "accept_change reports a decorated helper as experiment:logged where every other message says experiment.logged"),
    Mutant("FX2", _EX, "    nearest = _nearest(engine, version_id, cids, bound)\n",
           "    names = versions.identity_names(op)\n"
           "    nearest = _nearest(engine, version_id, renames.renamed(cids, names), {names.get(n, n): v for n, v in bound.items()})\n",
           ("tests/test_renames.py",),
           "why after rename_arg compares a miss's inputs under the old argument name: the nearest stored call is missed"),
    Mutant("FX3", "mandala_ast/pytest.py", '    if "monkeypatch" in inspect.signature(fn).parameters:\n',
           "    if False:\n", ("tests/test_pytest.py",),
           "a cached fixture that patches with monkeypatch: a later run loads its value and the test runs unpatched"),
    Mutant("FX4", "mandala_ast/pytest.py", '        if argname == "monkeypatch":', "        if False:",
           ("tests/test_pytest.py",),
           "a cached fixture that fetches monkeypatch with request.getfixturevalue: a later run's test runs unpatched"),
    Mutant("FX5", "mandala_ast/runtime/batch/executors.py", "        with held_back():\n            future = self._ticket = pool.submit(fn, *args)\n",
           "        future = pool.submit(fn, *args)\n", ("tests/test_batch_workers.py",),
           "Ctrl-C as a process pool takes a call: the worker computes it and its result is dropped, never stored"),
    Mutant("FX6", "mandala_ast/runtime/batch/interrupts.py", "        signal.signal(signal.SIGINT, _put_aside.pop())\n",
           "        _put_aside.pop()\n", ("tests/test_batch_workers.py",),
           "workers forked as the pool took its first call hold a terminal's Ctrl-C back: their bodies run on, the block waits"),
    Mutant("FX7", "mandala_ast/runtime/dependencies.py",
           '    own = _attribute(value, "__dict__")\n    return own.get("fn") if isinstance(own, Mapping) else None\n',
           '    return _attribute(value, "fn")\n', ("tests/test_pytest.py",),
           "a cached fixture whose params carry pytest marks fails every test at setup under --strict-markers ('fn' not found)"),
    Mutant("FX8", "mandala_ast/runtime/batch/graph.py", "            self.batch.handed_over(self.skipped or self)\n", "",
           ("tests/test_batch.py",),
           "a batch whose code caught a call's failure where it used the value, and retried, raises it again at its end"),
    Mutant("FX9", "mandala_ast/pytest.py", "    if keyed_directories:\n", "    if False:\n", ("tests/test_pytest.py",),
           "a cached fixture that receives tmp_path is stored anew for every test of every run, never loaded"),
    Mutant("FX10", _VE, "            relative = [file_deps.PREFIX + os.path.relpath(path) + end]\n",
           "            relative = []\n", ("tests/test_file_deps.py",),
           "accept_change(Path('data.csv')) of a file ops opened by that relative name accepts nothing: the calls compute again"),
    Mutant("FX11", "mandala_ast/runtime/batch/scheduler.py",
           "            future = _started(self.backend.cut_short())\n            if future is not None:\n                self._running(node, future)\n",
           "            pass\n", ("tests/test_batch_workers.py",),
           "Ctrl-C as a fresh pool takes a call again after its worker died: the call runs and its result is dropped"),
    Mutant("FX12", "mandala_ast/runtime/file_deps.py", "        if absolute.startswith(excluded) or _of_a_storage(absolute, own):\n",
           "        if absolute.startswith(excluded) or absolute == own:\n", ("tests/test_file_deps.py",),
           "an op that keeps results in a storage of its own depends on that file: recomputed whenever anything is stored there"),
    # -- flat per-call cost at scale (session 9)
    Mutant("SC1", "mandala_ast/runtime/lookup.py", "        if call.history_id != call.cid:\n", "        if True:\n",
           ("tests/test_store.py",),
           "a miss of plain arguments in a large storage probes the history index twice (the query by history, then by history or content)"),
    Mutant("LE5", "mandala_ast/runtime/batch/graph.py", "            self.batch.handed_over(self.skipped or self)\n",
           "            self.batch.handed_over(self)\n", ("tests/test_batch.py",),
           "a batch whose code caught a failure where it used a call that needed the failed one raises it again at its end"),
    # -- collections, deletion and months-old storages (session 8)
    # -- the lead's session-10 changes
    Mutant("LT3", "mandala_ast/runtime/batch/executors.py", "            else:\n                ticket.set_running_or_notify_cancel()\n",
           "            ticket.set_running_or_notify_cancel()\n", ("tests/test_batch_workers.py",),
           "Ctrl-C as the Dask client sends a call whose task already finished: 'Future in unexpected state' replaces the KeyboardInterrupt and the block never ends"),
    Mutant("LT2", "mandala_ast/runtime/built.py", "from .hashing import content_id, digest\n",
           "from .hashing import content_id, digest\nfrom .identity import output_history_id  # noqa: F401\n",
           ("tests/test_public_api.py",),
           "importing a compiled module imports sqlite3 and the call-identity machinery: milliseconds more on every warm import of compiled code"),
    Mutant("LT1", "mandala_ast/runtime/types/pil_types.py", "_SAMPLE_ELSE = 1031\n", "_SAMPLE_ELSE = 1021\n",
           ("tests/test_types.py",),
           "an RGB image whose width is a multiple of the sample step, with a stripe of zero padding down it, keys apart from the same pixels made by fromarray"),
    Mutant("CD1", _LO, "return blobs.open_checked(cid, file_digest, functools.partial(codecs.decode_file, codec))",
           "return codecs.decode_file(codec, blobs.check(cid, file_digest))", ("tests/test_loading.py",),
           "an array whose file another process deletes between its check and numpy opening it is a raw FileNotFoundError"),
    Mutant("CD2", _DE, '''f" AND (c.exact = 0 OR c.created_at < {ELEMENTS_MARKED_INEXACT_SINCE!r})" + _NOT''', '"" + _NOT',
           ("tests/test_deletion.py",),
           "deleting an MList's producer deletes a later call whose literal merely equals an element, and all computed from it"),
    Mutant("CD3", _TA, "        elif compiled and created_at >= ELEMENTS_MARKED_INEXACT_SINCE:\n",
           "        elif compiled and created_at < 0:\n", ("tests/test_deletion.py", "tests/test_structures.py"),
           "provenance names an element's __item__ call as the source of a literal equal to it"),
    Mutant("CD4", _LO, "            return self._corrupt_argument(cid, path, problem)\n", "            pass\n",
           ("tests/test_blobs.py",),
           "the lost file of a value only given as an argument names no call and advises a run block, which never rewrites it"),
    Mutant("CD5", _IN, "{self.missing_files.get(cid, '')}", "", ("tests/test_blobs.py",),
           "verify's line for a missing value file names neither the call that made or took it nor the file"),
    Mutant("CD6", "mandala_ast/runtime/structures.py", "    if _leads_back(value, members):", "    if False:",
           ("tests/test_structures.py",),
           "an MList/MDict output or argument that holds itself names itself as an element: every load is a RecursionError"),
    Mutant("CD7", _LO, "        if cid in self._opening:", "        if False:", ("tests/test_structures.py",),
           "a self-referential structure row an earlier version stored is a raw RecursionError in storage.df"),
    Mutant("CD8", _SQL, "{element if from_element else f'{consumer}.exact = 0'}", "{'TRUE' if from_element else f'{consumer}.exact = 0'}",
           ("tests/test_query_elements.py",),
           "a query (and a delete block) matches a call given a literal equal to an element as that element's consumer"),
    Mutant("CD9", _DE, "_NOT_AN_ELEMENTS_CALL = f\" AND c.version_id != X'{ITEM_VERSION_ID.hex()}'\"\n",
           '_NOT_AN_ELEMENTS_CALL = ""\n', ("tests/test_deletion.py",),
           "deleting a list takes the element calls of a later list whose keys equal its elements: that list's elements lose their record for good"),
    # -- code edited between runs (session 8)
    Mutant("VE1", "mandala_ast/runtime/dependencies.py",
           "        binding = imports.get(chain[0]) if imports else None\n", "        binding = None\n",
           ("tests/test_versions.py",),
           "an op doing `from helpers import K` in its body serves its stored result after K was edited"),
    Mutant("VE2", "mandala_ast/runtime/dependencies.py",
           "sys.modules.get(module_name) or _imported(module_name)", "sys.modules.get(module_name)",
           ("tests/test_versions.py",),
           "an op importing its helper in its body computes its first call again in every new process"),
    Mutant("VE3", "mandala_ast/runtime/dependencies.py",
           "        name = _name_of_code(code, module_globals) or _enclosing_name(code, module_globals)\n",
           "        name = _name_of_code(code, module_globals)\n", ("tests/test_versions.py",),
           "editing the wrapper of a functools.wraps decorator a helper wears serves the stale result"),
    Mutant("VE4", "mandala_ast/runtime/dependencies.py",
           "_unresolved_names(fn) or _names_user_module(fn) or _finds_modules(fn):", "_unresolved_names(fn) or _finds_modules(fn):",
           ("tests/test_versions.py",),
           "an op calling `getattr(helpers, name)(x)` serves its stored result after that helper was edited"),
    Mutant("VE5", "mandala_ast/runtime/dependencies.py",
           'text = f"{NO_SOURCE}{code.__qualname__}, generated: defaults {code.__defaults__!r}, {code.__kwdefaults__!r}>"',
           'text = f"{code.__qualname__}, generated: defaults {code.__defaults__!r}, {code.__kwdefaults__!r}"',
           ("tests/test_versions.py",),
           "swapping two dataclass fields' names (defaults in the same order) serves the stale result"),
    Mutant("VE6", "mandala_ast/runtime/dependencies.py",
           "            return _object_with_code_state(value)\n", "            return None\n", ("tests/test_versions.py",),
           "editing the lambda a module-level `BOX = Box(lambda x: ...)` holds serves the stale result"),
    Mutant("VE7", "mandala_ast/runtime/dependencies.py",
           "    yield from _class_data_of_object(value, rest)\n", "", ("tests/test_versions.py",),
           "an op reading `MODEL.K` (a class constant, through a module-level instance) serves the stale result after K was edited"),
    Mutant("VE8", "mandala_ast/runtime/dependencies.py",
           "    if isinstance(node, ast.Attribute) and node.attr == \"__class__\":\n        node = node.value\n", "",
           ("tests/test_versions.py",),
           "a method reading `self.__class__.K` serves the stale result after K was edited"),
    Mutant("VE9", "mandala_ast/runtime/dependencies.py",
           "        return (isinstance(module, str) and module != where", "        return (False and module != where",
           ("tests/test_versions.py",),
           "`from slow import scale` made `from fast import scale` serves the result slow.scale computed"),
    # -- session 8: pytest plugin and notebooks
    Mutant("PN1", _RE, "            self.store.drop_rows_of(row_id)\n", "", ("tests/test_recording.py",),
           "a Ctrl-C while a call's rows are buffered leaves some behind: every later commit raises KeyError"),
    Mutant("PN2", _SO, "        try:\n            retry_locked(lambda: self.conn.execute(\"BEGIN IMMEDIATE\"))  # (a -shm SQLite cannot write, say)\n",
           "        retry_locked(lambda: self.conn.execute(\"BEGIN IMMEDIATE\"))\n        try:\n", ("tests/test_recording.py",),
           "a Ctrl-C right after BEGIN leaves the transaction open: every later commit raises sqlite3's OperationalError"),
    Mutant("PN3", "mandala_ast/pytest.py",
           "        elif isinstance(item, dict):\n            todo += itertools.islice(itertools.chain(item.keys(), item.values()), budget)\n",
           "", ("tests/test_pytest.py",),
           "a cached fixture returning {'dir': <a path in pytest's temporary directory>} is stored, and loaded once pytest removed it"),
    Mutant("PN4", "mandala_ast/runtime/query/block.py", "    if _an_ipython_cell(frame):\n", "    if False:\n",
           ("tests/test_ipython.py",),
           "a query block in a cell run before %load_ext says to use `mandala-ast run`, never %load_ext"),
    Mutant("PN5", _VE, "        return int(usage.sum() if hasattr(usage, \"sum\") else usage) <= _WATCHED_BYTES\n",
           "        return False\n", ("tests/test_ipython.py",),
           "a small frame changed in place in a later notebook cell (df['a'] = ...) serves results computed from the old one"),
    Mutant("PN6", "mandala_ast/pytest.py", "        if name in self.PER_TEST:\n", "        if False:\n",
           ("tests/test_pytest.py",),
           "a cached fixture choosing its value by the test's marker serves the first test's value to every test"),
    Mutant("PN7", "mandala_ast/pytest.py", "        self.unkeyed.append(f\"config.getoption({name!r})\")\n", "",
           ("tests/test_pytest.py",),
           "a cached fixture sized by a command-line option (--size=7) loads the value another run's option made"),
    # -- session 9: deletion, verify and export leftovers
    Mutant("DL1", _DE, "        if not rows:\n            refuse_lone_elements(conn, blobs)\n", "", ("tests/test_deletion.py",),
           "`storage.delete_calls([element call id])` (an id storage.provenance shows) deletes nothing, silently"),
    Mutant("DL2", _IN, "(in_progress if mtime >= cutoff else orphans).append(str(path))",
           "orphans.append(str(path))", ("tests/test_blobs.py",),
           "verify while a block writes its value files: 'orphan file (storage.gc() removes it)', which gc leaves for an hour"),
    Mutant("DL3", _IN, "        return \"\\n  \".join([head, *problems, *self.notes()])",
           "        return \"\\n  \".join([head, *problems])", ("tests/test_blobs.py",),
           "verify says OK without naming the value files another process is writing"),
    Mutant("DL4", _DE, "    f\" AND p.version_id != X'{ITEM_VERSION_ID.hex()}'\"\n    \" CROSS JOIN main.call_outputs o ON o.call_id = f.id GROUP BY o.cid\",",
           "    f\" AND p.version_id = X'{ITEM_VERSION_ID.hex()}'\"\n    \" CROSS JOIN main.call_outputs o ON o.call_id = f.id GROUP BY o.cid\",",
           ("tests/test_deletion.py",),
           "deleting a list that uncompiled code summed leaves the sum's call (its input found by content) behind"),
    Mutant("DL5", _DE, "WHERE o.cid = mandala_made.cid AND c.created_at < mandala_made.first",
           "WHERE o.cid = mandala_made.cid AND c.created_at <= mandala_made.first", ("tests/test_deletion.py",),
           "a deleted call's output is taken for another call's: what uncompiled code computed from it stays"),
    Mutant("DL6", "mandala_ast/runtime/reclaim.py", "        if members:\n", "        if False:\n",
           ("tests/test_deletion.py",),
           "deleting the only call given a list of the user's own leaves that list's elements stored for good"),
    Mutant("DL7", "mandala_ast/export_files.py", "    if len(parts) == 3 and parts[0] == this_host():\n",
           "    if True:\n", ("tests/test_export.py",),
           "an export into a directory another machine shares removes that machine's export in progress (no such pid here)"),
    Mutant("DL8", "mandala_ast/export_files.py", "    return _untouched_for(entry, OTHER_HOSTS_AFTER_SECONDS)\n",
           "    return False\n", ("tests/test_export.py",),
           "a killed export's temporary file from another host (or an earlier version) stays for good"),
    Mutant("DL9", _DE, "        if not rows:\n            refuse_lone_elements", "        if True:\n            refuse_lone_elements",
           ("tests/test_query_delete.py",),
           "a delete block over the elements of a list it keeps (`xs = Q()`) is refused as deleting elements alone"),
    Mutant("DL10", _DE, "WHERE NOT EXISTS (SELECT 1 FROM main.calls p WHERE p.id = i.src_call)\n", "WHERE 0\n",
           ("tests/test_deletion.py",),
           "an element whose list was deleted with dependents=False cannot be deleted: its id deletes nothing"),
    Mutant("DL11", _DE, "        steps.note(f\"finding the calls computed from them: {found:,} so far\")\n", "",
           ("tests/test_progress.py",),
           "deleting a 100,000-element list: the bar shows one step for seconds, nothing of how far it got"),
    # -- session 9: stale or spurious results when code changes
    Mutant("SH1", _DEPS, "        return _decorators_dependency(name, value)\n", "        return None\n", _INPUTS,
           "a helper switched from @functools.lru_cache to a decorator of the user's serves the old result"),
    Mutant("SH2", _DEPS, "    return [name] if isinstance(name, str) and (name.isidentifier() or name == COMPUTED) else []\n",
           "    return []\n", _INPUTS,
           "an op reading globals()['K'] serves its stored result after K was edited"),
    Mutant("SH3", _DEPS, '    if isinstance(func, ast.Name) and func.id == "getattr" and len(args) in (2, 3):\n',
           '    if isinstance(func, ast.Name) and func.id == "getattr" and len(args) == 3:\n', _INPUTS,
           "an op reading getattr(helpers, 'K') serves its stored result after K was edited"),
    Mutant("SH4", _DEPS, '    return [(f"{module_name}:{attr}.{rest[0]}", own[rest[0]])] if is_user_module(module_name) else []\n',
           "    return []\n", _INPUTS,
           "an op reading scale.factor (set on the helper at module level) serves the stale result after it was edited"),
    Mutant("SH5", _DEPS, "        keys.append(part)\n", "", _INPUTS,
           "editing entry 'b' of a registry recomputes an op that only calls REGISTRY['a']"),
    Mutant("SH6", _DEPS, "    if not bracket:\n        return rest, ()\n", "    if True:\n        return rest, ()\n", _INPUTS,
           "an entry of a registry read by a literal key is a dependency that is always gone: every call recomputes"),
    Mutant("SH7", _DEPS, "        for decorated in filter(None, (name, _owner_of(name))):", "        for decorated in (name,):", _INPUTS,
           "a class switched from @dataclass(eq=False) to @dataclass serves results computed with identity equality"),
    Mutant("SH8", "mandala_ast/runtime/renames.py", "        _check_unreachable(old_name, new_name, new)\n", "", _INPUTS,
           "rename_helper of a helper still there as other code is done: its callers are checked against the moved one"),
    Mutant("SH9", "mandala_ast/runtime/renames.py", "    if old_module == new_module:\n        return []\n",
           "    if True:\n        return []\n", _INPUTS,
           "a helper declared moved serves its old results after a constant it reads in its new module was edited"),
    Mutant("SH10", "mandala_ast/runtime/renames.py", "        _copy_rows(conn, old_name, new_name, False)\n", "", _INPUTS,
           "a helper declared moved serves its old results after its code was edited in its new module"),
    Mutant("SH11", _DEPS, '            found.add(part)  # (`.get("X")` gives a key, no attribute)\n', "            pass\n", _INPUTS,
           "a method reading getattr(self, 'K') serves the stale result after the class constant K was edited"),
    Mutant("SH12", "mandala_ast/runtime/renames.py",
           '        if conn.execute(f"SELECT 1 FROM dep_sets WHERE {_UNDER} LIMIT 1", _under(name)).fetchone():\n',
           '        if conn.execute("SELECT 1 FROM dep_sets WHERE name = ? LIMIT 1", (name,)).fetchone():\n', _INPUTS,
           "rename_helper of a class whose methods calls depend on says no stored call depends on it"),
    Mutant("SH13", _DEPS, 'node.func.id == "vars" and len(node.args) == 1:', 'node.func.id == "vars_" and len(node.args) == 1:',
           _INPUTS, "an op reading vars(helpers)['K'] serves its stored result after K was edited"),
    Mutant("SH14", _DEPS, '    return rest in ([COMPUTED], ["__dict__", COMPUTED], ["__dict__", "get", COMPUTED])\n', "    return False\n", _INPUTS,
           "an op reading getattr(helpers, name) (a computed name) serves its stored result after a constant there was edited"),
    Mutant("SH15", _DEPS, "        yield from _module_data(module_name, namespace)\n        return\n", "        return\n", _INPUTS,
           "an op reading globals()[name] (a computed name) serves its stored result after a constant was edited"),
    Mutant("SH16", _DEPS, "            found = (item for item in found if _last(item[0]) not in written)\n", "", _INPUTS,
           "an op reading globals()[name] and appending to a module-level list recomputes in every new process"),
    Mutant("SH17", _DEPS, '        return func.value, f"get{_key_part(args[0])}"\n', "        return func.value, _key_part(args[0])\n",
           _INPUTS, "an op calling helpers.get('a'), a function of the user's, is not traced: editing it serves the stale result"),
    Mutant("SH18", "mandala_ast/runtime/renames.py", '            found.append((f"{old_module}:{rest}", name, name in direct))\n',
           '            found.append((f"{old_module}:{rest}", name, True))\n', _INPUTS,
           "a helper declared moved recomputes the calls that never ran the helper it calls (whose constants they did not read)"),
    Mutant("SH19", "mandala_ast/runtime/renames.py", "        _follow_reads(conn, new_op, latest)\n", "", _INPUTS,
           "an op moved with rename_op to a module where the constant it reads differs serves the results of the old value"),
    Mutant("RN1", _DEPS, '["__dict__", "get", COMPUTED])\n', '["__dict__", "get", COMPUTED], ["get", COMPUTED])\n', _INPUTS,
           "an op calling config.get(name) (the module's function) recomputes when an unrelated constant of config is edited"),
    Mutant("RN2", _DEPS, "{DEFINITION if name in written else ''}", "", _INPUTS,
           "an op reading getattr(helpers, name) recomputes in a new process after a function of helpers filled its cache"),
    Mutant("RN3", "mandala_ast/runtime/file_deps.py", "    if dash and end in _SQLITE_FILES and (base == own",
           "    if dash and (base == own", ("tests/test_file_deps.py",),
           "an op reading runs-input.csv beside the storage file runs serves its stale result after the csv was edited"),
    Mutant("RN4", "mandala_ast/runtime/renames.py", "        if module == new_module and not _is_under(name, new_name):",
           "        if module == new_module and not name.startswith(new_name):", _INPUTS,
           "a helper scale declared moved to where the scale_k it reads differs serves the results of the old scale_k"),
    Mutant("RN5", _DEPS, "            written = _walked(tree)[3]  #", "            written = _local_or_mutated_names(tree)  #", _INPUTS,
           "an op with a local K reading getattr(helpers, name) serves its stale result after helpers.K was edited"),
    # -- session 10: edges left open (EDx)
    Mutant("ED1", "mandala_ast/runtime/batch/executors.py", "        with held_back():\n            task = self.client.submit(",
           "        if True:\n            task = self.client.submit(", ("tests/test_batch_workers.py",),
           "Ctrl-C as a Dask client sends a call to the cluster: the call runs there and its result is dropped"),
    Mutant("ED2", "mandala_ast/runtime/batch/executors.py", "            else:\n                ticket.set_running_or_notify_cancel()\n", "            else:\n                pass\n",
           ("tests/test_batch_workers.py",),
           "Ctrl-C as a Dask client sends a call: the call's mirror is cancelled, its result on the cluster dropped"),
    Mutant("ED3", "mandala_ast/runtime/tracing.py", "    return _disable\n",
           "    return sys.monitoring.DISABLE  # type: ignore[attr-defined]\n", ("tests/test_tracing.py",),
           "a Dask batch's process prints 'Exception ignored in _removeHandlerRef' as it exits (killed on Python 3.12+ only)"),
    Mutant("ED4", "mandala_ast/runtime/fixtures.py", "        if not upstream:\n            return reason\n",
           "        if True:\n            return reason\n", ("tests/test_pytest.py",),
           "a cached fixture recomputed because the cached fixture it receives changed says 'not stored yet'"),
    Mutant("ED5", "mandala_ast/runtime/fixtures.py", "        with _unstored_named(op, label[0]), block:\n",
           "        with block:\n", ("tests/test_pytest.py",),
           "the warning for a cached fixture value that cannot be stored names 'op conftest.gen, output 0', not the fixture"),
    Mutant("ED6", "mandala_ast/export_files.py", "    if len(os.fsencode(out.name)) <= room:\n", "    if True:\n",
           ("tests/test_export.py",), "an export to a valid output name of 255 characters fails: 'File name too long'"),
    Mutant("ED7", "mandala_ast/export_files.py", '    prefix = f".{_out_part(out)}."', '    prefix = f".{out.name}."',
           ("tests/test_export.py",),
           "the temporary files a killed export to a long output name left stay for good, as large as it had got"),
    # -- session 10: stale results when code changes, leftovers
    Mutant("ST1", _DEPS, '        if name.startswith("__") and name.endswith("__"):\n            continue\n        if _code_object_of(value) is None and (is_data',
           '        if name in written or name.startswith("__") and name.endswith("__"):\n            continue\n        if _code_object_of(value) is None and (is_data',
           _INPUTS, "an op reading getattr(helpers, name) serves its stale result after K, which a function of helpers "
           "rebinds with `global K`, was edited"),
    Mutant("ST2", _DEPS, "        yield from _defined_data(value, COMPUTED)\n", "        pass\n", _INPUTS,
           "an op reading getattr(Model, name) (a computed name) serves its stale result after the class constant Model.K was edited"),
    Mutant("ST3", _DEPS, "    if attr == COMPUTED:\n        return _any_class_data(cls)\n", "    if attr == COMPUTED:\n        return []\n",
           _INPUTS, "a method reading getattr(self, name) (a computed name) serves its stale result after a class constant was edited"),
    Mutant("ST4", _DEPS, "            found.append((name + DEFINITION if attr in written else name, value))\n",
           "            found.append((name, value))\n", _INPUTS,
           "an op reading getattr(Model, name) recomputes in a new process after a classmethod appended to a class-level list"),
    Mutant("ST5", _DEPS, "            dependency = describe(name + DEFINITION if state else name, value)\n",
           "            dependency = describe(name, value)\n", _INPUTS,
           "an op calling a classmethod that appends to cls.SEEN recomputes its first call in a new process"),
    Mutant("ST6", _DEPS, "    text = _targets_text(value)\n    if not text", "    text = \"\"\n    if not text", _INPUTS,
           "REGISTRY = {'a': mod1.f} edited to {'a': mod2.f}, two functions of one text reading their own module's K, "
           "serves the results of mod1.f"),
    Mutant("ST7", _DEPS, 'return ", ".join(f"{k}: {t}" for k, t in items if t)',
           'return ", ".join(f"{k}" for k, t in items if t)',
           _INPUTS, "an op reading REGISTRY[key] (a computed key) serves the results of mod1.f once the entry points to mod2.f"),
    Mutant("ST8", _DEPS, "    for suffix in (DECORATORS, DEFINITION, TARGETS, CLASS_DATA):\n",
           "    for suffix in (DECORATORS, DEFINITION, CLASS_DATA):\n",
           _INPUTS, "an op calling REGISTRY['a'] recomputes every call in every new process (the entry's targets are never found again)"),
    Mutant("ST9", _DEPS, "    for suffix in (DECORATORS, DEFINITION, TARGETS, CLASS_DATA):\n",
           "    for suffix in (DECORATORS, TARGETS, CLASS_DATA):\n",
           _INPUTS, "an op reading getattr(helpers, name) recomputes every call in every new process when a function of helpers "
           "writes a global"),
    Mutant("ST10", "mandala_ast/runtime/definitions.py", "    if known is not None and known[0] is key:\n        return known[1]\n", "",
           _INPUTS, "a constant rebound with `global K`, edited while a script runs: the script's later calls, computed with "
           "the old K, are loaded by the next process as if computed with the new one"),
    Mutant("ST11", _DEPS, "    if _reads_any_global(rest) and isinstance(value, type):", "    if rest[:1] == [COMPUTED] and isinstance(value, type):",
           _INPUTS, "an op reading vars(Model)[name] (a computed name) serves its stale result after Model.K was edited"),
    Mutant("LN1", "mandala_ast/runtime/recording.py",
           "            if call.built:  # its sources' rows, before the rows that name them\n                self._record_builds(call)\n",
           "", _BUILT,
           "the build call of a list built by hand is never stored: deleting a double leaves the total given the list"),
    Mutant("LN2", "mandala_ast/transforms/_run_form.py",
           "        rewrite = self._active and consumed and may_hold_outputs(self.scope, node)",
           "        rewrite = False", _BUILT,
           "compiled code passes total([double(x) for x in xs]) the list as raw: its elements' producers are lost"),
    Mutant("LN3", "mandala_ast/transforms/_run_form.py",
           '            return "~" + key if bound_to_a_collection(scope, name) else None',
           "            return None", _BUILT,
           "ys = [double(x) for x in xs]; total(ys): the name's list is passed as raw, its producers lost"),
    Mutant("LN4", "mandala_ast/runtime/deletion.py",
           "        while conn.execute(_UNCONSUMED_BUILDS_SQL).rowcount > 0:", "        while False:", _BUILT,
           "deleting the total given a list built by hand leaves its build call, and the list's value, for good"),
    Mutant("LN5", "mandala_ast/runtime/built.py", "        if cid is None or not self.intact():", "        if cid is None:",
           _BUILT, "ys.append(double(100)) after ys = [...] still claims exactly where ys's elements came from"),
    Mutant("LN6", "mandala_ast/runtime/tables.py",
           "            rows += _element_rows(store, call, name, found[0])", "            pass", _BUILT,
           "storage.provenance shows only the __build__ call for a list built by hand, not its elements' producers"),
    Mutant("LN7", "mandala_ast/runtime/catalog.py", "(ITEM_OP_NAME, BUILD_OP_NAME)", "(ITEM_OP_NAME, ITEM_OP_NAME)",
           _BUILT, "mandala-ast ops lists the internal mandala_ast.__build__ op"),
    Mutant("LN8", "mandala_ast/runtime/compiled.py",
           "    return None if key is not ... and _holds_raw(block, key, element) else _UNKNOWN",
           "    return None", _BUILT,
           "total([a, helper(b)]): the helper's result is claimed raw, so deleting b's producer leaves total"),
    # -- review of session-10 merges
    Mutant("RX1", _DEPS, "    if _code_object_of(key) is not None:\n        return qualified_name(key)\n    return _ADDRESS.sub(\"\", _described(key))\n",
           "    return _described(key)\n", _INPUTS,
           "an op calling GRADS[relu] (a registry keyed by functions) recomputes every call in every new process"),
    Mutant("RX2", _DEPS, "        items = sorted((_key_text(k), _targets_text(v, depth + 1)) for k, v in value.items())\n",
           "        items = [(_key_text(k), _targets_text(v, depth + 1)) for k, v in value.items()]\n", _INPUTS,
           "an op calling REG[name] recomputes every call in every new process where the registry is filled from a set"),
    Mutant("RX3", "mandala_ast/runtime/fixtures.py", "            warnings.simplefilter(\"always\", MandalaUnstoredWarning)\n",
           "            warnings.simplefilter(\"always\")\n", ("tests/test_pytest.py",),
           "a cached fixture whose body warns under filterwarnings = error is stored, and passes silently from the second run on"),
    Mutant("RX4", "mandala_ast/runtime/definitions.py",
           "    return {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}\n",
           "    return set()\n", _INPUTS,
           "class state made from a module constant (SEEN = list(BASE)), read by getattr(Model, name): editing BASE served the stale result"),
    Mutant("RX5", "mandala_ast/runtime/definitions.py",
           "    return found + [s for s in _statements(tree.body) if qualname in _attributes_set(s)]\n",
           "    return found\n", _INPUTS,
           "a class attribute a classmethod rebinds, set again by the module (Model.K = 3): editing that line served the stale result"),
    Mutant("RX6", "mandala_ast/runtime/definitions.py",
           "            other = sys.modules.get(source) if follow(source) else None\n", "            other = None\n", _INPUTS,
           "K imported from config and rebound with `global K`: editing K in config.py served the stale result"),
    Mutant("RX7", _DEPS, "        chain = found[: found.index(COMPUTED) + 1] if COMPUTED in found else [*found, *parts]\n",
           "        chain = [*found, *parts]\n", _INPUTS,
           "an op reading getattr(helpers, name)[0] serves its stale result after K was edited"),
    Mutant("BF1", "mandala_ast/runtime/batch/executors.py",
           "            cf.wait([future for future in futures if not future.cancelled()])\n",
           "            cf.wait(futures)\n", ("tests/test_batch_workers.py",),
           "Ctrl-C on threads with a call queued in the pool behind a running one: the block never exits"),
    Mutant("BF2", "mandala_ast/runtime/batch/scheduler.py",
           "        if isinstance(error, STOPS_THE_BLOCK):\n            self._put_back(node)\n",
           "        if isinstance(error, STOPS_THE_BLOCK):\n", ("tests/test_batch_workers.py",),
           "a body's SystemExit on a thread, caught by the caller: the call's lock is held for good, others wait 10 min"),
    Mutant("BF3", "mandala_ast/runtime/batch/scheduler.py",
           "        except BaseException as exc:\n            return self._ended_oddly(node, exc)\n", "",
           ("tests/test_batch_workers.py",),
           "a body's GeneratorExit on a thread comes out of the block bare, naming no call, its lock held for good"),
    Mutant("BF4", "mandala_ast/runtime/batch/worker.py",
           "    except BaseException as exc:  # noqa: BLE001 - this call's failure only (see _outcomes)\n",
           "    except Exception as exc:  # noqa: BLE001 - this call's failure only (see _outcomes)\n",
           ("tests/test_batch_workers.py",),
           "a body's SystemExit or KeyboardInterrupt on a thread drops the calls computed before it in its task"),
    Mutant("BF5", "mandala_ast/runtime/batch/scheduler.py",
           "        for node in nodes[len(outcomes):]:  # a KeyboardInterrupt or SystemExit ended the chunk\n"
           "            self._put_back(node)\n", "", ("tests/test_batch_workers.py",),
           "the calls after a body's SystemExit in its task never run, and keep their locks for good"),
    Mutant("BF6", "mandala_ast/runtime/batch/scheduler.py",
           "        self.backend.cancel(list(self.late))\n        self._cancel_speculated()\n",
           "        self.backend.cancel(list(self.late))\n", ("tests/test_batch_workers.py",),
           "Ctrl-C on Dask leaves a call chained to a finished input running on the cluster after the block"),
    Mutant("BF7", "mandala_ast/runtime/batch/scheduler.py",
           "            future = self.backend.cut_short()\n            if future is not None:\n"
           "                node.speculative = (future, upstream)\n            raise\n",
           "            raise\n", ("tests/test_batch_workers.py",),
           "Ctrl-C as a call is chained on Dask: its task runs on the cluster, its future parked in the backend"),
    Mutant("BF8", "mandala_ast/runtime/batch/worker.py",
           '            return f"{self.address[0]}.{self.address[1]}"\n', '            return "Chained"\n',
           ("tests/test_batch_dask.py",),
           "a call cancelled on the Dask cluster fails naming the task 'Chained-...', not its op (the dashboard too)"),
    Mutant("BF9", "mandala_ast/runtime/batch/scheduler.py",
           "        except Exception:\n            self.speculated.discard(node)\n            return False\n",
           "        except Exception:\n            raise\n", ("tests/test_batch_dask.py",),
           "on Dask, a call whose argument does not pickle fails the call it is chained to, not itself"),
    Mutant("BF10", "mandala_ast/runtime/batch/executors.py",
           "        except BaseException as exc:  # noqa: BLE001 - the call's failure (GeneratorExit too), raised where "
           "its result is asked for\n", "        except Exception as exc:\n", ("tests/test_batch_workers.py",),
           "a body's GeneratorExit in a batch without executor comes out of the block bare; the calls after it never run"),
    Mutant("BF11", "mandala_ast/runtime/batch/executors.py",
           '        if task.status == "error" and not isinstance(task.exception(), Exception):\n',
           '        if False:\n', ("tests/test_batch_dask.py",),
           "a body's GeneratorExit on a Dask cluster: the block waits for its call forever"),
    Mutant("VX1", "mandala_ast/runtime/dependencies.py",
           "    if _library_object(name, value):\n", "    if False:\n",
           ("tests/test_versions.py",),
           "RNG = random.Random(2) edited to Random(3): the op's stored results are served"),
    Mutant("VX2", "mandala_ast/runtime/dependencies.py",
           " or _names_user_module(fn) or _finds_modules(fn):\n", " or _names_user_module(fn):\n",
           ("tests/test_versions.py",),
           "importlib.import_module('helpers').scale(x): editing scale serves the stale result"),
    Mutant("VX3", "mandala_ast/runtime/dependencies.py",
           " or not (is_data(inner) or _no_content_object(inner)):\n", " or not is_data(inner):\n",
           ("tests/test_versions.py",),
           "class C: TZ = timezone(...) edited: an op reading C.TZ serves the old results"),
    Mutant("VX4", "mandala_ast/runtime/dependencies.py",
           "    path = _split_keys(rest)[0].split(\".\")", "    path = rest.split(\".\")",
           ("tests/test_versions.py",),
           "CFG = {'tz': timezone(...)} edited: an op reading CFG['tz'] serves the old results"),
    Mutant("VX5", "mandala_ast/runtime/file_deps.py",
           "            values = _paths_read(names, namespace)\n", "            values = []\n",
           ("tests/test_file_deps.py",),
           "DATA = os.path.join(ROOT, 'x.parquet') read by pyarrow: a changed file serves the stale result"),
    Mutant("VX6", "mandala_ast/runtime/global_random.py",
           "    if not drawn or op_name in _reported:\n", "    if True:\n", ("tests/test_global_random.py",),
           "an op drawing from np.random's global state is never named: a changed seed silently finds old results"),
    Mutant("VX7", "mandala_ast/runtime/global_random.py",
           "    reads = [(operator.itemgetter(position, key), words) for _, _, words, position, key in watched]\n",
           "    reads = [(operator.itemgetter(position), words) for _, _, words, position, key in watched]\n",
           ("tests/test_global_random.py",),
           "np.random.rand(312) brings the position back: the draw goes unseen"),
    Mutant("VX9", "mandala_ast/runtime/dependencies.py",
           " and _code_object_of(value) is None and (is_data(value) or _plain_object(klass, attr, value)):\n",
           " and _code_object_of(value) is None and is_data(value):\n", ("tests/test_versions.py",),
           "class C: TZ = timezone(...) read as self.TZ in a method: editing it serves the old results"),
    Mutant("VX11", "mandala_ast/runtime/dependencies.py",
           "    classes, functions = _held_code_of([*values, *read])\n", "    classes, functions = _held_code_of(values)\n",
           ("tests/test_batch_async.py",),
           "an async op reading MODEL.predict(x) at module level serves its stale result after predict was edited"),
    Mutant("VX10", "mandala_ast/runtime/dependencies.py",
           "        if _code_object_of(value) is None and (is_data(value) or _no_content_object(value)):  # (no content: by its text)\n",
           "        if _code_object_of(value) is None and is_data(value):\n", ("tests/test_versions.py",),
           "TZ read as globals()['T' + 'Z']: editing its definition serves the old results"),
    Mutant("LA1", "mandala_ast/transforms/_run_form.py",
           '            if name in filling(scope.resolve(name)).filled:  # filled step by step: `?` (runtime)\n',
           "            if False:\n", _GROWN,
           "ys = []; ys.append(double(x)); total(ys): the list is passed as raw, deleting a double leaves total"),
    Mutant("LA2", "mandala_ast/runtime/grown.py",
           "            if known is not found and not _same_producer(known, found):\n",
           "            if False:\n", _GROWN,
           "the int 2 that double(1) and twice(1) both returned, one object, is claimed for the first of them"),
    Mutant("LA3", "mandala_ast/runtime/compiled.py",
           "            block.names[LENT + key] = True\n    return f if plain_callee is None else plain_callee(f)\n",
           "            pass\n    return f if plain_callee is None else plain_callee(f)\n", _GROWN,
           "a list a helper got first (and may have added to) is still claimed exact, element by element"),
    Mutant("LA4", "mandala_ast/transforms/_grown.py",
           "        followed = name not in walk.loose and every[name] == seen and _bound_once_empty(scope, name)\n",
           "        followed = name not in walk.loose and _bound_once_empty(scope, name)\n", _GROWN,
           "a list a lambda or a display also holds is followed as if every addition were seen"),
    Mutant("LA5", "mandala_ast/runtime/compiled.py",
           "        _given_to_a_workflow(block, _spec_key(pos_keys, kw_keys, where))\n",
           "", _GROWN,
           "a list a workflow's body added to is still claimed exact, element by element"),
    Mutant("LA7", "mandala_ast/runtime/deletion.py",
           "SELECT COALESCE(SUM(NOT b), 0), COALESCE(SUM(matched AND NOT b), 0), COALESCE(SUM(b), 0)\n",
           "SELECT COUNT(*), COALESCE(SUM(matched), 0), COALESCE(SUM(b), 0)\n", _BUILT,
           "a deletion report counts the internal build calls of collections built by hand as the user's op calls"),
    Mutant("LA8", "mandala_ast/runtime/stored_graphs.py",
           "    if op_name == BUILD_OP_NAME:  # a collection built by hand: its elements go into its value\n",
           "    if False:\n", _BUILT,
           "the picture of a value draws each collection built by hand as a call of an op named __build__"),
    Mutant("LA9", "mandala_ast/runtime/stored_graphs.py",
           "            if flow.producer == BUILD_OP_NAME:\n                _add_collection(",
           "            if False:\n                _add_collection(", _BUILT,
           "the picture of an op given a list built by hand draws an op named __build__ feeding it"),
    Mutant("LA10", "mandala_ast/runtime/compiled.py",
           "    if spec[-1] is True:\n        spec = spec[:-1]\n",
           "", ("tests/test_compiled_runtime.py",) + _GROWN,
           "an op given a list filled step by step registers under site 1, the mark its spec ends with"),
    # -- compiled .pyc size (session 12)
    Mutant("PY1", "mandala_ast/runtime/compiled.py",
           "    if known is None or known[0] is not spec or known[2] is not scope:\n        known = _remember_at(scope, spec)\n",
           "    if known is None or known[0] is not spec:\n        known = _remember_at(scope, spec)\n",
           ("tests/test_compiled_blocks.py", "tests/test_compiled_runtime.py"),
           "two functions whose calls share a spec: the second takes the first's keys, its op calls lose their producers"),
    Mutant("PY2", "mandala_ast/linetable.py",
           "            elif getattr(child, \"decorator_list\", None):\n                todo.append(child)\n",
           "", ("tests/test_linetable.py",),
           "a rewritten decorator line keeps the rewritten text's columns (misplaced ^^^ markers, a larger .pyc)"),
    Mutant("PY3", "mandala_ast/runtime/compiled.py",
           "_Put(block, _adding_spec(scope, spec), _FORMS[f.__name__], f.__self__, f)",
           "_Put(block, _adding_spec(scope, spec), \"a\", f.__self__, f)", _GROWN,
           "ys.insert(0, double(x)) notes the index 0 as the element added: the double's output is of unknown producer"),
    Mutant("LA6", "mandala_ast/runtime/grown.py",
           "        self.added: list[tuple[Any, Any]] = [(e, UNKNOWN) for e in elements_of(value)]\n",
           "        self.added: list[tuple[Any, Any]] = []\n", _GROWN,
           "a list filled before the block began: what it held then is claimed for a producer of the block"),
    Mutant("DK1", "mandala_ast/runtime/batch/executors.py", "    if finished:\n        try:\n            values = client.gather(",
           "    if False:\n        try:\n            values = client.gather(", ("tests/test_batch_dask.py",),
           "a Dask batch fetches each call's result on its own (future.result(): a round trip per call)"),
    Mutant("DK2", "mandala_ast/runtime/batch/executors.py", "Chained(address, args, kwargs, traced)",
           "Chained(address, args, kwargs)", ("tests/test_batch_dask.py",),
           "every body on a Dask cluster is traced, even one that can run no user code (~0.6 ms a call)"),
    Mutant("DK3", "mandala_ast/runtime/batch/scheduler.py",
           "        self.backend.fetch(list(running))  # (Dask: the results that came back, kept below)\n", "",
           ("tests/test_batch_workers.py",),
           "Ctrl-C in a Dask batch drops the result of a call that finished but was not fetched yet"),
    Mutant("DK4", "mandala_ast/runtime/batch/executors.py", "            _settle(mirror, mirror.dask)\n        mirror.dask.release()\n",
           "            _settle(mirror, mirror.dask)\n", ("tests/test_batch_dask.py",),
           "after a Dask batch, the workers keep every result it computed in memory (until the garbage collector runs)"),
    Mutant("SS1", _DEPS, "    setting = None if by_text is None else _setting(base, module_name, qualname, value)\n",
           "    setting = None\n", ("tests/test_script_state.py",),
           "set_k(7) in the script serves the calls stored after set_k(5) (read by a computed name, getattr(self, name))"),
    Mutant("SS2", _DEPS, "            yield referenced_as + (DEFINITION if written else \"\"), value\n",
           "            yield referenced_as, value\n", ("tests/test_script_state.py",),
           "a counter the op bodies move, read by a helper, recomputes every call in the next block and a new process"),
    Mutant("SS3", "mandala_ast/runtime/storage.py", "        if guard is None:\n            bounded_put(memo, key, result)\n",
           "        if True:\n            bounded_put(memo, key, result)\n", ("tests/test_script_state.py",),
           "set_k(7) between two calls of one block: the second is a warm hit with K = 5"),
    Mutant("SS4", "mandala_ast/runtime/versions.py",
           "        deps.note_moved(op.fn, ran.codes)  # (before the key: a known key still moved them)\n", "",
           ("tests/test_script_state.py",),
           "a cache the op bodies fill is taken for one the script set: a new process computes every call again"),
    Mutant("SS5", "mandala_ast/runtime/pipeline.py",
           "            self.commit()  # (what this block computed is then found in the file, as after a deletion)\n", "",
           ("tests/test_script_state.py",),
           "after set_k(7) mid-block, an op reading no state computes again what the block computed before"),
    Mutant("SS6", "mandala_ast/runtime/pipeline.py", "        self.notice_settings(in_place=True)\n",
           "        self.notice_settings()\n", ("tests/test_script_state.py",),
           "configure(7) changing CONFIG.k in place between two blocks: the second serves the results of 5"),
    Mutant("SS7", "mandala_ast/runtime/script_state.py", "        if cid is None or cid != defined():\n",
           "        if True:\n", ("tests/test_script_state.py",),
           "set_k(3), the module's own K = 3, misses the calls a process that never called set_k stored"),
    Mutant("SS8", "mandala_ast/runtime/script_state.py",
           "        if value is not _GONE and (value is not last[0] or in_place and last[1] is not None):\n",
           "        if value is not _GONE and in_place and last[1] is not None:\n",
           ("tests/test_script_state.py",),
           "set_k(7) between two calls of one block: the second serves the result of K = 5 from memory"),
    Mutant("SS9", _DEPS, "    return definitions.definition_text(module_name, qualname, is_user_module) is not None\n",
           "    return True\n", ("tests/test_ipython.py",),
           "K = 4 (or set_k(5)) in a later notebook cell serves the result of K = 3: no file defines it, no text counts"),
    Mutant("SS10", _DEPS,
           "            state = attr in written or attr in _class_state_written(cls) and _defined_in_a_file(name)\n",
           "            state = attr in written\n", ("tests/test_script_state.py",),
           "a counter kept on a class (cls.N += 1 in a classmethod), read as self.N: every call computed again in a new process"),
    Mutant("SS11", "mandala_ast/runtime/versions.py", "            deps.look_at_state(in_place=True)\n", "            pass\n",
           ("tests/test_script_state.py",),
           "configure(7) in place mid-block: the call computed with 7 is stored under 5, and served to a process configuring 5"),
    Mutant("EG1", _DEPS, "        yield from _bytecode_reads(obj)\n", "        yield from ()\n", ("tests/test_versions.py",),
           "code with no source (python -c) reads no globals: K = 5 made K = 7 on the command line serves the results of 5"),
    Mutant("EG2", "mandala_ast/runtime/recursion.py", "    if depth > most or stack_nearly_full(ROOM):\n",
           "    if depth > most:\n", ("tests/test_recursion.py",),
           "an op recursing forever ends in Python's bare RecursionError, met in the library's frames, naming no op"),
    Mutant("EG3", "mandala_ast/runtime/parsing.py",
           "    with _LOCK:\n        try:\n            return ast.parse(source, mode=mode)\n        except SystemError as error:  "
           "# met a parse of the user's, in another thread\n            if _MISMATCH not in str(error):\n"
           "                raise\n            return ast.parse(source, mode=mode)\n",
           "    return ast.parse(source, mode=mode)\n",
           ("tests/test_parsing.py",),
           "two threads parsing at once on Python 3.11: an op call raises SystemError: AST constructor recursion depth mismatch"),
    Mutant("SG1", "mandala_ast/runtime/segments.py", "            view, room = view[room:], room - min(room, view.nbytes)\n",
           "            view, room = view[room:], room - min(room, view.nbytes) + (room < SEGMENT)\n",
           ("tests/test_segments.py",), "bytes cut into buffers elsewhere get another id: an RGB image misses against its equal"),
    Mutant("SG2", "mandala_ast/runtime/segments.py", "    if pid not in _pools:\n", "    if not _pools:\n",
           ("tests/test_segments.py",), "a forked child hashing a large RGB image waits forever on its parent's pool threads"),
    Mutant("PB1", _DEPS, "            found.update(_class_data_of(value))\n", "", ("tests/test_versions.py",),
           "Model().K edited in the class body: the op that made the instance is served the stale result"),
    Mutant("PB2", "mandala_ast/runtime/execution.py", "    before.update(argument_classes((*args, *kwargs.values())))\n", "",
           ("tests/test_versions.py",), "model.K of an argument's class edited: the stale result is served"),
    Mutant("PB3", _DEPS, "        if name in found or name.endswith(CLASS_DATA):\n", "        if name in found:\n",
           ("tests/test_versions.py",), "the data of an argument's class noted before the body, then dropped: stale model.K"),
    Mutant("PB4", _DEPS, "    if not written and _immutable(value):\n", "    if not written:\n", ("tests/test_versions.py",),
           "a class-level cache filled through an instance counts by value: every new process computes every call again"),
    Mutant("PB5", _DEPS, '    if rest[0] == "__dict__":  # `vars(Model)`: any of its data (no attribute of the mapping)\n',
           '    if False:\n', ("tests/test_versions.py",), "vars(Model)['K'] edited: the stale result is served"),
    Mutant("PB6", _DEPS, ' and attr != "__match_args__":\n', ":\n", ("tests/test_versions.py",),
           "a class pattern's __match_args__ reordered: match Point(v, _) is served the stale result"),
    Mutant("PB7", _DEPS, "            yield from _module_alias(namespace, module_name, chain[0])\n", "",
           ("tests/test_versions.py",), "import slow as impl made import fast as impl: slow's results are served"),
    Mutant("PB8", _DEPS, "        return _class_data(inner, rest[1:]) or [(qualified_name(inner), inner)]\n", "        return []\n",
           ("tests/test_versions.py",), "Outer.Inner.K edited: the stale result is served"),
    Mutant("PB9", _DEPS, "                    found.update(argument_classes((value,)))\n", "                    pass\n",
           ("tests/test_versions.py",), "MODELS[0].K (an instance in module-level data) edited: the stale result is served"),
    Mutant("PB10", _DEPS, "        if not issubclass(held, enum.Enum):", "        if True:", ("tests/test_versions.py",),
           "train(x, Mode.FAST) recomputes when another member of Mode is edited"),
    Mutant("PB11", _DEPS, "    return None if written else describe(name, value)\n", "    return None\n", ("tests/test_versions.py",),
           "a class attribute setattr sets (no text defines it), read through an instance, edited: the stale result is served"),
    Mutant("PB12", _DEPS, ' and attr.endswith("_") and issubclass(klass, enum.Enum)\n', ' and attr.endswith("_") and False\n', ("tests/test_versions.py",),
           "Perm(3) on an IntFlag fills its _value2member_map_: every new process computes every call again"),
    Mutant("PB13", _DEPS, "    if rest[0] in _class_state_written(value):  # `Node.ALL.append(self)` in its module: by its text\n",
           "    if False:\n", ("tests/test_versions.py",),
           "Node.ALL.append(self) in Node.__init__: every new process computes every call that made a node again"),
    Mutant("PB14", _DEPS, "    if _has_own_globals(obj):\n        return\n", "    if False:\n        return\n", ("tests/test_versions.py",),
           "an attrs class made in an op: every new process computes its calls again (experiment:attr_dict['x'] is gone)"),
    Mutant("PB15", _DEPS, "            yield f\"{module_name}:{name}{CLASS_DATA}\", value\n", "            pass\n",
           ("tests/test_versions.py",), "globals()[NAME]().K edited (a class found by a computed name): the stale result is served"),
    Mutant("PB16", "mandala_ast/runtime/versions.py",
           "    if name.endswith(deps.CLASS_DATA):  # the class's data: `Model.K = 4` keeps the class itself\n",
           "    if False:\n", ("tests/test_versions.py",),
           "Model.K = 4 set by the script between blocks: the next block is served the calls computed with K = 3"),
    Mutant("RV1", "mandala_ast/runtime/segments.py",
           "    digest = pending[0].result()  # (still pending while awaited: see _settle)\n    pending.popleft()\n",
           "    digest = pending.popleft().result()\n", ("tests/test_segments.py",),
           "a Ctrl-C while a large RGB image is hashed, then the image freed: the pool reads freed memory (a crash)"),
    Mutant("RV2", "mandala_ast/runtime/segments.py",
           "    except RuntimeError:  # the interpreter is shutting down: the pool takes no more work\n",
           "    except ImportError:  # the interpreter is shutting down: the pool takes no more work\n", ("tests/test_segments.py",),
           "a thread still hashing a large RGB image after the main thread returned: 'cannot hash a value of type Image'"),
    Mutant("RV3", "mandala_ast/runtime/hash_threads.py",
           "    _threads[0] = usable_cores()  # (1: hashed in the calling thread, no pool at all)\n",
           "    _threads[0] = blake3.AUTO\n", ("tests/test_hashing.py",),
           "a forked child (a process pool's worker) hashing an 8 MB array or a file its parent hashed waits forever"),
    Mutant("FM1", "mandala_ast/runtime/store.py", '    "CREATE UNIQUE INDEX idx_calls_key ON calls (lkey, deps_id)",\n',
           '    "CREATE INDEX idx_calls_key ON calls (lkey, deps_id)",\n', ("tests/test_migrations.py",),
           "two storages computing the same call at once: it is stored twice (df shows it twice, deletion by row id is ambiguous)"),
    Mutant("FM2", "mandala_ast/runtime/store.py", "        if guessed[key] == hid:\n            yield hid, key\n",
           "        yield guessed[key], key\n", ("tests/test_store.py",),
           "a key the store remembers for a call deleted meanwhile: a later call records another call as its source"),
    Mutant("FM3", "mandala_ast/runtime/store.py", "        for row in rows:\n            known[row[0]] = row[3]\n", "",
           ("tests/test_store.py",),
           "a call whose source was stored earlier: each source looked up by row id, a skip-scan of every bucket (~165 us at 1M)"),
    Mutant("FM4", "mandala_ast/runtime/migrations.py", '    if found != "mandala_ast/8":\n', "    if True:\n",
           ("tests/test_migrations.py",), "opening a format-8 file fails: 'there is already another table or index with this name: val_rows'"),
    Mutant("FM7", "mandala_ast/runtime/store.py", '    "CREATE INDEX idx_outputs_cid ON call_outputs (cid)",\n',
           '    "CREATE INDEX idx_outputs_cid ON call_outputs (call_id >> 14, cid)",\n', ("tests/test_deletion.py",),
           "deleting a call of a 1M-call chain stored by uncompiled code: each value's earlier producer probes every 16,384 calls (minutes)"),
    Mutant("FM6", "mandala_ast/runtime/store.py", "        if len(rows) > 1:\n            rows.sort(key=itemgetter(3))\n", "",
           ("tests/test_store.py",),
           "a call stored under several dependency states: the lookup takes the first by deps id, not the oldest"),
    Mutant("FM5", "mandala_ast/runtime/store.py", '    ("calls", "idx_calls_hid", "1000000 500000 1"),\n',
           '    ("calls", "idx_calls_hid", "1000000 16384 1"),\n', ("tests/test_query_plans.py",),
           "the planner prices a skip-scan of row ids at the 61 probes of a million calls",
           equivalent=True, reason="the plans of the suite's queries are the same either way (checked with "
           "idx_outputs_cid priced so too); the statistics keep the plans made for one probe"),
    Mutant("FR1", "mandala_ast/runtime/deletion.py",
           " CROSS JOIN main.calls m ON m.id = (SELECT k.id FROM main.calls k WHERE k.hid = t.hid)",
           " CROSS JOIN main.calls m ON m.hid = t.hid", ("tests/test_deletion.py",),
           "targets joined on row id: one more condition on the call and SQLite 3.40 filters that skip-scan "
           "through a Bloom filter, and delete_calls of a call past the first 16,384 deletes nothing"),
    Mutant("FR2", "mandala_ast/runtime/lone_elements.py",
           "FROM temp.mandala_target_key t\nCROSS JOIN main.calls m ON m.id = t.id AND",
           "FROM temp.mandala_target t\nCROSS JOIN main.calls m ON m.hid = t.hid AND", ("tests/test_deletion.py",),
           "an element's call past a storage's first 16,384, given alone to delete_calls, is not refused"),
    Mutant("FR3", "mandala_ast/runtime/store.py",
           "        if len(self.known_keys) > _KNOWN_KEYS_MAX:\n            self.known_keys.clear()\n        return self.known_keys\n",
           "        return self.known_keys\n", ("tests/test_store.py",),
           "a process that only loads stored calls remembers every key it looked up: its memory grows without end"),
    Mutant("GT1", "mandala_ast/runtime/query/tracked.py",
           "    if not untracked:\n        return _BY_HISTORY\n",
           "    if True:\n        return _BY_HISTORY\n", ("tests/test_query_tracked.py",),
           "a guarded query misses the calls uncompiled code stored under the if (found by history only)"),
    Mutant("GT2", "mandala_ast/runtime/query/tracked.py",
           "    if read >= budget:\n        return None\n", "", ("tests/test_query_tracked.py",),
           "a guarded op's calls past the check's budget are taken for compiled ones: an uncompiled one is missed"),
    Mutant("GT3", "mandala_ast/runtime/query/tracked.py",
           "if not required or not guarded or any(map(_narrowed, required)):", "if not required or not guarded:",
           ("tests/test_query_tracked.py",),
           "a point query with a guarded call reads every stored call of the guarded op first"),
    Mutant("GT4", "mandala_ast/runtime/query/sql.py",
           '                directions = (arm or "by_history",) if tracked else directions\n', "",
           ("tests/test_query_tracked.py",),
           "a guarded call over compiled calls is searched by content in every row (random pages at 1M calls)"),
    Mutant("GT5", "mandala_ast/runtime/query/tracked.py",
           "if not required or not guarded or any(map(_narrowed, required)):",
           "if not required or any(map(_narrowed, required)):", ("tests/test_query_tracked.py",),
           "a query with no call under an if counts its first op's calls for nothing"),
    Mutant("GT6", "mandala_ast/runtime/query/tracked.py",
           "    edges = {_edges(call) for call in guarded}", "    edges = [_edges(call) for call in guarded]",
           ("tests/test_query_tracked.py",), "two calls of one op under an if and its else read the op's calls twice"),
    Mutant("DS1", _DE, "    scan = targets * buckets * SCANNED_PER_PROBE > last\n", "    scan = False\n",
           ("tests/test_deletion.py",),
           "deleting 10,000 calls named by row id: a skip-scan of every bucket each (2.1 s at 1M calls, ~10x at 10M)"),
    Mutant("DS2", _DE, '" WHERE +c.hid IN (SELECT hid FROM temp.mandala_target)"',
           '" WHERE c.hid IN (SELECT hid FROM temp.mandala_target)"', ("tests/test_deletion.py",),
           "the pass over row ids for many targets turned by the planner into a skip-scan per target"),
    Mutant("DS3", _DE, "SELECT c.id, 1 FROM temp.mandala_target_key t\nCROSS JOIN main.calls m ON m.id = t.id AND m.version_id != X'{ITEM_VERSION_ID.hex()}'\nCROSS JOIN main.calls c ON c.version_id",
           "SELECT c.id, 1 FROM temp.mandala_target t\nCROSS JOIN main.calls m ON m.id = (SELECT k.id FROM main.calls k WHERE k.hid = t.hid) AND m.version_id != X'{ITEM_VERSION_ID.hex()}'\nCROSS JOIN main.calls c ON c.version_id",
           ("tests/test_deletion.py",), "deletion's match of its targets looks each one's row id up again, past the one pass"),
    Mutant("DS4", "mandala_ast/runtime/lone_elements.py",
           "FROM temp.mandala_target_key t\nCROSS JOIN main.calls m ON m.id = t.id AND",
           "FROM temp.mandala_target t\nCROSS JOIN main.calls m ON m.id = (SELECT c.id FROM main.calls c WHERE c.hid = t.hid) AND",
           ("tests/test_deletion.py",), "the refusal of lone element calls looks each target's row id up again, past the one pass"),
    Mutant("DS5", _DE, "    scan = targets * buckets * SCANNED_PER_PROBE > last\n", "    scan = True\n",
           ("tests/test_deletion.py",), "deleting one call by row id reads every row id of the storage"),
    Mutant("RW1", "mandala_ast/runtime/query/result.py",
           "        return self._compile(tracked_calls(self.storage.engine.store.conn, self.pattern))\n",
           "        self._first = getattr(self, '_first', None) or tracked_calls(self.storage.engine.store.conn, self.pattern)\n"
           "        return self._compile(self._first)\n", ("tests/test_query_tracked.py",),
           "a guarded query keeps its first check's answer: calls uncompiled code stored since are missed"),
    Mutant("RW2", "mandala_ast/runtime/query/result.py",
           "                conn = self.storage.engine.store.conn\n                self._epoch = deletion_epoch(conn)",
           "                conn = self.storage.engine.store.conn\n                conn.execute('COMMIT')\n"
           "                conn.execute('BEGIN')\n                self._epoch = deletion_epoch(conn)", ("tests/test_query_tracked.py",),
           "the check and the statement read the file in two snapshots: calls stored between are half seen"),
    Mutant("RW3", "mandala_ast/runtime/query/tracked.py",
           "if not required or not guarded or any(map(_narrowed, required)):",
           "if not required or not guarded or _narrowed(required[0]):",
           ("tests/test_query_tracked.py",),
           "a point query narrowed past its first call reads every stored call of the guarded op first"),
    Mutant("GT7", "mandala_ast/runtime/query/tracked.py", "max(CASE WHEN c.exact = 0 THEN", "max(CASE WHEN 0 THEN",
           ("tests/test_query_tracked.py",), "a guarded query misses the calls uncompiled code stored under the if (their inputs not read)"),
    Mutant("GT8", "mandala_ast/runtime/query/tracked.py", "i.src_call IS NOT NULL) < ? ELSE 0 END", "i.src_call IS NOT NULL) < ? + 1 ELSE 0 END",
           ("tests/test_query_tracked.py",), "a guarded op's calls made inside functions (not exact, sources recorded) send it back to content search"),
    Mutant("DT1", "mandala_ast/runtime/query/distinct.py", "    repeated[:-1] |= same\n", "",
           ("tests/test_query_distinct.py",), "the first row of a repeated key is not compared: its repeats are kept"),
    Mutant("DT2", "mandala_ast/runtime/query/row_calls.py",
           "        merged = {bisect.bisect_left(keep, first):", "        merged = {0 * bisect.bisect_left(keep, first):",
           ("tests/test_query_distinct.py",), "a repeated row's calls go to the table's first row"),
    Mutant("DT3", "mandala_ast/runtime/query/row_calls.py", "                self._rows[at] = row\n", "                pass\n",
           ("tests/test_query_distinct.py",), "a row shown once keeps only its first call, not those of the rows equal to it"),
    Mutant("DT4", "mandala_ast/runtime/query/table.py", "        if not suspects and not filled:\n",
           "        if not filled:\n", ("tests/test_query_distinct.py",), "a guarded query shows a repeated row twice"),
    Mutant("DT5", "mandala_ast/runtime/query/distinct.py", "    rows.update(filled, filled.values())\n",
           "    rows.update(filled)\n", ("tests/test_query_distinct.py",),
           "a row another fills is merged into a row of its key that was never compared (KeyError)"),
    Mutant("DT6", "mandala_ast/runtime/query/table.py",
           "        keys: list[Any] = [c.keys() if c.stored_only() else _RowKeys(c) for c in columns]\n",
           "        keys: list[Any] = [c.keys() for c in columns]\n", ("tests/test_query_distinct.py",),
           "one repeated row computes every row's derived ids (~1 µs a value: 1.5 s at 500k rows, 3 columns)"),
    Mutant("DT7", "mandala_ast/runtime/query/table.py", "            return self.table.derived_id_at(value, row)\n",
           "            return None\n", ("tests/test_query_distinct.py", "tests/test_query_table.py", "tests/test_query.py"),
           "rows equal in their stored ids but not in a derived value are merged"),
    Mutant("LS1", _SQL, '        arms = ("by_history", "loose") if call.number in self.loose else (None,)\n',
           "        arms = (None,)\n", ("tests/test_query_tracked.py",),
           "a guarded op with a few calls without history searches the content index once a row (4.3 s against 3.05 s at 1M)"),
    Mutant("LS2", "mandala_ast/runtime/query/tracked.py", "    return table if found <= LOOSE_MAX else None",
           "    return table", ("tests/test_query_tracked.py",),
           "a guarded op with more calls without history than the temp table takes misses those past it"),
    Mutant("LS3", "mandala_ast/runtime/query/tracked.py",
           "    return _loose_table(conn, version_id, names[0], budget) if len(names) == 1 else None",
           "    return _loose_table(conn, version_id, names[0], budget)", ("tests/test_query_tracked.py",),
           "a guarded call fed by two calls misses the uncompiled calls that lack history on its second edge"),
    Mutant("TT1", "mandala_ast/runtime/query/result.py",
           "        with self.storage.engine.store.snapshot():\n            return self._compile(tracked_calls(",
           "        if True:\n            return self._compile(tracked_calls(", ("tests/test_query_tracked.py",),
           "q.sql in one thread empties the temp table another thread's guarded query is reading: its rows lose those calls"),
    Mutant("IN1", "mandala_ast/runtime/query/tracked.py",
           "    return _INEXACT_CALLS if conn.execute(_HAS_INEXACT_INDEX_SQL).fetchone() else _ALL_CALLS",
           "    return _ALL_CALLS", ("tests/test_query_tracked.py",),
           "a guarded query reads every call of its op to find the few without history (0.2-0.45 s at 1M calls)"),
    Mutant("IN2", "mandala_ast/runtime/migrations.py",
           '        conn.execute(rekeying.inexact_index.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))\n',
           "", ("tests/test_migrations.py",), "a format-8 file is upgraded without the index its guarded queries read"),
    Mutant("IN5", "mandala_ast/runtime/store.py",
           "        elif not _has_index(self.conn, INEXACT_INDEX_NAME):\n            self.write_transaction(lambda conn: self._add_inexact_index())\n",
           "", ("tests/test_migrations.py",),
           "a format-9 file of the previous release never gets the index: its guarded queries read every call of their op"),
    Mutant("IN3", "mandala_ast/runtime/query/tracked.py",
           "    return _INEXACT_CALLS if conn.execute(_HAS_INEXACT_INDEX_SQL).fetchone() else _ALL_CALLS",
           "    return _INEXACT_CALLS", ("tests/test_query_tracked.py",),
           "a guarded query on a format-9 file read as it is fails: no such index"),
    Mutant("IN4", "mandala_ast/runtime/store.py", "    INEXACT_INDEX,\n", "", ("tests/test_query_tracked.py",),
           "a new file lacks the index of calls not exact: its guarded queries read every call of their op"),
    Mutant("PH4", "mandala_ast/runtime/recording.py", "        if op.transient:\n            _check_transient_structures(op, structured)\n",
           "", ("tests/test_transient.py",), "an MList output of a transient op is stored whole, against transient="),
    Mutant("PH5", "mandala_ast/runtime/described.py", "    if codec == _POINTER:  # (all a pointer stores is its name)\n",
           "    if False:\n", ("tests/test_described.py",), "the command line shows a pointer as `<pointer 8 B …>`, not its name"),
    Mutant("PH6", "mandala_ast/runtime/catalog.py", "        values.append(ValuePointer(value))\n", "        pass\n",
           ("tests/test_cli_storage_commands.py",), "`calls --where data=NAME` finds no call given the pointer of that name"),
    Mutant("PH1", "mandala_ast/runtime/value_rows.py",
           "    f\" external = excluded.external WHERE val_rows.codec = '{_PLACEHOLDER}' AND excluded.codec != '{_PLACEHOLDER}'\"",
           "    f\" external = excluded.external WHERE 0\"", ("tests/test_transient.py",),
           "another process's output equal to a transient op's value is dropped: shown as not stored, computed at every load"),
    Mutant("PH2", "mandala_ast/runtime/recording.py",
           "        return cid in self.loader.placeholders and encoded.codec != transient.CODEC\n",
           "        return False\n", ("tests/test_transient.py",),
           "an output equal to a transient op's value this process stored is computed twice to be stored"),
    Mutant("PH3", "mandala_ast/runtime/loading.py",
           "        elif value is transient.NOT_STORED:\n            self.placeholders.add(cid)\n",
           "", ("tests/test_transient.py",),
           "an output equal to a transient op's value this process loaded (a hit) is computed twice to be stored"),
    Mutant("IA1", "mandala_ast/runtime/proxy.py", "        return os.fspath(force(self))\n",
           "        return force(self).__fspath__()\n", ("tests/test_transient.py",),
           "stored transient outputs in a list given to an op that runs crash it (AttributeError: no __fspath__)"),
    Mutant("IA2", "mandala_ast/runtime/recording.py", "            self._buffer_encoded(cid, element, outputs)\n",
           "            self._buffer_encoded(cid, element, True)\n", ("tests/test_transient.py",),
           "a transient output given as an element of an MList/MDict argument is stored over its placeholder"),
    Mutant("IA3", "mandala_ast/runtime/recording.py", "    if not op.transient:\n        return structures.encode_outputs(kinds, outputs, op.name)\n",
           "    if True:\n        return structures.encode_outputs(kinds, outputs, op.name)\n", ("tests/test_transient.py",),
           "transient=[i] of an op with an MList output is not heeded: that output's value is stored"),
    Mutant("IA4", "mandala_ast/runtime/pointers.py", "    codecs.pickle_stored_as(ValuePointer, _by_name)\n",
           "    pass\n", ("tests/test_pointers.py",),
           "a ValuePointer inside a list argument is stored with its object (the dataset copied into the storage)"),
    Mutant("IA5", "mandala_ast/runtime/recording.py",
           "    if pointer is not None:  # handed back with its object, as an output that cannot be stored\n",
           "    if False:\n", ("tests/test_pointers.py",),
           "an op returning a ValuePointer hands back a pointer without its object: an op given it gets None"),
    Mutant("IA6", "mandala_ast/runtime/pointers.py",
           "        for slot, value in state[1].items():\n            object.__setattr__(self, slot, value)\n        if not _made:\n",
           "        for slot, value in state[1].items():\n            object.__setattr__(self, slot, value)\n        if False:\n",
           ("tests/test_pointers.py",),
           "a pointer unpickled in a process that made none (a batch worker) reaches the op as the pointer, not its object"),
    Mutant("IA7", "mandala_ast/runtime/pointers.py", "        if _holds_pointer(value):\n",
           "        if type(value) is ValuePointer:\n", ("tests/test_pointers.py",),
           "an op returning a dict or MList of pointers hands them back without their objects"),
    Mutant("RS1", "mandala_ast/runtime/store.py",
           "    if all(flat[start] in outputs for start in starts):  # (a miss's outputs, nothing else)\n",
           "    if True:\n", ("tests/test_transient.py",),
           "a transient output passed on by a storage that forgot (a deletion) or never knew its placeholder is stored"),
    Mutant("RS2", "mandala_ast/runtime/value_rows.py",
           "        if placeholder is not None and not (placeholder and rows[start] in outputs):\n",
           "        if placeholder is not None and not placeholder:\n", ("tests/test_transient.py",),
           "a medium transient output passed on by a storage that does not know its placeholder leaves bytes no row names"),
    Mutant("RS3", "mandala_ast/runtime/recording.py",
           "            if value is not None and value.codec != transient.CODEC and cid in loader.stored:\n"
           "                loader.placeholders.add(cid)\n", "", ("tests/test_storage_limits.py",),
           "an output equal to a transient value, whose call a full disk dropped, is taken for stored when computed "
           "again: shown as not stored, computed once more at its next load"),
    Mutant("RS4", "mandala_ast/runtime/recording.py",
           "        if (cid in self.loader.stored or cid in unflushed) and not (output and self._replaces_placeholder(cid, encoded)):\n",
           "        if (cid in self.loader.stored or cid in unflushed) and not self._replaces_placeholder(cid, encoded):\n",
           ("tests/test_transient.py",),
           "an argument buffered over a placeholder its op's body came to know of: the file keeps the placeholder, this "
           "storage takes it for gone, and computes an equal output twice"),
    Mutant("RS5", "mandala_ast/runtime/recording.py", "                    output = i >= arguments\n",
           "                    output = True\n", ("tests/test_transient.py",),
           "(a batch) an argument buffered over a placeholder its op's body came to know of: an equal output computed twice"),
    Mutant("IV1", "mandala_ast/runtime/query/columns.py", "                ints[i] = _decoded(codes[i], datas[i])\n",
           "                pass\n", ("tests/test_query_columns.py",), "a pickled value among ints shows as 0"),
    Mutant("IV2", "mandala_ast/runtime/query/columns.py", "            return ints, [i for i in others if ints[i] is NOT_STORED]\n",
           "            return ints, []\n", ("tests/test_query_columns.py",),
           "a value outside its row among ints is never loaded: the table shows a marker object"),
    Mutant("RQ1", "mandala_ast/runtime/query/distinct.py",
           '    if count < _NUMPY_FROM and "numpy" not in sys.modules:\n', "    if False:\n",
           ("tests/test_query_distinct.py",), "a delete block imports numpy (~0.1 s) to find its distinct rows"),
    Mutant("RQ2", "mandala_ast/runtime/query/distinct.py",
           "    return [i for i, key in enumerate(keys) if times[key] > 1]\n",
           "    return [i for i, key in enumerate(keys) if times[key] > 2]\n",
           ("tests/test_query_distinct.py",), "without numpy, a row repeated once is shown twice"),
    Mutant("RZ1", "mandala_ast/runtime/query/columns.py",
           "            pairs = ((cid, value) for cid, value in zip(cids, values) if value is not NOT_STORED)\n",
           "            pairs = zip(cids, values)\n",
           ("tests/test_query_columns.py",),
           "a loop value, or a later output in its call row, shows as not stored when its id's values row is a transient op's"),
    Mutant("IB1", "mandala_ast/runtime/query/hooks.py", "    if is_op(f):\n        return f, args\n",
           "    if type(f) is Op:\n        return f, args\n", ("tests/test_query.py",),
           "an async op in a query or delete block is called as a plain function: nothing matches"),
    Mutant("IB2", "mandala_ast/runtime/query/pattern.py", "        yield from ()\n        return self\n",
           "        return iter(())\n", ("tests/test_query.py",),
           "`y = await fetch(x)` in a query block (the run block's code) is a TypeError"),
    Mutant("IB3", "mandala_ast/runtime/query/block.py",
           "        return _AwaitableOutputs(outputs) if type(outputs) is tuple and type(op) is AsyncOp else outputs\n",
           "        return outputs\n", ("tests/test_query.py",),
           "`a, b = await split(x)` in a query block is a TypeError"),
    Mutant("IB4", "mandala_ast/runtime/versions.py", '        self._reported.add(("op", op.name, op.version_id))\n',
           "", ("tests/test_versions.py",),
           "accept_change(op) prints that the op's calls recompute, as it keeps them"),
    Mutant("IB5", "mandala_ast/runtime/query/block.py",
           "    async def __aenter__(self) -> Query:\n",
           "    async def _not_aenter(self) -> Query:\n", ("tests/test_query.py",),
           "`async with storage.query()` (the async run block's spelling) is a TypeError"),
    Mutant("IB6", "mandala_ast/runtime/query/block.py",
           "    def call_async_op(self, op: Op, args: tuple, kwargs: dict) -> Any:\n",
           "    def _no_call_async_op(self, op: Op, args: tuple, kwargs: dict) -> Any:\n", ("tests/test_query.py",),
           "a query through a workflow runs the body of the async op it awaits on the query variable"),
    Mutant("IB7", "mandala_ast/runtime/renames.py", "        for now in (new_binding, new_state):\n",
           "        for now in (new_binding,):\n", ("tests/test_renames.py",),
           "an op calling a renamed op it now imports under the old name (`twice as inner`) computes again"),
    Mutant("IB8", "mandala_ast/runtime/renames.py",
           '        conn.execute(_ACCEPT_FOR_CALLERS, (old_state, new_state, "code", old_state))\n',
           "", ("tests/test_renames.py",),
           "an op calling a renamed op through an alias (`import inner as f`, then `twice as f`) computes again"),
    Mutant("IB9", "mandala_ast/runtime/renames.py", "    for now in (new_binding, deps.current_state(new)):\n",
           "    for now in (new_binding,):\n", ("tests/test_version_inputs.py",),
           "a helper renamed (and accepted) that callers import under its old name computes their calls again"),
    Mutant("IB10", "mandala_ast/runtime/versions.py",
           "        fingerprint = ran[0] if ran is not None else previous[1]\n",
           "        fingerprint = previous[1]\n", ("tests/test_versions.py",),
           "the recompute report diffs against a version that never computed (refused, or met by a query)"),
    Mutant("IB11", "mandala_ast/runtime/query/hooks.py",
           "        kind = tuple if isinstance(value, tuple) else type(value)\n",
           "        kind = type(value)\n", ("tests/test_query.py",),
           "an async op's outputs kept under one name show the query block's private tuple type in q.df()"),
    Mutant("IB12", "mandala_ast/runtime/file_deps.py",
           "        previous.written = {*previous.written, *body.written}\n",
           "        pass\n", ("tests/test_file_deps.py",),
           "an op whose inner op appends to a log it names depends on the log: every run that logs recomputes it"),
    Mutant("PD1", "mandala_ast/pytest.py",
           '        self.unkeyed.append("addfinalizer")\n', "", ("tests/test_pytest.py",),
           "a cached fixture registering a teardown is stored: later runs load a value whose setup never ran"),
    Mutant("PD2", "mandala_ast/cli/tables.py",
           '    if type(cell) is float and not math.isfinite(cell):\n', "    if False:\n",
           ("tests/test_cli_storage_commands.py",),
           "`calls --format json` writes NaN and Infinity bare: no JSON parser but Python's reads it"),
    Mutant("PD3", "mandala_ast/cli/storage_commands.py",
           ' and not catalog.has_input(op, column):\n', ":\n", ("tests/test_pytest.py",),
           "`calls --where request.param=2` on the pytest storage: refused, though `calls` shows that column"),
    Mutant("PD4", "mandala_ast/runtime/tables.py",
           "            found = producer_by_content(store, cid, created_at, call)\n",
           '            found = producer_by_content(store, cid, created_at, b"")\n', ("tests/test_storage.py",),
           "provenance names an op returning its argument (uncompiled `same(1)`) the producer of its own input"),
    Mutant("PD5", "mandala_ast/runtime/stored_graphs.py",
           "(p.created_at <= c.created_at AND p.id != c.id))", "(p.created_at <= c.created_at))",
           ("tests/test_storage.py",),
           "an op returning its argument is drawn feeding its own input (an edge from its output back into it)"),
)


# -- checking the list against the code ----------------------------------------------------------


def check_snippets(root: Path, mutants: list[Mutant]) -> list[str]:
    """One message per mutant whose snippet is missing or not unique in its file."""
    problems = []
    for mutant in mutants:
        if mutant.id.rstrip("0123456789") not in AREAS:  # the table would fail after the run
            problems.append(f"mutant {mutant.id}: no area for its letters in AREAS")
        path = root / mutant.file
        text = path.read_text() if path.exists() else None
        count = 0 if text is None else text.count(mutant.find)
        if count != 1:
            where = "file not found" if text is None else f"found {count} times, expected exactly once"
            problems.append(
                f"mutant {mutant.id}: snippet {where} in {mutant.file}\n"
                f"  snippet: {mutant.find!r}\n"
                f"  (update the snippet in benchmarks/mutants.py to the code's current spelling)"
            )
    return problems


# -- running --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # "killed", "survived", "equivalent", "equivalent but killed"
    detail: str  # the test that killed it, or the equivalence reason
    seconds: float


class Workspace:
    """A scratch copy of the working tree under a temp directory."""

    def __init__(self, number: int) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"mandala-mutants-{number}-"))
        for relpath in _tracked_files():
            source, target = REPO / relpath, self.root / relpath
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.root), env.get("PYTHONPATH", "")) if p)
        env.pop("PYTEST_ADDOPTS", None)
        return env

    def check_imports_the_copy(self) -> None:
        code = "import mandala_ast, sys; sys.stdout.write(mandala_ast.__file__)"
        out = subprocess.run([sys.executable, "-c", code], cwd=self.root, env=self.env(),
                             capture_output=True, text=True, check=True).stdout
        if not Path(out).resolve().is_relative_to(self.root.resolve()):
            raise SystemExit(f"the scratch copy is not what gets imported: mandala_ast from {out}")

    def pytest(self, files: tuple[str, ...], deselect: tuple[str, ...] = ()) -> tuple[bool, str]:
        """(passed?, first failure line) of ``pytest -x -q`` over ``files`` (all tests if empty)."""
        self._drop_bytecode()
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", *files]  # (serial: as measured)
        command += [f"--deselect={node}" for node in deselect]
        try:
            proc = subprocess.run(command, cwd=self.root, env=self.env(), capture_output=True,
                                  text=True, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return False, f"timeout after {TIMEOUT_SECONDS} s"
        if proc.returncode == 0:
            return True, ""
        return False, _first_failure(proc.stdout + proc.stderr, proc.returncode)

    def run(self, mutant: Mutant) -> Outcome:
        start = time.perf_counter()
        path = self.root / mutant.file
        original = path.read_text()
        path.write_text(original.replace(mutant.find, mutant.replace, 1))
        try:
            files = tuple(f for f in mutant.tests if (self.root / f).exists())
            passed, failure = self.pytest(files)
            if passed:
                passed, failure = self.suite()
        finally:
            path.write_text(original)
            self._drop_bytecode()
        seconds = time.perf_counter() - start
        if mutant.equivalent:
            status = "equivalent" if passed else "equivalent but killed"
            return Outcome(mutant, status, mutant.reason if passed else failure, seconds)
        return Outcome(mutant, "survived" if passed else "killed", failure, seconds)

    def suite(self) -> tuple[bool, str]:
        """The whole suite, where a kill must be reproducible: a test that fails in the suite
        but passes when run alone on the same mutant failed for another reason (a test with a
        deadline on a machine shared with other jobs): it is left out and the suite run again."""
        flaky: tuple[str, ...] = ()
        while True:
            passed, failure = self.pytest((), flaky)
            node = failure.removeprefix("FAILED ").removeprefix("ERROR ")
            if passed or node == failure or len(flaky) >= _FLAKY_RETRIES or not self.pytest((node,))[0]:
                return passed, failure + "".join(f" (flaky, left out: {n})" for n in flaky)
            flaky += (node,)

    def _drop_bytecode(self) -> None:
        for cache in self.root.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name]


def _first_failure(output: str, returncode: int) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0]
    for line in reversed(output.splitlines()):
        if "Error" in line:
            return f"pytest exit {returncode}: {line.strip()[:120]}"
    return f"pytest exit {returncode}"


def run_all(mutants: list[Mutant], jobs: int, run_equivalent: bool) -> list[Outcome]:
    todo: queue.Queue[Mutant] = queue.Queue()
    outcomes: list[Outcome] = []
    for mutant in mutants:
        if mutant.equivalent and not run_equivalent:
            outcomes.append(Outcome(mutant, "equivalent", mutant.reason + " (not run)", 0.0))
        else:
            todo.put(mutant)
    lock = threading.Lock()

    def worker(number: int) -> None:
        workspace = Workspace(number)
        try:
            workspace.check_imports_the_copy()
            while True:
                try:
                    mutant = todo.get_nowait()
                except queue.Empty:
                    return
                outcome = workspace.run(mutant)
                with lock:
                    outcomes.append(outcome)
                    print(f"{mutant.id}: {outcome.status} {outcome.detail} ({outcome.seconds:.0f} s)",
                          file=sys.stderr, flush=True)
        finally:
            workspace.remove()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    order = {m.id: i for i, m in enumerate(mutants)}
    return sorted(outcomes, key=lambda o: order[o.mutant.id])


def table(outcomes: list[Outcome]) -> str:
    lines = ["| id | area | description | killed by / survived |", "|---|---|---|---|"]
    for o in outcomes:
        if o.status == "killed":
            result = f"killed by `{o.detail.removeprefix('FAILED ').removeprefix('ERROR ')}`"
        elif o.status == "survived":
            result = "**survived**"
        else:
            result = f"{o.status}: {o.detail}"
        lines.append(f"| {o.mutant.id} | {o.mutant.area} | {o.mutant.description} | {result} |")
    return "\n".join(lines)


def kill_rate(outcomes: list[Outcome]) -> tuple[int, int]:
    counted = [o for o in outcomes if not o.mutant.equivalent]
    return sum(o.status == "killed" for o in counted), len(counted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--check", action="store_true", help="only check that every snippet is found")
    parser.add_argument("--jobs", type=int, default=1, help="scratch copies run side by side (default 1)")
    parser.add_argument("--run-equivalent", action="store_true",
                        help="also run mutants marked equivalent (to confirm they survive)")
    parser.add_argument("--fail-under", type=float, default=95.0, help="exit 1 below this kill rate (%%)")
    args = parser.parse_args(argv)
    mutants = list(MUTANTS)
    if args.only:
        wanted = [i.strip() for i in args.only.split(",") if i.strip()]
        unknown = sorted(set(wanted) - {m.id for m in mutants})
        if unknown:
            parser.error(f"unknown mutant ids: {', '.join(unknown)}")
        mutants = [m for m in mutants if m.id in wanted]
    if args.list:
        for m in mutants:
            flag = " [equivalent]" if m.equivalent else ""
            print(f"{m.id}  {m.area:9}  {m.file}  {m.description}{flag}")
        print(f"{len(mutants)} mutants, list version {LIST_VERSION}")
        return 0
    problems = check_snippets(REPO, mutants)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    if args.check:
        print(f"all {len(mutants)} snippets found (list version {LIST_VERSION})")
        return 0
    outcomes = run_all(mutants, args.jobs, args.run_equivalent)
    killed, counted = kill_rate(outcomes)
    rate = 100.0 * killed / counted if counted else 100.0
    print(table(outcomes))
    print(f"\nkilled {killed} of {counted} non-equivalent mutants: {rate:.1f}% "
          f"(list version {LIST_VERSION}; {sum(o.mutant.equivalent for o in outcomes)} marked equivalent)")
    return 0 if rate >= args.fail_under else 1


if __name__ == "__main__":
    sys.exit(main())
