"""A pattern with guards and derived expressions, a column at a time (query/table.py), gives
the rows, values, content ids and matched calls the row-wise evaluation gives.

Queries are drawn by a seeded random generator: `if`/`elif`/`else` chains, derived columns over
ints, floats (NaN, -0.0, inf), bools, None and strings, chained comparisons, `and`/`or`/`not`,
arithmetic, builtins that cannot be vectorised, calls under an `if`, expressions as an op's
argument (`other(i + 1)`: matched row by row), tuple loops, and expressions that raise for some
rows (a division by zero, `None + 1`). The stored data and every query are real: one
SQLite file, one compiled module.
"""

from __future__ import annotations

import math
import random
import sys

import pytest

import mandala_ast
from mandala_ast import Storage
from mandala_ast.runtime.query.table import table, takes

OPS = '''
from mandala_ast import Q, op

INTS = [0, 1, -3, 7, 2, 5, -1, 12, 0, 3]
FLOATS = [0.5, -0.0, 0.0, float("nan"), float("inf"), 2.5, -1.25, 3.0, 1e300, 7.0]
MIXED = [1, 2.5, None, True, "s", "", 2**70, float("nan"), False, -4]

@op
def ints(i):
    return INTS[i % len(INTS)]

@op
def floats(i):
    return FLOATS[i % len(FLOATS)]

@op
def mixed(i):
    return MIXED[i % len(MIXED)]

@op
def bools(i):
    return i % 3 == 0

@op
def other(i):
    return i * 2

def build(storage):
    with storage.run():
        for i in range(20):
            a = ints(i)
            f = floats(i)
            m = mixed(i)
            b = bools(i)
            if i % 4 != 1 and i < 12:
                c = other(i)
                if i < 6:
                    e = other(c)
'''

NUMBERS = ["a", "a", "a", "f", "f", "i", "i", "0", "1", "2", "-1", "2.5", "0.0"]
TRUTHS = ["b", "b", "True", "False"]
#: Now and then an operand of another kind: None, a str, a huge int, a mixed column.
WILD = ["m", "m", "None", "'s'", "2 ** 70", "r0"]
ARITHMETIC = ["+", "-", "*", "/", "//", "%", "&", "|", "^"]
COMPARISONS = ["==", "!=", "<", "<=", ">", ">="]
#: What a call under test takes: expressions matched against its stored input, row by row.
ARGUMENTS = ["i + 1", "i - 1", "i * 2", "a + i", "i // 2", "abs(a)"]


def number(rng: random.Random, depth: int) -> str:
    """An expression that is mostly numeric."""
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(WILD if rng.random() < 0.08 else NUMBERS)
    e = lambda: number(rng, depth - 1)  # noqa: E731
    kind = rng.choice(["arithmetic"] * 4 + ["unary", "call", "condition"])
    if kind == "arithmetic":
        return f"({e()} {rng.choice(ARITHMETIC[:4] if rng.random() < 0.7 else ARITHMETIC)} {e()})"
    if kind == "unary":
        return rng.choice([f"(-{e()})", f"abs({e()})", f"(~{e()})", f"(+{e()})"])
    if kind == "call":
        return rng.choice([f"max({e()}, {e()})", f"round({e()})", f"len(str({e()}))", f"float({e()})"])
    return truth(rng, depth - 1)


def truth(rng: random.Random, depth: int) -> str:
    """An expression that is mostly a bool."""
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(WILD if rng.random() < 0.08 else TRUTHS)
    kind = rng.choice(["compare"] * 3 + ["bool", "bool", "not", "call"])
    if kind == "compare":
        chain = " ".join(f"{rng.choice(COMPARISONS)} {number(rng, depth - 1)}" for _ in range(rng.randint(1, 2)))
        return f"({number(rng, depth - 1)} {chain})"
    if kind == "bool":
        return f"({truth(rng, depth - 1)} {rng.choice(['and', 'or'])} {truth(rng, depth - 1)})"
    if kind == "not":
        return f"(not {truth(rng, depth - 1)})"
    return rng.choice([f"({number(rng, depth - 1)} is None)", f"({number(rng, depth - 1)} in [1, 2.5, None])"])


