"""Folder data sets: ``ROOT/train/<class>/*.jpg`` and ``ROOT/val/<class>/*`` (or ``test/``).

JPEG and PNG files, RGB or grayscale (a set is RGB if any of its images has colour;
grayscale images then get three equal channels), decoded by ``data.image_files``.
Images it cannot decode are skipped and named in one ``SkippedImagesWarning``; a class
folder without images is an error. Classes are the sorted folder names of ``train/``.

Two ways in:
- ``load_folder``: decode every image once into an in-memory ``ImageSet`` (uint8),
  so training uses the fast batched path. The images are put in a fixed shuffled
  order (seed 0), as CIFAR's batches are, so that the first N (``--train-limit``)
  hold every class. Images whose longer side is at most
  ``IN_MEMORY_MAX_SIDE`` (CIFAR-like sets) keep their size; larger ones are rescaled
  so that the shorter side is 256 and the central 256x256 patch kept (Krizhevsky et
  al. 2012, Sec. 2). The decoded set is cached in the user cache directory, keyed by
  the folder's path and every file's name, size and modification time.
- ``data.stream``: DataLoaders whose workers decode batch by batch, for sets too
  large to hold in memory (``cnnkit train --stream``).
"""

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnkit.data import locate
from cnnkit.data.image_files import IMAGE_SUFFIXES, read_image
from cnnkit.data.images import ImageSet, channel_stats
from cnnkit.errors import DataError, ImageError, SkippedImagesWarning, WriteError, import_extra
from cnnkit.files import atomic_write
from cnnkit.progress import bar as progress_bar
from cnnkit.progress import wanted as progress_wanted
from cnnkit.transforms.resize import SMALL_SIDE, fit_size

IN_MEMORY_MAX_SIDE = SMALL_SIDE  # pixels; CIFAR (32), STL-10 (96 would be resized) in mind
RESCALED_SIDE = 256  # Krizhevsky et al. 2012, Sec. 2
MAX_IN_MEMORY_BYTES = 8 << 30  # refuse to decode more than this into memory
CACHE_VERSION = 2  # bump when decoding changes, so old caches are not used (2: Pillow)


@dataclass(frozen=True)
class Listing:
    """The image files of one split and their labels (index into ``classes``)."""

    files: list[Path]
    labels: list[int]
    classes: list[str]


def split_dirs(root: Path) -> tuple[Path, Path]:
    """``root/train`` and ``root/val`` (or ``root/test`` when there is no ``val``)."""
    if not (root / "train").is_dir():
        raise DataError(f"{root}: no train/ folder (expected ROOT/train/<class>/*.jpg)")
    for name in ("val", "test"):
        if (root / name).is_dir():
            return root / "train", root / name
    raise DataError(f"{root}: no val/ or test/ folder beside train/")


