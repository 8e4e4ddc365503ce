"""Small-image versions of the landmark ImageNet networks, for "results over the years".

The ImageNet networks need 63x63 to 227x227 inputs and tens of millions of
parameters; trained for a minute or two on a CPU they do not get far on 28x28
digits. These keep each paper's ideas at MNIST's size and a laptop's budget:

- ``alexnet-small``: AlexNet's layer pattern (Krizhevsky et al. 2012, Sec. 3):
  five convolutions, the first large; ReLU; local response normalisation after
  conv1 and conv2; overlapping 3x3/2 max pooling; two-tower (``groups=2``)
  conv2, conv4 and conv5; dropout in fc6 and fc7.
- ``zfnet-small``: ZFNet's changes to it (Zeiler and Fergus 2013, Sec. 4 and
  5.1): a smaller first filter, and all layers dense (one tower).
- ``vgg-small``: VGG's only building block (Simonyan and Zisserman 2014,
  Sec. 2.1): stacks of 3x3 convolutions, widths doubling after each 2x2 pool.
- ``googlenet-small``: GoogLeNet's Inception modules with dimension
  reductions (Szegedy et al. 2014, Fig. 2(b)), global average pooling and
  dropout 0.4 before the classifier (Sec. 5).
- ``resnet20``: the paper's own small-image network (He et al. 2015, Sec. 4.2):
  6n + 2 = 20 layers of 3x3 convolutions, 16, 32 and 64 wide, global average
  pooling; input 32x32 in the paper, 28x28 here by default.

Deviations (all): widths are a sixteenth to an eighth of the paper's, the
first filter has stride 1 and fc6/fc7 have 256 units, so 28x28 inputs keep
useful maps and a CPU trains them in about a minute; He initialisation (He et
al., "Delving deep into rectifiers", 2015) instead of each paper's, so that
the nets without batch normalisation learn from the first steps.
``resnet8`` is the same family with n = 1 (the paper's smallest is n = 3).
``resnet20`` and ``resnet8`` project with 1x1 convolutions where the shape changes (option B,
Sec. 3.3) rather than the paper's zero-padded identity (option A) for CIFAR.
"""

from typing import Any

import torch
from torch import nn

from cnnkit.models.googlenet import Inception
from cnnkit.models.interface import Classifier
from cnnkit.models.layers import final_map_size, local_response_norm, pair
from cnnkit.models.registry import Milestone, register_model
from cnnkit.models.resnet import BasicBlock

OVERLAPPING_POOL = (3, 2, 0, False)  # kernel, stride, padding, ceil_mode (AlexNet Sec. 3.4)


class AlexNetSmall(Classifier):
    """AlexNet's pattern at 28x28 (see the module docstring for the sources).

    ``dense=True`` is ZFNet's one-tower variant with a 3x3 instead of a 5x5 conv1.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int | tuple = 28,
        dense: bool = False,
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        self.input_size = (in_channels, *image_size)
        kernel = 3 if dense else 5
        groups = 1 if dense else 2
        height, width = final_map_size(
            "zfnet-small" if dense else "alexnet-small",
            image_size,
            [(kernel, 1, kernel // 2, False), OVERLAPPING_POOL, OVERLAPPING_POOL, OVERLAPPING_POOL],
        )
        self.conv1 = nn.Conv2d(in_channels, 16, kernel, padding=kernel // 2)  # (N, 16, 28, 28)
        self.relu1 = nn.ReLU()
        self.norm1 = local_response_norm()
        self.pool1 = nn.MaxPool2d(3, stride=2)  # (N, 16, 13, 13)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2, groups=groups)  # (N, 32, 13, 13)
        self.relu2 = nn.ReLU()
        self.norm2 = local_response_norm()
        self.pool2 = nn.MaxPool2d(3, stride=2)  # (N, 32, 6, 6)
        self.conv3 = nn.Conv2d(32, 48, 3, padding=1)  # (N, 48, 6, 6)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(48, 48, 3, padding=1, groups=groups)  # (N, 48, 6, 6)
        self.relu4 = nn.ReLU()
        self.conv5 = nn.Conv2d(48, 32, 3, padding=1, groups=groups)  # (N, 32, 6, 6)
        self.relu5 = nn.ReLU()
        self.pool5 = nn.MaxPool2d(3, stride=2)  # (N, 32, 2, 2)
        self.fc6 = nn.Linear(32 * height * width, 256)
        self.relu6 = nn.ReLU()
        self.drop6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(256, 256)
        self.relu7 = nn.ReLU()
        self.drop7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(256, num_classes)
        he_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.norm1(self.relu1(self.conv1(x))))
        x = self.pool2(self.norm2(self.relu2(self.conv2(x))))
        x = self.relu4(self.conv4(self.relu3(self.conv3(x))))
        x = self.pool5(self.relu5(self.conv5(x))).flatten(1)
        x = self.drop6(self.relu6(self.fc6(x)))
        return self.drop7(self.relu7(self.fc7(x)))  # (N, 256)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc8(features)


class VGGSmall(Classifier):
    """VGG's 3x3 stacks at 28x28: [16, M, 32, M, 64, 64, M], fc6 and fc7 of 256."""

    config: tuple[int | str, ...] = (16, "M", 32, "M", 64, 64, "M")

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, image_size: int | tuple = 28
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        self.input_size = (in_channels, *image_size)
        pool = (2, 2, 0, False)
        height, width = final_map_size("vgg-small", image_size, [pool, pool, pool])
        layers: list[nn.Module] = []
        channels = in_channels
        for entry in self.config:
            if entry == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(entry, int)  # every entry but "M" is a width
                layers += [nn.Conv2d(channels, entry, kernel_size=3, padding=1), nn.ReLU(True)]
                channels = entry
        self.features = nn.Sequential(*layers)  # (N, 64, 3, 3) at 28x28
        self.classifier = nn.Sequential(
            nn.Linear(channels * height * width, 256),  # fc6
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(256, 256),  # fc7
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(256, num_classes),  # fc8
        )
        he_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier[:6](self.features(x).flatten(1))  # (N, 256)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier[6](features)


