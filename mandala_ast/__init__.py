"""mandala_ast: persistent memoization and experiment data management, driven by a compiler.

>>> from mandala_ast import op, Storage
>>> @op
... def inc(x: int) -> int:
...     return x + 1
>>> storage = Storage()
>>> with storage:
...     inc(1)
2
"""

from typing import Any

from ._errors import (
    CorruptValueError,
    HookError,
    MandalaDiagnosticWarning,
    MandalaError,
    MandalaFallbackWarning,
    MandalaImportWarning,
    MandalaRenderWarning,
    MandalaRepairWarning,
    MandalaUnstoredWarning,
    MandalaWarning,
    NewCallError,
    OutputCountError,
    QueryError,
    RenderError,
    StorageBusyError,
    StorageFormatError,
    ValueEncodingError,
    VersionChangeError,
)
from .runtime.ops import Op, Workflow, op, workflow
from .runtime.storage import Storage
from .runtime.structures import MDict, MList, MSet
from .runtime.types import register_type

__version__ = "0.1.0"

__all__ = [
    "CorruptValueError",
    "DeleteReport",
    "GcReport",
    "HookError",
    "HookHandle",
    "MDict",
    "MList",
    "MSet",
    "MandalaDiagnosticWarning",
    "MandalaError",
    "MandalaFallbackWarning",
    "MandalaImportWarning",
    "MandalaRenderWarning",
    "MandalaRepairWarning",
    "MandalaUnstoredWarning",
    "MandalaWarning",
    "NewCallError",
    "Op",
    "OutputCountError",
    "Q",
    "QueryError",
    "RenderError",
    "Storage",
    "StorageBusyError",
    "StorageFormatError",
    "TransformResult",
    "ValueEncodingError",
    "VerifyReport",
    "VersionChangeError",
    "Workflow",
    "compile_module",
    "install",
    "install_this_package",
    "op",
    "register_type",
    "transform_source",
    "workflow",
]

# The compiler side is imported on first use: `import mandala_ast` must never import libcst
# (a warm import of a compiled module parses nothing), and most processes never need the hook.
_LAZY = {
    # Reports and the query engine load on first use, keeping `import mandala_ast` light.
    "DeleteReport": "mandala_ast.runtime.deletion",
    "GcReport": "mandala_ast.runtime.garbage",
    "VerifyReport": "mandala_ast.runtime.integrity",
    "Q": "mandala_ast.runtime.query.block",
    "HookHandle": "mandala_ast.hook",
    "install": "mandala_ast.hook",
    "install_this_package": "mandala_ast.hook",
    "compile_module": "mandala_ast.compiler",
    "transform_source": "mandala_ast.transforms",
    "TransformResult": "mandala_ast.transforms",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mandala_ast' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
