"""A photo or scan of one handwritten digit prepared the way MNIST's digits were
(LeCun et al., the MNIST page): grayscale, white ink on black, the ink's bounding box
scaled into a 20x20 box keeping its aspect ratio, then placed in a 28x28 image so that
its centre of mass is at the centre.

This runs once per upload in ``cnnkit serve``'s model process, where it was half of
the work per digit, so it does each step once (``np.median`` alone was an eighth of a
call; the median of integer pixel values is taken from a sort instead). An image
larger than ``MAX_SIDE`` is shrunk first, so that a photo or a hostile file claiming
9,000 x 9,000 pixels costs what a 512-pixel one costs (the float copies of the steps
below are 4 bytes a pixel: a gigabyte at full size).
"""

import numpy as np
from PIL import Image

INK_THRESHOLD = 0.2  # fraction of the image's contrast range that counts as ink
# The longest side the digit steps work at. The ink's box ends as 20x20 pixels, so 512
# keeps at least 25 image pixels per final pixel for ink that spans the whole image and
# 2.5 for ink that spans a tenth of it. Images up to 512 pixels (MNIST's 28, a scan or a
# crop of one digit, a drawing on a page's canvas) are not touched: their results are
# exactly those of the steps alone.
MAX_SIDE = 512


def mnist_style(gray: np.ndarray) -> np.ndarray:
    """A grayscale uint8 (H, W) photo or scan of one digit as a 28x28 MNIST-style image."""
    gray = shrunk(gray, MAX_SIDE)
    background = border_median(gray)
    ink = gray.astype(np.float32)
    if background > 127:  # dark ink on light paper: invert to MNIST's white on black
        ink, background = 255.0 - ink, 255.0 - background
    ink = np.clip(ink - background, 0, None)
    peak = ink.max()
    if peak <= 0:
        return np.zeros((28, 28), np.uint8)
    is_ink = ink > INK_THRESHOLD * peak
    rows, cols = np.flatnonzero(is_ink.any(axis=1)), np.flatnonzero(is_ink.any(axis=0))
    # The box holds the peak (it is ink), so the crop's maximum is ``peak``.
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] * (255.0 / peak)
    scale = 20.0 / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    digit = np.asarray(
        Image.fromarray(crop.astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
    )
    return centre_by_mass(digit)


def shrunk(gray: np.ndarray, max_side: int) -> np.ndarray:
    """uint8 (H, W) ``gray`` with its longest side at most ``max_side``, its aspect ratio
    kept (Lanczos, as the digit's own resize; a whole-factor box reduction first where
    the factor is large, which Pillow's ``reducing_gap`` makes cheap)."""
    height, width = gray.shape
    scale = max_side / max(height, width)
    if scale >= 1:
        return gray
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.fromarray(np.ascontiguousarray(gray))
    return np.asarray(picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))


def border_median(gray: np.ndarray) -> float:
    """The median of the outermost rows' and columns' uint8 pixels: the paper's colour."""
    border = np.sort(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]))
    middle = len(border) // 2  # the border has an even count, 2 (H + W)
    return (int(border[middle - 1]) + int(border[middle])) / 2


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place the uint8 ``digit`` in a 28x28 canvas with its centre of mass at pixel
    (14, 14), where MNIST's own digits have it (their mean centre of mass, in pixel
    indices). The masses are sums of whole numbers, so they are exact."""
    height, width = digit.shape
    row_mass, col_mass = digit.sum(axis=1, dtype=np.int64), digit.sum(axis=0, dtype=np.int64)
    total = int(row_mass.sum())
    canvas = np.zeros((28, 28), np.uint8)
    if total == 0:
        return canvas
    mass_row = int(row_mass @ np.arange(height)) / total
    mass_col = int(col_mass @ np.arange(width)) / total
    top, left = int(round(14 - mass_row)), int(round(14 - mass_col))
    top, left = min(max(top, 0), 28 - height), min(max(left, 0), 28 - width)
    canvas[top : top + height, left : left + width] = digit
    return canvas
