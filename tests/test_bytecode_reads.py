"""The globals code reads, found in its bytecode (runtime/bytecode_reads.py): the dependencies of
code that has no source to parse (``python -c``, ``exec``, a file edited after its import)."""

from __future__ import annotations

import math

from mandala_ast.runtime.bytecode_reads import bytecode_chains, nested_codes

K = 5


class CFG:
    k = 3


def reads_a_constant_and_an_attribute(x):
    return x * K + CFG.k


def calls_a_module_function(x):
    local = 2
    return math.floor(x) + local


def reads_in_a_comprehension_and_an_inner_function(xs):
    def inner(y):
        return y + K

    return [inner(x) + CFG.k for x in xs]


def test_a_global_and_an_attribute_chain_read_off_it() -> None:
    chains = bytecode_chains(reads_a_constant_and_an_attribute.__code__)
    assert ("K",) in chains and ("CFG", "k") in chains


def test_a_method_call_names_its_module_and_function_and_no_local() -> None:
    chains = bytecode_chains(calls_a_module_function.__code__)
    assert ("math", "floor") in chains
    assert not any("local" in chain or "x" in chain for chain in chains)


def test_reads_in_nested_code_count_for_the_code_around_it() -> None:
    outer = reads_in_a_comprehension_and_an_inner_function.__code__
    assert len(list(nested_codes(outer))) >= 2  # the inner function (and, before 3.12, the comprehension)
    chains = bytecode_chains(outer)
    assert ("K",) in chains and ("CFG", "k") in chains


def test_code_run_at_a_modules_top_level_reads_names_too() -> None:
    # exec'd text reads its globals with LOAD_NAME, not LOAD_GLOBAL.
    code = compile("y = K * 2\nz = CFG.k\n", "<string>", "exec")
    chains = bytecode_chains(code)
    assert ("K",) in chains and ("CFG", "k") in chains
    assert ("y",) not in chains


def test_each_chain_once_in_the_order_first_read() -> None:
    code = compile("a = K + K\nb = CFG.k + K\n", "<string>", "exec")
    assert bytecode_chains(code) == (("K",), ("CFG", "k"))
