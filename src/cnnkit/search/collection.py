"""What an index holds: its items (``Record``), and the collections a build embeds,
a data set's split or image files and folders, read in batches.

Files are read by the run layer's one file-to-pixels path (``Run.read_file``: the one
decoder, then the preparation the model's training images had), in DataLoader worker
processes that each return a whole batch as one uint8 tensor, a quarter of the bytes
of the float32 images a textbook loader sends, and normalised once per batch in the
main process. A file that cannot be decoded is left out and named in the result, as
the folder loader does in training.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from cnnkit.data import load_dataset
from cnnkit.data.image_files import IMAGE_SUFFIXES
from cnnkit.errors import ConfigError, DataError, ImageError, IndexFileError
from cnnkit.runs import Run

SPLITS = ("train", "test")
MAX_DEFAULT_WORKERS = 8


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
        if not isinstance(value, dict) or not isinstance(value.get("id"), int):
            raise IndexFileError(f"{source}: damaged record {str(value)[:60]!r}")
        try:
            record = cls(**value)
        except TypeError:
            raise IndexFileError(f"{source}: damaged record {str(value)[:60]!r}") from None
        if (record.path is None) == (record.index is None):
            raise IndexFileError(f"{source}: record {record.id} names no file or data-set image")
        return record


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
            files = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not files:
                raise DataError(f"{path}: no .jpg, .jpeg or .png images in this folder")
            for file in files:
                found.setdefault(file.resolve(), file.parent.name)
        elif path.is_file():
            found.setdefault(path.resolve(), None)
        else:
            raise ImageError(f"{path}: file not found")
    return list(found.items())[:limit]


def file_collection(paths: list[Path], limit: int | None = None, first_id: int = 0) -> Collection:
    files = list_images(paths, limit)
    records = [Record(first_id + i, label, path=str(p)) for i, (p, label) in enumerate(files)]
    return Collection("files", records)


@dataclass(frozen=True)
class Batch:
    records: list[Record]  # the items read, in order
    images: torch.Tensor  # uint8 (N, C, H, W), one per record
    problems: list[str]  # files that could not be read


class FileBatches(Dataset):
    """Item i: the i-th batch of files, read and prepared by ``run.read_file``."""

    def __init__(self, run: Run, batches: list[list[Record]]) -> None:
        self.run, self.batches = run, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        records, images, problems = [], [], []
        for record in self.batches[i]:
            try:
                images.append(self.run.read_file(Path(str(record.path))))
                records.append(record)
            except ImageError as error:
                problems.append(str(error))
        shape = (0, *self.run.record.input_shape)
        stacked = torch.stack(images) if images else torch.empty(shape, dtype=torch.uint8)
        return Batch(records, stacked, problems)


def default_workers() -> int:
    return min(len(os.sched_getaffinity(0)), MAX_DEFAULT_WORKERS)


def read_batches(
    collection: Collection, run: Run, records: list[Record], batch_size: int, workers: int
) -> Iterator[Batch]:
    """``records`` of ``collection`` as batches of at most ``batch_size`` images, in order."""
    groups = [records[i : i + batch_size] for i in range(0, len(records), batch_size)]
    if collection.images is not None:
        for group in groups:
            positions = torch.tensor([record.index for record in group])
            yield Batch(group, collection.images[positions], [])
        return
    loader = DataLoader(
        FileBatches(run, groups),
        batch_size=None,  # each item is a batch already
        num_workers=min(workers, len(groups)),
        worker_init_fn=one_thread,
        prefetch_factor=4 if workers else None,
    )
    yield from loader


def one_thread(worker: int) -> None:
    """A worker decodes; intra-op threads there would only compete with the model's."""
    torch.set_num_threads(1)
