"""AlexNet (Krizhevsky, Sutskever and Hinton 2012) and torchvision's one-tower variant.

Krizhevsky, Sutskever and Hinton, "ImageNet classification with deep
convolutional neural networks", NIPS 2012. Section 3 and Fig. 2 give the
architecture, Sec. 4.2 dropout, Sec. 5 the initialisation.
"""

import torch
from torch import nn

from cnnkit.config import ALEXNET_IMAGENET
from cnnkit.models.interface import Classifier
from cnnkit.models.layers import final_map_size, local_response_norm, pair
from cnnkit.models.registry import PaperFacts, register_model

# The paper, short, for `cnnkit models`.
CITATION = (
    'Krizhevsky et al. 2012, "ImageNet classification with deep convolutional neural networks"'
)


class AlexNet(Classifier):
    """AlexNet as published (Krizhevsky et al. 2012, Sec. 3.5, Fig. 2).

    Five convolutional and three fully connected layers; ReLU after each
    (Sec. 3.1); local response normalisation after conv1 and conv2 (Sec. 3.3);
    overlapping 3x3 max pooling with stride 2 after the two normalisations and
    after conv5 (Sec. 3.4); dropout with p = 0.5 on the outputs of fc6 and fc7
    (Sec. 4.2). The two-GPU split is expressed as grouped convolutions: conv2,
    conv4 and conv5 (``groups=2``) see only the kernel maps of their own GPU,
    conv3 and the fully connected layers see both (Sec. 3.2).

    Input size: the paper says 224x224x3, but an 11x11 kernel with stride 4
    gives the paper's 55x55 conv1 maps only from 227x227 ((227 - 11) / 4 + 1 =
    55), so 227 is the default; 224 gives 54x54 maps and a 5x5 conv5 output.
    Other sizes work from 67x67 up, with fc6 sized for the last map.

    Deviations: none in the architecture. Initialisation follows Sec. 5:
    weights N(0, 0.01^2), biases 1 in conv2, conv4, conv5 and the fully
    connected layers, 0 in conv1 and conv3.
    """

    def __init__(
        self, num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 227
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        self.input_size = (in_channels, *image_size)
        pool = (3, 2, 0, False)
        height, width = final_map_size(
            "alexnet", image_size, [(11, 4, 0, False), pool, (5, 1, 2, False), pool, pool]
        )
        self.conv1 = nn.Conv2d(in_channels, 96, kernel_size=11, stride=4)  # (N, 96, 55, 55)
        self.relu1 = nn.ReLU()
        self.norm1 = local_response_norm()
        self.pool1 = nn.MaxPool2d(3, stride=2)  # (N, 96, 27, 27)
        self.conv2 = nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2)  # (N, 256, 27, 27)
        self.relu2 = nn.ReLU()
        self.norm2 = local_response_norm()
        self.pool2 = nn.MaxPool2d(3, stride=2)  # (N, 256, 13, 13)
        self.conv3 = nn.Conv2d(256, 384, kernel_size=3, padding=1)  # (N, 384, 13, 13)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2)  # (N, 384, 13, 13)
        self.relu4 = nn.ReLU()
        self.conv5 = nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2)  # (N, 256, 13, 13)
        self.relu5 = nn.ReLU()
        self.pool5 = nn.MaxPool2d(3, stride=2)  # (N, 256, 6, 6)
        self.fc6 = nn.Linear(256 * height * width, 4096)
        self.relu6 = nn.ReLU()
        self.drop6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(4096, 4096)
        self.relu7 = nn.ReLU()
        self.drop7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(4096, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Sec. 5: N(0, 0.01^2) weights; biases 1 where they speed up early learning."""
        for name, module in self.named_children():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, std=0.01)
                assert module.bias is not None  # every layer here is built with a bias
                nn.init.constant_(module.bias, 0.0 if name in ("conv1", "conv3") else 1.0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.norm1(self.relu1(self.conv1(x))))
        x = self.pool2(self.norm2(self.relu2(self.conv2(x))))
        x = self.relu4(self.conv4(self.relu3(self.conv3(x))))
        x = self.pool5(self.relu5(self.conv5(x))).flatten(1)  # (N, 9216)
        x = self.drop6(self.relu6(self.fc6(x)))
        return self.drop7(self.relu7(self.fc7(x)))  # (N, 4096)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc8(features)


class AlexNetOneTower(Classifier):
    """torchvision's ``alexnet``: one tower, with torchvision's state_dict keys.

    Krizhevsky, "One weird trick for parallelizing convolutional neural
    networks", arXiv:1404.5997, 2014, Sec. 4 describes this single-column net;
    torchvision's ``alexnet`` implements it, and its weights load here
    (``features.N``, ``classifier.N``).

    Deviations from AlexNet (2012), the reason this is a separate registry name:
    conv1 has 64 kernels with padding 2 (224x224 inputs give 55x55 maps), conv2
    192 and conv4 256 kernels; no grouped convolutions and no response
    normalisation; an adaptive 6x6 average pool before the classifier (an
    identity at 224x224, it lets any input of at least 63x63 through); dropout
    before fc6 and fc7 rather than after them; PyTorch's default initialisation.
    """

    def __init__(
        self, num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 224
    ) -> None:
        super().__init__()
        image_size = pair(image_size)
        self.input_size = (in_channels, *image_size)
        pool = (3, 2, 0, False)
        final_map_size("alexnet-onetower", image_size, [(11, 4, 2, False), pool, pool, pool])
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),  # (N, 64, 55, 55)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (N, 64, 27, 27)
            nn.Conv2d(64, 192, kernel_size=5, padding=2),  # (N, 192, 27, 27)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (N, 192, 13, 13)
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # (N, 384, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # (N, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # (N, 256, 13, 13)
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # (N, 256, 6, 6)
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x)).flatten(1)  # (N, 9216)
        return self.classifier[:6](x)  # (N, 4096)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier[6](features)


@register_model(
    "alexnet",
    citation=CITATION,
    test_input=(3, 67, 67),  # the smallest that leaves a 1x1 map after pool5
    recipes=(ALEXNET_IMAGENET,),
    paper=PaperFacts(
        "AlexNet (2012)",
        "objects",
        1000,
        "256x256x3",
        1_200_000,
        90,
        "Krizhevsky et al. 2012, Sec. 2 (1.2 million images) and Sec. 5 (roughly 90 cycles)",
    ),
)
def alexnet(
    num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 227
) -> AlexNet:
    return AlexNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size)


@register_model(
    "alexnet-onetower", citation=CITATION, test_input=(3, 63, 63), recipes=(ALEXNET_IMAGENET,)
)
def alexnet_onetower(
    num_classes: int = 1000, in_channels: int = 3, image_size: int | tuple = 224
) -> AlexNetOneTower:
    return AlexNetOneTower(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
