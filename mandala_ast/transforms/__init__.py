"""Pure source -> source rewriting with libcst. No I/O, no runtime imports.

The compiler calls :func:`transform_source`; the text it returns refers to the runtime only
through the global names ``__mandala_rt__`` and ``__mandala_callee__`` (its ``callee``), both
bound by the one import line it adds (``docs/compiled-runtime-contract.md``).

Modules:
    _api         ``transform_source``: survey, rewrite both forms, inject the import, check lines
    _detect      cheap prefilters and the survey of blocks and workflows
    _scopes      Python scopes and provenance keys ``name@scope``
    _raw         which arguments no op produced (raw), as far as the source shows
    _grown       lists and dicts filled step by step (``ys.append(inc(x))``): which to follow
    _run_form    the run-form rewrite of calls, assignments and returns
    _query_form  the query-form rewrite of query and delete blocks
    _emit        builders for the emitted text; one-line copies
    _inject      the runtime import, placed on an existing line
    _lines       the line-stability invariant
    _errors      TransformError and LineShiftError
"""

from __future__ import annotations

from ._api import TRANSFORM_FORMAT, TransformResult, transform_source
from ._errors import LineShiftError, TransformError
from ._lines import check_line_stable

__all__ = [
    "TRANSFORM_FORMAT",
    "LineShiftError",
    "TransformError",
    "TransformResult",
    "check_line_stable",
    "transform_source",
]
