"""Folder data sets streamed from disk, for sets too large to decode into memory.

``cnnkit train --stream`` reads ``folder:PATH`` and ``imagenet:PATH`` through two
DataLoaders whose worker processes decode each JPEG or PNG (``folder.decode_file``),
then:

- images whose longer side is at most ``IN_MEMORY_MAX_SIDE`` (CIFAR-like sets) are
  brought to the set's common size, exactly as in memory, and every augmentation
  step runs on the collated batch (per-image work would cost more than it saves);
- larger images get their geometry per image in the workers (Krizhevsky et al. 2012,
  Sec. 2 and 4.1, via ``transforms.augment.per_image_transform``): the shorter side
  rescaled to 256/224 of the model's input and the central square kept, then for
  training a random crop of the input and a random flip (or, for ``resized-crop``, a
  random resized crop of the whole image) and TrivialAugment. Test images are
  rescaled and squared in the workers and centre-cropped on the batch, so ten-crop
  testing works too. The remaining steps (shift, pca, mixup, cutmix) run on the batch.

Determinism: epoch e's order is a permutation seeded by (seed, e), each image's random
draws by (seed, e, index). The loaders' batches depend on neither the number of
workers nor on what came before, so a run resumed at epoch e gets the batches of an
uninterrupted one (the batch steps' generator is in the checkpoint).

Unreadable images are dropped from their batch (never an exception mid-epoch) and
named in a ``SkippedImagesWarning`` at the end of the epoch that first met them.
Every image is RGB (the in-memory path makes all-grey sets one channel; a stream
cannot know that without decoding everything first). Mean, standard deviation and
the colour PCA come from a sample: the first ``SAMPLE_SIZE`` training images.
"""

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from cnnkit.config import default_workers
from cnnkit.data.folder import (
    IN_MEMORY_MAX_SIDE,
    RESCALED_SIDE,
    Listing,
    decode_file,
    folder_listings,
    imagenet_listings,
    warn_skipped,
)
from cnnkit.data.images import ImageSet, channel_stats
from cnnkit.errors import ConfigError, DataError, ImageError
from cnnkit.transforms.augment import Augment, per_image_transform
from cnnkit.transforms.resize import fit_size

SAMPLE_SIZE = 1000  # training images decoded up front for mean, std and colour PCA
PER_IMAGE_STEPS = ("crop", "resized-crop", "flip", "trivialaugment")  # large images only

Batch = tuple[torch.Tensor, torch.Tensor]  # uint8 (N, 3, H, W) images, int64 (N,) labels


def mixed_seed(*numbers: int) -> int:
    """A 63-bit seed from (seed, epoch[, index]); nearby tuples give unrelated seeds."""
    digest = hashlib.blake2b(repr(numbers).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class StreamedImages(Dataset):
    """Keys ``(epoch, index)`` -> (uint8 image, label), or the error text of an
    unreadable file, for ``collate`` to pass on to the main process."""

    def __init__(self, listing: Listing, transform: Callable, seed: int = 0) -> None:
        self.listing, self.transform, self.seed = listing, transform, seed

    def __len__(self) -> int:
        return len(self.listing.files)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int] | str:
        epoch, index = key
        try:
            image = decode_file(self.listing.files[index])
        except ImageError as error:
            return str(error)
        # torchvision's random transforms draw from torch's global generator: seed it
        # per image, and restore it, so that with workers=0 the model's draws
        # (dropout) are not disturbed.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(mixed_seed(self.seed, epoch, index))
            image = self.transform(image)
        return image, self.listing.labels[index]


