"""A data set card: what ``cnnkit data info`` shows (after Gebru et al., Datasheets
for Datasets, 2018, cut down to the facts a training run depends on)."""

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnkit.data import IDX_DATASETS, load_dataset
from cnnkit.data.images import ImageSet, channel_stats


@dataclass(frozen=True)
class DataCard:
    name: str
    classes: list[str]
    source: str
    license: str
    location: str
    train_counts: list[int]  # images per class
    test_counts: list[int]
    image_shape: tuple[int, int, int]  # (C, H, W) as stored
    disk_bytes: int
    pixel_mean: tuple[float, ...]  # measured over the training images, on [0, 1]
    pixel_std: tuple[float, ...]
    normalisation: tuple[tuple[float, ...], tuple[float, ...]]  # (mean, std) training uses


def dataset_card(name: str, data_dir: Path | None = None) -> tuple[DataCard, ImageSet, ImageSet]:
    """The card of data set ``name`` and its two splits (for samples)."""
    train, test = load_dataset(name, data_dir)
    source, license_, files = _provenance(name, data_dir)
    mean, std = channel_stats(train.images)
    counts = [torch.bincount(s.labels, minlength=len(s.classes)).tolist() for s in (train, test)]
    card = DataCard(
        name=name,
        classes=train.classes,
        source=source,
        license=license_,
        location=os.path.commonpath([f.parent for f in files]) if files else "-",
        train_counts=counts[0],
        test_counts=counts[1],
        image_shape=train.image_shape,
        disk_bytes=sum(f.stat().st_size for f in files),
        pixel_mean=mean,
        pixel_std=std,
        normalisation=(train.mean, train.std),
    )
    return card, train, test


def _provenance(name: str, data_dir: Path | None) -> tuple[str, str, list[Path]]:
    """Source, license and the files the set was read from."""
    if name in IDX_DATASETS:
        from cnnkit.data.mnist import _where

        spec = IDX_DATASETS[name]
        files = [_where(spec, file, data_dir) for file in (*spec.train, *spec.test)]
        return spec.source, spec.license, files
    if name in ("cifar10", "cifar100"):
        from cnnkit.data.cifar import CIFAR_RELEASES, find_release

        release = CIFAR_RELEASES[name]
        folder = find_release(release, data_dir)
        return release.source, release.license, [p for p in folder.iterdir() if p.is_file()]
    if name == "digits":
        import sklearn.datasets

        from cnnkit.data import digits

        files = list((Path(sklearn.datasets.__file__).parent / "data").glob("digits.*"))
        return digits.SOURCE, digits.LICENSE, files
    from cnnkit.data.image_files import IMAGE_SUFFIXES

    root = Path(name.split(":", 1)[1]).expanduser()
    files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return f"image files under {root}", "as stated by the images' owners", files
