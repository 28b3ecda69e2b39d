"""ValuePointer: an argument keyed and stored by its name (pointers.py)."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from mandala_ast import (
    MandalaRepairWarning,
    MandalaUnstoredWarning,
    MList,
    Storage,
    ValuePointer,
    op,
)

RUNS: list[int] = []


@op
def mean(data) -> float:
    RUNS.append(len(data))
    return float(np.mean(data))


def test_the_op_receives_the_object_and_the_call_keys_on_the_name(tmp_path):
    path = tmp_path / "s.db"
    big = np.arange(1_000_000, dtype=np.float64)
    with Storage(path).run():
        assert mean(ValuePointer("numbers", big)) == big.mean()
    with sqlite3.connect(path) as conn:
        sizes = [row[0] for row in conn.execute("SELECT size FROM vals WHERE codec = 'pointer'")]
    assert sizes == [len(b"numbers")]  # the name is stored, not 8 MB of numbers
    assert not (tmp_path / "s.db.blobs").exists() or not any((tmp_path / "s.db.blobs").rglob("*.*"))


def test_another_object_under_the_same_name_is_a_hit(tmp_path):
    """Documented: the name is the user's promise that it stands for this content."""
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        first = mean(ValuePointer("numbers", np.arange(10.0)))
        second = mean(ValuePointer("numbers", np.zeros(3)))
        third = mean(ValuePointer("numbers-v2", np.zeros(3)))
    assert first == second == 4.5 and third == 0.0
    assert RUNS[-2:] == [10, 3]


def test_a_stored_pointer_loads_as_its_name_in_another_process(tmp_path):
    path = tmp_path / "s.db"
    with Storage(path).run():
        mean(ValuePointer("numbers", [1.0, 2.0]))
    code = (
        "import sys; from mandala_ast.runtime.storage import Storage; from mandala_ast import op\n"
        "@op\ndef mean(data): pass\n"
        "mean.name = 'test_pointers.mean'\n"
        f"print(list(Storage({str(path)!r}).df(mean)['data']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[ValuePointer('numbers')]"


def test_outside_blocks_the_op_also_receives_the_object():
    assert mean(ValuePointer("numbers", [2.0, 4.0])) == 3.0


@op
def repeated(data) -> bytes:
    return bytes(data) * (1 << 20)  # 2 MiB: stored as a value file


def test_a_damaged_output_file_of_a_call_taking_a_pointer_is_repaired(tmp_path):
    path = tmp_path / "s.db"
    with Storage(path).run():
        expected = repeated(ValuePointer("ab", b"ab"))
    (stored,) = [p for p in (tmp_path / "s.db.blobs").rglob("*") if p.is_file()]
    stored.write_bytes(b"x" * stored.stat().st_size)  # same size, other bytes
    with pytest.warns(MandalaRepairWarning), Storage(path).run():
        assert repeated(ValuePointer("ab", b"ab")) == expected  # computed again from b"ab"
    assert stored.read_bytes() == expected


@op
def count_all(data: list) -> int:
    return sum(len(part.value) if isinstance(part, ValuePointer) else len(part) for part in data)


@pytest.mark.parametrize("holder", [list, tuple])
def test_a_pointer_inside_a_list_argument_stores_its_name_not_its_object(tmp_path, holder):
    # The list was pickled whole, and a pointer's pickle holds its object: 8 MB of numbers
    # copied into the storage under a name that promised they live elsewhere.
    path = tmp_path / "s.db"
    big = np.arange(1_000_000, dtype=np.float64)
    with Storage(path).run():
        assert count_all(holder([ValuePointer("numbers", big), [1, 2]])) == 1_000_002
    with sqlite3.connect(path) as conn:
        assert max(size for size, in conn.execute("SELECT size FROM vals")) < 1000
    assert not (tmp_path / "s.db.blobs").exists() or not any((tmp_path / "s.db.blobs").rglob("*.*"))
    stored = Storage(path).df(count_all)["data"].item()
    assert stored == holder([ValuePointer("numbers"), [1, 2]]) and stored[0].value is None
    with Storage(path).run():  # a hit, on the name
        assert count_all(holder([ValuePointer("numbers", np.zeros(3)), [1, 2]])) == 1_000_002


@op
def point(n: int):
    return ValuePointer(f"numbers-{n}", np.arange(float(n)))


@op
def points(n: int) -> MList[ValuePointer]:
    return [ValuePointer(f"numbers-{n}", np.arange(float(n)))]


@op
def named_point(n: int) -> dict:
    return {"numbers": ValuePointer(f"numbers-{n}", np.arange(float(n)))}


@pytest.mark.parametrize(("maker", "first"), [(point, lambda out: out), (points, lambda out: out[0]),
                                             (named_point, lambda out: out["numbers"])])
def test_an_op_returning_a_pointer_gives_back_its_object_unstored_and_says_so(tmp_path, maker, first):
    # A pointer is stored by its name, and an output comes back as it is stored: the block got
    # a pointer without its object, and an op given it got None.
    with Storage(tmp_path / "s.db").run():
        with pytest.warns(MandalaUnstoredWarning, match=rf"{maker.__name__}, output 0: a ValuePointer"):
            numbers = first(maker(4))
        assert numbers.name == "numbers-4" and np.array_equal(numbers.value, np.arange(4.0))
        assert mean(numbers) == 1.5
    assert Storage(tmp_path / "s.db").df(maker).empty  # computed again next time


def test_a_pointer_unpickled_in_a_process_that_made_none_reaches_the_op_as_its_object(tmp_path):
    # As a batch's worker process gets one another process made: the op was given the pointer
    # (len() of it failed), and a list holding it was stored with its object.
    code = (
        "import pickle, sqlite3, sys\nfrom mandala_ast import Storage, op\n"
        "@op\ndef size(data) -> int:\n    return len(data)\n"
        "pointer = pickle.loads(open(sys.argv[2], 'rb').read())\n"
        "with Storage(sys.argv[1]).run():\n    print(size(pointer), size([pointer]))\n"
        "print(max(n for n, in sqlite3.connect(sys.argv[1]).execute('SELECT size FROM vals')))\n"
    )
    (tmp_path / "pointer.pickle").write_bytes(pickle.dumps(ValuePointer("numbers", list(range(100_000)))))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.db"), str(tmp_path / "pointer.pickle")],
                         capture_output=True, text=True, check=True)
    sizes, largest = out.stdout.split("\n")[:2]
    assert sizes == "100000 1" and int(largest) < 1000
