"""Call identity: an op call's named arguments, their content ids, and the call's own ids.

The first step of every memoized call (docs/architecture.md has the ids glossary):

- ``cid``: content id of a value (hashing.py); a call's cid hashes its op version id and
  the cids of the inputs that make up its identity.
- call history id: the same, with the value history id of each input compiled code knows the
  producer of; equal to the cid when it knows none.
- row id: the call history id together with the deps id (the dependency state the call ran
  under): the id of the call's row, and what ``storage.df(op)["call"]`` shows.
- value history id: that of an op output derives from its call's row id and output index
  (:func:`output_history_id`); a raw value's is its cid.

Nothing here takes the storage's lock: threads hash their arguments at the same time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import ValueEncodingError
from . import lazy_collections, renames, transient
from .differences import short_repr
from .hashing import UnhashableError, content_id, digest
from .refs import UNKNOWN, InexactRefs, Ref

if TYPE_CHECKING:
    from .ops import Op
    from .versions import VersionTracker

__all__ = [
    "MISSING",
    "CallIdentity",
    "HashedInputs",
    "call_id",
    "content_key",
    "describe",
    "describe_args",
    "fast_key",
    "hash_inputs",
    "hash_or_explain",
    "identify",
    "identify_many",
    "identify_unignored",
    "output_history_id",
    "output_refs",
]

#: A cache's "no entry" (None may be a cached result).
MISSING = object()
#: Argument types whose Python equality is content equality (floats: see fast_key).
_FAST_TYPES = frozenset({int, str, bool, type(None), bytes, float})
#: Types no value of another type in _FAST_TYPES equals (True == 1, 1.0 == 1; "1" != b"1").
_UNTYPED_KEYS = frozenset({int, str})

#: ``(named arguments, their content ids)``: what hashing a call's inputs gives.
HashedInputs = tuple[dict[str, Any], dict[str, bytes]]


class CallIdentity:
    """One call's identity: its inputs and their cids, its cid, its call history id, and once
    the dependency state it runs (or ran) under is known, its deps id and row id.

    >>> call = identify(inc, hash_inputs(inc, (1,), {}, {}), None, tracker)   # doctest: +SKIP
    >>> call.history_id == call.cid     # no input with a known producer
    True
    """

    __slots__ = (
        "op", "version_id", "bound", "cids", "cid", "history_id", "sources", "exact", "deps_id", "row_id", "built"
    )

    def __init__(
        self,
        op: Op,
        version_id: bytes,
        bound: dict[str, Any],
        cids: dict[str, bytes],
        cid: bytes,
        history_id: bytes,
        sources: dict[str, tuple[bytes, int]],
        exact: bool,
    ) -> None:
        self.op, self.version_id, self.bound, self.cids = op, version_id, bound, cids
        self.cid, self.history_id, self.sources, self.exact = cid, history_id, sources, exact
        self.deps_id: bytes | None = None
        self.row_id: bytes | None = None
        #: the collections built by hand among its sources (runtime/built.py), recorded with it
        self.built: tuple[Ref, ...] = ()

    def set_state(self, deps_id: bytes) -> None:
        """The call ran (or was found) under dependency state ``deps_id``: its row id follows."""
        self.deps_id = deps_id
        self.row_id = digest(b"row|%s|%s" % (self.history_id, deps_id))

    def describe(self) -> str:
        return describe(self.bound)


def hash_inputs(op: Op, args: tuple, kwargs: dict, aliases: dict[bytes, bytes]) -> HashedInputs:
    """The call's named arguments and their content ids.

    ``aliases`` maps the id a loaded value hashes to onto the id it was stored under
    (loading.py's round-trip check): a loaded value passed on unchanged is the stored value.
    """
    bound = op.bind(args, kwargs)
    return bound, input_cids(op, bound, aliases)


def input_cids(op: Op, bound: dict[str, Any], aliases: dict[bytes, bytes]) -> dict[str, bytes]:
    """Content ids of the named arguments the op does not ignore (a collection of stored
    transient outputs by its elements' ids, where the storage recorded them)."""
    hashed = lazy_collections.content_id_of if transient.lazy_made() else content_id
    try:
        if not op.ignore:
            cids = dict(zip(bound, map(hashed, bound.values())))
        else:
            cids = {n: hashed(v) for n, v in bound.items() if n not in op.ignore}
    except UnhashableError:
        for name, value in bound.items():
            if name not in op.ignore:  # an ignored argument is never hashed: not the culprit
                hash_or_explain(op, f"argument {name!r}", value)
        raise
    if aliases:
        return {name: aliases.get(cid, cid) for name, cid in cids.items()}
    return cids


def identify(op: Op, hashed: HashedInputs, input_refs: dict[str, Ref] | None, versions: VersionTracker) -> CallIdentity:
    """The identity of a call of ``op`` with ``hashed`` inputs, given the Refs compiled code
    knows for some of them (None from uncompiled code)."""
    bound, cids = hashed
    version_id = versions.version_id(op)  # after hashing: a bad argument leaves no trace
    ident = op.identity_inputs(cids, versions.defaults(op))
    renamed = versions.identity_names(op)  # {} unless arguments were renamed (renames.py)
    if renamed:
        ident = renames.renamed(ident, renamed)
    cid = _content_call_id(version_id, ident)
    # Compiled code knows an argument's history while it holds the same object; the object
    # may have been changed since (model.fit(...), tags.add(...)): its history then no
    # longer says what it is, its content does.
    sources = {n: r.src for n, r in input_refs.items() if cids.get(n) == r.cid} if input_refs else {}
    # ...and then "no producer" is no exact claim either: such a call is matched by content.
    exact = input_refs is not None and type(input_refs) is not InexactRefs and not _changed(input_refs, cids, sources)
    unknown = input_refs is not None and not exact
    if not sources and not unknown:
        return CallIdentity(op, version_id, bound, cids, cid, cid, sources, exact)
    # An argument left at its default is not part of the content key, but its history is:
    # g(inc(1)) and g(dec(3)) are different calls even when both pass the default 2.
    histories = dict(ident)
    histories.update((renamed.get(name, name), input_refs[name].hid) for name in sources)  # type: ignore[index]
    if unknown:  # not the history of raw values: inc(helper(inc(100))) is not inc(101) typed in
        histories[UNKNOWN] = UNKNOWN.encode()
    identity = CallIdentity(op, version_id, bound, cids, cid, call_id(version_id, histories), sources, exact)
    identity.built = tuple(input_refs[name] for name in sources if input_refs[name].is_built)  # type: ignore[index]
    return identity


def identify_unignored(op: Op, hashed: HashedInputs, versions: VersionTracker) -> CallIdentity | None:
    """The identity a call of ``op`` had before ``ignore=`` named some of its arguments: keyed
    with them, as given now (None if one cannot be hashed: it was never keyed so)."""
    bound, cids = hashed
    try:
        cids = {**cids, **{name: content_id(bound[name]) for name in op.ignore if name in bound}}
    except UnhashableError:
        return None
    ident = op.identity_inputs(cids, versions.defaults(op))
    renamed = versions.identity_names(op)
    if renamed:
        ident = renames.renamed(ident, renamed)
    version_id = versions.version_id(op)
    cid = call_id(version_id, ident)
    return CallIdentity(op, version_id, bound, cids, cid, cid, {}, False)


def _changed(input_refs: dict[str, Ref], cids: dict[str, bytes], sources: dict) -> bool:
    """Whether an argument compiled code knew the history of (not an ignored one) was changed
    in place since (``xs.append(9)``)."""
    return len(sources) != len(input_refs) and any(n in cids and n not in sources for n in input_refs)


def identify_many(items: list[tuple], versions: VersionTracker) -> list[CallIdentity]:
    """:func:`identify` for many ``(op, hashed, input_refs)`` (a batch's wave): the same
    identities, with what is the same for every call of an op (its version id, defaults,
    renamed arguments, the order its argument names hash in) looked up once per op."""
    per_op: dict[int, tuple] = {}
    identified = []
    for op, hashed, input_refs in items:
        known = per_op.get(id(op))
        if known is None:
            known = per_op[id(op)] = (op, versions.version_id(op), versions.defaults(op), versions.identity_names(op), {})
        _, version_id, defaults, renamed, makers = known
        bound, cids = hashed
        if input_refs or defaults or renamed:  # anything but content ids alone: as one call
            identified.append(identify(op, hashed, input_refs, versions))
            continue
        names = tuple(cids)
        make = makers.get(names)
        if make is None:
            make = makers[names] = _call_id_maker(version_id, names)
        cid = make(cids)
        exact = input_refs is not None and type(input_refs) is not InexactRefs
        identified.append(CallIdentity(op, version_id, bound, cids, cid, cid, {}, exact))
    return identified


def _call_id_maker(version_id: bytes, names: tuple[str, ...]) -> Any:
    """:func:`call_id` for ids named ``names``, with the bytes between the ids joined once."""
    order = sorted(names)
    heads = [name.encode() + b"\0" for name in order]
    heads[:1] = [version_id + heads[0]] if heads else []
    if not order:
        return lambda ids: digest(version_id)
    if len(order) == 1:
        head, name = heads[0], order[0]
        return lambda ids: digest(head + ids[name])
    pairs = list(zip(heads, order))
    return lambda ids: digest(b"".join([part for head, name in pairs for part in (head, ids[name])]))


def _content_call_id(version_id: bytes, ids: dict[str, bytes]) -> bytes:
    """:func:`call_id`, by a function made once per op version and argument names (the
    bytes between the ids joined once, the names sorted once): every call is identified."""
    key = (version_id, tuple(ids))
    make = _id_makers.get(key)
    if make is None:
        if len(_id_makers) >= _ID_MAKERS_LIMIT:  # (versions made in a loop must not pile up)
            _id_makers.clear()
        make = _id_makers[key] = _call_id_maker(version_id, key[1])
    return make(ids)


#: ``(version id, argument names in call order) -> call_id`` for them (_content_call_id)
_id_makers: dict[tuple, Any] = {}
_ID_MAKERS_LIMIT = 4096


def call_id(version_id: bytes, ids: dict[str, bytes]) -> bytes:
    """A call's cid (given its inputs' cids) or history id (given their history ids).

    >>> call_id(b"v", {"x": b"1"}) == call_id(b"v", {"x": b"1"}) != call_id(b"v", {"y": b"1"})
    True
    """
    parts = [version_id]
    for name in sorted(ids):
        parts += (name.encode(), b"\0", ids[name])
    return digest(b"".join(parts))


def fast_key(op: Op, args: tuple) -> tuple | None:
    """A dict key for calls with scalar positional arguments, or None.

    Python's equality conflates 1, 1.0 and True, so the key carries each argument's type;
    0.0 == -0.0 share a hash, so zero floats (and anything equal to them) take the slow path.
    """
    types = tuple(map(type, args))
    if not _FAST_TYPES.issuperset(types) or 0.0 in args:
        return None
    # The op object (its serial), not its version id: a redefinition with a new default value
    # (a notebook cell run again) keeps the version but is not the same call. Ints and strs
    # equal only their own kind, so their key needs no types: a key of plain numbers and
    # strings is one the garbage collector stops visiting (type objects would keep it in).
    if _UNTYPED_KEYS.issuperset(types):
        return (op.serial, args)
    return (op.serial, args, types)


def content_key(op: Op, hashed: HashedInputs) -> tuple:
    """A dict key for any call, from its inputs' content ids: the memo of calls whose
    arguments :func:`fast_key` cannot key (lists, dicts, arrays...) once they are hashed.
    Tagged, so that it is never a :func:`fast_key`."""
    return (op.serial, _BY_CONTENT, tuple(hashed[1].items()))


_BY_CONTENT = object()


def output_refs(row_id: bytes, outputs: tuple) -> tuple[Ref, ...]:
    """Refs to a call's outputs, from its ``(cid, value)`` pairs."""
    return tuple(
        Ref(value, cid, output_history_id(row_id, i), (row_id, i)) for i, (cid, value) in enumerate(outputs)
    )


def output_history_id(row_id: bytes, index: int) -> bytes:
    """The value history id of output ``index`` of the call whose row id is ``row_id``."""
    return digest(b"out|%s|%d" % (row_id, index))


def hash_or_explain(op: Op, what: str, value: Any) -> bytes:
    """``value``'s cid, or a ValueEncodingError naming the op and ``what`` it is."""
    try:
        return content_id(value)
    except UnhashableError as exc:
        raise ValueEncodingError(f"op {op.name}, {what}: {exc}") from exc


def describe(bound: dict[str, Any]) -> str:
    """``name=value, ...`` with each value's repr cut short, for messages.

    >>> describe({"x": 1, "s": "a" * 50})
    "x=1, s='aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…"
    """
    return ", ".join(f"{k}={short_repr(v)}" for k, v in bound.items())


def describe_args(op: Op, args: tuple, kwargs: dict) -> str:
    """:func:`describe` of a call's arguments; ``...`` when they do not fit the op."""
    try:
        bound = op.bind(args, kwargs)
    except Exception:  # only a description
        return "..."
    return describe(bound)

