"""Classify image files with a trained checkpoint.

Digit models see images prepared the way MNIST's were (LeCun et al., MNIST
page): grayscale, white ink on black, the ink's bounding box scaled into a
20x20 box keeping its aspect ratio, then placed in a 28x28 image so that its
centre of mass is at the centre.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from cnnkit.errors import ImageError
from cnnkit.train.checkpoint import load_model
from cnnkit.train.loop import predict_logits
from cnnkit.train.run import fit_to_model

MNIST_STYLE_DATASETS = ("mnist",)  # prepared as MNIST prepared its digits
_INK_THRESHOLD = 0.2  # fraction of the image's contrast range that counts as ink


@dataclass(frozen=True)
class Prediction:
    path: Path
    top: list[tuple[str, float]]  # (class name, probability), most probable first


def read_image(path: Path, channels: int) -> np.ndarray:
    """Decode a PNG or JPEG file to uint8 (H, W) for one channel or (H, W, 3) for three."""
    try:
        with Image.open(path) as image:
            image.load()
            converted = image.convert("L" if channels == 1 else "RGB")
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ImageError(f"{path}: not a readable image ({error})") from None
    return np.asarray(converted, dtype=np.uint8)


def mnist_style(gray: np.ndarray) -> np.ndarray:
    """A grayscale photo or scan of one digit as a 28x28 MNIST-style uint8 image."""
    ink = gray.astype(np.float32)
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    background = float(np.median(border))
    if background > 127:  # dark ink on light paper: invert to MNIST's white on black
        ink, background = 255.0 - ink, 255.0 - background
    ink = np.clip(ink - background, 0, None)
    if ink.max() <= 0:
        return np.zeros((28, 28), np.uint8)
    rows = np.flatnonzero((ink > _INK_THRESHOLD * ink.max()).any(axis=1))
    cols = np.flatnonzero((ink > _INK_THRESHOLD * ink.max()).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop = crop * (255.0 / crop.max())
    scale = 20.0 / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    digit = np.asarray(
        Image.fromarray(crop.astype(np.uint8)).resize(size, Image.LANCZOS), dtype=np.float32
    )
    return _centre_by_mass(digit)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
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


def prepare(path: Path, dataset: str, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image file as uint8 (C, H, W) the way the model's training data looked."""
    pixels = read_image(path, channels)
    if dataset in MNIST_STYLE_DATASETS:
        return mnist_style(pixels)[None]
    resized = Image.fromarray(pixels).resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(resized, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def predict_files(checkpoint: Path, paths: list[Path], top: int = 5) -> list[Prediction]:
    model, state = load_model(checkpoint)
    data_size = tuple(state.get("data_image_size", model.input_size[1:]))  # as trained on
    images = torch.from_numpy(
        np.stack(
            [prepare(path, state["dataset"], state["in_channels"], data_size) for path in paths]
        )
    )
    logits = predict_logits(
        model, fit_to_model(images, model), mean=tuple(state["mean"]), std=tuple(state["std"])
    )
    probs = logits.softmax(dim=1)
    best = probs.topk(min(top, probs.shape[1]), dim=1)
    return [
        Prediction(
            path, [(state["classes"][i], float(p)) for p, i in zip(values, indices, strict=True)]
        )
        for path, values, indices in zip(paths, best.values, best.indices, strict=True)
    ]