class GoogLeNetSmall(Classifier):
    """GoogLeNet's stem, three Inception modules about a sixth as wide as 3a, 3b and
    4a (Table 1), global average pooling, dropout 0.4 and a linear classifier."""

    widths = {
        "3a": (16, 16, 24, 4, 8, 8),  # 56 out
        "3b": (24, 24, 40, 4, 12, 12),  # 88 out
        "4a": (40, 20, 44, 4, 12, 16),  # 112 out
    }
    gradcam_block = "inception4a"  # its last convolution is one of four branches

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, image_size: int | tuple = 28
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        self.input_size = (in_channels, *image_size)
        pool = (3, 2, 0, True)
        final_map_size("googlenet-small", image_size, [pool, pool, pool])
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1)  # (N, 16, 28, 28)
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 16, 14, 14)
        self.conv2_reduce = nn.Conv2d(16, 16, 1)
        self.conv2 = nn.Conv2d(16, 48, 3, padding=1)  # (N, 48, 14, 14)
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 48, 7, 7)
        self.inception3a = Inception(48, self.widths["3a"])  # (N, 56, 7, 7)
        self.inception3b = Inception(56, self.widths["3b"])  # (N, 88, 7, 7)
        self.pool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # (N, 88, 3, 3)
        self.inception4a = Inception(88, self.widths["4a"])  # (N, 112, 3, 3)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(self.inception4a.out_channels, num_classes)
        self.relu = nn.ReLU()
        he_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu(self.conv1(x)))
        x = self.pool2(self.relu(self.conv2(self.relu(self.conv2_reduce(x)))))
        x = self.pool3(self.inception3b(self.inception3a(x)))
        return self.dropout(self.avgpool(self.inception4a(x)).flatten(1))  # (N, 112)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


class CifarResNet(Classifier):
    """He et al. 2015, Sec. 4.2: conv1 3x3 with 16 filters, three stages of n basic
    blocks (16, 32, 64 wide; the second and third start with stride 2), global
    average pooling and a fully connected layer; BN after every conv. 6n + 2 layers."""

    gradcam_block = "layer3"  # the last block's sum with its shortcut, as the head reads it

    def __init__(
        self,
        blocks_per_stage: int = 3,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int | tuple = 28,
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        self.input_size = (in_channels, *image_size)
        final_map_size(
            f"resnet{6 * blocks_per_stage + 2}", image_size, [(3, 2, 1, False), (3, 2, 1, False)]
        )
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)  # (N, 16, 28, 28)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        stages, channels = [], 16
        for index, width in enumerate((16, 32, 64)):
            blocks = []
            for number in range(blocks_per_stage):
                blocks.append(BasicBlock(channels, width, 2 if index > 0 and number == 0 else 1))
                channels = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages  # 28x28, 14x14, 7x7 maps
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.avgpool(x).flatten(1)  # (N, 64)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


@register_model(
    "alexnet-small",
    citation="after Krizhevsky et al. 2012, scaled down for 28x28 images",
    test_input=(1, 28, 28),
    milestone=Milestone(2012, "AlexNet-style", in_history_line=True),
)
def alexnet_small(**options: Any) -> AlexNetSmall:
    return AlexNetSmall(**options)


@register_model(
    "zfnet-small",
    citation="after Zeiler and Fergus 2013, scaled down for 28x28 images",
    test_input=(1, 28, 28),
    milestone=Milestone(2013, "ZFNet-style", in_history_line=True),
)
def zfnet_small(**options: Any) -> AlexNetSmall:
    return AlexNetSmall(dense=True, **options)


@register_model(
    "vgg-small",
    citation="after Simonyan and Zisserman 2014, scaled down for 28x28 images",
    test_input=(1, 28, 28),
    milestone=Milestone(2014, "VGG-style", in_history_line=True),
)
def vgg_small(**options: Any) -> VGGSmall:
    return VGGSmall(**options)


@register_model(
    "googlenet-small",
    citation="after Szegedy et al. 2014, scaled down for 28x28 images",
    test_input=(1, 28, 28),
    milestone=Milestone(2014, "GoogLeNet-style", in_history_line=True),
)
def googlenet_small(**options: Any) -> GoogLeNetSmall:
    return GoogLeNetSmall(**options)


@register_model(
    "resnet20",
    citation="He et al. 2015, Sec. 4.2 (the CIFAR-10 networks)",
    test_input=(1, 28, 28),
    milestone=Milestone(2015, "ResNet-20"),
)
def resnet20(**options: Any) -> CifarResNet:
    return CifarResNet(blocks_per_stage=3, **options)


@register_model(
    "resnet8",
    citation="after He et al. 2015, Sec. 4.2, one block per stage",
    test_input=(1, 28, 28),
    milestone=Milestone(2015, "ResNet-8", in_history_line=True),
)
def resnet8(**options: Any) -> CifarResNet:
    return CifarResNet(blocks_per_stage=1, **options)


def he_init(model: nn.Module) -> None:
    """He et al. 2015 ("Delving deep"): N(0, 2 / fan_in) weights for ReLU layers, zero biases."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            assert module.bias is not None  # he_init's callers build every layer with a bias
            nn.init.zeros_(module.bias)
