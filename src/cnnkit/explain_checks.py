"""Checks that an explanation explains: what the tests run on a few hundred images and
``benchmarks/explain_checks.py`` on whole test sets (``docs/explain.md`` has the figures).

- Sanity checks for saliency maps (Adebayo et al. 2018, "Sanity checks for saliency
  maps"): randomise the trained weights layer by layer from the top (``cascade``), or
  train on random labels, and the maps must change; a map that a random network draws
  as well is a picture of the input, not an explanation. Similarity is the Spearman rank
  correlation of two maps (``rank_correlations``), as theirs.
- Pointing: the share of a map's mass that falls on the object (``mass_inside``), beside
  the share a uniform map would put there.
- Out-of-distribution: the area under the ROC curve of the novelty score, familiar
  images against unfamiliar ones (``auroc``).
"""

import copy
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models import build_model
from cnnkit.runs import Run
from cnnkit.runs.explain import explain_batch
from cnnkit.runtime.inference import flush_denormals
from cnnkit.transforms import normalize

INK_LEVEL = 128  # of 255: a pixel at least half-dark is the digit's ink
INK_DILATION = 2  # pixels around the ink that still count as on the digit


@dataclass(frozen=True)
class Maps:
    """Grad-CAM and gradient maps (N, H, W) of a batch of images, and what the network said."""

    gradcam: np.ndarray
    gradient: np.ndarray
    predicted: np.ndarray  # (N,) classes


def explanation_maps(run: Run, images: torch.Tensor, targets: torch.Tensor | None = None) -> Maps:
    """The maps of uint8 images for ``targets`` (their top classes by default)."""
    found = explain_batch(
        run,
        images,
        [f"image {k}" for k in range(len(images))],
        None if targets is None else targets.tolist(),
        smoothgrad_samples=0,
        novelty=False,
    )
    cams = [e.gradcam if e.gradcam is not None else np.zeros_like(e.saliency) for e in found]
    return Maps(
        gradcam=np.stack(cams),
        gradient=np.stack([e.saliency for e in found]),
        predicted=np.array([e.predicted for e in found]),
    )


def rank_correlations(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The Spearman rank correlation of each pair of maps (N, H, W): the Pearson
    correlation of their ranks (ties given their mean rank); 0 where a map is constant."""

    def ranks(maps: np.ndarray) -> np.ndarray:
        flat = maps.reshape(len(maps), -1)
        result = np.empty_like(flat, dtype=np.float64)
        for row, values in enumerate(flat):
            _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
            ends = np.cumsum(counts)
            result[row] = (ends - (counts - 1) / 2)[inverse]  # mean rank of each tie
        return result

    a, b = ranks(first), ranks(second)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1), 0.0)


def randomised(module: nn.Module, generator: torch.Generator) -> None:
    """Draw ``module``'s own trainable parameters afresh: each from a normal distribution
    with the trained values' standard deviation, so that only what was learnt is lost."""
    with torch.no_grad():
        for parameter in module.parameters(recurse=False):
            if parameter.requires_grad:
                spread = parameter.std() if parameter.numel() > 1 else parameter.abs()
                noise = torch.randn(parameter.shape, generator=generator)
                parameter.copy_(noise.to(parameter.device) * spread)


def cascade(run: Run, seed: int = 0) -> Iterator[tuple[str, Run]]:
    """Adebayo et al.'s cascading randomisation: copies of the run whose layers with
    parameters are randomised from the top (the output layer first), one more each
    time; yields the name of the layer randomised last and the copy."""
    model = copy.deepcopy(run.model)
    generator = torch.Generator().manual_seed(seed)
    names = [
        name
        for name, module in model.named_modules()
        if any(p.requires_grad for p in module.parameters(recurse=False))
    ]
    modules = dict(model.named_modules())
    for name in reversed(names):
        randomised(modules[name], generator)
        yield name, replace(run, model=model)


def ink_masks(images: torch.Tensor) -> np.ndarray:
    """(N, H, W) booleans: the ink of uint8 digits (N, 1, H, W), dilated."""
    ink = (images[:, :1] >= INK_LEVEL).float()
    size = 2 * INK_DILATION + 1
    return F.max_pool2d(ink, size, stride=1, padding=INK_DILATION)[:, 0].numpy() > 0


def mass_inside(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The share of each map's mass (N,) inside its mask; an all-zero map shares evenly."""
    totals = maps.reshape(len(maps), -1).sum(axis=1)
    inside = (maps * masks).reshape(len(maps), -1).sum(axis=1)
    even = masks.reshape(len(masks), -1).mean(axis=1)
    return np.where(totals > 0, inside / np.where(totals > 0, totals, 1), even)


@dataclass(frozen=True)
class Pointing:
    """Each map's mean share of its mass on the ink of the digits the network got right."""

    gradcam: float
    gradient: float
    uniform: float  # a map spread evenly over the image
    digits: int  # how many were got right, and measured


def pointing(run: Run, images: torch.Tensor, labels: torch.Tensor) -> Pointing:
    """Pointing on uint8 digits (N, 1, H, W) with their true ``labels`` (N,)."""
    maps = explanation_maps(run, images)
    masks = ink_masks(run.prepare(images))
    right = maps.predicted == labels.numpy()

    def share(found: np.ndarray) -> float:
        return float(mass_inside(found, masks)[right].mean())

    uniform = share(np.ones_like(maps.gradcam))
    return Pointing(share(maps.gradcam), share(maps.gradient), uniform, int(right.sum()))


def auroc(familiar: np.ndarray, unfamiliar: np.ndarray) -> float:
    """The probability that an unfamiliar image scores above a familiar one (ties half)."""
    scores = np.concatenate([familiar, unfamiliar])
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # ties: their mean rank
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    above = ranks[len(familiar) :].sum() - len(unfamiliar) * (len(unfamiliar) + 1) / 2
    return float(above / (len(familiar) * len(unfamiliar)))


def trained_on_labels(
    run: Run, images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int = 0
) -> tuple[Run, float]:
    """A fresh model of the run's architecture (its own initialisation) trained on uint8
    ``images`` with ``labels`` (random ones, for the sanity check) by Adam in batches of 32, and its
    accuracy on those labels at the end: how much of them it learnt by heart. A plain
    loop, not the trainer's recipe: any fit to the labels will do."""
    flush_denormals()  # LeNet-5's early steps are ~30x slower on denormal floats
    with torch.random.fork_rng():  # the weights drawn from ``seed``, the caller's state kept
        torch.manual_seed(seed)
        model = build_model(run.record.model, **run.record.build_arguments())
    model.to(run.placement.device)
    inputs = normalize(run.prepare(images), run.record.mean, run.record.std)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(seed)
    model.train()
    with torch.enable_grad():
        for _ in range(epochs):
            for batch in torch.randperm(len(inputs), generator=order).split(32):
                optimizer.zero_grad()
                F.cross_entropy(model(inputs[batch]), labels[batch]).backward()
                optimizer.step()
    model.eval()
    with torch.no_grad():
        learnt = (model(inputs).argmax(dim=1) == labels).float().mean().item()
    return replace(run, model=model), learnt
