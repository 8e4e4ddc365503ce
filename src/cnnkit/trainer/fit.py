"""``fit(config)``: the one place that joins data, model, optimiser and checkpoints."""

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import torch
from torch import nn

from cnnkit.config import TrainConfig
from cnnkit.data import DIGIT_DATASETS, ImageSet, load_dataset
from cnnkit.data.stream import StreamedSet, open_stream, stream_loaders
from cnnkit.errors import CheckpointError, ConfigError, TrainingError
from cnnkit.files import FolderLock, remove_stale_temporaries, stop_signals_held
from cnnkit.models import Classifier
from cnnkit.models.fitting import build_for_images
from cnnkit.runs import (
    CHECKPOINT_NAME,
    METRICS_NAME,
    EpochRecord,
    RunRecord,
    load_checkpoint,
    save_checkpoint,
    write_metrics,
)
from cnnkit.runs.record import preparation_for
from cnnkit.runtime.device import CPU, Placement, choose_placement, to_cpu
from cnnkit.runtime.distributed import (
    SINGLE,
    World,
    broadcast_buffers,
    data_parallel,
    process_group,
)
from cnnkit.runtime.inference import (
    EvalStats,
    classification_errors,
    classification_errors_of_batches,
)
from cnnkit.trainer.compiled import CompiledOrEager
from cnnkit.trainer.loop import EpochStats, shuffled_batches, steps_per_epoch, train_one_epoch
from cnnkit.trainer.optimizers import build_optimizer
from cnnkit.trainer.sdlm import SDLM, curvature_indices, gauss_newton_diagonal
from cnnkit.transforms import fit_to_input, normalize
from cnnkit.transforms.augment import Augment, build_augment


@dataclass(frozen=True)
class FitResult:
    config: TrainConfig
    history: list[EpochRecord]  # one record per epoch, as written to metrics.jsonl
    final: EvalStats
    checkpoint: Path
    seconds: float  # wall time of this call, data loading included
    final_tta: EvalStats | None = None  # the final evaluation again with config.tta
    device: str = "cpu"  # where it ran, e.g. "cuda:0"


