"""The batch's progress bar: drawn on a terminal, silent into a pipe or with progress=False."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("tqdm")

TESTS = Path(__file__).resolve().parent
SCRIPT = """
    from batch_ops import inc
    from mandala_ast import Storage

    storage = Storage()
    with storage.run():
        inc(0)
    with storage.batch(executor="threads", progress={progress}):
        ys = [inc(x) for x in range(3)]
        bad = inc("x")          # fails: str + int
"""


def run_on(tmp_path: Path, progress: object, terminal: bool) -> str:
    """What a batch script writes to stderr, a pseudo-terminal or a pipe."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    env.pop("TQDM_DISABLE", None)
    code = textwrap.dedent(SCRIPT.format(progress=progress))
    if not terminal:
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              timeout=120).stderr
    leader, follower = pty.openpty()
    # A terminal 120 columns wide (a fresh pseudo-terminal has 0: tqdm would draw nothing).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=follower, stdout=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_shows_done_loaded_failed_and_running(tmp_path):
    shown = run_on(tmp_path, None, terminal=True)
    assert "batch" in shown
    assert "done=2" in shown and "loaded=1" in shown and "failed=1" in shown and "running=0" in shown


def test_a_pipe_gets_no_bar(tmp_path):
    shown = run_on(tmp_path, True, terminal=False)
    assert "TypeError" in shown and "batch:" not in shown and "running=" not in shown


def test_progress_false_draws_nothing_on_a_terminal(tmp_path):
    shown = run_on(tmp_path, False, terminal=True)
    assert "TypeError" in shown and "running=" not in shown
