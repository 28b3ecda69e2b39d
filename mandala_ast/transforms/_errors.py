"""Errors raised by the transform.

Hierarchy::

    Exception
     └── TransformError        the source cannot be rewritten: the caller compiles the original
          └── LineShiftError   the rewrite would move original code to another line

Both mean "fail open": the caller (``mandala_ast.compiler``) compiles the original source, so a
real ``SyntaxError`` is reported by Python itself, exactly as without the compiler.
"""

from __future__ import annotations

__all__ = ["LineShiftError", "TransformError"]


class TransformError(Exception):
    """libcst could not parse or decode the source, or the rewrite is unusable."""


class LineShiftError(TransformError):
    """The rewritten text would put original code on a different line."""
