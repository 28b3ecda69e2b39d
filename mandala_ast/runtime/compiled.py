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
import sys
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .blocks import LentBlock, RunBlock, lent_block, state
from .built import KINDS, UNKNOWN, BuiltRef, collection_ref, element_names
from .grown import Grown, elements_of, loose_ref
from .ops import AsyncOp, Op, Workflow
from .refs import InexactRefs, Ref

if TYPE_CHECKING:  # at run time, imported on first use by __getattr__ below
    from .query.hooks import (
        q_bool_end,
        q_bool_start,
        q_call,
        q_cmp,
        q_for,
        q_if,
        q_item,
        q_name,
        q_names,
        q_not,
        q_stmt_runs,
        query_block,
        query_refused,
    )

# The q_* and query_* names are what compiled query and delete blocks call (query/hooks.py).
__all__ = [
    "OPS",
    "built",
    "call",
    "callee",
    "callee_at",
    "forget",
    "put",
    "q_bool_end",
    "q_bool_start",
    "q_call",
    "q_cmp",
    "q_for",
    "q_if",
    "q_item",
    "q_name",
    "q_names",
    "q_not",
    "q_stmt_runs",
    "query_block",
    "query_refused",
    "raw",
    "ret",
    "ret_all",
    "settle",
    "v",
]

#: Callee types that take the provenance path; everything else is called directly.
OPS = frozenset({Op, Workflow})
#: Set while a batch block is open in any thread (runtime/batch/block.py): a plain callee's
#: deferred arguments must reach it as values. None otherwise: the run path pays one test.
plain_callee: Any = None


def v(x: Any, /) -> Any:
    """The plain value of ``x``."""
    return x.value if type(x) is Ref else x


def forget(key: str, value: Any, /) -> Any:
    """Drop provenance recorded for ``key``; returns ``value`` (emitted for non-op assignments)."""
    block = state.block or lent_block()
    if block is not None:
        block.names.pop(key, None)
    return value


class _Raw:
    """What :func:`raw` records for a name: the value it holds, which no op produced. Its
    ``value`` is never the value passed, so code looking for a name's Ref never takes it."""

    __slots__ = ("raw",)
    value = object()  # no argument is this object

    def __init__(self, raw: Any) -> None:
        self.raw = raw


def raw(key: str, value: Any, /) -> Any:
    """``y = <a value no op produced>`` (``y = 0``, ``y = y + 1``) where ``y`` receives op
    outputs elsewhere: while ``y`` holds ``value``, an op call given it records it as raw,
    exactly (else, as a name whose history is unknown, the call would be inexact); returns
    ``value``."""
    block = state.block or lent_block()
    if block is not None:
        block.names[key] = _Raw(value)
    return value


def ret(key: str | tuple | None, value: Any, /) -> Any:
    """``return y`` in a workflow: remember y's provenance for the caller; returns ``value``."""
    block = state.block or lent_block()
    if block is not None:
        block.returned = _entry(block, key, value) if key else None
    return value


def ret_all(keys: tuple, value: Any, /) -> Any:
    """``return a, b`` in a workflow: each element's provenance for the caller (``p, q =
    wf(...)``); returns ``value``."""
    block = state.block or lent_block()
    if block is not None:
        known = None
        if type(value) is tuple and len(value) == len(keys):
            known = tuple(_entry(block, key, item) if key else None for key, item in zip(keys, value))
        block.returned = known if known is not None and any(r is not None for r in known) else None
    return value


class _Outputs:
    """What ``b = f(x)`` records for an op with several outputs: ``b`` is a tuple, and
    ``b[i]`` (an argument keyed ``(key, i)``) is output i, with its own history."""

    __slots__ = ("refs", "value")

    def __init__(self, value: tuple, refs: tuple) -> None:
        self.value, self.refs = value, refs


def _entry(block, key: str | tuple, value: Any) -> Any:
    """The Ref recorded for ``key`` if it still holds ``value`` (``is``), else None."""
    if type(key) is tuple:
        outputs = block.names.get(key[0])
        if type(outputs) is not _Outputs or not 0 <= key[1] < len(outputs.refs):
            return None
        entry = outputs.refs[key[1]]
    else:
        entry = block.names.get(key)
        if type(entry) is _Outputs:  # a tuple of outputs has no history as a whole
            return None
    return entry if entry is not None and entry.value is value else None


