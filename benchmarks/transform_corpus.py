"""Run ``transform_source`` over every .py file of the stdlib and site-packages.

Two passes per file, on 2 worker processes:

* **plain**: the file as it is. None of these files mention ``mandala_ast``, so each must come
  back identical (the prefilter path: it measures what an import hook pays per foreign module).
* **forced**: the file plus a trailing ``import mandala_ast``, so that every ``with X:``
  statement and ``with X.run()`` is treated as a storage block and rewritten (stress test of the
  rewrite on real code). Each result must be line-stable (checked by the transform itself) and
  must compile whenever the original compiles. ``TransformError`` (libcst cannot parse) is the
  only exception allowed; those fallbacks are counted and listed. Every line the rewrite did
  not add code to must come back byte-identical (libcst's printer is not lossless: its
  ``except (A) :`` loses a space); the lines so checked are counted.

Then a cold single-file measurement on a generated, fully mandala module.

Usage: ``python benchmarks/transform_corpus.py [--workers 2] [--limit N]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import site
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

from mandala_ast.transforms import TransformError, transform_source

MARK = "\nimport mandala_ast\n"


def corpus() -> list[Path]:
    """Every .py file under the stdlib and site-packages directories (deduplicated)."""
    roots = {Path(sysconfig.get_paths()["stdlib"]), *map(Path, site.getsitepackages())}
    files: set[Path] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            if "site-packages" in path.parts and root.name != "site-packages":
                continue  # the stdlib root may contain a site-packages of its own
            files.add(path.resolve())
    return sorted(files)


def check_file(path: Path) -> dict:
    """Both passes on one file; returns counters and any problem found."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")  # Python drops a BOM, and so does decoding
    except (OSError, UnicodeDecodeError):
        return {"skipped": 1}
    out = {"files": 1, "lines": text.count("\n") + 1, "problems": [], "fallbacks": []}
    start = time.perf_counter()
    try:
        plain = transform_source(data, str(path))
    except TransformError as exc:  # e.g. a test file with a bogus coding cookie
        out["fallbacks"].append(f"{path} (plain): {str(exc).splitlines()[0][:120]}")
    else:
        if plain.changed or plain.source != text:
            out["problems"].append(f"{path}: plain pass changed the text")
    out["plain_s"] = time.perf_counter() - start
    forced_text = text + MARK
    start = time.perf_counter()
    try:
        forced = transform_source(forced_text, str(path))
    except TransformError as exc:
        out["fallbacks"].append(f"{path}: {str(exc).splitlines()[0][:120]}")
        forced = None
    except Exception as exc:  # a transform bug: report, do not stop the run
        out["problems"].append(f"{path}: {type(exc).__name__}: {exc}")
        forced = None
    out["forced_s"] = time.perf_counter() - start
    if forced is not None:
        out["changed"] = int(forced.changed)
        if forced.changed and _compiles(forced_text):
            error = _compile_error(forced.source)
            if error:
                out["problems"].append(f"{path}: rewritten source does not compile: {error}")
        elif not forced.changed and forced.source != forced_text:
            out["problems"].append(f"{path}: unchanged result differs from its input")
        if forced.changed:
            identity = _untouched_identity(path, forced_text, forced.source)
            out["problems"] += identity.pop("problems")
            out.update(identity)
    return out


def _untouched_identity(path: Path, old: str, new: str) -> dict:
    """Lines that gained no code must be byte-identical: counts and the differences found."""
    checked, differences = 0, []
    pairs = zip(old.splitlines(keepends=True), new.splitlines(keepends=True))
    for number, (before, after) in enumerate(pairs, start=1):
        if "".join(before.split()) != "".join(after.split()):
            continue  # the rewrite added code to this line
        checked += 1
        if before != after:
            differences.append(f"{path}:{number}: untouched line changed: {before!r} -> {after!r}")
    return {"identity_files": 1, "identity_lines": checked, "problems": differences}


def _compiles(text: str) -> bool:
    return _compile_error(text) is None


def _compile_error(text: str) -> str | None:
    try:
        compile(text, "<corpus>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def merge(results: list[dict]) -> dict:
    total: dict = {"files": 0, "lines": 0, "skipped": 0, "changed": 0, "plain_s": 0.0, "forced_s": 0.0,
                   "identity_files": 0, "identity_lines": 0, "problems": [], "fallbacks": []}
    for result in results:
        for key, value in result.items():
            total[key] += value
    return total


def cold_single_file(blocks: int = 400) -> tuple[int, float]:
    """Lines and seconds for one fresh process transforming a generated mandala module."""
    block = textwrap.dedent(
        """\
        with storage.run():
            for n in [100, 1000]:
                data = load(n)
                model = train(data, alpha=0.1)
                acc = evaluate(model, data)
                if acc > 0.9:
                    print(n, acc)
            w = add(inc(1), inc(inc(2)))
            w = w + 1
        """
    )
    source = "import mandala_ast\n" + block * blocks
    script = (
        "import sys, time; t = time.perf_counter();"
        "from mandala_ast.transforms import transform_source;"
        "r = transform_source(sys.stdin.read());"
        "print(time.perf_counter() - t, r.changed)"
    )
    output = subprocess.run([sys.executable, "-c", script], input=source, capture_output=True,
                            text=True, check=True).stdout.split()
    assert output[1] == "True"
    return source.count("\n"), float(output[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="only the first N files")
    args = parser.parse_args()
    files = corpus()[: args.limit or None]
    start = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        total = merge(pool.map(check_file, files, chunksize=8))
    wall = time.perf_counter() - start
    report(total, wall, args.workers)
    lines, seconds = cold_single_file()
    print(f"cold single file (new process, includes importing libcst): {lines} lines in "
          f"{seconds:.2f} s = {lines / seconds:,.0f} lines/s")
    if total["problems"]:
        sys.exit(1)


def report(total: dict, wall: float, workers: int) -> None:
    lines = total["lines"]
    print(f"files: {total['files']} (skipped, not UTF-8: {total['skipped']}), lines: {lines:,}")
    print(f"wall time, {workers} workers: {wall:.1f} s")
    print(f"{'pass':<8}{'cpu s':>10}{'lines/s (1 core)':>20}")
    for name in ("plain", "forced"):
        cpu = total[f"{name}_s"]
        print(f"{name:<8}{cpu:>10.2f}{lines / cpu:>20,.0f}")
    print(f"forced pass: {total['changed']} files rewritten, {len(total['fallbacks'])} TransformError fallbacks")
    for line in total["fallbacks"][:20]:
        print(f"  fallback: {line}")
    print(f"untouched-line identity: {total['identity_files']} rewritten files, "
          f"{total['identity_lines']:,} untouched lines checked, "
          f"{sum('untouched line changed' in p for p in total['problems'])} differences")
    print(f"problems: {len(total['problems'])}")
    for line in total["problems"][:50]:
        print(f"  PROBLEM: {line}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
