"""PIL's pixel memory read in place (runtime/types/pil_memory.py)."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

from mandala_ast.runtime.types.pil_memory import row_runs  # noqa: E402

#: What PIL's raw encoder copies of each mode as it is held in memory.
AS_STORED = {"L": "L", "P": "P", "RGB": "RGBX", "RGBA": "RGBA", "CMYK": "CMYK", "I": "I", "F": "F"}


@pytest.mark.parametrize("mode", sorted(AS_STORED))
def test_the_runs_of_rows_read_in_place_are_the_bytes_pil_holds_in_one_block_or_several(mode):
    for height, width in ((6, 5), (2500, 2400)):  # the second: more than PIL's 16 MB block in 4-byte modes
        pixels = (np.arange(height * width * 3, dtype=np.uint32) * 7).astype(np.uint8).reshape(height, width, 3)
        image = Image.fromarray(pixels).convert(mode)
        runs = row_runs(image)
        assert runs is not None
        assert b"".join(run.tobytes() for run in runs) == image.tobytes("raw", AS_STORED[mode])


def test_modes_whose_memory_is_not_their_bytes_and_empty_images_are_not_read_in_place():
    assert row_runs(Image.new("1", (5, 4))) is None  # a byte a pixel in memory, a bit in tobytes()
    assert row_runs(Image.new("LA", (5, 4))) is None  # two bands in four bytes
    assert row_runs(Image.new("RGB", (0, 4))) is None