@dataclass
class TrainingState:
    """Everything that changes while training, and all a checkpoint must restore."""

    model: Classifier
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    shuffle_generator: torch.Generator
    augment: Augment | None
    history: list[EpochRecord]
    scaler: torch.amp.GradScaler = field(default_factory=CPU.grad_scaler)  # fp16 loss scale

    def state_dict(self) -> dict:
        """On the CPU, so that a checkpoint written on a GPU loads anywhere."""
        return {
            "model_state": to_cpu(self.model.state_dict()),
            "optimizer_state": to_cpu(self.optimizer.state_dict()),
            "scheduler_state": self.scheduler.state_dict(),
            "scaler_state": self.scaler.state_dict(),
            "shuffle_generator_state": self.shuffle_generator.get_state(),
            "augment_generator_state": self.augment.generator.get_state() if self.augment else None,
            "torch_rng_state": torch.get_rng_state(),
            "epoch": len(self.history),
            "history": [record.to_dict() for record in self.history],
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer_state"])  # moves it to the weights
        self.scheduler.load_state_dict(state["scheduler_state"])
        self.shuffle_generator.set_state(state["shuffle_generator_state"])
        if self.augment is not None:
            self.augment.generator.set_state(state["augment_generator_state"])
        torch.set_rng_state(state["torch_rng_state"])
        if state.get("scaler_state"):  # empty when the scaler is off, absent before fp16
            self.scaler.load_state_dict(state["scaler_state"])
        self.history = [EpochRecord.from_dict(values) for values in state["history"]]


def start_training(
    config: TrainConfig,
    train_set: ImageSet,
    placement: Placement = CPU,
    train_count: int | None = None,
) -> TrainingState:
    """A fresh model (on the placement's device), optimiser, schedule and augmentation
    for ``config``, seeded; the weights are drawn on the CPU, so alike on every device.
    ``train_count`` images per epoch when ``train_set`` is a streamed set's sample."""
    recipe = config.recipe
    torch.manual_seed(config.seed)
    model = placement.prepare(
        build_for_images(config.model, train_set.image_shape, len(train_set.classes))
    )
    augment = build_augment(
        recipe.augment,
        train_set.images,
        model.input_size[-1],
        len(train_set.classes),
        allow_flip=config.dataset not in DIGIT_DATASETS,
        seed=config.seed,
    )
    steps = steps_per_epoch(train_count or len(train_set), recipe.batch_size)
    optimizer, scheduler = build_optimizer(model, recipe, steps)
    return TrainingState(
        model,
        optimizer,
        scheduler,
        torch.Generator().manual_seed(config.seed),
        augment,
        history=[],
        scaler=placement.grad_scaler(),
    )


def estimate_curvature(
    optimizer: SDLM,
    model: Classifier,
    train_set: ImageSet,
    seed: int,
    epoch: int,
    placement: Placement,
) -> None:
    """SDLM's second derivatives from 500 training patterns, before each pass (the
    paper's), unaugmented; drawn from (seed, epoch), so a resumed run draws the same."""
    chosen = curvature_indices(len(train_set), seed, epoch)
    images = fit_to_input(train_set.images[chosen], model.input_size).to(placement.device)
    x = placement.layout(normalize(images, train_set.mean, train_set.std))
    optimizer.set_curvature(gauss_newton_diagonal(model, x))


def training_placement(placement: Placement, model: nn.Module) -> Placement:
    """``placement`` in the memory format ``model`` trains fastest in: channels_last
    (NHWC) on a CPU too, which oneDNN's convolutions and pooling read without
    reordering, except for nets with local response normalisation, which trained
    slower in it (docs/speedrun.md, "The zoo")."""
    if any(isinstance(module, nn.LocalResponseNorm) for module in model.modules()):
        return placement
    return replace(placement, memory_format=torch.channels_last)


def resolve_resume(config: TrainConfig) -> tuple[TrainConfig, dict | None]:
    """The config to run and the checkpoint to continue from, if any.

    A resumed run takes its saved config (only ``out`` and ``progress`` come from
    the caller, and where it runs: device and distributed timeout); a new run
    refuses to overwrite an earlier run's checkpoint.
    """
    checkpoint_path = config.out / CHECKPOINT_NAME
    if config.resume and not checkpoint_path.exists() and (config.out / METRICS_NAME).exists():
        raise CheckpointError(
            f"{checkpoint_path}: the run in {config.out} stopped before its first epoch "
            "ended, so there is nothing to resume; start it again without --resume"
        )
    if not config.resume:
        if checkpoint_path.exists():
            raise CheckpointError(
                f"{checkpoint_path}: an earlier run's checkpoint is here; pass "
                "--resume to continue it, or --out to train into another folder"
            )
        return config, None
    resumed = load_checkpoint(checkpoint_path)
    if resumed.config is None:
        raise CheckpointError(f"{checkpoint_path}: holds no training config to resume")
    saved = replace(
        resumed.config,
        out=config.out,
        progress=config.progress,
        workers=config.workers,
        resume=True,
        device=config.device,
        dist_timeout=config.dist_timeout,
    )
    return saved, resumed.state


def fit(
    config: TrainConfig,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    world: World = SINGLE,
    on_start: Callable[[TrainConfig], None] | None = None,
) -> FitResult:
    """Train ``config.model`` on ``config.dataset``; evaluate and checkpoint each epoch.

    With ``config.resume`` the run continues from ``config.out``'s checkpoint and
    ends with the same weights as an uninterrupted run; ``on_start`` is given the
    config that runs (a resumed run's saved one). Under torchrun every rank calls
    ``fit`` with its ``world``; all return the same results, and only rank 0 writes
    files and calls ``on_start`` and ``on_epoch``.

    The writing process holds ``config.out``'s lock throughout (``files.FolderLock``):
    a second run into the same folder is refused, and a run killed earlier left
    nothing there but temporary files, removed here.
    """
    if not world.is_main:
        return run_epochs(config, on_epoch, world, on_start)
    with FolderLock(config.out, "cnnkit train"):
        remove_stale_temporaries(config.out)
        return run_epochs(config, on_epoch, world, on_start)


def run_epochs(
    config: TrainConfig,
    on_epoch: Callable[[EpochRecord], None] | None,
    world: World,
    on_start: Callable[[TrainConfig], None] | None,
) -> FitResult:
    """``fit``'s work, once the run folder is this process's."""
    start = time.perf_counter()
    config, resumed = resolve_resume(config)
    if on_start is not None and world.is_main:
        on_start(config)
    placement = choose_placement(config.device, config.precision, world.local_rank, world.size > 1)
    if config.stream:  # listed, not decoded; a decoded sample stands in for statistics
        streamed = open_stream(
            config.dataset, config.train_limit, config.test_limit, config.workers
        )
        train_set = streamed.sample
        train_count, test_count = len(streamed.train.files), len(streamed.test.files)
    else:
        train_set, test_set = load_dataset(config.dataset, config.data_dir)
        if config.holdout:
            train_set, test_set = train_set.hold_out(config.holdout)
        train_set = train_set.subset(config.train_limit or len(train_set))
        test_set = test_set.subset(config.test_limit or len(test_set))
        train_count, test_count = len(train_set), len(test_set)
    check_world(world, config.recipe.batch_size, test_count)
    with process_group(world, placement.device, config.dist_timeout):
        state = start_training(config, train_set, placement, train_count)
        placement = training_placement(placement, state.model)
        state.model = placement.prepare(state.model)  # in place: the optimiser's parameters
        if resumed is not None:
            state.load_state_dict(resumed)
        if world.is_main:
            write_metrics(config.out / METRICS_NAME, state.history)

        recipe, model = config.recipe, state.model
        network = data_parallel(model, world, placement.device)
        if config.compile:
            network = CompiledOrEager(network, placement.device)
        if config.stream:
            data = streamed_data(streamed, state, config, placement, world)
        else:
            data = in_memory_data(train_set, test_set, state, config, placement, world)

        def test_errors(tta: str = "none") -> EvalStats:
            broadcast_buffers(model, world)  # rank 0's BatchNorm statistics, as saved
            return data.test_errors(tta)

        final = None
        for epoch in range(len(state.history) + 1, recipe.epochs + 1):
            epoch_start = time.perf_counter()
            if isinstance(state.optimizer, SDLM):
                estimate_curvature(state.optimizer, model, train_set, config.seed, epoch, placement)
            stats = train_one_epoch(
                network,
                data.train_batches(epoch),
                state.optimizer,
                state.scheduler,
                mean=train_set.mean,
                std=train_set.std,
                total=data.images_per_epoch,
                label_smoothing=recipe.label_smoothing,
                progress=config.progress and world.is_main,
                description=f"epoch {epoch}/{recipe.epochs}",
                augment=data.augment,
                placement=placement,
                scaler=state.scaler,
                world=world,
            )
            check_finite(stats.train_loss, epoch, config)
            final = test_errors()
            lr = cast(float, state.scheduler.get_last_lr()[0])  # recipe.lr is a float
            state.history.append(epoch_record(epoch, stats, final, lr, epoch_start, start))
            if world.is_main:
                with stop_signals_held():  # a stop between them would part epoch and metrics
                    save_checkpoint(
                        {
                            "record": describe_run(config, train_set, model).to_dict(),
                            "config": config.to_dict(),
                            **state.state_dict(),
                        },
                        config.out / CHECKPOINT_NAME,
                    )
                    write_metrics(config.out / METRICS_NAME, state.history)
                if on_epoch is not None:
                    on_epoch(state.history[-1])
        final = final or test_errors()
        final_tta = test_errors(config.tta) if config.tta != "none" else None
    return FitResult(
        config,
        state.history,
        final,
        config.out / CHECKPOINT_NAME,
        time.perf_counter() - start,
        final_tta,
        str(placement.device),
    )


@dataclass(frozen=True)
class EpochData:
    """Where ``fit`` gets each epoch's uint8 batches and the test errors."""

    train_batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]  # of an epoch
    test_errors: Callable[..., EvalStats]  # (tta="none") -> errors on the test split
    augment: Callable | None  # the batch steps train_one_epoch applies
    images_per_epoch: int


