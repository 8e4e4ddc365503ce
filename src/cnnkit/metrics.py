"""Classification metrics as pure functions of logits and labels."""

import torch


def topk_correct(
    logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)
) -> list[int]:
    """How many rows have their label among the k largest logits, for each k.

    A k larger than the number of classes counts every row as correct.
    """
    largest = min(max(ks), logits.shape[1])
    top = logits.topk(largest, dim=1).indices  # (N, largest), best first
    hits = top == labels.view(-1, 1)
    return [int(hits[:, :k].any(dim=1).sum()) for k in ks]


def confusion_matrix(
    predictions: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    flat = labels * num_classes + predictions
    return torch.bincount(flat, minlength=num_classes**2).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Fraction of each true class predicted correctly (NaN for an absent class)."""
    totals = confusion.sum(dim=1).double()
    return confusion.diagonal().double() / totals
