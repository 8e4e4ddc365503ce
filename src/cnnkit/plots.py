"""Figures of a training run, drawn with matplotlib's object API on the Agg canvas.

No ``pyplot``: each function builds a ``Figure`` of its own, so nothing global
(backend, current figure) is touched and figures are freed with their object.
"""

import io
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure

from cnnkit.files import atomic_write_bytes
from cnnkit.runs import EpochRecord
from cnnkit.runs.explain import Explanation, LayerActivations, is_within

DIVERGING = "RdBu_r"  # signed values: red positive, blue negative, white zero
SEQUENTIAL = "viridis"  # values that are never negative (after a ReLU)
HEAT = "jet"  # Grad-CAM overlays, as Selvaraju et al. 2017 draw them
FILTER_INCHES = 1.1  # a filter's tile: a 5x5 kernel at 22 pixels a weight at 100 dpi
MAP_INCHES = 0.9  # one feature map's tile
MAPS_SHOWN = 32  # feature maps drawn per layer, the first ones
BARS_SHOWN = 128  # vectors up to this length as bars, longer ones as a grid of cells
LAYERS_DRAWN = 16  # in one explanation's figure: ResNet-50's 70 would take minutes to draw


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def learning_curves(history: list[EpochRecord]) -> Figure:
    """Loss and top-1 / top-5 error (%) per epoch, side by side: train beside test where
    the run measured both (older runs measured neither train error nor test loss), so
    that a gap opening between them shows over-fitting."""
    epochs = [record.epoch for record in history]
    figure = Figure(figsize=(9, 3.4))
    loss_axes, error_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [r.train_loss for r in history], "o-", label="train", color="tab:blue")
    plot_measured(loss_axes, epochs, [r.test_loss for r in history], "s-", "test", "tab:red")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    plot_measured(
        error_axes, epochs, [100 * r.train_top1_error for r in history], "o-", "train top-1",
        "tab:blue",
    )  # fmt: skip
    error_axes.plot(
        epochs,
        [100 * r.test_top1_error for r in history],
        "s-",
        label="test top-1",
        color="tab:red",
    )
    error_axes.plot(
        epochs, [100 * r.test_top5_error for r in history], "s--", label="test top-5", color="gray"
    )
    error_axes.set(xlabel="epoch", ylabel="error (%)", title="Error")
    for axes in (loss_axes, error_axes):
        axes.legend()
        axes.grid(alpha=0.3)
        axes.set_xticks(epochs if len(epochs) <= 12 else axes.get_xticks())
    figure.tight_layout()
    return figure


