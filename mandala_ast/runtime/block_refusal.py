"""Storage blocks refused while the command line imports a user's module to read its ops.

``mandala-ast why --import script.py`` imports the script to see its ops' code as it is now.
Most scripts run their experiment at their top level, so the import would run it again: every
call of a run or batch block computed and stored a second time, under the module's import
name (``script.train`` beside the ``__main__.train`` the script stored), before ``why`` said
a word. While such an import runs, entering any block raises instead, before a call is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .._errors import BlockRefusedError

__all__ = ["blocks_refused", "check_block_allowed"]

#: Why blocks are refused now (the command importing the module), or None when they are not.
_refused_by: str | None = None


@contextmanager
def blocks_refused(command: str) -> Iterator[None]:
    """Within this, entering a storage block raises :class:`BlockRefusedError`.

    >>> with blocks_refused("mandala-ast why --import s.py"):   # doctest: +SKIP
    ...     importlib.import_module("s")        # its `with storage.run():` raises
    """
    global _refused_by
    before, _refused_by = _refused_by, command
    try:
        yield
    finally:
        _refused_by = before


def check_block_allowed() -> None:
    """Raise if blocks are refused now (see :func:`blocks_refused`)."""
    if _refused_by is not None:
        raise BlockRefusedError(
            f"{_refused_by} imports the module only to read its ops' code, and does not run your "
            "script's blocks: this block would compute and store its calls again"
        )
