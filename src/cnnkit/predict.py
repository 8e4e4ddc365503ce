"""Classify images with a trained run: the top classes of each, with probabilities.

Every image, a file or one a user holds (a PIL image, an array, a tensor), is read by
the run layer's one path (``Run.read_images``): prepared as MNIST prepared its digits
for digit models, resized and cropped as in training for the others. A ``Prediction``
prints as a table and renders as one in Jupyter, as does a list of them
(``Predictions``); ``cnnkit predict`` prints the same table.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from tabulate import tabulate

from cnnkit.config import is_count
from cnnkit.data.held import HeldImage
from cnnkit.errors import ConfigError
from cnnkit.runs import Run, load_run


@dataclass(frozen=True, repr=False)
class Prediction:
    source: str  # the file's path, or the image's place in what was given ("image 2")
    top: list[tuple[str, float]]  # (class name, probability), most probable first

    @property
    def label(self) -> str:
        """The most probable class."""
        return self.top[0][0]

    @property
    def probability(self) -> float:
        """The most probable class's probability."""
        return self.top[0][1]

    def table(self, style: str = "simple") -> str:
        rows = [(rank, name, percent(p)) for rank, (name, p) in enumerate(self.top, 1)]
        return tabulate(rows, headers=["rank", "class", "probability"], tablefmt=style)

    def __repr__(self) -> str:
        return f"{self.source}: {self.label}\n{self.table()}"

    def _repr_html_(self) -> str:
        return f"<p>{escape(self.source)}: <b>{escape(self.label)}</b></p>{self.table('html')}"


class Predictions(list[Prediction]):
    """One ``Prediction`` per image, in the order given; prints as one table."""

    def table(self, style: str = "simple") -> str:
        width = max((len(p.top) for p in self), default=0)
        rows = [[p.source] + [f"{name} ({percent(prob)})" for name, prob in p.top] for p in self]
        headers = ["image"] + [f"#{rank}" for rank in range(1, width + 1)]
        return tabulate(rows, headers=headers, tablefmt=style, disable_numparse=True)

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self.table("html")


def percent(probability: float) -> str:
    return f"{100 * probability:.1f}%"


def predict_images(
    run: Run, images: HeldImage | Sequence[HeldImage], top: int = 5
) -> Prediction | Predictions:
    """The ``top`` classes of each image (``Run.read_images`` takes what a user holds):
    one ``Prediction`` for one image, ``Predictions`` for a list or a batch."""
    if not is_count(top):
        raise ConfigError(f"top={top!r}: expected a whole number of classes, 1 or more")
    held = run.read_images(images)
    probs = run.logits(held.images).softmax(dim=1)
    best = probs.topk(min(top, probs.shape[1]), dim=1)
    predictions = Predictions(
        Prediction(name, [(run.classes[i], p) for p, i in zip(values, indices, strict=True)])
        for name, values, indices in zip(
            held.names, best.values.tolist(), best.indices.tolist(), strict=True
        )
    )
    return predictions[0] if held.single else predictions


def predict_files(checkpoint: Path, paths: list[Path], top: int = 5) -> Predictions:
    """``predict_images`` of image files with the run at ``checkpoint``."""
    predictions = predict_images(load_run(checkpoint), list(paths), top)
    assert isinstance(predictions, Predictions)  # a list was given
    return predictions
