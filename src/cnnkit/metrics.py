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


def per_class_precision(confusion: torch.Tensor) -> torch.Tensor:
    """Fraction of the images predicted as each class that are of it (NaN for a class
    never predicted). Its recall is ``per_class_accuracy``."""
    return confusion.diagonal().double() / confusion.sum(dim=0).double()


# Retrieval: each row of ``relevance`` is one query's ranking of the whole collection,
# best first, True where the item is relevant (shares the query's label).


def average_precision(relevance: torch.Tensor, cutoff: int | None = None) -> torch.Tensor:
    """AP of each ranking in ``relevance`` (Q, N) bool: the mean of precision@i over the
    ranks i of the relevant items. With ``cutoff`` k (AP@k), the sum over relevant ranks
    i <= k divided by min(relevant items, k), so that a perfect top k scores 1 however
    many relevant items the collection holds. A query without relevant items scores 0."""
    relevant = relevance.sum(dim=1).double()
    if cutoff is not None:
        relevance = relevance[:, :cutoff]
        relevant = relevant.clamp(max=cutoff)
    hits = relevance.double()
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float64)
    precision = hits.cumsum(dim=1) / ranks
    return (precision * hits).sum(dim=1) / relevant.clamp(min=1)


def precision_at(relevance: torch.Tensor, k: int) -> torch.Tensor:
    """Fraction of relevant items among each ranking's first k (Q,)."""
    return relevance[:, :k].double().sum(dim=1) / k


def recall_at(relevance: torch.Tensor, k: int) -> torch.Tensor:
    """Fraction of each query's relevant items that rank among its first k (Q,)."""
    return relevance[:, :k].double().sum(dim=1) / relevance.sum(dim=1).double().clamp(min=1)
