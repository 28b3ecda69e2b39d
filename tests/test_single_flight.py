"""Single flight: processes missing the same call at once compute it once; a lock whose
holder was killed is broken. Real processes, real kill -9."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mandala_ast import Storage
from mandala_ast.runtime.batch.single_flight import SingleFlight

TESTS = Path(__file__).resolve().parent
SCRIPT = """
    import sys
    from batch_ops import logged_slow
    from mandala_ast import Storage

    storage = Storage({db!r}, single_flight={flight})
    print("entering", flush=True)
    with storage.{form}():
        y = logged_slow(1, {log!r}, {go!r})
    print("result", y, flush=True)
"""


def start(tmp_path: Path, form: str, flight: bool = True) -> subprocess.Popen:
    code = SCRIPT.format(db=str(tmp_path / "s.db"), log=str(tmp_path / "log"), go=str(tmp_path / "go"),
                         form=form, flight=flight)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def overlap(tmp_path: Path, forms: tuple, flight: bool = True) -> list[str]:
    """Two processes calling the same slow op while the first computes it; their outputs."""
    Storage(tmp_path / "s.db").close()  # both open an existing file
    first = start(tmp_path, forms[0], flight)
    assert first.stdout.readline().strip() == "entering"
    assert first.stdout.readline().strip() == "computing"
    second = start(tmp_path, forms[1], flight)
    assert second.stdout.readline().strip() == "entering"
    time.sleep(0.5)  # let it reach its lookup: it misses, as the first has not stored the call
    (tmp_path / "go").write_text("")
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert [o[0].splitlines()[-1] for o in outs] == ["result 2", "result 2"], outs
    return (tmp_path / "log").read_text().splitlines()


@pytest.mark.parametrize("forms", [("run", "run"), ("batch", "run"), ("run", "batch"), ("batch", "batch")])
def test_two_processes_missing_the_same_call_compute_it_once(tmp_path, forms):
    assert len(overlap(tmp_path, forms)) == 1


def test_without_single_flight_both_compute(tmp_path):
    # The control: the same overlap computes twice when the option is off.
    assert len(overlap(tmp_path, ("run", "run"), flight=False)) == 2


def test_a_lock_whose_holder_was_killed_is_broken(tmp_path):
    Storage(tmp_path / "s.db").close()
    holder = start(tmp_path, "run")
    assert holder.stdout.readline().strip() == "entering"
    assert holder.stdout.readline().strip() == "computing"
    waiter = start(tmp_path, "batch")
    holder.kill()  # kill -9 while it holds the lock
    holder.wait()
    (tmp_path / "go").write_text("")
    out, err = waiter.communicate(timeout=120)
    assert out.splitlines()[-1] == "result 2", err
    assert len((tmp_path / "log").read_text().splitlines()) == 2  # the killed one's run, then the waiter's


def test_a_lock_that_stopped_beating_is_stale(tmp_path):
    flight = SingleFlight(tmp_path / "locks", stale_after=5)
    path = flight.path(b"\x01")
    path.parent.mkdir()
    path.write_text("another-host 1")
    os.utime(path, (0, 0))  # its last heartbeat: long ago
    assert flight.acquire(b"\x01") and path.read_text() == flight.me
    flight.release(b"\x01")
    assert not path.exists()


def test_a_live_holder_keeps_its_lock(tmp_path):
    flight = SingleFlight(tmp_path / "locks")
    other = SingleFlight(tmp_path / "locks")
    assert flight.acquire(b"\x02") and not other.acquire(b"\x02")
    flight.release(b"\x02")
    assert other.acquire(b"\x02")
    other.release(b"\x02")
