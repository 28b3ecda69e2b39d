"""``storage.why(op, ...)``: whether a call would load or compute, and why, storing nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import renames
from .deletion_watch import deletion_epoch
from .differences import difference
from .identity import call_id, describe, hash_inputs

if TYPE_CHECKING:
    from .ops import Op
    from .pipeline import CallPipeline
    from .versions import VersionTracker

__all__ = ["explain_call"]


def explain_call(engine: CallPipeline, op: Op, args: tuple, kwargs: dict, where: str) -> str:
    """The answer a block entered now would act on, as text (``where`` names the storage).

    >>> explain_call(engine, inc, (1,), {}, "Storage(':memory:')")     # doctest: +SKIP
    "miss: inc(x=1) was never computed in Storage(':memory:')"
    """
    if engine.loader.unchecked:  # an argument may be a loaded value (see check_round_trips)
        engine.loader.check_round_trips()
    # Read-only, and the answer a block entered now would act on: code redefined since
    # the last block (a reload, a notebook cell) is noticed here as at block entry.
    engine.refresh_versions()
    versions, store = engine.versions, engine.store
    bound, cids = hash_inputs(op, args, kwargs, engine.loader.aliases)
    version_id = versions.peek_version_id(op)
    ident = op.identity_inputs(cids, versions.peek_defaults(op))
    ident = renames.renamed(ident, versions.identity_names(op))
    key = call_id(version_id, ident)
    shown = f"{op.name}({describe(bound)})"
    candidates = store.find_calls(version_id, key, key)
    diffs = [versions.dependency_diffs(deps_id, op) for _, _, deps_id, _ in candidates]
    for (row_id, *_), changed in zip(candidates, diffs):
        if not changed:
            return f"hit: {shown} is stored (call {row_id.hex()[:12]}); its code and dependencies are unchanged"
    if candidates:
        return f"miss: {shown} was computed before, but\n" + "\n".join(diffs[-1])
    unshaped = versions.unshaped_version_id(op)
    for other in [unshaped] * (unshaped != version_id) + versions.other_version_ids(op):
        key = call_id(other, ident)
        found = store.find_calls(other, key, key)
        if found:
            return f"miss: {shown} " + _other_version(versions, op, other, len(found[-1][3]))
    # By today's argument names: rename_arg renames stored inputs too (only call ids keep
    # hashing a renamed argument under its old name).
    nearest = _nearest(engine, version_id, cids, bound)
    if deletion_epoch(store.conn) is not None:  # calls were deleted from this file: maybe this one
        return f"miss: {shown} is not stored in {where}: never computed, or deleted since{nearest}"
    return f"miss: {shown} was never computed in {where}{nearest}"


#: Calls looked at per argument value when looking for the stored call nearest a miss (a
#: value many calls share, a default, would otherwise read them all).
_LOOKED_AT = 10_000


def _nearest(engine: CallPipeline, version_id: bytes, inputs: dict[str, bytes], given: dict[str, Any]) -> str:
    """What sets a never-computed call apart from the stored call of its op version given the
    most of the same arguments: "why did it recompute, I passed the same config". ``inputs``
    and ``given`` are keyed by today's argument names, as stored inputs are."""
    shared = engine.store.calls_sharing_inputs(version_id, inputs, _LOOKED_AT)
    if not shared:
        return ""
    most = max(shared.values())
    stored = engine.store.inputs_of(min(c for c, n in shared.items() if n == most))  # the oldest
    differing = [name for name, cid in inputs.items() if stored.get(name) != cid]
    if not differing:
        return ""
    said = [f"{name}: {_how(engine, stored.get(name), given.get(name))}" for name in differing]
    return (f"\nthe stored call nearest to it differs in {len(differing)} of its {len(inputs)} "
            "arguments:\n  " + "\n  ".join(said))


def _how(engine: CallPipeline, cid: bytes | None, value: Any) -> str:
    if cid is None:
        return "not an argument of the stored call"
    try:
        stored = engine.loader.load(cid)
    except Exception as error:  # a value that cannot be loaded here still says that it differs
        return f"differs (its stored value cannot be loaded: {error})"
    return difference(stored, value)


def _other_version(versions: VersionTracker, op: Op, other: bytes, outputs: int) -> str:
    """Why a call stored under another version id of the op (``other``, whose call has
    ``outputs`` outputs) is no hit: other code, or another number of outputs (``nout=``
    changed: the call would come back in the old shape)."""
    if outputs == op.nout:
        return "was computed by another version of the op:\n" + versions.version_diff(op, other)
    said = f"was computed when the op had {outputs} output(s); it has {op.nout} now (nout= changed)"
    if versions.same_code(op, other):
        return said
    return f"{said}, and by another version of the op:\n" + versions.version_diff(op, other)
