"""Pixel operations on whole batches: padding, normalisation, augmentation, ten-crop."""

from cnnkit.transforms.batch import centre_crop, normalize, pad_to_size

__all__ = ["centre_crop", "normalize", "pad_to_size"]
