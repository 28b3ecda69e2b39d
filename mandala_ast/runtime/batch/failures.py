"""How a batch reports failed calls: the op's own exception, with a note naming the call.

The user's ``except ValueError`` still catches a ValueError raised by an op; the note (shown
under the traceback) says which call raised it. Several failures are raised together as an
``ExceptionGroup`` (``except*`` picks them apart); Python 3.10 gets it from the
``exceptiongroup`` backport.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["ExceptionGroup", "add_note", "raise_failures"]

if sys.version_info >= (3, 11):
    import builtins

    ExceptionGroup = builtins.ExceptionGroup
else:  # pragma: no cover - Python 3.10
    from exceptiongroup import ExceptionGroup


def add_note(error: BaseException, note: str) -> BaseException:
    """``error`` with ``note`` added (once) to its ``__notes__``; returns ``error``."""
    notes = getattr(error, "__notes__", None)
    if notes is None or note not in notes:
        if hasattr(error, "add_note"):
            error.add_note(note)
        else:  # pragma: no cover - Python 3.10: the backport prints __notes__
            error.__notes__ = [*(notes or []), note]  # type: ignore[attr-defined]
    return error


def raise_failures(errors: list[Exception], skipped: int) -> None:
    """Raise the failures of a batch, if any: one as itself, several as an ExceptionGroup."""
    unique = list({id(e): e for e in errors}.values())
    if not unique:
        return
    if len(unique) == 1:
        raise unique[0]
    after = f"; {skipped} calls that needed their outputs did not run" if skipped else ""
    raise ExceptionGroup(f"{len(unique)} calls of the batch failed{after}", unique)


def describe_failure(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def name_call(error: BaseException, shown: Any) -> BaseException:
    """The note every failed batch call's error carries."""
    return add_note(error, f"in the batch call {shown}")
