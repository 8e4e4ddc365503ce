"""ZFNet (Zeiler and Fergus 2013).

Zeiler and Fergus, "Visualizing and understanding convolutional networks",
arXiv:1311.2901 (2013), ECCV 2014. Fig. 3 gives the architecture, Sec. 3 the
training, Sec. 4.1 the changes from AlexNet that visualisation suggested.
"""

import torch
from torch import nn

from cnnkit.config import ZFNET_IMAGENET
from cnnkit.models.interface import Classifier
from cnnkit.models.layers import final_map_size, local_response_norm, pair
from cnnkit.models.registry import PaperFacts, register_model

# The paper, short, for `cnnkit models`.
CITATION = 'Zeiler and Fergus 2013, "Visualizing and understanding convolutional networks"'


class ZFNet(Classifier):
    """The 8-layer network of Zeiler and Fergus (2013), Fig. 3.

    AlexNet with a smaller first layer (96 kernels of 7x7 with stride 2 instead of
    11x11 with stride 4) and a stride-2 conv2, trained on one GPU, so conv3 to
    conv5 are dense: 224x224x3 input; conv1 96@110x110, 3x3 max pooling with
    stride 2 to 55x55, contrast normalisation; conv2 256@26x26 (5x5, stride 2),
    pooling to 13x13, normalisation; conv3 384, conv4 384, conv5 256 (3x3) at
    13x13; pooling to 6x6; fc6 and fc7 with 4096 units and dropout 0.5
    (Sec. 3); the output layer.

    Deviations:
    - The paper's "local contrast normalisation across feature maps" is not
      specified further; we use AlexNet's response normalisation (n = 5,
      k = 2, alpha = 1e-4, beta = 0.75).
    - Fig. 3's 110 -> 55 and 26 -> 13 poolings need a partial last window, so
      pooling uses ``ceil_mode``; conv1 pads by 1 to give 110x110 from 224x224.
    - Not done: renormalising conv filters whose RMS exceeds 0.1 (Sec. 3), a
      training procedure rather than a layer.
    """

    def __init__(
        self, num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 224
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        self.input_size = (in_channels, *image_size)
        pool = (3, 2, 0, True)
        height, width = final_map_size(
            "zfnet", image_size, [(7, 2, 1, False), pool, (5, 2, 0, False), pool, pool]
        )
        self.conv1 = nn.Conv2d(
            in_channels, 96, kernel_size=7, stride=2, padding=1
        )  # (N, 96, 110, 110)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 96, 55, 55)
        self.norm1 = local_response_norm()
        self.conv2 = nn.Conv2d(96, 256, kernel_size=5, stride=2)  # (N, 256, 26, 26)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 256, 13, 13)
        self.norm2 = local_response_norm()
        self.conv3 = nn.Conv2d(256, 384, kernel_size=3, padding=1)  # (N, 384, 13, 13)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(384, 384, kernel_size=3, padding=1)  # (N, 384, 13, 13)
        self.relu4 = nn.ReLU()
        self.conv5 = nn.Conv2d(384, 256, kernel_size=3, padding=1)  # (N, 256, 13, 13)
        self.relu5 = nn.ReLU()
        self.pool5 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 256, 6, 6)
        self.fc6 = nn.Linear(256 * height * width, 4096)
        self.relu6 = nn.ReLU()
        self.drop6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(4096, 4096)
        self.relu7 = nn.ReLU()
        self.drop7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(4096, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, std=0.01)  # Sec. 3: weights 1e-2, biases 0
                assert module.bias is not None  # every layer here is built with a bias
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(self.pool1(self.relu1(self.conv1(x))))
        x = self.norm2(self.pool2(self.relu2(self.conv2(x))))
        x = self.relu4(self.conv4(self.relu3(self.conv3(x))))
        x = self.pool5(self.relu5(self.conv5(x))).flatten(1)  # (N, 9216)
        x = self.drop6(self.relu6(self.fc6(x)))
        return self.drop7(self.relu7(self.fc7(x)))  # (N, 4096)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc8(features)


@register_model(
    "zfnet",
    citation=CITATION,
    test_input=(3, 63, 63),
    recipes=(ZFNET_IMAGENET,),
    paper=PaperFacts(
        "ZFNet (2013)",
        "objects",
        1000,
        "256x256x3",
        1_300_000,
        70,
        "Zeiler and Fergus 2013, Sec. 3 (1.3 million images, stopped after 70 epochs)",
    ),
)
def zfnet(num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 224) -> ZFNet:
    return ZFNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
