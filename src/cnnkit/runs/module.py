"""``RunModule``: a trained model behind the run layer's test-time preparation, as one
module: uint8 images at the data's size in, logits out. What ``export`` writes, so that
a file runs without cnnkit and gives the run's own logits."""

import torch
from torch import nn

from cnnkit.models import Classifier
from cnnkit.runs.record import RunRecord
from cnnkit.transforms import fit_to_input
from cnnkit.transforms.batch import normalization


class RunModule(nn.Module):
    """uint8 images at the data's size -> padded or centre-cropped to the model's input
    (``fit_to_input``) -> (x/255 - mean) / std per channel (``normalization``, held as
    buffers) -> logits. Padding adds zeros, MNIST's background."""

    scale: torch.Tensor  # buffers (torch types them as Tensor | Module)
    shift: torch.Tensor

    def __init__(self, model: Classifier, record: RunRecord) -> None:
        super().__init__()
        self.model = model
        scale, shift = normalization(record.mean, record.std)
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = fit_to_input(images, self.model.input_size).float()
        return self.model(torch.addcmul(self.shift, x, self.scale))