def expression(rng: random.Random, depth: int) -> str:
    return number(rng, depth) if rng.random() < 0.5 else truth(rng, depth)


def query_source(rng: random.Random, k: int) -> str:
    lines = [f"def query_{k}(storage):", "    with storage.query() as q:", "        i = Q()",
             "        a = ints(i)", "        f = floats(i)", "        m = mixed(i)", "        b = bools(i)"]
    lines.append(f"        r0 = {expression(rng, 3)}")
    if rng.random() < 0.15:  # an expression as an op's argument: a row filter
        lines.append(f"        d = other({rng.choice(ARGUMENTS)})")
    branches = ["if"] + ["elif"] * rng.randint(0, 1) + (["else"] if rng.random() < 0.5 else [])
    for branch in branches:
        head = "else:" if branch == "else" else f"{branch} {truth(rng, 2)}:"
        lines.append(f"        {head}")
        lines.append(f"            r1 = {expression(rng, 3)}")
        if rng.random() < 0.5:
            lines.append(f"            c = other({rng.choice(['i'] * 12 + ARGUMENTS)})")
            if rng.random() < 0.5:  # unmatched with c where c's argument is not its input
                lines.append("            e = other(c)")
        if rng.random() < 0.3:
            lines.append(f"            if {truth(rng, 2)}:")
            lines.append(f"                r2 = {expression(rng, 2)}")
    lines.append(f"        r3 = {expression(rng, 3)}")
    if rng.random() < 0.2:  # a tuple loop: i and k from the same item
        head = "        for i, k in [(0, 2), (1, 3), (2, 3), (3, 0), (4, 6)]:"
        lines = lines[:2] + [head, "            g = other(k)"] + ["    " + line for line in lines[3:]]
    lines.append("    return q")
    return "\n".join(lines)


QUERIES = 200


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    rng = random.Random(20261206)
    source = OPS + "\n\n" + "\n\n".join(query_source(rng, k) for k in range(QUERIES)) + "\n"
    (folder / "table_queries.py").write_text(source)
    module = mandala_ast.compile_module(folder / "table_queries.py", name="table_queries")
    storage = Storage(folder / "results.db")
    module.build(storage)
    yield module, storage
    sys.modules.pop("table_queries", None)


def same(found, expected) -> bool:
    if type(found) is not type(expected):
        return False
    if isinstance(found, float):
        return repr(found) == repr(expected) or (math.isnan(found) and math.isnan(expected))
    return found == expected


def reference(query, names: list[str], ids: bool):
    try:
        return "value", query.row_table(names, ids)
    except Exception as exc:
        return "raises", type(exc)


@pytest.mark.parametrize("ids", [False, True], ids=["values", "ids"])
def test_a_pattern_a_column_at_a_time_is_the_row_wise_table(generated, ids: bool) -> None:
    module, storage = generated
    rng = random.Random(7)
    by_columns = 0
    for k in range(QUERIES):
        try:
            query = getattr(module, f"query_{k}")(storage)
        except Exception:  # a constant expression raised while the block ran: no pattern
            continue
        compiled = query._compile()
        assert takes(query.pattern, compiled)
        names = list(query.pattern.columns)
        # a subset of the columns: rows that differ only elsewhere are shown once
        names = rng.sample(names, rng.randint(1, len(names)))
        expected = reference(query, names, ids)
        rows = storage._store.conn.execute(compiled.sql, compiled.params).fetchall()
        found = table(storage, query.pattern, compiled, rows, names, ids)
        if expected[0] == "raises":
            assert found is None, (k, names)  # never a table where the block's logic raises
            continue
        if found is None:  # computed for every row, an expression raised where no row needed it
            continue
        by_columns += 1
        columns, calls = found
        expected_columns, expected_calls = expected[1]
        assert [len(c) for c in columns] == [len(c) for c in expected_columns], k
        for name, column, expected_column in zip(names, columns, expected_columns):
            assert all(map(same, column, expected_column)), (k, name, column, expected_column)
        assert list(calls) == list(expected_calls), k
    assert by_columns > QUERIES // 4  # (the others raise, as the row-wise table does)
