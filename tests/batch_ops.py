"""Ops for the batch tests, importable by name so that worker processes can run them."""

from __future__ import annotations

import os
import threading
import time

from mandala_ast import MList, op

#: Bodies run in this process (no executor, threads): appended as they run.
RUNS: list = []
#: Set by `release`, awaited by `wait_for_release`: proves a call was dispatched while another
#: was still running.
RELEASED = threading.Event()
#: Two calls that each wait here can only both pass if they run at the same time.
BARRIER = threading.Barrier(2, timeout=30)


@op
def inc(x):
    RUNS.append(("inc", x))
    return x + 1


@op
def add(a, b):
    RUNS.append(("add", a, b))
    return a + b


@op
def pair(x) -> tuple[int, int]:
    RUNS.append(("pair", x))
    return x, -x


@op
def fails(x):
    RUNS.append(("fails", x))
    raise ValueError(f"bad {x}")


@op
def meet(x):
    """Passes only when another call of it runs at the same time."""
    BARRIER.wait()
    return x


@op
def wait_for_release(x):
    if not RELEASED.wait(30):
        raise TimeoutError("release() was never dispatched")
    return x


@op
def release(x):
    RELEASED.set()
    return x


@op
def slow(x, seconds=0.01):
    time.sleep(seconds)
    return x


@op
def die_if(x, bad):
    """Kills its own worker process with SIGKILL when x == bad (a crash, an OOM kill)."""
    if x == bad:
        os.kill(os.getpid(), 9)
    return x * 10


#: One exception object for every call that fails: an op that raises a prepared error.
SHARED_FAILURE = LookupError("no such record")


@op
def fails_with_the_shared_error(x):
    raise SHARED_FAILURE


@op
def fails_once(x, folder):
    """Fails the first time it runs for ``x`` (in any process: a file marks it), then answers:
    a flaky download, a rate-limited API."""
    tried = os.path.join(folder, f"tried-{x}")
    if not os.path.exists(tried):
        open(tried, "w").close()
        raise ConnectionError(f"try {x} again")
    return x * 10


@op
def dies_once(x, folder):
    """Kills its own worker the first time it runs for ``x`` (in any process: a file marks
    it), then answers, leaving a file that says so."""
    tried = os.path.join(folder, f"tried-{x}")
    if not os.path.exists(tried):
        open(tried, "w").close()
        os.kill(os.getpid(), 9)
    open(os.path.join(folder, f"answered-{x}"), "w").close()
    return x * 10


@op
def fails_if(x, bad):
    if x == bad:
        raise ValueError(f"bad {x}")
    return x * 10


@op
def unpicklable_if(x, bad):
    """Returns, when x == bad, a value that cannot be sent back from a worker process."""
    return threading.Lock() if x == bad else x * 10


def _refuse_to_load(x):
    raise ValueError(f"cannot rebuild {x}")


class LoadsBackBadly:
    """Pickles fine; loading its pickle raises (a __setstate__ that checks a version, say)."""

    def __init__(self, x):
        self.x = x

    def __reduce__(self):
        return (_refuse_to_load, (self.x,))


@op
def unloadable_if(x, bad):
    """Returns, when x == bad, a value whose pickle cannot be loaded by the coordinator."""
    return LoadsBackBadly(x) if x == bad else x * 10


@op
def pid(x):
    return os.getpid()


@op
def hold(x, stop_file):
    """Says it started (on stdout), then runs until ``stop_file`` exists."""
    print(f"holding {x}", flush=True)
    while not os.path.exists(stop_file):
        time.sleep(0.02)
    return x


@op
def rendezvous(x, folder, count):
    """Passes only when ``count`` calls (in any processes) are running at the same time."""
    open(os.path.join(folder, str(x)), "w").close()
    deadline = time.monotonic() + 30
    while len(os.listdir(folder)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(os.listdir(folder))} of {count} calls ran at once")
        time.sleep(0.01)
    return x


#: How many `fetch` bodies are awaiting at once, and the most there ever were.
ACTIVE = {"now": 0, "most": 0}


@op
async def fetch(x, seconds=0.0):
    """An async op (a web or LLM API call, say)."""
    import asyncio

    RUNS.append(("fetch", x))
    ACTIVE["now"] += 1
    ACTIVE["most"] = max(ACTIVE["most"], ACTIVE["now"])
    try:
        await asyncio.sleep(seconds)
    finally:
        ACTIVE["now"] -= 1
    return x * 2


@op
def logged_slow(x, log, go):
    """Appends this process's pid to ``log``, says so, then runs until ``go`` exists."""
    with open(log, "a") as file:
        file.write(f"{os.getpid()}\n")
    print("computing", flush=True)
    while not os.path.exists(go):
        time.sleep(0.02)
    return x + 1


@op
def outer(x):
    """An op whose body calls another op: a dependency, memoized as in a run block."""
    RUNS.append(("outer", x))
    return inc(x) * 10


@op
def tasks_on_cluster(x, at_least):
    """Waits until the scheduler holds ``at_least`` tasks (its own included): a downstream
    call was submitted while this one still runs. True if it saw them."""
    from distributed import get_client

    client = get_client()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        count = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        if count >= at_least:
            return True
        time.sleep(0.01)
    return False


