"""State the script sets before an op runs, against state the op bodies move as they run.

``helpers.set_k(7)`` called by the script (code outside any op body) before the op is an
input of the op's calls, like an argument: a stored call computed with ``K = 5`` must not be
served. A counter or a cache that the op bodies (or the helpers they call) move as they run
is not: a new process, which does not repeat those calls, must still find what the first
one stored. Each run is a new interpreter (with its own ``PYTHONHASHSEED``) running the
script as the user edited it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

HELPERS = '''
K = 3
COUNT = 0
CACHE = {}

def set_k(v):
    global K
    K = v

def scaled(x):
    return x * K

def scaled_by_name(x):
    return x * globals()["k".upper()]

class Model:
    K = 3

    @classmethod
    def set_k(cls, v):
        cls.K = v

    def scaled(self, x):
        return x * getattr(self, "k".upper())

    def scaled_directly(self, x):
        return x * self.K

    N = 0

    @classmethod
    def tick(cls):
        cls.N += 1
        return 0

    def calls(self):
        return self.N

def bump():
    global COUNT
    COUNT += 1
    return 0

def count():
    return COUNT

def load(x):
    if x not in CACHE:
        CACHE[x] = x * 10
    return CACHE[x]

def cached(x):
    return CACHE.get(x, -1)

class Config:
    def __init__(self):
        self.k = 3

CONFIG = Config()

def configure(k):
    CONFIG.k = k

def rate(x):
    return x * CONFIG.k
'''

SCRIPT = '''
import sys
from mandala_ast import op, Storage
import helpers

RUNS = []

@op
def f(x):
    RUNS.append(x)
    return {expression}

@op
def plain(x):
    RUNS.append(("plain", x))
    return x + 1

storage = Storage("s.db")
{before}
with storage.run():
    print("OUT", {calls})
{after}
print("RUNS", RUNS)
'''

REBOUND = {
    "a helper reading the global": ("helpers.set_k({k})", "helpers.scaled(x)"),
    "a read by a computed name": ("helpers.set_k({k})", "helpers.scaled_by_name(x)"),
    "a class attribute a classmethod sets": ("helpers.Model.set_k({k})", "helpers.Model().scaled(x)"),
    "a class attribute a classmethod sets, read as self.K": ("helpers.Model.set_k({k})", "helpers.Model().scaled_directly(x)"),
}
READS = {**REBOUND, "an object a function changes in place": ("helpers.configure({k})", "helpers.rate(x)")}


class Script:
    """helpers.py and script.py in a scratch directory, the script run in new interpreters."""

    def __init__(self, root: Path, expression: str) -> None:
        self.root, self.expression, self.seed = root, expression, 0
        (root / "helpers.py").write_text(textwrap.dedent(HELPERS))

    def run(self, before: str = "", calls: str = "[f(x) for x in [1, 2]]", after: str = "") -> tuple[list, list]:
        """The script as the user edited it: ``before`` the block, ``after`` it (in the same
        process); the outputs printed by the first block and the calls computed."""
        source = SCRIPT.format(expression=self.expression, before=before, calls=calls, after=after)
        (self.root / "script.py").write_text(source)
        self.seed += 1
        proc = subprocess.run(
            [sys.executable, "script.py"], cwd=self.root, capture_output=True, text=True,
            env={"PYTHONPATH": f"{self.root}:{REPO}", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
                 "PYTHONHASHSEED": str(self.seed)},
        )
        if proc.returncode:
            raise AssertionError(proc.stderr)
        lines = proc.stdout.splitlines()
        return [eval(line[4:]) for line in lines if line.startswith("OUT ")], eval(next(
            line[5:] for line in lines if line.startswith("RUNS ")))


@pytest.mark.parametrize("kind", list(READS))
def test_a_value_the_script_sets_before_the_op_recomputes_when_changed(tmp_path, kind):
    """``set_k(5)`` then ``set_k(7)`` in the script's next version: the calls stored with
    ``K = 5`` were served (10 for ``f(2)``), as state functions write counted by the text
    defining it, which the script's call does not change."""
    setter, expression = READS[kind]
    script = Script(tmp_path, expression)
    assert script.run(setter.format(k=5)) == ([[5, 10]], [1, 2])
    assert script.run(setter.format(k=5)) == ([[5, 10]], [])  # a new process setting the same: hits
    assert script.run(setter.format(k=7)) == ([[7, 14]], [1, 2])
    assert script.run(setter.format(k=5)) == ([[5, 10]], [])
    assert script.run() == ([[3, 6]], [1, 2])  # not set: the module's own K = 3
    assert script.run(setter.format(k=3)) == ([[3, 6]], [])  # set to what the module says: the same


