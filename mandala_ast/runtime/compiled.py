"""The runtime half of compiled code: exact provenance while users only see plain values.

Compiled modules refer to this module as ``__mandala_rt__`` (contract:
``docs/compiled-runtime-contract.md``). User variables always hold plain values; the active
block keeps, per provenance key ``name@scope``, the :class:`Ref` the name last received from an
op. An entry is trusted only while ``entry.value is`` the object passed now, so a stale key can
never attach the wrong history to a value; ``forget`` makes re-assignments exact as well.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from .blocks import lent_block, state
from .ops import Op, Workflow
from .refs import Ref

# The q_* and query_* names are what compiled query and delete blocks call (query/hooks.py).
__all__ = [
    "OPS",
    "call",
    "forget",
    "q_bool_end",
    "q_bool_start",
    "q_call",
    "q_cmp",
    "q_for",
    "q_if",
    "q_name",
    "q_names",
    "q_not",
    "q_stmt_runs",
    "query_block",
    "query_refused",
    "ref",
    "ret",
    "v",
]

#: Callee types that take the provenance path; everything else is called directly.
OPS = frozenset({Op, Workflow})


def v(x: Any, /) -> Any:
    """The plain value of ``x``."""
    return x.value if type(x) is Ref else x


def forget(key: str, value: Any, /) -> Any:
    """Drop provenance recorded for ``key``; returns ``value`` (emitted for non-op assignments)."""
    block = state.block or lent_block()
    if block is not None:
        block.names.pop(key, None)
    return value


def ret(key: str | None, value: Any, /) -> Any:
    """``return y`` in a workflow: remember y's provenance for the caller; returns ``value``."""
    block = state.block or lent_block()
    if block is not None:
        entry = block.names.get(key) if key else None
        block.returned = entry if entry is not None and entry.value is value else None
    return value


def call(spec: tuple, f: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Call op or workflow ``f`` with provenance; returns plain value(s), as ``f(...)`` would."""
    refs, result = _dispatch(spec, f, args, kwargs)
    return result


def ref(spec: tuple, f: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Like :func:`call`, for a call that is a direct argument of another call: returns a Ref
    (so the outer call learns this output's history) when ``f`` has exactly one output."""
    refs, result = _dispatch(spec, f, args, kwargs)
    return refs[0] if refs is not None and len(refs) == 1 else result


def _dispatch(spec: tuple, f: Any, args: tuple, kwargs: dict) -> tuple[tuple | None, Any]:
    block = state.block
    if block is None and type(f) in OPS:  # maybe a worker thread of another thread's block
        block = lent_block(getattr(f, "name", f.__qualname__))
    if block is None or type(f) not in OPS:
        return None, f(*_plain(args), **_plain_kw(kwargs))
    targets, pos_keys, kw_keys = spec
    hints = _argument_refs(block, args, kwargs, pos_keys, kw_keys)
    args, kwargs = _plain(args), _plain_kw(kwargs)
    if type(f) is Workflow:
        refs, result = _run_workflow(block, f, args, kwargs, hints)
    else:
        refs = block.call_op_with_refs(f, args, kwargs, _refs_by_name(f, hints))
        result = f.join_outputs(tuple(r.value for r in refs))
    _bind_targets(block, targets, refs)
    return refs, result


def _argument_refs(block, args, kwargs, pos_keys, kw_keys) -> dict[int | str, Ref]:
    """Refs known for the call's arguments, by position or keyword."""
    hints: dict[int | str, Ref] = {}
    for i, arg in enumerate(args):
        known = _known(block, arg, pos_keys[i] if pos_keys else None)
        if known is not None:
            hints[i] = known
    for name, arg in kwargs.items():
        key = dict(kw_keys).get(name) if kw_keys else None
        known = _known(block, arg, key)
        if known is not None:
            hints[name] = known
    return hints


def _known(block, arg: Any, key: str | None) -> Ref | None:
    if type(arg) is Ref:
        return arg
    if key is None:
        return None
    entry = block.names.get(key)
    return entry if entry is not None and entry.value is arg else None


def _refs_by_name(op: Op, hints: dict[int | str, Ref]) -> dict[str, Ref]:
    if not hints:
        return {}
    names = _parameter_names(op.signature)
    named = {}
    for where, known in hints.items():
        name = _parameter_name(names, where)
        if name is not None:
            named[name] = known
    return named


@functools.lru_cache(maxsize=1024)
def _parameter_names(signature: inspect.Signature) -> tuple[tuple[str, ...], frozenset[str]]:
    """(positional parameter names in order, all parameter names) of a signature."""
    params = signature.parameters.values()
    positional = tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    return positional, frozenset(p.name for p in params)


def _parameter_name(names: tuple, where: int | str) -> str | None:
    positional, every = names
    if isinstance(where, str):
        return where if where in every else f"**{where}"
    # An argument that lands in *args is one element of a tuple input: no history of its own.
    return positional[where] if where < len(positional) else None


def _run_workflow(block, wf: Workflow, args, kwargs, hints) -> tuple[tuple | None, Any]:
    scope = wf.fn.__qualname__
    signature = inspect.signature(wf.fn)
    bound = signature.bind(*args, **kwargs)
    names = _parameter_names(signature)
    for where, known in hints.items():
        name = _parameter_name(names, where)
        if name is not None and bound.arguments.get(name) is known.value:
            block.names[f"{name}@{scope}"] = known
    block.returned = None
    result = wf.fn(*args, **kwargs)
    returned, block.returned = block.returned, None
    return ((returned,) if returned is not None else None), result


def _bind_targets(block, targets: tuple | None, refs: tuple | None) -> None:
    if not targets:
        return
    if refs is None or len(refs) != len(targets):
        for key in targets:
            block.names.pop(key, None)
        return
    for key, known in zip(targets, refs):
        block.names[key] = known


def _plain(args: tuple) -> tuple:
    if any(type(a) is Ref for a in args):
        return tuple(a.value if type(a) is Ref else a for a in args)
    return args


def _plain_kw(kwargs: dict) -> dict:
    if any(type(a) is Ref for a in kwargs.values()):
        return {k: (a.value if type(a) is Ref else a) for k, a in kwargs.items()}
    return kwargs


# Query and delete blocks call these; most compiled modules have none, so the query engine is
# imported on first use (every compiled module imports this module).
_QUERY_HOOKS = frozenset(name for name in __all__ if name.startswith("q"))


def __getattr__(name: str) -> Any:
    if name not in _QUERY_HOOKS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .query import hooks

    value = getattr(hooks, name)
    globals()[name] = value
    return value
