"""Helpers for the transform tests: a fake runtime and the line-stability assertion.

A module with its own name (not conftest) so that `tests/` and `tests/transforms/` never
shadow each other's helpers on sys.path.
"""

from __future__ import annotations

import ast
import builtins
import textwrap
import types
from collections import Counter
from collections.abc import Callable
from typing import Any

from mandala_ast.transforms import TransformResult, check_line_stable, transform_source


def rewrite(source: str) -> TransformResult:
    """Transform dedented *source* and assert the result is line-stable."""
    source = textwrap.dedent(source)
    result = transform_source(source, "m.py")
    assert_line_stable(source, result.source)
    return result


def assert_line_stable(old: str, new: str) -> None:
    """Same number of lines, and every original statement still starts on its line."""
    check_line_stable(old, new)
    assert old.count("\n") == new.count("\n")
    before = Counter(_statement_lines(old))
    after = Counter(_statement_lines(new))
    assert not before - after, f"statements moved: {sorted((before - after).elements())}"


def _statement_lines(source: str) -> list[tuple[str, int]]:
    return [
        (type(node).__name__, node.lineno)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.stmt)
    ]


class FakeOp:
    """Stands in for an op: its type is in the fake ``OPS``."""

    def __init__(self, fn: Callable[..., Any], log: list) -> None:
        self.fn, self.log, self.__name__ = fn, log, fn.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class FakeRuntime(types.SimpleNamespace):
    """A tiny ``__mandala_rt__``: logs what compiled code asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list = []
        self.OPS = frozenset({FakeOp})
        self.callee_at = self._callee_at
        self.forget = self._forget
        self.raw = self._raw
        self.settle = self._settle
        self.ret = self._ret
        self.built = self._built
        self.put = self._put

    def _callee_at(self, scope: str, spec: tuple, f: Any, /) -> Any:
        if type(f) not in self.OPS:
            return f
        kind = "ref" if len(spec) > 4 and spec[4] is not None else "call"  # (targets, ..., slot)

        def invoke(*args: Any, **kwargs: Any) -> Any:
            self.log.append((kind, f.__name__, (scope, *spec)))
            return f.fn(*args, **kwargs)

        return invoke

    def _forget(self, key: str, value: Any, /) -> Any:
        self.log.append(("forget", key))
        return value

    def _raw(self, key: str, value: Any, /) -> Any:
        self.log.append(("raw", key))
        return value

    def _settle(self, key: str, value: Any, /) -> Any:
        self.log.append(("settle", key))
        return value

    def _built(self, spec: tuple, form: str, /) -> Any:
        def collection(value: Any, /) -> Any:
            self.log.append(("built", form, spec))
            return value

        return collection

    def _put(self, spec: tuple, form: str, container: Any, /) -> Any:
        def added(value: Any, /) -> Any:
            self.log.append(("put", form, spec))
            return value

        return added

    def _ret(self, key: str | None, value: Any, /) -> Any:
        self.log.append(("ret", key))
        return value


class FakeBlock:
    """``with storage:`` / ``storage.run()`` / ``storage.batch()`` that do nothing."""

    def __enter__(self) -> FakeBlock:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def run(self, **options: Any) -> FakeBlock:
        return self

    batch = query = delete = run


def execute(source: str, rt: FakeRuntime, **names: Any) -> dict:
    """Run *source* with ``import mandala_ast...`` resolved to fakes; returns its namespace."""
    library = types.SimpleNamespace(
        runtime=types.SimpleNamespace(compiled=rt), workflow=lambda fn: fn, op=lambda fn: fn
    )

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "mandala_ast":
            return library
        return builtins.__import__(name, *args, **kwargs)

    namespace = {"__builtins__": {**vars(builtins), "__import__": fake_import}, **names}
    exec(compile(source, "m.py", "exec", dont_inherit=True), namespace)
    return namespace
