"""CIFAR-10 and CIFAR-100 in their python release (Krizhevsky 2009, "Learning Multiple
Layers of Features from Tiny Images"; https://www.cs.toronto.edu/~kriz/cifar.html).

A release folder (``cifar-10-batches-py/`` or ``cifar-100-python/``) holds pickled
dicts: ``b"data"`` uint8 (N, 3072), each row a 32x32 image as three row-major planes
R, G, B; ``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100), a list of N ints;
and a meta file whose ``b"label_names"`` / ``b"fine_label_names"`` name the classes.
Every file is validated before use; pickles are read with an unpickler that builds
only numpy arrays, so a hostile file cannot run code.
"""

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.data import download as downloads
from cnnkit.data import locate
from cnnkit.data.images import ImageSet, channel_stats
from cnnkit.errors import DataError

_SIDE = 32
_ROW = 3 * _SIDE * _SIDE  # 3072 bytes per image


@dataclass(frozen=True)
class CifarRelease:
    name: str
    folder: str  # what the archive unpacks to
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    labels_key: bytes
    names_key: bytes
    num_classes: int
    url: str
    md5: str  # of the archive, as published on the CIFAR page
    source: str = "Krizhevsky, Learning Multiple Layers of Features from Tiny Images (2009)"
    license: str = "no license stated; free to use with citation of Krizhevsky (2009)"


CIFAR10 = CifarRelease(
    name="cifar10",
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    meta_file="batches.meta",
    labels_key=b"labels",
    names_key=b"label_names",
    num_classes=10,
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
)
CIFAR100 = CifarRelease(
    name="cifar100",
    folder="cifar-100-python",
    train_files=("train",),
    test_files=("test",),
    meta_file="meta",
    labels_key=b"fine_labels",
    names_key=b"fine_label_names",
    num_classes=100,
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
)
CIFAR_RELEASES = {release.name: release for release in (CIFAR10, CIFAR100)}

# What a numpy array pickled by Python 2 or 3 (protocols 2 to 5) may ask for.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _SizedArray(np.ndarray):
    """The array ``_reconstruct`` makes while unpickling: its ``__setstate__`` refuses a
    shape whose bytes the file cannot hold, before numpy allocates them (a 74-byte file
    can declare a 200,000 x 200,000 array)."""

    limit = 0  # bytes: set per file

    def __setstate__(self, state: tuple) -> None:
        shape, dtype = state[1], np.dtype(state[2])
        count = float(np.prod([float(side) for side in shape])) if len(shape) else 1.0
        if count * dtype.itemsize > self.limit:
            raise pickle.UnpicklingError(
                f"an array of shape {tuple(shape)} is larger than the file ({self.limit} bytes)"
            )
        super().__setstate__(state)


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, raw: bytes) -> None:
        super().__init__(io.BytesIO(raw), encoding="bytes")
        self.limit = len(raw)

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        found = super().find_class(module, name)
        if name == "_reconstruct":
            limit = self.limit

            def reconstruct(_: type, shape: tuple, dtype: bytes) -> np.ndarray:
                array = found(_SizedArray, shape, dtype)
                array.limit = limit
                return array

            return reconstruct
        return found


def read_pickle(path: Path) -> dict:
    """One release file as a dict with bytes keys; a clear error if it is not one."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    try:
        content = _plain_arrays(_ArrayUnpickler(raw).load())
    except Exception as error:  # a hostile pickle can raise almost anything: all mean "bad file"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: not a readable CIFAR pickle ({reason or 'truncated'})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a dict, found {type(content).__name__}")
    return content


def _plain_arrays(content: object) -> object:
    """``content`` with the unpickler's checked arrays as plain ndarrays."""
    if isinstance(content, dict):
        return {key: _plain_arrays(value) for key, value in content.items()}
    if isinstance(content, _SizedArray):
        return content.view(np.ndarray)
    return content


def read_batch(path: Path, release: CifarRelease) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 3, 32, 32) and labels int64 (N,) of one batch file, validated."""
    content = read_pickle(path)
    data, labels = content.get(b"data"), content.get(release.labels_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{path}: b'data' must be a uint8 (N, {_ROW}) array")
    if data.shape[1] != _ROW:
        raise DataError(f"{path}: rows of {data.shape[1]} bytes, expected {_ROW} (32x32 RGB)")
    if labels is None:
        raise DataError(f"{path}: no {release.labels_key!r} entry")
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= release.num_classes):
        raise DataError(f"{path}: label {labels.max()} out of range 0..{release.num_classes - 1}")
    return data.reshape(-1, 3, _SIDE, _SIDE), labels.astype(np.int64)


def read_class_names(path: Path, release: CifarRelease) -> list[str]:
    names = read_pickle(path).get(release.names_key)
    if not isinstance(names, list) or len(names) != release.num_classes:
        raise DataError(f"{path}: expected {release.num_classes} names under {release.names_key!r}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def find_release(release: CifarRelease, data_dir: Path | None) -> Path:
    """The release folder: found in the look-up folders, unpacked from an archive
    there, or downloaded (with the published MD5 checked) and unpacked."""
    dirs = locate.search_dirs(release.name, data_dir)
    for folder in dirs:
        for candidate in (folder / release.folder, folder):
            if (candidate / release.meta_file).is_file():
                return candidate
    archive_name = release.url.rsplit("/", 1)[1]
    archive = locate.find_file(archive_name, dirs)
    if archive is None:
        destination = locate.download_dir(release.name, data_dir) / archive_name
        archive = downloads.download_archive([release.url], destination, release.md5)
    return _unpack(archive, release)


def _unpack(archive: Path, release: CifarRelease) -> Path:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(archive.parent, filter="data")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{archive}: cannot unpack ({error})") from None
    folder = archive.parent / release.folder
    if not (folder / release.meta_file).is_file():
        raise DataError(f"{archive}: does not contain {release.folder}/{release.meta_file}")
    return folder


def load_cifar(release: CifarRelease, data_dir: Path | None = None) -> tuple[ImageSet, ImageSet]:
    """The (train, test) splits; normalised with the training split's channel statistics."""
    folder = find_release(release, data_dir)
    classes = read_class_names(folder / release.meta_file, release)
    splits = []
    for files in (release.train_files, release.test_files):
        batches = [read_batch(folder / name, release) for name in files]
        images = torch.from_numpy(np.concatenate([b[0] for b in batches]))
        splits.append((images, torch.from_numpy(np.concatenate([b[1] for b in batches]))))
    mean, std = channel_stats(splits[0][0])
    train, test = (ImageSet(images, labels, classes, mean, std) for images, labels in splits)
    return train, test
