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
from typing import Any, Callable

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


class FakeRef:
    def __init__(self, value: Any) -> None:
        self.value = value


class FakeRuntime(types.SimpleNamespace):
    """A tiny ``__mandala_rt__``: logs what compiled code asks of it."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list = []
        self.OPS = frozenset({FakeOp})
        self.call = self._call
        self.ref = self._ref
        self.forget = self._forget
        self.ret = self._ret
        self.v = lambda x, /: x.value if type(x) is FakeRef else x

    def _invoke(self, kind: str, spec: tuple, f: Any, args: tuple, kwargs: dict) -> Any:
        assert type(f) in self.OPS, "the runtime is only ever asked to call ops"
        self.log.append((kind, f.__name__, spec))
        args = tuple(self.v(a) for a in args)
        kwargs = {k: self.v(a) for k, a in kwargs.items()}
        return f.fn(*args, **kwargs)

    def _call(self, spec: tuple, f: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self._invoke("call", spec, f, args, kwargs)

    def _ref(self, spec: tuple, f: Any, /, *args: Any, **kwargs: Any) -> Any:
        return FakeRef(self._invoke("ref", spec, f, args, kwargs))

    def _forget(self, key: str, value: Any, /) -> Any:
        self.log.append(("forget", key))
        return value

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
