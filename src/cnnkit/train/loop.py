"""One pass of training and one evaluation, over in-memory uint8 tensors.

Batches are slices of a shuffled permutation of the whole split; each batch is
normalised as one tensor operation, so there is no per-image Python work. The
tensors may live on any device (``Placement``); under torchrun each rank trains
on its share of every batch and the statistics are summed over the ranks (``World``).
"""

import time
from collections.abc import Callable
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


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    batch_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    generator: torch.Generator,
    label_smoothing: float = 0.0,
    progress: bool = False,
    description: str = "train",
    augment: Callable | None = None,
    placement: Placement = CPU,
    scaler: torch.amp.GradScaler | None = None,
    world: World = SINGLE,
) -> EpochStats:
    """One pass over shuffled batches; ``augment(images, labels) -> (images, targets)``
    transforms each uint8 batch before normalisation (targets may become probabilities).

    ``batch_size`` is the global batch. Every rank draws the same permutation (the
    CPU ``generator``), augments the whole batch alike and trains on its own
    ``world.shard`` of it, so the generators stay in step on all ranks and rank 0's
    checkpoint holds everyone's state. The loss is the mean over all ranks' batches.
    """
    flush_denormals()
    model.train()
    scaler = scaler or placement.grad_scaler()
    order = torch.randperm(len(images), generator=generator).to(images.device)
    steps = steps_per_epoch(len(images), batch_size)
    loss_sum = torch.zeros((), device=images.device)
    start = time.perf_counter()
    with tqdm(
        total=min(steps * batch_size, len(images)),
        unit="img",
        unit_scale=True,
        desc=description,
        leave=False,
        disable=not progress,
    ) as bar:
        for step in range(steps):
            batch = order[step * batch_size : (step + 1) * batch_size]
            batch_images, targets = images[batch], labels[batch]
            if augment is not None:
                batch_images, targets = augment(batch_images, targets)
            mine = world.shard(len(batch))
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
            bar.update(len(batch))
    seconds = time.perf_counter() - start
    trained = min(steps * batch_size, len(images))
    mean_loss = float(all_reduce_sum(loss_sum, world)) / (steps * world.size)
    return EpochStats(mean_loss, seconds, trained / seconds)


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 1000,
    placement: Placement = CPU,
) -> torch.Tensor:
    """Logits (N, K) in float32 for uint8 images (N, C, H, W), in large batches."""
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
    batch_size: int = 1000,
    tta: str = "none",
    placement: Placement = CPU,
    world: World = SINGLE,
) -> EvalStats:
    """Top-1/top-5 errors and the confusion matrix. With ``tta="ten-crop"`` the images
    may be larger than the model's input (or equal, then they are padded, see
    ``transforms.tencrop``) and the softmax is averaged over ten crops.

    Under torchrun each rank predicts its ``world.shard`` of the images and the counts
    are summed, so every rank returns the errors of the whole set."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")
    start = time.perf_counter()
    mine = world.shard(len(images))
    images, labels = images[mine], labels[mine]
    common = {"mean": mean, "std": std, "batch_size": batch_size, "placement": placement}
    if tta == "ten-crop":
        logits = ten_crop_log_probs(model, images, **common)
    else:
        logits = predict_logits(model, images, **common)
    top1, top5 = topk_correct(logits, labels, (1, 5))
    confusion = confusion_matrix(logits.argmax(dim=1), labels, num_classes)
    hits = torch.tensor([top1, top5], device=confusion.device)
    counts = all_reduce_sum(torch.cat([hits, confusion.flatten()]), world).cpu()
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
    batch_size: int = 1000,
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