@op
async def flaky(x):
    """Fails on its first run in this process (a rate-limited API, say), then answers."""
    import asyncio

    RUNS.append(("flaky", x))
    await asyncio.sleep(0.02)
    if RUNS.count(("flaky", x)) == 1:
        raise RuntimeError("rate limited")
    return x


# -- ops of every recording path, for comparing the rows batch and run blocks store -----------


@op
def squares(n: int) -> MList[int]:
    """A structure output: an ``__item__`` call per element."""
    return [i * i for i in range(n)]


@op
def total(xs: MList[int]) -> int:
    return sum(xs)


@op
def scaled(x, factor=3):
    """A default: left out of the call's identity while it has its first value."""
    return x * factor


@op(transient=True)
def forgotten(x):
    """A transient output: its id is stored, not its value."""
    return [x] * 3


@op
def appended(xs):
    """Mutates its argument: the value stored is the one passed in, not the mutated one."""
    xs.append(len(xs))
    return len(xs)


@op
def big(x):
    """An output of 1 MiB: stored as a file beside the database."""
    return bytes([x]) * (1 << 20)


@op
def listed(n):
    return list(range(n))


@op
def append_99(xs):
    """Changes its argument in place (a common slip), then answers from it."""
    RUNS.append(("append_99", list(xs)))
    xs.append(99)
    return len(xs)


@op
def summed(xs):
    RUNS.append(("summed", list(xs)))
    return sum(xs)


@op
def summed_first(pair):
    """Sums the list held first in ``pair`` (a list given inside another argument)."""
    RUNS.append(("summed_first", list(pair[0])))
    return sum(pair[0])


class Shapes:
    """Ops as static and class methods, `@op` written above the method decorator."""

    SIDES = 4

    @op
    @staticmethod
    def square(x):
        return x * x

    @op
    @classmethod
    def perimeter(cls, side):
        return cls.SIDES * side


@op
def first_item(data, i):
    """A call of a wide batch that shares one large argument (a dataset) with the others."""
    return i


class HoldsALock(Exception):
    """An exception that cannot be pickled (it holds a lock)."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


class TwoArguments(Exception):
    """An exception that pickles but cannot be unpickled (its __init__ wants two arguments)."""

    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")


@op
def raises_unsendable_if(x, bad, kind):
    """Raises, when x == bad, an exception a worker process cannot send back as it is."""
    if x == bad:
        raise HoldsALock(f"lock trouble at {x}") if kind == "lock" else TwoArguments(x, "b")
    return x * 10


@op
def logged_briefly(x, log):
    """Appends ``x`` to ``log`` (one line a run of its body), briefly busy."""
    with open(log, "a") as file:
        file.write(f"{x}\n")
    time.sleep(0.005)
    return x + 1


#: Set to make `interrupted_once` raise KeyboardInterrupt (as Ctrl-C in its body would), once.
INTERRUPT = {"next": False}


@op
def interrupted_once(x):
    if INTERRUPT["next"]:
        INTERRUPT["next"] = False
        raise KeyboardInterrupt
    return x + 1


class Scaler:
    """A model of the user's own, passed to an op: the op's code names none of its methods."""

    def __init__(self, factor):
        self.factor = factor

    def apply(self, x):
        return self.factor * x + 1


@op
def evaluate_model(model, x):
    return model.apply(x)


class Prompter(Scaler):
    """A model whose method an async op awaits (inherited methods count too)."""

    async def ask(self, x):
        return self.apply(x)


@op
async def ask_model(model, x):
    return await model.ask(x)


@op
async def call_async(fn, x):
    return fn(x)


#: A model of the user's at module level, which an async op reads by name.
MODULE_SCALER = Scaler(3)


@op
async def ask_module_model(x):
    return MODULE_SCALER.apply(x)


def _doubled(x, verbose=False):  # one function, decorated with and without ignore=
    RUNS.append(("doubled", x))
    return x * 2


doubled = op(_doubled)
#: ``doubled`` once its ``verbose`` is declared no part of what it computes
doubled_ignoring_verbose = op(ignore="verbose")(_doubled)


class Pipeline:
    """An object of the user's holding a model: the op runs the model's methods through it."""

    def __init__(self, model):
        self.model = model


@op
async def run_held_model(pipeline, x):
    return pipeline.model.apply(x)


@op
def fork_warnings(x):
    """Forks (as a body starting a process of its own does) and returns the warnings that gave."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    return [str(w.message) for w in caught]


#: What `ends_with` raises: BaseExceptions that are not Exceptions (an op body, or a library
#: it calls, may raise them: sys.exit(), a generator's close, a KeyboardInterrupt re-raised).
ENDINGS = {"exit": lambda: SystemExit(3), "generator": GeneratorExit, "interrupt": KeyboardInterrupt}


@op
def ends_with(x, bad, kind):
    """Raises ``ENDINGS[kind]()`` when x == bad."""
    if x == bad:
        raise ENDINGS[kind]()
    return x * 10
