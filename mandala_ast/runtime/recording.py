"""Recording: one executed (or newly found) call to buffered rows, and its values to rows or files.

The step after a miss executed (or after a call found by content under a new history):
:meth:`Recorder.record` buffers the call's rows in the store's flat buffers (store.py), all
or none; ``Storage.commit`` writes them. Values of 1 MiB and more go to files beside the
database (blobs.py) as they are buffered; MList/MDict/MSet values are recorded element by
element with an ``__item__`` call per output element (structures.py).
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from typing import TYPE_CHECKING, Any

from .._errors import ArgumentError, MandalaError, MandalaUnstoredWarning, ValueEncodingError
from . import codecs, lazy_collections, pointers, structures, transient
from .built import KINDS, build_op_rows, element_names, elements_history_id, elements_rows
from .hashing import content_id, digest
from .identity import hash_or_explain
from .loading import MissingValueError
from .packing import pack_outputs
from .recursion import stack_nearly_full
from .stacklevel import user_stacklevel
from .store import FIELDS, value_file_error
from .structures import EncodedStructure

if TYPE_CHECKING:
    from .blobs import BlobDir
    from .identity import CallIdentity
    from .loading import ValueLoader
    from .lookup import CallIndex
    from .ops import Op
    from .store import SQLiteStore

__all__ = [
    "BLOB_BYTES",
    "FLUSH_EVERY_CALLS",
    "FLUSH_EVERY_SECONDS",
    "Recorder",
    "UnstoredOutputs",
    "UnstoredValues",
    "encode_or_explain",
    "encode_outputs",
    "encoded_outputs",
]

#: Values at least this large are stored as files beside the database.
BLOB_BYTES = 1 << 20
#: Inside long blocks, buffered calls are committed at least this often.
FLUSH_EVERY_CALLS = 10_000
FLUSH_EVERY_SECONDS = 5.0
_NO_SOURCE = (None, None)


class Recorder:
    """Buffers calls and values for one storage.

    >>> recorder.record(call, out_cids, encoded, duration)      # doctest: +SKIP
    >>> recorder.flush_due()                                   # doctest: +SKIP
    False
    """

    def __init__(self, store: SQLiteStore, blobs: BlobDir | None, loader: ValueLoader, index: CallIndex) -> None:
        self.store, self.blobs, self.loader, self.index = store, blobs, loader, index
        self.item_op_added = False  # the __item__ op's rows, buffered once (structures.py)
        self.build_op_added = False  # the __build__ op's rows, likewise (built.py)
        #: collections' content ids by the history ids of the records of their elements
        #: buffered or found by this process (built.elements_rows): facts of content, true
        #: whatever is deleted since
        self.collections: dict[bytes, bytes] = {}
        self.last_flush = time.monotonic()

    def record(
        self,
        call: CallIdentity,
        out_cids: tuple[bytes, ...],
        encoded: list | None,
        duration: float,
        inputs: dict[bytes, codecs.EncodedValue] | None = None,
    ) -> None:
        """Buffer the rows of one call, all or none. ``encoded``: the outputs, None when already
        stored; ``inputs``: argument values encoded before the body ran (else encoded now).

        Writing a value's blob file may fail (a full disk), and a call's input rows buffered
        without its call row would break every later commit. So the values are buffered first
        and dropped again on failure; then the call's rows, which cannot fail. Structures write
        their elements' files among their rows: there, every table's buffer is rolled back.
        """
        if inputs is None:
            inputs = self.encode_new_inputs(call)
        structured = call.op.has_structures  # one attribute test: plain ops pay nothing more
        marks: tuple | int
        if structured or call.built or self.loader.placeholders:  # (records of elements: below)
            marks = (self.store.buffer_marks(), self.item_op_added, self.build_op_added)
        else:
            marks = len(self.store.rows["vals"])
        try:
            for cid, value in inputs.items():
                self._buffer_encoded(cid, value)
            if encoded is not None:
                for cid, value in zip(out_cids, encoded):
                    self._buffer_encoded(cid, value, output=True)
            if call.built:  # its sources' rows, before the rows that name them
                self._record_builds(call)
            if structured or self.loader.placeholders:  # (before the call's rows)
                self._record_elements_of_arguments(call, inputs)
            self._buffer_rows(call, out_cids, encoded, duration)
            if structured:
                self._record_structures(call, out_cids, encoded, inputs)
        except BaseException:  # nothing of the call stays buffered (a full disk: nothing to commit)
            self._unbuffer(marks, call.row_id)
            raise
        self.index.add(call, out_cids)

    def record_many(self, entries: list[tuple]) -> list[Exception | None]:
        """:meth:`record` for many calls, ``(call, out_cids, encoded, duration, inputs)`` each
        (a batch's results, as they arrive): per call None, or the exception that kept it
        from being buffered (nothing of it is). The rows are :meth:`record`'s; only the
        values of plain ops are buffered here without a method call per value."""
        errors: list[Exception | None] = []
        vals, stored, unflushed = self.store.rows["vals"], self.loader.stored, self.loader.unflushed
        large = BLOB_BYTES if self.blobs is not None else float("inf")
        for call, out_cids, encoded, duration, inputs in entries:
            # (a transient output met: a collection argument may hold one, whose record record() writes)
            if call.op.has_structures or call.built or self.loader.placeholders:
                try:
                    self.record(call, out_cids, encoded, duration, inputs)
                except Exception as exc:  # this call's failure alone (record buffered nothing)
                    errors.append(exc)
                else:
                    errors.append(None)
                continue
            mark = len(vals)
            try:
                if inputs is None:
                    inputs = self.encode_new_inputs(call)
                arguments = len(inputs)
                for i, (cid, value) in enumerate((*inputs.items(), *zip(out_cids, encoded))):
                    output = i >= arguments
                    if (cid in stored or cid in unflushed) and not (output and self._replaces_placeholder(cid, value)):
                        continue
                    data = value.data
                    if len(data) >= large:  # a file beside the database: as record() writes it
                        self._buffer_encoded(cid, value, output)
                        continue
                    vals += (cid, value.codec, data, len(data), 0)
                    unflushed[cid] = value
                    if value.codec == transient.CODEC or self.loader.placeholders:
                        self._note_placeholder(cid, value)
                self._buffer_rows(call, out_cids, encoded, duration)
            except BaseException as exc:  # a full disk: nothing of the call stays buffered
                self._unbuffer(mark, call.row_id)
                if not isinstance(exc, Exception):
                    raise
                errors.append(exc)
                continue
            self.index.add(call, out_cids)
            errors.append(None)
        return errors

    def encode_new_inputs(self, call: CallIdentity, shared: dict | None = None) -> dict[bytes, codecs.EncodedValue]:
        """The call's argument values not yet stored nor buffered, encoded, by cid.
        ``shared``: values already encoded for other calls (a batch's wave, all encoded before
        any is recorded), reused by cid, and this call's added (one encoding of a dataset
        every call is given, not one a call)."""
        kinds = call.op.structure_inputs  # {} unless arguments are MList/MDict/MSet
        stored, unflushed = self.loader.stored, self.loader.unflushed
        if shared is None:
            return {
                cid: encode_or_explain(call.op, f"argument {name!r}", call.bound[name], kinds.get(name))
                for name, cid in call.cids.items()
                # a stored transient output's row is in the file already, without its value
                if cid not in stored and cid not in unflushed and not transient.is_lazy(call.bound[name])
            }
        new = {}
        for name, cid in call.cids.items():
            if cid in stored or cid in unflushed or transient.is_lazy(call.bound[name]):
                continue
            if name in kinds:  # MList/MDict/MSet: encoded as this op's structure, not shared
                new[cid] = encode_or_explain(call.op, f"argument {name!r}", call.bound[name], kinds[name])
                continue
            if cid not in shared:
                shared[cid] = encode_or_explain(call.op, f"argument {name!r}", call.bound[name])
            new[cid] = shared[cid]
        return new

    def flush_due(self) -> bool:
        """Whether enough calls are buffered, or enough time passed, to commit now."""
        return (
            len(self.store.rows["calls"]) >= FLUSH_EVERY_CALLS * FIELDS["calls"]
            or time.monotonic() - self.last_flush > FLUSH_EVERY_SECONDS
        )

    def flushed(self) -> None:
        """The buffered rows were committed: their values are in the file now."""
        self.loader.stored.update(self.loader.unflushed)
        self.loader.unflushed.clear()
        self.last_flush = time.monotonic()

    def _unbuffer(self, marks: tuple | int, row_id: bytes | None) -> None:
        """Drop what was buffered since ``marks``: the vals table's length (and the rows of
        call ``row_id``), or every table's (and whether the __item__ op's rows were buffered)."""
        if type(marks) is int:
            values = self.store.rows["vals"]
            dropped = values[marks :: FIELDS["vals"]]
            del values[marks:]
            self.store.drop_rows_of(row_id)
        else:
            dropped = self.store.truncate_buffers(marks[0])  # type: ignore[index]
            self.item_op_added, self.build_op_added = marks[1:]  # type: ignore[index]
        loader = self.loader
        for cid in dropped:
            value = loader.unflushed.pop(cid, None)
            # A value buffered under a cid the file holds went over a placeholder's row
            # (_replaces_placeholder): that row is one still, for the call computed again.
            if value is not None and value.codec != transient.CODEC and cid in loader.stored:
                loader.placeholders.add(cid)

    def _buffer_rows(self, call: CallIdentity, out_cids: tuple[bytes, ...], encoded: list | None, duration: float) -> None:
        rows, row_id = self.store.rows, call.row_id
        # Flat buffers (store.py): each row tuple is freed as soon as its fields are appended.
        # The file's columns keep their first names: hid is the row id, lkey the history id.
        sources, buffered = call.sources, rows["inputs"]
        if sources:
            for name, cid in call.cids.items():
                buffered += (row_id, name, cid, *sources.get(name, _NO_SOURCE))
        else:
            for name, cid in call.cids.items():
                buffered += (row_id, name, cid, None, None)
        buffered = rows["outputs"]
        for i, cid in enumerate(out_cids):
            buffered += (row_id, i, cid)
        packed = pack_outputs(out_cids, encoded)
        now, exact = time.time(), int(call.exact)
        rows["calls"] += (row_id, call.history_id, call.cid, call.version_id, call.deps_id, now, duration, exact, packed)

    def _buffer_encoded(self, cid: bytes, encoded: codecs.EncodedValue, output: bool = False) -> None:
        """Buffer a value neither stored nor buffered; an ``output`` also where its cid's row
        is a transient op's placeholder (_replaces_placeholder). An argument's never is: the
        file keeps the placeholder (value_rows.KEEP_ROWS), which this storage would then take
        for gone."""
        unflushed = self.loader.unflushed
        if (cid in self.loader.stored or cid in unflushed) and not (output and self._replaces_placeholder(cid, encoded)):
            return
        data, external = encoded.data, 0
        # A structure's row (element ids) stays in the file: gc reads it to keep its elements.
        large = len(data) >= BLOB_BYTES and encoded.codec not in codecs.STRUCTURE_CODECS
        if self.blobs is not None and large:
            # The row records the file's digest, which every load checks (blobs.py).
            data, external = self._write_blob(self.blobs, cid, encoded), 1
        self.store.rows["vals"] += (cid, encoded.codec, data, len(encoded.data), external)
        unflushed[cid] = encoded
        self._note_placeholder(cid, encoded)

    def _replaces_placeholder(self, cid: bytes, encoded: codecs.EncodedValue) -> bool:
        """Whether ``encoded``, under a cid known stored or buffered, is a value whose row
        there is a transient op's placeholder. Known, it keeps arguments passed on from being
        stored; but another op's output takes its row (both rows are written:
        value_rows.OVER_PLACEHOLDERS), else that op's calls would show it as not stored and
        compute it again at every load."""
        return cid in self.loader.placeholders and encoded.codec != transient.CODEC

    def _note_placeholder(self, cid: bytes, encoded: codecs.EncodedValue) -> None:
        placeholders = self.loader.placeholders
        if encoded.codec == transient.CODEC:
            placeholders.add(cid)
        elif placeholders:  # a value takes the placeholder's row
            placeholders.discard(cid)

    def store_over_placeholders(self, encoded: dict[bytes, codecs.EncodedValue]) -> None:
        """Store values (by cid) whose rows are transient placeholders, now, in place of
        them: the outputs of calls an op stored while it said ``transient=``, computed again
        now that it does not (a value file is written first, as for any value)."""
        flat: list = []
        for cid, value in encoded.items():
            data, external = value.data, 0
            if self.blobs is not None and len(data) >= BLOB_BYTES and value.codec not in codecs.STRUCTURE_CODECS:
                data, external = self._write_blob(self.blobs, cid, value), 1
            flat += (cid, value.codec, data, len(value.data), external)
        self.store.replace_placeholders(flat)

    def _write_blob(self, blobs: BlobDir, cid: bytes, encoded: codecs.EncodedValue) -> bytes:
        """Write a value's file; returns the digest of its bytes."""
        try:
            return blobs.write(cid, encoded.data, functools.partial(_holds_value, cid, encoded))
        except OSError as exc:  # a full disk, a read-only mount for the value files
            error = value_file_error(exc, blobs.path(cid))
            if error is None:
                raise
            raise error from exc

    def _record_structures(self, call: CallIdentity, out_cids: tuple[bytes, ...], encoded: list | None, inputs: dict) -> None:
        """Elements of MList/MDict/MSet arguments and outputs as values of their own, and an
        ``__item__`` call per output element, each time the call is recorded (structures.py)."""
        op = call.op
        for name in op.structure_inputs:
            value = inputs.get(call.cids.get(name))
            if type(value) is EncodedStructure:
                self._buffer_elements(value, outputs=False)
        for index, kind in op.structure_outputs.items():
            value = encoded[index] if encoded is not None else None
            if type(value) is not EncodedStructure:  # recorded again: from the file
                value = self._stored_structure(out_cids[index], kind, op.name)
            if value is not None:
                self._record_items(call, index, out_cids[index], value)

    def _record_items(self, call: CallIdentity, index: int, struct_cid: bytes, structure: EncodedStructure) -> None:
        """Buffer one ``__item__`` call per element of output ``index`` (structures.py)."""
        rows, row_id = self.store.rows, call.row_id
        assert row_id is not None  # recorded calls have run (or been found): their state is set
        now = time.time()
        if not self.item_op_added:
            for table, row in structures.item_op_rows(now).items():
                rows[table] += row
            self.item_op_added = True
        self._buffer_elements(structure)
        for key_cid, key, cid, element in structure.items():
            if key is not None:
                self._buffer_encoded(key_cid, key)
            packed = pack_outputs((cid,), (element,))
            item = structures.item_call(row_id, index, struct_cid, key_cid, cid, packed, call.exact, now)
            for table, row in item:
                rows[table] += row

    def _record_builds(self, call: CallIdentity) -> None:
        """Buffer the build call of each collection built by hand the call was given, and the
        values it names that no op call stores (runtime/built.py)."""
        rows, now = self.store.rows, time.time()
        self._add_build_op(now)
        for ref in call.built:
            for cid, value in ref.values():  # type: ignore[attr-defined]
                if cid not in self.loader.stored and cid not in self.loader.unflushed:
                    self._buffer_encoded(cid, encode_or_explain(call.op, "a collection built by hand it was given", value))
            for table, row in ref.rows(now):  # type: ignore[attr-defined]
                rows[table] += row

    def _add_build_op(self, now: float) -> None:
        if not self.build_op_added:
            for table, row in build_op_rows(now).items():
                self.store.rows[table] += row
            self.build_op_added = True

    def _record_elements_of_arguments(self, call: CallIdentity, inputs: dict) -> None:
        """Records of the elements of the arguments that need one (built.elements_rows), before
        the call's rows, so that deletion never finds the call the earlier of the two: a new
        MList/MDict/MSet argument without history of a call not exact (a call given an op's
        output as an element of one is then computed from that op's call, by content, as one
        given it directly is; an exact call's argument without history is a literal), and a
        list, tuple or dict holding a stored transient output (found by its elements' ids next
        time, without computing them: lazy_collections.py)."""
        for name, value in call.bound.items():
            found = self._elements_to_record(call, name, value, inputs)
            if found is not None:
                self.record_collections([(*found, call.cids[name])])

    def _elements_to_record(self, call: CallIdentity, name: str, value: Any, inputs: dict) -> tuple | None:
        """``(kind, names, element cids)`` of argument ``name``, if its elements are to be recorded."""
        cid = call.cids.get(name)
        encoded = inputs.get(cid) if cid is not None else None
        if type(encoded) is EncodedStructure and encoded.cids and not call.exact and name not in call.sources:
            names = element_names("dict", encoded.keys) if encoded.kind == "dict" else _element_names(encoded)
            return encoded.kind, names, encoded.cids
        kind = KINDS.get(type(value))
        if kind is None or cid is None or not self.loader.placeholders:
            return None
        found = lazy_collections.elements_of(kind, value)
        if found is None or not any(element in self.loader.placeholders for element in found[1]):
            return None
        return kind, *found

    def known_collection(self, history_id: bytes) -> bytes | None:
        """The content id of the collection whose record of elements has this history id
        (built.elements_history_id): buffered or found by this process, or stored; else None."""
        cid = self.collections.get(history_id)
        if cid is None:
            cid = self.store.find_collection(history_id)
            if cid is not None:
                self.collections[history_id] = cid
        return cid

    def record_collections(self, collections: list[tuple]) -> None:
        """Buffer the record of each collection's elements, ``(kind, names, element cids,
        collection cid)``, that this process did not buffer or find already."""
        rows, now = self.store.rows, time.time()
        for kind, names, cids, cid in collections:
            history = elements_history_id(kind, names, cids)
            if self.collections.get(history) == cid or not self._holds_value(cid):
                continue
            self._add_build_op(now)
            for table, row in elements_rows(kind, cid, names, cids, now):
                rows[table] += row
            self.collections[history] = cid

    def _holds_value(self, cid: bytes) -> bool:
        """Whether the value ``cid`` is buffered or stored (a record names it as its output:
        one noted for a call that then failed has none)."""
        loader = self.loader
        return cid in loader.unflushed or cid in loader.stored or self.store.find_value(cid) is not None

    def _buffer_elements(self, structure: EncodedStructure, outputs: bool = True) -> None:
        """Buffer the elements of a structure. Those of an argument (``outputs`` False) are
        arguments passed on: a transient op's output among them stays a placeholder."""
        for cid, element in structure.elements.items():
            self._buffer_encoded(cid, element, outputs)

    def _stored_structure(self, cid: bytes, kind: str, op_name: str) -> EncodedStructure | None:
        """The EncodedStructure of a stored output; None for a dict stored whole."""
        pending = self.loader.unflushed.get(cid)
        if type(pending) is EncodedStructure:
            return pending
        row = (pending.codec, pending.data) if pending else self.store.find_value(cid)
        if row is None:  # deleted by another Storage since this block found the call
            raise MissingValueError(f"value {cid.hex()} is missing from {self.loader.where}")
        codec, data = row[:2]
        if codec in codecs.STRUCTURE_CODECS:
            return structures.parse(codec, data)
        # Stored whole (a plain op stored the same content first): store its elements now.
        value = structures.encode(kind, self.loader.load(cid), op_name)
        return value if type(value) is EncodedStructure else None


