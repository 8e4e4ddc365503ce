"""``cnnkit bench``: cnnkit's trainer against plain PyTorch loops and two public MNIST
recipes, in one run, judged by time to accuracy.

1. ``cnnkit train`` as a user runs it (a subprocess; its wall time includes
   start-up, data loading, evaluation and the report).
2. The plain in-memory loop: the whole set as one tensor, batches sliced from a
   permutation, no DataLoader.
3. The textbook loop: torchvision's ``MNIST`` data set, Pad/ToTensor/Normalize
   transforms and a shuffling ``DataLoader`` with worker processes.
4. The pytorch/examples recipe (``cnnkit.bench.pytorch_examples``): its own network,
   Adadelta and StepLR, in a subprocess, for ``reference_epochs`` epochs.
5. The fastest published one-epoch recipe (``cnnkit.bench.train_mnist_fast``): its own
   small network, Adam and one-cycle on one normalised tensor, in a subprocess.

The first three train the same model (the registry's) with the same recipe (its
optimiser and schedule, batch size, epochs and augmentation); every trainer tests after
every epoch. The epoch budgets are fixed in advance; the test set only tells when each
accuracy was first passed. Times to an accuracy run from the trainer's launch to the
end of the test that first showed it; each reference's accuracy after its first epoch
(the second reference's whole result) is a bar cnnkit must pass sooner. With several
seeds every trainer but the in-process loops runs once per seed, and a trainer's epoch
is the seeds' mean accuracy at their mean time. Inference is timed on the test set in
batches of 256, the path of ``cnnkit evaluate`` and ``predict``.
"""

import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit.bench.timing import run_cnnkit
from cnnkit.config import Recipe
from cnnkit.data import ImageSet, load_dataset
from cnnkit.data.locate import PACKAGE_FILES
from cnnkit.data.mnist import MNIST_MEAN, MNIST_STD
from cnnkit.models import Classifier
from cnnkit.models.fitting import build_for_images
from cnnkit.runs import read_metrics
from cnnkit.runtime.inference import flush_denormals, predict_logits
from cnnkit.trainer import build_optimizer, steps_per_epoch
from cnnkit.transforms import fit_to_input
from cnnkit.transforms.augment import random_crop

MNIST_TRAIN_IMAGES, MNIST_TEST_IMAGES = 60_000, 10_000
TRAINERS = ("cnnkit", "in-memory", "textbook", "pytorch-examples", "train-mnist-fast")
REFERENCES = ("pytorch-examples", "train-mnist-fast")  # public recipes with their own nets
ACCURACIES = (0.983, 0.990)  # one epoch of pytorch/examples here; the 99% bar


@dataclass(frozen=True)
class Limits:
    """The first ``train`` training and ``test`` test images (all when ``None``)."""

    train: int | None = None
    test: int | None = None

    @property
    def train_images(self) -> int:
        return min(self.train or MNIST_TRAIN_IMAGES, MNIST_TRAIN_IMAGES)

    def cli_options(self) -> list[str]:
        train = ["--train-limit", str(self.train)] if self.train else []
        return train + (["--test-limit", str(self.test)] if self.test else [])


@dataclass(frozen=True)
class Epoch:
    train_seconds: float
    images: int
    accuracy: float
    elapsed: float  # since the trainer was launched, at the end of this epoch's test


@dataclass(frozen=True)
class TrainerResult:
    name: str
    epochs: tuple[Epoch, ...]
    wall_seconds: float
    connections: int = 0  # of one image's forward pass when not the benchmarked model's
    seeds: int = 1
    lowest_accuracy: float | None = None  # the worst seed's final accuracy (several seeds)
    reference: bool = False  # a public recipe, whose first epoch's accuracy is a bar

    @property
    def images_per_second(self) -> float:  # training only
        return sum(e.images for e in self.epochs) / sum(e.train_seconds for e in self.epochs)

    @property
    def seconds_per_epoch(self) -> float:  # training only
        return sum(e.train_seconds for e in self.epochs) / len(self.epochs)

    @property
    def final_accuracy(self) -> float:
        return self.epochs[-1].accuracy

    def time_to(self, accuracy: float) -> float | None:
        """Seconds from launch until a test first showed ``accuracy``; None if never."""
        return next((e.elapsed for e in self.epochs if e.accuracy >= accuracy), None)


