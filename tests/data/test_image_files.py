"""``read_pixels``' reduction of large images (``least_side``): whole factors only, the
result the mean of each block (numpy's, computed here), and nothing reduced below twice
the side asked for."""

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.image_files import read_pixels

LEAST_SIDE = 512


def photo(height: int, width: int) -> np.ndarray:
    """A smooth gradient with noise on it: every block mean differs from its pixels."""
    rng = np.random.default_rng(height * width)
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.stack([rows * 200 / height, cols * 200 / width, (rows + cols) % 256], -1)
    return np.clip(base + rng.integers(0, 40, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("height", "width", "factor"), [(1300, 2100, 2), (1600, 1600, 3)])
def test_a_large_png_is_reduced_to_its_block_means(tmp_path, height, width, factor):
    pixels = photo(height, width)
    Image.fromarray(pixels).save(tmp_path / "large.png")
    reduced = read_pixels(tmp_path / "large.png", 3, least_side=LEAST_SIDE)
    whole_blocks = pixels[: height // factor * factor, : width // factor * factor]
    blocks = whole_blocks.reshape(height // factor, factor, width // factor, factor, 3)
    means = blocks.astype(np.float64).mean(axis=(1, 3))
    assert reduced.shape[:2] == (-(-height // factor), -(-width // factor))  # edges kept
    inner = reduced[: height // factor, : width // factor].astype(np.float64)
    assert np.abs(inner - means).max() < 1  # the mean, rounded in fixed point


@pytest.mark.parametrize("size", [(28, 28), (300, 200), (1023, 1023), (1023, 4000)])
@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_images_under_twice_the_side_asked_for_are_read_whole(tmp_path, size, suffix):
    path = tmp_path / f"photo.{suffix}"
    Image.fromarray(photo(*size)).save(path)
    for channels in (1, 3):
        whole = read_pixels(path, channels)
        assert whole.shape[:2] == size
        assert np.array_equal(read_pixels(path, channels, least_side=LEAST_SIDE), whole)
