"""One image brought to a stored size: how every photo is prepared, in training (the
folder loader) and at test time (``predict`` and the run layer's ``read_images``)."""

import torch

SMALL_SIDE = 64  # sizes up to this (CIFAR's 32) are reached by a plain resize
# Photos may be decoded reduced (``data.image_files.read_pixels``' least_side) while
# their shorter side stays at least this, and at least twice the stored size: photos up
# to 2,048 pixels on their shorter side decode whole, as the folder loader reads them in
# training, and larger ones keep four times the resolution of a 256-pixel stored size.
DECODE_SIDE = 1024


def fit_size(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (C, H, W) ``image`` at ``size``: itself when it has it; resized to it when
    ``size`` is small (CIFAR-like sets hold whole images); else its shorter side rescaled
    to the shorter side of ``size`` and the centre cropped (Krizhevsky et al. 2012, Sec. 2:
    256x256 patches of ImageNet's photos), so that nothing is stretched."""
    size = (int(size[0]), int(size[1]))
    if tuple(image.shape[-2:]) == size:
        return image
    from torchvision.transforms.v2 import functional as TF  # slow to import: only here

    if max(size) <= SMALL_SIDE:
        return TF.resize(image, list(size), antialias=True)
    image = TF.resize(image, min(size), antialias=True)  # shorter side to min(size)
    return TF.center_crop(image, list(size))


def decode_side(size: tuple[int, int]) -> int:
    """The least shorter side a photo needs before ``fit_size`` brings it to ``size``
    (height, width): a larger one may be decoded reduced to about that."""
    return max(DECODE_SIDE, 2 * max(int(size[0]), int(size[1])))
