"""``storage.why`` explains a miss by what changed, and by the stored call nearest to it
(runtime/explaining.py)."""

from __future__ import annotations

import itertools

import numpy as np

from mandala_ast import Storage, op

_ticks = itertools.count()


class Config:
    """A config that stamps itself when made: equal settings, another id each time."""

    def __init__(self, lr: float) -> None:
        self.lr = lr
        self.created = next(_ticks)


@op
def train(cfg, epochs: int = 3):
    return cfg.lr * epochs


@op
def fit(data, seed: int, scale: float = 1.0):
    return float(np.sum(data)) * scale + seed


def test_a_miss_beside_a_call_with_an_equal_looking_config_names_the_attribute_that_differs(tmp_path) -> None:
    """"Why did it recompute? I passed the same config": `why` said only "never computed",
    though a stored call differed from it in nothing but the config's creation stamp."""
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        train(Config(0.1))
    stamped = Config(0.1)
    found = storage.why(train, stamped)
    assert found.startswith("miss: ") and "was never computed" in found
    assert found.endswith(
        "the stored call nearest to it differs in 1 of its 2 arguments:\n"
        f"  cfg: .created differs (stored {stamped.created - 1}, here {stamped.created})"
    )


def test_each_argument_that_differs_is_said(tmp_path) -> None:
    storage = Storage(tmp_path / "s.db")
    data = np.zeros(4)
    with storage.run():
        fit(data, 1)
    changed = data.copy()
    changed[2] = 7.0
    found = storage.why(fit, changed, 1, scale=0.5)
    assert found.endswith(
        "differs in 2 of its 3 arguments:\n"
        "  data: the array: 1 of 4 elements differ, first at [2] (stored 0.0, here 7.0)\n"
        "  scale: it differs (stored 1.0, here 0.5)"
    ), found


def test_a_miss_sharing_no_argument_with_any_stored_call_says_no_more(tmp_path) -> None:
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        fit(np.zeros(2), 1, 2.0)
    found = storage.why(fit, np.ones(2), 5, 3.0)
    assert found.startswith("miss: ") and found.endswith(f"was never computed in {storage!r}"), found


def _pair(x: int):  # one function, decorated with and without nout=
    return (x, x + 1)


def test_why_after_nout_changed_says_the_output_count_changed_not_never_computed(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        op(_pair)(1)
    why = str(storage.why(op(nout=2)(_pair), 1))
    assert why.startswith("miss") and "never computed" not in why
    assert "had 1 output(s); it has 2 now (nout= changed)" in why


def test_why_after_nout_was_taken_off_again_says_so(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        op(nout=2)(_pair)(1)
    why = str(Storage(tmp_path / "s.db").why(op(_pair), 1))
    assert "had 2 output(s); it has 1 now (nout= changed)" in why and "version=" not in why
