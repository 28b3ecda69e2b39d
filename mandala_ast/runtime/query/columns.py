"""The table of a plain conjunctive pattern, built a column at a time.

Most queries are chains of op calls over free variables and constants: no ``if``, no derived
expression, no loop variable left for Python to expand. For those, every column of the
DataFrame is one list comprehension over a column of the SQL result, and each distinct value
is decoded once; the general per-row evaluation in result.py is several times slower.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Callable

from .. import codecs
from ..packing import CODECS as _CODEC_NAMES, unpack_outputs
from .pattern import Derived, DomainVar, Node, OutputVar, Pattern
from .sql import CompiledQuery

if TYPE_CHECKING:
    from ..storage import Storage

__all__ = ["is_plain", "plain_table"]

_JSON = 0  # packing's code for the json codec
_NOT_INLINE = 255


def is_plain(pattern: Pattern, compiled: CompiledQuery) -> bool:
    """No guards, derived variables, unconstrained loop variables or tuple loop targets."""
    if any(call.guard is not None for call in pattern.calls):
        return False
    for node in pattern.nodes:
        if isinstance(node, Derived) or (isinstance(node, DomainVar) and (node.group is not None or node.number not in compiled.var_columns)):
            return False
    return all(a.guard is None for assignments in pattern.columns.values() for a in assignments)


def plain_table(storage: "Storage", pattern: Pattern, compiled: CompiledQuery, rows: list[tuple],
                names: list[str], ids: bool) -> tuple[list[list], list[tuple[bytes, ...]]]:
    """Columns (in ``names`` order) of the distinct rows, and each row's matched call ids."""
    sql_columns = list(zip(*rows)) if rows else [()] * (2 * len(pattern.calls) + len(compiled.var_columns))
    cid_columns = [_cids(pattern.columns[name][-1].value, compiled, sql_columns, len(rows)) for name in names]
    distinct = _distinct(cid_columns, len(rows))
    calls = _row_calls(pattern, compiled, sql_columns, distinct)
    if distinct is not None:
        cid_columns = [[column[i] for i in distinct[0]] for column in cid_columns]
    if ids:
        return [[c.hex() for c in column] for column in cid_columns], calls
    keep = None if distinct is None else distinct[0]
    return _values(storage, pattern, compiled, sql_columns, names, cid_columns, keep), calls


def _row_calls(pattern: Pattern, compiled: CompiledQuery, sql_columns: list, distinct) -> list[tuple]:  # type: ignore[no-untyped-def]
    """The calls each row matched. A row shown once stands for every match with its values:
    it keeps all their calls (what a delete block or storage.delete_calls(df) removes)."""
    hid_columns = [sql_columns[compiled.call_columns[call.number]] for call in pattern.calls]
    calls = list(zip(*hid_columns)) if hid_columns else []
    if distinct is None:
        return calls
    keep, owner = distinct
    merged: list[dict] = [{} for _ in keep]
    for i, at in enumerate(owner):
        merged[at].update(dict.fromkeys(calls[i]))
    return [tuple(found) for found in merged]


def _values(storage: "Storage", pattern: Pattern, compiled: CompiledQuery, sql_columns: list,
            names: list[str], cid_columns: list[list], keep: list[int] | None) -> list[list]:
    """The value columns: first outputs decoded straight from their call rows, the rest by
    content id (each decoded once, loaded in bulk)."""
    decoder = _Decoder(storage)
    decoded: list[list | None] = []
    for name, cids in zip(names, cid_columns):
        value = pattern.columns[name][-1].value
        packed = sql_columns[compiled.call_columns[value.call.number] + 1] if isinstance(value, OutputVar) else ()
        if isinstance(value, OutputVar) and value.index == 0:
            column = _inline_values(packed if keep is None else [packed[i] for i in keep])
            decoder.share(cids, column)
            decoded.append(column)
            continue
        decoded.append(None)
        if isinstance(value, OutputVar):
            decoder.take_inline(packed, value.index)
        elif isinstance(value, DomainVar):  # a loop value (a default may not be stored at all)
            decoder.take_literals(value.values)
    decoder.load_missing([cids if column is None else _not_inline(cids, column) for cids, column in zip(cid_columns, decoded)])
    return [decoder.column(cids) if column is None else decoder.fill(column, cids) for cids, column in zip(cid_columns, decoded)]