def _element_names(structure: EncodedStructure) -> list[str]:
    """A list's elements by index (``[0]``), a set's by position in its stored order (``[#0]``)."""
    form = "[%d]" if structure.kind == "list" else "[#%d]"
    return [form % i for i in range(len(structure.cids))]


class UnstoredOutputs(Exception):
    """A computed call whose outputs cannot be hashed or stored: nothing of it is recorded,
    and the block gets the outputs anyway (with one warning), rather than losing the work."""

    def __init__(self, call: CallIdentity, outputs: tuple, error: MandalaError) -> None:
        super().__init__(str(error))
        self.call, self.outputs, self.error = call, outputs, error

    def handed_back(self, with_refs: bool) -> tuple[Any, tuple, Any]:
        """``(row id, outputs, deps id)`` as a found call would give them, after the warning."""
        warnings.warn(
            f"{self.error}; it is returned without being stored, so the call is computed again next time",
            MandalaUnstoredWarning,
            stacklevel=user_stacklevel(),
        )
        if not with_refs:
            return self.call.row_id, UnstoredValues(self.outputs), self.call.deps_id
        # Ids no value has: an op this output is passed to is keyed by the value's content.
        ids = [digest(os.urandom(32)) for _ in self.outputs]
        return self.call.row_id, UnstoredValues(zip(ids, self.outputs)), self.call.deps_id


