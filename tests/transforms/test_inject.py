"""Where the runtime import goes (``_inject.py``): always on an existing line."""

from __future__ import annotations

import ast

import pytest
from cstutil import rewrite

IMPORT = "import mandala_ast.runtime.compiled as __mandala_rt__; __mandala_callee__ = __mandala_rt__.callee_at"
BODY = "with storage:\n    f(1)\n"


def first_lines(source: str, count: int) -> list[str]:
    result = rewrite(source)
    assert result.changed
    return result.source.splitlines()[:count]


class TestPlacement:
    def test_after_docstring(self) -> None:
        """The docstring stays the module's docstring."""
        source = '"""Doc."""\nimport mandala_ast\n' + BODY
        result = rewrite(source)
        assert result.source.splitlines()[0] == f'"""Doc."""; {IMPORT}'
        assert ast.get_docstring(ast.parse(result.source)) == "Doc."

    def test_after_multiline_docstring_and_futures(self) -> None:
        """``from __future__`` imports must stay first: the import follows the last one."""
        source = '"""Doc\n\nmore."""\nfrom __future__ import annotations  # why\nimport mandala_ast\n' + BODY
        lines = first_lines(source, 4)
        assert lines[3] == f"from __future__ import annotations; {IMPORT}  # why"

    def test_prefixed_to_first_simple_line(self) -> None:
        """No docstring: the first statement line gets the import in front."""
        assert first_lines("import mandala_ast\n" + BODY, 1) == [f"{IMPORT}; import mandala_ast"]

    def test_on_a_comment_line_not_shebang_or_coding(self) -> None:
        """A compound first statement: a comment line before it becomes the import line."""
        source = "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n# mandala_ast\n" + BODY
        assert first_lines(source, 3)[2] == f"{IMPORT}  # mandala_ast"

    def test_on_a_blank_line(self) -> None:
        """A blank line before a compound first statement is used as is."""
        source = "# mandala_ast\n\n" + BODY
        assert first_lines(source, 2) == [f"{IMPORT}  # mandala_ast", ""]

    def test_after_leading_defs(self) -> None:
        """Defining functions runs none of their bodies, so the import may follow them."""
        source = "def helper():\n    pass\nimport mandala_ast\n" + BODY
        assert first_lines(source, 3)[2] == f"{IMPORT}; import mandala_ast"

    def test_impossible_placement_is_a_diagnostic(self) -> None:
        """A module that is one compound statement cannot be compiled line-stably."""
        source = "with storage:\n    mandala_ast.f(1)\n"
        result = rewrite(source)
        assert not result.changed and result.source == source
        assert result.diagnostics == (
            "m.py:1: not rewritten: no line to put the runtime import on "
            "(the module starts with a compound statement)",
        )

    @pytest.mark.parametrize("prefix", ["x = 1;", "x = 1;  "])
    def test_existing_semicolon(self, prefix: str) -> None:
        """A trailing ``;`` on the anchor line is reused."""
        source = f'"""d"""; {prefix}\nimport mandala_ast\n' + BODY
        compile(rewrite(source).source, "m.py", "exec")