def plot_measured(
    axes: Axes, epochs: list[int], values: list[float], style: str, label: str, color: str
) -> None:
    """A line through the epochs that measured the value (NaN where an older cnnkit did
    not), or nothing when none did."""
    measured = [(e, value) for e, value in zip(epochs, values, strict=True) if math.isfinite(value)]
    if measured:
        axes.plot(*zip(*measured, strict=True), style, label=label, color=color)


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
    """A first layer's filters (out, in, k, k) as large tiles on one colour scale,
    symmetric about zero, so that a weight's sign and size read alike in every tile: one
    input channel in a diverging map (red positive, blue negative); three (RGB) as
    colours, each channel mid-grey at zero, the bar giving one channel's scale; more
    than three, their mean."""
    weight = weight.detach().float().cpu()
    if weight.shape[1] not in (1, 3):
        weight = weight.mean(dim=1, keepdim=True)
    rgb = weight.shape[1] == 3
    limit = float(weight.abs().max()) or 1.0
    count = len(weight)
    columns = min(count, 8 if count <= 32 else 12)
    rows = math.ceil(count / columns)
    figure = Figure(
        figsize=(columns * FILTER_INCHES + 1.4, rows * FILTER_INCHES + 0.8), layout="constrained"
    )
    axes_grid = figure.subplots(rows, columns, squeeze=False)
    for index, axes in enumerate(axes_grid.ravel()):
        axes.set_axis_off()
        if index >= count:
            continue
        if rgb:
            tile = (weight[index].permute(1, 2, 0).numpy() / limit + 1) / 2
            axes.imshow(tile, interpolation="nearest")
        else:
            tile = weight[index, 0].numpy()
            axes.imshow(tile, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
        axes.set_title(str(index), fontsize=8)
    scale = ScalarMappable(Normalize(-limit, limit), cmap="gray" if rgb else DIVERGING)
    label = "weight (each of R, G, B; grey = 0)" if rgb else "weight"
    figure.colorbar(scale, ax=axes_grid, label=label, shrink=min(1.0, 0.5 + 0.25 * rows))
    figure.suptitle(title)
    return figure


def learning_rate(history: list[EpochRecord], peak: float | None) -> Figure:
    """The learning rate at each epoch's last step, as the trainer recorded it, under the
    recipe's ``peak`` rate (None: not recorded)."""
    epochs = [record.epoch for record in history]
    figure = Figure(figsize=(6, 3), layout="constrained")
    axes = figure.subplots()
    axes.plot(epochs, [r.lr for r in history], "o:", color="tab:green", label="at epoch's end")
    if peak is not None:
        axes.axhline(peak, color="gray", linestyle="--", label=f"peak {peak:g}")
    axes.set(xlabel="epoch", ylabel="learning rate", title="Learning-rate schedule")
    axes.set_xticks(epochs if len(epochs) <= 12 else axes.get_xticks())
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def value_scale(values: np.ndarray) -> tuple[Colormap, Normalize]:
    """A colour map and its limits for activations: diverging and symmetric about zero
    where some are negative (tanh, a linear output), sequential from zero otherwise;
    cells without a value (NaN, the gaps between maps) white."""
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    if low < 0:
        limit = max(-low, high) or 1.0
        return colormaps[DIVERGING].with_extremes(bad="white"), Normalize(-limit, limit)
    return colormaps[SEQUENTIAL].with_extremes(bad="white"), Normalize(0, high or 1.0)


def mosaic(maps: np.ndarray, columns: int) -> np.ndarray:
    """(N, H, W) maps in one (rows, columns) grid, a NaN gap between them."""
    count, height, width = maps.shape
    rows = math.ceil(count / columns)
    gap = max(1, height // 8)
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    for index, image in enumerate(maps):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        grid[top : top + height, left : left + width] = image
    return grid


def layer_label(layer: LayerActivations) -> str:
    """'c1 (conv): 6x28x28, 4,704 units', as ``cnnkit size`` names and counts them."""
    shape = "x".join(map(str, layer.shape))
    return f"{layer.name} ({layer.kind}): {shape}, {layer.units:,} units"


def layer_maps(layer: LayerActivations, names: tuple[str, ...] = ()) -> Figure:
    """One layer's activations on its own colour scale: feature maps as tiles (the first
    ``MAPS_SHOWN``), a vector as bars (``names`` label a vector of their length, the
    classes of an output layer) or, when long, as a grid of cells read row by row."""
    values = layer.values
    title = layer_label(layer)
    if layer.has_maps:
        shown = values[:MAPS_SHOWN]
        columns = min(len(shown), 8)
        rows = math.ceil(len(shown) / columns)
        figure = Figure(
            figsize=(columns * MAP_INCHES + 1.2, rows * MAP_INCHES + 0.7), layout="constrained"
        )
        cells = mosaic(shown, columns)
        if len(shown) < len(values):
            title += f" (the first {len(shown)} of {len(values)} maps)"
    else:
        cells = values.reshape(-1)
        figure = Figure(figsize=(7, 2.6), layout="constrained")
    axes = figure.subplots()
    colours, scale = value_scale(cells)
    if cells.ndim == 1 and len(cells) <= BARS_SHOWN:
        positions = np.arange(len(cells))
        axes.bar(positions, cells, color=colours(scale(cells)), edgecolor="gray", linewidth=0.3)
        if len(names) == len(cells):
            axes.set_xticks(positions, names, rotation=90 if len(names) > 12 else 0, fontsize=8)
        axes.set(xlabel="class" if len(names) == len(cells) else "unit", ylabel="activation")
        axes.axhline(0, color="black", linewidth=0.5)
        axes.set_title(title, fontsize=10)
        return figure
    if cells.ndim == 1:  # rows of 32 units
        cells = np.pad(cells, (0, -len(cells) % 32), constant_values=np.nan).reshape(-1, 32)
    image = axes.imshow(cells, cmap=colours, norm=scale, interpolation="nearest")
    axes.set_axis_off()
    figure.colorbar(image, ax=axes, label="activation", shrink=0.9)
    axes.set_title(title, fontsize=10)
    return figure


def shown_image(explanation: Explanation) -> np.ndarray:
    """The image as the network received it, (H, W) or (H, W, 3), for ``imshow``."""
    pixels = explanation.input.transpose(1, 2, 0)
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels


def overlay(axes: Axes, explanation: Explanation, heat: np.ndarray | None) -> None:
    """The input in grey or colour, ``heat`` (H, W) in [0, 1] over it half-transparent."""
    axes.imshow(shown_image(explanation), cmap="gray", vmin=0, vmax=255)
    if heat is not None:
        axes.imshow(heat, cmap=HEAT, vmin=0, vmax=1, alpha=0.45, interpolation="bilinear")
    axes.set_axis_off()


def explained_image(explanation: Explanation, caption: str) -> Figure:
    """One image as the network received it, its Grad-CAM of the explained class over
    it, and its gradient saliency, side by side."""
    figure = Figure(figsize=(7.2, 2.9), layout="constrained")
    panels = figure.subplots(1, 3)
    overlay(panels[0], explanation, None)
    panels[0].set_title("input", fontsize=9)
    overlay(panels[1], explanation, explanation.gradcam)
    cam = f"Grad-CAM ({explanation.gradcam_layer})" if explanation.gradcam_layer else "no Grad-CAM"
    panels[1].set_title(f"{cam}: {explanation.target_label}", fontsize=9)
    panels[2].imshow(explanation.saliency, cmap="gray_r", vmin=0, vmax=1)
    panels[2].set_axis_off()
    panels[2].set_title("gradient saliency", fontsize=9)
    scale = ScalarMappable(Normalize(0, 1), cmap=HEAT)
    figure.colorbar(scale, ax=panels[1:], label="share of the largest value", shrink=0.8)
    figure.suptitle(caption, fontsize=10)
    return figure


def explanation_figure(explanation: Explanation) -> Figure:
    """Everything an explanation holds in one figure (``cnnkit explain --out``, and
    ``Run.explain`` in Jupyter): the input with Grad-CAM, saliency and SmoothGrad over
    it and the top 5, then every layer in forward order, each on its own colour scale
    (of a deep network, ``LAYERS_DRAWN`` of them, evenly spread, with the Grad-CAM layer
    and the output; the JSON and the table have every one)."""
    layers = drawn_layers(explanation)
    heights = [2.3] + [_layer_inches(layer) for layer in layers]
    figure = Figure(figsize=(8.5, sum(heights)), layout="constrained")
    rows = figure.subfigures(len(heights), 1, height_ratios=heights)
    assert isinstance(rows, np.ndarray)  # an array of subfigures: there is always a layer
    panels = rows[0].subplots(1, 5)
    cam = f"Grad-CAM ({explanation.gradcam_layer})" if explanation.gradcam_layer else "no Grad-CAM"
    heats = [
        ("the network's input", None),
        (f"{cam}: {explanation.target_label}", explanation.gradcam),
        ("gradient saliency", explanation.saliency),
        ("SmoothGrad", explanation.smoothgrad),
    ]
    for axes, (title, heat) in zip(panels, heats, strict=False):
        overlay(axes, explanation, heat)
        axes.set_title(title, fontsize=8)
    names, probabilities = zip(*explanation.top(5), strict=True)
    bars = panels[4]
    bars.barh(range(len(names))[::-1], [100 * p for p in probabilities], color="tab:blue")
    bars.set_yticks(range(len(names))[::-1], names, fontsize=8)
    bars.set_xlim(0, 100)
    bars.set_title("probability (%)", fontsize=8)
    bars.tick_params(axis="x", labelsize=7)
    for row, layer in zip(rows[1:], layers, strict=True):
        # The last layer's units are the classes: named where they fit.
        last = layer is layers[-1] and len(explanation.classes) <= 20
        _draw_layer(row, layer, explanation.classes if last else ())
    if len(layers) < len(explanation.layers):
        figure.suptitle(
            f"{len(layers)} of the {len(explanation.layers)} layers drawn, evenly spread "
            "(cnnkit explain's table and JSON have every one)",
            fontsize=8,
        )
    return figure


def drawn_layers(explanation: Explanation) -> tuple[LayerActivations, ...]:
    """The layers ``explanation_figure`` draws: every one, or for a deep network
    ``LAYERS_DRAWN`` spread evenly from the first to the output, with Grad-CAM's (a
    block's last layer, where Grad-CAM weighs a block)."""
    layers = explanation.layers
    if len(layers) <= LAYERS_DRAWN:
        return layers
    picked = set(np.linspace(0, len(layers) - 1, LAYERS_DRAWN - 1).round().astype(int).tolist())
    cam = explanation.gradcam_layer
    within = [k for k, layer in enumerate(layers) if cam and is_within(layer.name, cam)]
    return tuple(layers[k] for k in sorted(picked | set(within[-1:])))


def _layer_inches(layer: LayerActivations) -> float:
    """The height a layer takes in ``explanation_figure``: its maps eight to a row, or
    its units 32 to a row."""
    if layer.has_maps:
        return 0.3 + MAP_INCHES * math.ceil(min(layer.shape[0], MAPS_SHOWN) / 8)
    return 0.5 + 0.25 * math.ceil(layer.units / 32)


def _draw_layer(row, layer: LayerActivations, names: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    title = layer_label(layer)
    if layer.has_maps:
        shown = layer.values[:MAPS_SHOWN]
        cells = mosaic(shown, min(len(shown), 8))
        if len(shown) < len(layer.values):
            title += f" (the first {len(shown)} of {len(layer.values)} maps)"
    else:
        flat = layer.values.reshape(-1)
        cells = np.pad(flat, (0, -len(flat) % 32), constant_values=np.nan).reshape(-1, 32)
        if names:
            cells = flat[None, :]
    axes = row.subplots()
    colours, scale = value_scale(cells)
    aspect = "equal" if layer.has_maps else "auto"  # square maps stay square
    image = axes.imshow(cells, cmap=colours, norm=scale, interpolation="nearest", aspect=aspect)
    axes.set_yticks([])
    if names:
        axes.set_xticks(range(len(names)), names, fontsize=7)
    else:
        axes.set_xticks([])
    row.colorbar(image, ax=axes, shrink=0.9, aspect=10)
    axes.set_title(title, fontsize=8, loc="left")


def mistakes(explanations: list[Explanation], labels: list[int], title: str) -> Figure:
    """Misclassified images, each with the Grad-CAM of the class it was taken for over
    it, its true class and its three most probable classes."""
    count = len(explanations)
    columns = max(1, min(count, 4))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(columns * 1.9 + 1.0, rows * 2.6 + 0.5), layout="constrained")
    axes_grid = figure.subplots(rows, columns, squeeze=False)
    for index, axes in enumerate(axes_grid.ravel()):
        axes.set_axis_off()
        if index < count:
            explanation = explanations[index]
            overlay(axes, explanation, explanation.gradcam)
            top = "\n".join(f"{name} {100 * p:.0f}%" for name, p in explanation.top(3))
            true = explanation.classes[labels[index]]
            axes.set_title(f"true {true}\n{top}", fontsize=8, loc="left")
    if count:
        scale = ScalarMappable(Normalize(0, 1), cmap=HEAT)
        figure.colorbar(scale, ax=axes_grid, label="Grad-CAM of the class taken", shrink=0.6)
    figure.suptitle(title, fontsize=10)
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