def over_seeds(runs: list[TrainerResult]) -> TrainerResult:
    """One result for the runs of one trainer with different seeds: each epoch the mean
    of theirs (accuracy, training seconds, time from launch), the lowest final accuracy
    beside it."""
    first = runs[0]
    if len(runs) == 1:
        return first
    epochs = tuple(
        Epoch(
            statistics.mean(e.train_seconds for e in same),
            same[0].images,
            statistics.mean(e.accuracy for e in same),
            statistics.mean(e.elapsed for e in same),
        )
        for same in zip(*(run.epochs for run in runs), strict=True)
    )
    return TrainerResult(
        first.name,
        epochs,
        statistics.mean(run.wall_seconds for run in runs),
        first.connections,
        len(runs),
        min(run.final_accuracy for run in runs),
        first.reference,
    )


def mnist_model(
    model_name: str, limits: Limits = Limits()
) -> tuple[Classifier, ImageSet, ImageSet]:
    """``model_name`` seeded and built for MNIST as ``cnnkit train`` builds it (at its
    paper's input where padding reaches it, else at 28x28), with both splits."""
    train, test = load_dataset("mnist")
    torch.manual_seed(0)
    model = build_for_images(model_name, train.image_shape, len(train.classes))
    return model, train.subset(limits.train_images), test.subset(limits.test or len(test))


def run_cnnkit_train(
    model_name: str, recipe: Recipe, limits: Limits, seed: int = 0
) -> TrainerResult:
    """The real command in a subprocess, timed from outside (no report drawn)."""
    with tempfile.TemporaryDirectory() as out:
        wall = run_cnnkit(
            "train", model_name, "--epochs", str(recipe.epochs), "--seed", str(seed),
            "--out", out, "--no-progress", "--no-report", *limits.cli_options(),
        ).wall_seconds  # fmt: skip
        records = read_metrics(Path(out))
    # An epoch ended when the process ended minus the later epochs' time.
    later = [sum(r.seconds for r in records[i + 1 :]) for i in range(len(records))]
    images = steps_per_epoch(limits.train_images, recipe.batch_size) * recipe.batch_size
    epochs = tuple(
        Epoch(images / r.images_per_second, images, r.test_accuracy, wall - rest)
        for r, rest in zip(records, later, strict=True)
    )
    return TrainerResult("cnnkit train", epochs, wall)


def train_epochs(
    model: nn.Module,
    recipe: Recipe,
    batches: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    steps: int,  # per epoch
    accuracy: Callable[[nn.Module], float],
    start: float,
) -> tuple[Epoch, ...]:
    """The plain training loop both references share; ``batches()`` yields one epoch."""
    optimizer, scheduler = build_optimizer(model, recipe, steps)
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
    return tuple(epochs)


def run_in_memory(model_name: str, recipe: Recipe, limits: Limits) -> TrainerResult:
    """What a careful user writes by hand: uint8 tensors in memory, sliced batches."""
    start = time.perf_counter()
    flush_denormals()
    model, train, test = mnist_model(model_name, limits)
    size = model.input_size[-1]
    train_images = fit_to_input(train.images, model.input_size)  # uint8, padded
    x_test = (fit_to_input(test.images, model.input_size).float() / 255 - MNIST_MEAN) / MNIST_STD
    steps = steps_per_epoch(len(train_images), recipe.batch_size)

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
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
    return TrainerResult("plain in-memory loop", epochs, time.perf_counter() - start)


@contextmanager
def torchvision_mnist_root() -> Iterator[Path]:
    """A temporary folder with MNIST's raw files where torchvision's ``MNIST`` looks."""
    root = Path(tempfile.mkdtemp())
    try:
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for archive in (PACKAGE_FILES / "mnist").glob("*.gz"):
            with gzip.open(archive) as source, open(raw / archive.stem, "wb") as target:
                shutil.copyfileobj(source, target)
        yield root
    finally:
        shutil.rmtree(root)


