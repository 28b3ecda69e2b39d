"""Awaited op calls in compiled run blocks record their inputs' history as plain calls do.

Each module is compiled with the real transform (``compile_user``) and run on a real SQLite
file; what the store records for ``y = await f(x); z = await g(y)`` is compared with what it
records for the same code written with plain ops.
"""

from __future__ import annotations

import asyncio
import sqlite3
import textwrap

from mandala_ast import Storage

OPS = '''\
from mandala_ast import op

RUNS = []


@op(version={version})
async def f(x: int) -> int:
    RUNS.append("f")
    return x + 1


@op
async def g(y: int) -> int:
    RUNS.append("g")
    return y * 2


@op
async def split(y: int) -> tuple[int, int]:
    return y // 2, y % 2


@op(version={version})
def fs(x: int) -> int:
    return x + 1


@op
def gs(y: int) -> int:
    return y * 2


@op
def add(a: int, b: int) -> int:
    return a + b

'''


def compiled(compile_user, body: str, version: int = 1, prefix: str = "m"):
    """The ops above and ``async def main(storage)`` running *body* in a run block."""
    main = "async def main(storage):\n    with storage.run():\n" + textwrap.indent(textwrap.dedent(body), " " * 8)
    return compile_user(OPS.format(version=version) + main, prefix)


def recorded(path, op_name: str) -> list[tuple]:
    """Per stored call of *op_name*: (exact, input name, producer op or None, history id is
    the content id)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT c.exact, i.name, sv.op_name, c.lkey = c.cid FROM calls c"
            " JOIN versions v ON v.version_id = c.version_id"
            " JOIN call_inputs i ON i.call_id = c.id"
            " LEFT JOIN calls s ON s.id = i.src_call LEFT JOIN versions sv ON sv.version_id = s.version_id"
            " WHERE v.op_name LIKE ? ORDER BY c.id, i.name", ("%." + op_name,)).fetchall()
    finally:
        conn.close()


def producer_names(rows: list[tuple]) -> list[tuple]:
    return [(exact, name, producer.rpartition(".")[2] if producer else None, plain) for exact, name, producer, plain in rows]


def test_an_awaited_op_call_records_the_awaited_call_that_produced_its_input(tmp_path, compile_user):
    # Stored by content (exact 0, no producer, history id = content id): provenance and
    # queries following history lost the link from g back to f.
    module = compiled(compile_user, "y = await f(1)\nz = await g(y)\na = fs(1)\nb = gs(a)\n")
    asyncio.run(module.main(Storage(tmp_path / "s.db")))
    assert producer_names(recorded(tmp_path / "s.db", "g")) == [(1, "y", "f", 0)]
    assert producer_names(recorded(tmp_path / "s.db", "gs")) == [(1, "y", "fs", 0)]  # as plain ops
    assert producer_names(recorded(tmp_path / "s.db", "f")) == [(1, "x", None, 1)]


def test_an_awaited_op_call_s_history_id_shows_a_changed_upstream_op_version(tmp_path, compile_user):
    body = "y = await f(1)\nz = await g(y)\na = fs(1)\nb = gs(a)\n"
    for version in (1, 2):
        module = compiled(compile_user, body, version, prefix=f"v{version}")
        asyncio.run(module.main(Storage(tmp_path / f"{version}.db")))
    history = {}
    for name in ("g", "gs"):
        ids = []
        for version in (1, 2):
            conn = sqlite3.connect(tmp_path / f"{version}.db")
            ids.append(conn.execute("SELECT c.lkey FROM calls c JOIN versions v ON v.version_id = c.version_id"
                                    " WHERE v.op_name LIKE ?", ("%." + name,)).fetchone()[0])
            conn.close()
        history[name] = ids[0] != ids[1]
    assert history == {"g": True, "gs": True}


def test_the_outputs_of_an_awaited_call_of_several_outputs_carry_its_history(tmp_path, compile_user):
    module = compiled(compile_user, "y = await f(3)\na, b = await split(y)\nc = add(a, b)\nd = await g(a)\n")
    asyncio.run(module.main(Storage(tmp_path / "s.db")))
    assert producer_names(recorded(tmp_path / "s.db", "split")) == [(1, "y", "f", 0)]
    assert producer_names(recorded(tmp_path / "s.db", "add")) == [(1, "a", "split", 0), (1, "b", "split", 0)]
    assert producer_names(recorded(tmp_path / "s.db", "g")) == [(1, "y", "split", 0)]


def test_awaited_calls_with_history_are_found_again_without_running(tmp_path, compile_user):
    module = compiled(compile_user, "y = await f(1)\nz = await g(y)\n")
    for _ in range(2):
        asyncio.run(module.main(Storage(tmp_path / "s.db")))
    assert module.RUNS == ["f", "g"]
    assert producer_names(recorded(tmp_path / "s.db", "g")) == [(1, "y", "f", 0)]


def test_a_name_bound_to_a_literal_then_to_awaited_outputs_is_given_as_raw_exactly(tmp_path, compile_user):
    # As with plain ops: `y = 3` is raw while y holds it, so f(y) is exact, not matched by content.
    module = compiled(compile_user, "y = 3\ny = await f(y)\nz = await g(y)\n")
    asyncio.run(module.main(Storage(tmp_path / "s.db")))
    assert producer_names(recorded(tmp_path / "s.db", "f")) == [(1, "x", None, 1)]
    assert producer_names(recorded(tmp_path / "s.db", "g")) == [(1, "y", "f", 0)]
