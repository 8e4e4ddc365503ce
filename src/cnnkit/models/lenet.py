"""LeNet-5 (LeCun, Bottou, Bengio and Haffner 1998) and the lecture's modern variant.

LeCun et al., "Gradient-based learning applied to document recognition",
Proc. IEEE 86(11), 1998. Section II-B describes the layers, Table I the C3
connections, Appendix A the squashing function, Fig. 3 the RBF code bitmaps.
"""

import torch
from torch import nn

from cnnkit.config import LENET5_MODERN_RECIPE, LENET5_RECIPE
from cnnkit.errors import InputSizeError
from cnnkit.models.interface import Classifier
from cnnkit.models.layers import (
    EuclideanRBF,
    FullConv2d,
    ScaledTanh,
    Subsampling,
    TableConv2d,
    init_lecun_uniform,
    pair,
)
from cnnkit.models.registry import Milestone, PaperFacts, register_model

# Table I: which S2 feature maps (rows) each C3 feature map (columns) combines.
C3_TABLE_I = """
X   XXX  XXXX XX
XX   XXX  XXXX X
XXX   XXX  X XXX
 XXX  XXXX  X XX
  XXX  XXXX XX X
   XXX  XXXX XXX
"""

# Stylised 7x12 bitmaps of the ten digits, the RBF code vectors (+1 = '#', -1 = '.').
# The paper draws them in Fig. 3 but does not publish their bits; these are ours.
DIGIT_BITMAPS = """
..###.. ...#... ..###.. .#####. ....#.. ####### ..###.. ####### ..###.. ..###..
.#...#. ..##... .#...#. #.....# ...##.. #...... .#..... #.....# .#...#. .#...#.
#.....# .#.#... #.....# ......# ..#.#.. #...... #...... ......# #.....# #.....#
#.....# ...#... ......# ......# .#..#.. #.###.. #...... .....#. #.....# #.....#
#.....# ...#... .....#. ....##. #...#.. ##...#. #.###.. ....#.. .#...#. #.....#
#.....# ...#... ....#.. ......# #...#.. ......# ##...#. ...#... ..###.. .#...##
#.....# ...#... ...#... ......# ####### ......# #.....# ...#... .#...#. ..###.#
#.....# ...#... ..#.... ......# ....#.. ......# #.....# ..#.... #.....# ......#
#.....# ...#... .#..... ......# ....#.. ......# #.....# ..#.... #.....# ......#
.#...#. ...#... #...... #.....# ....#.. #.....# .#...#. .#..... #.....# .....#.
..###.. .#####. ####### .#####. ....#.. .#####. ..###.. .#..... .#####. ..###..
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
"""

# The paper, short, for `cnnkit models`.
CITATION = 'LeCun et al. 1998, "Gradient-based learning applied to document recognition"'


def c3_connection_table() -> torch.Tensor:
    """Table I as a (16 C3 maps, 6 S2 maps) boolean tensor: 60 connections."""
    rows = [line.ljust(16) for line in C3_TABLE_I.strip("\n").split("\n")]
    return torch.tensor([[char == "X" for char in row] for row in rows]).T


def rbf_codes() -> torch.Tensor:
    """The ten 84-dimensional code vectors (+-1), one per digit, from the bitmaps."""
    rows = [line.split() for line in DIGIT_BITMAPS.strip("\n").split("\n")]
    bitmaps = ["".join(row[digit] for row in rows) for digit in range(10)]
    return torch.tensor([[1.0 if bit == "#" else -1.0 for bit in bitmap] for bitmap in bitmaps])


