"""runtime/processes.py: whether a pid still runs here."""

import os
import subprocess
import sys

from mandala_ast.runtime.processes import is_running


def test_this_process_runs_and_a_finished_child_does_not():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    assert is_running(os.getpid())
    assert not is_running(child.pid)
