"""Results over the years: a classical baseline and a line of conv nets, head to head.

The lecture closes with ImageNet's winners: descriptors and SVMs (2010),
AlexNet (2012), ZFNet (2013), VGG and GoogLeNet (2014), ResNet (2015); LeNet-5
(1998) came first. ``run_history`` replays that on a data set a laptop can
train on: the HOG+SVM baseline, then each net with its own recipe's optimiser
and schedule for the same number of epochs, chosen in advance (or, on request,
under one time budget split evenly between the nets). Each
finished model leaves ``result.json`` in its folder, so a rerun skips it, and
a model interrupted mid-run resumes from its checkpoint.
"""

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from cnnkit import plots
from cnnkit.analysis import size_report
from cnnkit.baseline import train_hog_svm
from cnnkit.config import TrainOptions
from cnnkit.data import ImageSet, load_dataset
from cnnkit.errors import CnnkitError
from cnnkit.files import (
    Integer,
    Number,
    Schema,
    Text,
    atomic_write_bytes,
    atomic_write_text,
    read_json,
)
from cnnkit.models import Milestone, check_model_name, history_line, model_entry, recipe_for
from cnnkit.models.fitting import build_for_images
from cnnkit.runs import CHECKPOINT_NAME
from cnnkit.training import train
from cnnkit.transforms import fit_to_input, normalize

BASELINE = "hog-svm"
# The classical method's row; the nets' years and titles are their registrations'
# (``models.Milestone``).
BASELINE_MILESTONE = Milestone(2010, "HOG + linear SVM")
RESULT_NAME = "result.json"


@dataclass(frozen=True)
class HistorySettings:
    dataset: str = "mnist"
    models: tuple[str, ...] = field(default_factory=history_line)
    epochs: int = 3  # passes over the training split per net (at most, under a budget)
    budget: float | None = None  # seconds for all nets together, planned from their speed
    out: Path = Path("runs/history-mnist")
    data_dir: Path | None = None
    seed: int = 0
    progress: bool = False
    train_limit: int | None = None  # first N training images only (for quick runs)
    test_limit: int | None = None  # first N test images only


@dataclass(frozen=True)
class HistoryRow:
    year: int
    model: str  # registry name, or "hog-svm"
    title: str  # as the lecture names it
    parameters: int
    connections: int  # multiply-adds of one forward pass for one image, without biases
    train_images: int  # per epoch
    epochs: int
    train_seconds: float  # training only (without the per-epoch test passes)
    top1_error: float
    top5_error: float


# A result.json is read back on a rerun (to skip a finished model): each field checked.
HISTORY_ROW = Schema(
    HistoryRow,
    {
        "year": Integer(1900, 3000),
        "model": Text(max_length=256),
        "title": Text(max_length=256),
        "parameters": Integer(),
        "connections": Integer(),
        "train_images": Integer(),
        "epochs": Integer(),
        "train_seconds": Number(0),
        "top1_error": Number(0, 1),
        "top5_error": Number(0, 1),
    },
)
MAX_RESULT_BYTES = 1 << 16


def read_result(path: Path) -> HistoryRow:
    return HISTORY_ROW.parse(
        read_json(path, MAX_RESULT_BYTES, what="result"), path, CnnkitError, "result"
    )


def baseline_row(settings: HistorySettings) -> HistoryRow:
    """HOG + linear SVM on the whole training split (cached in ``out/hog-svm``)."""
    path = settings.out / BASELINE / RESULT_NAME
    if path.is_file():
        return read_result(path)
    result = train_hog_svm(
        settings.dataset, settings.data_dir, settings.train_limit, settings.test_limit
    )
    row = HistoryRow(
        year=BASELINE_MILESTONE.year,
        model=BASELINE,
        title=BASELINE_MILESTONE.title,
        parameters=result.parameters,
        connections=result.connections,
        train_images=result.train_images,
        epochs=1,
        train_seconds=result.train_seconds,
        top1_error=result.top1_error,
        top5_error=result.top5_error,
    )
    save_json(path.parent / "baseline.json", result.to_dict())
    save_json(path, asdict(row))
    return row


