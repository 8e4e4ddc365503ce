"""One pass of training over batches of uint8 tensors (evaluation: ``runtime.inference``).

In memory, batches are slices of a shuffled permutation of the whole split
(``shuffled_batches``); streamed folder sets come as a DataLoader's batches
(``data.stream``). Each batch is normalised as one tensor operation, so there is no
per-image Python work. The tensors may live on any device (``Placement``); under
torchrun each rank trains on its share of every batch and the statistics are summed
over the ranks (``World``).
"""

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit.progress import bar as progress_bar
from cnnkit.runtime.device import CPU, Placement
from cnnkit.runtime.distributed import SINGLE, World, all_reduce_sum
from cnnkit.runtime.inference import flush_denormals
from cnnkit.transforms import normalize


@dataclass(frozen=True)
class EpochStats:
    train_loss: float  # mean over the epoch's batches
    # Of the training images as each batch was taken (augmented, in training mode, by
    # weights still moving), as Keras's fit reports its accuracy: free, unlike a pass.
    train_top1_error: float
    seconds: float
    images_per_second: float


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Full batches only (the last partial one is dropped), but at least one step."""
    return max(1, num_images // batch_size)


def shuffled_batches(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An epoch of an in-memory split: slices of one random permutation."""
    order = torch.randperm(len(images), generator=generator).to(images.device)
    for step in range(steps_per_epoch(len(images), batch_size)):
        batch = order[step * batch_size : (step + 1) * batch_size]
        yield images[batch], labels[batch]


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    total: int | None = None,
    label_smoothing: float = 0.0,
    progress: bool = False,
    description: str = "train",
    augment: Callable | None = None,
    placement: Placement = CPU,
    scaler: torch.amp.GradScaler | None = None,
    world: World = SINGLE,
) -> EpochStats:
    """One pass over ``batches`` of uint8 images and labels (``shuffled_batches`` or a
    streaming loader's); ``augment(images, labels) -> (images, targets)`` transforms each
    batch before normalisation (targets may become probabilities). ``total`` is the
    number of images, for the progress bar.

    Each batch is the global batch. Every rank draws the same batches (from the same
    CPU generator), augments the whole batch alike and trains on its own
    ``world.shard`` of it, so the generators stay in step on all ranks and rank 0's
    checkpoint holds everyone's state. The loss is the mean over all ranks' batches.
    """
    flush_denormals()
    model.train()
    scaler = scaler or placement.grad_scaler()
    loss_sum, steps, trained = torch.zeros((), device=placement.device), 0, 0
    wrong = torch.zeros((), dtype=torch.int64, device=placement.device)
    start = time.perf_counter()
    with progress_bar(
        total=total,
        unit="img",
        unit_scale=True,
        desc=description,
        leave=False,
        disable=not progress,
    ) as bar:
        for batch_images, targets in batches:
            count = len(batch_images)
            # In-memory splits already live on the device; streamed batches come from
            # the loader's workers on the CPU (then pinned, so the copy is asynchronous).
            batch_images = batch_images.to(placement.device, non_blocking=True)
            targets = targets.to(placement.device, non_blocking=True)
            if augment is not None:
                batch_images, targets = augment(batch_images, targets)
            mine = world.shard(count)
            x = placement.layout(normalize(batch_images[mine], mean, std))
            with placement.autocast():
                logits = model(x)
                loss = F.cross_entropy(logits, targets[mine], label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)  # skipped when fp16 gradients overflowed
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach()
            wrong += (logits.detach().argmax(dim=1) != hard_labels(targets[mine])).sum()
            steps, trained = steps + 1, trained + count
            bar.update(count)
    seconds = time.perf_counter() - start
    mean_loss = float(all_reduce_sum(loss_sum, world)) / (max(1, steps) * world.size)
    train_error = int(all_reduce_sum(wrong, world)) / max(1, trained)
    return EpochStats(mean_loss, train_error, seconds, trained / seconds)


def hard_labels(targets: torch.Tensor) -> torch.Tensor:
    """Class indices, or the likeliest class of each row of mixed (MixUp, CutMix)
    targets: the class a prediction is counted right for."""
    return targets if targets.dim() == 1 else targets.argmax(dim=1)
