"""Ten-crop regions against explicit slicing; averaging with a position-blind model."""

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit.runtime.inference import classification_errors
from cnnkit.transforms.tencrop import ten_crop, ten_crop_probs


def test_crops_are_corners_centre_and_reflections() -> None:
    images = torch.randint(0, 256, (3, 2, 256, 256), dtype=torch.uint8)
    crops = ten_crop(images, 224)
    assert crops.shape == (10, 3, 2, 224, 224)
    regions = [
        images[..., :224, :224],  # top-left
        images[..., :224, 32:],  # top-right
        images[..., 32:, :224],  # bottom-left
        images[..., 32:, 32:],  # bottom-right
        images[..., 16:240, 16:240],  # centre
    ]
    mirrored = images.flip(-1)
    regions += [
        mirrored[..., :224, :224],
        mirrored[..., :224, 32:],
        mirrored[..., 32:, :224],
        mirrored[..., 32:, 32:],
        mirrored[..., 16:240, 16:240],
    ]
    for crop, region in zip(crops, regions, strict=True):
        assert torch.equal(crop, region)


def test_small_images_are_padded_by_an_eighth_first() -> None:
    images = torch.randint(1, 256, (2, 3, 32, 32), dtype=torch.uint8)
    crops = ten_crop(images, 32)
    padded = F.pad(images, (4, 4, 4, 4))
    assert torch.equal(crops[0], padded[..., :32, :32])
    assert torch.equal(crops[4], images)  # the centre crop is the image itself
    assert torch.equal(crops[9], images.flip(-1))


class ColourMean(nn.Module):
    """Logits from each channel's mean: blind to position and reflection."""

    input_size = (3, 24, 24)

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.mean(dim=(2, 3)))


def test_position_blind_model_gives_single_crop_prediction() -> None:
    torch.manual_seed(0)
    model = ColourMean()
    # Uniform images: every crop has the same colour mean as the whole image.
    colours = torch.randint(0, 256, (8, 3, 1, 1), dtype=torch.uint8)
    images = colours.expand(8, 3, 32, 32).contiguous()
    averaged = ten_crop_probs(model, images.float(), 24)
    single = model(images[..., 4:28, 4:28].float()).softmax(dim=1)
    assert torch.allclose(averaged, single, atol=1e-6)
    labels = torch.randint(0, 5, (8,))
    kwargs = {"mean": (0.5,) * 3, "std": (0.25,) * 3, "num_classes": 5}
    with_tta = classification_errors(model, images, labels, tta="ten-crop", **kwargs)
    without = classification_errors(model, images[..., 4:28, 4:28], labels, **kwargs)
    assert with_tta.top1_error == without.top1_error
    assert torch.equal(with_tta.confusion, without.confusion)
