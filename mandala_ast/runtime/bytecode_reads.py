"""The name chains code reads, from its bytecode: for code that has no source to parse.

Code given to ``python -c``, text run by ``exec``, a function whose file was edited after it
was imported: its fingerprint is taken from its bytecode (fingerprints.py), and the globals
it reads are found here, as ``("CFG", "k")`` for ``CFG.k``, where its syntax tree would give
them. Without them a constant such code reads was no dependency at all: ``K = 5`` made
``K = 7`` on the command line served the results computed with 5.
"""

from __future__ import annotations

import dis
import functools
import types
from collections.abc import Iterator

__all__ = ["bytecode_chains", "nested_codes"]

#: Instructions that read a global by name (LOAD_NAME: code run at a module's top level).
_GLOBAL_READS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
#: Instructions that read an attribute of what the instruction before pushed.
_ATTRIBUTE_READS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})


@functools.lru_cache(maxsize=1024)
def bytecode_chains(code: types.CodeType) -> tuple[tuple[str, ...], ...]:
    """Each global ``code`` (and code nested in it: comprehensions, inner functions) reads,
    with the attributes read off it at once: ``K`` -> ``("K",)``, ``np.pi`` -> ``("np", "pi")``."""
    chains: dict[tuple[str, ...], None] = {}  # (first seen first, once)
    for current in nested_codes(code):
        chain: list[str] = []
        for instruction in dis.get_instructions(current):
            if chain and instruction.opname in _ATTRIBUTE_READS:
                chain.append(instruction.argval)
                continue
            if chain:
                chains[tuple(chain)] = None
            chain = [instruction.argval] if instruction.opname in _GLOBAL_READS else []
        if chain:
            chains[tuple(chain)] = None
    return tuple(chains)


def nested_codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and the code nested in it (comprehensions, lambdas, inner functions, classes)."""
    pending = [code]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
