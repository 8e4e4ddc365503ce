"""scikit-learn's 8x8 digits (optional extra), split and scaled as documented."""

import numpy as np
import torch

from cnnkit.data import load_dataset
from tests.helpers import require_module

sklearn_datasets = require_module("sklearn.datasets", "digits")


def test_digits_split_and_scale() -> None:
    train, test = load_dataset("digits")
    bunch = sklearn_datasets.load_digits()
    assert (len(train), len(test)) == (1438, 359)  # 1,797 images, every fifth for testing
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    expected = np.rint(bunch.images[4::5] * 255 / 16)  # grey levels 0..16 -> 0..255
    assert np.array_equal(test.images[:, 0].numpy(), expected)
    assert test.labels.tolist() == bunch.target[4::5].tolist()