class UnstoredValues(tuple):
    """The outputs of a call handed back unstored (UnstoredOutputs): a tuple that says so, so
    that no warm-hit cache keeps them. They are not in the file: the next block must look the
    call up again and compute it (a full disk may have room by then)."""


def encode_outputs(call: CallIdentity, outputs: tuple) -> tuple[tuple[bytes, ...], list]:
    """``(output cids, encoded outputs)`` of an executed call; UnstoredOutputs when one cannot
    be hashed or stored (a structure of the wrong type is an error of its own)."""
    op = call.op
    structured = op.structure_outputs  # {} for most ops (MList/MDict/MSet)
    if structured:  # a structure of the wrong type is an error before anything is stored
        structures.check_outputs(op.name, structured, outputs)
        if op.transient:
            _check_transient_structures(op, structured)
    pointer = pointers.output_error(op.name, outputs)
    if pointer is not None:  # handed back with its object, as an output that cannot be stored
        raise UnstoredOutputs(call, outputs, ValueEncodingError(pointer))
    try:
        out_cids = tuple(map(content_id, outputs))
        if structured:
            return out_cids, _encode_structured(op, structured, outputs)
        if op.transient:  # the call and its outputs' ids are kept, not their values
            return out_cids, transient.placeholders(outputs, op.transient)
        return out_cids, list(map(codecs.encode, outputs))
    except Exception:  # say which output could not be hashed or stored; hand them back
        raise UnstoredOutputs(call, outputs, _explain_outputs(op, outputs, structured)) from None


