"""PCA colour augmentation against numpy on the same real pixels."""

import numpy as np
import pytest
import torch

from cnnkit.data import load_dataset
from cnnkit.transforms.pca import add_colour_shift, colour_pca, colour_shift, pca_colour_augment


@pytest.fixture(scope="module")
def photos(real_image_tree) -> torch.Tensor:
    train, _ = load_dataset(f"folder:{real_image_tree}")
    return train.images


def test_eigen_decomposition_matches_numpy(photos: torch.Tensor) -> None:
    pixels = photos.permute(0, 2, 3, 1).reshape(-1, photos.shape[1]).numpy() / 255.0
    values, vectors = np.linalg.eigh(np.cov(pixels, rowvar=False, bias=True))
    pca = colour_pca(photos)
    assert np.allclose(pca.eigenvalues.numpy(), values, rtol=1e-9, atol=1e-12)
    # Eigenvectors are defined up to sign: compare |cosine| column by column.
    cosines = np.abs((pca.eigenvectors.numpy() * vectors).sum(axis=0))
    assert np.allclose(cosines, 1.0, atol=1e-9)


def test_shift_is_sum_of_scaled_components(photos: torch.Tensor) -> None:
    pca = colour_pca(photos)
    alphas = torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64)
    expected = sum(alphas[0, i] * pca.eigenvalues[i] * pca.eigenvectors[:, i] for i in range(3))
    assert torch.allclose(colour_shift(pca, alphas)[0], expected)


def test_augmented_batch_keeps_shape_dtype_and_alpha_zero_is_identity(photos) -> None:
    pca = colour_pca(photos)
    batch = photos[:64]
    out = pca_colour_augment(batch, pca, torch.Generator().manual_seed(1))
    assert out.shape == batch.shape and out.dtype == torch.uint8
    assert not torch.equal(out, batch)
    # The shift is one colour per image: away from clipping, every pixel moves alike.
    delta = out.int() - batch.int()
    inside = (batch > 20) & (batch < 235)
    for n in range(4):
        for c in range(3):
            moved = delta[n, c][inside[n, c]]
            assert moved.max() - moved.min() <= 1  # rounding only
    unchanged = add_colour_shift(batch, colour_shift(pca, torch.zeros(64, 3)))
    assert torch.equal(unchanged, batch)