def list_split(split_dir: Path, classes: list[str] | None = None) -> Listing:
    """The images under ``split_dir/<class>/``; ``classes`` defaults to its sorted folders."""
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if classes is None:
        classes = found
    if not classes:
        raise DataError(f"{split_dir}: no class folders")
    if extra := sorted(set(found) - set(classes)):
        raise DataError(f"{split_dir}: class folders not in train/: {', '.join(extra[:5])}")
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = split_dir / name
        images = (
            sorted(
                p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if folder.is_dir()
            else []
        )
        if not images:
            raise DataError(f"{folder}: class folder has no .jpg, .jpeg or .png images")
        files += images
        labels += [label] * len(images)
    return Listing(files, labels, classes)


def decode_file(path: Path) -> torch.Tensor:
    """uint8 (3, H, W) of a JPEG or PNG file (grayscale and palette images as RGB)."""
    return read_image(path, channels=3)


def _decode_listing(
    listing: Listing, size: tuple[int, int] | None, description: str
) -> tuple[torch.Tensor, torch.Tensor, list[str], tuple[int, int]]:
    """Decode into one uint8 (N, 3, H, W) tensor; returns also the skipped files' errors."""
    labels: list[int] = []
    images, skipped = None, []
    for path, label in zip(
        progress_bar(
            listing.files, desc=description, unit="img", leave=False, disable=not progress_wanted()
        ),
        listing.labels,
        strict=True,
    ):
        try:
            image = decode_file(path)
        except ImageError as error:
            skipped.append(str(error))
            continue
        if size is None:  # the first image decides the size of the whole set
            side = max(image.shape[-2:])
            height, width = image.shape[-2:]
            size = (height, width) if side <= IN_MEMORY_MAX_SIDE else (RESCALED_SIDE,) * 2
        if images is None:
            needed = len(listing.files) * 3 * size[0] * size[1]
            if needed > MAX_IN_MEMORY_BYTES:
                raise DataError(
                    f"{path.parent.parent}: {len(listing.files)} images of 3x{size[0]}x{size[1]}"
                    f" need {needed / 2**30:.1f} GiB in memory, more than cnnkit decodes at "
                    f"once ({MAX_IN_MEMORY_BYTES / 2**30:.0f} GiB); train with --stream"
                )
            images = torch.empty((len(listing.files), 3, *size), dtype=torch.uint8)
        images[len(labels)] = fit_size(image, size)
        labels.append(label)
    if images is None:
        raise DataError(f"{description}: none of {len(listing.files)} images could be decoded")
    missing = sorted(set(range(len(listing.classes))) - set(labels))
    if missing:
        raise DataError(f"{description}: no readable image of class {listing.classes[missing[0]]}")
    assert size is not None  # the first decoded image set it, if not given
    return images[: len(labels)], torch.tensor(labels, dtype=torch.int64), skipped, size


def _cache_path(root: Path, listings: list[Listing]) -> Path:
    digest = hashlib.sha256(f"{CACHE_VERSION}\n{root.resolve()}\n".encode())
    for listing in listings:
        for path, label in zip(listing.files, listing.labels, strict=True):
            stat = path.stat()
            digest.update(
                f"{path.relative_to(root)}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode()
            )
    return locate.user_cache_dir() / "folders" / f"{root.name}-{digest.hexdigest()[:20]}.pt"


def _read_cache(path: Path) -> dict | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a missing or damaged cache is rebuilt, never trusted
        return None


def _write_cache(path: Path, content: dict) -> None:
    try:
        atomic_write(path, lambda file: torch.save(content, file))
    except WriteError:
        pass  # a full or read-only cache directory only costs the next run the decoding


def _as_grayscale_if_gray(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """One channel for every split when no image in any split has colour."""
    if all(bool((x[:, 0] == x[:, 1]).all() and (x[:, 1] == x[:, 2]).all()) for x in images):
        return [x[:, :1].contiguous() for x in images]
    return images


def folder_listings(root: Path) -> tuple[Listing, Listing]:
    """The (train, val) listings of an image folder tree; val has train's classes."""
    train_dir, test_dir = split_dirs(root)
    train_listing = list_split(train_dir)
    return train_listing, list_split(test_dir, train_listing.classes)


def load_folder(root: Path, cache: bool = True) -> tuple[ImageSet, ImageSet]:
    """The (train, val) splits of an image folder tree, decoded into memory."""
    root = Path(root)
    return load_listings(root, *folder_listings(root), cache)


def load_listings(
    root: Path, train_listing: Listing, test_listing: Listing, cache: bool = True
) -> tuple[ImageSet, ImageSet]:
    """Decode (or read from the cache) two listed splits of the set under ``root``."""
    cache_path = _cache_path(root, [train_listing, test_listing]) if cache else None
    content = _read_cache(cache_path) if cache_path and cache_path.is_file() else None
    if content is None:
        train_images, train_labels, skipped, size = _decode_listing(
            train_listing, None, f"{root.name}/train"
        )
        test_images, test_labels, skipped_test, _ = _decode_listing(
            test_listing, size, f"{root.name}/{test_listing.files[0].relative_to(root).parts[0]}"
        )
        train_images, test_images = _as_grayscale_if_gray([train_images, test_images])
        content = {
            "train_images": train_images,
            "train_labels": train_labels,
            "test_images": test_images,
            "test_labels": test_labels,
            "skipped": skipped + skipped_test,
        }
        if cache_path is not None:
            _write_cache(cache_path, content)
    if content["skipped"]:
        warn_skipped(root, content["skipped"])
    classes = train_listing.classes
    mean, std = channel_stats(content["train_images"])
    train_order, test_order = (
        torch.randperm(len(content[f"{split}_labels"]), generator=torch.Generator().manual_seed(0))
        for split in ("train", "test")
    )
    return (
        ImageSet(
            content["train_images"][train_order],
            content["train_labels"][train_order],
            classes,
            mean,
            std,
        ),
        ImageSet(
            content["test_images"][test_order],
            content["test_labels"][test_order],
            classes,
            mean,
            std,
        ),
    )


def warn_skipped(root: Path, problems: list[str]) -> None:
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if problems[5:] else "")
    warnings.warn(
        SkippedImagesWarning(f"{root}: skipped {len(problems)} unreadable image(s): {shown}"),
        stacklevel=3,
    )


IMAGENET_DEVKIT = "ILSVRC2012_devkit_t12"


def imagenet_listings(root: Path) -> tuple[Listing, Listing]:
    """The ILSVRC-2012 layout: ``train/<wnid>/*.JPEG``; ``val/*.JPEG`` in one folder,
    labelled by the devkit's ``data/ILSVRC2012_validation_ground_truth.txt`` (one
    ILSVRC2012_ID per line, in file-name order) and ``data/meta.mat`` (ID -> wnid)."""
    train = list_split(root / "train") if (root / "train").is_dir() else None
    if train is None:
        raise DataError(f"{root}: no train/<wnid>/ folders (the ILSVRC-2012 layout)")
    devkit = root / IMAGENET_DEVKIT / "data"
    truth_file, meta_file = devkit / "ILSVRC2012_validation_ground_truth.txt", devkit / "meta.mat"
    for needed in (truth_file, meta_file):
        if not needed.is_file():
            raise DataError(f"{needed}: not found (unpack the ILSVRC-2012 devkit into {root})")
    id_to_wnid = _read_devkit_meta(meta_file)
    try:
        truth = [int(line) for line in truth_file.read_text().split()]
    except ValueError:
        raise DataError(f"{truth_file}: expected one integer ILSVRC2012_ID per line") from None
    files = sorted(
        p for p in (root / "val").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if len(files) != len(truth):
        raise DataError(f"{truth_file}: {len(truth)} labels for {len(files)} images in val/")
    index = {wnid: i for i, wnid in enumerate(train.classes)}
    unknown = [i for i in truth if id_to_wnid.get(i) not in index]
    if unknown:
        raise DataError(f"{truth_file}: ILSVRC2012_ID {unknown[0]} has no train/ folder")
    return train, Listing(files, [index[id_to_wnid[i]] for i in truth], train.classes)


def _read_devkit_meta(path: Path) -> dict[int, str]:
    loadmat = import_extra("scipy.io", "imagenet", "reading the ImageNet devkit").loadmat
    try:
        synsets = loadmat(str(path), squeeze_me=True)["synsets"]
        return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
    except (KeyError, ValueError, TypeError, OSError) as error:
        raise DataError(f"{path}: not the devkit's meta.mat ({error})") from None


def load_imagenet(root: Path, cache: bool = True) -> tuple[ImageSet, ImageSet]:
    train, val = imagenet_listings(Path(root))
    return load_listings(Path(root), train, val, cache)
