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


def start(tmp_path: Path, form: str, flight: bool = True, db: Path | None = None) -> subprocess.Popen:
    code = SCRIPT.format(db=str(db or tmp_path / "s.db"), log=str(tmp_path / "log"), go=str(tmp_path / "go"),
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


def test_two_processes_opening_one_file_by_two_names_compute_a_call_once(tmp_path):
    """One through a symlink, one by the file's own name: their locks went beside the names
    they were given, so neither saw the other's, and both computed the call."""
    Storage(tmp_path / "s.db").close()
    (tmp_path / "latest.db").symlink_to(tmp_path / "s.db")
    first = start(tmp_path, "run", db=tmp_path / "latest.db")
    assert first.stdout.readline().strip() == "entering"
    assert first.stdout.readline().strip() == "computing"
    second = start(tmp_path, "run")
    assert second.stdout.readline().strip() == "entering"
    time.sleep(0.5)  # let it reach its lookup: it misses, as the first has not stored the call
    (tmp_path / "go").write_text("")
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert [o[0].splitlines()[-1] for o in outs] == ["result 2", "result 2"], outs
    assert len((tmp_path / "log").read_text().splitlines()) == 1


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


OVERLAPPING_BATCH = """
    import os, sys, time
    from batch_ops import logged_briefly
    from mandala_ast import Storage

    storage = Storage({db!r}, single_flight=True)
    while not os.path.exists({go!r}):  # both start at once
        time.sleep(0.001)
    with {block}:
        ys = [logged_briefly(x, {log!r}) for x in range(200)]
    print(sum(ys))
"""


@pytest.mark.parametrize("block", ['storage.batch(executor="threads", max_concurrency=2, progress=False)',
                                   "storage.run()"], ids=["batch", "run"])
def test_two_processes_running_the_same_calls_at_once_compute_each_once(tmp_path, block):
    """A batch looks its wave up first, then takes each missing call's lock: a call the other
    process computed, committed and released in between was computed again (a third of the
    calls, twice). Both blocks, once they held a lock the other let go of, looked the call up
    where this process had seen it missing a moment before (misses are answered from memory
    for 50 ms after the file last changed), so they computed it again too."""
    Storage(tmp_path / "s.db").close()
    code = textwrap.dedent(OVERLAPPING_BATCH.format(db=str(tmp_path / "s.db"), go=str(tmp_path / "go"),
                                                    log=str(tmp_path / "log"), block=block))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    both = [subprocess.Popen([sys.executable, "-c", code], env=env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) for _ in range(2)]
    time.sleep(1.0)  # (only makes the overlap likelier: both wait for the go file either way)
    (tmp_path / "go").write_text("")
    outs = [p.communicate(timeout=300) for p in both]
    assert [out.split() for out, _ in outs] == [["20100"], ["20100"]], outs
    runs = (tmp_path / "log").read_text().split()
    assert sorted(runs, key=int) == [str(x) for x in range(200)]


@pytest.mark.parametrize("form", ["batch", "run"])
def test_ctrl_c_in_a_body_lets_go_of_the_calls_lock(tmp_path, form):
    """A batch computing a call in this process kept its lock after a KeyboardInterrupt in
    the body; the heartbeat kept it fresh, so running the cell again waited 10 minutes for
    the lock this very process held."""
    from batch_ops import INTERRUPT, interrupted_once

    storage = Storage(tmp_path / "s.db", single_flight=True)
    block = storage.batch(progress=False) if form == "batch" else storage.run()
    INTERRUPT["next"] = True
    with pytest.raises(KeyboardInterrupt):
        with block:
            y = interrupted_once(1)
    assert list((tmp_path / "s.db.locks").iterdir()) == []
    with storage.batch(progress=False) if form == "batch" else storage.run():
        y = interrupted_once(1)
    assert y == 2


@pytest.mark.parametrize("form", ["run", "batch"])
def test_a_full_disk_met_taking_a_calls_lock_computes_the_call_unlocked(tmp_path, form):
    """A raw OSError (No space left on device) came out of the lock's creation, and the empty
    lock file it left made other processes wait for it. A lock may cost time, never a result:
    the call is computed unlocked, and handed back with a warning as any unstored miss."""
    from batch_ops import inc
    from disks import tmpfs

    from mandala_ast import MandalaUnstoredWarning

    with tmpfs(tmp_path / "disk", "2m") as disk:
        storage = Storage(disk / "s.db", single_flight=True)
        with storage.run():
            assert inc(1) == 2
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as handle, pytest.raises(OSError):
            while True:
                handle.write(b"\0" * 65536)
        block = storage.run() if form == "run" else storage.batch(progress=False)
        with pytest.warns(MandalaUnstoredWarning, match="batch_ops.inc"):
            with block:
                y = inc(2)
        assert y == 3
        assert list((disk / "s.db.locks").iterdir()) == []
        filler.unlink()
        with storage.run():
            assert (inc(1), inc(2)) == (2, 3)
        storage.close()
