"""Names of the columns a table of calls adds to an op's own (outputs, version, call...).

``storage.df``, the command line's ``calls`` and the flat export show an op's arguments under
their names; the columns they add come after, and must not take an argument's name (an op
taking ``version``, ``output`` or ``call``), or that argument's values would be lost or its
column doubled.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["clear_of"]


def clear_of(taken: Iterable[str], names: Iterable[str]) -> list[str]:
    """``names`` (a table's own columns: outputs, version, call...), each with underscores
    appended until neither an input of the op (``taken``) nor an earlier name has it: an op
    taking ``version`` or ``output`` keeps that argument's name and value in its tables.

    >>> clear_of(["version", "x"], ["output", "version", "call"])
    ['output', 'version_', 'call']
    """
    used = set(taken)
    clear = []
    for name in names:
        while name in used:
            name += "_"
        used.add(name)
        clear.append(name)
    return clear
