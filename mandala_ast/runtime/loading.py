"""Loading: a value's cid to the value, from memory, the buffered rows, or the file.

The last step of a memoized call. A :class:`ValueLoader` also keeps what this process knows
about values: decoded immutable ones, small ones prefetched with their calls, which cids
are in the file, and which are buffered for the next commit. It checks that pickled outputs
hash back to their stored ids, and repairs value files found corrupt.
"""

from __future__ import annotations

import functools
import pickle
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import CorruptValueError, MandalaRepairWarning, UnloadableValueError
from . import codecs, structures, transient
from .blobs import BlobFault
from .hashing import UnhashableError, content_id
from .integrity import describe_consumer, describe_producer
from .stacklevel import user_stacklevel
from .store import value_file_error

if TYPE_CHECKING:
    from .blobs import BlobDir
    from .store import SQLiteStore

__all__ = ["IMMUTABLE", "MissingValueError", "ValueLoader", "corrupt_for_call"]

#: Decoded values of these types are shared between hits: they cannot be mutated.
IMMUTABLE = frozenset({type(None), bool, int, float, complex, str, bytes})
_MISSING = object()


#: The problem of a value whose bytes were lost from the database (its ``val_bytes`` row).
BYTES_MISSING = "its bytes are missing from the database"


class MissingValueError(LookupError):
    """A value the storage should hold is not in the file (deleted meanwhile)."""