def callee_at(scope: str | None, spec: tuple, f: Any, /) -> Any:
    """What compiled code calls in place of ``f`` (``callee_at(scope, spec, f)(*args)``):
    ``f`` itself unless ``f`` is an op or workflow and a block is active, then a one-shot
    caller that records provenance. ``f`` is evaluated once, as in ``f(*args)``, and the
    arguments are evaluated in the user's own frame on their own lines (tracebacks,
    ``sys.settrace``, breakpoints). ``spec`` names no scope: the sites of several functions
    with the same targets and keys share one constant, which the ``.pyc`` stores once."""
    kind = type(f)  # (once: every call compiled code makes, of plain functions too, comes here)
    if kind not in OPS:
        if kind is AsyncOp:
            return _awaited_at(scope, spec, f)
        if type(spec[0]) is str or spec[-1] is True:  # adds to, or is given, a list filled step by step
            return _adding_or_lending(scope, spec, f)
        return f if plain_callee is None else plain_callee(f)
    block = state.block
    if block is None:  # maybe a worker thread of another thread's block
        block = lent_block(getattr(f, "name", f.__qualname__))
        if block is None:
            return f
    known = _whole_specs.get(id(spec))  # whole_spec, inlined: this runs on every op call
    if known is None or known[0] is not spec or known[2] is not scope:
        known = _remember_at(scope, spec)
    return _OpCall(block, known[1], f)


def _awaited_at(scope: str | None, spec: tuple, f: AsyncOp) -> Any:
    """:func:`callee_at` of an async op: in a run block (or one lent to this thread), a caller
    whose coroutine records provenance as an op call's does; elsewhere (a batch, whose calls
    are deferred; a noop block) the op itself."""
    block = state.block or lent_block(f.name)
    if type(block) not in _BUILDING:
        return f
    known = _whole_specs.get(id(spec))
    if known is None or known[0] is not spec or known[2] is not scope:  # (as callee_at)
        known = _remember_at(scope, spec)
    return _AwaitedCall(block, known[1], f)


def callee(spec: tuple, f: Any, /) -> Any:
    """:func:`callee_at` for code written by hand: ``spec`` is ``(scope, targets, pos_keys,
    kw_keys[, site, slot])`` or, whole already, the same without its scope."""
    known = _whole_specs.get(id(spec))
    if known is None or known[0] is not spec:
        known = _remember(spec)
    return callee_at(None, known[1], f)


#: id(spec) -> (spec, its whole form, its scope). A compiled spec is a constant of its call
#: site's code, so each is expanded once per scope; the entry keeps the spec alive, so its id is
#: never reused while it is here. Bounded for code compiled again and again (exec in a loop).
_whole_specs: dict[int, tuple[tuple, tuple, Any]] = {}
#: (id(spec), scope) -> the same entry, for a spec that sites of several scopes share (the
#: entry above then holds the scope that last used it).
_scoped: dict[tuple[int, Any], tuple[tuple, tuple, Any]] = {}
_WHOLE_SPECS_MAX = 65536


def whole_spec(spec: tuple) -> tuple:
    """``(targets, pos_keys, kw_keys[, site, slot])`` with every key whole (``name@scope``).

    Code written by hand (and ``built``'s spec) passes ``(scope, targets, pos_keys,
    kw_keys[, site, slot])`` where a key of the call site's own scope is the bare name; a spec
    whose first item is not a string is whole already.

    >>> whole_spec(("f", ("y",), ("x@<module>", ("b", 1)), (("k", "z"),)))
    (('y@f',), ('x@<module>', ('b@f', 1)), (('k', 'z@f'),))
    """
    known = _whole_specs.get(id(spec))
    return known[1] if known is not None and known[0] is spec else _remember(spec)[1]


def _remember(spec: tuple) -> tuple[tuple, tuple, Any]:
    if len(_whole_specs) >= _WHOLE_SPECS_MAX:
        _forget_specs()
    whole = _expand(spec[0], spec[1:]) if type(spec[0]) is str else spec
    known = _whole_specs[id(spec)] = (spec, whole, None)
    return known


