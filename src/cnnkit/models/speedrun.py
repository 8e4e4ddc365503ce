"""``speedrun``: the net for the fastest 99% test accuracy on MNIST on a CPU.

The shape of the fastest published one-epoch recipe's network (tuomaso/train_mnist_fast,
its final notebook): two convolutions, each followed by 2x2 max pooling and then ReLU
(pooling first computes the same function with a quarter of the ReLUs), a hidden layer
and a linear classifier. Its recipe (``SPEEDRUN_RECIPE``) is Adam with that notebook's
betas under a one-cycle schedule for one epoch, chosen on a validation split held out
of the training set (``benchmarks/recipe_search.py speedrun``); docs/speedrun.md lists
the levers tried and what each did.

Deviations from the notebook: the network is the same (widths, kernels and hidden
layer are options whose defaults are the notebook's), but its output is logits (the
loss applies the log-softmax); cnnkit's trainer draws a new permutation for the epoch,
uses its own one-cycle shape (linear warm-up, cosine decay to zero) and, on a CPU, the
channels_last layout, which is most of the speed-up (docs/speedrun.md).
"""

from typing import Any

import torch
from torch import nn

from cnnkit.config import SPEEDRUN_RECIPE
from cnnkit.models.interface import Classifier
from cnnkit.models.layers import final_map_size, pair
from cnnkit.models.registry import register_model


class Speedrun(Classifier):
    """conv1 (5x5) -> pool1 -> relu1 -> conv2 (3x3) -> pool2 -> relu2 -> fc3 -> relu3 ->
    fc4, unpadded convolutions; 28x28 inputs by default."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int | tuple = 28,
        widths: tuple[int, int] = (24, 32),
        hidden: int = 256,
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        self.input_size = (in_channels, *image_size)
        height, width = final_map_size(
            "speedrun", image_size, [(5, 1, 0, False), (2, 2, 0, False), (3, 1, 0, False),
                                     (2, 2, 0, False)]
        )  # fmt: skip
        self.conv1 = nn.Conv2d(in_channels, widths[0], 5)  # (N, 24, 24, 24) by default
        self.pool1 = nn.MaxPool2d(2)  # (N, 24, 12, 12)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(widths[0], widths[1], 3)  # (N, 32, 10, 10)
        self.pool2 = nn.MaxPool2d(2)  # (N, 32, 5, 5)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(widths[1] * height * width, hidden)
        self.relu3 = nn.ReLU()
        self.fc4 = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.pool1(self.conv1(x)))
        x = self.relu2(self.pool2(self.conv2(x))).flatten(1)
        return self.relu3(self.fc3(x))  # (N, hidden)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc4(features)


@register_model(
    "speedrun",
    citation="after tuomaso/train_mnist_fast (T. Oikarinen, 2021), tuned for a CPU",
    test_input=(1, 28, 28),
    recipes=(SPEEDRUN_RECIPE,),
)
def speedrun(**options: Any) -> Speedrun:
    return Speedrun(**options)