def in_memory_data(
    train_set: ImageSet,
    test_set: ImageSet,
    state: TrainingState,
    config: TrainConfig,
    placement: Placement = CPU,
    world: World = SINGLE,
) -> EpochData:
    """Slices of whole splits held in memory on the placement's device (moved there
    once), shuffled by the run's own generator. Each training batch is brought to the
    model's input as it is drawn: the whole split padded (MNIST's 28x28 to LeNet-5's
    32x32, 61 MB) beside the split as loaded was half of the main job's memory above
    torch's own."""
    model, batch_size, device = state.model, config.recipe.batch_size, placement.device
    input_size, crop = model.input_size, state.augment is None
    train_images, train_labels = train_set.images.to(device), train_set.labels.to(device)
    test_images = fit_to_input(test_set.images, input_size).to(device)
    test_labels = test_set.labels.to(device)

    def train_batches(epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        batches = shuffled_batches(train_images, train_labels, batch_size, state.shuffle_generator)
        return ((fit_to_input(x, input_size, crop), y) for x, y in batches)

    def test_errors(tta: str = "none") -> EvalStats:
        images = test_images
        if tta != "none":
            images = fit_to_input(test_set.images, model.input_size, crop=False).to(device)
        return classification_errors(
            model,
            images,
            test_labels,
            mean=train_set.mean,
            std=train_set.std,
            num_classes=len(test_set.classes),
            batch_size=config.eval_batch_size,
            tta=tta,
            placement=placement,
            world=world,
        )

    steps = steps_per_epoch(len(train_set), batch_size)
    return EpochData(
        train_batches, test_errors, state.augment, min(steps * batch_size, len(train_set))
    )


def streamed_data(
    streamed: StreamedSet,
    state: TrainingState,
    config: TrainConfig,
    placement: Placement = CPU,
    world: World = SINGLE,
) -> EpochData:
    """Batches that DataLoader workers decode from disk (``data.stream``); the shuffling
    is seeded by (seed, epoch), and the workers take the per-image augmentation steps.
    Under torchrun every rank reads every batch and trains on its share of it."""
    model, batch_size, count = state.model, config.recipe.batch_size, len(streamed.train.files)
    stream = stream_loaders(
        streamed,
        state.augment,
        model.input_size[-1],
        batch_size=batch_size,
        steps=steps_per_epoch(count, batch_size),
        eval_batch_size=config.eval_batch_size,
        seed=config.seed,
        pin_memory=placement.device.type == "cuda",  # for asynchronous copies to the GPU
    )

    def train_batches(epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        crop = state.augment is None
        return (
            (fit_to_input(x, model.input_size, crop), y) for x, y in stream.train_batches(epoch)
        )

    def test_errors(tta: str = "none") -> EvalStats:
        crop = tta == "none"
        return classification_errors_of_batches(
            model,
            ((fit_to_input(x, model.input_size, crop), y) for x, y in stream.test_batches()),
            mean=streamed.sample.mean,
            std=streamed.sample.std,
            num_classes=len(streamed.sample.classes),
            batch_size=config.eval_batch_size,
            tta=tta,
            placement=placement,
            world=world,
        )

    steps = steps_per_epoch(count, batch_size)
    return EpochData(train_batches, test_errors, stream.augment, min(steps * batch_size, count))


def check_finite(train_loss: float, epoch: int, config: TrainConfig) -> None:
    """Stop before a diverged model is saved over the last good checkpoint."""
    if not math.isfinite(train_loss):
        kept = (
            f"the checkpoint of epoch {epoch - 1} in {config.out} is intact"
            if epoch > 1
            else "no checkpoint was written"
        )
        raise TrainingError(
            f"the training loss became {train_loss} in epoch {epoch}; "
            f"lower the learning rate (--lr, now {config.recipe.lr}); {kept}"
        )


def epoch_record(
    epoch: int, stats: EpochStats, test: EvalStats, lr: float, epoch_start: float, start: float
) -> EpochRecord:
    """One line of metrics.jsonl; times from ``time.perf_counter`` values."""
    now = time.perf_counter()
    return EpochRecord(
        epoch=epoch,
        train_loss=stats.train_loss,
        test_top1_error=test.top1_error,
        test_top5_error=test.top5_error,
        lr=lr,
        seconds=now - epoch_start,
        images_per_second=stats.images_per_second,
        elapsed_seconds=now - start,
        train_top1_error=stats.train_top1_error,
        test_loss=test.loss,
    )


def check_world(world: World, batch_size: int, test_images: int) -> None:
    """Refuse what cannot be shared evenly among the ranks: the global batch (so that
    the averaged gradient is the global batch's) and a test set smaller than one
    image per rank."""
    if batch_size % world.size:
        raise ConfigError(
            f"--batch-size {batch_size} (the global batch) does not split evenly over "
            f"{world.size} processes; use a multiple of {world.size}"
        )
    if test_images < world.size:
        raise ConfigError(f"{test_images} test images cannot be shared by {world.size} processes")


def describe_run(config: TrainConfig, train_set: ImageSet, model: Classifier) -> RunRecord:
    """What a consumer of this run needs to rebuild and feed the model."""
    return RunRecord(
        model=config.model,
        num_classes=len(train_set.classes),
        in_channels=train_set.image_shape[0],
        input_size=model.input_size[1:],
        image_size=train_set.image_shape[1:],
        classes=tuple(train_set.classes),
        mean=train_set.mean,
        std=train_set.std,
        dataset=config.dataset,
        preparation=preparation_for(config.dataset),
    )
