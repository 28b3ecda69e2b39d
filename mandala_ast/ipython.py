"""``%load_ext mandala_ast``: compile every IPython / Jupyter cell as the import hook compiles a
module, so run, query, batch and delete blocks and ``@workflow`` functions work in cells.

>>> # in a notebook cell
>>> %load_ext mandala_ast                      # doctest: +SKIP
>>> with storage.run():                        # doctest: +SKIP
...     y = inc(1)

Which hook. IPython turns a cell into code in three steps (``InteractiveShell.run_cell_async``):
the text transformers (``input_transformers_post`` run last, after magics became calls), then
``compile.cache`` registers the text in ``linecache`` under the cell's name, then the AST
transformers. The rewrite is libcst source -> source, so it is a text transformer. Because the
rewrite keeps every line on its line, the cell's line numbers stay true; and ``compile.cache``
is wrapped so that ``linecache`` holds the cell *as typed*: tracebacks, ``inspect.getsource``
(hence op fingerprints, dependency diffs and ``storage.why``) see the user's text, not the
compiled one, as they do for a compiled module on disk.

A cell is a module without its imports: ``storage`` and ``workflow`` were bound by earlier
cells. So the transform is given the cell framed by lines it never executes: a blank first
line (which takes the runtime import, since a cell often starts with ``with``) and an
``if False:`` tail naming the aliases of ``mandala_ast`` and ``workflow`` that the user
namespace holds now. Both frames are cut off again; what the import line binds
(``__mandala_rt__``, ``__mandala_callee__``) is put in the namespace.

Ops defined in cells live in ``__main__``: their identity is ``__main__.<qualname>``, the same
after a kernel restart whatever the execution counter, and their source comes from the cell.
"""

from __future__ import annotations

import ast
import linecache
import re
import warnings
from typing import Any

from ._errors import MandalaDiagnosticWarning, MandalaFallbackWarning

__all__ = ["CellCompiler", "load_ipython_extension", "unload_ipython_extension"]

#: The words without which a cell holds no block and no workflow: such cells are left alone
#: without parsing (a regex over the text costs microseconds, libcst milliseconds).
_CANDIDATE = re.compile(r"\bwith\b|workflow")
_RUNTIME = "__mandala_rt__"
#: The hook compiled calls call, a global of its own (the transform's import line binds it).
_CALLEE = "__mandala_callee__"
_IMPORT_LINE = f"import mandala_ast.runtime.compiled as {_RUNTIME}; {_CALLEE} = {_RUNTIME}.callee_at"


class CellCompiler:
    """The text transformer ``%load_ext mandala_ast`` installs on an IPython shell.

    Calling it with a cell's lines returns the compiled lines (or the same lines for a cell
    with nothing to compile, or that libcst cannot parse: then one ``MandalaFallbackWarning``).

    >>> from IPython.core.interactiveshell import InteractiveShell   # doctest: +SKIP
    >>> shell = InteractiveShell.instance()                          # doctest: +SKIP
    >>> CellCompiler(shell).install()                                # doctest: +SKIP
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.typed: dict[str, str] = {}  # compiled text -> the text as typed (for linecache)
        self._compiler: Any = None
        self._original_cache: Any = None

    def install(self) -> None:
        """Add the transformer to the shell and wrap its compiler's ``cache``."""
        if self not in self.shell.input_transformers_post:
            self.shell.input_transformers_post.append(self)
        self._compiler = self.shell.compile
        self._original_cache = self._compiler.cache
        self._compiler.cache = self.cache

    def uninstall(self) -> None:
        """Undo :meth:`install`; cells run as written again."""
        if self in self.shell.input_transformers_post:
            self.shell.input_transformers_post.remove(self)
        if self._compiler is not None and self._compiler.__dict__.get("cache") == self.cache:
            del self._compiler.cache  # the class's method shows through again
        self._compiler = None

    def __call__(self, lines: list[str]) -> list[str]:
        text = "".join(lines)
        compiled = self.compile_cell(text)
        if compiled == text:
            return lines
        # Only the latest cell: a cell compiled without reaching compile.cache (a %%time
        # body is compiled under its own name) must not leave its text here for good.
        self.typed = {compiled: text}
        _bind_runtime(self.shell.user_ns)
        return compiled.splitlines(keepends=True)

    def compile_cell(self, text: str) -> str:
        """The compiled text of a cell, line for line; *text* itself if nothing changes."""
        modules, workflows = _aliases(self.shell.user_ns)
        if not (_CANDIDATE.search(text) or any(name in text for name in workflows)):
            return text
        tail = _alias_tail(modules, workflows)
        result = _transform(_frame(text, tail), text)
        if result is None:
            return text
        for diagnostic in result.diagnostics:
            warnings.warn(_cell_diagnostic(diagnostic), MandalaDiagnosticWarning, stacklevel=2)
        return _unframe(result.source, text, tail) if result.changed else text

    def cache(self, transformed_code: str, number: int = 0, raw_code: str | None = None) -> str:
        """IPython's ``compile.cache``, then ``linecache`` gets the cell as typed."""
        name = self._original_cache(transformed_code, number, raw_code)
        typed = self.typed.pop(transformed_code, None)
        if typed is not None:
            lines = [line + "\n" for line in typed.splitlines()]
            linecache.cache[name] = (len(typed), None, lines, name)
        return name


