"""VGG (Simonyan and Zisserman 2014), with torchvision's state_dict keys.

Simonyan and Zisserman, "Very deep convolutional networks for large-scale image
recognition", arXiv:1409.1556 (ICLR 2015). Table 1 gives configurations A (11
weight layers), D (16) and E (19); Sec. 2.1 the common layers.
"""

from typing import cast

import torch
from torch import nn

from cnnkit.config import VGG_IMAGENET
from cnnkit.models.interface import Classifier
from cnnkit.models.layers import check_input_size, pair
from cnnkit.models.registry import PaperFacts, register_model

POOL = "M"
# Table 1: output channels of each 3x3 convolution; "M" is 2x2 max pooling with stride 2.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    "D": cast(list[int | str], [64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL])
    + [512, 512, 512, POOL, 512, 512, 512, POOL],
    "E": cast(list[int | str], [64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL])
    + [512, 512, 512, 512, POOL, 512, 512, 512, 512, POOL],
}

# The paper, short, for `cnnkit models`.
CITATION = (
    'Simonyan and Zisserman 2014, "Very deep convolutional networks for large-scale image '
    'recognition"'
)


class VGG(Classifier):
    """A VGG configuration of Table 1 (Simonyan and Zisserman 2014, Sec. 2.1-2.2).

    3x3 convolutions with stride 1 and padding 1, each followed by ReLU; five
    2x2 max poolings with stride 2; fc6 and fc7 with 4096 units, ReLU and
    dropout 0.5 (Sec. 3.1); the output layer. No local response normalisation
    (Sec. 2.2 found it does not help). Module keys are torchvision's
    (``features.N``, ``classifier.N``), so its ``vgg11``, ``vgg16`` and
    ``vgg19`` state_dicts load.

    Deviations:
    - torchvision's adaptive 7x7 average pool sits before fc6: an identity at
      224x224, it lets inputs from 32x32 up through with the same fc6.
    - Initialisation: Glorot uniform for all layers, biases 0, the procedure
      the paper's Sec. 3.1 says works without pre-training configuration A.
    """

    def __init__(
        self,
        config: str,
        num_classes: int = 1000,
        in_channels: int = 3,
        image_size: int | tuple = 224,
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        check_input_size(f"vgg with configuration {config}", image_size, 32)
        self.input_size = (in_channels, *image_size)
        layers: list[nn.Module] = []
        channels = in_channels
        for entry in CONFIGS[config]:
            if entry == POOL:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(entry, int)  # every entry but POOL is a width
                layers += [nn.Conv2d(channels, entry, kernel_size=3, padding=1), nn.ReLU(True)]
                channels = entry
        self.features = nn.Sequential(*layers)  # (N, 512, 7, 7) at 224x224
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),  # fc6
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),  # fc7
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),  # fc8
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                assert module.bias is not None  # every layer here is built with a bias
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x)).flatten(1)  # (N, 25088)
        return self.classifier[:6](x)  # (N, 4096)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier[6](features)


@register_model(
    "vgg11", citation=CITATION, test_input=(3, 32, 32), recipes=(VGG_IMAGENET,)
)  # 5 2x2 poolings
def vgg11(num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 224) -> VGG:
    return VGG("A", num_classes=num_classes, in_channels=in_channels, image_size=image_size)


@register_model(
    "vgg16",
    citation=CITATION,
    test_input=(3, 32, 32),
    recipes=(VGG_IMAGENET,),
    paper=PaperFacts(
        "VGG-16 (2014)",
        "objects",
        1000,
        "256x256x3 to 512x512x3",
        1_300_000,
        74,
        "Simonyan and Zisserman 2014, Sec. 4 (1.3 million images) and 3.1 (74 epochs)",
    ),
)
def vgg16(num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 224) -> VGG:
    return VGG("D", num_classes=num_classes, in_channels=in_channels, image_size=image_size)


@register_model("vgg19", citation=CITATION, test_input=(3, 32, 32), recipes=(VGG_IMAGENET,))
def vgg19(num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 224) -> VGG:
    return VGG("E", num_classes=num_classes, in_channels=in_channels, image_size=image_size)
