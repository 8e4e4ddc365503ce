"""One pass of training and one evaluation, over in-memory uint8 tensors.

Batches are slices of a shuffled permutation of the whole split; each batch is
normalised as one tensor operation, so there is no per-image Python work.
"""

import time
from collections.abc import Callable
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
) -> EpochStats:
    """One pass over shuffled batches; ``augment(images, labels) -> (images, targets)``
    transforms each uint8 batch before normalisation (targets may become probabilities)."""
    flush_denormals()
    model.train()
    order = torch.randperm(len(images), generator=generator)
    steps = steps_per_epoch(len(images), batch_size)
    loss_sum = torch.zeros(())
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
            logits = model(normalize(batch_images, mean, std))
            loss = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach()
            bar.update(len(batch))
    seconds = time.perf_counter() - start
    trained = min(steps * batch_size, len(images))
    return EpochStats(float(loss_sum) / steps, seconds, trained / seconds)


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
    """Top-1/top-5 errors and the confusion matrix. With ``tta="ten-crop"`` the images
    may be larger than the model's input (or equal, then they are padded, see
    ``transforms.tencrop``) and the softmax is averaged over ten crops."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}")
    start = time.perf_counter()
    if tta == "ten-crop":
        logits = ten_crop_log_probs(model, images, mean=mean, std=std, batch_size=batch_size)
    else:
        logits = predict_logits(model, images, mean=mean, std=std, batch_size=batch_size)
    top1, top5 = topk_correct(logits, labels, (1, 5))
    confusion = confusion_matrix(logits.argmax(dim=1), labels, num_classes)
    count = len(labels)
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
