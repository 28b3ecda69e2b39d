"""What the pytest plugin costs (targets: <= 20 ms on ``pytest --collect-only`` of a project
that uses no cached fixture; a reused cached fixture <= 5 ms beyond loading its value).

Two measurements, each a median over repeats in fresh ``pytest`` processes:

* ``collect-only``: wall time of ``pytest --collect-only`` on a project of plain tests, with
  the plugin (it loads through its entry point in every run) and with ``-p no:mandala_ast``,
  alternated run by run so that load on the machine hits both alike. Reported: both medians
  and the median of the paired differences.
* ``plugin import``: importing ``mandala_ast.pytest`` in a process that imported pytest,
  timed inside it (the part of the collect-only difference that start-up noise cannot hide).
* ``fixture setup``: a function-scoped fixture with ``--params`` params, so that it is set up
  once per test, timed inside the process by a ``pytest_fixture_setup`` wrapper. The cached
  fixture is warm (every value stored); the baseline is a plain fixture that unpickles the
  same value from a file, i.e. only "loading its value". The first setup of the session is
  reported apart: it imports the runtime and opens the storage, once per session.

Usage::

    python benchmarks/bench_pytest.py [--repeat 15] [--params 40] [--items 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMING_CONFTEST = '''
import json, time
import pytest

_TIMES = []

@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        if fixturedef.argname == "value":
            _TIMES.append(time.perf_counter() - started)

def pytest_sessionfinish(session):
    with open("times.json", "w") as out:
        json.dump(_TIMES, out)
'''

CACHED = '''
from mandala_ast.pytest import cached_fixture

@cached_fixture(params=range({params}))
def value(request):
    return [request.param] * {items}
'''

PLAIN = '''
import pickle
import pytest

@pytest.fixture(params=range({params}))
def value(request):
    with open(f"values/{{request.param}}.pkl", "rb") as data:
        return pickle.load(data)
'''

TEST = "def test_value(value):\n    assert len(value) == {items}\n"


def pytest_run(project: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project, check=True, capture_output=True,
    )
    return time.perf_counter() - started


def plain_project(root: Path, files: int = 30) -> Path:
    project = root / "plain"
    project.mkdir()
    for i in range(files):
        tests = "\n".join(f"def test_{j}():\n    assert {j} + 1 > {j}\n" for j in range(10))
        (project / f"test_plain_{i}.py").write_text(tests)
    return project


def collect_only(project: Path, repeat: int) -> tuple[float, float, float]:
    pytest_run(project, "--collect-only")  # warm .pyc files
    pytest_run(project, "--collect-only", "-p", "no:mandala_ast")
    with_plugin, without, differences = [], [], []
    for _ in range(repeat):
        a = pytest_run(project, "--collect-only")
        b = pytest_run(project, "--collect-only", "-p", "no:mandala_ast")
        with_plugin.append(a)
        without.append(b)
        differences.append(a - b)
    return statistics.median(with_plugin), statistics.median(without), statistics.median(differences)


IMPORT = """
import time, pytest, _pytest.python, _pytest.terminal
started = time.perf_counter()
import mandala_ast.pytest
print(time.perf_counter() - started)
"""


def plugin_import(repeat: int) -> float:
    """Importing the plugin module in a process that has imported pytest (what every pytest
    run pays before collecting): measured inside the process, free of start-up noise."""
    runs = [subprocess.run([sys.executable, "-c", IMPORT], check=True, capture_output=True, text=True)
            for _ in range(repeat)]
    return statistics.median(float(run.stdout) for run in runs)


def fixture_project(root: Path, name: str, fixture: str, params: int, items: int) -> Path:
    project = root / name
    (project / "values").mkdir(parents=True)
    for i in range(params):
        import pickle

        (project / "values" / f"{i}.pkl").write_bytes(pickle.dumps([i] * items))
    (project / "conftest.py").write_text(TIMING_CONFTEST + fixture.format(params=params, items=items))
    (project / "test_value.py").write_text(TEST.format(items=items))
    return project


def setup_times(project: Path, repeat: int) -> tuple[float, float]:
    """(median first setup, median of the other setups' medians), in seconds."""
    pytest_run(project)  # stores every value (cached) and warms .pyc files
    firsts, others = [], []
    for _ in range(repeat):
        pytest_run(project)
        times = json.loads((project / "times.json").read_text())
        firsts.append(times[0])
        others.append(statistics.median(times[1:]))
    return statistics.median(firsts), statistics.median(others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--params", type=int, default=40)
    parser.add_argument("--items", type=int, default=1000)
    options = parser.parse_args()
    ms = 1000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with_plugin, without, difference = collect_only(plain_project(root), options.repeat)
        imported = plugin_import(options.repeat)
        cached = fixture_project(root, "cached", CACHED, options.params, options.items)
        plain = fixture_project(root, "plain_fixture", PLAIN, options.params, options.items)
        cached_first, cached_each = setup_times(cached, options.repeat)
        plain_first, plain_each = setup_times(plain, options.repeat)
    rows = [
        ("collect-only, 300 plain tests", f"{with_plugin * ms:.1f} ms", f"{without * ms:.1f} ms",
         f"{difference * ms:+.1f} ms", "<= 20 ms"),
        ("plugin import, in-process", f"{imported * ms:.2f} ms", "0 ms", f"{imported * ms:+.2f} ms", "<= 20 ms"),
        (f"fixture setup, each ({options.items}-item list)", f"{cached_each * ms:.2f} ms",
         f"{plain_each * ms:.2f} ms", f"{(cached_each - plain_each) * ms:+.2f} ms", "<= 5 ms"),
        ("fixture setup, first of the session", f"{cached_first * ms:.1f} ms",
         f"{plain_first * ms:.1f} ms", f"{(cached_first - plain_first) * ms:+.1f} ms", "(once)"),
    ]
    header = ("measure", "mandala_ast", "baseline", "difference", "target")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"medians over {options.repeat} runs; baselines: -p no:mandala_ast, a plain fixture unpickling the value")
    for row in [header, *rows]:
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))


if __name__ == "__main__":
    main()
