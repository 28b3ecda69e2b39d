"""Tests for the line-stability invariant (``_lines.py``)."""

from __future__ import annotations

import pytest

from mandala_ast.transforms import LineShiftError, TransformError, check_line_stable


class TestCheckLineStable:
    def test_identical_text_passes(self) -> None:
        """Unchanged text is trivially stable."""
        check_line_stable("a = 1\nb = 2\n", "a = 1\nb = 2\n")

    def test_insertions_within_lines_pass(self) -> None:
        """Text added inside a line keeps every original character on its line."""
        check_line_stable("y = f(1)\nz = 2\n", "y = (g(f, 1) if t(f) else f(1))\nz = 2\n")

    def test_added_line_fails(self) -> None:
        """A new line moves everything after it."""
        with pytest.raises(LineShiftError, match="number of lines"):
            check_line_stable("a\nb\n", "a\nx\nb\n")

    def test_code_moved_to_another_line_fails(self) -> None:
        """Same line count, but a token left its line."""
        with pytest.raises(LineShiftError, match="line 2"):
            check_line_stable("f(a,\n  b)\n", "f(a, b\n  )\n")

    def test_is_a_transform_error(self) -> None:
        """Callers catch one exception type to fall back to the original."""
        assert issubclass(LineShiftError, TransformError)

    @pytest.mark.parametrize("newline", ["\r\n", "\r"])
    def test_counts_universal_newlines(self, newline: str) -> None:
        """``\\r\\n`` and lone ``\\r`` end lines as in CPython's tokenizer."""
        old = f"a{newline}b{newline}"
        check_line_stable(old, old.replace("a", "x; a"))
        with pytest.raises(LineShiftError):
            check_line_stable(old, old + "c\n")

    def test_dropped_blank_is_tolerated(self) -> None:
        """libcst 1.9 prints ``except (A, B) :`` as ``except (A, B):``; columns may change."""
        check_line_stable("except (A, B) :\n", "except (A, B):\n")
