"""The main job, ``cnnkit train``: the user's choices made into a config over the
model's recipe, ``fit`` under torchrun's world when there is one, the epochs logged
for TensorBoard when asked, and the report drawn at the end."""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from cnnkit.config import TrainConfig, recipe_for, with_overrides
from cnnkit.errors import ConfigError
from cnnkit.models import check_model_name
from cnnkit.runs import default_run_dir
from cnnkit.runtime.distributed import World, world_from_env
from cnnkit.train.fit import FitResult, fit


@dataclass(frozen=True)
class TrainRequest:
    """What the user asked for; ``None`` leaves a setting to the model's recipe."""

    model: str = "lenet5"
    dataset: str = "mnist"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    augment: str | None = None
    seed: int = 0
    out: Path | None = None  # [runs/MODEL-DATASET, numbered]
    resume: bool = False
    data_dir: Path | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    progress: bool = False
    tta: str = "none"
    report: bool = True
    tensorboard: bool = False
    stream: bool = False
    workers: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    dist_timeout: float = 300.0
    compile: bool = False
    optimizer: str = "sgd"  # "sdlm": LeNet-5's own method and the paper's recipe


OVERRIDES = ("epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "augment")


@dataclass(frozen=True)
class TrainOutcome:
    result: FitResult
    report: Path | None  # report.html, when one was drawn
    report_skipped: str | None = None  # why none was drawn although asked for


def train_config(request: TrainRequest) -> TrainConfig:
    """The config of ``request``: the model's recipe on the data set, overridden
    where the user said so."""
    check_model_name(request.model)
    for key in OVERRIDES:
        value = getattr(request, key)
        if isinstance(value, float) and not math.isfinite(value):  # click lets nan through
            raise ConfigError(f"--{key.replace('_', '-')} {value}: not a finite number")
    recipe = with_overrides(
        recipe_for(request.model, request.dataset, request.optimizer),
        **{key: getattr(request, key) for key in OVERRIDES},
    )
    shared = {f.name for f in fields(TrainConfig)} & {f.name for f in fields(TrainRequest)}
    return TrainConfig(
        **{key: getattr(request, key) for key in shared - {"out"}},
        recipe=recipe,
        out=request.out or default_run_dir(request.model, request.dataset, request.resume),
    )


def run_training(
    request: TrainRequest,
    on_start: Callable[[TrainConfig, World], None],
    on_epoch: Callable[[dict], None],
) -> TrainOutcome | None:
    """Train as ``request`` says; ``None`` on the ranks of torchrun that do not write.
    ``on_start`` gets the config that runs (a resumed run's own) before the first
    epoch, ``on_epoch`` each epoch's record; both on the writing rank only."""
    config, world = train_config(request), world_from_env()
    logger = None
    if request.tensorboard and world.is_main:
        from cnnkit.reports.tensorboard import EpochLogger

        logger = EpochLogger(config.out / "tensorboard")

    def log_epoch(record: dict) -> None:
        on_epoch(record)
        if logger is not None:
            logger(record)

    try:
        result = fit(config, log_epoch, world, on_start=lambda used: on_start(used, world))
    finally:
        if logger is not None:
            logger.close()
    if not world.is_main:
        return None
    warn_if_at_chance(result)
    if not request.report:
        return TrainOutcome(result, None)
    if config.stream:  # the report decodes the data set into memory
        reason = (
            f"skipped for --stream (it decodes the data set into memory); "
            f"`cnnkit report {result.config.out}` builds it where that fits"
        )
        return TrainOutcome(result, None, reason)
    from cnnkit.reports import build_report

    return TrainOutcome(result, build_report(result.config.out, request.data_dir))


def warn_if_at_chance(result: FitResult) -> None:
    """A run whose loss grew far above a guess's and whose test error stayed at chance
    had too high a rate (a short run on little data may end near chance, but its loss
    stays near ln K)."""
    classes = result.final.confusion.shape[0]
    chance_error = 1 - 1 / classes
    diverged = result.history[-1]["train_loss"] > 2 * math.log(classes)
    if diverged and result.final.top1_error >= chance_error - 0.01:  # within a point
        warnings.warn(
            f"the test error ended at {100 * result.final.top1_error:.1f}%, no better than "
            f"chance ({100 * chance_error:.0f}%); the learning rate "
            f"(--lr {result.config.recipe.lr:g}) is probably too high",
            stacklevel=2,
        )