def _check_transient_structures(op: Op, kinds: dict[int, str]) -> None:
    """An output both stored element by element (each element's provenance) and transient
    cannot be either: an error naming it (it was stored whole, against ``transient=``)."""
    for index, kind in kinds.items():
        if transient.is_transient(op, index):
            raise ArgumentError(
                f"op {op.name}, output {index}: annotated {structures.annotation_of(kind)}[...], which stores "
                "each element (and where it came from), but transient= leaves its value out; drop one of the two"
            )


def _encode_structured(op: Op, kinds: dict[int, str], outputs: tuple) -> list:
    """The outputs of an op with MList/MDict/MSet outputs: those element by element; among
    the others, one the op says is transient is, as any op's, a row without its value."""
    if not op.transient:
        return structures.encode_outputs(kinds, outputs, op.name)
    return [
        structures.encode(kinds[i], value, op.name) if i in kinds
        else transient.PLACEHOLDER if transient.is_transient(op, i)
        else codecs.encode(value)
        for i, value in enumerate(outputs)
    ]


def load_back(call: CallIdentity, outputs: tuple, out_cids: tuple[bytes, ...], encoded: list,
              loaded: dict[bytes, Any]) -> None:
    """Put in ``loaded`` each pickled output as its stored bytes load back; UnstoredOutputs
    when one does not.

    A run block hands an output back as its stored copy, so a value that pickles but whose
    pickle raises when loaded (a ``__reduce__`` or ``__setstate__`` that refuses) failed that
    very call, after it was stored, and every later run of the block again: the call stays
    unloadable until deleted. Checked before anything is buffered, it is handed back unstored
    like any output that cannot be stored. The load is the one the hand-back would do anyway.
    ``loaded`` starts empty: a call that failed after this left nothing for the next one.
    """
    loaded.clear()
    for i, (cid, value) in enumerate(zip(out_cids, encoded)):
        if getattr(value, "codec", None) != "pickle":
            continue
        try:
            loaded[cid] = codecs.decode("pickle", value.data)
        except Exception as exc:  # (the caller drops what ``loaded`` holds)
            error = ValueEncodingError(
                f"op {call.op.name}, output {i}: a value of type {type(outputs[i]).__qualname__} is stored "
                f"as a pickle that cannot be loaded back ({type(exc).__name__}: {exc})"
            )
            raise UnstoredOutputs(call, outputs, error) from None


