"""``with storage.query() as q:`` and ``with storage.delete():``: blocks that build a pattern.

Inside such a block every op call returns query variables (see pattern.py); the block
implements the ``Block`` protocol (blocks.py) and is the innermost block while open, so
compiled workflows and op calls the compiler did not rewrite reach :meth:`QueryBlock.call_op`
and become pattern nodes too.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..._errors import QueryError
from ..block_refusal import check_block_allowed
from ..blocks import Block, pop, push, state
from ..hashing import UnhashableError, content_id
from ..ops import AsyncOp, Op, flatten_bound
from .pattern import Const, Node, Pattern, check_same_branch
from .result import Query

if TYPE_CHECKING:
    from ..storage import Storage

__all__ = ["QueryBlock", "Q"]

_NEEDS_COMPILING = (
    "a {kind} block must be compiled: it pattern-matches the code it contains, so mandala_ast "
    "has to see that code. Run the script with `mandala-ast run script.py`, import the module "
    "with the hook active (`mandala_ast.install()` before the import, or "
    "`mandala_ast.install_this_package()` in your package), or use `mandala_ast.compile_module()`"
)


#: `%load_ext mandala_ast` in a cell's text as IPython runs it (its magics made calls).
_LOADS_THE_EXTENSION = re.compile(r"""run_line_magic\(['"]load_ext['"], ['"]mandala_ast['"]\)""")


def _needs_compiling(kind: str, frame: Any) -> str:
    """Why a block was not compiled, and how to have it compiled: a module whose source never
    names mandala_ast (it imports Q and the rest through a module of its own) is never a
    candidate, however it is run; IPython's ``%run`` compiles a script with Python's own
    ``compile``, which the notebook extension never sees."""
    message = _NEEDS_COMPILING.format(kind=kind)
    path = frame.f_code.co_filename
    text = "".join(linecache.getlines(path))
    if _an_ipython_cell(frame) and _LOADS_THE_EXTENSION.search(text):
        # Compiled before it ran, the cell that loads the extension is not (`ipython -c`).
        message += (
            ". In IPython or Jupyter the extension compiles the cells after the one that loads it, "
            "and this cell loads the extension itself: put `%load_ext mandala_ast` in a cell of its "
            "own, before this one (for `ipython -c` or a script run by ipython: `ipython --ext mandala_ast`)"
        )
    elif _an_ipython_cell(frame):
        message += (
            ". In IPython or Jupyter the extension compiles cells: this cell ran before "
            "`%load_ext mandala_ast` (or after `%unload_ext mandala_ast`); load it and run the cell again"
        )
    elif text and "mandala_ast" not in text:
        message += (
            f". {path} never mentions `mandala_ast`, and the hook (so `mandala-ast run` too) "
            "compiles only modules that do: import from mandala_ast itself, not through a "
            "module of your own, or name it in a comment"
        )
    elif text and _run_by_ipython(frame):
        message += (
            f". IPython's %run runs {path} as written (the notebook extension compiles cells "
            f"only): `mandala_ast.compile_module({path!r})` runs it compiled"
        )
    return message


def _an_ipython_cell(frame: Any) -> bool:
    """A cell's top level: it runs in the shell's namespace, from no file (``%run -i`` runs
    a script there too, from its file)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    at_top = shell is not None and frame.f_globals is shell.user_ns and frame.f_code.co_name == "<module>"
    return at_top and not os.path.isfile(frame.f_code.co_filename)


def _run_by_ipython(frame: Any) -> bool:
    """A script's top level (``__main__``, from a file) while an IPython shell runs: ``%run``."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    main = frame.f_globals.get("__name__") == "__main__" and frame.f_code.co_name == "<module>"
    return shell is not None and main


class QueryBlock(Block):
    """The block behind ``storage.query()`` (and ``storage.delete()``, ``delete=True``)."""

    #: a query computes nothing
    allow_new_calls = False

    def __init__(self, storage: Storage, *, delete: bool = False) -> None:
        self.storage = storage
        self.delete = delete
        self.compiled = False  # set by compiled code (hooks.query_block) before __enter__
        self.pattern = Pattern()
        self.query = Query(storage, self.pattern)
        self.names: dict[str, Any] = {}  # what compiled workflows expect of a block
        self.returned = None
        self.bool_lefts: list = []  # left operands of the `and`/`or` being evaluated (hooks.py)

    def __enter__(self) -> Query:
        return self._enter(sys._getframe(1))

    async def __aenter__(self) -> Query:
        """``async with storage.query()``, as an async function's run block is written: a
        query awaits nothing, so it is the plain block."""
        return self._enter(sys._getframe(1))

    async def __aexit__(self, *exc_info: Any) -> None:
        self.__exit__(*exc_info)

    def _enter(self, caller: Any) -> Query:
        check_block_allowed()  # before the compiling check: see block_refusal.py
        if not self.compiled:
            raise QueryError(_needs_compiling("delete" if self.delete else "query", caller))
        self.storage.engine.enter_block()
        push(self)
        return self.query

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        pop(self)
        self.pattern.close()
        if exc_type is None and self.delete:
            report = self.storage.delete_calls(self.query.matched_calls())
            self.query.report = report
            print(report)

    def call_async_op(self, op: Op, args: tuple, kwargs: dict) -> Any:
        """An async op called from code a query block reaches uncompiled for queries (a
        workflow's body): matched, as in the block itself; awaiting it gives its variables."""
        return self.call_op(op, args, kwargs)

    def call_op(self, op: Op, args: tuple, kwargs: dict) -> Any:
        outputs = op.join_outputs(tuple(self.pattern_call(op, args, kwargs)))
        return _AwaitableOutputs(outputs) if type(outputs) is tuple and type(op) is AsyncOp else outputs

    def call_op_with_refs(self, op: Op, args: tuple, kwargs: dict, input_refs: dict) -> tuple:
        return tuple(_Held(node) for node in self.pattern_call(op, args, kwargs))

    def pattern_call(self, op: Op, args: tuple, kwargs: dict) -> list:
        """The output variables of a new call node for ``op(*args, **kwargs)``."""
        try:
            bound = op.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise QueryError(f"op {op.name}: {exc}") from None
        arguments = flatten_bound(op.signature, bound.arguments)
        _check_not_ignored(op, arguments)
        inputs = {name: _input(op, name, value) for name, value in arguments.items() if name not in op.ignore}
        for name, value in inputs.items():
            check_same_branch(value, self.pattern.guard, f"op {op.name}, argument {name!r}")
        version_id = self.storage.engine.versions.version_id(op)
        return self.pattern.add_call(op, version_id, inputs, op.nout).outputs


def _check_not_ignored(op: Op, arguments: dict[str, Any]) -> None:
    """A variable (``Q()``, an op's output) given to an argument the op ignores binds
    nothing: such arguments are not stored. (A constant there is simply left out.)"""
    for name in op.ignore & arguments.keys():
        if isinstance(arguments[name], Node):
            raise QueryError(
                f"op {op.name}, argument {name!r}: the op ignores it (@op(ignore=...)), so it is not "
                f"stored and a query cannot bind {arguments[name].label} to it; leave it out"
            )


class _AwaitableOutputs(tuple):
    """An async op's outputs, taken apart as they are (``a, b = fetch(x)`` in a batch's code)
    or awaited (``a, b = await fetch(x)`` in a run block's)."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, tuple]:
        yield from ()
        return tuple(self)


class _Held:
    """What a run block would return from a call: here the value is a query variable."""

    __slots__ = ("value",)
    hid = cid = src = None

    def __init__(self, value: Node) -> None:
        self.value = value


def _input(op: Op, name: str, value: Any) -> Node | Const:
    if isinstance(value, Node):
        return value
    if _holds_node(value) and name.startswith("*") and not name.startswith("**"):  # *args (flatten_bound)
        raise QueryError(
            f"op {op.name}, argument {name!r}: a query variable passed through *args cannot be "
            "matched: a call stores its *args as one tuple. Pass only constants there, or "
            "leave the op's *args out of the query"
        )
    if _holds_node(value) and name in op.structure_inputs:
        # Its elements were stored apart from where they came from: no pattern to follow.
        raise QueryError(
            f"op {op.name}, argument {name!r}: a collection built of query variables cannot be "
            f"matched; bind the collection to one variable (`{name} = Q()`, or an op's "
            f"{op.structure_inputs[name]} output) and match its elements with `for e in {name}:`"
        )
    if _holds_node(value):
        raise QueryError(
            f"op {op.name}, argument {name!r}: a collection of query variables cannot be "
            "matched; annotate the parameter as MList/MDict/MSet and iterate it with `for`"
        )
    try:
        return Const(value, content_id(value))
    except UnhashableError as exc:
        raise QueryError(f"op {op.name}, argument {name!r}: {exc}") from None


def _holds_node(value: Any) -> bool:
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(isinstance(item, Node) for item in value)
    if isinstance(value, dict):
        return any(isinstance(item, Node) for item in (*value.keys(), *value.values()))
    return False


class Q:
    """A free query variable: ``n = Q()`` matches any stored value in that place.

    >>> with storage.query() as q:       # doctest: +SKIP
    ...     x = Q()
    ...     y = inc(x)
    >>> q.df()                           # doctest: +SKIP
       x  y
    0  1  2
    """

    def __new__(cls) -> Any:
        block = state.block
        if type(block) is not QueryBlock:
            raise QueryError("Q() stands for any stored value: use it inside `with storage.query():`")
        return block.pattern.free()

