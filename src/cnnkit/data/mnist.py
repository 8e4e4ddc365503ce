"""MNIST-format data sets: four IDX files, checked against their SHA-256."""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.data import download as downloads
from cnnkit.data import locate
from cnnkit.data.idx import parse_idx, read_idx_bytes
from cnnkit.data.images import ImageSet
from cnnkit.errors import ChecksumError, DataError


@dataclass(frozen=True)
class IdxFile:
    name: str  # decompressed name, e.g. "train-images-idx3-ubyte"
    sha256: str  # of the decompressed content


@dataclass(frozen=True)
class IdxDataset:
    """The facts of one IDX data set: files, checksums, mirrors, statistics."""

    name: str
    classes: tuple[str, ...]
    train: tuple[IdxFile, IdxFile]  # images, labels
    test: tuple[IdxFile, IdxFile]
    mirrors: tuple[str, ...]  # base URLs that serve NAME.gz
    mean: float  # of training pixels on [0, 1]
    std: float
    source: str
    license: str
    system_dirs: tuple[Path, ...] = ()


# The training split's pixel mean and std on [0, 1] (SOURCE.md of the shipped files;
# torchvision's reference scripts and pytorch/examples use the same).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

MNIST = IdxDataset(
    name="mnist",
    classes=tuple(str(digit) for digit in range(10)),
    train=(
        IdxFile(
            "train-images-idx3-ubyte",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        IdxFile(
            "train-labels-idx1-ubyte",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
    ),
    test=(
        IdxFile(
            "t10k-images-idx3-ubyte",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        IdxFile(
            "t10k-labels-idx1-ubyte",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    mean=MNIST_MEAN,
    std=MNIST_STD,
    source="LeCun, Cortes and Burges, The MNIST database of handwritten digits (1998)",
    license="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
)


# Zalando's files as Debian ships them (package dataset-fashion-mnist). Debian's .gz
# files are the upstream ones without the gzip header's file name (each is exactly
# len(name) + 1 bytes shorter than the published 26421880 / 29515 / 4422102 / 5148
# bytes), so their MD5s differ from the README's; the SHA-256 of the decompressed
# content below was computed from Debian's files and is what the mirrors must match.
FASHION_MNIST = IdxDataset(
    name="fashion-mnist",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    train=(
        IdxFile(
            "train-images-idx3-ubyte",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        IdxFile(
            "train-labels-idx1-ubyte",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
    ),
    test=(
        IdxFile(
            "t10k-images-idx3-ubyte",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        IdxFile(
            "t10k-labels-idx1-ubyte",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    mean=0.2860,  # of the 47,040,000 training pixels on [0, 1], computed with numpy
    std=0.3530,
    source="Xiao, Rasul and Vollgraf, Fashion-MNIST (2017), arXiv:1708.07747",
    license="MIT (Zalando SE)",
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
)


def load_idx_dataset(spec: IdxDataset, split: str, data_dir: Path | None = None) -> ImageSet:
    """One split ("train" or "test") of an IDX data set, located, verified and decoded."""
    images_file, labels_file = spec.train if split == "train" else spec.test
    images_path, images = _read_verified(spec, images_file, data_dir)
    labels_path, labels = _read_verified(spec, labels_file, data_dir)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected images of shape (N, H, W), got {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path}: expected {len(images)} labels to match {images_path.name}, "
            f"got shape {labels.shape}"
        )
    if labels.size and labels.max() >= len(spec.classes):
        raise DataError(
            f"{labels_path}: label {labels.max()} out of range for {len(spec.classes)} classes"
        )
    return ImageSet(
        images=torch.from_numpy(images.astype(np.uint8, copy=False)[:, None]),
        labels=torch.from_numpy(labels.astype(np.int64)),
        classes=list(spec.classes),
        mean=(spec.mean,),
        std=(spec.std,),
    )


def _where(spec: IdxDataset, file: IdxFile, data_dir: Path | None) -> Path:
    dirs = locate.search_dirs(spec.name, data_dir, spec.system_dirs)
    found = locate.find_file(file.name, dirs)
    if found is not None:
        return found
    destination = locate.download_dir(spec.name, data_dir) / (file.name + ".gz")
    urls = [mirror + file.name + ".gz" for mirror in spec.mirrors]
    return downloads.download(urls, destination, file.sha256)


def _read_verified(
    spec: IdxDataset, file: IdxFile, data_dir: Path | None
) -> tuple[Path, np.ndarray]:
    path = _where(spec, file, data_dir)
    content = read_idx_bytes(path)
    digest = hashlib.sha256(content).hexdigest()
    if digest != file.sha256:
        raise ChecksumError(
            f"{path}: content SHA-256 {digest} does not match the published "
            f"{file.sha256}; delete the file to download it again"
        )
    return path, parse_idx(content, path)
