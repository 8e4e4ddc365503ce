"""Ten-crop testing (Krizhevsky et al. 2012, Sec. 4.1): "the network makes a prediction
by extracting five 224x224 patches (the four corner patches and the center patch) as
well as their horizontal reflections (hence ten patches in all), and averaging the
predictions made by the network's softmax layer on the ten patches".

For images no larger than the model's input (28/32-pixel sets trained with
pad-and-crop) the image is first zero-padded by ``size // 8`` on each side, the
padding used for training crops, so the corner patches are the shifted images a
model saw in training and the centre patch is the image itself.
"""

from collections.abc import Callable

import torch
from torch.nn import functional as F


def crop_padding(image_side: int, size: int) -> int:
    """Zero padding that random and ten crops use: size // 8 when the image is no
    larger than the crop (4 pixels for 32), none when it is larger (256 -> 224)."""
    return size // 8 if image_side <= size else 0


def ten_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """(10, N, C, size, size): top-left, top-right, bottom-left, bottom-right, centre,
    then the same five of the horizontally reflected images (torchvision's order)."""
    pad = crop_padding(images.shape[-1], size)
    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
    # Imported here: torchvision's transforms are slow to import, which plain
    # training and testing never need.
    from torchvision.transforms.v2 import functional as TF

    return torch.stack(TF.ten_crop(padded, [size, size]))


def ten_crop_probs(
    predict: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, size: int
) -> torch.Tensor:
    """The softmax of ``predict`` (images -> logits) averaged over the ten crops: (N, K)."""
    crops = ten_crop(images, size)
    logits = predict(crops.flatten(0, 1))  # (10 N, K), one forward pass
    return logits.float().softmax(dim=1).view(10, len(images), -1).mean(dim=0)
