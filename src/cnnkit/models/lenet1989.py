"""LeNet-1989: the zip-code network of LeCun et al. (1989).

LeCun, Boser, Denker, Henderson, Howard, Hubbard and Jackel, "Backpropagation
applied to handwritten zip code recognition", Neural Computation 1(4), 1989.
Section 5 ("Network design") and Fig. 3 give the layers: 1,256 units, 64,660
connections and 9,760 independent parameters.
"""

import torch
from torch import nn

from cnnkit.models.interface import Classifier
from cnnkit.models.layers import (
    ScaledTanh,
    TableConv2d,
    check_input_size,
    conv_output_size,
    init_lecun_uniform,
    pair,
)
from cnnkit.models.registry import PaperFacts, register_model

H2_MAPS_SEEN = 8  # each H2 unit "combines local information coming from 8 of the 12" H1 maps

# The paper, short, for `cnnkit models`.
CITATION = 'LeCun et al. 1989, "Backpropagation applied to handwritten zip code recognition"'


def h2_connection_table(maps: int = 12, seen: int = H2_MAPS_SEEN) -> torch.Tensor:
    """(12 H2 maps, 12 H1 maps) boolean table: H2 map j sees H1 maps j, j+1, ..., j+7 (mod 12).

    The paper says only that each H2 unit sees 8 of the 12 H1 maps and that the
    choice is "guided by prior knowledge of shape recognition"; it does not list
    the maps. This cyclic choice gives every H1 map the same number of readers (8).
    """
    table = torch.zeros(maps, maps, dtype=torch.bool)
    for j in range(maps):
        table[j, [(j + offset) % maps for offset in range(seen)]] = True
    return table


class LeNet1989(Classifier):
    """The 1989 zip-code network (LeCun et al. 1989, Sec. 5, Fig. 3).

    - input: 16x16 normalised digit (256 units);
    - H1: 12 maps of 8x8, 5x5 kernels with stride 2 (one kernel per map shared
      by its 64 units), each unit with its own bias: 768 units, 19,968 connections,
      1,068 parameters;
    - H2: 12 maps of 4x4, 5x5 kernels with stride 2 on 8 of the 12 H1 maps, each
      unit with its own bias: 192 units, 38,592 connections, 2,592 parameters;
    - H3: 30 units fully connected to H2: 5,790 connections and parameters;
    - output: 10 units fully connected to H3: 310 connections and parameters.

    Deviations:
    - The paper extends the 16x16 (and 8x8) planes with a border so that the
      strided 5x5 kernels give 8x8 (and 4x4) maps; we pad with zeros, the
      background of normalised inputs.
    - The H2 connection pattern is ours (see ``h2_connection_table``).
    - The output layer is linear (logits for softmax cross-entropy), not tanh
      units trained by mean squared error; all hidden units use the 1998 paper's
      scaled tanh, close to the paper's scaled hyperbolic tangent.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 16,
    ) -> None:
        super().__init__()
        height, width = pair(image_size)
        check_input_size("lenet1", (height, width), 4)
        self.input_size = (in_channels, height, width)
        h1_size = [conv_output_size(s, 5, stride=2, padding=2) for s in (height, width)]
        h2_size = [conv_output_size(s, 5, stride=2, padding=2) for s in h1_size]
        self.h1 = TableConv2d(
            torch.ones(12, in_channels, dtype=torch.bool),
            kernel_size=5,
            stride=2,
            padding=2,
            unit_bias_size=(h1_size[0], h1_size[1]),
        )  # (N, 12, 8, 8)
        self.h1_act = ScaledTanh()
        self.h2 = TableConv2d(
            h2_connection_table(),
            kernel_size=5,
            stride=2,
            padding=2,
            unit_bias_size=(h2_size[0], h2_size[1]),
        )  # (N, 12, 4, 4)
        self.h2_act = ScaledTanh()
        self.h3 = nn.Linear(12 * h2_size[0] * h2_size[1], 30)  # (N, 30)
        self.h3_act = ScaledTanh()
        self.output = nn.Linear(30, num_classes)
        self.apply(init_lecun_uniform)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.h2_act(self.h2(self.h1_act(self.h1(x)))).flatten(1)  # (N, 192)
        return self.h3_act(self.h3(x))  # (N, 30)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.output(features)


@register_model(
    "lenet1",
    citation=CITATION,
    test_input=(1, 16, 16),
    paper=PaperFacts(
        "LeNet (1989)",
        "digits",
        10,
        "16x16",
        7_291,
        23,
        "LeCun et al. 1989 (7,291 training digits; 23 passes, 167,693 presentations)",
    ),
)
def lenet1(
    num_classes: int = 10, in_channels: int = 1, image_size: int | tuple[int, int] = 16
) -> LeNet1989:
    return LeNet1989(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
