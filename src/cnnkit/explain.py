"""See inside a trained network: every layer's activations for an image, and the evidence
for a class (Grad-CAM, saliency, SmoothGrad), as a figure, a table and JSON.

The explanation itself comes from the run layer's one module (``runs.explain``), which
the server and the report call too; this module reads the images (``Run.read_images``,
as ``cnnkit predict`` does), names the class to explain, and draws. An ``Explained``
prints as a table, renders in Jupyter as its figure, and gives ``cnnkit explain
--format json``'s object.
"""

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from tabulate import tabulate

from cnnkit.data.held import HeldImage
from cnnkit.errors import ConfigError
from cnnkit.plots import figure_png
from cnnkit.predict import percent
from cnnkit.runs import Run, load_run
from cnnkit.runs.explain import SMOOTHGRAD_SAMPLES, Explanation, LayerActivations, explain_batch

MAPS_SHOWN = 32  # feature maps drawn per layer; the JSON has them all
OVERLAY_ALPHA = 0.5  # of a heat map drawn over the input


@dataclass(frozen=True, repr=False)
class Explained:
    """One image's explanation (``runs.explain.Explanation``), to read or to look at."""

    explanation: Explanation

    @property
    def label(self) -> str:
        """The network's top class."""
        return self.explanation.label

    @property
    def layers(self) -> tuple[LayerActivations, ...]:
        return self.explanation.layers

    def to_json(self) -> dict:
        return self.explanation.to_json()

    def table(self, style: str = "simple") -> str:
        """Every layer with its shape, units and the range of its activations."""
        rows = [
            (
                layer.name,
                layer.kind,
                "x".join(map(str, layer.shape)),
                f"{layer.units:,}",
                f"{layer.values.min():.3g} .. {layer.values.max():.3g}",
            )
            for layer in self.layers
        ]
        headers = ["layer", "kind", "shape", "units", "activations"]
        return tabulate(rows, headers=headers, tablefmt=style, disable_numparse=True)

    def verdict(self) -> str:
        """The answer, the class explained, and whether the image looks familiar."""
        found = self.explanation
        top = ", ".join(f"{name} {percent(p)}" for name, p in found.top(3))
        where = (
            f"Grad-CAM on {found.gradcam_layer}"
            if found.gradcam_layer
            else "no Grad-CAM (no convolution's output is larger than 1x1)"
        )
        lines = [f"{found.source}: {found.label} ({top}); explained: {found.target_label}; {where}"]
        lines.append(novelty_line(found))
        return "\n".join(lines)

    def figure(self) -> Figure:
        return explanation_figure(self.explanation)

    def png(self) -> bytes:
        return figure_png(self.figure())

    def __repr__(self) -> str:
        return f"{self.verdict()}\n{self.table()}"

    def _repr_html_(self) -> str:
        picture = base64.b64encode(self.png()).decode("ascii")
        verdict = "<br>".join(escape(line) for line in self.verdict().splitlines())
        return (
            f"<p>{verdict}</p>"
            f'<img style="max-width:100%" alt="every layer of the network for '
            f'{escape(self.explanation.source)}" src="data:image/png;base64,{picture}">'
            f"{self.table('html')}"
        )


def novelty_line(explanation: Explanation) -> str:
    novelty = explanation.novelty
    if novelty is None:
        return explanation.novelty_note
    if novelty.unusual:
        return (
            f"caution: this image looks unlike the training images (novelty score "
            f"{novelty.score:.1f} > threshold {novelty.threshold:.1f}); the answer may mean little"
        )
    score, threshold = f"{novelty.score:.1f}", f"{novelty.threshold:.1f}"
    return f"looks like the training images (novelty score {score} <= threshold {threshold})"


def class_index(run: Run, name: str | None) -> int | None:
    """The position of class ``name`` among the run's classes (None: the top class)."""
    if name is None:
        return None
    if name not in run.classes:
        shown = ", ".join(run.classes[:12]) + (", ..." if len(run.classes) > 12 else "")
        raise ConfigError(f"class {name!r} is not one of the run's classes ({shown})")
    return run.classes.index(name)


def explain_images(
    run: Run,
    images: HeldImage | Sequence[HeldImage],
    target: str | None = None,
    smoothgrad_samples: int = SMOOTHGRAD_SAMPLES,
) -> Explained | list[Explained]:
    """Each image's explanation for class ``target`` (a class name; its top class by
    default): one ``Explained`` for one image, a list for a list or a batch."""
    held = run.read_images(images)
    index = class_index(run, target)
    found = explain_batch(
        run,
        held.images,
        held.names,
        [index] * len(held.images),
        smoothgrad_samples=smoothgrad_samples,
    )
    explained = [Explained(explanation) for explanation in found]
    return explained[0] if held.single else explained


