"""Whether an op's body drew numbers from a process-wide random generator.

numpy's legacy generator (``np.random.rand``, ``np.random.shuffle``, and the libraries that
use it: scikit-learn's ``random_state=None``) and Python's (``random.random``) hold a state
that no argument of the op holds: the seed a script sets (``np.random.seed(0)``) is not part
of a call's key, so a changed seed finds the calls stored under the old one. A body that
draws from one is reported once per op and process (:class:`MandalaRandomWarning`), on the
run that computes it, with what to write instead.

Reading a generator's state through its API costs 50-100 µs (numpy's ``get_state``, Python's
``getstate`` build 624 numbers), more than a miss, and even copying its 2.5 kB cost ~5 µs a
miss; two of its words are read instead, in place: its position in its key array, which
every draw moves, and the key's first word, which changes when the key is made anew after
624 words (numpy's MT19937 state through its ``ctypes`` address; Python's ``Random`` object
at the offset where its memory was found to hold what its own ``getstate()`` gives). Where
that cannot be checked, the generator is not watched.
Bodies running in other threads at the same time draw from the same generators: a body is
judged only when none ran in another thread meanwhile.
"""

from __future__ import annotations

import ctypes
import operator
import struct
import sys
import threading
import warnings
from typing import Any

from .._errors import MandalaRandomWarning
from .stacklevel import user_stacklevel

__all__ = ["Watch", "report", "start", "stop"]

#: MT19937: 624 key words and the position in them
_WORDS = 624
_NAMES = ("numpy", "random")
_SPELLED = {"numpy": "numpy's global random state (np.random.*)", "random": "Python's global random state (random.*)"}

#: (name, its generator, its state as 625 words, where its position is, where its key starts)
#: of each generator watched; looked for again when a module was imported since (numpy.random
#: is imported on first use)
_watched: list[tuple[str, Any, memoryview, int, int]] = []
_modules_seen = [-1]
#: reads the two words of each watched generator (:func:`_reader`), made again with _watched
_read: list[Any] = [tuple]
#: op bodies running, by thread; and bodies started so far, in every thread
_running: dict[int, int] = {}
_started = [0]
_reported: set[str] = set()
_NOTHING: list[str] = []

Watch = tuple[tuple, int]


def start() -> Watch | None:
    """Before a body: the watched generators' positions and how many bodies had started;
    None while a body runs in another thread (what it draws would be ours)."""
    thread = threading.get_ident()
    running = _running
    running[thread] = running.get(thread, 0) + 1
    _started[0] += 1
    if len(running) > 1:
        return None
    try:
        return _states(), _started[0]
    except RecursionError:  # (counted as started all the same: stop counts it out)
        return None


def stop(watch: Watch | None) -> list[str]:
    """After the body ``start`` watched: the generators it drew from. None said if another
    body started meanwhile (one it called, or another thread's): the draws may be theirs."""
    thread = threading.get_ident()
    depth = _running[thread] - 1
    if depth:
        _running[thread] = depth
    else:
        del _running[thread]
    if watch is None or _started[0] != watch[1] or len(_running) > (1 if depth else 0):
        return _NOTHING
    now = _states()
    if now == watch[0]:
        return _NOTHING
    return [found[0] for found, was, is_ in zip(_watched, watch[0], now) if was != is_]


def report(op_name: str, drawn: list[str]) -> None:
    """Warn, once per op and process, that ``op_name``'s body drew from ``drawn``."""
    if not drawn or op_name in _reported:
        return
    _reported.add(op_name)
    names = " and ".join(_SPELLED[name] for name in drawn)
    warnings.warn(
        f"op {op_name} drew numbers from {names}: that generator's state is no argument, so its "
        "stored results do not change with the seed your script sets (np.random.seed(...), "
        "random.seed(...)), and are found again after it changed. Give the op a seed argument "
        "and draw from a generator made from it (np.random.default_rng(seed), random.Random(seed))",
        MandalaRandomWarning,
        stacklevel=user_stacklevel(),
    )


def _states() -> tuple:
    if len(sys.modules) != _modules_seen[0]:
        _modules_seen[0] = len(sys.modules)
        _watched[:] = [found for name in _NAMES if (found := _found(name)) is not None]
        _read[0] = _reader(_watched)
    return _read[0]()


def _reader(watched: list[tuple[str, Any, memoryview, int, int]]) -> Any:
    """A function giving ``((position, key word), ...)`` of each generator in ``watched``,
    without a Python loop: every miss reads them twice (a list of tuples built by a
    comprehension cost ~0.3 µs a read, the itemgetters half of that)."""
    reads = [(operator.itemgetter(position, key), words) for _, _, words, position, key in watched]
    if not reads:
        return tuple
    if len(reads) == 1:
        (get, words), = reads
        return lambda: (get(words),)
    (get_a, words_a), (get_b, words_b) = reads  # (two generators are watched at most)
    return lambda: (get_a(words_a), get_b(words_b))


def _found(name: str) -> tuple[str, Any, memoryview, int, int] | None:
    """The generator ``name`` and its state's memory; None while its module is not imported
    (a memoizing process need not import numpy) or where the memory cannot be checked."""
    module = sys.modules.get("numpy.random" if name == "numpy" else "random")
    if module is None:
        return None
    try:
        # numpy's legacy singleton's bit generator (numpy >= 1.25), and the Random instance
        # whose bound methods the random module's functions are
        generator = module.get_bit_generator() if name == "numpy" else module.random.__self__
        words = _numpy_words(generator) if name == "numpy" else _random_words(generator)
    except Exception:  # another numpy, another interpreter: not watched
        return None
    if words is None:
        return None
    return (name, generator, words, _WORDS, 0) if name == "numpy" else (name, generator, words, 0, 1)


def _numpy_words(bits: Any) -> memoryview | None:
    """The MT19937 state of numpy's global ``RandomState``: its key, then its position."""
    state = bits.state
    if state.get("bit_generator") != "MT19937":
        return None
    words = (ctypes.c_uint32 * (_WORDS + 1)).from_address(bits.ctypes.state_address)
    key, position = state["state"]["key"], state["state"]["pos"]
    if list(words[:_WORDS]) != [int(word) for word in key] or words[_WORDS] != position:
        return None
    return memoryview(words).cast("B").cast("I")


def _random_words(generator: Any) -> memoryview | None:
    """CPython's ``RandomObject``: its position, then its key, found where its memory holds
    what ``getstate()`` gives."""
    _, (*key, position), _ = generator.getstate()
    memory = ctypes.string_at(id(generator), type(generator).__basicsize__)
    offset = memory.find(struct.pack(f"={_WORDS}I", *key))
    if offset < 4 or offset % 4 or struct.unpack_from("=i", memory, offset - 4)[0] != position:
        return None
    return memoryview((ctypes.c_uint32 * (_WORDS + 1)).from_address(id(generator) + offset - 4)).cast("B").cast("I")
