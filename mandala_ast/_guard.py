"""The re-entrancy guard shared by the import hook and the compiler.

A module of its own so that the hook can check it without importing the compiler: installing
the hook must stay cheap (the compiler, blake3 and the cache are loaded on the first import
that is actually compiled).
"""

from __future__ import annotations

import contextvars

__all__ = ["TRANSFORMING"]

#: True while this thread runs the transform or writes a cache file; the finder then declines
#: every import, so libcst's lazy imports cannot re-enter the hook (pytest #3506, PR #14844).
TRANSFORMING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "mandala_ast_transforming", default=False
)
