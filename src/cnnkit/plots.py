"""Figures of a training run, drawn with matplotlib's object API on the Agg canvas.

No ``pyplot``: each function builds a ``Figure`` of its own, so nothing global
(backend, current figure) is touched and figures are freed with their object.
"""

import io
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from cnnkit.files import atomic_write_bytes
from cnnkit.runs import EpochRecord


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def learning_curves(history: list[EpochRecord]) -> Figure:
    """Train loss and test top-1 / top-5 error (%) per epoch, side by side."""
    epochs = [record.epoch for record in history]
    figure = Figure(figsize=(9, 3.4))
    loss_axes, error_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [r.train_loss for r in history], "o-", color="tab:blue")
    loss_axes.set(xlabel="epoch", ylabel="train loss", title="Training loss")
    error_axes.plot(
        epochs, [100 * r.test_top1_error for r in history], "o-", label="top-1", color="tab:red"
    )
    error_axes.plot(
        epochs, [100 * r.test_top5_error for r in history], "s--", label="top-5", color="gray"
    )
    error_axes.set(xlabel="epoch", ylabel="test error (%)", title="Test error")
    error_axes.legend()
    for axes in (loss_axes, error_axes):
        axes.grid(alpha=0.3)
        axes.set_xticks(epochs if len(epochs) <= 12 else axes.get_xticks())
    figure.tight_layout()
    return figure


def confusion_matrix_figure(confusion: torch.Tensor, classes: list[str]) -> Figure:
    """Counts with rows = true class, columns = predicted; the diagonal is correct."""
    counts = confusion.numpy()
    size = max(4.0, 0.45 * len(classes) + 2)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.subplots()
    # Log scale so that the few errors off the diagonal are visible next to it.
    image = axes.imshow(np.log1p(counts), cmap="Blues")
    figure.colorbar(image, ax=axes, label="log(1 + images)")
    ticks = range(len(classes))
    axes.set_xticks(ticks, classes, rotation=90 if len(classes) > 10 else 0)
    axes.set_yticks(ticks, classes)
    axes.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (test)")
    if len(classes) <= 20:
        threshold = np.log1p(counts).max() / 2
        for row, column in np.ndindex(counts.shape):
            if counts[row, column]:
                color = "white" if np.log1p(counts[row, column]) > threshold else "black"
                axes.text(column, row, str(int(counts[row, column])), ha="center", va="center",
                          fontsize=7, color=color)  # fmt: skip
    figure.tight_layout()
    return figure


def filter_grid(weight: torch.Tensor, title: str) -> Figure:
    """A first layer's filters (out, in, k, k) as tiles: RGB for 3 inputs, else the
    mean over inputs in grey; each tile stretched to its own min..max."""
    weight = weight.detach().float().cpu()
    tiles = weight if weight.shape[1] == 3 else weight.mean(dim=1, keepdim=True)
    low = tiles.amin(dim=(1, 2, 3), keepdim=True)
    high = tiles.amax(dim=(1, 2, 3), keepdim=True)
    stretched = ((tiles - low) / (high - low).clamp_min(1e-12)).permute(0, 2, 3, 1).numpy()
    count = len(stretched)
    columns = min(count, 8 if count <= 32 else 16)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(columns * 0.9, rows * 0.9 + 0.5))
    axes_grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for index, axes in enumerate(axes_grid):
        axes.set_axis_off()
        if index < count:
            tile = stretched[index]
            if tile.shape[2] == 1:
                axes.imshow(tile[:, :, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                axes.imshow(tile, interpolation="nearest")
    figure.suptitle(title)
    return figure


def image_grid(images: torch.Tensor, captions: list[str], title: str, columns: int = 8) -> Figure:
    """uint8 images (N, C, H, W) as a grid, a caption over each."""
    count = len(images)
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(columns * 1.5, rows * 1.75 + 0.4))
    axes_grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for index, axes in enumerate(axes_grid):
        axes.set_axis_off()
        if index < count:
            pixels = images[index].permute(1, 2, 0).numpy()
            if pixels.shape[2] == 1:
                axes.imshow(pixels[:, :, 0], cmap="gray", vmin=0, vmax=255)
            else:
                axes.imshow(pixels)
            axes.set_title(captions[index], fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def error_bars(names: list[str], top1_errors: list[float], title: str) -> Figure:
    """Horizontal bars of top-1 error (%), one per model, in the given order."""
    figure = Figure(figsize=(7, 0.45 * len(names) + 1.2))
    axes = figure.subplots()
    positions = np.arange(len(names))
    values = [100 * error for error in top1_errors]
    bars = axes.barh(positions, values, color="tab:blue")
    axes.bar_label(bars, labels=[f"{v:.2f}%" for v in values], padding=3, fontsize=8)
    axes.set_yticks(positions, names)
    axes.invert_yaxis()  # first model on top
    axes.set(xlabel="test top-1 error (%)", title=title)
    axes.set_xlim(0, max(values + [0.1]) * 1.2)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def save_png(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as PNG (folders made as needed), whole or not at all."""
    return atomic_write_bytes(path, figure_png(figure))


def save_image_grid(images: torch.Tensor, titles: list[str], path: Path, columns: int = 8) -> Path:
    """uint8 (N, C, H, W) images in a grid, each titled (e.g. with its class name)."""
    return save_png(image_grid(images, titles, title="", columns=columns), path)


def save_confusion_png(confusion: torch.Tensor, classes: list[str], path: Path) -> Path:
    """The confusion matrix (row = true class) as a PNG heat map with counts."""
    return save_png(confusion_matrix_figure(confusion, classes), path)


def save_sample_grid(
    dataset: str, split: str, count: int, seed: int, path: Path, data_dir: Path | None = None
) -> Path:
    """``count`` random images of a data set's split (drawn with ``seed``), titled with
    their classes, as a PNG grid at ``path``."""
    from cnnkit.data import load_dataset

    train, test = load_dataset(dataset, data_dir)
    chosen = train if split == "train" else test
    picks = torch.randperm(len(chosen), generator=torch.Generator().manual_seed(seed))[:count]
    titles = [chosen.classes[int(chosen.labels[i])] for i in picks]
    return save_image_grid(chosen.images[picks], titles, path)
