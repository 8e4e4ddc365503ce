"""Data sets by name. The only package that opens data files."""

from pathlib import Path

from cnnkit.data.images import ImageSet
from cnnkit.data.mnist import FASHION_MNIST, MNIST, IdxDataset, load_idx_dataset
from cnnkit.errors import UnknownNameError

IDX_DATASETS: dict[str, IdxDataset] = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


def dataset_names() -> list[str]:
    return sorted(IDX_DATASETS)


def load_dataset(name: str, data_dir: Path | None = None) -> tuple[ImageSet, ImageSet]:
    """The (train, test) splits of data set ``name``."""
    if name not in IDX_DATASETS:
        raise UnknownNameError(f"unknown data set {name!r}; known: {', '.join(dataset_names())}")
    spec = IDX_DATASETS[name]
    return load_idx_dataset(spec, "train", data_dir), load_idx_dataset(spec, "test", data_dir)


__all__ = ["ImageSet", "dataset_names", "load_dataset"]
