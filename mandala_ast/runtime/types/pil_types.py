"""PIL images: keyed by mode, size, palette, info and pixel bytes.

The pixel bytes are ``Image.tobytes()`` (one copy, no compression), so an image opened from a
PNG and the same pixels built in memory are one value, whatever class PIL gave each; the file's
format and name are not part of the key, its ``info`` (dpi, ICC profile...) is. Stored with
pickle, which PIL implements as mode, size, palette, info and the raw pixel bytes (an image comes
back as a plain ``PIL.Image.Image``, not as the file-format subclass it was opened as).
"""

from __future__ import annotations

from PIL import Image

from . import TypeHandler, add

__all__ = ["image_key"]


def image_key(image: Image.Image) -> tuple:
    palette = image.getpalette() if image.mode in ("P", "PA") else None
    return (image.mode, image.size, palette, image.info, image.tobytes())


# One name for every image class: a PNG's PngImageFile equals the same pixels made in memory.
add(TypeHandler(Image.Image, image_key, name="PIL.Image"))
