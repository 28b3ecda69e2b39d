"""Ops that draw from numpy's or Python's global random state are reported (runtime/global_random.py)."""

from __future__ import annotations

import random
import threading
import warnings

import numpy as np
import pytest

from mandala_ast import MandalaRandomWarning, Storage, op
from mandala_ast.runtime import global_random


@op
def noisy_numpy(x: int) -> float:
    return float(np.random.rand()) + x


@op
def noisy_python(x: int) -> float:
    return random.random() + x


@op
def seeded(x: int) -> float:
    return float(np.random.default_rng(x).random())


@op
def inner_noisy(x: int) -> float:
    return random.random() + x


@op
def outer_quiet(x: int) -> float:
    return inner_noisy(x) + 1


def _warnings_of(storage: Storage, fn, *xs) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with storage.run():
            for x in xs:
                fn(x)
    return [str(w.message) for w in caught if issubclass(w.category, MandalaRandomWarning)]


def test_an_op_drawing_from_numpys_global_random_state_is_reported_once(tmp_path):
    """np.random.seed(1) instead of seed(0) found the calls stored under seed 0, silently:
    the global state is no argument. The op that draws from it is named, once."""
    said = _warnings_of(Storage(tmp_path / "s.db"), noisy_numpy, 1, 2)
    assert len(said) == 1
    assert "noisy_numpy" in said[0]
    assert "numpy's global random state" in said[0] and "np.random.default_rng(seed)" in said[0]


def test_an_op_drawing_from_pythons_global_random_state_is_reported(tmp_path):
    said = _warnings_of(Storage(tmp_path / "s.db"), noisy_python, 1)
    assert len(said) == 1 and "Python's global random state (random.*)" in said[0]


def test_an_op_drawing_from_its_own_seeded_generator_is_not_reported(tmp_path):
    assert _warnings_of(Storage(tmp_path / "s.db"), seeded, 1, 2) == []


def test_the_op_that_drew_is_named_not_the_op_that_called_it(tmp_path):
    said = _warnings_of(Storage(tmp_path / "s.db"), outer_quiet, 5)
    assert len(said) == 1 and "inner_noisy" in said[0] and "outer_quiet" not in said[0]


def test_a_body_is_not_blamed_for_what_another_threads_body_draws():
    """Two bodies running at once share the generators: neither is judged."""
    mine = global_random.start()
    other: list = []

    def draw() -> None:
        watch = global_random.start()
        random.random()
        other.append(global_random.stop(watch))

    thread = threading.Thread(target=draw)
    thread.start()
    thread.join()
    assert global_random.stop(mine) == [] and other == [[]]


@pytest.mark.parametrize("draw", [lambda: np.random.rand(312), lambda: [random.getrandbits(32) for _ in range(624)]],
                         ids=["numpy", "python"])
def test_draws_that_bring_the_position_back_to_where_it_was_are_seen(draw):
    """312 doubles from numpy are 624 words: the position in the key is where it was, the key
    itself was made anew."""
    watch = global_random.start()
    draw()
    assert global_random.stop(watch) != []
