"""Where a warning of ours points: at the user's line, not at ours."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["user_stacklevel"]

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep


def user_stacklevel() -> int:
    """The ``stacklevel`` of a warning that points at the user's line, not ours (compiled
    and uncompiled calls reach the storage through different frames).

    >>> import warnings
    >>> warnings.warn("careful", stacklevel=user_stacklevel())    # doctest: +SKIP
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level
