"""Batched augmentation, tested by properties rather than a seed's exact output."""

import pytest
import torch
from torch.nn import functional as F

from cnnkit.errors import UnknownNameError
from cnnkit.transforms.augment import (
    build_augment,
    handwriting,
    parse_augment,
    per_image_transform,
    random_crop,
    random_flip,
    random_resized_crop,
)


@pytest.fixture(scope="module")
def digits(mnist) -> torch.Tensor:
    return mnist[0].images[:64]


def test_crop_is_a_window_of_the_padded_image(digits) -> None:
    crops = random_crop(digits, 28, 4, torch.Generator().manual_seed(0))
    assert crops.shape == digits.shape and crops.dtype == torch.uint8
    padded = F.pad(digits, (4, 4, 4, 4))
    offsets = set()
    for crop, image in zip(crops, padded, strict=True):
        windows = [
            (top, left)
            for top in range(9)
            for left in range(9)
            if torch.equal(image[:, top : top + 28, left : left + 28], crop)
        ]
        assert windows
        offsets.add(windows[0])
    assert len(offsets) > 10  # each image its own offset


def test_flip_is_identity_or_mirror(digits) -> None:
    flipped = random_flip(digits, torch.Generator().manual_seed(0))
    same = [torch.equal(a, b) for a, b in zip(flipped, digits, strict=True)]
    mirror = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, digits, strict=True)]
    assert all(s or m for s, m in zip(same, mirror, strict=True))
    assert 10 < sum(mirror) < 54


def test_resized_crop_of_whole_image_is_the_image(digits) -> None:
    whole = random_resized_crop(digits, 28, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.equal(whole, digits)
    smaller = random_resized_crop(digits, 16, scale=(0.2, 1.0))
    assert smaller.shape == (64, 1, 16, 16) and smaller.dtype == torch.uint8


@pytest.mark.parametrize("spec", ["alexnet", "modern", "crop,flip", "resized-crop,cutmix"])
def test_presets_keep_batch_shape_and_labels(spec: str, real_rgb) -> None:
    augment = build_augment(spec, real_rgb, 32, 10, seed=0)
    labels = torch.arange(len(real_rgb)) % 10
    images, targets = augment(real_rgb, labels)
    assert images.shape == real_rgb.shape
    if targets.dim() == 2:  # mixup / cutmix: class probabilities
        assert targets.shape == (len(real_rgb), 10)
        assert torch.allclose(targets.sum(dim=1), torch.ones(len(real_rgb)))
    else:
        assert images.dtype == torch.uint8 and torch.equal(targets, labels)
    assert ("mix" in spec or spec == "modern") == (targets.dim() == 2)


def test_alexnet_crops_224_of_256_and_names_are_checked() -> None:
    images = torch.randint(0, 256, (4, 3, 256, 256), dtype=torch.uint8)
    augment = build_augment("alexnet", images, 224, 1000)
    out, _ = augment(images, torch.zeros(4, dtype=torch.int64))
    assert out.shape == (4, 3, 224, 224)
    assert parse_augment("alexnet", allow_flip=False) == ("crop", "pca")
    with pytest.raises(UnknownNameError, match="'rotate'"):
        parse_augment("crop,rotate")
    transform = per_image_transform(("crop", "flip"), 224)
    assert transform(images[0]).shape == (3, 224, 224)


@pytest.fixture(scope="module")
def real_rgb(real_image_tree) -> torch.Tensor:
    from cnnkit.data.folder import load_folder

    return load_folder(real_image_tree, cache=False)[0].images[:48]


def test_writing_slants_each_digit_and_changes_some_strokes() -> None:
    """A vertical bar comes out slanted by its own shear (its ink's column moves from
    the top row to the bottom one), keeps about its ink, and a third of the bars
    change their stroke width."""
    bars = torch.zeros(300, 1, 28, 28, dtype=torch.uint8)
    bars[:, :, 4:24, 13:15] = 255
    written = handwriting(bars, torch.Generator().manual_seed(0))
    assert written.shape == bars.shape and written.dtype == torch.uint8
    columns = torch.arange(28, dtype=torch.float32)

    def ink_column(rows: torch.Tensor) -> torch.Tensor:
        weights = rows.float().sum(dim=1)  # (N, W): the rows summed
        return (weights * columns).sum(dim=1) / weights.sum(dim=1)

    lean = ink_column(written[:, 0, 4:7]) - ink_column(written[:, 0, 21:24])
    assert lean.abs().max() > 3 and (lean > 1).sum() > 50 and (lean < -1).sum() > 50
    ink = written.float().sum(dim=(1, 2, 3)) / bars.float().sum(dim=(1, 2, 3))
    assert ((ink - 1).abs() < 0.1).float().mean() > 0.55  # most keep their stroke
    assert ((ink - 1).abs() > 0.2).float().mean() > 0.2  # a third are bolder or finer
    again = handwriting(bars, torch.Generator().manual_seed(0))
    assert torch.equal(written, again)


def test_writing_comes_before_the_crop_in_a_digit_recipe(digits) -> None:
    augment = build_augment("writing,shift", digits, 32, 10, seed=0)
    assert augment.steps == ("writing", "shift")
    images, labels = augment(digits, torch.arange(len(digits)) % 10)
    assert images.shape == (64, 1, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(labels, torch.arange(len(digits)) % 10)
