"""Batched pixel operations on uint8 (N, C, H, W) tensors; no per-image Python."""

import torch
from torch.nn import functional as F


def pad_to_size(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Zero-pad images evenly to (height, width), as LeNet-5 pads MNIST's 28x28 to 32x32.

    Zero is the background of MNIST-style digits, so padding adds background.
    """
    pad_h, pad_w = height - images.shape[-2], width - images.shape[-1]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(
            f"images of size {tuple(images.shape[-2:])} are larger than "
            f"the model's input {(height, width)}"
        )
    if pad_h == pad_w == 0:
        return images
    return F.pad(images, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


def normalization(
    mean: tuple[float, ...], std: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift), each (1, C, 1, 1), with pixel * scale + shift = (pixel / 255 -
    mean) / std per channel: normalisation as one fused multiply-add."""
    channels = len(mean)
    scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, channels, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)]).view(1, channels, 1, 1)
    return scale, shift


def normalize(
    images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """uint8 images to float: (pixel / 255 - mean) / std per channel, in one fused pass."""
    scale, shift = normalization(mean, std)
    return torch.addcmul(shift.to(images.device), images.float(), scale.to(images.device))


def centre_crop(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central (height, width) patch of each image (256 -> 224 at test time)."""
    top, left = (images.shape[-2] - height) // 2, (images.shape[-1] - width) // 2
    if top < 0 or left < 0:
        raise ValueError(f"images of size {tuple(images.shape[-2:])} are smaller than {height}")
    return images[..., top : top + height, left : left + width]


def fit_to_input(
    images: torch.Tensor, input_size: tuple[int, ...], crop: bool = True
) -> torch.Tensor:
    """uint8 images at the size a data set stores them, brought to a model's input
    (its (C, H, W) or (H, W)): padded with zeros where smaller (MNIST's 28x28 to
    LeNet-5's 32x32), centre-cropped where larger (256 -> 224), or with ``crop=False``
    kept larger, for random crops in training and ten crops in testing. Images already
    at the input size are returned as they are."""
    height, width = input_size[-2:]
    images = pad_to_size(images, max(height, images.shape[-2]), max(width, images.shape[-1]))
    return centre_crop(images, height, width) if crop else images
