"""A PIL image's pixel memory, viewed in place: the runs of rows PIL holds contiguously.

PIL keeps a large image in several blocks of memory (16 MB each by default) and exports only a
single-block image through its Arrow interface; ``tobytes()`` and its encoders copy. To hash a
large image at the rate of its bytes, its rows are read where they are, through the image
record ``Image.getim()`` points to (the struct PIL's C extensions are given). Its layout is
checked before any pointer in it is followed: the bands, width, height, pixel size and line size
it holds must be the image's own, and its row table must be the one PIL uses for that pixel
size; the first and last rows read must then equal PIL's own copy of them. Anything else (another
layout, another interpreter, a Pillow without ``getim``) gives None and the caller copies.
"""

from __future__ import annotations

import ctypes

import numpy as np
from PIL import Image

__all__ = ["row_runs"]

#: Modes whose memory PIL's raw encoder copies as it is, by the raw mode that does so (RGB's
#: fourth, padding, byte included): the modes read here.
_AS_STORED = {"L": "L", "P": "P", "RGB": "RGBX", "RGBA": "RGBA", "CMYK": "CMYK", "I": "I", "F": "F"}


def _fields(mode_field: tuple[str, type]) -> list[tuple[str, type]]:
    ints = [(name, ctypes.c_int) for name in ("type", "depth", "bands", "xsize", "ysize")]
    pointers = [(name, ctypes.c_void_p) for name in ("palette", "image8", "image32", "image", "block", "blocks")]
    return [mode_field, *ints, *pointers, ("pixelsize", ctypes.c_int), ("linesize", ctypes.c_int)]


class _ModeIdRecord(ctypes.Structure):  # Pillow >= 12: the mode is an enum
    _fields_ = _fields(("mode", ctypes.c_int))


class _ModeNameRecord(ctypes.Structure):  # Pillow < 12: the mode is a 7-byte name
    _fields_ = _fields(("mode", ctypes.c_char * 7))


def row_runs(image: Image.Image) -> list[np.ndarray] | None:
    """``image``'s pixel memory as uint8 views, one per run of contiguous rows, in row order
    (PIL's own bytes: an RGB pixel is four, the last one padding). The views do not keep the
    image alive: hold it while they are used. None where that memory cannot be reached safely."""
    width, height = image.size
    if width * height == 0 or image.mode not in _AS_STORED:
        return None
    record = _record(image)
    if record is None:
        return None
    # PIL's row table, read as one array (a Python int per row cost ~7% of hashing the image).
    rows = np.frombuffer(memoryview((ctypes.c_void_p * height).from_address(record.image)), np.uintp).copy()
    if not rows.all():
        return None
    runs = _runs(rows, record.linesize)
    if not _agrees(image, runs, record.linesize):
        return None
    return runs


def _record(image: Image.Image) -> ctypes.Structure | None:
    try:
        capsule = image.getim()  # Pillow >= 11 (older: no such method)
        name = _capsule_name(capsule)
        address = _capsule_pointer(capsule, name)
    except (AttributeError, TypeError, ValueError):
        return None
    if not address or b"Imaging" not in (name or b""):
        return None
    bands = len(image.getbands())
    for layout in (_ModeIdRecord, _ModeNameRecord):
        record = layout.from_address(address)
        if _plausible(record, image.size, bands):
            return record
    return None


def _plausible(record: ctypes.Structure, size: tuple[int, int], bands: int) -> bool:
    pixels = {1: record.image8, 4: record.image32}.get(record.pixelsize)
    return (
        (record.xsize, record.ysize, record.bands) == (*size, bands)
        and record.linesize == record.xsize * record.pixelsize
        and bool(record.image) and pixels == record.image  # PIL's row table for that pixel size
    )


def _runs(rows: np.ndarray, linesize: int) -> list[np.ndarray]:
    """A view per run of rows each ``linesize`` bytes after the one before."""
    starts = [0, *(np.flatnonzero(np.diff(rows) != linesize) + 1).tolist(), len(rows)]
    return [_view(int(rows[first]), (end - first) * linesize) for first, end in zip(starts, starts[1:])]


def _view(address: int, size: int) -> np.ndarray:
    return np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(address))


def _agrees(image: Image.Image, runs: list[np.ndarray], linesize: int) -> bool:
    """The first and last rows read equal PIL's own copies of them (padding included)."""
    last = image.height - 1
    return runs[0][:linesize].tobytes() == _row(image, 0) and runs[-1][-linesize:].tobytes() == _row(image, last)


def _row(image: Image.Image, y: int) -> bytes:
    encoder = Image._getencoder(image.mode, "raw", _AS_STORED[image.mode])
    encoder.setimage(image.im, (0, y, image.width, y + 1))
    try:
        _, status, data = encoder.encode(image.width * 4 + 16)
    finally:
        encoder.cleanup()
    return data if status == 1 else b""


def _capsule_name(capsule: object) -> bytes | None:
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return get_name(capsule)


def _capsule_pointer(capsule: object, name: bytes | None) -> int | None:
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(capsule, name)
