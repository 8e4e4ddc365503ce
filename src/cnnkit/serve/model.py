"""What the model process computes with a run: the class probabilities of uploads, the
explanation of one (``runs.explain``: every layer, Grad-CAM, saliency, the novelty
verdict) in the compact form the page draws, and the model's description. ``worker``
runs it in its own process, an item at a time (``read``: an upload that fails to decode
gets its ``ImageError`` as its answer), then the readable ones together in one forward
pass (``probabilities``, ``explanations``).

Each upload is decoded and prepared by the run layer's one file-to-pixels path
(``Run.read_file``).
"""

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cnnkit.analysis import size_report
from cnnkit.errors import CnnkitError
from cnnkit.runs import Run
from cnnkit.runs import explain as runs_explain
from cnnkit.serve.png import pixels_png
from cnnkit.serve.uploads import Upload
from cnnkit.serve.wire import Explanation, LayerMaps, NoveltyVerdict

# Maps drawn per layer: ResNet's conv1 has 64, and a layer of hundreds would cost the
# answer more than the rest of it; the answer says how many it holds.
MAX_MAPS = 64


def gray_levels(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] as uint8 grey levels, 0-255."""
    return (values * 255).round().astype(np.uint8)


def layer_maps(layer: runs_explain.LayerActivations) -> LayerMaps:
    """A layer's activations as one grayscale picture: its first ``MAX_MAPS`` maps side
    by side, or its units in a row; black its least value, white its largest."""
    values = layer.values
    low, high = float(values.min()), float(values.max())
    maps = min(MAX_MAPS, layer.shape[0]) if layer.has_maps else 0
    if maps:
        strip = np.concatenate(list(values[:maps]), axis=1)  # (H, maps * W)
    else:
        strip = values.reshape(1, -1)
    scaled = (strip - low) / (high - low) if high > low else np.zeros_like(strip)
    return LayerMaps(
        layer.name, layer.kind, layer.shape, layer.units, gray_levels(scaled), maps, low, high
    )


def served_explanation(explanation: runs_explain.Explanation, note: str) -> Explanation:
    """The run layer's explanation in the compact form the HTTP process sends on;
    ``note``: why there is no novelty verdict, when there is none."""
    novelty = explanation.novelty
    image = explanation.input.transpose(1, 2, 0)  # (H, W, C)
    return Explanation(
        input=image[:, :, 0] if image.shape[2] == 1 else np.ascontiguousarray(image),
        probs=explanation.probabilities,
        target=explanation.target,
        layers=tuple(layer_maps(layer) for layer in explanation.layers),
        gradcam_layer=explanation.gradcam_layer,
        gradcam=None if explanation.gradcam is None else gray_levels(explanation.gradcam),
        saliency=gray_levels(explanation.saliency),
        novelty=None if novelty is None else NoveltyVerdict(novelty.score, novelty.threshold),
        novelty_note=note if novelty is None else "",
    )


@dataclass
class ServedModel:
    run: Run
    # Why explanations carry no novelty verdict (the run's training images are not at
    # hand), as ``warm_up`` found; "" once the detector is fitted.
    novelty_note: str = "no novelty score: the server has not been warmed up"

    def read(self, upload: Upload) -> torch.Tensor:
        """The upload as the run's prepared uint8 (C, H, W) pixels; an ``ImageError``
        when it cannot be read."""
        return self.run.read_file(io.BytesIO(upload.data), upload.name)

    def read_explained(self, item: tuple[Upload, int | None]) -> tuple[torch.Tensor, int | None]:
        """An explain item, (upload, class or None for the top class), with its upload read."""
        upload, target = item
        return self.read(upload), target

    def probabilities(self, images: list[torch.Tensor]) -> list[np.ndarray]:
        """Class probabilities (K,) of each image, in one forward pass."""
        return list(self.run.logits(torch.stack(images)).softmax(dim=1).numpy())

    def explanations(self, items: list[tuple[torch.Tensor, int | None]]) -> list[Explanation]:
        """Each image's explanation for its class, from one forward and one backward pass
        of them together; without SmoothGrad, whose noisy copies would cost a page's
        answer many times a prediction."""
        images = torch.stack([image for image, _ in items])
        explanations = runs_explain.explain_batch(
            self.run,
            images,
            [f"image {k + 1}" for k in range(len(items))],
            [target for _, target in items],
            smoothgrad_samples=0,
            novelty=not self.novelty_note,
        )
        return [served_explanation(found, self.novelty_note) for found in explanations]

    def warm_up(self) -> None:
        """A blank image through the decoder and the model, so that the first request
        pays for no lazy import (torchvision's resize is slow to import) and no first
        allocation; and the novelty detector fitted (it reads some of the run's training
        images), or the reason there is none noted, so that no explanation waits for it."""
        height, width = self.run.record.image_size
        height, width = height + 1, width + 1  # not the stored size: photos get resized
        shape = (height, width) if self.run.record.in_channels == 1 else (height, width, 3)
        blank = self.read(Upload("warm-up", pixels_png(np.zeros(shape, np.uint8))))
        self.probabilities([blank])
        try:
            self.run.novelty  # noqa: B018 (fitted on first use, then kept)
            self.novelty_note = ""
        except CnnkitError as error:
            self.novelty_note = f"no novelty score: {error}"
        self.explanations([(blank, None)])

    def describe(self) -> dict[str, Any]:
        """The model's name, data, classes, sizes and the size analyzer's totals."""
        record, model = self.run.record, self.run.model
        totals = size_report(model, model.input_size, record.model).totals
        first = next(iter(model.convolutions()), None)
        return {
            "model": record.model,
            "dataset": record.dataset,
            "classes": list(record.classes),
            "preparation": record.preparation,
            "input_shape": list(record.input_shape),  # (C, H, W) the network takes
            "image_size": list(record.image_size),  # (H, W) of the training images
            "parameters": totals.parameters,
            "units": totals.units,
            "connections": totals.connections,
            "connections_with_biases": totals.connections_with_biases,
            "first_layer": first[0] if first is not None else None,
        }
