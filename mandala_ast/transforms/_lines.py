"""The line-stability invariant (import-hooks.md §4.5 A, §8.5).

Every rewrite inserts text *within* existing lines and never adds or removes a line break, so
tracebacks, coverage, debuggers and ``inspect.getsource`` keep pointing at the user's lines.
:func:`check_line_stable` enforces this on every transform: same number of lines, and each
original line survives as a subsequence of its new line (every original non-blank character, in
order, on the same line number). Generated text may only be *added*.
"""

from __future__ import annotations

import re

from ._errors import LineShiftError

__all__ = ["check_line_stable", "restore_untouched", "split_lines"]

# CPython's tokenizer ends lines at \r\n, \r and \n (universal newlines), not at the other
# characters str.splitlines() knows (\x0c, \x1c, \u2028, ...).
_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE_AND_END = re.compile(r"(\r\n|\r|\n)")


def split_lines(text: str) -> list[str]:
    """Split *text* into lines the way Python's tokenizer counts them."""
    return _NEWLINE.split(text)


def check_line_stable(old: str, new: str) -> None:
    """Raise :class:`LineShiftError` unless *new* keeps every line of *old* on its number.

    >>> check_line_stable("y = f(1)\\n", "y = (g() if c else f(1))\\n")
    >>> check_line_stable("a\\nb\\n", "a\\n\\nb\\n")
    Traceback (most recent call last):
    ...
    mandala_ast.transforms._errors.LineShiftError: the rewrite changed the number of lines (3 -> 4)
    """
    old_lines, new_lines = split_lines(old), split_lines(new)
    if len(old_lines) != len(new_lines):
        raise LineShiftError(
            f"the rewrite changed the number of lines ({len(old_lines)} -> {len(new_lines)})"
        )
    for number, (before, after) in enumerate(zip(old_lines, new_lines), start=1):
        if before != after and not _is_subsequence(before, after):
            raise LineShiftError(f"the rewrite moved code off line {number}: {before.strip()!r}")


def _is_subsequence(small: str, big: str) -> bool:
    """True if *small*'s non-blank characters occur in *big* in the same order.

    Blanks are exempt: libcst's round trip can drop one (``except (A, B) :`` loses the space
    before the colon), and column changes are harmless.
    """
    remaining = iter(big)
    return all(char in remaining for char in small if not char.isspace())


def restore_untouched(old: str, new: str) -> str:
    """*new* with every line that gained no code put back exactly as it is in *old*.

    libcst's printer is not lossless everywhere (1.x prints ``except (A, B) :`` as
    ``except (A, B):``), so a line the rewrite never touched can still come back altered.
    The rewrite only ever *adds* code, so a line whose non-blank characters equal the
    original's was not rewritten: the original line is the right text for it. Call only after
    :func:`check_line_stable` (same line count).

    >>> restore_untouched("try: pass\\nexcept (A) :\\n", "try: pass\\nexcept (A):\\n")
    'try: pass\\nexcept (A) :\\n'
    """
    old_lines = split_lines(old)
    parts = _LINE_AND_END.split(new)  # line, newline, line, newline, ..., line
    for index, before in enumerate(old_lines):
        after = parts[2 * index]
        if after != before and _code(after) == _code(before):
            parts[2 * index] = before
    return "".join(parts)


def _code(line: str) -> str:
    return "".join(line.split())
