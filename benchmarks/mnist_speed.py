"""LeNet-5 on MNIST: cnnkit's trainer against two plain PyTorch loops, in one run.

1. `cnnkit train` as a user runs it (a subprocess; its wall time includes start-up,
   data loading and evaluation).
2. The textbook loop: torchvision's MNIST dataset, Pad/ToTensor/Normalize
   transforms, a shuffling DataLoader, evaluation through a DataLoader.
3. The plain in-memory loop: the whole set as one float tensor, batches sliced
   from a permutation, no DataLoader.

All three train the same model (cnnkit's registry entry) with the same recipe
(SGD, Nesterov momentum, weight decay, one-cycle schedule, same batch size and
epochs) and evaluate on the test set after every epoch. The epoch budget is
fixed in advance; the test set only measures when 99% was first reached.

    python benchmarks/mnist_speed.py [--model lenet5] [--epochs N] [--workers 2]
"""

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch.nn import functional as F
from torchvision import transforms

from cnnkit.analysis import size_report
from cnnkit.config import recipe_for
from cnnkit.data import load_dataset
from cnnkit.data.locate import PACKAGE_FILES
from cnnkit.models import build_model
from cnnkit.train.schedule import one_cycle
from cnnkit.transforms.augment import random_crop


def make_optimizer(model, recipe, steps_per_epoch):
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=True,
    )
    scheduler = one_cycle(optimizer, recipe.epochs * steps_per_epoch, recipe.warmup_fraction)
    return optimizer, scheduler


def summarise(name, start, epochs):
    """epochs: (train_seconds, images, accuracy, elapsed_since_start) per epoch."""
    train_seconds = sum(e[0] for e in epochs)
    to_99 = next((e[3] for e in epochs if e[2] >= 0.99), None)
    return {
        "name": name,
        "images_per_second": sum(e[1] for e in epochs) / train_seconds,
        "seconds_per_epoch": train_seconds / len(epochs),
        "final_accuracy": epochs[-1][2],
        "time_to_99": to_99,
        "wall_seconds": time.perf_counter() - start,
    }


def run_cnnkit(model_name, recipe):
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cnnkit",
                "train",
                model_name,
                "--epochs",
                str(recipe.epochs),
                "--out",
                out,
                "--no-progress",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in (Path(out) / "metrics.jsonl").open()]
    # Time to 99%: the whole process until the end of that epoch's evaluation.
    after = {
        r["epoch"]: sum(x["seconds"] for x in records if x["epoch"] > r["epoch"]) for r in records
    }
    epochs = [
        (r["seconds"], 60000, 1 - r["test_top1_error"], wall - after[r["epoch"]]) for r in records
    ]
    result = summarise("cnnkit train", start, epochs)
    result["images_per_second"] = sum(r["images_per_second"] for r in records) / len(records)
    return result


def textbook(model_name, recipe, workers):
    start = time.perf_counter()
    root = Path(tempfile.mkdtemp())
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for archive in (PACKAGE_FILES / "mnist").glob("*.gz"):
        with gzip.open(archive) as source, open(raw / archive.stem, "wb") as target:
            shutil.copyfileobj(source, target)
    pipeline = transforms.Compose(
        [transforms.Pad(2), transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    train = torchvision.datasets.MNIST(root, train=True, transform=pipeline)
    test = torchvision.datasets.MNIST(root, train=False, transform=pipeline)
    loader = torch.utils.data.DataLoader(
        train, batch_size=recipe.batch_size, shuffle=True, num_workers=workers, drop_last=True
    )
    test_loader = torch.utils.data.DataLoader(test, batch_size=1000, num_workers=workers)
    torch.manual_seed(0)
    model = build_model(model_name)
    optimizer, scheduler = make_optimizer(model, recipe, len(loader))
    epochs = []
    for _ in range(recipe.epochs):
        model.train()
        epoch_start = time.perf_counter()
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        seconds = time.perf_counter() - epoch_start
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                correct += (model(x).argmax(1) == y).sum().item()
        epochs.append(
            (
                seconds,
                len(loader) * recipe.batch_size,
                correct / len(test),
                time.perf_counter() - start,
            )
        )
    shutil.rmtree(root)
    return summarise(f"textbook DataLoader loop ({workers} workers)", start, epochs)


def in_memory(model_name, recipe):
    start = time.perf_counter()
    train, test = load_dataset("mnist")
    train_images = F.pad(train.images, (2, 2, 2, 2))  # uint8, 32x32
    x_test = (F.pad(test.images, (2, 2, 2, 2)).float() / 255 - 0.1307) / 0.3081
    torch.manual_seed(0)
    model = build_model(model_name)
    steps = len(train_images) // recipe.batch_size
    optimizer, scheduler = make_optimizer(model, recipe, steps)
    epochs = []
    for _ in range(recipe.epochs):
        model.train()
        epoch_start = time.perf_counter()
        order = torch.randperm(len(train_images))
        for step in range(steps):
            batch = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            images = train_images[batch]
            if recipe.augment == "shift":  # the recipe's shifts of up to 2 pixels
                images = random_crop(images, 32, 2)
            x = (images.float() / 255 - 0.1307) / 0.3081
            loss = F.cross_entropy(model(x), train.labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        seconds = time.perf_counter() - epoch_start
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_test).argmax(1) == test.labels).float().mean().item()
        epochs.append((seconds, steps * recipe.batch_size, accuracy, time.perf_counter() - start))
    return summarise("plain in-memory loop", start, epochs)


def matmul_peak_gflops(size=2048, repeats=10):
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--epochs", type=int, help="epoch budget [the model's recipe]")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    args = parser.parse_args()
    recipe = recipe_for(args.model)
    if args.epochs:
        recipe = type(recipe)(**{**recipe.__dict__, "epochs": args.epochs})
    model = build_model(args.model)
    connections = size_report(model, model.input_size).totals.connections
    flops_per_image = 3 * 2 * connections  # forward + two backward passes, 2 FLOPs per MAC
    peak = matmul_peak_gflops()
    print(
        f"{args.model}: {connections:,} multiply-adds per image forward; "
        f"{recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.lr}; "
        f"{torch.get_num_threads()} threads; fp32 matmul peak {peak:.0f} GFLOP/s"
    )
    results = [
        run_cnnkit(args.model, recipe),
        in_memory(args.model, recipe),
        textbook(args.model, recipe, args.workers),
    ]
    ours = results[0]
    header = (
        f"{'trainer':42s} {'img/s':>8s} {'s/epoch':>8s} {'%peak':>6s} {'acc':>7s} "
        f"{'to 99%':>8s} {'wall s':>7s} {'speed-up':>8s}"
    )
    print(header)
    for r in results:
        to_99 = f"{r['time_to_99']:.1f}" if r["time_to_99"] else "never"
        share = 100 * r["images_per_second"] * flops_per_image / (peak * 1e9)
        print(
            f"{r['name']:42s} {r['images_per_second']:8,.0f} {r['seconds_per_epoch']:8.2f} "
            f"{share:6.1f} {100 * r['final_accuracy']:6.2f}% {to_99:>8s} "
            f"{r['wall_seconds']:7.1f} {ours['images_per_second'] / r['images_per_second']:7.2f}x"
        )
    print(
        "speed-up = cnnkit's training images/s over the row's; "
        "%peak = training FLOPs/s over the fp32 matmul peak"
    )


if __name__ == "__main__":
    main()
