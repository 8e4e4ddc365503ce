"""Data sets by name. The only package that opens data files.

Names: the IDX sets (``mnist``, ``fashion-mnist``), ``cifar10`` and ``cifar100``
(python release), ``digits`` (scikit-learn, optional), ``folder:PATH`` (an
ImageNet-style tree) and ``imagenet:PATH`` (the ILSVRC-2012 layout with its devkit).
"""

from pathlib import Path

from cnnkit.data.images import ImageSet
from cnnkit.data.mnist import FASHION_MNIST, MNIST, IdxDataset, load_idx_dataset
from cnnkit.errors import UnknownNameError

DIGIT_DATASETS = ("mnist", "digits")  # handwritten digits: a mirrored digit is no digit

IDX_DATASETS: dict[str, IdxDataset] = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}
CIFAR_NAMES = ("cifar10", "cifar100")
PATH_PREFIXES = ("folder:", "imagenet:")


def dataset_names() -> list[str]:
    return sorted([*IDX_DATASETS, *CIFAR_NAMES, "digits"]) + [p + "PATH" for p in PATH_PREFIXES]


def load_dataset(name: str, data_dir: Path | None = None) -> tuple[ImageSet, ImageSet]:
    """The (train, test) splits of data set ``name``."""
    if name in IDX_DATASETS:
        spec = IDX_DATASETS[name]
        return load_idx_dataset(spec, "train", data_dir), load_idx_dataset(spec, "test", data_dir)
    if name in CIFAR_NAMES:
        from cnnkit.data.cifar import CIFAR_RELEASES, load_cifar

        return load_cifar(CIFAR_RELEASES[name], data_dir)
    if name == "digits":
        from cnnkit.data.digits import load_digits

        return load_digits()
    if name.startswith("folder:"):
        from cnnkit.data.folder import load_folder

        return load_folder(Path(name.removeprefix("folder:")).expanduser())
    if name.startswith("imagenet:"):
        from cnnkit.data.folder import load_imagenet

        return load_imagenet(Path(name.removeprefix("imagenet:")).expanduser())
    raise UnknownNameError.of("data set", name, dataset_names())


def load_test_split(name: str, data_dir: Path | None = None) -> ImageSet:
    """The test split of ``name`` alone: an IDX set's training files (MNIST's: 47 MB to
    verify and decompress) are not read; other sets come whole and give their test split."""
    if name in IDX_DATASETS:
        return load_idx_dataset(IDX_DATASETS[name], "test", data_dir)
    return load_dataset(name, data_dir)[1]


__all__ = ["DIGIT_DATASETS", "ImageSet", "dataset_names", "load_dataset", "load_test_split"]
