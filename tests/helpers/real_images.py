"""Real images for the data readers: a small CIFAR-10 JPEG tree from ``../shared/data``
when it is there, else JPEGs and PNGs written from the shipped MNIST digits."""

import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import IN_CI

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CIFAR_JPEG_ARCHIVE = SHARED_DATA / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
PER_CLASS = {"train": 20, "test": 8}


def _extract_cifar_subset(archive: Path, root: Path) -> None:
    """The first PER_CLASS[split] JPEGs of each class folder, as stored in the archive."""
    taken: dict[str, int] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) != 3 or parts[0] not in PER_CLASS:
                continue
            key = "/".join(parts[:2])
            if taken.get(key, 0) >= PER_CLASS[parts[0]]:
                continue
            taken[key] = taken.get(key, 0) + 1
            target = root / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())


def _write_mnist_tree(root: Path) -> None:
    """MNIST digits as 32x32 RGB JPEGs (train) and PNGs (test): real strokes, tinted."""
    from cnnkit.data import load_dataset

    train, test = load_dataset("mnist")
    for split, data in (("train", train), ("test", test)):
        for label in range(10):
            indices = (data.labels == label).nonzero().flatten()[: PER_CLASS[split]]
            folder = root / split / data.classes[label]
            folder.mkdir(parents=True)
            for k, index in enumerate(indices.tolist()):
                gray = np.pad(data.images[index, 0].numpy(), 2)
                rgb = np.stack([gray, gray // 2, 255 - gray], axis=-1).astype(np.uint8)
                suffix = "jpg" if split == "train" else "png"
                Image.fromarray(rgb).save(folder / f"{k:04d}.{suffix}")


@pytest.fixture(scope="session")
def real_image_tree(tmp_path_factory) -> Path:
    """ROOT/train/<class>/*.jpg and ROOT/test/<class>/* of real 32x32 RGB photos (10 classes).

    Treat as read-only: tests that damage files copy it first."""
    root = tmp_path_factory.mktemp("images")
    if CIFAR_JPEG_ARCHIVE.is_file() or IN_CI:  # CI has ../shared: a missing one fails
        _extract_cifar_subset(CIFAR_JPEG_ARCHIVE, root)
    else:
        _write_mnist_tree(root)
    return root


def digit_photo(digit: np.ndarray, path: Path, scale: int = 4) -> Path:
    """An MNIST digit as a person would photograph it: dark ink on white paper, larger
    than 28x28 (``scale`` times), saved as a PNG at ``path``."""
    paper = Image.fromarray(255 - digit).resize(
        (digit.shape[1] * scale, digit.shape[0] * scale), Image.Resampling.BILINEAR
    )
    paper.save(path)
    return path
