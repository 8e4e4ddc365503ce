"""Pixel operations on whole batches: padding, normalisation."""

from cnnkit.transforms.batch import normalize, pad_to_size

__all__ = ["normalize", "pad_to_size"]
