"""One pass of training and one evaluation, over batches of uint8 tensors.

In memory, batches are slices of a shuffled permutation of the whole split
(``shuffled_batches``); streamed folder sets come as a DataLoader's batches
(``data.stream``). Each batch is normalised as one tensor operation.
"""

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from cnnkit.metrics import confusion_matrix, per_class_accuracy, topk_correct
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
    order = torch.randperm(len(images), generator=generator)
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
) -> EpochStats:
    """One pass over ``batches`` of uint8 images and labels (``shuffled_batches`` or a
    streaming loader's); ``augment(images, labels) -> (images, targets)`` transforms each
    batch before normalisation (targets may become probabilities). ``total`` is the
    number of images, for the progress bar."""
    flush_denormals()
    model.train()
    loss_sum, steps, trained = torch.zeros(()), 0, 0
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
            if augment is not None:
                batch_images, targets = augment(batch_images, targets)
            logits = model(normalize(batch_images, mean, std))
            loss = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach()
            steps, trained = steps + 1, trained + count
            bar.update(count)
    seconds = time.perf_counter() - start
    return EpochStats(float(loss_sum) / max(1, steps), seconds, trained / seconds)


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 256,
) -> torch.Tensor:
    """Logits (N, K) for uint8 images (N, C, H, W), in batches of 256: LeNet-5 runs
    2.5x as fast as in batches of 1,000, whose activations fall out of the caches."""
    flush_denormals()
    model.eval()
    chunks = [
        model(normalize(images[i : i + batch_size], mean, std))
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
) -> EvalStats:
    """Top-1/top-5 errors and the confusion matrix of in-memory uint8 images. With
    ``tta="ten-crop"`` the images may be larger than the model's input (or equal, then
    they are padded, see ``transforms.tencrop``) and the softmax is averaged over ten
    crops."""
    # Ten-crop runs batch_size // 10 images (batch_size crops) per forward pass.
    step = batch_size if tta == "none" else max(1, batch_size // 10) * 10
    batches = ((images[i : i + step], labels[i : i + step]) for i in range(0, len(images), step))
    return evaluate_batches(
        model, batches, mean=mean, std=std, num_classes=num_classes, batch_size=batch_size, tta=tta
    )


def evaluate_batches(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    num_classes: int,
    batch_size: int = 1000,
    tta: str = "none",
) -> EvalStats:
    """``evaluate`` over batches of uint8 images and labels (slices, or a loader's),
    counting hits and confusions batch by batch."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")
    start = time.perf_counter()
    top1 = top5 = count = 0
    confusion = torch.zeros((num_classes, num_classes), dtype=torch.int64)
    for images, labels in batches:
        if tta == "ten-crop":
            logits = ten_crop_log_probs(model, images, mean=mean, std=std, batch_size=batch_size)
        else:
            logits = predict_logits(model, images, mean=mean, std=std, batch_size=batch_size)
        hits = topk_correct(logits, labels, (1, 5))
        top1, top5, count = top1 + hits[0], top5 + hits[1], count + len(labels)
        confusion += confusion_matrix(logits.argmax(dim=1), labels, num_classes)
    return EvalStats(
        1 - top1 / count, 1 - top5 / count, confusion, count, time.perf_counter() - start
    )


@torch.inference_mode()
def ten_crop_log_probs(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 256,
) -> torch.Tensor:
    """Log of the ten-crop averaged softmax (N, K); ranks classes like the average."""
    model.eval()
    size = model.input_size[-1]
    step = max(1, batch_size // 10)
    chunks = [
        ten_crop_probs(lambda x: model(normalize(x, mean, std)), images[i : i + step], size)
        for i in range(0, len(images), step)
    ]
    return torch.cat(chunks).log()