class ValueLoader:
    """Values by cid for one storage; ``where`` names the storage in messages.

    >>> loader = ValueLoader(store, None, "Storage(':memory:')")   # doctest: +SKIP
    >>> loader.load(content_id(1))                                 # doctest: +SKIP
    1
    """

    def __init__(self, store: SQLiteStore, blobs: BlobDir | None, where: str) -> None:
        self.store, self.blobs, self.where = store, blobs, where
        self.values: dict[bytes, Any] = {}  # cid -> decoded immutable value
        self.unflushed: dict[bytes, codecs.EncodedValue] = {}  # cid -> value not yet committed
        self.stored: set[bytes] = set()  # cids known to be in the file (skip re-encoding)
        # Those of them whose row is a transient op's placeholder: no argument passed on
        # stores its value, but another op's output equal to it does (recording.py).
        self.placeholders: set[bytes] = set()
        self.inline: dict[bytes, tuple[Any, bytes]] = {}  # cid -> (codec, data) of a small prefetched value
        # An output unpickled here may hash to another id than the one it was stored under (see
        # check_round_trips): that id -> the stored one. Pickled outputs loaded since the last
        # check, and those checked (each is checked once).
        self.aliases: dict[bytes, bytes] = {}
        self.unchecked: set[bytes] = set()
        self.checked: set[bytes] = set()
        # Pickled outputs of the call just computed, as they loaded back when it was recorded
        # (recording.load_back): the hand-back that follows takes them instead of loading again.
        self.decoded: dict[bytes, Any] = {}
        # Structures being decoded (their elements are loading), to tell one that names itself.
        self._opening: set[bytes] = set()

    def load(self, cid: bytes, output: bool = False) -> Any:
        """The value of ``cid``; ``output``: it is returned to a run block, which may pass it
        on, so a pickled one is checked at the next miss (see :meth:`check_round_trips`)."""
        value = self.values.get(cid, _MISSING)
        if value is not _MISSING:
            return value
        codec, data, external = self.find_value(cid)
        if output and codec == "pickle" and cid not in self.checked:
            self.unchecked.add(cid)
        value = self.decoded.pop(cid, _MISSING) if self.decoded else _MISSING
        if value is _MISSING:
            value = self.decode(cid, codec, data, external)
        if cid not in self.unflushed:
            self.remember(cid, value)
        return value

    def load_output(self, cid: bytes) -> Any:
        """:meth:`load` of an output returned to a run block (tables and queries skip the check).
        The output of a transient op has no stored value: TransientValue (transient.py)."""
        value = self.load(cid, True)
        if value is transient.NOT_STORED:
            raise transient.TransientValue(cid)
        return value

    def find_value(self, cid: bytes) -> tuple[str, Any, int]:
        """``(codec, data, external)`` of a value: buffered, prefetched, or in the file."""
        pending = self.unflushed.get(cid)
        if pending is not None:
            return pending.codec, pending.data, 0
        inline = self.inline.get(cid)
        if inline is not None:
            return (*inline, 0)
        row = self.store.find_value(cid)
        if row is None:
            raise MissingValueError(f"value {cid.hex()} is missing from {self.where}")
        return row

    def decode(self, cid: bytes, codec: str, data: bytes | None, external: int) -> Any:
        """The value of a stored row ``(codec, data, external)`` of ``cid``.

        >>> loader.decode(cid, *store.find_value(cid))     # doctest: +SKIP
        """
        if external:  # data: the digest of the file's bytes (blobs.py), None in older files
            return self._decode_file(cid, codec, data)
        if data is None:  # its val_bytes row is gone (value_rows.py): removed by hand, say
            raise self._corrupt(cid, self.store.path or self.where, BYTES_MISSING)
        if codec in codecs.STRUCTURE_CODECS:  # MList/MDict/MSet: load the elements too
            return self._decode_structure(cid, codec, data)
        try:
            return codecs.decode(codec, data)
        except Exception as exc:
            if codec != "pickle":
                raise
            raise self._unloadable(cid, exc) from exc

    def _decode_structure(self, cid: bytes, codec: str, data: bytes) -> Any:
        # Earlier versions stored a structure leading back to itself element by element: its
        # row names itself among its elements, and loading it would never finish.
        if cid in self._opening:
            call = describe_producer(self.store.conn, cid) or describe_consumer(self.store.conn, cid)
            raise UnloadableValueError(
                f"value {cid.hex()[:12]}{f' ({call})' if call else ''} cannot be loaded: a list or dict "
                "that holds itself, stored element by element by an earlier version, names itself as "
                "its own element. Delete the call with storage.delete_calls() to compute it again "
                "(it is now stored whole)",
                cid=cid, call=call,
            )
        self._opening.add(cid)
        try:
            return structures.decode(codec, data, self.load_many)
        finally:
            self._opening.discard(cid)

    def decode_values(self, cids: list[bytes]) -> dict[bytes, Any]:
        """The stored values of ``cids`` in one query per chunk; missing ones are left out."""
        found = self.store.find_values(cids)
        return {cid: self.decode(cid, codec, data, external) for cid, (codec, data, external) in found.items()}

    def load_many(self, cids: list[bytes]) -> list[Any]:
        """Values of ``cids`` (a structure's elements): those not in memory in one query per
        chunk, not one per value."""
        memory = (self.values, self.unflushed, self.inline)
        wanted = [cid for cid in dict.fromkeys(cids) if not any(cid in m for m in memory)]
        rows = self.store.find_values(wanted) if wanted else {}
        values = []
        for cid in cids:
            row = rows.get(cid)
            if row is None or cid in self.values:  # in memory, or decoded once already
                values.append(self.load(cid))
            else:  # decoded per occurrence: equal mutable elements must not be one object
                values.append(self.decode(cid, *row))
                self.remember(cid, values[-1])
        return values

    def remember(self, cid: bytes, value: Any) -> None:
        """``cid`` is in the file; an immutable ``value`` is kept to be shared."""
        self.stored.add(cid)
        if type(value) in IMMUTABLE:
            self.values[cid] = value
        elif value is transient.NOT_STORED:
            self.placeholders.add(cid)

    def remember_outputs(self, outputs: list[tuple]) -> tuple[bytes, ...]:
        """Keep the small values found with a stored call's outputs ``[(cid, codec, data)]``
        (data None when not small); returns the output cids."""
        for cid, codec, data in outputs:
            if data is None or cid in self.values:
                continue
            if codec == "json" or codec == "bytes":  # immutable: decoded once, kept
                self.remember(cid, codecs.decode(codec, data))
            else:  # mutable: decoded per load anyway, so not here too
                self.stored.add(cid)
                self.inline[cid] = (codec, data)
        return tuple(cid for cid, _, _ in outputs)

    def forget(self) -> None:
        """Forget what the file holds (after a deletion); buffered values stay."""
        for cache in (self.values, self.stored, self.inline, self.placeholders):
            cache.clear()

    def check_round_trips(self) -> bool:
        """Hash the outputs unpickled since the last check as they were loaded; True if one
        hashes to another id than its stored one (then remembered as an alias of it).

        Hashing is canonical, yet a class may rebuild state when unpickled that differs from the
        state it pickled (a cache, the loading process's id): without the alias, a value loaded
        and passed on unchanged would be a new argument. The alias is content-based, so a value
        changed after loading hashes to neither id. It costs one more decode and hash per
        pickled value loaded, paid at the first miss after loading (never on a hit), once per
        value and process; nothing is stored.
        """
        unchecked, self.unchecked = self.unchecked, set()
        found = False
        for cid in unchecked - self.checked:
            self.checked.add(cid)
            try:
                loaded = content_id(self.decode(cid, *self.find_value(cid)))
            except (MissingValueError, UnhashableError):
                continue  # deleted meanwhile, or not hashable: cannot be passed as an argument
            if loaded != cid:
                self.aliases[loaded] = cid
                found = True
        return found

    def repair(self, out_cids: tuple[bytes, ...], fresh: dict[bytes, codecs.EncodedValue], shown: str) -> tuple:
        """The outputs ``out_cids`` of the call ``shown``, computed again as ``fresh`` (cid ->
        encoded value), once every corrupt value file among them is rewritten from it."""
        repaired: set[bytes] = set()
        while True:
            try:
                return tuple(map(self.load, out_cids))
            except CorruptValueError as again:
                encoded = fresh.get(again.cid)
                if encoded is None or again.cid in repaired:
                    why = ("computing it again gave another value (the op is not deterministic): delete "
                           "the call with storage.delete_calls() to store the new one")
                    raise corrupt_for_call(again, shown, why) from again
                self._rewrite(again, encoded, shown)
                repaired.add(again.cid)

    def _rewrite(self, error: CorruptValueError, encoded: codecs.EncodedValue, shown: str) -> None:
        if error.problem == BYTES_MISSING:
            self.store.restore_value_bytes(error.cid, encoded.data)
            self._warn_repaired(error, shown, "stored its bytes again")
            return
        try:
            file_digest = self.blobs.rewrite(error.cid, encoded.data)  # type: ignore[union-attr]
        except OSError as exc:  # a full disk, a read-only mount for the value files
            cannot = value_file_error(exc, Path(str(error.path)))
            if cannot is None:
                raise
            raise cannot from exc
        self.store.record_file_digest(error.cid, file_digest, len(encoded.data))
        self._warn_repaired(error, shown, f"rewrote {error.path}")

    def _warn_repaired(self, error: CorruptValueError, shown: str, done: str) -> None:
        warnings.warn(
            f"value {error.cid.hex()[:12]} of {shown} was corrupt ({error.problem}): computed the call "
            f"again and {done}",
            MandalaRepairWarning,
            stacklevel=user_stacklevel(),
        )

    def _decode_file(self, cid: bytes, codec: str, file_digest: bytes | None) -> Any:
        """A value stored as a file, checked against the digest recorded when it was stored."""
        blobs = self.blobs
        assert blobs is not None  # only a file storage has external values
        try:
            if codecs.maps_file(codec):  # memory-mapped: checked in place, not read into memory
                return blobs.open_checked(cid, file_digest, functools.partial(codecs.decode_file, codec))
            data = blobs.read(cid, file_digest)
        except BlobFault as fault:
            raise self._corrupt(cid, fault.path, fault.problem) from None
        try:
            return codecs.decode(codec, data)
        except Exception as exc:
            if file_digest is not None:  # the bytes are those stored: not a corruption
                if codec != "pickle":
                    raise
                raise self._unloadable(cid, exc) from exc
            if not isinstance(exc, (pickle.UnpicklingError, EOFError, ValueError)):
                raise
            problem = f"it cannot be decoded ({type(exc).__name__}: {exc})"
            raise self._corrupt(cid, blobs.path(cid), problem) from exc

    def _unloadable(self, cid: bytes, exc: Exception) -> UnloadableValueError:
        call = describe_producer(self.store.conn, cid)
        made = f" (output of {call})" if call else ""
        return UnloadableValueError(
            f"value {cid.hex()[:12]}{made} cannot be loaded in this process: {type(exc).__name__}: {exc}. "
            "Its pickle names a class or function that is gone or changed since it was stored (a class "
            "renamed or moved, a library upgraded): bring it back, declare a class's move "
            "(storage.rename_op of its method ops, or storage.rename_helper of the class), or delete "
            "the call with storage.delete_calls() to compute it again",
            cid=cid, call=call,
        )

    def _corrupt(self, cid: bytes, path: object, problem: str) -> CorruptValueError:
        call = describe_producer(self.store.conn, cid)
        if call is None:  # given to ops, computed by none: a run block finds their calls stored
            return self._corrupt_argument(cid, path, problem)
        # A value in the database has no file of its own: the repair stores its bytes there.
        repair = "stores its bytes again" if problem == BYTES_MISSING else "rewrites the file"
        return CorruptValueError(
            f"value {cid.hex()[:12]} (computed by {call}) is corrupt: {problem} ({path}). Calling the op in a "
            f"run block computes it again and {repair}; storage.verify() checks every file.",
            cid=cid, path=path, call=call, problem=problem,
        )

    def _corrupt_argument(self, cid: bytes, path: object, problem: str) -> CorruptValueError:
        given = describe_consumer(self.store.conn, cid)
        return CorruptValueError(
            f"value {cid.hex()[:12]}{f' ({given})' if given else ''} is corrupt: {problem} ({path}). No op "
            "computed it, so no run block stores it again: delete the calls given it with "
            "storage.delete_calls() and run them again; storage.verify() checks every file.",
            cid=cid, path=path, call=None, problem=problem,
        )


def corrupt_for_call(error: CorruptValueError, shown: str, why: str) -> CorruptValueError:
    """``error`` naming the call ``shown`` being made, and ``why`` it was not repaired."""
    return CorruptValueError(
        f"value {error.cid.hex()[:12]}, output of {shown}, is corrupt: {error.problem} ({error.path}); {why}. "
        "storage.verify() checks every file.",
        cid=error.cid, path=error.path, call=shown, problem=error.problem,
    )