def _remember_at(scope: str | None, spec: tuple) -> tuple[tuple, tuple, Any]:
    """The entry of a compiled spec used in ``scope``; expanded once per scope."""
    known = _whole_specs[id(spec)] = _scoped_entry(scope, spec, _expand)
    return known


def _scoped_entry(scope: str | None, spec: tuple, expand: Callable[[str | None, tuple], tuple]) -> tuple[tuple, tuple, Any]:
    """``(spec, expand(scope, spec), scope)``, made once per spec and scope."""
    known = _scoped.get((id(spec), scope))
    if known is None:
        if len(_scoped) >= _WHOLE_SPECS_MAX:
            _forget_specs()
        known = _scoped[(id(spec), scope)] = (spec, expand(scope, spec), scope)
    return known


def _forget_specs() -> None:
    _whole_specs.clear()
    _scoped.clear()


def _expand(scope: str | None, spec: tuple) -> tuple:
    """A spec without its scope, ``(targets, pos_keys, kw_keys[, site, slot][, True])``, with
    its keys whole and without the mark of a call given a list filled step by step."""
    if spec[-1] is True:
        spec = spec[:-1]
    if scope is None:
        return spec
    targets, pos_keys, kw_keys = spec[:3]
    kw = tuple((word, _whole(key, scope)) for word, key in kw_keys) if kw_keys else None
    return (_whole_all(targets, scope), _whole_all(pos_keys, scope), kw, *spec[3:])


def _whole_all(keys: Any, scope: str) -> Any:
    return keys if keys is None or keys is ... else tuple(_whole(key, scope) for key in keys)


class _Soft(str):
    """The key of a name that holds a raw value, or a collection built by hand whose history
    the block may know (``~ys`` in a spec): with no Ref recorded for it, it is raw."""

    __slots__ = ()


class _Loose(str):
    """The key of a list or dict filled step by step (``?ys`` in a spec): what the block
    knows of it (``Grown``) if anything, else its elements are of unknown producer."""

    __slots__ = ()


def _whole(key: Any, scope: str | None) -> Any:
    if type(key) is tuple:
        return (_whole(key[0], scope), key[1])
    if key is not None and key is not ... and key[:1] == "~":
        return _Soft(_whole(key[1:], scope))
    if key is not None and key is not ... and key[:1] == "?":
        return _Loose(_whole(key[1:], scope))
    if key is None or key is ... or "@" in key or scope is None:  # whole already
        return key
    # Interned: every site's key for a variable is then one object, and the lookups of the
    # provenance table find it by identity.
    return sys.intern(f"{key}@{scope}")


