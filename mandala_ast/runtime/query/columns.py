"""The table of a plain conjunctive pattern, built a column at a time.

Most queries are chains of op calls over free variables and constants: no ``if``, no derived
expression, no loop variable left for Python to expand. For those, every column of the
DataFrame is one list comprehension over a column of the SQL result, and each distinct value
is decoded once; the general per-row evaluation in result.py is several times slower.
"""

from __future__ import annotations

import itertools
import operator
import re
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .. import codecs
from ..packing import CODECS as _CODEC_NAMES, unpack_outputs
from .distinct import distinct_rows
from .pattern import Derived, DomainVar, Node, OutputVar, Pattern
from .row_calls import RowCalls
from .sql import CompiledQuery

if TYPE_CHECKING:
    from ..storage import Storage

__all__ = ["NOT_STORED", "Decoder", "SqlColumns", "gaps_of", "inline_values", "is_plain", "plain_table"]

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


def plain_table(storage: Storage, pattern: Pattern, compiled: CompiledQuery, rows: list[tuple],
                names: list[str], ids: bool) -> tuple[list[list], RowCalls]:
    """Columns (in ``names`` order) of the distinct rows, and each row's matched call ids."""
    sql_columns = SqlColumns(rows)
    cid_columns = [_cids(pattern.columns[name][-1].value, compiled, sql_columns, len(rows)) for name in names]
    distinct = distinct_rows(cid_columns, len(rows))
    # (The tuples of call ids are made if someone asks.)
    calls = RowCalls([sql_columns[compiled.call_columns[call.number]] for call in pattern.calls])
    if distinct is not None:
        calls = calls.kept(distinct)
        cid_columns = [[*map(column.__getitem__, distinct.keep)] for column in cid_columns]
    if ids:
        return [list(map(bytes.hex, column)) for column in cid_columns], calls
    keep = None if distinct is None else distinct.keep
    return _values(storage, pattern, compiled, sql_columns, names, cid_columns, keep), calls


