"""Put ``import mandala_ast.runtime.compiled as __mandala_rt__; __mandala_callee__ =
__mandala_rt__.callee_at`` (:data:`IMPORT_LINE`) on an existing line.

Where, in order of preference (never adding a line, so nothing moves):

1. appended with ``; `` to the module docstring's line, or to the last ``from __future__``
   line that follows it (the docstring stays the first statement; futures stay first);
2. prefixed with ``; `` to the first statement if it is a simple statement line;
3. on a blank or comment line before the first statement (not a shebang or coding line);
4. prefixed to the first simple statement line when only ``def`` statements precede it
   (defining a function runs none of its body, and decorators are never rewritten).

Otherwise the module cannot be compiled line-stably, and the caller keeps the original.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import libcst as cst

__all__ = ["IMPORT_LINE", "inject_runtime_import"]

#: The runtime import, and the hook every rewritten call calls bound as a global of its own
#: (``__mandala_rt__.callee_at`` would cost an attribute load, 10 bytes of bytecode, per call).
IMPORT_LINE = "import mandala_ast.runtime.compiled as __mandala_rt__; __mandala_callee__ = __mandala_rt__.callee_at"
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=]")


@functools.lru_cache(maxsize=1)
def _import_statements() -> tuple[cst.BaseSmallStatement, ...]:
    """The statements of :data:`IMPORT_LINE`, all but the last followed by ``; ``."""
    line = cst.parse_statement(IMPORT_LINE + "\n")
    return tuple(cst.ensure_type(line, cst.SimpleStatementLine).body)


def _semicolon() -> cst.Semicolon:
    return cst.Semicolon(cst.SimpleWhitespace(""), cst.SimpleWhitespace(" "))


def inject_runtime_import(module: cst.Module) -> cst.Module | None:
    """*module* with the runtime import on an existing line, or None if there is no such line."""
    body = list(module.body)
    anchor = _prologue_end(body)
    if anchor is not None:
        body[anchor] = _append(cst.ensure_type(body[anchor], cst.SimpleStatementLine))
        return module.with_changes(body=body)
    if body and isinstance(body[0], cst.SimpleStatementLine):
        body[0] = _prefix(body[0])
        return module.with_changes(body=body)
    replaced = _on_empty_line(module)
    if replaced is not None:
        return replaced
    for index, statement in enumerate(body):
        if isinstance(statement, cst.SimpleStatementLine):
            body[index] = _prefix(statement)
            return module.with_changes(body=body)
        if not isinstance(statement, cst.FunctionDef):
            break
    return None


def _prologue_end(body: Sequence[cst.BaseStatement]) -> int | None:
    """Index of the last docstring / ``from __future__`` line at the top, if any."""
    anchor, index = None, 0
    if body and _is_docstring(body[0]):
        anchor, index = 0, 1
    while index < len(body) and _is_future(body[index]):
        anchor, index = index, index + 1
    return anchor


def _is_docstring(statement: cst.BaseStatement) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    first = statement.body[0]
    return isinstance(first, cst.Expr) and isinstance(
        first.value, (cst.SimpleString, cst.ConcatenatedString)
    )


def _is_future(statement: cst.BaseStatement) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    first = statement.body[0]
    return (
        isinstance(first, cst.ImportFrom)
        and not first.relative
        and isinstance(first.module, cst.Name)
        and first.module.value == "__future__"
    )


def _append(line: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
    """``<line>; import ...`` (before the line's trailing comment)."""
    *rest, last = line.body
    return line.with_changes(body=[*rest, last.with_changes(semicolon=_semicolon()), *_import_statements()])


def _prefix(line: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
    """``import ...; <line>``."""
    *first, last = _import_statements()
    return line.with_changes(body=[*first, last.with_changes(semicolon=_semicolon()), *line.body])


def _on_empty_line(module: cst.Module) -> cst.Module | None:
    """Turn a blank or comment line before the first statement into the import line."""
    if not module.body:
        return None
    first = module.body[0]
    header, leading = list(module.header), list(first.leading_lines)
    lines = header + leading
    index = _usable_empty_line(lines)
    if index is None:
        return None
    chosen = lines[index]
    trailing = cst.TrailingWhitespace(
        whitespace=cst.SimpleWhitespace(chosen.whitespace.value or ("  " if chosen.comment else "")),
        comment=chosen.comment,
        newline=chosen.newline,
    )
    import_line = cst.SimpleStatementLine(_import_statements(), trailing_whitespace=trailing)
    if index < len(header):
        new_header, before, after = header[:index], [], header[index + 1 :] + leading
    else:
        cut = index - len(header)
        new_header, before, after = header, leading[:cut], leading[cut + 1 :]
    body = [import_line.with_changes(leading_lines=before), first.with_changes(leading_lines=after)]
    return module.with_changes(header=new_header, body=[*body, *module.body[1:]])


def _usable_empty_line(lines: list[cst.EmptyLine]) -> int | None:
    """The first line that is not a shebang or PEP 263 coding line (lines 1-2 are special)."""
    comments = [line.comment.value if line.comment else "" for line in lines]
    cookie_on_2 = len(comments) > 1 and _CODING.match(comments[1]) is not None
    for index, comment in enumerate(comments):
        if index == 0 and (comment.startswith("#!") or cookie_on_2):
            continue
        if index < 2 and _CODING.match(comment):
            continue
        return index
    return None
