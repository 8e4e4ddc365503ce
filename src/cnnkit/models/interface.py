"""``Classifier``: what every registered model is, and all that a tool may rely on.

Search, export, the report, the server and explanations use a model only through
this interface, never by guessing with hooks: the input it takes (``input_size``),
its features (``forward_features``, the penultimate layer), its head (``classify``,
features to logits), and its convolutions by name, in the order ``forward`` applies
them (``convolutions``). ``forward`` is always ``classify(forward_features(x))``.
"""

import torch
from torch import nn

from cnnkit.models.layers import TableConv2d

# The layer kinds that ``convolutions`` lists: the 2-D convolutions (LeNet-5's full C5,
# ``FullConv2d``, among them) and LeNet's connection-table convolutions.
Convolution = nn.Conv2d | TableConv2d


class Classifier(nn.Module):
    """A registered model: subclasses set ``input_size`` in ``__init__`` and define
    ``forward_features`` and ``classify``."""

    input_size: tuple[int, int, int]  # (C, H, W) of the input it is built for
    # The block whose output Grad-CAM weighs, where the last convolution is not what the
    # head reads: one branch of an Inception block, or a residual block's last
    # convolution before the shortcut is added. None: the last convolution larger than 1x1.
    gradcam_block: str | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) normalised images -> (N, D) penultimate-layer features."""
        raise NotImplementedError

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N, K) logits: the classifier head."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_features(x))

    def convolutions(self) -> list[tuple[str, Convolution]]:
        """The convolution layers that ``forward`` applies, by name, in its order (the
        order the model defines them; a model whose order differs, or that has layers
        ``forward`` skips, such as auxiliary heads, says so by overriding this)."""
        return [
            (name, module)
            for name, module in self.named_modules()
            if isinstance(module, Convolution)
        ]


def kernels(layer: Convolution) -> torch.Tensor:
    """A convolution's (out, in, k, k) kernels; a connection table's absent ones zero."""
    return layer.dense_weight() if isinstance(layer, TableConv2d) else layer.weight
