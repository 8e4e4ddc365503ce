"""``fit(config)``: the one place that joins data, model, optimiser and checkpoints."""

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnkit.config import TrainConfig
from cnnkit.data import ImageSet, load_dataset
from cnnkit.errors import CheckpointError, TrainingError
from cnnkit.models import build_model
from cnnkit.train.checkpoint import load_checkpoint, load_model, save_checkpoint
from cnnkit.train.loop import EvalStats, evaluate, steps_per_epoch, train_one_epoch
from cnnkit.transforms import pad_to_size

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"


@dataclass(frozen=True)
class FitResult:
    config: TrainConfig
    history: list[dict]  # one record per epoch, as written to metrics.jsonl
    final: EvalStats
    checkpoint: Path
    seconds: float  # wall time of this call, data loading included


PAD_LIMIT = 4  # pixels per side: LeNet-5 pads MNIST's 28x28 to 32x32 (LeCun et al. 1998)


def fit_to_model(images: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Pad a split's images to the model's input size (MNIST 28x28 -> LeNet-5's 32x32)."""
    _, height, width = model.input_size
    return pad_to_size(images, height, width)


def model_image_size(model_name: str, data: ImageSet) -> tuple[int, int] | None:
    """The image size to build ``model_name`` for: ``None`` (its paper's) when the data
    fit it by padding at most ``PAD_LIMIT`` pixels a side, else the data's own size."""
    _, height, width = data.image_shape
    try:
        with torch.device("meta"):  # shapes only: no memory for the weights
            _, paper_height, paper_width = build_model(model_name).input_size
    except RuntimeError:  # a constructor that reads tensor values (LeNet's connection tables)
        with torch.random.fork_rng():  # leave the seeded generator to the real build
            _, paper_height, paper_width = build_model(model_name).input_size
    if 0 <= paper_height - height <= 2 * PAD_LIMIT and 0 <= paper_width - width <= 2 * PAD_LIMIT:
        return None
    return height, width


def build_for_data(model_name: str, data: ImageSet) -> nn.Module:
    image_size = model_image_size(model_name, data)
    options = {"image_size": image_size} if image_size else {}
    return build_model(
        model_name, num_classes=len(data.classes), in_channels=data.image_shape[0], **options
    )


def fit(config: TrainConfig, on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    """Train ``config.model`` on ``config.dataset``; evaluate and checkpoint each epoch.

    With ``config.resume`` the run continues from ``config.out``'s checkpoint, whose
    saved config then rules; the result is the same as an uninterrupted run's.
    """
    start = time.perf_counter()
    checkpoint_path = config.out / CHECKPOINT_NAME
    resumed = load_checkpoint(checkpoint_path) if config.resume else None
    if resumed is not None:
        config = TrainConfig.from_dict(
            {
                **resumed["config"],
                "out": str(config.out),
                "progress": config.progress,
                "resume": True,
            }
        )
    elif checkpoint_path.exists():
        raise CheckpointError(
            f"{checkpoint_path}: an earlier run's checkpoint is here; pass "
            "--resume to continue it, or --out to train into another folder"
        )

    train_set, test_set = load_dataset(config.dataset, config.data_dir)
    train_set, test_set = (
        train_set.subset(config.train_limit or len(train_set)),
        test_set.subset(config.test_limit or len(test_set)),
    )
    recipe = config.recipe

    torch.manual_seed(config.seed)
    model = build_for_data(config.model, train_set)
    train_images, test_images = (
        fit_to_model(train_set.images, model),
        fit_to_model(test_set.images, model),
    )
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=True,
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=recipe.lr,
        pct_start=recipe.warmup_fraction,
        total_steps=recipe.epochs * steps_per_epoch(len(train_set), recipe.batch_size),
    )
    shuffle_generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    first_epoch = 1
    if resumed is not None:
        model.load_state_dict(resumed["model_state"])
        optimizer.load_state_dict(resumed["optimizer_state"])
        scheduler.load_state_dict(resumed["scheduler_state"])
        shuffle_generator.set_state(resumed["shuffle_generator_state"])
        torch.set_rng_state(resumed["torch_rng_state"])
        history = resumed["history"]
        first_epoch = resumed["epoch"] + 1
    _write_metrics(config.out / METRICS_NAME, history)

    normalisation = {"mean": train_set.mean, "std": train_set.std}
    final = None
    for epoch in range(first_epoch, recipe.epochs + 1):
        epoch_start = time.perf_counter()
        stats = train_one_epoch(
            model,
            train_images,
            train_set.labels,
            optimizer,
            scheduler,
            batch_size=recipe.batch_size,
            generator=shuffle_generator,
            label_smoothing=recipe.label_smoothing,
            progress=config.progress,
            description=f"epoch {epoch}/{recipe.epochs}",
            **normalisation,
        )
        if not math.isfinite(stats.train_loss):
            raise TrainingError(
                f"the training loss became {stats.train_loss} in epoch {epoch}; "
                f"lower the learning rate (--lr, now {recipe.lr}). The checkpoint "
                f"of epoch {epoch - 1} in {config.out} is intact"
            )
        final = evaluate(
            model,
            test_images,
            test_set.labels,
            num_classes=len(test_set.classes),
            batch_size=config.eval_batch_size,
            **normalisation,
        )
        record = {
            "epoch": epoch,
            "train_loss": stats.train_loss,
            "test_top1_error": final.top1_error,
            "test_top5_error": final.top5_error,
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - epoch_start,
            "images_per_second": stats.images_per_second,
        }
        history.append(record)
        save_checkpoint(
            {
                "model": config.model,
                "num_classes": len(train_set.classes),
                "in_channels": train_set.image_shape[0],
                "classes": train_set.classes,
                "dataset": config.dataset,
                "mean": train_set.mean,
                "std": train_set.std,
                "model_state": model.state_dict(),
                "optimizer_state": optimizer.state_dict(),
                "scheduler_state": scheduler.state_dict(),
                "shuffle_generator_state": shuffle_generator.get_state(),
                "torch_rng_state": torch.get_rng_state(),
                "epoch": epoch,
                "history": history,
                "config": config.to_dict(),
            },
            checkpoint_path,
        )
        _append_metrics(config.out / METRICS_NAME, record)
        if on_epoch is not None:
            on_epoch(record)
    if final is None:  # resumed a finished run: nothing trained, evaluate once
        final = evaluate(
            model,
            test_images,
            test_set.labels,
            num_classes=len(test_set.classes),
            batch_size=config.eval_batch_size,
            **normalisation,
        )
    return FitResult(config, history, final, checkpoint_path, time.perf_counter() - start)


def _write_metrics(path: Path, history: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in history))


def _append_metrics(path: Path, record: dict) -> None:
    with open(path, "a") as file:
        file.write(json.dumps(record) + "\n")


def evaluate_checkpoint(
    checkpoint: Path,
    dataset: str | None = None,
    data_dir: Path | None = None,
    test_limit: int | None = None,
) -> tuple[EvalStats, list[str]]:
    """Test-set errors of a trained checkpoint (on its own data set by default)."""
    model, state = load_model(checkpoint)
    _, test_set = load_dataset(dataset or state["dataset"], data_dir)
    test_set = test_set.subset(test_limit or len(test_set))
    if test_set.classes != list(state["classes"]):
        raise CheckpointError(
            f"{checkpoint}: trained on classes {state['classes'][:5]}..., "
            f"which {dataset!r} does not have"
        )
    stats = evaluate(
        model,
        fit_to_model(test_set.images, model),
        test_set.labels,
        mean=tuple(state["mean"]),
        std=tuple(state["std"]),
        num_classes=len(test_set.classes),
    )
    return stats, test_set.classes
