"""GoogLeNet (Szegedy et al. 2014).

Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke and Rabinovich,
"Going deeper with convolutions", arXiv:1409.4842 (CVPR 2015). Table 1 gives
the layers and the Inception modules' widths, Fig. 2(b) the module, Fig. 3 the
whole network, Sec. 5 the auxiliary classifiers.
"""

import torch
from torch import nn

from cnnkit.config import RESNET_IMAGENET
from cnnkit.models.interface import Classifier, Convolution
from cnnkit.models.layers import final_map_size, local_response_norm, output_size_after, pair
from cnnkit.models.registry import register_model

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

# The paper, short, for `cnnkit models`.
CITATION = 'Szegedy et al. 2014, "Going deeper with convolutions"'


class Inception(nn.Module):
    """The Inception module with dimension reductions (Fig. 2(b)): four branches,
    concatenated along channels; every convolution is followed by ReLU."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = widths
        self.out_channels = n1x1 + n3x3 + n5x5 + pool_proj
        self.conv1x1 = nn.Conv2d(in_channels, n1x1, kernel_size=1)
        self.conv3x3_reduce = nn.Conv2d(in_channels, n3x3_reduce, kernel_size=1)
        self.conv3x3 = nn.Conv2d(n3x3_reduce, n3x3, kernel_size=3, padding=1)
        self.conv5x5_reduce = nn.Conv2d(in_channels, n5x5_reduce, kernel_size=1)
        self.conv5x5 = nn.Conv2d(n5x5_reduce, n5x5, kernel_size=5, padding=2)
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.pool_proj = nn.Conv2d(in_channels, pool_proj, kernel_size=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = self.relu
        branches = [
            relu(self.conv1x1(x)),
            relu(self.conv3x3(relu(self.conv3x3_reduce(x)))),
            relu(self.conv5x5(relu(self.conv5x5_reduce(x)))),
            relu(self.pool_proj(self.pool(x))),
        ]
        return torch.cat(branches, dim=1)


class AuxiliaryClassifier(nn.Module):
    """Sec. 5: 5x5 average pooling with stride 3 (4x4 maps from 14x14), a 1x1
    convolution with 128 filters and ReLU, a 1024-unit fully connected layer with
    ReLU, dropout 0.7 and a linear classifier."""

    def __init__(self, in_channels: int, map_size: tuple[int, int], num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)  # (N, C, 4, 4)
        self.conv = nn.Conv2d(in_channels, 128, kernel_size=1)  # (N, 128, 4, 4)
        self.fc1 = nn.Linear(128 * map_size[0] * map_size[1], 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv(self.pool(x))).flatten(1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(Classifier):
    """GoogLeNet, the 22-layer network of Szegedy et al. (2014), Table 1 and Fig. 3.

    ``forward`` returns the main classifier's logits, in training as in testing,
    so that every tool (the trainer included) sees one return type. The two
    auxiliary classifiers on the outputs of 4a and 4d are used in training only,
    through ``forward_with_aux``, which returns (logits, aux1, aux2); the paper
    adds their losses with weight ``aux_loss_weight`` = 0.3 (Sec. 5). cnnkit's
    trainer calls ``forward`` and so trains without them.

    Input 224x224; other sizes from 79x79 up, with the final average pool
    covering the last map (7x7 at 224) and the auxiliary fc1 sized for the
    pooled map (4x4 at 224).

    Deviations:
    - Max pooling uses ``ceil_mode`` so that the maps have Table 1's sizes
      (112 -> 56 -> 28 -> 14 -> 7), as in the authors' Caffe reproduction.
    - Response normalisation uses AlexNet's parameters (not given in the paper).
    - Initialisation (not given in the paper): Glorot uniform weights and biases
      of 0.2, as in the BVLC Caffe reproduction.
    """

    aux_loss_weight = 0.3  # Sec. 5
    gradcam_block = "inception5b"  # its last convolution is one of four branches

    def __init__(
        self, num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 224
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        self.input_size = (in_channels, *image_size)
        pool = (3, 2, 0, True)
        to_4a = [(7, 2, 3, False), pool, pool, pool]
        aux_map = final_map_size("googlenet", image_size, to_4a + [(5, 3, 0, False)])
        last_height, last_width = (output_size_after(s, to_4a + [pool]) for s in image_size)
        last_map = (last_height, last_width)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)  # 112x112
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 64, 56, 56)
        self.norm1 = local_response_norm()
        self.conv2_reduce = nn.Conv2d(64, 64, kernel_size=1)  # (N, 64, 56, 56)
        self.conv2 = nn.Conv2d(64, 192, kernel_size=3, padding=1)  # (N, 192, 56, 56)
        self.norm2 = local_response_norm()
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 192, 28, 28)
        self.inception3a = Inception(192, INCEPTION_WIDTHS["3a"])  # (N, 256, 28, 28)
        self.inception3b = Inception(256, INCEPTION_WIDTHS["3b"])  # (N, 480, 28, 28)
        self.pool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 480, 14, 14)
        self.inception4a = Inception(480, INCEPTION_WIDTHS["4a"])  # (N, 512, 14, 14)
        self.inception4b = Inception(512, INCEPTION_WIDTHS["4b"])  # (N, 512, 14, 14)
        self.inception4c = Inception(512, INCEPTION_WIDTHS["4c"])  # (N, 512, 14, 14)
        self.inception4d = Inception(512, INCEPTION_WIDTHS["4d"])  # (N, 528, 14, 14)
        self.inception4e = Inception(528, INCEPTION_WIDTHS["4e"])  # (N, 832, 14, 14)
        self.pool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 832, 7, 7)
        self.inception5a = Inception(832, INCEPTION_WIDTHS["5a"])  # (N, 832, 7, 7)
        self.inception5b = Inception(832, INCEPTION_WIDTHS["5b"])  # (N, 1024, 7, 7)
        self.avgpool = nn.AvgPool2d(last_map)  # (N, 1024, 1, 1)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(1024, num_classes)
        self.aux1 = AuxiliaryClassifier(512, aux_map, num_classes)
        self.aux2 = AuxiliaryClassifier(528, aux_map, num_classes)
        self.relu = nn.ReLU()
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                assert module.bias is not None  # every layer here is built with a bias
                nn.init.constant_(module.bias, 0.2)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(self.pool1(self.relu(self.conv1(x))))
        x = self.relu(self.conv2(self.relu(self.conv2_reduce(x))))
        return self.pool2(self.norm2(x))  # (N, 192, 28, 28)

    def convolutions(self) -> list[tuple[str, Convolution]]:
        """Those ``forward`` applies: the auxiliary heads' run in training only."""
        heads = ("aux1.", "aux2.")
        return [
            (name, layer) for name, layer in super().convolutions() if not name.startswith(heads)
        ]

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, aux1 logits, aux2 logits), for training with the auxiliary losses."""
        x = self.inception3b(self.inception3a(self.stem(x)))
        x4a = self.inception4a(self.pool3(x))
        x4d = self.inception4d(self.inception4c(self.inception4b(x4a)))
        features = self.head(self.inception4e(x4d))
        return self.fc(self.dropout(features)), self.aux1(x4a), self.aux2(x4d)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inception5b(self.inception5a(self.pool4(x)))
        return self.avgpool(x).flatten(1)  # (N, 1024)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inception3b(self.inception3a(self.stem(x)))
        x = self.pool3(x)
        for block in (self.inception4a, self.inception4b, self.inception4c):
            x = block(x)
        return self.head(self.inception4e(self.inception4d(x)))  # (N, 1024)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))


# The auxiliary 5x5 pools need 5x5 maps after 4a; the paper gives no learning rate, so
# GoogLeNet trains with the ResNet paper's recipe.
@register_model("googlenet", citation=CITATION, test_input=(3, 79, 79), recipes=(RESNET_IMAGENET,))
def googlenet(
    num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 224
) -> GoogLeNet:
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
