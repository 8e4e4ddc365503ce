"""The one front door for training, ``train(options)``: the user's options made into a
config over the model's recipe, the trainer (``trainer.fit``) under torchrun's world
when there is one, the epochs logged for TensorBoard when asked, a warning for a run
that stayed at chance, and the report drawn at the end. ``cnnkit train``, ``cnnkit
history``, the benchmarks and the tests all train through it."""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from cnnkit.config import RECIPE_OVERRIDES, TrainConfig, TrainOptions, with_overrides
from cnnkit.errors import ConfigError
from cnnkit.models import check_model_name, recipe_for
from cnnkit.progress import wanted as progress_wanted
from cnnkit.runs import EpochRecord, default_run_dir
from cnnkit.runtime.distributed import World, world_from_env
from cnnkit.trainer import FitResult, fit


@dataclass(frozen=True)
class TrainOutcome:
    result: FitResult
    report: Path | None  # report.html, when one was drawn
    report_skipped: str | None = None  # why none was drawn although asked for


def train_config(options: TrainOptions) -> TrainConfig:
    """The config of ``options``: the model's recipe on the data set (or the options'
    own), overridden where the user said so."""
    check_model_name(options.model)
    for key in RECIPE_OVERRIDES:
        value = getattr(options, key)
        if isinstance(value, float) and not math.isfinite(value):  # click lets nan through
            raise ConfigError(f"--{key.replace('_', '-')} {value}: not a finite number")
    recipe = with_overrides(
        options.recipe or recipe_for(options.model, options.dataset, options.optimizer),
        **{key: getattr(options, key) for key in RECIPE_OVERRIDES},
    )
    shared = {f.name for f in fields(TrainConfig)} & {f.name for f in fields(TrainOptions)}
    given = {key: getattr(options, key) for key in shared - {"out", "recipe", "progress"}}
    return TrainConfig(
        **given,
        recipe=recipe,
        out=options.out or default_run_dir(options.model, options.dataset, options.resume),
        progress=progress_wanted() if options.progress is None else options.progress,
    )


def train(
    options: TrainOptions,
    on_start: Callable[[TrainConfig, World], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainOutcome | None:
    """Train as ``options`` say; ``None`` on the ranks of torchrun that do not write.
    ``on_start`` gets the config that runs (a resumed run's own) before the first
    epoch, ``on_epoch`` each epoch's record; both on the writing rank only."""
    config, world = train_config(options), world_from_env()
    logger = None
    if options.tensorboard and world.is_main:
        from cnnkit.reports.tensorboard import EpochLogger

        logger = EpochLogger(config.out / "tensorboard")

    def log_epoch(record: EpochRecord) -> None:
        if on_epoch is not None:
            on_epoch(record)
        if logger is not None:
            logger(record)

    def log_start(used: TrainConfig) -> None:
        if on_start is not None:
            on_start(used, world)

    try:
        result = fit(config, log_epoch, world, on_start=log_start)
    finally:
        if logger is not None:
            logger.close()
    if not world.is_main:
        return None
    warn_if_at_chance(result)
    if not options.report:
        return TrainOutcome(result, None)
    if config.stream:  # the report decodes the data set into memory
        reason = (
            f"skipped for --stream (it decodes the data set into memory); "
            f"`cnnkit report {result.config.out}` builds it where that fits"
        )
        return TrainOutcome(result, None, reason)
    from cnnkit.reports import build_report

    return TrainOutcome(result, build_report(result.config.out, options.data_dir))


def warn_if_at_chance(result: FitResult) -> None:
    """A run whose loss grew far above a guess's and whose test error stayed at chance
    had too high a rate (a short run on little data may end near chance, but its loss
    stays near ln K)."""
    classes = result.final.confusion.shape[0]
    chance_error = 1 - 1 / classes
    diverged = result.history[-1].train_loss > 2 * math.log(classes)
    if diverged and result.final.top1_error >= chance_error - 0.01:  # within a point
        warnings.warn(
            f"the test error ended at {100 * result.final.top1_error:.1f}%, no better than "
            f"chance ({100 * chance_error:.0f}%); the learning rate "
            f"(--lr {result.config.recipe.lr:g}) is probably too high",
            stacklevel=2,
        )
