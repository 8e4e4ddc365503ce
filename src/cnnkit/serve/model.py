"""What the model process computes with a run: the class probabilities of uploads, what
the first convolution layer sees of one, and the model's description. ``worker`` runs
it in its own process, an item at a time (``read``: an upload that fails to decode gets
its ``ImageError`` as its answer), then the readable ones together in one forward pass
(``probabilities``, ``explanations``).

Each upload is decoded and prepared by the run layer's one file-to-pixels path
(``Run.read_file``).
"""

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnkit.analysis import size_report
from cnnkit.data.image_files import png_bytes
from cnnkit.runs import Run
from cnnkit.serve.uploads import Upload
from cnnkit.serve.wire import Explanation

MAX_MAPS = 64  # feature maps shown per image: ResNet's conv1 has 64, the page has room for them


def pixels_png(pixels: np.ndarray) -> bytes:
    """uint8 (H, W) or (H, W, 3) pixels as a PNG file."""
    return png_bytes(Image.fromarray(pixels))


def map_png(feature_map: torch.Tensor) -> bytes:
    """One (H, W) float map as a grayscale PNG, its minimum black and maximum white."""
    low, high = feature_map.min(), feature_map.max()
    scaled = (feature_map - low) / (high - low) if high > low else torch.zeros_like(feature_map)
    return pixels_png((scaled * 255).round().to(torch.uint8).numpy())


def image_png(image: torch.Tensor) -> bytes:
    """A uint8 (C, H, W) image as a PNG file."""
    pixels = image.permute(1, 2, 0).numpy()
    return pixels_png(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


@dataclass(frozen=True)
class ServedModel:
    run: Run

    def read(self, upload: Upload) -> torch.Tensor:
        """The upload as the run's prepared uint8 (C, H, W) pixels; an ``ImageError``
        when it cannot be read."""
        return self.run.read_file(io.BytesIO(upload.data), upload.name)

    def probabilities(self, images: list[torch.Tensor]) -> list[np.ndarray]:
        """Class probabilities (K,) of each image, in one forward pass."""
        return list(self.run.logits(torch.stack(images)).softmax(dim=1).numpy())

    def explanations(self, images: list[torch.Tensor]) -> list[Explanation]:
        """Each image's model input and first-layer feature maps, in one forward pass."""
        return self.explain_images(torch.stack(images))

    def explain_images(self, images: torch.Tensor) -> list[Explanation]:
        """The model input, first convolution's output and probabilities of each image,
        the maps caught by a forward hook during one ordinary forward pass."""
        inputs = self.run.prepare(images)
        first = next(iter(self.run.model.convolutions()), None)
        captured: list[torch.Tensor] = []
        handle = None
        if first is not None:
            handle = first[1].register_forward_hook(lambda m, i, output: captured.append(output))
        try:
            probs = self.run.logits(inputs).softmax(dim=1).numpy()
        finally:
            if handle is not None:
                handle.remove()
        maps = torch.cat(captured).float().cpu() if captured else None
        return [
            Explanation(
                input_png=image_png(inputs[k]),
                layer=first[0] if first is not None else None,
                map_pngs=[] if maps is None else [map_png(m) for m in maps[k, :MAX_MAPS]],
                probs=probs[k],
            )
            for k in range(len(inputs))
        ]

    def warm_up(self) -> None:
        """A blank image through the decoder and the model, so that the first request
        pays for no lazy import (torchvision's resize is slow to import) and no first allocation."""
        height, width = self.run.record.image_size
        height, width = height + 1, width + 1  # not the stored size: photos get resized
        shape = (height, width) if self.run.record.in_channels == 1 else (height, width, 3)
        self.probabilities([self.read(Upload("warm-up", pixels_png(np.zeros(shape, np.uint8))))])

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
