"""``transform_source``: the pure source -> source entry point of the compiler."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ._detect import decode, may_need_rewrite, survey
from ._emit import RT
from ._errors import TransformError
from ._inject import inject_runtime_import
from ._lines import check_line_stable, restore_untouched
from ._query_form import rewrite_query_blocks
from ._run_form import RunFormRewriter

__all__ = ["TRANSFORM_FORMAT", "TransformResult", "transform_source"]

#: Bumped whenever the emitted text changes for the same input (part of the pyc cache key).
TRANSFORM_FORMAT = 11


@dataclass(frozen=True)
class TransformResult:
    """What :func:`transform_source` produced.

    Attributes:
        source: The new text; the original text itself when ``changed`` is False.
        changed: True if anything was rewritten.
        diagnostics: Human-readable warnings, ``"<file>:<line>: <message>"``.
    """

    source: str
    changed: bool
    diagnostics: tuple[str, ...] = ()


def transform_source(source: str | bytes, filename: str = "<string>") -> TransformResult:
    """Rewrite storage blocks and workflows of *source* into the run form, and query and
    delete blocks into the query form.

    Code without ops, workflows or storage blocks comes back unchanged (for bytes input: the
    decoded text). The output keeps every original line on its line number.

    Raises:
        TransformError: the source cannot be decoded or libcst cannot parse it; the caller
            compiles the original instead (fail open; Python reports real syntax errors).
    """
    text = decode(source)
    if not may_need_rewrite(text):
        return TransformResult(text, False)
    if RT in text:
        return TransformResult(text, False, (f"{filename}:1: not rewritten: it already refers to {RT}",))
    module = _parse(text)
    found = survey(module)
    if not found:
        return TransformResult(text, False)
    return _rewrite(text, module, found, filename)


def _parse(text: str) -> cst.Module:
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise TransformError(f"libcst cannot parse the source: {exc}") from exc
    except RecursionError as exc:  # pathologically nested code
        raise TransformError("libcst cannot parse the source: too deeply nested") from exc


def _rewrite(text: str, module: cst.Module, found, filename: str) -> TransformResult:  # type: ignore[no-untyped-def]
    rewriter = RunFormRewriter(module, found, text)
    try:
        rewritten = module.visit(rewriter)
    except RecursionError as exc:
        raise TransformError("the source is too deeply nested to rewrite") from exc
    diagnostics: tuple[str, ...] = ()
    # The run form left query and delete blocks as they were (same nodes): now their turn.
    rewritten, queries = rewrite_query_blocks(cst.ensure_type(rewritten, cst.Module), found.later_blocks, filename)
    if not (rewriter.changed or queries):
        return TransformResult(text, False, diagnostics)
    injected = inject_runtime_import(cst.ensure_type(rewritten, cst.Module))
    if injected is None:
        reason = "no line to put the runtime import on (the module starts with a compound statement)"
        return TransformResult(text, False, (*diagnostics, f"{filename}:1: not rewritten: {reason}"))
    new_text = injected.code
    check_line_stable(text, new_text)
    return TransformResult(restore_untouched(text, new_text), True, diagnostics)
