"""Residual networks (He, Zhang, Ren and Sun 2015), with torchvision's state_dict keys.

He, Zhang, Ren and Sun, "Deep residual learning for image recognition",
arXiv:1512.03385 (CVPR 2016). Table 1 gives the 18- to 152-layer networks,
Sec. 3.3 the projection shortcuts (option B), Sec. 3.4 batch normalisation and
the initialisation, Fig. 5 the basic and bottleneck blocks.
"""

from typing import Any

import torch
from torch import nn

from cnnkit.config import RESNET_IMAGENET
from cnnkit.models.interface import Classifier
from cnnkit.models.layers import check_input_size, pair
from cnnkit.models.registry import PaperFacts, register_model

# The paper, short, for `cnnkit models`.
CITATION = 'He et al. 2015, "Deep residual learning for image recognition"'


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (Fig. 5 left); ResNet-18 and -34."""

    expansion = 1

    def __init__(
        self, in_channels: int, width: int, stride: int = 1, stride_in_3x3: bool = False
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(in_channels, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) and a shortcut (Fig. 5 right); ResNet-50 and up.

    The paper (and the authors' released Caffe models) downsample with stride 2
    in the first 1x1 convolution; ``stride_in_3x3=True`` puts it in the 3x3
    convolution instead, as torchvision does ("ResNet v1.5"). Both have the same
    parameters; they differ in connections and in outputs.
    """

    expansion = 4

    def __init__(
        self, in_channels: int, width: int, stride: int = 1, stride_in_3x3: bool = False
    ) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = conv1x1(in_channels, width, 1 if stride_in_3x3 else stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride if stride_in_3x3 else 1)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """Option B (Sec. 3.3): a 1x1 projection only where the shape changes."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class ResNet(Classifier):
    """A residual network of Table 1 (He et al. 2015).

    conv1 7x7/2 with 64 filters, 3x3/2 max pooling, four stages (conv2_x to
    conv5_x, torchvision's ``layer1..4``) of 64, 128, 256 and 512 wide blocks,
    the first block of stages 3-5 downsampling with stride 2; global average
    pooling and a fully connected layer. Batch normalisation after every
    convolution (Sec. 3.4); He initialisation. Keys are torchvision's, so its
    ``resnet18..152`` state_dicts load.

    ``small_input=True`` is a CIFAR-sized stem (a 3x3 stride-1 conv1 and no max
    pooling), so 32x32 images keep 32x32 maps in the first stage; its conv1 has a
    different shape from torchvision's.

    Deviations: none at the default options for ResNet-18/34. For the bottleneck
    nets see ``Bottleneck``: the default follows the paper; torchvision's weights
    give torchvision's outputs with ``stride_in_3x3=True``.
    """

    gradcam_block = "layer4"  # the last block's sum with its shortcut, as the head reads it

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        depths: tuple[int, int, int, int],
        num_classes: int = 1000,
        in_channels: int = 3,
        image_size: int | tuple = 224,
        small_input: bool = False,
        stride_in_3x3: bool = False,
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        check_input_size("resnet", image_size, 1)
        self.input_size = (in_channels, *image_size)
        if small_input:
            self.conv1 = conv3x3(in_channels, 64)  # (N, 64, 32, 32) at 32x32
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)  # 112x112
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)  # (N, 64, 56, 56)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        channels = 64
        stages = []
        for index, (width, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            blocks = []
            for number in range(depth):
                stride = 2 if index > 0 and number == 0 else 1
                blocks.append(block(channels, width, stride, stride_in_3x3))
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages  # 56, 28, 14, 7 at 224
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)  # (N, 512 or 2048)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


DEPTHS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def resnet(layers: int, **options: Any) -> ResNet:
    """The ``layers``-layer network of Table 1; options as ``ResNet``'s keywords."""
    block, depths = DEPTHS[layers]
    return ResNet(block, depths, **options)


@register_model("resnet18", citation=CITATION, test_input=(3, 32, 32), recipes=(RESNET_IMAGENET,))
def resnet18(**options: Any) -> ResNet:
    return resnet(18, **options)


@register_model("resnet34", citation=CITATION, test_input=(3, 32, 32), recipes=(RESNET_IMAGENET,))
def resnet34(**options: Any) -> ResNet:
    return resnet(34, **options)


@register_model(
    "resnet50",
    citation=CITATION,
    test_input=(3, 32, 32),
    recipes=(RESNET_IMAGENET,),
    paper=PaperFacts(
        "ResNet-50 (2015)",
        "objects",
        1000,
        "256x256x3 to 480x480x3",
        1_280_000,
        120,
        "He et al. 2015, Sec. 3.4 and 4.1 (1.28 million images; 60e4 iterations of "
        "256 images = 120 epochs)",
    ),
)
def resnet50(**options: Any) -> ResNet:
    return resnet(50, **options)


@register_model(
    "resnet50-v1.5", citation=CITATION, test_input=(3, 32, 32), recipes=(RESNET_IMAGENET,)
)
def resnet50_v1_5(**options: Any) -> ResNet:
    """ResNet-50 with the stride in the 3x3 convolution of each downsampling
    bottleneck ("v1.5", torchvision's layout), so torchvision's weights give
    torchvision's outputs. Deviation from He et al. 2015, kept under its own name."""
    return resnet(50, stride_in_3x3=True, **options)


# 64: layer4's maps are 2x2, so that BatchNorm's statistics over a batch of two are not
# of two numbers; at 32 (1x1 maps) two SGD steps sent the deepest nets to 3e9 (ResNet-101)
# and inf (ResNet-152) in eval mode.
@register_model("resnet101", citation=CITATION, test_input=(3, 64, 64), recipes=(RESNET_IMAGENET,))
def resnet101(**options: Any) -> ResNet:
    return resnet(101, **options)


@register_model("resnet152", citation=CITATION, test_input=(3, 64, 64), recipes=(RESNET_IMAGENET,))
def resnet152(**options: Any) -> ResNet:
    return resnet(152, **options)
