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

from ._errors import (
    MandalaError,
    MandalaWarning,
    NewCallError,
    OutputCountError,
    StorageFormatError,
    ValueEncodingError,
)
from .runtime.ops import Op, Workflow, op, workflow
from .runtime.storage import Storage

__version__ = "0.1.0"

__all__ = [
    "MandalaError",
    "MandalaWarning",
    "NewCallError",
    "Op",
    "OutputCountError",
    "Storage",
    "StorageFormatError",
    "ValueEncodingError",
    "Workflow",
    "op",
    "workflow",
]
