"""torchvision's state_dicts load into our models and give torchvision's outputs on real photos.

No weights can be downloaded, so torchvision's models are randomly initialised
(``weights=None``) and their state_dicts copied into ours.
"""

import io
import tarfile

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.nn import functional as F

from cnnkit.models import build_model
from tests.helpers import require_path
from tests.helpers.real_images import CIFAR_JPEG_ARCHIVE

CIFAR_JPEGS = CIFAR_JPEG_ARCHIVE  # ../shared/data beside the repository
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Two real CIFAR-10 photos, upsampled to 224x224 and normalised: (2, 3, 224, 224)."""
    require_path(CIFAR_JPEGS, "the shared CIFAR-10 JPEGs beside the repository")
    images = []
    with tarfile.open(CIFAR_JPEGS) as archive:
        for member in archive:  # streams the first members only
            if member.isfile() and member.name.endswith(".jpg"):
                data = archive.extractfile(member).read()
                images.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
            if len(images) == 2:
                break
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    x = F.interpolate(x, size=224, mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    return (x - mean) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


# name, torchvision builder, our options, torchvision's parameter count (its docs).
CASES = [
    ("resnet18", torchvision.models.resnet18, {}, 11_689_512),
    pytest.param(
        "resnet50-v1.5", torchvision.models.resnet50, {}, 25_557_032, marks=pytest.mark.slow
    ),
    pytest.param("vgg16", torchvision.models.vgg16, {}, 138_357_544, marks=pytest.mark.slow),
    ("alexnet-onetower", torchvision.models.alexnet, {}, 61_100_840),
]


@pytest.mark.parametrize(("name", "reference", "options", "count"), CASES)
def test_torchvision_weights_give_torchvision_outputs(
    name: str, reference, options: dict, count: int, photos: torch.Tensor
) -> None:
    torch.manual_seed(0)
    theirs = reference(weights=None).eval()
    ours = build_model(name, **options).eval()
    assert sum(p.numel() for p in ours.parameters()) == count
    assert sum(p.numel() for p in theirs.parameters()) == count
    ours.load_state_dict(theirs.state_dict())  # strict: same keys and shapes
    with torch.no_grad():
        difference = (ours(photos) - theirs(photos)).abs().max().item()
    assert difference < 1e-5


def test_paper_resnet50_loads_torchvision_weights() -> None:
    """The paper's stride placement has the same parameters, so the state_dict loads;
    its outputs differ (stride 2 in the first 1x1 instead of the 3x3 convolution)."""
    ours = build_model("resnet50")
    ours.load_state_dict(torchvision.models.resnet50(weights=None).state_dict())
    assert ours.layer2[0].conv1.stride == (2, 2) and ours.layer2[0].conv2.stride == (1, 1)
