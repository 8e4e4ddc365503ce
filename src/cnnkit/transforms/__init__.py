"""Pixel operations: batched padding, cropping, normalisation and augmentation,
ten-crop, one photo's resize-and-crop, and MNIST's preparation of a digit."""

from cnnkit.transforms.batch import centre_crop, fit_to_input, normalize, pad_to_size

__all__ = ["centre_crop", "fit_to_input", "normalize", "pad_to_size"]
