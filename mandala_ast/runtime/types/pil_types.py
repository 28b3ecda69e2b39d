"""PIL images: keyed by mode, size, palette, info and pixel bytes.

The pixel bytes are those of ``Image.tobytes()`` (packed, no compression), so an image opened
from a PNG and the same pixels built in memory are one value, whatever class PIL gave each; the
file's format and name are not part of the key. ``info`` is, all of it, as ``Image.__eq__``
compares it: its items (an ICC profile, transparency, dpi, EXIF...) change what the pixels mean
or what saving the image writes. A palette is keyed in its own mode (an RGBA palette's alpha
counts).

Where PIL holds the pixels exactly as ``tobytes()`` packs them (one byte per pixel: L, P; four:
RGBA, CMYK, I, F), they are read in place, run of rows by run of rows (``pil_memory``): no copy.
Not through PIL's Arrow C data interface: Pillow 11.2-12.x crash exporting an image that
borrows its memory (``Image.fromarray``'s), and it refuses images of several blocks anyway.
Other images (LA, YCbCr... which PIL pads to four bytes a pixel; a Pillow whose memory cannot be
read safely) are packed a few MB at a time and each piece hashed while it is in the CPU cache:
``tobytes()`` whole would write the full copy to new memory first, at a tenth of the hashing
rate. Both ways hash the same bytes as the flat array of ``tobytes()``, so an image has one id
either way.

RGB, the common large image, is keyed by the four bytes a pixel PIL holds it in, with the
fourth (padding) byte 255: the bytes of ``image.convert("RGBA").tobytes()``, hashed as
segments on all cores (``runtime/segments.py``: PIL's 16 MB blocks fed to one hasher, block by
block, hashed at 0.8 of the rate of one buffer). Packing RGB to three bytes a pixel costs more
than hashing the padding. PIL leaves the padding byte 255 or 0
depending on how the image was made (``fromarray`` and files: 255; ``resize``, ``point``, a
black ``Image.new``: 0; ``rotate``, ``crop`` past the edge, ``ImageOps.expand``: 0 in the
corners or borders it adds). Reading every padding byte before hashing cost a third of the
rate, so about one pixel a 4 KiB page is read (``sample_step``): a block whose sampled padding is all 255 is hashed
where it is, any other is copied with its padding set, a plain vectorised pass. An image
whose padding is 0 only in a patch the sample misses (up to a few thousand pixels) keeps those bytes
in its key: it misses against equal pixels made another way, and is computed again. That is
the whole cost: every pixel byte is in the key either way, so two images that differ never
share an id, and an image made the same way always gets the same one.

An image of several frames (an animated GIF, a multi-page TIFF: ``n_frames`` > 1) is keyed by
every frame, each as above, and which one is current: keyed by the current frame alone, stacks
sharing their first page were one argument.

Stored as mode, size, palette, info and the raw pixel bytes (an image comes back as a plain
``PIL.Image.Image``, not as the file-format subclass it was opened as; of an image of several
frames, its current frame).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageMode

from . import ByteSegments, ByteStream, TypeHandler, add, pickled_buffers
from .pil_memory import row_runs

__all__ = ["decode", "encode", "image_key", "key_pixels", "load", "pixel_bytes", "sample_step"]

#: Modes PIL stores exactly as ``tobytes()`` packs them (RGB, LA... are padded to four bytes;
#: "1" is a byte a pixel in memory, a bit in ``tobytes()``).
_UNPACKED_MODES = frozenset({"L", "P", "RGBA", "CMYK", "I", "F"})
#: Bytes packed per encoder call: below malloc's mmap threshold (128 KiB), so each call's bytes
#: reuse freed heap memory instead of faulting in fresh pages.
_CALL = 64 << 10
#: Bytes hashed at once: large enough for blake3's threads, small enough to stay in the cache.
_WINDOW = 4 << 20
#: Bytes of an RGB image's memory checked, then hashed, at once: PIL's block (16 MB), which
#: blake3 hashes on all cores at nearly its whole-buffer rate (4 MB windows: 20% slower).
_IN_PLACE_WINDOW = 16 << 20
#: One RGB pixel in this many has its padding read before its block is hashed in place: a
#: prime, so that the pixels read move from row to row whatever the width (a power-of-two width
#: would read the same columns of every row, and miss a narrow patch between them). About one
#: pixel a 4 KiB page: the reads are cache misses the hash then waits behind, and four a page
#: (one in 251) took a fifth of the hash's time, one a page 4%.
_SAMPLE = 1021
#: The step for an image whose width is a multiple of ``_SAMPLE``: there, every read would fall
#: in the same column.
_SAMPLE_ELSE = 1031
#: A padded RGB pixel as one number, and the padding byte (the last in memory) set.
_PIXEL = np.dtype("<u4")
_OPAQUE = _PIXEL.type(0xFF000000)


def image_key(image: Image.Image) -> tuple:
    frames = getattr(image, "n_frames", 1)  # a file's: an animated GIF, a multi-page TIFF
    if frames > 1:
        return ("frames", image.tell(), _frames(image, frames))
    image.load()  # a file's image: some of its info (a PNG's text after the pixels) comes with them
    return (image.mode, image.size, _palette(image), image.info, key_pixels(image))


def _frames(image: Image.Image, count: int) -> list[Image.Image]:
    """A copy of every frame, each keyed as an image of its own (its pixels are read when the
    key is hashed, after the file has moved on: so copies), the file left at its frame."""
    current = image.tell()
    try:
        copies = []
        for index in range(count):
            image.seek(index)
            copies.append(image.copy())
        return copies
    finally:
        image.seek(current)


def _palette(image: Image.Image) -> tuple | None:
    if image.mode not in ("P", "PA"):
        return None
    try:
        colours = image.getpalette(None)  # in the palette's own mode: RGBA keeps its alpha
    except TypeError:  # Pillow < 9.1 knows only rawmode="RGB"
        colours = image.getpalette()
    return (getattr(image.palette, "mode", None), colours)


def pixel_bytes(image: Image.Image) -> np.ndarray | ByteStream:
    """The bytes of ``image.tobytes()``: views of PIL's memory when it can, else packed pieces
    (hashed alike), as a stream; a flat uint8 array where even the pieces cannot be had."""
    size = _packed_size(image)
    if image.mode in _UNPACKED_MODES:
        runs = row_runs(image)  # each run of rows read in place
        if runs is not None:
            return ByteStream(size, _kept(image, runs))
    pieces = _packed_pieces(image, size)
    return ByteStream(size, pieces) if pieces is not None else np.frombuffer(image.tobytes(), np.uint8)


def key_pixels(image: Image.Image) -> np.ndarray | ByteStream | ByteSegments:
    """The pixels as keyed: ``pixel_bytes(image)``, but for RGB the bytes of
    ``image.convert("RGBA").tobytes()`` (PIL's padded pixels, the padding byte 255), as
    segments hashed on all cores (``ByteSegments``)."""
    if image.mode != "RGB":
        return pixel_bytes(image)
    width, height = image.size
    runs = row_runs(image)
    if runs is None:
        return ByteSegments(width * height * 4, _opaque_copies(image))
    step = _IN_PLACE_WINDOW // 4
    windows = [run.view(_PIXEL)[start : start + step] for run in runs for start in range(0, run.size // 4, step)]
    return ByteSegments(width * height * 4, _opaque_in_place(image, windows, sample_step(width)))


def sample_step(width: int) -> int:
    """One pixel in this many of an RGB image ``width`` pixels wide has its padding read: a
    step that moves the pixels read from column to column, row after row.

    >>> sample_step(2048), sample_step(2042)
    (1021, 1031)
    """
    return _SAMPLE_ELSE if width % _SAMPLE == 0 else _SAMPLE


def _opaque_in_place(image: Image.Image, windows: list[np.ndarray], step: int) -> Iterator[np.ndarray]:
    """Windows of RGB memory as bytes: in place where the sampled padding bytes are 255 (the
    smallest sampled pixel, as a number whose top byte is the padding, tells), else a copy with
    every padding byte set (a new one each: windows are hashed while later ones are read).
    ``image``, an argument, stays alive in this frame while its memory is read."""
    for window in windows:
        # Every padding byte read (a full pass, on one core, before blake3 hashes on all of
        # them) held the image at ~40% of numpy's hashing rate; the sample costs ~4%. What it
        # can miss costs a recompute, never a wrong hit (the module's docstring).
        if window[::step].min() < _OPAQUE:
            window = np.bitwise_or(window, _OPAQUE)
        yield window.view(np.uint8)


def _opaque_copies(image: Image.Image) -> Iterator[np.ndarray]:
    """PIL's padded RGB rows copied by its encoder a few at a time into a window, with every
    fourth byte set to 255, yielded each time the window is full (a new window each: windows
    are hashed while later ones are made)."""
    window = np.empty(_WINDOW // 4, _PIXEL)
    fill = 0
    for rows in _padded_copies(image):
        if fill + len(rows) > len(window):
            yield window[:fill].view(np.uint8)
            window, fill = np.empty(_WINDOW // 4, _PIXEL), 0
        np.bitwise_or(rows, _OPAQUE, out=window[fill : fill + len(rows)])
        fill += len(rows)
    if fill:
        yield window[:fill].view(np.uint8)


def _padded_copies(image: Image.Image) -> Iterator[np.ndarray]:
    """PIL's four bytes a pixel as little-endian uint32 pieces of at most a window."""
    if image.width * image.height == 0:
        return iter(())
    call = max(_CALL, image.width * 4)  # a call copies at least a row
    try:
        if call > _WINDOW:
            raise ValueError("rows wider than the window")
        encoder = Image._getencoder(image.mode, "raw", "RGBX")  # the rows copied, not packed
        encoder.setimage(image.im, (0, 0, *image.size))
    except Exception:  # a Pillow of another shape, rows of a million pixels: copied in one piece
        whole = np.frombuffer(image.convert("RGBA").tobytes(), _PIXEL)
        return (whole[start : start + _WINDOW // 4] for start in range(0, len(whole), _WINDOW // 4))
    return (np.frombuffer(piece, _PIXEL) for piece in _encoded(encoder, call))


def _kept(image: Image.Image, views: list[np.ndarray]) -> Iterator[np.ndarray]:
    """``views`` of ``image``'s memory, yielded while the image (an argument: in this frame
    until the last is read) is kept alive."""
    yield from views


def _encoded(encoder, call: int) -> Iterator[bytes]:
    try:
        while True:
            _, status, data = encoder.encode(call)
            yield data
            if status:
                break
    finally:
        encoder.cleanup()
    if status < 0:
        raise RuntimeError(f"PIL's raw encoder failed with error {status}")


def _packed_size(image: Image.Image) -> int:
    width, height = image.size
    if image.mode == "1":
        return (width + 7) // 8 * height
    mode = ImageMode.getmode(image.mode)
    return width * height * len(mode.bands) * np.dtype(mode.typestr).itemsize


def _packed_pieces(image: Image.Image, size: int) -> Iterator[memoryview] | None:
    """``tobytes()`` in pieces, by the encoder it is made of; None where that encoder is not
    there as expected (a Pillow of another shape: ``tobytes()`` is then used whole)."""
    if size == 0:
        return iter(())
    try:
        encoder = Image._getencoder(image.mode, "raw", image.mode)
        encoder.setimage(image.im, (0, 0, *image.size))
    except Exception:
        return None
    call = max(_CALL, image.width * 4)  # a call packs at least a row
    return _pieces(encoder, call, min(max(_WINDOW, call), size))


def _pieces(encoder, call: int, window_size: int) -> Iterator[memoryview]:
    """The encoder's output gathered into one reused window, yielded each time it is full
    (valid until the next piece is asked for: the hasher reads it at once)."""
    window = memoryview(bytearray(window_size))
    fill = 0
    for data in _encoded(encoder, call):
        if fill + len(data) > len(window):
            yield window[:fill]
            fill = 0
        window[fill : fill + len(data)] = data
        fill += len(data)
    yield window[:fill]


def encode(image: Image.Image) -> bytes:
    """Mode, size, palette (in its own mode), info and the packed pixels, laid out raw after
    the pickled rest: PIL's own pickle keeps an RGBA palette as RGB, losing its alpha."""
    image.load()
    palette = _palette(image)
    return pickled_buffers.dumps((image.mode, image.size, palette, image.info, _packed(image)))


def _packed(image: Image.Image) -> np.ndarray:
    pixels = pixel_bytes(image)
    if isinstance(pixels, np.ndarray):
        return pixels
    packed, start = np.empty(pixels.size, np.uint8), 0
    for piece in pixels.pieces:
        packed[start : start + len(piece)] = piece
        start += len(piece)
    return packed


def _image(state: tuple) -> Image.Image:
    mode, size, palette, info, packed = state
    # frombuffer views the bytes (a mapped file's pages, read when touched) for the modes PIL
    # stores packed, and copies the image the first time it is written to.
    image = Image.frombuffer(mode, size, packed, "raw", mode, 0, 1)
    if palette is not None:
        image.putpalette(palette[1], palette[0] or "RGB")
    image.info = info
    return image


def decode(data: bytes) -> Image.Image:
    return _image(pickled_buffers.loads(data))


def load(path) -> Image.Image:
    return _image(pickled_buffers.load_file(path))


def _loaded_size(image: Image.Image) -> int:
    """The pixels' packed size, the image loaded first (a file's, lazily opened): by the
    thread that sizes it, before two threads key images side by side."""
    image.load()
    return _packed_size(image)


# One name for every image class: a PNG's PngImageFile equals the same pixels made in memory.
add(TypeHandler(Image.Image, image_key, encode, decode, "pil:image", load, name="PIL.Image", nbytes=_loaded_size))
