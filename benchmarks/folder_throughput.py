"""Folder-data throughput: images per second decoded and augmented (crop + flip).

Three pipelines on the same files, with the same worker count:
1. cnnkit's loader: ``data.folder.folder_loader`` (torchvision.io decoding of the file
   bytes, per-image torchvision v2 transforms on uint8 tensors, batches normalised as
   one tensor);
2. plain torchvision: ``ImageFolder`` (PIL decoding) + PIL transforms + ToTensor +
   Normalize, through a DataLoader;
3. cnnkit in memory (what ``--dataset folder:PATH`` trains on for 32-pixel images):
   the one-off decode into an ImageSet, then per-epoch batched crop + flip + normalise.

    python benchmarks/folder_throughput.py /tmp/cifar10-jpeg --limit 10000 --workers 2
"""

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torchvision import datasets
from torchvision import transforms as T

from cnnkit.data.folder import folder_loader, load_folder
from cnnkit.transforms import normalize
from cnnkit.transforms.augment import build_augment, per_image_transform

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)  # CIFAR-10's, to the 2nd digit


def subset_tree(root: Path, limit: int, into: Path) -> Path:
    """``into/train/<class>/`` and ``into/test/<class>/`` linked to the first
    limit / (10 * classes) files of each class (test: a tenth as many)."""
    classes = sorted(p.name for p in (root / "train").iterdir())
    for split, count in (("train", limit // len(classes)), ("test", limit // 10 // len(classes))):
        for name in classes:
            (into / split / name).mkdir(parents=True)
            for path in sorted((root / split / name).iterdir())[:count]:
                (into / split / name / path.name).symlink_to(path.resolve())
    return into


def timed(loader) -> float:
    start, count = time.perf_counter(), 0
    for images, _ in loader:
        count += len(images)
    return count / (time.perf_counter() - start)


def cnnkit_loader(train: Path, size: int, workers: int, batch: int) -> float:
    transform = per_image_transform(("crop", "flip"), size, rescale=False)
    loader = folder_loader(train, transform, batch_size=batch, workers=workers)
    return timed((normalize(images, MEAN, STD), labels) for images, labels in loader)


def torchvision_loader(train: Path, size: int, workers: int, batch: int) -> float:
    transform = T.Compose(
        [T.RandomCrop(size, padding=size // 8), T.RandomHorizontalFlip(), T.ToTensor(),
         T.Normalize(MEAN, STD)]
    )  # fmt: skip
    dataset = datasets.ImageFolder(str(train), transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch, shuffle=True, num_workers=workers)
    return timed(loader)


def cnnkit_in_memory(root: Path, size: int, batch: int) -> tuple[float, float]:
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
    parser.add_argument(
        "--threads", type=int, help="torch threads in the main process [torch's default]"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy machine, 1 avoids OpenMP spin-waits
    torch.manual_seed(0)
    random.seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        root = subset_tree(args.root, args.limit, Path(scratch) / "subset")
        train = root / "train"
        common = (args.size, args.workers, args.batch_size)
        cnnkit_loader(train, *common)  # warm the page cache for both
        rows = [
            ("cnnkit folder_loader (torchvision.io)", cnnkit_loader(train, *common)),
            ("torchvision ImageFolder + PIL", torchvision_loader(train, *common)),
        ]
        decoded, augmented = cnnkit_in_memory(root, args.size, args.batch_size)
        shutil.rmtree(root)
    print(f"{args.limit} images, {args.workers} workers, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    for name, rate in rows:
        print(f"{name:44s} {rate:10,.0f} images/s (decode + crop + flip + normalise)")
    print(f"{'cnnkit in memory: one-off decode':44s} {decoded:10,.0f} images/s")
    print(f"{'cnnkit in memory: batched crop+flip+norm':44s} {augmented:10,.0f} images/s per epoch")


if __name__ == "__main__":
    main()
