"""``cnnkit bench``: cnnkit's trainer against two plain PyTorch loops, in one run.

1. ``cnnkit train`` as a user runs it (a subprocess; its wall time includes
   start-up, data loading, evaluation and the report).
2. The plain in-memory loop: the whole set as one tensor, batches sliced from a
   permutation, no DataLoader.
3. The textbook loop: torchvision's ``MNIST`` data set, Pad/ToTensor/Normalize
   transforms and a shuffling ``DataLoader`` with worker processes.

All three train the same model (the registry's) with the same recipe (SGD with
Nesterov momentum, weight decay, one-cycle schedule, batch size, epochs and
augmentation) and test after every epoch. The epoch budget is fixed in advance;
the test set only tells when 99% was first reached. Inference is timed on the
test set in batches of 256, the path of ``cnnkit evaluate`` and ``predict``.
"""

import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit.config import Recipe
from cnnkit.data import ImageSet, load_dataset
from cnnkit.data.locate import PACKAGE_FILES
from cnnkit.models import model_input_size
from cnnkit.models.fitting import build_for_images
from cnnkit.runs import METRICS_NAME
from cnnkit.runtime.inference import flush_denormals, predict_logits
from cnnkit.train.fit import sgd_one_cycle
from cnnkit.train.loop import steps_per_epoch
from cnnkit.transforms import fit_to_input
from cnnkit.transforms.augment import random_crop

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the textbook's constants
MNIST_TRAIN_IMAGES = 60_000
TRAINERS = ("cnnkit", "in-memory", "textbook")


@dataclass(frozen=True)
class TrainerResult:
    name: str
    images_per_second: float  # training only
    seconds_per_epoch: float  # training only
    final_accuracy: float
    time_to_99: float | None  # seconds from the start until the end of that epoch's test
    wall_seconds: float


@dataclass(frozen=True)
class Epoch:
    train_seconds: float
    images: int
    accuracy: float
    elapsed: float  # since the trainer started


def summarise(name: str, epochs: list[Epoch], wall_seconds: float) -> TrainerResult:
    train_seconds = sum(e.train_seconds for e in epochs)
    return TrainerResult(
        name=name,
        images_per_second=sum(e.images for e in epochs) / train_seconds,
        seconds_per_epoch=train_seconds / len(epochs),
        final_accuracy=epochs[-1].accuracy,
        time_to_99=next((e.elapsed for e in epochs if e.accuracy >= 0.99), None),
        wall_seconds=wall_seconds,
    )


def mnist_model(model_name: str) -> tuple[nn.Module, ImageSet, ImageSet]:
    """``model_name`` seeded and built for MNIST as ``cnnkit train`` builds it (at its
    paper's input where padding reaches it, else at 28x28), with both splits."""
    train, test = load_dataset("mnist")
    torch.manual_seed(0)
    return build_for_images(model_name, train.image_shape, len(train.classes)), train, test


