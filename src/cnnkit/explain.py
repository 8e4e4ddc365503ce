"""See inside a trained network: every layer's activations for an image, and the evidence
for a class (Grad-CAM, saliency, SmoothGrad), as a figure, a table and JSON.

The explanation itself comes from the run layer's one module (``runs.explain``), which
the server and the report call too; this module reads the images (``Run.read_images``,
as ``cnnkit predict`` does), names the class to explain, and draws. An ``Explained``
prints as a table, renders in Jupyter as its figure, and gives ``cnnkit explain
--format json``'s object.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from matplotlib.figure import Figure
from tabulate import tabulate

from cnnkit.data.held import HeldImage
from cnnkit.data.image_files import png_data_uri
from cnnkit.errors import ConfigError
from cnnkit.plots import explanation_figure, figure_png
from cnnkit.runs import Run, load_run
from cnnkit.runs.explain import SMOOTHGRAD_SAMPLES, Explanation, LayerActivations, explain_batch


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
        top = ", ".join(f"{name} {100 * p:.1f}%" for name, p in found.top(3))
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
        verdict = "<br>".join(escape(line) for line in self.verdict().splitlines())
        return (
            f"<p>{verdict}</p>"
            f'<img style="max-width:100%" alt="every layer of the network for '
            f'{escape(self.explanation.source)}" src="{png_data_uri(self.png())}">'
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
    explained, single = _explained(run, images, target, smoothgrad_samples)
    return explained[0] if single else explained


def explain_file(checkpoint: Path, image: Path, target: str | None = None) -> Explained:
    """``explain_images`` of one image file with the run at ``checkpoint``."""
    explained, _ = _explained(load_run(checkpoint), [image], target, SMOOTHGRAD_SAMPLES)
    return explained[0]


def _explained(
    run: Run,
    images: HeldImage | Sequence[HeldImage],
    target: str | None,
    smoothgrad_samples: int,
) -> tuple[list[Explained], bool]:
    """Every image's ``Explained``, and whether one image (not a list) was given."""
    held = run.read_images(images)
    index = class_index(run, target)
    found = explain_batch(
        run,
        held.images,
        held.names,
        [index] * len(held.images),
        smoothgrad_samples=smoothgrad_samples,
    )
    return [Explained(explanation) for explanation in found], held.single
