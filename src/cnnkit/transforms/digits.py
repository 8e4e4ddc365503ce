"""A photo or scan of one handwritten digit prepared the way MNIST's digits were
(LeCun et al., the MNIST page): grayscale, white ink on black, the ink's bounding box
scaled into a 20x20 box keeping its aspect ratio, then placed in a 28x28 image so that
its centre of mass is at the centre."""

import numpy as np
from PIL import Image

INK_THRESHOLD = 0.2  # fraction of the image's contrast range that counts as ink


def mnist_style(gray: np.ndarray) -> np.ndarray:
    """A grayscale uint8 (H, W) photo or scan of one digit as a 28x28 MNIST-style image."""
    ink = gray.astype(np.float32)
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    background = float(np.median(border))
    if background > 127:  # dark ink on light paper: invert to MNIST's white on black
        ink, background = 255.0 - ink, 255.0 - background
    ink = np.clip(ink - background, 0, None)
    if ink.max() <= 0:
        return np.zeros((28, 28), np.uint8)
    rows = np.flatnonzero((ink > INK_THRESHOLD * ink.max()).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD * ink.max()).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop = crop * (255.0 / crop.max())
    scale = 20.0 / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    digit = np.asarray(
        Image.fromarray(crop.astype(np.uint8)).resize(size, Image.Resampling.LANCZOS),
        dtype=np.float32,
    )
    return centre_by_mass(digit)


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place ``digit`` in a 28x28 canvas with its centre of mass at pixel (14, 14),
    where MNIST's own digits have it (their mean centre of mass, in pixel indices)."""
    height, width = digit.shape
    total = digit.sum()
    mass_row = (digit.sum(axis=1) * np.arange(height)).sum() / total
    mass_col = (digit.sum(axis=0) * np.arange(width)).sum() / total
    top, left = int(round(14 - mass_row)), int(round(14 - mass_col))
    top, left = min(max(top, 0), 28 - height), min(max(left, 0), 28 - width)
    canvas = np.zeros((28, 28), np.float32)
    canvas[top : top + height, left : left + width] = digit
    return np.clip(canvas, 0, 255).astype(np.uint8)