def measure_speed(model_name: str, train_set: ImageSet, batch_size: int) -> tuple[float, float]:
    """Training and test images per second of a fresh ``model_name`` on this machine,
    timed on a few real batches (after one warm-up step)."""
    model = build_for_images(model_name, train_set.image_shape, len(train_set.classes))
    images = fit_to_input(train_set.images[: 2 * batch_size], model.input_size)
    x = normalize(images, train_set.mean, train_set.std)
    labels = train_set.labels[: 2 * batch_size]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    model.train()
    for step in range(3):
        if step == 1:
            start = time.perf_counter()
        batch = slice((step % 2) * batch_size, (step % 2 + 1) * batch_size)
        loss = F.cross_entropy(model(x[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    train_speed = 2 * batch_size / (time.perf_counter() - start)
    model.eval()
    with torch.inference_mode():
        start = time.perf_counter()
        model(x)
        test_speed = len(x) / (time.perf_counter() - start)
    return train_speed, test_speed


def plan_epochs(
    seconds: float, train_speed: float, test_speed: float, train_size: int, test_size: int,
    max_epochs: int, batch_size: int,
) -> tuple[int, int]:  # fmt: skip
    """(epochs, training images per epoch) that fit in ``seconds``: the most epochs
    over the whole split up to ``max_epochs``, else one epoch over a prefix."""
    test_seconds = test_size / test_speed
    for epochs in range(max_epochs, 0, -1):
        if epochs * (train_size / train_speed + test_seconds) <= seconds:
            return epochs, train_size
    affordable = int((seconds - test_seconds) * train_speed)
    return 1, min(train_size, max(8 * batch_size, affordable // batch_size * batch_size))


def net_row(
    model_name: str,
    settings: HistorySettings,
    seconds: float | None,
    train_set: ImageSet,
    test_size: int,
) -> HistoryRow:
    """Train one net for ``settings.epochs``, or within ``seconds`` when given (or
    reuse its finished run), and summarise it."""
    run_dir = settings.out / model_name
    path = run_dir / RESULT_NAME
    if path.is_file():
        return read_result(path)
    recipe = recipe_for(model_name, settings.dataset)
    epochs, images = settings.epochs, len(train_set)
    # A resumed run keeps the plan it was started with (its checkpoint's config).
    resume = (run_dir / CHECKPOINT_NAME).is_file()
    if seconds is not None and not resume:
        train_speed, test_speed = measure_speed(model_name, train_set, recipe.batch_size)
        epochs, images = plan_epochs(
            seconds, train_speed, test_speed, len(train_set), test_size, settings.epochs,
            recipe.batch_size,
        )  # fmt: skip
    options = TrainOptions(
        model=model_name,
        dataset=settings.dataset,
        epochs=epochs,
        seed=settings.seed,
        out=run_dir,
        resume=resume,
        data_dir=settings.data_dir,
        train_limit=images,
        test_limit=settings.test_limit,
        progress=settings.progress,
        report=False,  # the history's own table and chart compare the nets
    )
    outcome = train(options)
    assert outcome is not None  # one process: it writes
    result = outcome.result
    model = build_for_images(model_name, train_set.image_shape, len(train_set.classes))
    size = size_report(model, model.input_size, model_name).totals
    images = min(result.config.train_limit or len(train_set), len(train_set))
    milestone = model_entry(model_name).milestone or Milestone(0, model_name)
    row = HistoryRow(
        year=milestone.year,
        model=model_name,
        title=milestone.title,
        parameters=size.parameters,
        connections=size.connections,
        train_images=images,
        epochs=len(result.history),
        train_seconds=sum(images / r.images_per_second for r in result.history),
        top1_error=result.final.top1_error,
        top5_error=result.final.top5_error,
    )
    save_json(path, asdict(row))
    return row


def run_history(
    settings: HistorySettings, on_row: Callable[[HistoryRow], None] | None = None
) -> list[HistoryRow]:
    """The baseline and every net of ``settings.models``, sorted by year; writes
    ``history.md``, ``history.png`` and ``history.json`` into ``settings.out``."""
    for name in settings.models:
        check_model_name(name)
    settings.out.mkdir(parents=True, exist_ok=True)
    rows = [baseline_row(settings)]
    if on_row:
        on_row(rows[-1])
    train_set, test_set = load_dataset(settings.dataset, settings.data_dir)
    train_set = train_set.subset(settings.train_limit or len(train_set))
    test_set = test_set.subset(settings.test_limit or len(test_set))
    per_model = settings.budget / max(1, len(settings.models)) if settings.budget else None
    for model_name in settings.models:
        rows.append(net_row(model_name, settings, per_model, train_set, len(test_set)))
        if on_row:
            on_row(rows[-1])
    rows.sort(key=lambda row: row.year)
    write_outputs(settings, rows)
    return rows


def table_rows(rows: list[HistoryRow]) -> list[list[str]]:
    return [
        [
            str(row.year),
            row.title,
            f"{row.parameters:,}",
            f"{row.connections:,}",
            f"{row.train_images:,} x {row.epochs}",
            f"{row.train_seconds:.1f}",
            f"{100 * row.top1_error:.2f}",
            f"{100 * row.top5_error:.2f}",
        ]
        for row in rows
    ]


TABLE_HEADERS = [
    "year",
    "model",
    "parameters",
    "connections",
    "train images x epochs",
    "training time (s)",
    "top-1 error %",
    "top-5 error %",
]


def render_table(rows: list[HistoryRow], fmt: str = "simple") -> str:
    from tabulate import tabulate

    colalign = ["right", "left"] + ["right"] * 6
    return tabulate(
        table_rows(rows),
        headers=TABLE_HEADERS,
        tablefmt=fmt,
        colalign=colalign,
        disable_numparse=True,  # keep "0.10" as written
    )


def write_outputs(settings: HistorySettings, rows: list[HistoryRow]) -> None:
    tested = f"its first {settings.test_limit} test images" if settings.test_limit else (
        "its whole test split"
    )  # fmt: skip
    budget = (
        f"Nets share a budget of {settings.budget:.0f} s (training and per-epoch testing)"
        if settings.budget
        else f"Each net trains {settings.epochs} epochs with its own recipe, fixed in advance"
    )
    note = (
        f"Data set: {settings.dataset}; errors on {tested}. {budget}; HOG + SVM trains on "
        "the same training images. Parameters and connections of HOG + SVM count the "
        "linear SVM only. Each net's logs: its folder's metrics.jsonl and result.json.\n"
    )
    atomic_write_text(
        settings.out / "history.md",
        "# Results over the years\n\n" + render_table(rows, "github") + "\n\n" + note,
    )
    figure = plots.error_bars(
        [f"{row.year} {row.title}" for row in rows],
        [row.top1_error for row in rows],
        f"Results over the years on {settings.dataset}",
    )
    atomic_write_bytes(settings.out / "history.png", plots.figure_png(figure))
    save_json(settings.out / "history.json", [asdict(row) for row in rows])


def save_json(path: Path, value: object) -> None:
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")
