"""scikit-learn's bundled 8x8 handwritten digits (UCI "Optical Recognition of
Handwritten Digits", Alpaydin and Kaynak 1998): 1,797 images, 16 grey levels.

There is no official split; the test split is every fifth image (indices 4, 9, ...),
so both splits keep the writers' mix. Grey levels 0..16 are scaled to 0..255.
"""

import numpy as np
import torch

from cnnkit.data.images import ImageSet, channel_stats
from cnnkit.errors import import_extra

SOURCE = "Alpaydin and Kaynak, UCI Optical Recognition of Handwritten Digits (1998), via sklearn"
LICENSE = "CC BY 4.0 (UCI Machine Learning Repository)"
TEST_EVERY = 5


def load_digits() -> tuple[ImageSet, ImageSet]:
    sklearn_digits = import_extra("sklearn.datasets", "digits", "data set 'digits'").load_digits
    bunch = sklearn_digits()
    images = torch.from_numpy(np.rint(bunch.images * (255 / 16)).astype(np.uint8)[:, None])
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    is_test = torch.arange(len(labels)) % TEST_EVERY == TEST_EVERY - 1
    classes = [str(digit) for digit in range(10)]
    mean, std = channel_stats(images[~is_test])
    return (
        ImageSet(images[~is_test], labels[~is_test], classes, mean, std),
        ImageSet(images[is_test], labels[is_test], classes, mean, std),
    )
