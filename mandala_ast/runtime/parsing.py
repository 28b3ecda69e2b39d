"""``ast.parse`` for the runtime, one thread at a time.

Python 3.11's ``ast`` counts the depth of the tree it is building in state every thread
shares: a thread paused mid-tree (a garbage collection ran Python code, another thread took
its turn and parsed too) finds the count moved, and raises ``SystemError: AST constructor
recursion depth mismatch``. It came out of an op call that fingerprinted code while another
thread's op call did. The runtime parses through :func:`parse` only, under one lock; a parse
that met another one all the same (the user's own, in another thread) is parsed again.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

__all__ = ["literal", "parse"]

#: Re-entrant: a garbage collection in a parse may run code of the same thread that parses.
_LOCK = threading.RLock()
_MISMATCH = "recursion depth mismatch"


def parse(source: str | bytes, mode: str = "exec") -> Any:
    """``ast.parse(source, mode=mode)``, never at once with another parse of the runtime's."""
    with _LOCK:
        try:
            return ast.parse(source, mode=mode)
        except SystemError as error:  # met a parse of the user's, in another thread
            if _MISMATCH not in str(error):
                raise
            return ast.parse(source, mode=mode)


def literal(text: str) -> Any:
    """``ast.literal_eval(text)``, parsed by :func:`parse`."""
    return ast.literal_eval(parse(text.lstrip(" \t"), mode="eval"))