def run_textbook(model_name: str, recipe: Recipe, workers: int, limits: Limits) -> TrainerResult:
    """torchvision's ``MNIST`` with per-image transforms and a ``DataLoader``."""
    import torchvision
    from torchvision import transforms

    start = time.perf_counter()
    with torchvision_mnist_root() as root:
        model, _, _ = mnist_model(model_name)
        size = model.input_size[-1]
        pad = [transforms.Pad((size - 28) // 2)]  # 28 -> 32 for LeNet-5, none for 28
        shift = [transforms.RandomCrop(size, padding=2)] if recipe.augment == "shift" else []
        tensor = [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
        train: torch.utils.data.Dataset = torchvision.datasets.MNIST(
            root, train=True, transform=transforms.Compose(pad + shift + tensor)
        )
        test: torch.utils.data.Dataset = torchvision.datasets.MNIST(
            root, train=False, transform=transforms.Compose(pad + tensor)
        )
        train = torch.utils.data.Subset(train, range(limits.train_images))
        test = torch.utils.data.Subset(test, range(limits.test or MNIST_TEST_IMAGES))
        loader = torch.utils.data.DataLoader(
            train, batch_size=recipe.batch_size, shuffle=True, num_workers=workers, drop_last=True
        )
        test_loader = torch.utils.data.DataLoader(test, batch_size=1000, num_workers=workers)

        def accuracy(model: nn.Module) -> float:
            correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test_loader)
            return correct / len(test_loader.dataset)  # type: ignore[arg-type]

        epochs = train_epochs(model, recipe, lambda: loader, len(loader), accuracy, start)
    name = f"textbook DataLoader loop ({workers} workers)"
    return TrainerResult(name, epochs, time.perf_counter() - start)


def run_reference_script(name: str, command: list[str], network: nn.Module) -> TrainerResult:
    """A reference recipe's script (``python -m ...``) as its own process, timed from its
    launch; it prints a JSON line per epoch (``pytorch_examples``, ``train_mnist_fast``)."""
    from cnnkit.analysis import size_report

    launched, start = time.time(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", *command], check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in done.stdout.splitlines()]
    result = tuple(
        Epoch(r["train_seconds"], r["images"], r["accuracy"], r["time"] - launched) for r in records
    )
    connections = size_report(network, (1, 28, 28)).totals.connections
    return TrainerResult(name, result, wall, connections, reference=True)


def run_pytorch_examples(epochs: int, limits: Limits, seed: int) -> TrainerResult:
    """The pytorch/examples recipe, on torchvision's ``MNIST`` from the shipped files;
    ``seed`` 0 is the script's own seed."""
    from cnnkit.bench.pytorch_examples import SEED, ExamplesNet

    with torchvision_mnist_root() as root:
        command = ["cnnkit.bench.pytorch_examples", str(root), "--epochs", str(epochs)]
        return run_reference_script(
            "pytorch/examples MNIST",
            command + ["--seed", str(SEED + seed), *limits.cli_options()],
            ExamplesNet(),
        )


def run_train_mnist_fast(limits: Limits, seed: int) -> TrainerResult:
    """The train_mnist_fast recipe: one epoch, its data one tensor read from the shipped files."""
    from cnnkit.bench.train_mnist_fast import FastNet

    command = ["cnnkit.bench.train_mnist_fast", "--seed", str(seed), *limits.cli_options()]
    return run_reference_script("tuomaso/train_mnist_fast", command, FastNet())


def inference_speed(model_name: str, repeats: int = 3) -> float:
    """Test images per second through ``predict_logits`` (batches of 256), best of
    ``repeats`` passes over MNIST's test set; the weights do not change the time."""
    model, _, test = mnist_model(model_name)
    images = fit_to_input(test.images, model.input_size)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predict_logits(model, images, mean=(MNIST_MEAN,), std=(MNIST_STD,))
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """fp32 GFLOP/s of a large square matrix product, the fastest of ``repeats`` (the
    least disturbed by other work): this machine's practical peak."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def seconds(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "never"


def ratio(theirs: float | None, ours: float | None) -> str:
    """How many times as long the row took as the first row ("-": one never got there)."""
    return f"{theirs / ours:.2f}x" if theirs is not None and ours else "-"


@dataclass(frozen=True)
class BenchReport:
    model: str
    recipe: Recipe
    connections: int  # multiply-adds of one image's forward pass
    threads: int
    peak_gflops: float  # fp32 matmul, this machine's practical peak
    results: list[TrainerResult]
    inference_images_per_second: float

    def percent_of_peak(self, result: TrainerResult) -> float:
        """Forward and two backward products per training image, 2 FLOPs per MAC."""
        flops_per_image = 3 * 2 * (result.connections or self.connections)
        return 100 * result.images_per_second * flops_per_image / (self.peak_gflops * 1e9)

    @property
    def bars(self) -> tuple[float, ...]:
        """The accuracies timed: ``ACCURACIES`` and each reference's after its first epoch."""
        return ACCURACIES + tuple(r.epochs[0].accuracy for r in self.results if r.reference)


def render(report: BenchReport) -> str:
    """The table: the first row is the one the ratios divide by (cnnkit's when it ran);
    "img/s ratio" is its images/s over each row's, "later" each row's time to an
    accuracy over its time (2.00x: the row took twice as long)."""
    from tabulate import tabulate

    ours, bars = report.results[0], report.bars
    rows = [
        [
            r.name,
            f"{r.images_per_second:,.0f}",
            f"{r.seconds_per_epoch:.2f}",
            f"{report.percent_of_peak(r):.1f}",
            f"{100 * r.final_accuracy:.2f}%",
            f"{100 * r.lowest_accuracy:.2f}%" if r.lowest_accuracy is not None else "-",
            *(seconds(r.time_to(bar)) for bar in bars),
            f"{r.wall_seconds:.1f}",
            f"{ours.images_per_second / r.images_per_second:.2f}x",
            *(ratio(r.time_to(bar), ours.time_to(bar)) for bar in bars),
        ]
        for r in report.results
    ]
    headers = [
        "trainer", "img/s", "s/epoch", "%peak", "accuracy", "lowest",
        *(f"to {100 * bar:.2f}% (s)" for bar in bars), "wall s", "img/s ratio",
        *(f"later to {100 * bar:.2f}%" for bar in bars),
    ]  # fmt: skip
    return tabulate(
        rows,
        headers=headers,
        disable_numparse=True,
        colalign=["left"] + ["right"] * (len(headers) - 1),
    )


def run_benchmark(
    model_name: str,
    epochs: int | None,
    trainers: list[str],
    workers: int,
    on_trainer: Callable[[str], None] | None = None,
    limits: Limits = Limits(),
    reference_epochs: int = 1,
    seeds: int = 1,
) -> BenchReport:
    """Train ``model_name`` on MNIST with each of ``trainers`` (of ``TRAINERS``), one
    after the other, and time inference; ``on_trainer`` hears each one's name first.
    ``cnnkit train`` and the references run once per seed (0 to ``seeds`` - 1), the
    in-process loops once."""
    from cnnkit.analysis import size_report
    from cnnkit.config import with_overrides
    from cnnkit.errors import UnknownNameError
    from cnnkit.models import recipe_for

    unknown = [name for name in trainers if name not in TRAINERS] or ([] if trainers else [""])
    if unknown:
        raise UnknownNameError.of("trainer", unknown[0], TRAINERS)
    recipe = with_overrides(recipe_for(model_name), epochs=epochs)
    network, _, _ = mnist_model(model_name)
    connections = size_report(network, network.input_size).totals.connections
    runs: dict[str, Callable[[int], TrainerResult]] = {
        "cnnkit": lambda seed: run_cnnkit_train(model_name, recipe, limits, seed),
        "in-memory": lambda _: run_in_memory(model_name, recipe, limits),
        "textbook": lambda _: run_textbook(model_name, recipe, workers, limits),
        "pytorch-examples": lambda seed: run_pytorch_examples(reference_epochs, limits, seed),
        "train-mnist-fast": lambda seed: run_train_mnist_fast(limits, seed),
    }
    # Seed by seed, each trainer in turn, so that a busy spell slows them all alike.
    seeded: dict[str, list[TrainerResult]] = {name: [] for name in trainers}
    for seed in range(seeds):
        for name in trainers:
            if seed and name in ("in-memory", "textbook"):
                continue
            if on_trainer is not None:
                on_trainer(name if seeds == 1 else f"{name} (seed {seed})")
            seeded[name].append(runs[name](seed))
    results = [over_seeds(seeded[name]) for name in trainers]
    return BenchReport(
        model_name,
        recipe,
        connections,
        torch.get_num_threads(),
        matmul_peak_gflops(),
        results,
        inference_speed(model_name),
    )
