"""What an index holds: its items (``Record``), and the collections a build embeds,
a data set's split or image files and folders (read by ``search.pipeline``).
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnkit.data import load_dataset
from cnnkit.data.image_files import IMAGE_SUFFIXES
from cnnkit.errors import ConfigError, DataError, ImageError, IndexFileError
from cnnkit.files import Integer, Optional, Schema, Text
from cnnkit.runs import Run

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Record:
    """One item: a file (``path``) or an image of a data set (``dataset``, ``split``,
    ``index`` into the split as ``load_dataset`` orders it); ``label`` when known."""

    id: int
    label: str | None = None
    path: str | None = None
    dataset: str | None = None
    split: str | None = None
    index: int | None = None

    @property
    def source(self) -> str:
        """How a person (and ``index remove``) names the item."""
        return self.path if self.path is not None else f"{self.dataset}/{self.split}/{self.index}"

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if value is not None}

    @classmethod
    def from_json(cls, value: object, source: str) -> "Record":
        """The record in a parsed line (as ``to_json`` wrote it), every field read by
        its rule (``RECORD``): a path, or a data set's split and index, never both."""
        record = RECORD.parse(value, source, IndexFileError, "record")
        if (record.path is None) == (record.index is None) or (record.index is None) != (
            record.dataset is None or record.split is None
        ):
            raise IndexFileError(
                f"{source}: damaged record: item {record.id} names no file or data-set "
                "image, or both (expected path, or dataset, split and index)"
            )
        return record


MAX_ID = 1 << 40  # item ids an index may give (manifest.MAX_ITEMS)
# Every field of a record with the rule it is read by; a key that is none of these is
# refused (the index's format version says which fields there are). A path may name
# any file: the index trusts its records to name the images it was built from.
RECORD = Schema(
    Record,
    {
        "id": Integer(0, MAX_ID - 1),
        "label": Optional(Text(max_length=1024)),
        "path": Optional(Text()),
        "dataset": Optional(Text(max_length=4096)),
        "split": Optional(Text(SPLITS)),
        "index": Optional(Integer(0, MAX_ID - 1)),
    },
    defaults=True,
)


@dataclass(frozen=True)
class Collection:
    """Items to embed, ids assigned; ``images`` holds a data set split's pixels."""

    description: str
    records: list[Record]
    images: torch.Tensor | None = None  # uint8 (N, C, H, W), data-set collections only

    def digest_lines(self) -> list[str]:
        """What identifies the collection for ``--resume``: every item's source."""
        return [record.source for record in self.records]


def dataset_collection(
    name: str, split: str, run: Run, limit: int | None = None, data_dir: Path | None = None
) -> Collection:
    """The first ``limit`` images of a data set's ``split`` (all of them by default)."""
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r}: use one of {', '.join(SPLITS)}")
    images = load_dataset(name, data_dir)[SPLITS.index(split)].subset(limit or 1 << 62)
    if images.image_shape[0] != run.record.in_channels:
        raise ConfigError(
            f"{run.path}: the model takes {run.record.in_channels}-channel images; "
            f"{name}'s have {images.image_shape[0]}"
        )
    records = [
        Record(i, images.classes[label], dataset=name, split=split, index=i)
        for i, label in enumerate(images.labels.tolist())
    ]
    return Collection(f"{name} {split}", records, images.images)


def list_images(paths: list[Path], limit: int | None = None) -> list[tuple[Path, str | None]]:
    """Image files and the files in folders (recursively, sorted), absolute, each once,
    with a label: for a file found in a folder, the name of the folder that holds it
    (``FOLDER/<class>/x.jpg``: its class), none for a file given by itself."""
    found: dict[Path, str | None] = {}
    for path in paths:
        path = Path(path).expanduser()
        if path.is_dir():
            files = images_under(path)
            if not files:
                raise DataError(f"{path}: no .jpg, .jpeg or .png images in this folder")
            for file, label in files:
                found.setdefault(file, label)
        elif path.is_file():
            found.setdefault(path.resolve(), None)
        else:
            raise ImageError(f"{path}: file not found")
    return list(found.items())[:limit]


def images_under(folder: Path) -> list[tuple[Path, str | None]]:
    """The image files under ``folder``, found as ``Path.rglob`` finds them (not in
    linked folders; unreadable folders skipped), in its order, each with its real path
    and the name of the folder that holds it. The folder is resolved once: below it a
    file that is not a link is its own real path, which spares ``Path.resolve``'s
    system calls for every file (five sixths of a large folder's listing time)."""
    root = folder.resolve()
    found: list[tuple[tuple[str, ...], bool]] = []  # (the parts below root, whether a link)
    pending: list[tuple[str, ...]] = [()]
    while pending:
        parts = pending.pop()
        try:
            with os.scandir(root.joinpath(*parts)) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((*parts, entry.name))
                    elif os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES and (
                        entry.is_file()
                    ):
                        found.append(((*parts, entry.name), entry.is_symlink()))
        except PermissionError:
            continue
    found.sort()  # Path order: part by part
    return [
        (
            root.joinpath(*parts).resolve() if link else root.joinpath(*parts),
            parts[-2] if len(parts) > 1 else root.name or None,
        )
        for parts, link in found
    ]


def file_collection(paths: list[Path], limit: int | None = None, first_id: int = 0) -> Collection:
    files = list_images(paths, limit)
    records = [Record(first_id + i, label, path=str(p)) for i, (p, label) in enumerate(files)]
    return Collection("files", records)
