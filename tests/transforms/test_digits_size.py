"""The digit steps (``mnist_style``) on an image of any size work at ``MAX_SIDE`` at
most: their float copies (4 bytes a pixel, several of them) were a gigabyte for a
9,000 x 9,000 image. Memory is counted by ``tracemalloc``, which sees numpy's
allocations: a count of bytes, not a timing."""

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from cnnkit.transforms import digits

SIDE = 9_000


def huge_digit(height: int, width: int) -> np.ndarray:
    """Dark ink (a thick ring) on light paper."""
    rows, cols = np.ogrid[0:height, 0:width]
    radius = np.hypot((rows - height / 2) / height, (cols - width / 2) / width)
    gray = np.full((height, width), 230, np.uint8)
    gray[(radius > 0.2) & (radius < 0.3)] = 20
    return gray


@pytest.mark.parametrize("shape", [(SIDE, SIDE), (SIDE, 700)])
def test_a_huge_digit_is_prepared_in_bounded_memory(shape):
    gray = huge_digit(*shape)
    tracemalloc.start()
    try:
        prepared = digits.mnist_style(gray)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert prepared.shape == (28, 28) and prepared.max() > 0
    # The largest float copy at MAX_SIDE x MAX_SIDE is 1 MiB; a few of them and the
    # shrunk uint8 image fit in 16 MiB (the 81 MB input itself is not counted).
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("side", [600, 1100, 2400])
def test_a_large_digit_photo_is_prepared_nearly_as_at_full_size(mnist, monkeypatch, side):
    """Real MNIST digits drawn large (dark on light): the steps at MAX_SIDE against the
    same steps at full size, with no limit (the code before the limit). Both end as a
    20x20 box, so they differ by a few grey levels at the strokes' edges."""
    _, test = mnist
    for index in range(4):
        ink = Image.fromarray(255 - test.images[index, 0].numpy())
        gray = np.asarray(ink.resize((side, side), Image.Resampling.BICUBIC))
        bounded = digits.mnist_style(gray).astype(int)
        with monkeypatch.context() as unbounded:
            unbounded.setattr(digits, "MAX_SIDE", 10**9)
            whole = digits.mnist_style(gray).astype(int)
        difference = np.abs(bounded - whole)
        assert difference.mean() < 1 and difference.max() <= 16, (index, difference.max())