def _cell_diagnostic(text: str) -> str:
    """``"<cell>:3: message"`` of the framed text -> ``"cell line 2: message"``.

    >>> _cell_diagnostic("<cell>:3: not rewritten")
    'cell line 2: not rewritten'
    """
    match = re.match(r"<cell>:(\d+): (.*)", text, re.DOTALL)
    return f"cell line {max(int(match.group(1)) - 1, 1)}: {match.group(2)}" if match else text


def _frame(text: str, tail: str) -> str:
    """The cell between a blank first line and the ``if False:`` *tail*."""
    return "\n" + (text if text.endswith("\n") else text + "\n") + tail


def _aliases(namespace: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The names under which the namespace holds ``mandala_ast`` and ``workflow`` now."""
    import mandala_ast

    from .runtime.ops import workflow

    modules, workflows = [], []
    for name, value in list(namespace.items()):
        if value is mandala_ast and name != "mandala_ast" and name.isidentifier():
            modules.append(name)
        elif value is workflow and name.isidentifier():
            workflows.append(name)
    return modules, workflows


def _alias_tail(modules: list[str], workflows: list[str]) -> str:
    """``if False:`` and the imports that bind those names: the survey resolves ``@workflow``
    through the module's imports, and a cell's imports ran in earlier cells."""
    lines = ["if False:\n", "    import mandala_ast\n"]
    lines += [f"    import mandala_ast as {name}\n" for name in modules]
    lines += [f"    from mandala_ast import workflow as {name}\n" for name in workflows]
    return "".join(lines)


def _transform(framed: str, text: str) -> Any:
    """The transform's result, or None after one warning when the cell cannot be compiled
    (none when Python cannot compile the cell either: its SyntaxError says all there is)."""
    from .compiler import describe, run_transform

    try:
        return run_transform(framed, "<cell>")
    except Exception as exc:  # libcst's grammar lags CPython's; the cell must still run
        reason = describe(exc)
    if _is_python(text):
        _fall_back(reason)
    return None


def _is_python(text: str) -> bool:
    """Whether Python parses the cell (IPython allows a top-level ``await``)."""
    try:
        compile(text, "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except (SyntaxError, ValueError):  # ValueError: a null byte
        return False
    return True


def _fall_back(reason: str) -> None:
    message = f"mandala_ast could not compile this cell; it runs as written: {reason}"
    warnings.warn(message, MandalaFallbackWarning, stacklevel=4)


def _unframe(source: str, text: str, tail: str) -> str:
    """Cut the frame off the compiled text: its first line (blank, or holding only the
    runtime import, which the namespace provides) and the tail's lines."""
    lines = source.splitlines(keepends=True)
    tail_count = tail.count("\n")
    body = lines[1 : len(lines) - tail_count]
    if lines[0].strip() not in ("", _IMPORT_LINE):
        _fall_back("the compiled cell does not start with the runtime import")  # never seen: defensive
        return text
    compiled = "".join(body)
    return compiled if text.endswith("\n") else compiled.removesuffix("\n")


def _bind_runtime(namespace: dict[str, Any]) -> None:
    """What the cut-off import line binds: the runtime module and its call hook."""
    from .runtime import compiled

    namespace[_RUNTIME], namespace[_CALLEE] = compiled, compiled.callee_at


_installed: dict[int, CellCompiler] = {}


def load_ipython_extension(shell: Any) -> None:
    """Called by ``%load_ext mandala_ast``: compile every later cell of *shell*."""
    if id(shell) in _installed:
        return
    compiler = CellCompiler(shell)
    compiler.install()
    _installed[id(shell)] = compiler
    _bind_runtime(shell.user_ns)


def unload_ipython_extension(shell: Any) -> None:
    """Called by ``%unload_ext mandala_ast``: cells run as written again."""
    compiler = _installed.pop(id(shell), None)
    if compiler is not None:
        compiler.uninstall()
