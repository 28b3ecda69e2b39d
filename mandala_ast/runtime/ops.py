"""``@op`` and ``@workflow``: the decorated callables and how a call becomes named inputs."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import itertools
import json
import sys
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard

from .._errors import ArgumentError, OutputCountError
from . import blocks, parsing, structures
from .fingerprints import Fingerprint, fingerprint
from .hashing import UnhashableError, content_id, digest
from .pointers import unwrap as unwrap_pointers

__all__ = ["AsyncOp", "Op", "Workflow", "flatten_bound", "importable_as", "is_op", "op", "op_named", "workflow"]

_SERIALS = itertools.count()

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class Op:
    """A memoized function: a plain call outside storage blocks, stored and reused inside them.

    >>> @op
    ... def inc(x: int) -> int:
    ...     return x + 1
    >>> inc(1)          # outside any block: just a call
    2
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        nout: int | None = None,
        ignore: Iterable[str] = (),
        version: int = 0,
        track_files: bool = True,
        transient: bool | Iterable[int] = False,
        track_env: bool = True,
        ignore_env: Iterable[str] = (),
    ) -> None:
        if not isinstance(getattr(fn, "__qualname__", None), str):
            raise ArgumentError(
                f"@op needs a function (def, lambda or method), not {type(fn).__module__}.{type(fn).__qualname__} "
                f"{fn!r}: its calls are stored under the function's qualified name (wrap it: "
                "`@op def f(...): return target(...)`)"
            )
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.signature = inspect.signature(fn)
        self.name = f"{fn.__module__}.{fn.__qualname__}"
        self.nout = _output_count(fn) if nout is None else nout
        self.ignore = self._ignored(ignore, "parameter names")
        self.version = version
        #: Whether the files its body reads are dependencies of its calls (file_deps.py).
        self.track_files = track_files
        #: Whether the environment variables its body reads are dependencies (env_deps.py),
        #: but for these (a log path, a device list: where and how, not what).
        self.track_env = track_env
        self.ignore_env = self._ignored(ignore_env, "environment variable names", "ignore_env")
        self._check_ignore()
        #: Which outputs' values are left out of the storage (transient.py): True for all,
        #: else a frozenset of output indices (empty: none, False).
        self.transient = self._checked_transient(transient)
        self._positional_names = self._simple_positional_names()
        #: This op object, as a number: memo keys hold it instead of the op, so they hold
        #: nothing the garbage collector must keep visiting (identity.py's fast_key).
        self.serial = next(_SERIALS)
        self._default_cids: dict[str, bytes] | None = None

    def __reduce_ex__(self, protocol: Any) -> Any:
        # By name, as pickle sends functions: a process pool's worker imports the op, so
        # ``pool.map(op, xs)`` works (plain calls there). The default reduction would pickle
        # ``fn``, which pickle finds under its name only to meet this op instead and refuse.
        # An op no name reaches (defined in a function) keeps the default: cloudpickle
        # ships it whole, pickle refuses it, naming it.
        address = (self.fn.__module__, self.fn.__qualname__)
        if importable_as(self, *address):
            return op_named, address
        return super().__reduce_ex__(protocol)

    @functools.cached_property
    def fingerprint(self) -> Fingerprint:
        """The fingerprint of the op's own code (computed on first use, not at import), with
        what it closes over when a factory made it (ops of the same name and code over other
        values compute other things)."""
        own = fingerprint(self.fn, signature_defaults=False)
        if not getattr(self.fn, "__closure__", None):
            return own
        from .dependencies import with_closure  # dependencies imports this module

        return with_closure(own, self.fn)

    @functools.cached_property
    def version_id(self) -> bytes:
        """Name, manual version and code fingerprint: what identifies this version of the op."""
        return digest(b"op|%s|%d|%s" % (self.name.encode(), self.version, self.fingerprint.digest))

    @functools.cached_property
    def structure_inputs(self) -> dict[str, str]:
        """Parameters annotated MList/MDict/MSet: name -> "list"/"dict"/"set".

        Read on first use, not at decoration: annotations may name things defined later.

        >>> from mandala_ast import MList
        >>> @op
        ... def total(xs: MList[int]) -> int:
        ...     return sum(xs)
        >>> total.structure_inputs
        {'xs': 'list'}
        """
        return structures.input_kinds(self.fn, self.signature)

    @functools.cached_property
    def structure_outputs(self) -> dict[int, str]:
        """Outputs annotated MList/MDict/MSet: output index -> kind (empty for most ops).

        >>> from mandala_ast import MList
        >>> @op
        ... def squares(n: int) -> MList[int]:
        ...     return [i * i for i in range(n)]
        >>> squares.structure_outputs
        {0: 'list'}
        """
        return structures.output_kinds(self.fn, self.nout)

    @functools.cached_property
    def has_structures(self) -> bool:
        """Whether any input or output is stored elementwise: one test on the hot path."""
        return bool(self.structure_inputs or self.structure_outputs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        block = blocks.state.block
        if block is None:  # maybe a worker thread of a block opened in another thread
            block = blocks.lent_block(self.name)
            if block is None:
                args, kwargs = unwrap_pointers(args, kwargs)  # as in a block: the objects
                return self.fn(*args, **kwargs)
        return block.call_op(self, args, kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # Methods: the op is a descriptor, so `obj.method(x)` passes `obj` as `self` input.
        if instance is None:
            return self
        return functools.partial(self, instance)

    def __repr__(self) -> str:
        return f"<op {self.name} version={self.version}>"

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Name every argument of a call, defaults included (``*args`` as ``'*name'``)."""
        names = self._positional_names
        if names is not None and not kwargs and len(args) == len(names):
            return dict(zip(names, args))
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:  # as Python would say it, naming the function
            raise TypeError(f"{self.name}(): {error}") from None
        bound.apply_defaults()
        return flatten_bound(self.signature, bound.arguments)

    def identity_inputs(self, cids: dict[str, bytes], defaults: dict[str, bytes]) -> dict[str, bytes]:
        """Of the (non-ignored) inputs' content ids, those that make up the call's identity.

        ``defaults`` are the content ids of the defaults each parameter had when the storage
        first saw it. Leaving out arguments equal to them is what lets a parameter added later
        with a default find the calls stored before it existed, while a changed
        default value is a different call.
        """
        if not defaults:  # most ops have no defaults: every input counts
            return cids
        return {name: cid for name, cid in cids.items() if defaults.get(name) != cid}

    def split_outputs(self, result: Any) -> tuple[Any, ...]:
        """The op's return value as a tuple of ``nout`` outputs, or OutputCountError."""
        if self.nout == 1:
            return (result,)
        if self.nout == 0:
            if result is not None:
                raise OutputCountError(f"op {self.name} declares no outputs but returned {result!r}")
            return ()
        if not isinstance(result, (tuple, list)) or len(result) != self.nout:
            got = f"{len(result)} values" if isinstance(result, (tuple, list)) else repr(type(result))
            raise OutputCountError(f"op {self.name} declares {self.nout} outputs but returned {got}")
        return tuple(result)

    def join_outputs(self, outputs: tuple[Any, ...]) -> Any:
        """Inverse of :meth:`split_outputs`."""
        if self.nout == 1:
            return outputs[0]
        return None if self.nout == 0 else tuple(outputs)

    def output_names(self) -> list[str]:
        """Column names of the outputs in tables."""
        return ["output"] if self.nout == 1 else [f"output_{i}" for i in range(self.nout)]

    def signature_text(self) -> str:
        """The ``ops`` row's text of the op's signature, outputs and ignored arguments: what
        the command line and the export read without the code.

        >>> json.loads(inc.signature_text())["outputs"]      # doctest: +SKIP
        ['output']
        """
        return json.dumps({"signature": str(self.signature), "outputs": self.output_names(),
                           "ignore": sorted(self.ignore)})

    def default_cids(self) -> dict[str, bytes]:
        """Content ids of the current parameter defaults (unhashable defaults left out)."""
        if self._default_cids is None:
            self._default_cids = {
                name: cid
                for name, p in self.signature.parameters.items()
                if p.default is not inspect.Parameter.empty
                and (cid := _default_cid(p.default)) is not None
            }
        return self._default_cids

    def _simple_positional_names(self) -> tuple[str, ...] | None:
        params = self.signature.parameters.values()
        if all(p.kind in _POSITIONAL for p in params):
            return tuple(p.name for p in params)
        return None

    def _checked_transient(self, transient: Any) -> bool | frozenset[int]:
        """``transient=`` as True/False or a frozenset of output indices. Checked here: an index
        that names no output would store every value, silently."""
        if isinstance(transient, bool):
            return transient
        try:
            indices = frozenset(transient)
        except TypeError:
            raise ArgumentError(
                f"op {self.name}: transient= must be True, False or output indices, not {transient!r}"
            ) from None
        if not indices <= set(range(self.nout)):
            wrong = sorted(map(repr, indices - set(range(self.nout))))
            raise ArgumentError(
                f"op {self.name}: transient= names {', '.join(wrong)}, but it has {self.nout} "
                f"output{'s' * (self.nout != 1)}, numbered from 0 (transient=True: all of them)"
            )
        return indices or False

    def ignores_env(self, variable: str) -> bool:
        """Whether what its body reads of the environment variable is no dependency of its
        calls (``ignore_env`` names it, or ``track_env=False``): also for calls stored before
        the option was given.

        >>> op(ignore_env="LOG_PATH")(lambda: 1).ignores_env("LOG_PATH")
        True
        """
        return variable in self.ignore_env or not self.track_env

    def _ignored(self, ignore: Any, what: str, option: str = "ignore") -> frozenset[str]:
        # One name as a string is that name, not its letters (ignore="verbose").
        if isinstance(ignore, str):
            return frozenset({ignore})
        try:
            names = frozenset(ignore)
        except TypeError:
            names = frozenset({ignore})
        if not all(isinstance(name, str) for name in names):
            raise ArgumentError(f"op {self.name}: {option}= takes {what}, not {ignore!r}")
        return names

    def _check_ignore(self) -> None:
        unknown = self.ignore - set(self.signature.parameters)
        if unknown:
            raise ArgumentError(f"op {self.name}: ignore= names unknown parameters {sorted(unknown)}")


class AsyncOp(Op):
    """An ``async def`` op: ``await f(x)`` memoizes in run blocks; a batch runs its calls
    concurrently on one event loop (runtime/batch/asynchronous.py).

    >>> @op
    ... async def fetch(url: str) -> str:
    ...     return url.upper()
    >>> import asyncio; asyncio.run(fetch("a"))     # outside blocks: a plain coroutine
    'A'
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        block = blocks.state.block
        if block is None:
            block = blocks.lent_block(self.name)
            if block is None:
                return self.fn(*args, **kwargs)
        call_async_op = getattr(block, "call_async_op", None)  # run, noop, batch and query blocks have it
        if call_async_op is None:
            return self.fn(*args, **kwargs)
        return call_async_op(self, args, kwargs)


def is_op(f: Any) -> TypeGuard[Op]:
    """Whether ``f`` is an op, async ones included (by exact type: a cached fixture's is not
    one a block calls)."""
    return type(f) is Op or type(f) is AsyncOp


class Workflow:
    """A plain function that composes ops; it runs in the form of the block it is called from.

    Outside storage blocks it is an ordinary call.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<workflow {self.fn.__module__}.{self.fn.__qualname__}>"


def op(
    fn: Callable[..., Any] | None = None,
    *,
    nout: int | None = None,
    ignore: Iterable[str] = (),
    version: int = 0,
    track_files: bool = True,
    transient: bool | Iterable[int] = False,
    track_env: bool = True,
    ignore_env: Iterable[str] = (),
) -> Any:
    """Turn a function into a memoized op.

    ``nout`` overrides the output count taken from a ``tuple[...]`` return annotation;
    ``ignore`` names parameters that are not part of a call's identity; ``version`` bumps the
    op's identity by hand. ``track_files=False``: the files the body reads are not
    dependencies of its calls; ``track_env=False``: nor the environment variables it reads;
    ``ignore_env`` names variables that are not (a log path: where, not what).
    ``transient=True`` (or the indices of some outputs): their values
    are not stored (only their content ids), and computed again when a later block needs them.

    >>> @op(nout=2, ignore=("verbose",))
    ... def split(xs, verbose=False):
    ...     return xs[:1], xs[1:]
    """
    def make(f: Callable[..., Any]) -> Any:
        if isinstance(f, (staticmethod, classmethod)):
            # `@op` above `@staticmethod`/`@classmethod`: the op wraps the function and the
            # descriptor stays outermost, so `obj.method(x)` passes no instance (static) or
            # the class (class method), as it would without `@op`.
            return type(f)(make(f.__func__))
        kind = AsyncOp if inspect.iscoroutinefunction(f) else Op
        return kind(f, nout=nout, ignore=ignore, version=version, track_files=track_files, transient=transient,
                    track_env=track_env, ignore_env=ignore_env)

    return make if fn is None else make(fn)


def op_named(module: str, qualname: str) -> Any:
    """The object ``module.qualname``: how a pickled op is found again (Op.__reduce_ex__)."""
    target: Any = sys.modules.get(module) or importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    # A class method's op, reached through its class, comes bound to it: the op is inside.
    inner = getattr(target, "func", None) if isinstance(target, functools.partial) else getattr(target, "__func__", None)
    return inner if isinstance(inner, Op) else target


def importable_as(op: Op, module: str, qualname: str) -> bool:
    """Whether importing ``module.qualname`` gives ``op`` (so another process can find it)."""
    if "<locals>" in qualname:
        return False
    try:
        return op_named(module, qualname) is op
    except Exception:  # a module that fails to import, a name it does not (yet) have
        return False


def workflow(fn: Callable[..., Any]) -> Workflow:
    """Mark a function that composes ops (see :class:`Workflow`)."""
    return Workflow(fn)


def _default_cid(default: Any) -> bytes | None:
    # An unhashable default (a logger, a lock) simply never matches, so it is always recorded.
    try:
        return content_id(default)
    except UnhashableError:
        return None


def flatten_bound(signature: inspect.Signature, arguments: dict[str, Any]) -> dict[str, Any]:
    """Bound arguments by input name: ``*args`` as one ``'*name'`` input (left out when
    empty), each ``**kwargs`` item as ``'**key'``.

    >>> import inspect
    >>> flatten_bound(inspect.signature(lambda a, *r, **k: 0), {"a": 1, "r": (2,), "k": {"z": 3}})
    {'a': 1, '*r': (2,), '**z': 3}
    """
    flat: dict[str, Any] = {}
    for name, value in arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            if value:  # an empty *args leaves no trace, so adding *args later changes nothing
                flat[f"*{name}"] = value
        elif kind is inspect.Parameter.VAR_KEYWORD:
            flat.update({f"**{key}": item for key, item in value.items()})
        else:
            flat[name] = value
    return flat


def _output_count(fn: Callable[..., Any]) -> int:
    """k for a ``tuple[...]``/``Tuple[...]`` return annotation of k items, else 1."""
    annotation = inspect.signature(fn).return_annotation
    if annotation is inspect.Signature.empty:
        return 1
    if isinstance(annotation, str):
        return _output_count_from_text(annotation)
    origin = typing.get_origin(annotation)
    items = typing.get_args(annotation)
    if origin is tuple and items and items[-1] is not Ellipsis and items != ((),):
        return len(items)
    return 1


def _output_count_from_text(text: str) -> int:
    # `from __future__ import annotations` leaves the annotation as text; read it without eval.
    try:
        node = parsing.parse(text, mode="eval").body
    except SyntaxError:
        return 1
    if not isinstance(node, ast.Subscript):
        return 1
    base = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", "")
    if base not in ("tuple", "Tuple"):
        return 1
    items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    if any(isinstance(i, ast.Constant) and i.value is Ellipsis for i in items):
        return 1
    return len(items)
