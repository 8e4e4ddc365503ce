"""Inference on uint8 images in batches: logits, features, and top-1/top-5 evaluation
with and without ten-crop testing; what training and every consumer of a trained model
share.

Each batch is normalised as one tensor operation, on any device (``Placement``); under
torchrun each rank evaluates its share of every batch and the counts are summed over
the ranks (``World``).
"""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit.config import TTA_MODES
from cnnkit.errors import UnknownNameError
from cnnkit.metrics import confusion_matrix, per_class_accuracy, topk_correct
from cnnkit.models import Classifier
from cnnkit.runtime.device import CPU, Placement
from cnnkit.runtime.distributed import SINGLE, World, all_reduce_sum
from cnnkit.transforms import normalize
from cnnkit.transforms.tencrop import ten_crop_probs


@dataclass(frozen=True)
class EvalStats:
    top1_error: float
    top5_error: float
    confusion: torch.Tensor  # (K, K), row = true class
    images: int
    seconds: float
    loss: float  # mean cross-entropy of the (averaged) predictions

    @property
    def per_class_accuracy(self) -> torch.Tensor:
        return per_class_accuracy(self.confusion)


def flush_denormals() -> None:
    """Treat denormal floats as zero (x86 FTZ/DAZ). Early in training LeNet-5's small
    activations produce denormals, and the CPU then runs its steps ~30x slower."""
    torch.set_flush_denormal(True)


def predict_logits(
    model: Classifier,
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
    return in_batches(model, model, images, mean, std, batch_size, placement)


def predict_features(
    model: Classifier,
    images: torch.Tensor,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 256,
    placement: Placement = CPU,
) -> torch.Tensor:
    """Penultimate-layer features (N, D) in float32 of uint8 images (N, C, H, W) at
    the model's input, through every model's ``forward_features``, in batches."""
    return in_batches(model, model.forward_features, images, mean, std, batch_size, placement)


@torch.inference_mode()
def in_batches(
    model: Classifier,
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int,
    placement: Placement,
) -> torch.Tensor:
    """``forward`` of ``model`` (in eval mode) on normalised batches of ``images``,
    concatenated in float32."""
    flush_denormals()
    model.eval()
    with placement.autocast():
        chunks = [
            forward(placement.layout(normalize(images[i : i + batch_size], mean, std)))
            for i in range(0, max(1, len(images)), batch_size)  # one empty batch for none
        ]
    return torch.cat(chunks).float()


class FeaturesAndLogits(nn.Module):
    """A classifier's features and logits from one forward pass."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.forward_features(x)
        return features, self.model.classify(features)


@dataclass(frozen=True)
class FusedForInference:
    """A model made ready to infer: ``module(x) -> (features, logits)``, fed batches
    in ``memory_format``."""

    module: nn.Module
    memory_format: torch.memory_format


def fuse_for_inference(model: Classifier) -> FusedForInference:
    """``FeaturesAndLogits`` of ``model`` with each BatchNorm folded into the convolution
    before it (``torch.fx``'s ``fuse``), run in channels_last: 1.6x as fast for ResNet-8
    on two CPU cores (docs/search.md), with outputs equal up to rounding (checked on a
    probe). A model that fx cannot trace (LeNet-5's layers branch on autograd) runs as
    it is, where channels_last did not help either."""
    # torch.fx only here: training and plain inference never pay for its import.
    from torch.fx.experimental.optimization import fuse
    from torch.fx.proxy import TraceError

    both = FeaturesAndLogits(model).eval()
    try:
        fused = fuse(both).to(memory_format=torch.channels_last)
    except (TraceError, TypeError, RuntimeError, AttributeError, NotImplementedError):
        return FusedForInference(both, torch.contiguous_format)
    parameter = next(model.parameters())
    probe = torch.rand((4, *model.input_size), generator=torch.Generator().manual_seed(0))
    probe = probe.to(parameter.device, parameter.dtype)
    with torch.inference_mode():
        expected, found = both(probe), fused(probe.contiguous(memory_format=torch.channels_last))
    if not all(
        torch.allclose(a, b, rtol=1e-3, atol=1e-4) for a, b in zip(expected, found, strict=True)
    ):
        return FusedForInference(both, torch.contiguous_format)
    return FusedForInference(fused, torch.channels_last)


@torch.inference_mode()
def predict_features_and_logits(
    fused: FusedForInference,
    images: torch.Tensor,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 256,
    placement: Placement = CPU,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) and logits (N, K) in float32 of uint8 images (N, C, H, W) at the
    model's input, from one pass of the fused model per batch."""
    flush_denormals()
    features, logits = [], []
    for i in range(0, max(1, len(images)), batch_size):  # one empty batch for none
        x = normalize(images[i : i + batch_size], mean, std)
        with placement.autocast():
            batch_features, batch_logits = fused.module(
                x.contiguous(memory_format=fused.memory_format)
            )
        features.append(batch_features.float())
        logits.append(batch_logits.float())
    return torch.cat(features), torch.cat(logits)


def classification_errors(
    model: Classifier,
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
    return classification_errors_of_batches(
        model, batches, mean=mean, std=std, num_classes=num_classes, batch_size=batch_size,
        tta=tta, placement=placement, world=world,
    )  # fmt: skip


def classification_errors_of_batches(
    model: Classifier,
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
    """``classification_errors`` over batches of uint8 images and labels (slices, or a loader's),
    counting hits and confusions batch by batch.

    Under torchrun each rank predicts its ``world.shard`` of every batch and the counts
    are summed, so every rank returns the errors of the whole set."""
    if tta not in TTA_MODES:
        raise UnknownNameError.of("test-time augmentation", tta, TTA_MODES)
    start = time.perf_counter()
    common: dict[str, Any] = {
        "mean": mean,
        "std": std,
        "batch_size": batch_size,
        "placement": placement,
    }
    hits = torch.zeros(2, dtype=torch.int64)
    confusion = torch.zeros((num_classes, num_classes), dtype=torch.int64)
    loss_sum = torch.zeros((), dtype=torch.float64, device=placement.device)
    for images, labels in batches:
        mine = world.shard(len(labels))
        images, labels = images[mine].to(placement.device), labels[mine].to(placement.device)
        if tta == "ten-crop":
            logits = ten_crop_log_probs(model, images, **common)
        else:
            logits = predict_logits(model, images, **common)
        hits += torch.tensor(topk_correct(logits, labels, (1, 5)))
        confusion += confusion_matrix(logits.argmax(dim=1), labels, num_classes).cpu()
        # Ten-crop's log-probabilities are their own log-softmax, so one formula serves both.
        loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum").double()
    # Counts up to 2**53 are exact in float64, so the loss travels with them in one sum.
    totals = torch.cat([hits, confusion.flatten()]).to(placement.device, torch.float64)
    summed = all_reduce_sum(torch.cat([totals, loss_sum.view(1)]), world).cpu()
    counts = summed[:-1].round().long()
    count = int(counts[2:].sum())
    return EvalStats(
        1 - int(counts[0]) / count,
        1 - int(counts[1]) / count,
        counts[2:].view(num_classes, num_classes),
        count,
        time.perf_counter() - start,
        loss=float(summed[-1]) / count,
    )


@torch.inference_mode()
def ten_crop_log_probs(
    model: Classifier,
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