def collate(items: list) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The readable images stacked, their labels, and the errors of the unreadable."""
    readable = [item for item in items if not isinstance(item, str)]
    problems = [item for item in items if isinstance(item, str)]
    if not readable:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), problems
    images = torch.stack([image for image, _ in readable])
    return images, torch.tensor([label for _, label in readable]), problems


class EpochBatches(Sampler):
    """Batches of keys (epoch, index): ``steps`` slices of a permutation seeded by
    (seed, epoch), as the in-memory path slices its own. Set ``epoch`` before each
    pass; the loader's persistent workers receive the keys, not the epoch."""

    def __init__(self, count: int, batch_size: int, steps: int, seed: int) -> None:
        super().__init__()
        self.count, self.batch_size, self.steps, self.seed = count, batch_size, steps, seed
        self.epoch = 1

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        generator = torch.Generator().manual_seed(mixed_seed(self.seed, self.epoch))
        order = torch.randperm(self.count, generator=generator).tolist()
        for step in range(self.steps):
            chunk = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield [(self.epoch, index) for index in chunk]


def in_order(count: int, batch_size: int) -> list[list[tuple[int, int]]]:
    """Keys of ``count`` images in batches, in order, for decoding without randomness."""
    return [
        [(0, index) for index in range(start, min(start + batch_size, count))]
        for start in range(0, count, batch_size)
    ]


def single_thread_worker(_: int) -> None:
    # Each worker is one core's worth of decoding; torch's intra-op threads would
    # only compete with the other workers and the training step.
    torch.set_num_threads(1)


def make_loader(
    images: StreamedImages,
    batches: Sampler | list,
    workers: int,
    *,
    seed: int,
    pin_memory: bool = False,
    persistent: bool = True,
) -> DataLoader:
    return DataLoader(
        images,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=persistent and workers > 0,
        worker_init_fn=single_thread_worker,
        # The workers' base seed is drawn from this generator, not from torch's global
        # one, whose state (dropout) a checkpoint restores.
        generator=torch.Generator().manual_seed(seed),
    )


def in_fixed_order(listing: Listing, limit: int | None) -> Listing:
    """The first ``limit`` files of a fixed shuffled order (seed 0, as
    ``folder.load_listings`` orders decoded sets), so that a prefix holds every class."""
    order = torch.randperm(len(listing.files), generator=torch.Generator().manual_seed(0))
    chosen = order[:limit].tolist()
    files, labels = [listing.files[i] for i in chosen], [listing.labels[i] for i in chosen]
    return Listing(files, labels, listing.classes)


@dataclass(frozen=True)
class StreamedSet:
    """A folder set listed but not decoded, with a decoded sample of its training split."""

    root: Path
    train: Listing  # in the fixed order, cut to the train limit
    test: Listing
    sample: ImageSet  # the first SAMPLE_SIZE training images at the stored size
    workers: int


def stream_listings(dataset: str) -> tuple[Path, Listing, Listing]:
    """The root, train and test listings of a ``folder:PATH`` or ``imagenet:PATH`` set."""
    for prefix, listings in (("folder:", folder_listings), ("imagenet:", imagenet_listings)):
        if dataset.startswith(prefix):
            root = Path(dataset.removeprefix(prefix)).expanduser()
            return root, *listings(root)
    raise ConfigError(
        f"--stream reads folder:PATH and imagenet:PATH data sets; {dataset!r} is held in memory"
    )


def open_stream(
    dataset: str,
    train_limit: int | None = None,
    test_limit: int | None = None,
    workers: int | None = None,
) -> StreamedSet:
    """List a folder set and decode the sample that stands in for it where statistics
    and image sizes are needed (mean, std, colour PCA, building the model)."""
    root, train, test = stream_listings(dataset)
    train, test = in_fixed_order(train, train_limit), in_fixed_order(test, test_limit)
    workers = default_workers() if workers is None else workers
    return StreamedSet(root, train, test, decode_sample(root, train, workers), workers)


