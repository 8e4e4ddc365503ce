"""How unlike the training data an image looks to a trained network: an out-of-distribution
score with a threshold.

The score is the Mahalanobis distance of the image's class scores (the logits) to the
nearest class's mean, under one covariance shared by the classes (Lee et al. 2018, "A
simple unified framework for detecting out-of-distribution samples and adversarial
attacks", there on the features, without their input perturbation). The softmax's own
confidence does not do: the faithful LeNet-5 is more confident on a grayscale CIFAR photo
than on many digits, so its largest probability ranks CIFAR photos as *more* familiar than
MNIST test digits. Nor do the penultimate features for every model: on a ReLU LeNet-5
their distance separates far less than the logits' (``docs/explain.md`` has the figures).

The means and the covariance are fitted on some of the run's training images, and the
threshold is a high percentile of the scores of other training images, which the fit did
not see: held-out data, never the test set the false alarms are measured on.
"""

from dataclasses import dataclass

import torch

from cnnkit.errors import DataError

FIT_IMAGES = 5_000  # training images the class means and covariance are fitted on
THRESHOLD_IMAGES = 2_000  # other training images the threshold is chosen on
FALSE_ALARM_RATE = 0.005  # of familiar images above the threshold, on the held-out images
RIDGE = 1e-3  # added to the covariance's diagonal, which a class never scored could zero
SEED = 0  # which training images are drawn: the same for every load of a run
LEAST_HELD = 50  # held-out images below which a percentile threshold means little


@dataclass(frozen=True)
class Novelty:
    """One image's out-of-distribution verdict."""

    score: float  # squared Mahalanobis distance to the nearest class mean
    threshold: float  # scores above it are unusual

    @property
    def unusual(self) -> bool:
        return self.score > self.threshold


@dataclass(frozen=True)
class NoveltyDetector:
    """Class means and a shared precision matrix of a run's logits, and the threshold."""

    means: torch.Tensor  # (K, D)
    precision: torch.Tensor  # (D, D), the inverse of the shared covariance
    threshold: float

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distances (N,) of logits (N, K) to the nearest class mean."""
        offsets = logits.float()[:, None, :] - self.means[None]  # (N, K, K)
        distances = torch.einsum("nkd,de,nke->nk", offsets, self.precision, offsets)
        return distances.min(dim=1).values

    def judge(self, logits: torch.Tensor) -> list[Novelty]:
        return [Novelty(float(score), self.threshold) for score in self.scores(logits)]


def held_out_split(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions of the fitting images and of the threshold's images among ``count``
    training images: disjoint, drawn with a fixed seed; a ``DataError`` when too few
    would be left for the threshold."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(SEED))
    fit = min(FIT_IMAGES, count - count // 4)  # a small set keeps a quarter for the threshold
    held = order[fit : fit + THRESHOLD_IMAGES]
    if len(held) < LEAST_HELD:
        raise DataError(
            f"{count} training images are too few for a novelty threshold "
            f"(it needs {LEAST_HELD} beside those it is fitted on)"
        )
    return order[:fit], held


def fit_detector(
    fit_logits: torch.Tensor,
    fit_labels: torch.Tensor,
    held_logits: torch.Tensor,
    classes: int,
) -> NoveltyDetector:
    """The detector of logits (N, K) with their labels (of ``classes`` classes), its
    threshold set so that ``FALSE_ALARM_RATE`` of ``held_logits`` (images the fit did
    not see) score above it."""
    logits = fit_logits.float()
    means = torch.stack(
        [
            logits[fit_labels == label].mean(dim=0)
            if bool((fit_labels == label).any())
            else logits.mean(dim=0)  # a class absent from the sample: the overall mean
            for label in range(classes)
        ]
    )
    centred = logits - means[fit_labels]
    covariance = centred.T @ centred / len(logits)
    covariance += RIDGE * torch.eye(logits.shape[1])
    precision = torch.linalg.inv(covariance)
    partial = NoveltyDetector(means, precision, threshold=float("inf"))
    threshold = torch.quantile(partial.scores(held_logits), 1 - FALSE_ALARM_RATE)
    return NoveltyDetector(means, precision, float(threshold))
