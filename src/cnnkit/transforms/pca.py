"""PCA colour augmentation (Krizhevsky, Sutskever and Hinton 2012, Sec. 4.1).

"We perform PCA on the set of RGB pixel values throughout the ImageNet training set.
To each training image, we add multiples of the found principal components, with
magnitudes proportional to the corresponding eigenvalues times a random variable
drawn from a Gaussian with mean zero and standard deviation 0.1": to every pixel
of one image add [p1, p2, p3] [a1 l1, a2 l2, a3 l3]^T, one draw a_i per image.

The paper does not state the pixel scale; like fb.resnet.torch's implementation we
take pixels on [0, 1] (eigenvalues of ImageNet there: 0.2175, 0.0188, 0.0045), so a
typical shift is a few grey levels of 255.
"""

from dataclasses import dataclass

import torch

ALPHA_STD = 0.1  # Krizhevsky et al. 2012, Sec. 4.1


@dataclass(frozen=True)
class ColourPCA:
    eigenvalues: torch.Tensor  # (C,) float64, ascending, of the pixel covariance on [0, 1]
    eigenvectors: torch.Tensor  # (C, C) float64, column i belongs to eigenvalues[i]


def pixel_covariance(images: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """(C, C) covariance of the pixels (each pixel a C-vector on [0, 1]) of uint8
    (N, C, H, W) images, accumulated in float64 chunk by chunk (population form)."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    outer = torch.zeros(channels, channels, dtype=torch.float64)
    count = 0
    for start in range(0, len(images), chunk):
        pixels = images[start : start + chunk].transpose(0, 1).reshape(channels, -1).double()
        pixels /= 255.0
        total += pixels.sum(dim=1)
        outer += pixels @ pixels.T
        count += pixels.shape[1]
    mean = total / count
    return outer / count - torch.outer(mean, mean)


def colour_pca(images: torch.Tensor) -> ColourPCA:
    """The eigen-decomposition of the training pixels' colour covariance."""
    eigenvalues, eigenvectors = torch.linalg.eigh(pixel_covariance(images))
    return ColourPCA(eigenvalues.clamp(min=0), eigenvectors)


def colour_shift(pca: ColourPCA, alphas: torch.Tensor) -> torch.Tensor:
    """Per-image shifts (N, C) on [0, 1]: sum_i alpha_i lambda_i p_i, alphas (N, C)."""
    return (alphas.double() * pca.eigenvalues) @ pca.eigenvectors.T


def add_colour_shift(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """uint8 images plus per-image shifts (N, C) on [0, 1], rounded and clipped to uint8."""
    shifted = images.float() + (255.0 * shift).float()[:, :, None, None]
    return shifted.round_().clamp_(0, 255).to(torch.uint8)


def pca_colour_augment(
    images: torch.Tensor, pca: ColourPCA, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Add PCA colour noise with alpha ~ N(0, 0.1), drawn once per image."""
    alphas = torch.randn(len(images), images.shape[1], generator=generator) * ALPHA_STD
    return add_colour_shift(images, colour_shift(pca, alphas).to(images.device))
