"""Embedding throughput: ``cnnkit index build`` on a folder of JPEGs against the
textbook loop, same model, same files, same batch size, same number of workers.

1. ``cnnkit index build CHECKPOINT FOLDER --out INDEX`` as a user runs it (a
   subprocess); its own figure (images embedded per second, from the first batch
   decoded to the last shard written) and the command's wall time. With
   ``--dataset-root ROOT`` also ``--dataset folder:ROOT --split train``, which embeds
   the folder data set as training decoded it (from its cache, once training or an
   earlier command has decoded it).
2. The textbook loop: torchvision's ``ImageFolder`` (PIL decoding) with ``ToTensor``
   and ``Normalize``, a ``DataLoader`` with the same workers, and
   ``model.eval()`` + ``torch.no_grad()`` + ``forward_features`` per batch, the
   features L2-normalised (what an index needs; it keeps no class scores).

    python benchmarks/search_embedding.py /tmp/search-cifar-flip-run /tmp/cifar/train --rounds 3

Each round runs both, cnnkit first; ``--rounds`` shows how much a shared machine's
figures move between runs.
"""

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torchvision import datasets
from torchvision import transforms as T

from cnnkit.bench.timing import run_cnnkit
from cnnkit.errors import CnnkitError
from cnnkit.runs import load_run


def cnnkit_build(
    checkpoint: Path, sources: list[str], workers: int, batch: int, out: Path | None
) -> tuple[float, float]:
    """cnnkit's own images/s and the command's wall seconds; the index in ``out``."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            result = run_cnnkit(
                "index", "build", str(checkpoint), *sources,
                "--out", str(out or f"{scratch}/index"), "--workers", str(workers),
                "--batch-size", str(batch), "--backend", "exact", "--no-progress",
            )  # fmt: skip
        except CnnkitError as error:
            sys.exit(str(error))
    rate = re.search(r"\(([\d,]+) img/s", result.stdout)
    assert rate is not None, result.stdout  # the command's summary line names its rate
    return float(rate.group(1).replace(",", "")), result.wall_seconds


def textbook(checkpoint: Path, folder: Path, workers: int, batch: int) -> tuple[float, int]:
    run = load_run(checkpoint, "cpu")
    model, record = run.model, run.record
    transform = T.Compose([T.ToTensor(), T.Normalize(record.mean, record.std)])
    dataset = datasets.ImageFolder(str(folder), transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers)
    model.eval()
    count, start = 0, time.perf_counter()
    with torch.no_grad():
        for x, _ in loader:
            F.normalize(model.forward_features(x), dim=1)
            count += len(x)
    return count / (time.perf_counter() - start), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("folder", type=Path, help="FOLDER/<class>/*.jpg")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=1, help="measure both this many times")
    parser.add_argument("--out", type=Path, help="keep cnnkit's index here [a temporary one]")
    parser.add_argument("--dataset-root", type=Path, help="also index folder:ROOT's train split")
    args = parser.parse_args()
    common = (args.checkpoint, args.folder, args.workers, args.batch_size)
    sources = [str(args.folder)]
    for path in args.folder.rglob("*.*"):  # both then read the files from the page cache
        path.read_bytes()
    print(f"batch {args.batch_size}, {args.workers} workers, {os.cpu_count()} cores, "
          f"torch {torch.__version__}")  # fmt: skip
    ratios = []
    for number in range(1, args.rounds + 1):
        out = args.out if number == args.rounds else None  # the last round's index is kept
        cnnkit_rate, wall = cnnkit_build(args.checkpoint, sources, *common[2:], out)
        textbook_rate, count = textbook(*common)
        ratios.append(cnnkit_rate / textbook_rate)
        print(f"round {number}: {count:,} files; cnnkit index build {cnnkit_rate:,.0f} img/s "
              f"(command wall time {wall:.1f} s), textbook loop {textbook_rate:,.0f} img/s, "
              f"speed-up {ratios[-1]:.2f}x")  # fmt: skip
    if args.rounds > 1:
        print(f"speed-up: median {statistics.median(ratios):.2f}x, "
              f"range {min(ratios):.2f}x to {max(ratios):.2f}x")  # fmt: skip
    if args.dataset_root:
        dataset = ["--dataset", f"folder:{args.dataset_root}", "--split", "train"]
        cached_rate, cached_wall = cnnkit_build(args.checkpoint, dataset, *common[2:], None)
        print(f"cnnkit index build --dataset folder:{args.dataset_root} (decoded cache) "
              f"{cached_rate:,.0f} img/s (command wall time {cached_wall:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