def call(spec: tuple, f: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``callee(spec, f)(*args, **kwargs)`` in one call (for code written by hand)."""
    return callee(spec, f)(*args, **kwargs)


def settle(key: str, value: Any, /) -> Any:
    """``y = f(x)`` where ``y`` is bound elsewhere too: keep ``key``'s provenance only if the op
    call that produced ``value`` just recorded it (otherwise ``f`` was no op); returns ``value``."""
    block = state.block
    if block is not None:
        last = _thread.last
        if last is None or last[1] != id(value) or key not in last[0]:
            block.names.pop(key, None)
    return value


class _Thread(threading.local):
    #: site -> the op call whose arguments are being evaluated there (see _OpCall); weak: an
    #: argument that raises drops the call, which must not keep its block and values alive
    pending: dict[int, weakref.ref[Any]]  # _OpCall or _Collection
    #: (targets, id(result)) of the last op call that bound targets, for :func:`settle`. An id,
    #: not the result, so that it keeps nothing alive; it cannot be reused while it matters: a
    #: key settle keeps holds the result itself.
    last: tuple | None = None

    def __init__(self) -> None:
        self.pending = {}


_thread = _Thread()


class _OpCall:
    """One op call in progress: created when its callee is evaluated, called with its arguments.

    A call that is itself a direct argument of an op call (``add(y, inc(2))``) hands its output's
    history to that call: the spec's 4th item is a call's *site* (a number unique in its module)
    when some of its arguments are calls, and the 5th, ``(parent site, position or keyword)``,
    says where the call's output goes. The parent is found by site in a per-thread table: it
    registers there before its arguments run (Python evaluates the callee first) and leaves when
    called. The parent trusts a handed-over Ref only if it ``is`` the argument it receives.
    """

    __slots__ = ("__weakref__", "block", "collected", "f", "previous", "spec")

    def __init__(self, block: Any, spec: tuple, f: Any) -> None:
        self.block, self.spec, self.f = block, spec, f
        self.collected: dict[int | str, Ref] | None = None
        if len(spec) > 3 and spec[3] is not None:
            pending = _thread.pending
            self.previous = pending.get(spec[3])
            pending[spec[3]] = weakref.ref(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        spec = self.spec
        if len(spec) > 3 and spec[3] is not None:
            self._leave(_thread.pending, spec[3])
        refs, result = _dispatch(self.block, spec, self.f, args, kwargs, self.collected)
        if len(spec) > 4 and spec[4] is not None and refs is not None and len(refs) == 1:
            _hand_over(spec, refs[0])
        if spec[0]:
            _thread.last = (spec[0], id(result))
        return result

    def collect(self, where: int | str, known: Ref) -> None:
        if self.collected is None:
            self.collected = {}
        self.collected[where] = known

    def _leave(self, pending: dict, site: int) -> None:
        _leave(pending, site, self)


class _AwaitedCall(_OpCall):
    """One async op call in progress: its arguments' history is read when it is called, and
    its outputs' recorded once its coroutine is awaited, where a plain op call records them at
    once. Its output is handed to no enclosing call (the compiler gives it no slot): other
    coroutines of the thread run while it is awaited, and may take that call's site."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        block, spec = self.block, self.spec
        if len(spec) > 3 and spec[3] is not None:
            self._leave(_thread.pending, spec[3])
        hints = _argument_refs(block, args, kwargs, spec[1], spec[2], self.collected)
        named = _input_refs(block, spec, self.f, args, kwargs, hints)
        return _awaited(block, spec[0], self.f, block.call_async_op_with_refs(self.f, args, kwargs, named))


async def _awaited(block, targets: tuple | None, op: AsyncOp, running: Any) -> Any:
    outputs, refs = await running
    result = op.join_outputs(outputs)
    _bind_targets(block, targets, refs, result)
    if targets:
        _thread.last = (targets, id(result))
    return result


def _leave(pending: dict, site: int, caller: Any) -> None:
    """``caller`` (an op call or a collection in progress at ``site``) got its arguments: the
    site's entry goes back to the caller it hid (a recursive call of the same code)."""
    current = pending.get(site)
    if current is not None and current() is caller:
        if caller.previous is None:
            del pending[site]
        else:
            pending[site] = caller.previous


def _hand_over(spec: tuple, known: Any) -> None:
    """Give ``known`` to the op call or collection whose direct argument or element this is."""
    pending = _thread.pending.get(spec[4][0])
    parent = pending() if pending is not None else None
    if parent is not None:
        parent.collect(spec[4][1], known)


def built(spec: tuple, form: str, /) -> Any:
    """What compiled code calls in place of a list, tuple or dict display (``form`` ``"d"``)
    or comprehension (``"c"``) that may hold op outputs: ``built(spec, form)(collection)``
    returns the collection itself, and hands the op given it (or the name it is bound to) a
    Ref that records where its elements came from (runtime/built.py). Evaluated before the
    collection, as ``callee`` is before the arguments, so that the op calls among its elements
    (``[inc(x) for x in xs]``) hand their outputs to it. ``spec`` is ``(scope, targets, keys,
    None[, site, slot])``: a key per element of a display (``...`` for all of them when a
    ``*`` unpacking makes their positions unknown), the element's key for a comprehension."""
    block = state.block or lent_block()
    if block is None:
        return _unchanged
    known = _whole_specs.get(id(spec))
    if known is None or known[0] is not spec:
        known = _remember(spec)
    return _Collection(block, known[1], form)


def _unchanged(value: Any, /) -> Any:
    return value


#: Blocks that record calls one by one, where a collection's build call is recorded with the
#: call given it. Elsewhere (a batch's deferred calls, a noop block) the collection is raw, as
#: it was before its elements' history was recorded.
_BUILDING = frozenset({RunBlock, LentBlock})
_UNKNOWN = UNKNOWN


class _Collection:
    """One list, tuple or dict in progress (see :func:`built`): the Refs its direct elements'
    op calls handed over, by position, or in order (``*``) for a comprehension's."""

    __slots__ = ("__weakref__", "block", "collected", "form", "previous", "spec")

    def __init__(self, block: Any, spec: tuple, form: str) -> None:
        self.block, self.spec, self.form = block, spec, form
        self.collected: dict[int | str, Any] = {}
        if len(spec) > 3 and spec[3] is not None:
            pending = _thread.pending
            self.previous = pending.get(spec[3])
            pending[spec[3]] = weakref.ref(self)

    def collect(self, where: int | str, known: Ref) -> None:
        if where == "*":
            self.collected.setdefault("*", []).append(known)
        else:
            self.collected[where] = known

    def __call__(self, value: Any, /) -> Any:
        spec = self.spec
        if len(spec) > 3 and spec[3] is not None:
            _leave(_thread.pending, spec[3], self)
        made = self._ref(value) if type(self.block) in _BUILDING else None
        if made is not None and len(spec) > 4 and spec[4] is not None:
            _hand_over(spec, made)
        for key in spec[0] or ():  # with no Ref, raw: what `raw` recorded for it before
            self.block.names[key] = _Raw(value) if made is None else made
        return value

    def _ref(self, value: Any) -> BuiltRef | None:
        """A BuiltRef, or None (raw, as before) when no element has a Ref."""
        return collection_ref(value, self._found(elements_of(value)))

    def _found(self, elements: Any) -> Any:
        """Per element: its Ref, None (raw), or _UNKNOWN."""
        keys = self.spec[1]
        if self.form == "c":
            return _in_order(self.collected.get("*", ()), elements, keys[0])
        if type(keys) is not tuple or len(keys) != len(elements):  # `*xs`, a dict's keys twice
            keys = (...,) * len(elements)
        block, handed = self.block, map(self.collected.get, range(len(keys)))
        return map(functools.partial(_element, block), handed, keys, elements)


def _in_order(handed: Any, elements: Any, key: Any) -> Any:
    """A comprehension's elements: the Refs its element's op call handed over, step by step
    (a step whose callee was no op handed none)."""
    step = 0
    for element in elements:
        if step < len(handed) and handed[step].value is element:
            step += 1
            yield handed[step - 1]
        else:
            yield None if key is None else _UNKNOWN


def _element(block, handed: Any, key: Any, element: Any) -> Any:
    """An element's Ref, None (raw) or _UNKNOWN: handed over by its op call, or its name's."""
    if handed is not None and handed.value is element:
        return handed
    if key is None:
        return None
    if type(key) is _Loose and type(element) in KINDS:  # a list filled step by step
        return _filled(block, key, element)
    entry = _entry(block, key, element) if key is not ... else None
    if entry is not None:
        return entry
    return None if key is not ... and _holds_raw(block, key, element) else _UNKNOWN


# -- lists and dicts filled step by step (runtime/grown.py) --------------------------------------

#: ``block.names[LENT + key]``: the list under ``key`` went to a call that was no op (or to a
#: workflow), which may have added to it out of sight: its elements are of unknown producer
#: for the rest of the block. Per name, not per list: a list bound again in a loop may be the
#: one a helper kept (only ever less exact, never wrong).
LENT = "!"


#: What a list's own method adds: one element (``"a"``), one at position 1 (``"i"``), an
#: iterable's elements (``"e"``). The compiled spec does not say: the method called does.
_FORMS = {"append": "a", "insert": "i", "extend": "e"}


def _adding_or_lending(scope: str | None, spec: tuple, f: Any) -> Any:
    """:func:`callee_at` of a call that is no op, whose compiled spec is ``(key, element key[,
    site])`` for ``ys.append(e)``, ``ys.insert(i, e)``, ``ys.extend(e)`` on a list compiled
    code follows, which returns a caller that notes what ``f`` adds (:func:`put`); or a call's
    spec whose last item is ``True``, for a call given such a list (``?ys`` among its keys),
    which marks it lent."""
    block = state.block or lent_block()
    if block is None:
        return f if plain_callee is None else plain_callee(f)
    if spec[-1] is not True:
        if type(block) not in _BUILDING:
            return f if plain_callee is None else plain_callee(f)
        return _Put(block, _adding_spec(scope, spec), _FORMS[f.__name__], f.__self__, f)
    whole = _remember_at(scope, spec)[1]
    for key in (*(whole[1] if type(whole[1]) is tuple else ()), *(key for _, key in whole[2] or ())):
        if type(key) is _Loose:
            block.names[LENT + key] = True
    return f if plain_callee is None else plain_callee(f)


def _adding_spec(scope: str | None, spec: tuple) -> tuple:
    """``(key, element key, site)``, keys whole, of a compiled ``(key, element key[, site])``."""
    return _scoped_entry(scope, spec, _expand_adding)[1]


def _expand_adding(scope: str | None, spec: tuple) -> tuple:
    return (_whole(spec[0], scope), _whole(spec[1], scope), spec[2] if len(spec) > 2 else None)


def put(spec: tuple, container: Any, /) -> Any:
    """What ``ys += e`` (``form`` ``"e"``) or ``d[k] = e`` (``"a"``) adds to a list or dict
    compiled code follows: ``put(spec, container)(e)`` returns ``e`` (an iterator's elements
    as a list) and notes its elements with their producers, handed over by their op calls as a
    collection's are. ``spec`` is ``(scope, key, element key, site, form)``."""
    block = state.block or lent_block()
    if block is None or type(block) not in _BUILDING:
        return _unchanged
    whole = _whole_specs.get(id(spec))
    if whole is None or whole[0] is not spec:
        if len(_whole_specs) >= _WHOLE_SPECS_MAX:
            _forget_specs()
        scope, key, element, site, _form = spec
        whole = _whole_specs[id(spec)] = (spec, (_whole(key, scope), _whole(element, scope), site), None)
    return _Put(block, whole[1], spec[4], container, None)


class _Put:
    """One adding in progress: what its element's op calls handed over; ``method`` the list's
    own (``ys.append``), called with the arguments as written, or None (``put``: the value is
    returned, for the statement to add). ``spec`` is ``(key, element key, site)``, ``form``
    what is added (``_FORMS``)."""

    __slots__ = ("__weakref__", "block", "collected", "container", "form", "method", "previous", "spec")

    def __init__(self, block: Any, spec: tuple, form: str, container: Any, method: Any) -> None:
        self.block, self.spec, self.form, self.container, self.method = block, spec, form, container, method
        self.collected: dict[int | str, Any] = {}
        if spec[2] is not None:
            pending = _thread.pending
            self.previous = pending.get(spec[2])
            pending[spec[2]] = weakref.ref(self)

    collect = _Collection.collect

    def __call__(self, *args: Any) -> Any:
        (key, element_key, site), form = self.spec, self.form
        where = 1 if form == "i" else 0
        value = args[where] if len(args) > where else None
        if form == "e" and type(value) not in (list, tuple) and value is not None:
            value = list(value)  # a generator's element calls hand over while it runs
        if site is not None:
            _leave(_thread.pending, site, self)
        if len(args) == where + 1:
            self._note(key, self._found(form, element_key, value))
        if self.method is None:
            return value
        return self.method(*args[:where], value, *args[where + 1:])

    def _note(self, key: str, found: Any) -> None:
        record = self.block.names.get(key)
        if type(record) is not Grown or record.value is not self.container:
            # filled before the block began, or bound anew: what it holds now is unknown
            record = self.block.names[key] = Grown(self.container)
        for element, producer in found:
            record.add(element, producer)

    def _found(self, form: str, key: Any, value: Any) -> Any:
        """``(element, its Ref, None or _UNKNOWN)`` of what is added."""
        if form != "e":
            return ((value, _element(self.block, self.collected.get(0), key, value)),)
        handed = self.collected.get(0)
        if type(handed) is BuiltRef and handed.value is value and handed.kind != "dict":
            found = dict(handed.parts)
            found.update((name, _UNKNOWN) for name, _ in handed.unknown)
            return zip(value, map(found.get, element_names(handed.kind, value)))
        if "*" in self.collected:
            return zip(value, _in_order(self.collected["*"], value, key))
        return ((element, None if key is None else _UNKNOWN) for element in value)


def _filled(block, key: Any, value: Any) -> BuiltRef | None:
    """The BuiltRef of a list filled step by step, given to an op or put in a collection;
    None: raw (no producer to record, or a batch or noop block)."""
    if type(block) not in _BUILDING:
        return None
    entry = block.names.get(key)
    if type(entry) is Grown and entry.value is value and not block.names.get(LENT + key):
        return entry.ref()
    if type(entry) is BuiltRef and entry.value is value and entry.intact():  # `ys = [a]`, filled later
        return entry
    return loose_ref(value)


def _dispatch(block, spec: tuple, f: Any, args: tuple, kwargs: dict, collected) -> tuple[tuple | None, Any]:
    targets, pos_keys, kw_keys = spec[:3]
    hints = _argument_refs(block, args, kwargs, pos_keys, kw_keys, collected)
    if type(f) is Workflow:
        refs, result = _run_workflow(block, f, args, kwargs, hints, pos_keys, kw_keys)
    else:
        refs = block.call_op_with_refs(f, args, kwargs, _input_refs(block, spec, f, args, kwargs, hints))
        result = f.join_outputs(tuple(r.value for r in refs))
    _bind_targets(block, targets, refs, result)
    return refs, result


def _input_refs(block, spec: tuple, op: Op, args: tuple, kwargs: dict, hints: dict) -> dict[str, Ref]:
    """The Refs the op call records, by parameter name: InexactRefs when an argument may be an
    op's output whose history is unknown (and the op does not ignore it)."""
    pos_keys, kw_keys = spec[1:3]
    named = _refs_by_name(op, hints)
    if _unproven_part(block, pos_keys, kw_keys, hints, args, kwargs) and not (
        op.ignore and _only_ignored(block, op, (pos_keys, kw_keys, hints, args, kwargs))
    ):
        return InexactRefs(named)
    return named


def _argument_refs(block, args, kwargs, pos_keys, kw_keys, collected) -> dict[int | str, Ref]:
    """Refs known for the call's arguments, by position or keyword: handed over by the direct
    argument calls, or recorded for the names passed."""
    hints: dict[int | str, Ref] = {}
    keys = pos_keys if type(pos_keys) is tuple else None  # `...`: a call with *args
    for i, arg in enumerate(args):
        known = _known(block, arg, keys[i] if keys else None, collected, i)
        if known is not None:
            hints[i] = known
    for name, arg in kwargs.items():
        key = dict(kw_keys).get(name) if kw_keys else None
        known = _known(block, arg, key, collected, name)
        if known is not None:
            hints[name] = known
    return hints


def _unproven_part(block, pos_keys, kw_keys, hints: dict, args: tuple, kwargs: dict) -> bool:
    """True if an argument with no known history may be an op's output: the compiler gave it
    a key (a name, ``b[i]``) or ``...`` (a helper's result, ``await``, ``*args``), not None
    (a literal, an operator's result, a name only ever bound to such values). Its producer
    cannot be recorded, and "no producer" would be a wrong claim: the call is recorded
    inexact, and such inputs are matched by content, as for uncompiled code."""
    # Runs on every op call: no list is built; an argument with a history costs one lookup.
    if type(pos_keys) is tuple:
        for where, key in enumerate(pos_keys):
            if key is not None and where not in hints and not _holds_raw(block, key, args[where]):
                return True
    elif pos_keys is ... and any(where not in hints for where in range(len(args))):
        return True
    return _unproven_keyword(block, kw_keys, hints, kwargs) if kw_keys else False


def _unproven_keyword(block, kw_keys: tuple, hints: dict, kwargs: dict) -> bool:
    written = dict(kw_keys)
    unknown = ... if "**" in written else None  # the others came from a `**` mapping
    for word, value in kwargs.items():
        key = written.get(word, unknown)
        if key is not None and word not in hints and not _holds_raw(block, key, value):
            return True
    return False


def _only_ignored(block, op: Op, call: tuple) -> bool:
    """Whether every argument :func:`_unproven_part` found is one the op ignores (no input)."""
    names = _op_parameter_names(op.signature)
    return all(_parameter_name(names, where) in op.ignore for where in _unproven_places(block, *call))


def _unproven_places(block, pos_keys, kw_keys, hints: dict, args: tuple, kwargs: dict) -> Any:
    """The positions and keywords :func:`_unproven_part` tests, one by one (a slower path)."""
    for where, value in (*enumerate(args), *kwargs.items()):
        key = _spec_key(pos_keys, kw_keys, where)
        if key is not None and where not in hints and not _holds_raw(block, key, value):
            yield where


def _holds_raw(block, key: Any, value: Any) -> bool:
    """Whether the name ``key`` was last bound by :func:`raw` to ``value`` (or is raw unless
    told otherwise: a ``_Soft`` key with no Ref of its value, a ``_Loose`` one's collection
    none of whose elements has a producer)."""
    if type(key) is not str:
        return type(key) is _Soft or (type(key) is _Loose and type(value) in KINDS)
    entry = block.names.get(key)
    return type(entry) is _Raw and entry.raw is value


def _known(block, arg: Any, key: str | tuple | None, collected, where: int | str) -> Ref | None:
    entry = collected.get(where) if collected else None
    if entry is not None and entry.value is arg:
        return entry
    if type(key) is _Loose and type(arg) in KINDS:
        return _filled(block, key, arg)
    return _entry(block, key, arg) if key is not None else None


def _refs_by_name(op: Op, hints: dict[int | str, Ref]) -> dict[str, Ref]:
    if not hints:
        return {}
    names = _op_parameter_names(op.signature)
    named = {}
    for where, known in hints.items():
        name = _parameter_name(names, where)
        if name is not None:
            named[name] = known
    return named


#: id(an op's signature) -> (that signature, its parameter names). By identity: the lru_cache
#: below hashes the Signature (every parameter's name, kind, default and annotation), which
#: cost about a sixth of a compiled warm hit.
_names_by_signature: dict[int, tuple[inspect.Signature, tuple]] = {}


def _op_parameter_names(signature: inspect.Signature) -> tuple[tuple[str, ...], frozenset[str]]:
    known = _names_by_signature.get(id(signature))
    if known is None or known[0] is not signature:
        if len(_names_by_signature) >= 4096:  # ops made in a loop
            _names_by_signature.clear()
        known = _names_by_signature[id(signature)] = (signature, _parameter_names(signature))
    return known[1]


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


def _run_workflow(block, wf: Workflow, args, kwargs, hints, pos_keys, kw_keys) -> tuple[tuple | None, Any]:
    """Each parameter takes on its argument's history: a Ref, raw (a literal: the body's op
    calls given it are exact), or none (unknown: they are inexact)."""
    scope = wf.fn.__qualname__
    signature = inspect.signature(wf.fn)
    bound = signature.bind(*args, **kwargs)
    names = _parameter_names(signature)
    for where, value in (*enumerate(args), *kwargs.items()):
        name = _parameter_name(names, where)
        if name is None or bound.arguments.get(name) is not value:
            continue
        key, known = f"{name}@{scope}", hints.get(where)
        _given_to_a_workflow(block, _spec_key(pos_keys, kw_keys, where))
        if known is not None:
            block.names[key] = known
        elif _raw_argument(block, _spec_key(pos_keys, kw_keys, where), value):
            block.names[key] = _Raw(value)
        else:
            block.names.pop(key, None)
    block.returned = None
    result = wf.fn(*args, **kwargs)
    returned, block.returned = block.returned, None
    if type(returned) is tuple:  # ret_all: one Ref (or None) per element
        return returned, result
    return ((returned,) if returned is not None else None), result


def _given_to_a_workflow(block, key: Any) -> None:
    """A followed list a workflow's body may fill out of sight: unknown from now on."""
    if type(key) is _Loose:
        block.names[LENT + key] = True


def _spec_key(pos_keys, kw_keys, where: int | str) -> Any:
    """The compiler's key for the argument at position or keyword ``where`` (see the spec)."""
    if type(where) is int:
        return pos_keys[where] if type(pos_keys) is tuple else pos_keys
    written = dict(kw_keys or ())
    return written.get(where, ... if "**" in written else None)


def _raw_argument(block, key: Any, value: Any) -> bool:
    return key is None or _holds_raw(block, key, value)


def _bind_targets(block, targets: tuple | None, refs: tuple | None, result: Any) -> None:
    if not targets:
        return
    if len(targets) == 1 and refs is not None and len(refs) > 1:
        block.names[targets[0]] = _Outputs(result, refs)
        return
    if refs is None or len(refs) != len(targets):
        for key in targets:
            block.names.pop(key, None)
        return
    for key, known in zip(targets, refs):
        block.names[key] = known


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
