"""Every contact between batch blocks and the storage engine, in one place.

The scheduler identifies calls, finds the stored ones in bulk, records what workers computed
and loads stored outputs only through these functions, so the engine behind them can change
without the scheduler noticing.
"""

from __future__ import annotations

from typing import Any

from ..refs import Ref
from ..storage import output_refs as _storage_output_refs
from ..tracing import RanCode

__all__ = [
    "Call",
    "check_new_call",
    "commit",
    "find_stored",
    "identify",
    "identify_many",
    "load_many_outputs",
    "load_outputs",
    "needs_trace",
    "output_refs",
    "record",
    "single_flight",
    "untraced",
]

#: A call's identity as the engine hands it out: ``.op``, ``.cid`` (content id, the same for
#: identical calls) and ``.describe()``; opaque otherwise.
Call = Any


def identify(storage: Any, op: Any, args: tuple, kwargs: dict, input_refs: dict | None) -> Call:
    """The identity of a call (its arguments hashed), without looking it up."""
    return storage.identify_call(op, args, kwargs, input_refs)


def identify_many(storage: Any, items: list[tuple]) -> list:
    """``identify`` for many ``(op, args, kwargs, input_refs)``; an exception in place of
    each call whose arguments cannot be hashed."""
    return storage.identify_calls(items)


def find_stored(storage: Any, calls: list[Call]) -> list[tuple | None]:
    """One bulk lookup: ``(row hid, output cids, deps_id)`` per stored call, else None."""
    return storage.find_stored_calls(calls)


def check_new_call(storage: Any, call: Call, block: Any) -> dict:
    """Raise if ``call`` may not be computed here (new calls off, read-only file, changed code
    under ``on_change="error"``); else the encoded new argument values to record with it."""
    return storage.check_new_call(call, block)


def needs_trace(storage: Any, call: Call) -> bool:
    """Whether the call's body may run user code, so that running it here must be traced to
    know its dependencies (plain data into an op that calls nothing of the user's: no)."""
    return storage.runs_user_code(call)


def record(storage: Any, call: Call, outputs: tuple, ran: RanCode, op_calls: Any, duration: float,
           inputs: dict) -> tuple[bytes, ...]:
    """Record, in the coordinating process, a call a worker computed; returns output cids."""
    result = call.op.join_outputs(outputs)
    return storage.record_computed(call, result, ran, op_calls, duration, inputs)


def load_outputs(storage: Any, out_cids: tuple) -> tuple:
    """The values of a stored call's outputs."""
    return storage.load_outputs(out_cids)


def load_many_outputs(storage: Any, out_cids: list[tuple]) -> list[tuple]:
    """The output values of many stored calls (one lock, one pass)."""
    return storage.load_outputs(out_cids, many=True)


def output_refs(hid: bytes, out_cids: tuple, values: tuple) -> tuple[Ref, ...]:
    """The Refs (value + ids) of a stored call's outputs, for exact provenance downstream."""
    return _storage_output_refs(hid, tuple(zip(out_cids, values)))


def row_hid(call: Call) -> bytes:
    """The id of a recorded call's row."""
    return call.hid


def single_flight(storage: Any) -> Any:
    """The storage's SingleFlight (cross-process call locks), or None when it is off."""
    return storage.single_flight


def commit(storage: Any) -> None:
    storage.commit()


def untraced() -> RanCode:
    """What a worker in another process reports of the code it ran: nothing, so the call's
    dependencies are its op's static ones."""
    ran = RanCode()
    ran.complete = False
    return ran
