"""The server's PNG writer, read back by an independent decoder (Pillow): grayscale and
RGB pictures of the sizes an explanation holds, a row of units and one pixel included."""

import io

import numpy as np
import pytest
from PIL import Image

from cnnkit.serve.png import pixels_png


@pytest.mark.parametrize("shape", [(28, 168), (1, 84), (1, 1), (32, 32, 3), (7, 5, 3)])
def test_pillow_reads_back_the_very_pixels(shape):
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    picture = Image.open(io.BytesIO(pixels_png(pixels)))
    picture.load()  # checks every chunk's CRC and the zlib stream
    assert picture.mode == ("L" if len(shape) == 2 else "RGB")
    np.testing.assert_array_equal(np.asarray(picture), pixels)