def encoded_outputs(op: Op, outputs: tuple) -> dict[bytes, codecs.EncodedValue]:
    """``cid -> encoded value`` of outputs and their elements (MList...), to repair files."""
    kinds = op.structure_outputs
    found = {}
    for i, value in enumerate(outputs):
        encoded = encode_or_explain(op, f"output {i}", value, kinds.get(i))
        found[content_id(value)] = encoded
        found.update(getattr(encoded, "elements", {}))
    return found


def encode_or_explain(op: Op, what: str, value: Any, kind: str | None = None) -> codecs.EncodedValue:
    """``value`` encoded (as a structure of ``kind`` if given), or a ValueEncodingError
    naming the op and ``what`` the value is."""
    try:
        return codecs.encode(value) if kind is None else structures.encode(kind, value, op.name)
    except Exception as exc:  # pickle raises TypeError, PicklingError, AttributeError, ...
        if isinstance(exc, RecursionError) and stack_nearly_full():
            raise  # the caller's depth (a recursive op's deepest call), not the value's fault
        raise ValueEncodingError(
            f"op {op.name}, {what}: cannot store a value of type {type(value).__qualname__}: {exc}"
        ) from exc


def _explain_outputs(op: Op, outputs: tuple, structured: dict) -> ValueEncodingError:
    """The error naming the first output that cannot be hashed or stored."""
    try:
        for i, value in enumerate(outputs):
            hash_or_explain(op, f"output {i}", value)
            encode_or_explain(op, f"output {i}", value, structured.get(i))
    except ValueEncodingError as error:
        return error
    return ValueEncodingError(f"op {op.name}: its outputs cannot be stored")


def _holds_value(cid: bytes, encoded: codecs.EncodedValue, data: bytes) -> bool:
    """Whether ``data``, a value file's bytes, decode to the value ``encoded`` holds: to the
    same content id as ``encoded``'s own bytes decoded (a pickle of equal content differs from
    process to process, and some values, a fitted estimator, change ids in a round trip), or
    to ``cid``."""
    try:
        found = content_id(codecs.decode(encoded.codec, data))
        return found == cid or found == content_id(codecs.decode(encoded.codec, encoded.data))
    except MemoryError:  # too large to check twice: kept, as any file there was before
        return True
    except Exception:  # damaged: a decoder raises anything (UnpicklingError, ValueError...)
        return False
