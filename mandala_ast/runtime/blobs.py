"""Large values as content-addressed files beside the database, written atomically."""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["BlobDir"]


class BlobDir:
    """``<db>.blobs/ab/abcdef…``: one file per content id, never rewritten once present."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, cid: bytes) -> Path:
        name = cid.hex()
        return self.root / name[:2] / name

    def write(self, cid: bytes, data: bytes) -> None:
        """Write once; temp file + ``os.replace`` so readers never see a partial file."""
        target = self.path(cid)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