def decode_sample(root: Path, listing: Listing, workers: int) -> ImageSet:
    """The first ``SAMPLE_SIZE`` images at the size the in-memory path stores: their
    own when the first readable one is at most ``IN_MEMORY_MAX_SIDE``, else 256x256."""
    sample = Listing(listing.files[:SAMPLE_SIZE], listing.labels[:SAMPLE_SIZE], listing.classes)
    size = stored_size(root, sample)
    images = StreamedImages(sample, partial(fit_size, size=size))
    loader = make_loader(images, in_order(len(sample.files), 64), workers, seed=0, persistent=False)
    batches = [(x, y) for x, y, _ in loader if len(x)]
    pixels = torch.cat([x for x, _ in batches])
    mean, std = channel_stats(pixels)
    return ImageSet(pixels, torch.cat([y for _, y in batches]), listing.classes, mean, std)


def stored_size(root: Path, sample: Listing) -> tuple[int, int]:
    for path in sample.files:
        try:
            image = decode_file(path)
        except ImageError:
            continue
        small = max(image.shape[-2:]) <= IN_MEMORY_MAX_SIDE
        height, width = image.shape[-2:]
        return (height, width) if small else (RESCALED_SIDE, RESCALED_SIDE)
    raise DataError(f"{root}: none of the first {len(sample.files)} training images can be decoded")


@dataclass
class FolderStream:
    """The two loaders of a run, with their persistent workers, and the batch steps
    that remain for ``train_one_epoch`` after the workers' per-image ones."""

    root: Path
    train_loader: DataLoader
    test_loader: DataLoader
    augment: Augment | None
    skipped: set[str] = field(default_factory=set)

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """Epoch ``epoch``'s uint8 batches, at the stored size (small images) or the
        model's input (large ones)."""
        cast(EpochBatches, self.train_loader.batch_sampler).epoch = epoch
        return self._readable(self.train_loader)

    def test_batches(self) -> Iterator[Batch]:
        """The test split in order, at the stored size (small) or 256/224 of the input."""
        return self._readable(self.test_loader)

    def _readable(self, loader: DataLoader) -> Iterator[Batch]:
        problems = []
        for images, labels, batch_problems in loader:
            problems += batch_problems
            if len(images):
                yield images, labels
        if new := sorted(set(problems) - self.skipped):
            self.skipped.update(new)
            warn_skipped(self.root, new)


def stream_loaders(
    data: StreamedSet,
    augment: Augment | None,
    input_side: int,
    *,
    batch_size: int,
    steps: int,
    eval_batch_size: int,
    seed: int,
    pin_memory: bool,
) -> FolderStream:
    """Training and test loaders for a model with ``input_side`` pixels and the run's
    ``augment``, whose geometric steps move into the workers for large images."""
    steps_named = augment.steps if augment is not None else ()
    if max(data.sample.image_shape[1:]) <= IN_MEMORY_MAX_SIDE:
        stored = partial(fit_size, size=data.sample.image_shape[1:])
        train_transform, test_transform, batched = stored, stored, augment
    else:
        per_image = tuple(s for s in steps_named if s in PER_IMAGE_STEPS)
        train_transform = per_image_transform(per_image, input_side, train=True)
        side = round(input_side * RESCALED_SIDE / 224)  # 256 for 224 (Krizhevsky et al.)
        test_transform = partial(fit_size, size=(side, side))
        rest = tuple(s for s in steps_named if s not in PER_IMAGE_STEPS)
        # The same object's generator and PCA, so the checkpoint of ``augment`` holds it.
        batched = replace(augment, steps=rest) if rest and augment is not None else None
    train_keys = EpochBatches(len(data.train.files), batch_size, steps, seed)
    test_keys = in_order(len(data.test.files), eval_batch_size)
    common: dict[str, Any] = {"pin_memory": pin_memory, "seed": seed}
    return FolderStream(
        data.root,
        make_loader(
            StreamedImages(data.train, train_transform, seed), train_keys, data.workers, **common
        ),
        make_loader(
            StreamedImages(data.test, test_transform, seed), test_keys, data.workers, **common
        ),
        batched,
    )
