"""examples/batch.py, the README's batch example on every executor, runs as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_batch_example_runs_on_every_executor_and_loads_the_second_time(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "examples" / "batch.py"), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines[:4]] == ["None", "threads", "processes", "ThreadPoolExecutor"]
    assert all("best=990.0" in line for line in lines)
    assert "dispatched=0" not in lines[0]  # computed: a fresh folder
    assert all("dispatched=0" in line for line in lines[1:4])  # loaded: nothing dispatched


def test_the_batch_example_run_twice_dispatches_nothing_the_second_time(tmp_path):
    """Its docstring promised that a second run loads everything; each run wrote to a new
    temporary folder, so every run computed it all again."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.run([sys.executable, str(REPO / "examples" / "batch.py"), str(tmp_path)], env=env,
                           capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[-1].stderr
    first, second = (run.stdout.splitlines() for run in runs)
    assert "dispatched=0" not in first[0]
    assert second and all("dispatched=0" in line for line in second), second
