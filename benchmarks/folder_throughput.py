"""Folder-data throughput: images per second decoded and augmented (crop + flip).

Pipelines on the same files:
1. cnnkit streaming (``--stream``, ``data.stream``): torchvision.io decoding, per-image
   rescale + crop + flip in the workers for large images (all on the batch for images
   of at most 64 pixels), then the batched steps and normalisation as ``train_one_epoch``
   applies them. With no workers (everything in this process, on one core: the rate
   per core), once up to the uint8 batches a GPU would receive and once with the
   normalisation to float on the CPU; then with ``--workers`` worker processes.
2. plain torchvision: ``ImageFolder`` (PIL decoding) + PIL transforms + ToTensor +
   Normalize, through a DataLoader with ``--workers`` workers.
3. cnnkit in memory (what ``--dataset folder:PATH`` trains on without ``--stream``):
   the one-off decode into an ImageSet, then per-epoch batched crop + flip + normalise.

With ``--upscale WxH`` the files are first rewritten at that size (JPEG quality 90),
to stand in for ImageNet photos (about 500x375) on the 256 -> 224 path. Upscaled
32-pixel images are smooth and compress to ~17 KiB, where ImageNet's JPEGs average
~110 KiB, and decoding time grows with the compressed size; ``--grain SIGMA`` adds
Gaussian noise of that many grey levels first (20: ~94 KiB per file):

    python benchmarks/folder_throughput.py /tmp/cifar10-jpeg --limit 10000 --workers 2
    python benchmarks/folder_throughput.py /tmp/cifar10-jpeg --limit 500 --workers 2 \\
        --upscale 500x375 --grain 20 --size 224
"""

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import datasets
from torchvision import transforms as T

from cnnkit.data.folder import load_folder
from cnnkit.data.stream import open_stream, stream_loaders
from cnnkit.trainer.loop import steps_per_epoch
from cnnkit.transforms import normalize
from cnnkit.transforms.augment import build_augment

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)  # CIFAR-10's, to the 2nd digit
EPOCHS = 4  # streaming: the first starts the workers and is not timed; the best of the rest
# counts, the pass least disturbed by other work on a shared machine


def subset_tree(
    root: Path, limit: int, into: Path, upscale: tuple[int, int] | None, grain: float = 0
) -> Path:
    """``into/train/<class>/`` and ``into/test/<class>/`` with the first
    limit / (10 * classes) files of each class (test: a tenth as many), linked, or
    rewritten at ``upscale`` (width, height) with ``grain`` noise as JPEG quality 90."""
    noise = np.random.default_rng(0)
    classes = sorted(p.name for p in (root / "train").iterdir())
    for split, count in (("train", limit // len(classes)), ("test", limit // 10 // len(classes))):
        for name in classes:
            (into / split / name).mkdir(parents=True)
            for path in sorted((root / split / name).iterdir())[: max(1, count)]:
                target = into / split / name / path.name
                if upscale is None:
                    target.symlink_to(path.resolve())
                else:
                    image = Image.open(path).convert("RGB").resize(upscale, Image.BICUBIC)
                    pixels = np.asarray(image) + noise.normal(0, grain, (*upscale[::-1], 3))
                    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
                    image.save(target.with_suffix(".jpg"), quality=90)
    return into


def timed(batches) -> float:
    start, count = time.perf_counter(), 0
    for images, _ in batches:
        count += len(images)
    return count / (time.perf_counter() - start)


def streamed(root: Path, size: int, workers: int, batch: int, normalise: bool = True) -> float:
    """Images per second of the streaming pipeline's fastest epoch after the first."""
    data = open_stream(f"folder:{root}", workers=workers)
    augment = build_augment("crop,flip", data.sample.images, size, len(data.sample.classes))
    count = len(data.train.files)
    stream = stream_loaders(
        data, augment, size, batch_size=batch, steps=steps_per_epoch(count, batch),
        eval_batch_size=batch, seed=0, pin_memory=False,
    )  # fmt: skip

    def epoch(number: int):
        for images, labels in stream.train_batches(number):
            if stream.augment is not None:
                images, labels = stream.augment(images, labels)
            yield (normalize(images, MEAN, STD) if normalise else images), labels

    timed(epoch(1))
    rates = [timed(epoch(number)) for number in range(2, EPOCHS + 1)]
    return max(rates)


def torchvision_loader(train: Path, size: int, workers: int, batch: int) -> float:
    crop = [T.Resize(round(size * 256 / 224)), T.CenterCrop(round(size * 256 / 224))]
    transform = T.Compose(
        [*(crop if size > 64 else []), T.RandomCrop(size, padding=size // 8 if size <= 64 else 0),
         T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)]
    )  # fmt: skip
    dataset = datasets.ImageFolder(str(train), transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch, shuffle=True, num_workers=workers)
    return timed(loader)


def in_memory(root: Path, size: int, batch: int) -> tuple[float, float]:
    start = time.perf_counter()
    train_set, test_set = load_folder(root, cache=False)
    decoded = (len(train_set) + len(test_set)) / (time.perf_counter() - start)
    augment = build_augment("crop,flip", train_set.images, size, len(train_set.classes))
    start = time.perf_counter()
    order = torch.randperm(len(train_set))
    for i in range(0, len(order), batch):
        index = order[i : i + batch]
        images, _ = augment(train_set.images[index], train_set.labels[index])
        normalize(images, MEAN, STD)
    return decoded, len(order) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder with train/<class>/ and test/<class>/")
    parser.add_argument("--limit", type=int, default=10000, help="training images to use")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--size", type=int, default=32, help="crop side in pixels")
    parser.add_argument("--upscale", help="rewrite the images at WxH first, e.g. 500x375")
    parser.add_argument("--grain", type=float, default=0, help="noise for --upscale [0]")
    parser.add_argument(
        "--threads", type=int, help="torch threads in the main process [torch's default]"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy machine, 1 avoids OpenMP spin-waits
    upscale = tuple(int(side) for side in args.upscale.split("x")) if args.upscale else None
    torch.manual_seed(0)
    random.seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        root = subset_tree(args.root, args.limit, Path(scratch) / "subset", upscale, args.grain)
        train = root / "train"
        files = list(train.rglob("*.*"))
        kib = sum(os.path.getsize(path) for path in files) / len(files) / 1024
        common = (args.size, args.workers, args.batch_size)
        torchvision_loader(train, *common)  # warm the page cache
        rows = [
            (
                "cnnkit stream, 1 core, uint8 batches",
                streamed(root, args.size, 0, *common[2:], False),
            ),
            ("cnnkit stream, 1 core, + normalise", streamed(root, args.size, 0, args.batch_size)),
            (f"cnnkit stream, {args.workers} workers, + normalise", streamed(root, *common)),
            (f"torchvision + PIL, {args.workers} workers", torchvision_loader(train, *common)),
        ]
        decoded, augmented = in_memory(root, args.size, args.batch_size)
        shutil.rmtree(root)
    print(f"{len(files)} training images of {kib:.1f} KiB on average, crop {args.size}, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print("images/s of decode + crop + flip (+ normalise to float):")
    for name, rate in rows:
        print(f"{name:46s} {rate:10,.0f}")
        if name.startswith(f"cnnkit stream, {args.workers}"):
            print(f"{'  per worker':46s} {rate / max(1, args.workers):10,.0f}")
    print(f"{'cnnkit in memory: one-off decode':46s} {decoded:10,.0f}")
    print(f"{'cnnkit in memory: batched crop+flip+norm':46s} {augmented:10,.0f} per epoch")


if __name__ == "__main__":
    main()