class LeNet5(Classifier):
    """LeNet-5 as LeCun et al. (1998), Sec. II-B, describe it.

    32x32 input (MNIST's 28x28 padded by 2 on each side); 60,000 trainable
    parameters and 340,908 connections (with biases), as the paper counts.

    Deviations:
    - The loss is softmax cross-entropy on the negative RBF distances, which is
      the paper's MAP criterion (eq. 9) without the rubbish-class constant j.
    - The RBF code bitmaps are drawn by us (the paper's are not published as bits).
    - Optimised by default with SGD and momentum, not the paper's stochastic
      diagonal Levenberg-Marquardt (``--optimizer sdlm``, trainer.sdlm, trains it the
      paper's way); inputs normalised to mean 0, std 1 rather than the paper's
      [-0.1, 1.175] range.
    - The default recipe (config.py) trains on inputs shifted by up to 2 pixels, a
      light form of the paper's distortions (Sec. III-C, Fig. 7).
    - For ``num_classes`` other than 10 the first ``num_classes`` codes are used
      (at most 10), since the codes are bitmaps of the digits.
    """

    input_size = (1, 32, 32)

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        if not 1 <= num_classes <= 10:
            raise ValueError(
                f"lenet5's RBF output has codes for at most 10 classes, "
                f"not {num_classes}; use lenet5-modern"
            )
        self.input_size = (in_channels, 32, 32)
        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5)  # (N, 6, 28, 28)
        self.c1_act = ScaledTanh()
        self.s2 = Subsampling(6)  # (N, 6, 14, 14)
        self.s2_act = ScaledTanh()
        self.c3 = TableConv2d(c3_connection_table(), kernel_size=5)  # (N, 16, 10, 10)
        self.c3_act = ScaledTanh()
        self.s4 = Subsampling(16)  # (N, 16, 5, 5)
        self.s4_act = ScaledTanh()
        self.c5 = FullConv2d(16, 120, kernel_size=5)  # (N, 120, 1, 1)
        self.c5_act = ScaledTanh()
        self.f6 = nn.Linear(120, 84)
        self.f6_act = ScaledTanh()
        self.output = EuclideanRBF(rbf_codes()[:num_classes])  # (N, num_classes)
        self.apply(init_lecun_uniform)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2_act(self.s2(self.c1_act(self.c1(x))))
        x = self.s4_act(self.s4(self.c3_act(self.c3(x))))
        x = self.c5_act(self.c5(x)).flatten(1)
        return self.f6_act(self.f6(x))  # (N, 84)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.output(features)


class LeNet5Modern(Classifier):
    """LeNet-5 as the lecture's size table describes it: full C3, ReLU, max pooling,
    fully connected F5 (400 -> 120), F6 and a linear output layer.

    Layer sizes follow LeCun et al. (1998), Sec. II-B; the changes are the
    modern habits (Deviations): ReLU instead of the scaled tanh, max pooling
    instead of trainable subsampling, C3 connected to all six S2 maps, and a
    linear softmax output instead of RBF units.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.input_size = (in_channels, 32, 32)
        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5)  # (N, 6, 28, 28)
        self.c1_act = nn.ReLU()
        self.s2 = nn.MaxPool2d(2)  # (N, 6, 14, 14)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)  # (N, 16, 10, 10)
        self.c3_act = nn.ReLU()
        self.s4 = nn.MaxPool2d(2)  # (N, 16, 5, 5)
        self.f5 = nn.Linear(16 * 5 * 5, 120)
        self.f5_act = nn.ReLU()
        self.f6 = nn.Linear(120, 84)
        self.f6_act = nn.ReLU()
        self.output = nn.Linear(84, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2(self.c1_act(self.c1(x)))
        x = self.s4(self.c3_act(self.c3(x))).flatten(1)  # (N, 400)
        x = self.f5_act(self.f5(x))
        return self.f6_act(self.f6(x))  # (N, 84)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.output(features)


def check_lenet5_size(name: str, image_size: int | tuple[int, int]) -> None:
    """LeNet-5's C5 (and the modern F5) are sized for exactly 32x32 inputs."""
    if pair(image_size) != (32, 32):
        height, width = pair(image_size)
        raise InputSizeError(f"{name} takes 32x32 inputs, not {height}x{width}")


@register_model(
    "lenet5",
    citation=CITATION,
    test_input=(1, 32, 32),
    recipes=(LENET5_RECIPE,),
    paper=PaperFacts(
        "LeNet (1998)",
        "digits",
        10,
        "28x28",
        60_000,
        20,
        "LeCun et al. 1998, Sec. III (MNIST's 60,000 training digits; 20 passes)",
    ),
    milestone=Milestone(1998, "LeNet-5", in_history_line=True),
)
def lenet5(
    num_classes: int = 10, in_channels: int = 1, image_size: int | tuple[int, int] = 32
) -> LeNet5:
    check_lenet5_size("lenet5", image_size)
    return LeNet5(num_classes=num_classes, in_channels=in_channels)


@register_model(
    "lenet5-modern",
    citation=CITATION,
    test_input=(1, 32, 32),
    recipes=(LENET5_MODERN_RECIPE,),
    milestone=Milestone(1998, "LeNet-5 (ReLU, max pooling)"),
)
def lenet5_modern(
    num_classes: int = 10, in_channels: int = 1, image_size: int | tuple[int, int] = 32
) -> LeNet5Modern:
    check_lenet5_size("lenet5-modern", image_size)
    return LeNet5Modern(num_classes=num_classes, in_channels=in_channels)
