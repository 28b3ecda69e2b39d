"""Worker processes end with the process that started them, without a thread of their own on
Linux (orphans.py). Real processes, real kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from batch_ops import fork_warnings

from mandala_ast import Storage

TESTS = Path(__file__).parent
LINUX = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc")


def test_an_op_body_forking_in_a_batch_worker_gets_no_warning_about_threads(tmp_path):
    # From Python 3.12 os.fork() warns in a process with a thread: the worker's thread
    # watching its parent made every body that forks (or starts a pool) warn.
    with Storage(tmp_path / "s.db").batch(executor="processes", progress=False):
        said = [fork_warnings(x) for x in range(2)]
    assert said == [[], []]


def _child(script: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


#: A pool whose workers were started by a thread that then ended, used again from the main
#: thread; prints the workers' pids, then waits to be killed.
_POOL_FROM_A_THREAD = """
    import os, threading, time
    from concurrent.futures import ProcessPoolExecutor
    from mandala_ast.runtime.batch.orphans import exit_with_parent

    pool = ProcessPoolExecutor(max_workers=1, initializer=exit_with_parent)
    first = []
    starter = threading.Thread(target=lambda: first.append(pool.submit(os.getpid).result()))
    starter.start(); starter.join()
    time.sleep(0.5)  # the signal the starter's end sent the worker is handled meanwhile
    print(first[0], pool.submit(os.getpid).result(), flush=True)
    time.sleep(600)
"""


@LINUX
def test_a_worker_outlives_the_thread_that_started_it_and_not_its_process():
    child = _child(_POOL_FROM_A_THREAD)
    worker = 0
    try:
        line = child.stdout.readline()
        assert line, child.communicate()
        first, again = map(int, line.split())
        worker = first
        assert first == again  # the same worker: the end of its starting thread did not end it
        child.kill()
        child.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
    finally:
        child.kill()
        child.communicate()
        if worker and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
