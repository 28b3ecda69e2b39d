"""PIL images: keyed by mode, size, palette, info and pixel bytes.

The pixel bytes are those of ``Image.tobytes()`` (packed, no compression), so an image opened
from a PNG and the same pixels built in memory are one value, whatever class PIL gave each; the
file's format and name are not part of the key, its ``info`` (dpi, ICC profile...) is. They are
keyed as a numpy array, hashed in place (threaded when large) rather than copied into the key.

Where PIL holds the pixels exactly as ``tobytes()`` packs them (one byte per pixel: L, P; four:
RGBA, CMYK, I, F) and in one block of memory (images up to PIL's block size, 16 MB), they are
read in place through PIL's Arrow C data interface when pyarrow is importable: no copy, and the
same bytes, so the same id, as ``tobytes()`` gives a process without pyarrow. Other images (RGB,
which PIL pads to four bytes a pixel; images spread over several blocks) pay ``tobytes()``'s
copy. Stored with pickle, which PIL implements as mode, size, palette, info and the raw pixel
bytes (an image comes back as a plain ``PIL.Image.Image``, not as the file-format subclass it
was opened as).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from . import TypeHandler, add

__all__ = ["image_key", "pixel_bytes"]

#: Modes PIL stores exactly as ``tobytes()`` packs them (RGB, LA... are padded to four bytes;
#: "1" is a byte a pixel in memory, a bit in ``tobytes()``).
_UNPACKED_MODES = frozenset({"L", "P", "RGBA", "CMYK", "I", "F"})


def image_key(image: Image.Image) -> tuple:
    palette = image.getpalette() if image.mode in ("P", "PA") else None
    return (image.mode, image.size, palette, image.info, pixel_bytes(image))


def pixel_bytes(image: Image.Image) -> np.ndarray:
    """``image.tobytes()`` as a flat uint8 array, viewing PIL's memory when it can."""
    in_place = _in_place(image) if image.mode in _UNPACKED_MODES else None
    return in_place if in_place is not None else np.frombuffer(image.tobytes(), np.uint8)


def _in_place(image: Image.Image) -> np.ndarray | None:
    if not hasattr(image, "__arrow_c_array__"):  # Pillow < 11.2
        return None
    try:
        import pyarrow as pa
    except ImportError:
        return None
    try:
        array = pa.array(image)  # zero-copy; refused when the rows are in several blocks
    except (ValueError, TypeError):  # ArrowInvalid is a ValueError; an old pyarrow: TypeError
        return None
    buffer = array.buffers()[-1]
    if buffer is None or buffer.size != image.width * image.height * len(image.getbands()) * _band_bytes(image):
        return None
    return np.frombuffer(buffer, np.uint8)  # keeps the Arrow buffer, which keeps the image, alive


def _band_bytes(image: Image.Image) -> int:
    return 4 if image.mode in ("I", "F") else 1


# One name for every image class: a PNG's PngImageFile equals the same pixels made in memory.
add(TypeHandler(Image.Image, image_key, name="PIL.Image"))
