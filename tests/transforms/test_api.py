"""The public entry point: passthrough, decoding, fail-open errors."""

from __future__ import annotations

import pathlib
import textwrap

import pytest
from cstutil import rewrite

from mandala_ast import transforms
from mandala_ast.transforms import (
    TRANSFORM_FORMAT,
    TransformError,
    TransformResult,
    transform_source,
)


class TestPassthrough:
    @pytest.mark.parametrize(
        "source",
        [
            "x = f(1)\nwith storage:\n    y = inc(x)\n",  # no mention of mandala_ast
            "import mandala_ast\nx = inc(1)\n",  # no block, no workflow
            "import mandala_ast\nwith storage:\n    print(1)\n    pass\n",  # nothing to rewrite
            "import mandala_ast  # \r\nwith storage:\r\n    x = 1\r\n",
        ],
    )
    def test_unchanged_text_is_identical(self, source: str) -> None:
        """Byte-for-byte the original, and ``changed`` is False."""
        result = transform_source(source, "m.py")
        assert result == TransformResult(source, False, ())
        assert result.source is source

    def test_bytes_are_decoded_with_their_cookie(self) -> None:
        """Bytes input: PEP 263 decoding, newlines kept."""
        data = "# -*- coding: latin-1 -*-\ns = 'é'\r\n".encode("latin-1")
        assert transform_source(data).source == "# -*- coding: latin-1 -*-\ns = 'é'\r\n"

    def test_crlf_file_is_rewritten_line_stably(self) -> None:
        """Windows line endings survive the rewrite."""
        source = "import mandala_ast\r\nwith storage:\r\n    y = f(a,\r\n          b)\r\n"
        result = rewrite(source)
        assert result.changed and result.source.count("\r\n") == 4
        compile(result.source, "m.py", "exec")

    def test_already_compiled_source_is_left_alone(self) -> None:
        """Transforming twice must not wrap twice."""
        once = rewrite("import mandala_ast\nwith storage:\n    y = f(1)\n").source
        twice = transform_source(once, "m.py")
        assert twice.source == once and not twice.changed and twice.diagnostics


class TestFailOpen:
    def test_unparsable_source_raises_transform_error(self) -> None:
        """The caller catches TransformError and compiles the original."""
        with pytest.raises(TransformError, match="libcst cannot parse"):
            transform_source("import mandala_ast\nwith storage:\n    y = (\n", "m.py")

    def test_undecodable_bytes_raise_transform_error(self) -> None:
        with pytest.raises(TransformError, match="decode"):
            transform_source(b"# coding: nope\nimport mandala_ast\n")


class TestSurface:
    def test_exports(self) -> None:
        """The compiler relies on exactly these names (constants, classes, functions, each sorted)."""
        assert transforms.__all__ == [
            "TRANSFORM_FORMAT",
            "LineShiftError",
            "TransformError",
            "TransformResult",
            "check_line_stable",
            "transform_source",
        ]
        assert all(hasattr(transforms, name) for name in transforms.__all__)
        assert isinstance(TRANSFORM_FORMAT, int)

    def test_the_module_index_lists_every_module(self) -> None:
        """The package docstring's index is how a reader finds the files: it cannot go stale."""
        import pathlib

        index = transforms.__doc__.split("Modules:", 1)[1]
        listed = {line.split()[0] for line in index.splitlines() if line.strip()}
        files = {path.stem for path in pathlib.Path(transforms.__file__).parent.glob("_*.py")}
        assert listed == files - {"__init__"}

    def test_compiles_and_keeps_statements(self) -> None:
        """A larger example compiles."""
        source = textwrap.dedent(
            """\
            '''Module.'''
            from __future__ import annotations
            import mandala_ast as ma
            storage = ma.Storage()

            @ma.workflow
            def pipeline(n, alpha=0.1):
                data = load(n)
                model = train(data, alpha=alpha)
                return evaluate(model, data)

            with storage.run():
                for n in [100, 1000]:
                    acc = pipeline(n)
                    if acc > 0.9:
                        print(n, acc)
            """
        )
        compile(rewrite(source).source, "m.py", "exec")


def _code(line: str) -> str:
    return "".join(line.split())


def untouched_lines_differing(old: str, new: str) -> list[tuple[int, str, str]]:
    """Lines that gained no code yet are not byte-identical: (number, before, after)."""
    pairs = zip(old.splitlines(keepends=True), new.splitlines(keepends=True))
    return [
        (number, before, after)
        for number, (before, after) in enumerate(pairs, start=1)
        if before != after and _code(before) == _code(after)
    ]


class TestUntouchedLinesAreByteIdentical:
    def test_stdlib_webbrowser_keeps_the_space_before_except_colon(self) -> None:
        """webbrowser.py has ``...NotADirectoryError) :``; libcst's printer drops that space."""
        import webbrowser

        source = pathlib.Path(webbrowser.__file__).read_text() + "import mandala_ast\n"
        result = transform_source(source, "webbrowser.py")
        assert result.changed
        assert untouched_lines_differing(source, result.source) == []
        assert "NotADirectoryError) :" in result.source

    @pytest.mark.parametrize(
        "statement",
        [
            "try:\n        y = f(1)\n    except (KeyError, ValueError) :\n        pass\n",
            "try:\n        y = f(1)\n    except KeyError  :\n        pass\n",
            "if  x :\n        y = f(1)\n",
        ],
    )
    def test_spacing_of_untouched_lines_inside_a_block_survives(self, statement: str) -> None:
        """Only lines that gain code may change, even inside a rewritten block."""
        source = f"import mandala_ast\nwith storage:\n    {statement}"
        result = rewrite(source)
        assert result.changed
        assert untouched_lines_differing(source, result.source) == []

    def test_spacing_outside_blocks_survives_with_crlf(self) -> None:
        source = "import mandala_ast\r\ntry:\r\n    pass\r\nexcept (A, B) :\r\n    pass\r\nwith storage:\r\n    y = f(1)\r\n"
        result = rewrite(source)
        assert result.changed
        assert "except (A, B) :\r\n" in result.source
        assert untouched_lines_differing(source, result.source) == []
