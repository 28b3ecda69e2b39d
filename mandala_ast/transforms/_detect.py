"""Cheap checks and the survey pass: which parts of a module need the run form at all.

Order of cost (import-hooks.md §8.2): a substring check on the text, then one libcst walk over
*statements only* (expressions cannot contain ``with`` blocks or ``def``), which finds

* storage-block candidates: ``with X.run(...)``, ``with X.batch(...)``, ``with X:`` where X is
  a name or dotted name (``with storage:``, ``with self.storage:``), and ``with Storage(...):``
  (any callee whose last name is ``Storage``);
* query and delete blocks: ``with X.query(...)`` / ``with X.delete(...)`` (the query form);
* ``@workflow`` functions, with the decorator resolved through the module's imports
  (``from mandala_ast import workflow as wf``, ``import mandala_ast as ma`` -> ``@ma.workflow``);
* the compound statements that *contain* any of these, so the rewrite can skip everything else.

No ``QualifiedNameProvider``: it costs about 6x the parse (import-hooks.md §4.3).
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field

import libcst as cst

from ._errors import TransformError

__all__ = ["LATER_METHODS", "LIBRARY", "Survey", "decode", "is_batch_block", "may_need_rewrite", "opens_storage_block", "survey"]

#: The import name whose mention makes a module a candidate.
LIBRARY = "mandala_ast"
_BLOCK_METHODS = frozenset({"run", "batch"})
LATER_METHODS = frozenset({"query", "delete"})  # blocks in the query form (_query_form.py)
_WITH_WORD = re.compile(r"\bwith\b")


def decode(source: str | bytes) -> str:
    """The text of *source*, decoded as Python does (PEP 263 cookie, BOM); newlines kept."""
    if isinstance(source, str):
        return source
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        return source.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise TransformError(f"cannot decode the source: {exc}") from exc


def may_need_rewrite(text: str) -> bool:
    """False when *text* certainly has no storage block or workflow (no parse needed)."""
    if LIBRARY not in text:
        return False
    return "workflow" in text or _WITH_WORD.search(text) is not None


@dataclass
class Survey:
    """What the survey pass found, by node identity (nodes of the parsed module)."""

    #: ``with`` statements whose body is a storage-block candidate.
    blocks: set[cst.With] = field(default_factory=set)
    #: ``with X.query()`` / ``with X.delete()`` statements: the run form leaves them alone, the
    #: query form rewrites them.
    later_blocks: set[cst.With] = field(default_factory=set)
    #: Functions decorated with ``@workflow``.
    workflows: set[cst.FunctionDef] = field(default_factory=set)
    #: Compound statements that are, or contain, a block or a workflow.
    interesting: set[cst.CSTNode] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.blocks or self.workflows or self.later_blocks)


def survey(module: cst.Module) -> Survey:
    """Walk the statements of *module* once and classify its blocks and workflows."""
    walker = _SurveyWalker()
    module.visit(walker)
    result = walker.result
    for function, ancestors in walker.decorated:
        if any(walker.aliases.is_workflow(d.decorator) for d in function.decorators):
            result.workflows.add(function)
            result.interesting.update(ancestors)
            result.interesting.add(function)
    return result


@dataclass
class _Aliases:
    """Names under which the module can reach ``mandala_ast`` and ``workflow``."""

    modules: set[str] = field(default_factory=set)
    workflow: set[str] = field(default_factory=set)

    def record(self, statement: cst.BaseSmallStatement) -> None:
        if isinstance(statement, cst.Import):
            self._record_import(statement)
        elif isinstance(statement, cst.ImportFrom):
            self._record_import_from(statement)

    def _record_import(self, statement: cst.Import) -> None:
        for alias in statement.names:
            name = dotted_name(alias.name)
            if name == LIBRARY and alias.asname is not None:
                self.modules.add(cst.ensure_type(alias.asname.name, cst.Name).value)
            elif name is not None and name.split(".")[0] == LIBRARY and alias.asname is None:
                self.modules.add(LIBRARY)

    def _record_import_from(self, statement: cst.ImportFrom) -> None:
        module = dotted_name(statement.module) if statement.module else None
        if statement.relative or module is None or module.split(".")[0] != LIBRARY:
            return
        if isinstance(statement.names, cst.ImportStar):
            self.workflow.add("workflow")
            return
        for alias in statement.names:
            if dotted_name(alias.name) == "workflow":
                bound = alias.asname.name if alias.asname is not None else alias.name
                self.workflow.add(cst.ensure_type(bound, cst.Name).value)

    def is_workflow(self, decorator: cst.BaseExpression) -> bool:
        """``@workflow``, ``@wf``, ``@ma.workflow``, ``@mandala_ast.workflow`` (or called)."""
        if isinstance(decorator, cst.Call):
            decorator = decorator.func
        if isinstance(decorator, cst.Name):
            return decorator.value in self.workflow
        if isinstance(decorator, cst.Attribute) and decorator.attr.value == "workflow":
            return isinstance(decorator.value, cst.Name) and decorator.value.value in self.modules
        return False


class _SurveyWalker(cst.CSTVisitor):
    """Visits compound statements only; simple statements are read for imports and skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.result = Survey()
        self.aliases = _Aliases()
        self.decorated: list[tuple[cst.FunctionDef, tuple[cst.CSTNode, ...]]] = []
        self._stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.BaseExpression):
            return False  # expressions hold no statements
        if isinstance(node, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for statement in node.body:
                self.aliases.record(statement)
            return False
        if isinstance(node, cst.BaseCompoundStatement):
            self._stack.append(node)
            self._classify(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if self._stack and self._stack[-1] is original_node:
            self._stack.pop()

    def _classify(self, node: cst.BaseCompoundStatement) -> None:
        if any(outer in self.result.later_blocks for outer in self._stack[:-1]):
            return  # a query or delete block's body is the query form's alone (it refuses blocks)
        if isinstance(node, cst.With):
            kind = block_kind(node)
            if kind == "later":
                self.result.later_blocks.add(node)
            elif kind == "block":
                self.result.blocks.add(node)
                self.result.interesting.update(self._stack)
        elif isinstance(node, cst.FunctionDef) and node.decorators:
            self.decorated.append((node, tuple(self._stack)))


def block_kind(node: cst.With) -> str | None:
    """``"later"`` for query/delete blocks, ``"block"`` for storage-block candidates, else None."""
    kinds = {_item_kind(item.item) for item in node.items}
    if "later" in kinds:
        return "later"
    return "block" if "block" in kinds else None


def _item_kind(item: cst.BaseExpression) -> str | None:
    if isinstance(item, cst.Call):
        callee = dotted_name(item.func) or ""
        if isinstance(item.func, cst.Attribute):
            method = item.func.attr.value
            if method in LATER_METHODS:
                return "later"
            if method in _BLOCK_METHODS:
                return "block"
        # `with Storage("results.db"):` opens a storage and runs the block in it.
        return "block" if callee.rpartition(".")[2] == "Storage" else None
    return "block" if dotted_name(item) is not None else None


def opens_storage_block(node: cst.With) -> bool:
    """``with X.run()``, ``X.batch()``, ``X.query()``, ``X.delete()`` or ``Storage(...)``: a
    block that certainly is one of ours (``with X:`` may be a lock as well)."""
    return any(isinstance(item.item, cst.Call) and _item_kind(item.item) is not None for item in node.items)


def is_batch_block(node: cst.With) -> bool:
    """``with X.batch(...)``: op outputs in its body are deferred until used."""
    return any(
        isinstance(item.item, cst.Call)
        and isinstance(item.item.func, cst.Attribute)
        and item.item.func.attr.value == "batch"
        for item in node.items
    )


def dotted_name(node: cst.CSTNode) -> str | None:
    """``"a.b.c"`` for a Name or a chain of Attributes over a Name, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None
