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
    with torch.device("meta"):  # shapes only: no memory for the weights
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


@dataclass
class TrainingState:
    """Everything that changes while training, and all a checkpoint must restore."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    shuffle_generator: torch.Generator
    history: list[dict]

    def state_dict(self) -> dict:
        return {
            "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict(),
            "shuffle_generator_state": self.shuffle_generator.get_state(),
            "torch_rng_state": torch.get_rng_state(),
            "epoch": len(self.history),
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.scheduler.load_state_dict(state["scheduler_state"])
        self.shuffle_generator.set_state(state["shuffle_generator_state"])
        torch.set_rng_state(state["torch_rng_state"])
        self.history = list(state["history"])


def start_training(config: TrainConfig, train_set: ImageSet) -> TrainingState:
    """A fresh model, optimiser and schedule for ``config``, seeded."""
    recipe = config.recipe
    torch.manual_seed(config.seed)
    model = build_for_data(config.model, train_set)
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
    return TrainingState(
        model, optimizer, scheduler, torch.Generator().manual_seed(config.seed), history=[]
    )


def resolve_resume(config: TrainConfig) -> tuple[TrainConfig, dict | None]:
    """The config to run and the checkpoint to continue from, if any.

    A resumed run takes its saved config (only ``out`` and ``progress`` come from
    the caller); a new run refuses to overwrite an earlier run's checkpoint.
    """
    checkpoint_path = config.out / CHECKPOINT_NAME
    if not config.resume:
        if checkpoint_path.exists():
            raise CheckpointError(
                f"{checkpoint_path}: an earlier run's checkpoint is here; pass "
                "--resume to continue it, or --out to train into another folder"
            )
        return config, None
    resumed = load_checkpoint(checkpoint_path)
    saved = {
        **resumed["config"],
        "out": str(config.out),
        "progress": config.progress,
        "resume": True,
    }
    return TrainConfig.from_dict(saved), resumed


def fit(config: TrainConfig, on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    """Train ``config.model`` on ``config.dataset``; evaluate and checkpoint each epoch.

    With ``config.resume`` the run continues from ``config.out``'s checkpoint and
    ends with the same weights as an uninterrupted run.
    """
    start = time.perf_counter()
    config, resumed = resolve_resume(config)
    train_set, test_set = load_dataset(config.dataset, config.data_dir)
    train_set = train_set.subset(config.train_limit or len(train_set))
    test_set = test_set.subset(config.test_limit or len(test_set))
    state = start_training(config, train_set)
    if resumed is not None:
        state.load_state_dict(resumed)
    _write_metrics(config.out / METRICS_NAME, state.history)

    recipe, model = config.recipe, state.model
    train_images = fit_to_model(train_set.images, model)
    test_images = fit_to_model(test_set.images, model)
    normalisation = {"mean": train_set.mean, "std": train_set.std}

    def test_errors() -> EvalStats:
        return evaluate(
            model,
            test_images,
            test_set.labels,
            num_classes=len(test_set.classes),
            batch_size=config.eval_batch_size,
            **normalisation,
        )

    final = None
    for epoch in range(len(state.history) + 1, recipe.epochs + 1):
        epoch_start = time.perf_counter()
        stats = train_one_epoch(
            model,
            train_images,
            train_set.labels,
            state.optimizer,
            state.scheduler,
            batch_size=recipe.batch_size,
            generator=state.shuffle_generator,
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
        final = test_errors()
        state.history.append(
            {
                "epoch": epoch,
                "train_loss": stats.train_loss,
                "test_top1_error": final.top1_error,
                "test_top5_error": final.top5_error,
                "lr": state.scheduler.get_last_lr()[0],
                "seconds": time.perf_counter() - epoch_start,
                "images_per_second": stats.images_per_second,
                "elapsed_seconds": time.perf_counter() - start,
            }
        )
        save_checkpoint(
            {**describe_run(config, train_set, model), **state.state_dict()},
            config.out / CHECKPOINT_NAME,
        )
        _append_metrics(config.out / METRICS_NAME, state.history[-1])
        if on_epoch is not None:
            on_epoch(state.history[-1])
    return FitResult(
        config,
        state.history,
        final or test_errors(),
        config.out / CHECKPOINT_NAME,
        time.perf_counter() - start,
    )


def describe_run(config: TrainConfig, train_set: ImageSet, model: nn.Module) -> dict:
    """What ``evaluate`` and ``predict`` need to rebuild and feed the model."""
    return {
        "model": config.model,
        "num_classes": len(train_set.classes),
        "in_channels": train_set.image_shape[0],
        "image_size": model.input_size[1:],
        "classes": train_set.classes,
        "dataset": config.dataset,
        "mean": train_set.mean,
        "std": train_set.std,
        "config": config.to_dict(),
    }


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