def explain_file(checkpoint: Path, image: Path, target: str | None = None) -> Explained:
    """``explain_images`` of one image file with the run at ``checkpoint``."""
    explained = explain_images(load_run(checkpoint), image, target)
    assert isinstance(explained, Explained)  # one image was given
    return explained


def explanation_figure(explanation: Explanation) -> Figure:
    """The input and its overlays (Grad-CAM, saliency, SmoothGrad), the probabilities,
    then every layer's maps in forward order, each titled with its name, shape and units."""
    layers = explanation.layers
    rows_per_layer = [_grid_rows(layer) for layer in layers]
    columns = 8
    figure = Figure(figsize=(columns * 1.1, 2.6 + sum(rows_per_layer) * 1.25 + 0.35 * len(layers)))
    grid = figure.add_gridspec(
        1 + sum(rows_per_layer), columns, height_ratios=[2.2] + [1.0] * sum(rows_per_layer)
    )
    _draw_overlays(figure, grid, explanation)
    row = 1
    for layer, rows in zip(layers, rows_per_layer, strict=True):
        # The last layer's units are the classes: name them where they fit.
        last = layer is layers[-1] and len(explanation.classes) <= 20
        names = explanation.classes if last else ()
        _draw_layer(figure, grid[row : row + rows, :], layer, columns, names)
        row += rows
    figure.subplots_adjust(hspace=0.6)
    return figure


def _grid_rows(layer: LayerActivations) -> int:
    """Rows of the figure a layer takes: its maps eight to a row, or one strip of units."""
    if not layer.has_maps:
        return 1
    return math.ceil(min(layer.shape[0], MAPS_SHOWN) / 8)


def _gray(explanation: Explanation) -> np.ndarray:
    """The input as the network received it, (H, W) grayscale or (H, W, 3) colour."""
    pixels = explanation.input
    return pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)


def _draw_overlays(figure: Figure, grid, explanation: Explanation) -> None:  # type: ignore[no-untyped-def]
    top = grid[0, :].subgridspec(1, 5, wspace=0.3)
    pixels = _gray(explanation)
    cmap = "gray" if pixels.ndim == 2 else None
    panels = [
        ("the network's input", None),
        (f"Grad-CAM: {explanation.target_label}", explanation.gradcam),
        ("saliency", explanation.saliency),
        ("SmoothGrad", explanation.smoothgrad),
    ]
    for k, (title, heat) in enumerate(panels):
        axes = figure.add_subplot(top[0, k])
        axes.imshow(pixels, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
        if heat is not None:
            axes.imshow(heat, cmap="jet", alpha=OVERLAY_ALPHA, vmin=0, vmax=1)
        elif k:
            title += "\n(not computed)"
        axes.set_title(title, fontsize=8)
        axes.set_axis_off()
    bars = figure.add_subplot(top[0, 4])
    names, probabilities = zip(*explanation.top(5), strict=True)
    bars.barh(range(len(names))[::-1], [100 * p for p in probabilities], color="tab:blue")
    bars.set_yticks(range(len(names))[::-1], names, fontsize=8)
    bars.set_xlim(0, 100)
    bars.set_title("probability (%)", fontsize=8)
    bars.tick_params(axis="x", labelsize=7)


def _draw_layer(  # type: ignore[no-untyped-def]
    figure: Figure, cell, layer: LayerActivations, columns: int, unit_names: Sequence[str]
) -> None:
    shape = "x".join(map(str, layer.shape))
    title = f"{layer.name} ({layer.kind}): {shape}, {layer.units:,} units"
    if not layer.has_maps:
        axes = figure.add_subplot(cell)
        strip = layer.values.reshape(1, -1)
        axes.imshow(strip, cmap="viridis", aspect="auto", interpolation="nearest")
        axes.set_yticks([])
        if unit_names:
            axes.set_xticks(range(len(unit_names)), unit_names, fontsize=7)
        else:
            axes.set_xticks([])
        axes.set_title(title, fontsize=8, loc="left")
        return
    shown = min(layer.shape[0], MAPS_SHOWN)
    if shown < layer.shape[0]:
        title += f" (the first {shown} of {layer.shape[0]} maps)"
    rows = math.ceil(shown / columns)
    maps = cell.subgridspec(rows, columns, wspace=0.05, hspace=0.15)
    low, high = float(layer.values[:shown].min()), float(layer.values[:shown].max())
    for k in range(rows * columns):
        axes = figure.add_subplot(maps[k // columns, k % columns])
        axes.set_axis_off()
        if k < shown:
            # One colour scale per layer: which maps are strong shows, not only where.
            axes.imshow(
                layer.values[k], cmap="viridis", vmin=low, vmax=high, interpolation="nearest"
            )
        if k == 0:
            axes.set_title(title, fontsize=8, loc="left")