def _inline_values(packed_column: list) -> list:
    """The first output of each call row, decoded from the row itself (_NOT_STORED where the
    value is too large to travel inline). Integers, most of what is stored, skip the codec."""
    decode = codecs.decode
    found = []
    append = found.append
    for packed in packed_column:
        code = packed[32]
        data = packed[34 : 34 + packed[33]]
        if code == _JSON and data.isdigit():
            append(int(data))
        elif code == _NOT_INLINE:
            append(_NOT_STORED)
        else:
            append(decode(_CODEC_NAMES[code], data))
    return found


def _not_inline(cids: list[bytes], values: list) -> list[bytes]:
    return [cid for cid, value in zip(cids, values) if value is _NOT_STORED]


#: Marks a value that is not inline in its call row: it is loaded from the values table.
_NOT_STORED = object()


def _cids(value: Any, compiled: CompiledQuery, sql_columns: list, count: int) -> list:
    """The content ids of a named column, one per SQL row."""
    if not isinstance(value, Node):  # a constant assigned in the block
        from ..hashing import content_id

        return [content_id(value)] * count
    if isinstance(value, OutputVar):
        packed = sql_columns[compiled.call_columns[value.call.number] + 1]
        if value.index == 0:
            return [p[:32] for p in packed]
        return [unpack_outputs(p)[value.index][0] for p in packed]
    return list(sql_columns[compiled.var_columns[value.number]])


def _distinct(cid_columns: list[list], count: int) -> tuple[list[int], list[int]] | None:
    """None when all rows are distinct; else the indices of the first occurrence of each
    distinct row, and for every row the position of its first occurrence among those."""
    keys = list(zip(*cid_columns)) if cid_columns else [()] * count
    first = dict.fromkeys(keys)
    if len(first) == len(keys):
        return None
    position: dict = {}
    keep: list[int] = []
    owner: list[int] = []
    for i, key in enumerate(keys):
        at = position.get(key)
        if at is None:
            at = position[key] = len(keep)
            keep.append(i)
        owner.append(at)
    return keep, owner


class _Decoder:
    """Content id -> value, each decoded once: inline outputs from the call rows, the rest
    from the values table in bulk."""

    def __init__(self, storage: "Storage") -> None:
        self.storage = storage
        self.values: dict[bytes, Any] = {}

    def take_inline(self, packed_column: tuple, index: int) -> None:
        if index:
            self._take_later_outputs(packed_column, index)
            return
        values = self.values
        decode = codecs.decode
        for packed in packed_column:
            cid = packed[:32]
            if cid in values:
                continue
            code = packed[32]
            if code == _NOT_INLINE:
                continue
            data = packed[34 : 34 + packed[33]]
            # Integers are most of what is stored: int() parses them without the codec's calls.
            if code == _JSON and (data.isdigit() or (data[:1] == b"-" and data[1:].isdigit())):
                values[cid] = int(data)
            else:
                values[cid] = decode(_CODEC_NAMES[code], data)

    def _take_later_outputs(self, packed_column: tuple, index: int) -> None:
        values = self.values
        for packed in packed_column:
            for cid, codec, data in unpack_outputs(packed)[index : index + 1]:
                if codec is not None and cid not in values:
                    values[cid] = codecs.decode(codec, data)

    def take_literals(self, literals: list) -> None:
        from ..hashing import content_id

        for value in literals:
            self.values.setdefault(content_id(value), value)

    def load_missing(self, columns: list[list[bytes]]) -> None:
        known = self.values.__contains__
        missing: set[bytes] = set()
        for column in columns:
            missing.update(itertools.filterfalse(known, column))
        for cid, (codec, data, external) in self.storage._store.find_values(list(missing)).items():
            self.values[cid] = self.storage._decode(cid, codec, data, external)

    def share(self, cids: list[bytes], values: list) -> None:
        """Values decoded for one column, for the others: content-addressed, columns often
        hold the same values (x and inc(x) share most of theirs)."""
        if any(value is _NOT_STORED for value in values):
            pairs = ((cid, value) for cid, value in zip(cids, values) if value is not _NOT_STORED)
            self.values.update(pairs)
        else:
            self.values.update(zip(cids, values))

    def fill(self, values: list, cids: list[bytes]) -> list:
        """``values`` with each value that was not inline looked up by its content id."""
        if not any(value is _NOT_STORED for value in values):  # identity: arrays refuse ==
            return values
        return [self.values[cid] if value is _NOT_STORED else value for value, cid in zip(values, cids)]

    def column(self, cids: list[bytes]) -> list:
        get: Callable = self.values.__getitem__
        try:
            return list(map(get, cids))
        except KeyError as exc:
            raise LookupError(f"value {exc.args[0].hex()} is missing from {self.storage!r}") from None
