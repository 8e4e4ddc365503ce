"""Images a user holds, read as files are read: a path, a Pillow image, a numpy array or
a torch tensor becomes the uint8 (H, W, C) pixels that ``image_files.read_pixels`` gives
for a file, through the same Pillow conversion of channels, so that a photo predicts the
same whether it is passed as a path, opened with Pillow or loaded into an array.

Arrays are channels last, as Pillow and matplotlib hold images: (H, W), (H, W, C) with C
of 1, 3 or 4 (RGBA; alpha dropped), or a batch (N, H, W, C). Tensors are channels first,
as PyTorch holds them: (H, W), (C, H, W) or (N, C, H, W). Values are uint8 (0-255) or
floats in [0, 1]. Anything else is one ``ImageError`` naming the image and what was
expected. With ``least_side``, a large image is reduced as ``read_pixels`` reduces a file
(by the largest whole factor that keeps both sides at least that), so that what comes
after costs what an image of about that size costs; the image given is left as it is.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np
import torch
from PIL import Image

from cnnkit.data.image_files import MAX_PIXELS, image_pixels, read_pixels, too_many_pixels
from cnnkit.errors import ImageError

HeldImage: TypeAlias = str | Path | Image.Image | np.ndarray | torch.Tensor
MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # Pillow's mode for an array's channel count
EXPECTED = (
    "expected a path, a PIL image, an array (HxW, HxWxC or NxHxWxC) or a tensor (CxHxW or "
    "NxCxHxW) of uint8, or of floats in [0, 1]"
)


@dataclass(frozen=True)
class HeldPixels:
    """What ``held_pixels`` read: ``pixels[i]`` is uint8 (H, W, channels), called
    ``names[i]`` in messages and results."""

    pixels: list[np.ndarray]
    names: list[str]
    single: bool  # one image was given, not a list or a batch


def held_pixels(
    images: HeldImage | Sequence[HeldImage], channels: int, least_side: int | None = None
) -> HeldPixels:
    """The pixels of one image, a batch (a 4-d array or tensor) or a list of images,
    each with ``channels`` channels (1: luminance, 3: RGB), each reduced toward
    ``least_side`` when it is at least twice that on both sides."""
    if isinstance(images, list | tuple):
        if not images:
            raise ImageError(f"an empty list of images; {EXPECTED}")
        pixels, names = [], []
        for position, image in enumerate(images):
            found = _pixels_of(image, channels, _name(image, f"image {position}"), least_side)
            if len(found) != 1:
                raise ImageError(f"image {position}: a batch inside a list; {EXPECTED}")
            pixels += found
            names.append(_name(image, f"image {position}"))
        return HeldPixels(pixels, names, single=False)
    found = _pixels_of(images, channels, _name(images, "image"), least_side)
    batch = isinstance(images, np.ndarray | torch.Tensor) and images.ndim == 4
    if not found:  # a batch of none
        raise ImageError(f"image: a batch of no images; {EXPECTED}")
    names = [f"image {i}" for i in range(len(found))] if batch else [_name(images, "image")]
    return HeldPixels(found, names, single=not batch)


def _name(image: object, place: str) -> str:
    return str(image) if isinstance(image, str | Path) else place


def _pixels_of(image: object, channels: int, name: str, least_side: int | None) -> list[np.ndarray]:
    if isinstance(image, str | Path):
        return [read_pixels(Path(image), channels, least_side=least_side)]
    if isinstance(image, Image.Image):
        return [_pillow_pixels(image, channels, name, least_side)]
    if isinstance(image, torch.Tensor):
        return _array_pixels(_channels_last(image, name), channels, name, least_side)
    if isinstance(image, np.ndarray):
        return _array_pixels(image, channels, name, least_side)
    raise ImageError(f"{name}: of type {type(image).__name__}; {EXPECTED}")


def _pillow_pixels(
    image: Image.Image, channels: int, name: str, least_side: int | None
) -> np.ndarray:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise too_many_pixels(name, width * height)
    if width * height == 0:
        raise ImageError(f"{name}: an image of no pixels ({width} x {height})")
    try:
        return image_pixels(image, channels, least_side)
    except Exception as error:  # Pillow raises many types for a mode it cannot convert
        raise ImageError(f"{name}: a PIL image Pillow cannot convert ({error})") from None


def _channels_last(tensor: torch.Tensor, name: str) -> np.ndarray:
    """A channels-first tensor as a channels-last array."""
    channel_dim = {2: None, 3: 0, 4: 1}.get(tensor.ndim, -1)
    if channel_dim == -1 or (channel_dim is not None and tensor.shape[channel_dim] not in MODES):
        raise ImageError(f"{name}: a tensor of shape {tuple(tensor.shape)}; {EXPECTED}")
    if tensor.is_floating_point():
        tensor = tensor.float()  # numpy has no bfloat16
    array = tensor.detach().cpu().numpy()
    if array.ndim == 3:
        return array.transpose(1, 2, 0)
    if array.ndim == 4:
        return array.transpose(0, 2, 3, 1)
    return array


def _array_pixels(
    array: np.ndarray, channels: int, name: str, least_side: int | None
) -> list[np.ndarray]:
    shape = array.shape
    if array.ndim == 4:
        return [
            _array_pixels(one, channels, f"{name} {i}", least_side)[0]
            for i, one in enumerate(array)
        ]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in MODES:
        raise ImageError(f"{name}: an array of shape {shape}; {EXPECTED}")
    height, width = array.shape[:2]
    if height * width > MAX_PIXELS:
        raise too_many_pixels(name, height * width)
    if height * width == 0:
        raise ImageError(f"{name}: an image of no pixels (shape {shape})")
    eight_bit = _eight_bit(array, name)
    picture = Image.fromarray(eight_bit if eight_bit.shape[2] > 1 else eight_bit[:, :, 0])
    return [image_pixels(picture, channels, least_side)]


def _eight_bit(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise ImageError(f"{name}: values of type {array.dtype}; {EXPECTED}")
    if not np.isfinite(array).all():
        raise ImageError(f"{name}: values that are not finite (NaN or infinite); {EXPECTED}")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        raise ImageError(f"{name}: float values from {low:g} to {high:g}; {EXPECTED}")
    return np.rint(array.astype(np.float32) * 255).astype(np.uint8)
