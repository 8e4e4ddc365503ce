"""The ``Run`` that ``cnnkit.train`` and ``cnnkit.load`` return: a trained model with its
record, predicting on what a user holds. It wraps the run layer's ``runs.Run`` and calls
the consumers (``predict``, ``explain``, ``evaluate``), so that the run layer never imports one."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from cnnkit.analysis.size import Shape, model_size
from cnnkit.analysis.summary import Summary
from cnnkit.data.held import HeldImage
from cnnkit.evaluate import EvalReport, evaluate_run
from cnnkit.explain import Explained, explain_images
from cnnkit.predict import Prediction, Predictions, predict_images
from cnnkit.read import Reading, Readings, find_images, read_images
from cnnkit.runs import EpochRecord, RunRecord, load_run
from cnnkit.runs import Run as LoadedRun


class Run:
    """A trained model and its record. Images may be a path, a PIL image, a numpy
    array (H x W, H x W x C or N x H x W x C; uint8, or floats in [0, 1]), a tensor
    (C x H x W or N x C x H x W), or a list of them; each is prepared as
    ``cnnkit predict`` prepares a file."""

    def __init__(self, loaded: LoadedRun, report: Path | None = None) -> None:
        self.loaded = loaded  # the run layer's Run: batched logits and features
        self.report = report  # report.html, when training drew one

    @property
    def path(self) -> Path:
        """The checkpoint."""
        return self.loaded.path

    @property
    def record(self) -> RunRecord:
        """What the model needs to be used: its name, classes, sizes, normalisation."""
        return self.loaded.record

    @property
    def classes(self) -> list[str]:
        return self.loaded.classes

    @property
    def model(self) -> nn.Module:
        """The PyTorch module, in eval mode."""
        return self.loaded.model

    @property
    def history(self) -> list[EpochRecord]:
        """One record per epoch trained: losses, errors, learning rate, time."""
        return self.loaded.history

    def predict(
        self, images: HeldImage | Sequence[HeldImage], top: int = 5
    ) -> Prediction | Predictions:
        """The ``top`` classes with probabilities: a ``Prediction`` for one image
        (``.label`` is its class), ``Predictions`` for a list or a batch."""
        return predict_images(self.loaded, images, top)

    def explain(
        self, images: HeldImage | Sequence[HeldImage], target: str | None = None
    ) -> Explained | list[Explained]:
        """What every layer computed and the evidence for class ``target`` (its name; the
        top class by default): Grad-CAM, saliency, SmoothGrad and whether the image looks
        unlike the training images. An ``Explained`` for one image (it renders as a
        figure in Jupyter; ``.to_json()`` is ``cnnkit explain --format json``'s object),
        a list for a list or a batch."""
        return explain_images(self.loaded, images, target)

    def read(
        self,
        images: HeldImage | Sequence[HeldImage],
        reader: str = "segment",
        digits: int | None = None,
    ) -> Reading | Readings:
        """The handwritten number in each image, as ``cnnkit read`` reads it: a
        ``Reading`` (``.text``, ``.confidence``, ``.digits``: a box, class and
        probability each) for one image, ``Readings`` for a list. ``reader``:
        ``segment`` or ``sdnn``; ``digits``: read exactly that many."""
        return read_images(self.loaded, images, reader, digits)

    def find(self, images: HeldImage | Sequence[HeldImage]) -> Reading | Readings:
        """Every digit in each image (a page of scattered digits), as ``cnnkit find``
        finds them: a ``Reading`` whose ``.digits`` are the boxes found."""
        return find_images(self.loaded, images)

    def features(self, images: HeldImage | Sequence[HeldImage]) -> torch.Tensor:
        """Penultimate-layer features: (D,) for one image, (N, D) for a list or batch."""
        held = self.loaded.read_images(images)
        features = self.loaded.features(held.images)
        return features[0] if held.single else features

    def evaluate(
        self,
        dataset: str | None = None,
        limit: int | None = None,
        tta: str = "none",
        data_dir: Path | None = None,
    ) -> EvalReport:
        """Top-1 and top-5 error and confusion on a test set (the run's own by
        default; the first ``limit`` images), as ``cnnkit evaluate`` gives them."""
        return evaluate_run(self.loaded, dataset, data_dir, limit, tta)

    def summary(self, input: Shape | None = None) -> Summary:
        """The size table of the trained model, at its input size by default."""
        record = self.record
        return Summary(model_size(record.model, input or record.input_shape, record.num_classes))

    def __repr__(self) -> str:
        record, history = self.record, self.history
        trained = f"{len(history)} epochs" if len(history) != 1 else "1 epoch"
        if history:
            trained += f", test top-1 error {100 * history[-1].test_top1_error:.2f}%"
        return f"Run({record.model} on {record.dataset}, {trained}: {self.path})"


def load(path: str | Path, device: str = "auto") -> Run:
    """The run in ``path``: a ``checkpoint.pt`` or the folder that holds one."""
    return Run(load_run(Path(path), device))