@pytest.mark.parametrize("kind", list(READS))
def test_a_value_the_script_sets_between_blocks_of_one_process_recomputes(tmp_path, kind):
    setter, expression = READS[kind]
    script = Script(tmp_path, expression)
    after = f"{setter.format(k=7)}\nwith storage.run():\n    print('OUT', [f(x) for x in [1, 2]])\n"
    assert script.run(setter.format(k=5), after=after) == ([[5, 10], [7, 14]], [1, 2, 1, 2])
    assert script.run(setter.format(k=7)) == ([[7, 14]], [])


@pytest.mark.parametrize("kind", list(REBOUND))
def test_a_value_the_script_sets_between_calls_of_one_block_recomputes(tmp_path, kind):
    """The warm hit of ``f(2)`` was answered from memory, the value set since unseen; an op
    that reads no such state still hits what the block computed before. (Changed in place,
    it is seen at the next block, as a constant changed in place is.)"""
    setter, expression = REBOUND[kind]
    script = Script(tmp_path, expression)
    calls = f"[plain(1), f(2), {setter.format(k=7)}, f(2), plain(1)]"
    assert script.run(setter.format(k=5), calls=calls) == ([[2, 10, None, 14, 2]], [("plain", 1), 2, 2])
    assert script.run(setter.format(k=5), calls=calls) == ([[2, 10, None, 14, 2]], [])


@pytest.mark.parametrize(
    "expression", ["helpers.bump() + x * 10 + 0 * helpers.count()", "helpers.load(x) + 0 * helpers.cached(x)",
                   "helpers.Model.tick() + x * 10 + 0 * helpers.Model().calls()"],
    ids=["a counter", "a cache", "a counter kept on a class"])
def test_state_the_op_bodies_move_hits_in_a_second_block_and_in_a_new_process(tmp_path, expression):
    """``bump`` moves ``COUNT`` (``load`` fills ``CACHE``) as the calls run, and ``count``
    reads it: counted by its value as the bodies left it, every call of the next block and
    of a new process (which starts from ``COUNT = 0``) was computed again."""
    script = Script(tmp_path, expression)
    again = "with storage.run():\n    print('OUT', [f(x) for x in [1, 2, 3]])\n"
    assert script.run(calls="[f(x) for x in [1, 2, 3]]", after=again) == ([[10, 20, 30], [10, 20, 30]], [1, 2, 3])
    assert script.run(calls="[f(x) for x in [1, 2, 3]]") == ([[10, 20, 30]], [])
    assert script.run(calls="[f(x) for x in [3, 1]]") == ([[30, 10]], [])


def test_a_call_computed_after_the_script_changed_state_in_place_within_a_block_is_not_served_for_the_old_value(tmp_path):
    """``configure(7)`` changes ``CONFIG.k`` in place between two calls of one block: the
    second call, computed with 7, was stored under the setting seen at the block's entry (5),
    and a later process configuring 5 was served its result, 14 for ``f(2)``."""
    script = Script(tmp_path, "helpers.rate(x)")
    assert script.run("helpers.configure(5)", calls="[f(1), helpers.configure(7), f(2)]") == ([[5, None, 14]], [1, 2])
    assert script.run("helpers.configure(5)", calls="[f(2)]") == ([[10]], [2])
    assert script.run("helpers.configure(7)", calls="[f(2)]") == ([[14]], [])
