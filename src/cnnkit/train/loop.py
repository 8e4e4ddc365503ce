"""One pass of training and one evaluation, over batches of uint8 tensors.

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
from tqdm import tqdm

from cnnkit.metrics import confusion_matrix, per_class_accuracy, topk_correct
from cnnkit.train.device import CPU, Placement
from cnnkit.train.distributed import SINGLE, World, all_reduce_sum
from cnnkit.transforms import normalize
from cnnkit.transforms.tencrop import ten_crop_probs

TTA_MODES = ("none", "ten-crop")


@dataclass(frozen=True)
class EpochStats:
    train_loss: float  # mean over the epoch's batches
    seconds: float
    images_per_second: float


@dataclass(frozen=True)
class EvalStats:
    top1_error: float
    top5_error: float
    confusion: torch.Tensor  # (K, K), row = true class
    images: int
    seconds: float

    @property
    def per_class_accuracy(self) -> torch.Tensor:
        return per_class_accuracy(self.confusion)


def flush_denormals() -> None:
    """Treat denormal floats as zero (x86 FTZ/DAZ). Early in training LeNet-5's small
    activations produce denormals, and the CPU then runs its steps ~30x slower."""
    torch.set_flush_denormal(True)


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
    start = time.perf_counter()
    with tqdm(
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
            steps, trained = steps + 1, trained + count
            bar.update(count)
    seconds = time.perf_counter() - start
    mean_loss = float(all_reduce_sum(loss_sum, world)) / (max(1, steps) * world.size)
    return EpochStats(mean_loss, seconds, trained / seconds)


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 256,
    placement: Placement = CPU,
) -> torch.Tensor:
    """Logits (N, K) in float32 for uint8 images (N, C, H, W), in batches of 256:
    LeNet-5 runs 2.5x as fast as in batches of 1,000, whose activations fall out of
    the caches."""
    flush_denormals()
    model.eval()
    with placement.autocast():
        chunks = [
            model(placement.layout(normalize(images[i : i + batch_size], mean, std)))
            for i in range(0, len(images), batch_size)
        ]
    return torch.cat(chunks).float()


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    num_classes: int,
    batch_size: int = 256,
    tta: str = "none",
    placement: Placement = CPU,
    world: World = SINGLE,
) -> EvalStats:
    """Top-1/top-5 errors and the confusion matrix of in-memory uint8 images. With
    ``tta="ten-crop"`` the images may be larger than the model's input (or equal, then
    they are padded, see ``transforms.tencrop``) and the softmax is averaged over ten
    crops."""
    # Ten-crop runs batch_size // 10 images (batch_size crops) per forward pass.
    step = batch_size if tta == "none" else max(1, batch_size // 10) * 10
    batches = ((images[i : i + step], labels[i : i + step]) for i in range(0, len(images), step))
    return evaluate_batches(
        model, batches, mean=mean, std=std, num_classes=num_classes, batch_size=batch_size,
        tta=tta, placement=placement, world=world,
    )  # fmt: skip


def evaluate_batches(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    num_classes: int,
    batch_size: int = 256,
    tta: str = "none",
    placement: Placement = CPU,
    world: World = SINGLE,
) -> EvalStats:
    """``evaluate`` over batches of uint8 images and labels (slices, or a loader's),
    counting hits and confusions batch by batch.

    Under torchrun each rank predicts its ``world.shard`` of every batch and the counts
    are summed, so every rank returns the errors of the whole set."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")
    start = time.perf_counter()
    common = {"mean": mean, "std": std, "batch_size": batch_size, "placement": placement}
    hits = torch.zeros(2, dtype=torch.int64)
    confusion = torch.zeros((num_classes, num_classes), dtype=torch.int64)
    for images, labels in batches:
        mine = world.shard(len(labels))
        images, labels = images[mine].to(placement.device), labels[mine].to(placement.device)
        if tta == "ten-crop":
            logits = ten_crop_log_probs(model, images, **common)
        else:
            logits = predict_logits(model, images, **common)
        hits += torch.tensor(topk_correct(logits, labels, (1, 5)))
        confusion += confusion_matrix(logits.argmax(dim=1), labels, num_classes).cpu()
    totals = torch.cat([hits, confusion.flatten()]).to(placement.device)
    counts = all_reduce_sum(totals, world).cpu()
    count = int(counts[2:].sum())
    return EvalStats(
        1 - int(counts[0]) / count,
        1 - int(counts[1]) / count,
        counts[2:].view(num_classes, num_classes),
        count,
        time.perf_counter() - start,
    )


@torch.inference_mode()
def ten_crop_log_probs(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 256,
    placement: Placement = CPU,
) -> torch.Tensor:
    """Log of the ten-crop averaged softmax (N, K); ranks classes like the average."""
    model.eval()
    size = model.input_size[-1]
    step = max(1, batch_size // 10)

    def predict(x: torch.Tensor) -> torch.Tensor:
        with placement.autocast():
            return model(placement.layout(normalize(x, mean, std)))

    chunks = [
        ten_crop_probs(predict, images[i : i + step], size) for i in range(0, len(images), step)
    ]
    return torch.cat(chunks).log()