def run_cnnkit_train(model_name: str, recipe: Recipe) -> TrainerResult:
    """The real command in a subprocess, timed from outside."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "-m", "cnnkit", "train", model_name, "--epochs", str(recipe.epochs),
             "--out", out, "--no-progress"],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in (Path(out) / METRICS_NAME).open()]
    # An epoch ended when the process ended minus the later epochs' time.
    later = [sum(r["seconds"] for r in records[i + 1 :]) for i in range(len(records))]
    images = steps_per_epoch(MNIST_TRAIN_IMAGES, recipe.batch_size) * recipe.batch_size
    epochs = [
        Epoch(images / r["images_per_second"], images, 1 - r["test_top1_error"], wall - rest)
        for r, rest in zip(records, later, strict=True)
    ]
    return summarise("cnnkit train", epochs, wall)


def train_epochs(
    model: nn.Module,
    recipe: Recipe,
    batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    steps: int,  # per epoch
    accuracy: Callable[[nn.Module], float],
    start: float,
) -> list[Epoch]:
    """The plain training loop both references share; ``batches()`` yields one epoch."""
    optimizer, scheduler = sgd_one_cycle(model, recipe, recipe.epochs * steps)
    epochs = []
    for _ in range(recipe.epochs):
        model.train()
        epoch_start = time.perf_counter()
        images = 0
        for x, y in batches():
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            images += len(y)
        seconds = time.perf_counter() - epoch_start
        model.eval()
        with torch.no_grad():
            epochs.append(Epoch(seconds, images, accuracy(model), time.perf_counter() - start))
    return epochs


def run_in_memory(model_name: str, recipe: Recipe) -> TrainerResult:
    """What a careful user writes by hand: uint8 tensors in memory, sliced batches."""
    start = time.perf_counter()
    flush_denormals()
    model, train, test = mnist_model(model_name)
    size = model_input_size(model)[-1]
    train_images = fit_to_input(train.images, model_input_size(model))  # uint8, padded
    x_test = (
        fit_to_input(test.images, model_input_size(model)).float() / 255 - MNIST_MEAN
    ) / MNIST_STD
    steps = len(train_images) // recipe.batch_size

    def batches():
        order = torch.randperm(len(train_images))
        for step in range(steps):
            batch = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            images = train_images[batch]
            if recipe.augment == "shift":  # the recipe's shifts of up to 2 pixels
                images = random_crop(images, size, 2)
            yield (images.float() / 255 - MNIST_MEAN) / MNIST_STD, train.labels[batch]

    def accuracy(model: nn.Module) -> float:
        return (model(x_test).argmax(1) == test.labels).float().mean().item()

    epochs = train_epochs(model, recipe, batches, steps, accuracy, start)
    return summarise("plain in-memory loop", epochs, time.perf_counter() - start)


def run_textbook(model_name: str, recipe: Recipe, workers: int) -> TrainerResult:
    """torchvision's ``MNIST`` with per-image transforms and a ``DataLoader``."""
    import torchvision
    from torchvision import transforms

    start = time.perf_counter()
    root = Path(tempfile.mkdtemp())
    try:
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for archive in (PACKAGE_FILES / "mnist").glob("*.gz"):
            with gzip.open(archive) as source, open(raw / archive.stem, "wb") as target:
                shutil.copyfileobj(source, target)
        model, _, _ = mnist_model(model_name)
        size = model_input_size(model)[-1]
        pad = [transforms.Pad((size - 28) // 2)]  # 28 -> 32 for LeNet-5, none for 28
        shift = [transforms.RandomCrop(size, padding=2)] if recipe.augment == "shift" else []
        tensor = [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
        train = torchvision.datasets.MNIST(
            root, train=True, transform=transforms.Compose(pad + shift + tensor)
        )
        test = torchvision.datasets.MNIST(
            root, train=False, transform=transforms.Compose(pad + tensor)
        )
        loader = torch.utils.data.DataLoader(
            train, batch_size=recipe.batch_size, shuffle=True, num_workers=workers, drop_last=True
        )
        test_loader = torch.utils.data.DataLoader(test, batch_size=1000, num_workers=workers)

        def accuracy(model: nn.Module) -> float:
            correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test_loader)
            return correct / len(test)

        epochs = train_epochs(model, recipe, lambda: loader, len(loader), accuracy, start)
    finally:
        shutil.rmtree(root)
    name = f"textbook DataLoader loop ({workers} workers)"
    return summarise(name, epochs, time.perf_counter() - start)


def inference_speed(model_name: str, repeats: int = 3) -> float:
    """Test images per second through ``predict_logits`` (batches of 256), best of
    ``repeats`` passes over MNIST's test set; the weights do not change the time."""
    model, _, test = mnist_model(model_name)
    images = fit_to_input(test.images, model_input_size(model))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predict_logits(model, images, mean=(MNIST_MEAN,), std=(MNIST_STD,))
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """fp32 GFLOP/s of a large square matrix product: this machine's practical peak."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def render(results: list[TrainerResult], flops_per_image: float, peak_gflops: float) -> str:
    """The table: the first row is cnnkit's, the speed-up is its images/s over each row's."""
    from tabulate import tabulate

    ours = results[0].images_per_second
    rows = [
        [
            r.name,
            f"{r.images_per_second:,.0f}",
            f"{r.seconds_per_epoch:.2f}",
            f"{100 * r.images_per_second * flops_per_image / (peak_gflops * 1e9):.1f}",
            f"{100 * r.final_accuracy:.2f}%",
            f"{r.time_to_99:.1f}" if r.time_to_99 else "never",
            f"{r.wall_seconds:.1f}",
            f"{ours / r.images_per_second:.2f}x",
        ]
        for r in results
    ]
    headers = ["trainer", "img/s", "s/epoch", "%peak", "accuracy", "to 99% (s)", "wall s",
               "speed-up"]  # fmt: skip
    return tabulate(rows, headers=headers, disable_numparse=True, colalign=["left"] + ["right"] * 7)


@dataclass(frozen=True)
class BenchReport:
    model: str
    recipe: Recipe
    connections: int  # multiply-adds of one image's forward pass
    threads: int
    peak_gflops: float  # fp32 matmul, this machine's practical peak
    results: list[TrainerResult]
    inference_images_per_second: float

    @property
    def flops_per_image(self) -> float:
        """Forward and two backward products per training image, 2 FLOPs per MAC."""
        return 3 * 2 * self.connections


def run_benchmark(
    model_name: str,
    epochs: int | None,
    trainers: list[str],
    workers: int,
    on_trainer: Callable[[str], None] | None = None,
) -> BenchReport:
    """Train ``model_name`` on MNIST with each of ``trainers`` (of ``TRAINERS``), one
    after the other, and time inference; ``on_trainer`` hears each one's name first."""
    from cnnkit.analysis import size_report
    from cnnkit.config import recipe_for, with_overrides
    from cnnkit.errors import UnknownNameError

    unknown = [name for name in trainers if name not in TRAINERS] or ([] if trainers else [""])
    if unknown:
        raise UnknownNameError.of("trainer", unknown[0], TRAINERS)
    recipe = with_overrides(recipe_for(model_name), epochs=epochs)
    network, _, _ = mnist_model(model_name)
    connections = size_report(network, model_input_size(network)).totals.connections
    runs = {
        "cnnkit": lambda: run_cnnkit_train(model_name, recipe),
        "in-memory": lambda: run_in_memory(model_name, recipe),
        "textbook": lambda: run_textbook(model_name, recipe, workers),
    }
    results = []
    for name in trainers:
        if on_trainer is not None:
            on_trainer(name)
        results.append(runs[name]())
    return BenchReport(
        model_name,
        recipe,
        connections,
        torch.get_num_threads(),
        matmul_peak_gflops(),
        results,
        inference_speed(model_name),
    )
