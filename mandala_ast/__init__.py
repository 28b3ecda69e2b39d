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
    AmbiguousBlockError,
    ArgumentError,
    BatchWorkerError,
    BlockRefusedError,
    CorruptValueError,
    ExportError,
    FixtureError,
    HookError,
    MandalaDiagnosticWarning,
    MandalaError,
    MandalaFallbackWarning,
    MandalaImportWarning,
    MandalaRandomWarning,
    MandalaRenderWarning,
    MandalaRepairWarning,
    MandalaTransientWarning,
    MandalaUnstoredWarning,
    MandalaWarning,
    NewCallError,
    NotAnOpError,
    OpRecursionError,
    OutputCountError,
    PictureSaveError,
    QueryError,
    ReadOnlyStorageError,
    RenameError,
    RenderError,
    StorageBusyError,
    StorageClosedError,
    StorageFormatError,
    StorageFullError,
    UnknownColumnError,
    UnknownOpError,
    UnloadableValueError,
    ValueEncodingError,
    VersionChangeError,
)

__version__ = "0.1.0"

__all__ = [
    "AmbiguousBlockError",
    "ArgumentError",
    "BatchWorkerError",
    "BlockRefusedError",
    "CorruptValueError",
    "DeleteReport",
    "ExportError",
    "FixtureError",
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
    "MandalaRandomWarning",
    "MandalaRenderWarning",
    "MandalaRepairWarning",
    "MandalaTransientWarning",
    "MandalaUnstoredWarning",
    "MandalaWarning",
    "NewCallError",
    "NotAnOpError",
    "Op",
    "OpRecursionError",
    "OutputCountError",
    "PictureSaveError",
    "Q",
    "QueryError",
    "ReadOnlyStorageError",
    "RenameError",
    "RenderError",
    "Storage",
    "StorageBusyError",
    "StorageClosedError",
    "StorageFormatError",
    "StorageFullError",
    "TransformResult",
    "UnknownColumnError",
    "UnknownOpError",
    "UnloadableValueError",
    "ValueEncodingError",
    "ValuePointer",
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

# Everything but the errors is imported on first use: `import mandala_ast` must never import
# libcst (a warm import of a compiled module parses nothing), most processes never need the
# hook, and pytest imports this package in every run of every project once mandala_ast is
# installed (its plugin lives in mandala_ast.pytest): a run without cached fixtures must not
# pay for the runtime (storage, hashing, versions: tens of milliseconds).
_LAZY = {
    "Op": "mandala_ast.runtime.ops",
    "Workflow": "mandala_ast.runtime.ops",
    "op": "mandala_ast.runtime.ops",
    "workflow": "mandala_ast.runtime.ops",
    "Storage": "mandala_ast.runtime.storage",
    "MDict": "mandala_ast.runtime.structures",
    "MList": "mandala_ast.runtime.structures",
    "MSet": "mandala_ast.runtime.structures",
    "register_type": "mandala_ast.runtime.types",
    "ValuePointer": "mandala_ast.runtime.pointers",
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
    # `%load_ext mandala_ast` looks these up on the package (IPython's extension protocol).
    "load_ipython_extension": "mandala_ast.ipython",
    "unload_ipython_extension": "mandala_ast.ipython",
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