class SqlColumns:
    """The SQL rows a column at a time, each column extracted when first asked for.

    ``zip(*rows)`` would transpose every column at once, and makes an iterator per row
    (500k of them, which also keeps the garbage collector busy); ``map(itemgetter)`` is
    four times faster per column."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows
        self.found: dict[int, list] = {}

    def __getitem__(self, index: int) -> list:
        column = self.found.get(index)
        if column is None:
            column = self.found[index] = list(map(itemgetter(index), self.rows))
        return column


def _values(storage: Storage, pattern: Pattern, compiled: CompiledQuery, sql_columns: SqlColumns,
            names: list[str], cid_columns: list[list], keep: list[int] | None) -> list[list]:
    """The value columns: first outputs decoded straight from their call rows, the rest by
    content id (each decoded once, loaded in bulk)."""
    decoder = Decoder(storage)
    sources = [pattern.columns[name][-1].value for name in names]
    decoded: list[tuple[list, list[int]] | None] = []  # a column, and where it has NOT_STORED
    inline: list[tuple[list[bytes], list, list[int]]] = []  # the same with their ids, to share
    for value, cids in zip(sources, cid_columns):
        if _first_output(value):
            packed = sql_columns[compiled.call_columns[value.call.number] + 1]
            column = inline_values(packed if keep is None else [*map(packed.__getitem__, keep)])
            decoded.append(column)
            inline.append((cids, *column))
            continue
        if isinstance(value, OutputVar):
            decoder.take_later_outputs(sql_columns[compiled.call_columns[value.call.number] + 1], value.index)
        elif isinstance(value, DomainVar):  # a loop value (a default may not be stored at all)
            decoder.take_literals(value.values)
        decoded.append(None)
    found = iter(decoder.look_up([cids for column, cids in zip(decoded, cid_columns) if column is None], inline))
    return decoder.fill([next(found) if column is None else column for column in decoded], cid_columns)


def _first_output(value: Any) -> bool:
    return isinstance(value, OutputVar) and value.index == 0


def inline_values(packed_column: list) -> tuple[list, list[int]]:
    """The first output of each call row, decoded from the row itself (NOT_STORED where the
    value is too large to travel inline), and the positions of those that were not."""
    datas = [packed[34 : 34 + packed[33]] for packed in packed_column]
    codes = bytes(map(itemgetter(32), packed_column))
    # Integers, most of what is stored, are json's decimal text, which int() parses as the
    # codec would; one map(int) for the column is three times faster than a test per row.
    # The few rows of other codes (an uncompiled call's output, which travels outside its
    # row) are decoded on their own: one of them sent 500k rows down the slow loop.
    others = [found.start() for found in _NOT_JSON.finditer(codes)]
    if len(others) <= len(codes) // 8:
        ints = _ints(datas, others)
        if ints is not None:
            for i in others:
                ints[i] = _decoded(codes[i], datas[i])
            return ints, [i for i in others if ints[i] is NOT_STORED]
    found = [_decoded(code, data) for code, data in zip(codes, datas)]
    return found, gaps_of(found)


#: Codes other than json's, in a column's bytes of codes.
_NOT_JSON = re.compile(b"[^%c]" % _JSON)


def _ints(datas: list[bytes], others: list[int]) -> list | None:
    """int() of every json text but ``others`` (their places hold 0), None if one is not an int."""
    if others:
        datas = list(datas)
        for i in others:
            datas[i] = b"0"
    try:
        return list(map(int, datas))
    except ValueError:  # a float, a str, a bool or None among them
        return None


def _decoded(code: int, data: bytes) -> Any:
    if code == _JSON and data.isdigit():
        return int(data)
    if code == _NOT_INLINE:
        return NOT_STORED
    return codecs.decode(_CODEC_NAMES[code], data)


def gaps_of(column: list) -> list[int]:
    """Positions of NOT_STORED in ``column`` (compress and map scan it without a Python loop)."""
    return list(itertools.compress(range(len(column)), map(operator.is_, column, itertools.repeat(NOT_STORED))))


#: Marks a value that is not inline in its call row: it is loaded from the values table.
NOT_STORED = object()


def _cids(value: Any, compiled: CompiledQuery, sql_columns: SqlColumns, count: int) -> list:
    """The content ids of a named column, one per SQL row."""
    if not isinstance(value, Node):  # a constant assigned in the block
        from ..hashing import content_id

        return [content_id(value)] * count
    if isinstance(value, OutputVar):
        packed = sql_columns[compiled.call_columns[value.call.number] + 1]
        if value.index == 0:
            return list(map(itemgetter(slice(0, 32)), packed))
        return [unpack_outputs(p)[value.index][0] for p in packed]
    return sql_columns[compiled.var_columns[value.number]]


class Decoder:
    """Content id -> value, each decoded once: inline outputs from the call rows, the rest
    from the values table in bulk."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.values: dict[bytes, Any] = {}

    def take_later_outputs(self, packed_column: list, index: int) -> None:
        """Output ``index`` (> 0; first outputs are decoded by inline_values) of each call row."""
        values = self.values
        for packed in packed_column:
            for cid, codec, data in unpack_outputs(packed)[index : index + 1]:
                if codec is not None and data is not None and cid not in values:  # (both or neither)
                    values[cid] = codecs.decode(codec, data)

    def take_literals(self, literals: list) -> None:
        from ..hashing import content_id

        for value in literals:
            self.values.setdefault(content_id(value), value)

    def share(self, cids: list[bytes], values: list, gaps: list[int]) -> None:
        """Values decoded for one column, for the others (values are content-addressed). A
        gap's marker never overwrites what is known: a loop value, a later output decoded from
        its own call row, where the values table's row for that id is a transient op's."""
        if gaps:
            pairs = ((cid, value) for cid, value in zip(cids, values) if value is not NOT_STORED)
            self.values.update(pairs)
        else:
            self.values.update(zip(cids, values))

    def look_up(self, cid_columns: list[list[bytes]], inline: list[tuple[list[bytes], list, list[int]]]) -> list[tuple[list, list[int]]]:
        """The columns of ``cid_columns`` as far as known (NOT_STORED elsewhere), and where
        the gaps are. The decoded columns lend their values: the first all of them (a chain's
        columns share most values: x and inc(x)), the others only ids still missing, found by
        a set without a dict entry per row (sharing a second column cost 0.12 s per 500k)."""
        if not cid_columns:
            return []
        if inline:
            self.share(*inline[0])
        found = [self._known(cids) for cids in cid_columns]
        for cids, values, _ in inline[1:]:
            wanted = {ids[i] for (_, gaps), ids in zip(found, cid_columns) for i in gaps} - self.values.keys()
            if not wanted:
                break
            hits = itertools.compress(zip(cids, values), map(wanted.__contains__, cids))
            self.values.update(pair for pair in hits if pair[1] is not NOT_STORED)
        return found

    def _known(self, cids: list[bytes]) -> tuple[list, list[int]]:
        column = list(map(self.values.get, cids, itertools.repeat(NOT_STORED)))
        return column, gaps_of(column)

    def fill(self, columns: list[tuple[list, list[int]]], cid_columns: list[list[bytes]]) -> list[list]:
        """The columns with their gaps filled, the values they need loaded in one statement."""
        wanted = {cids[i] for (_, gaps), cids in zip(columns, cid_columns) for i in gaps}
        self.values.update(self.storage.engine.loader.decode_values(list(wanted - self.values.keys())))
        for (column, gaps), cids in zip(columns, cid_columns):
            for i in gaps:
                column[i] = self._get(cids[i])
        return [column for column, _ in columns]

    def _get(self, cid: bytes) -> Any:
        try:
            return self.values[cid]
        except KeyError:
            raise LookupError(f"value {cid.hex()} is missing from {self.storage!r}") from None
