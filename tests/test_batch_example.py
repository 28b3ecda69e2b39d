"""examples/batch.py, the README's batch example on every executor, runs as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_batch_example_runs_on_every_executor_and_loads_the_second_time():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "examples" / "batch.py")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines[:4]] == ["None", "threads", "processes", "ThreadPoolExecutor"]
    assert all("best=990.0" in line for line in lines)
    assert all("dispatched=0" in line for line in lines[1:4])  # loaded: nothing dispatched
