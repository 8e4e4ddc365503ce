"""Every registry model: odd num_classes, gradients everywhere, a few steps, a size table
that sums to its parameter count."""

import pytest
import torch
from torch.nn import functional as F

from cnnkit.analysis import size_report
from cnnkit.errors import InputSizeError
from cnnkit.models import build_model, model_names

# Small inputs where the architecture allows, to keep the suite fast on a CPU.
SMALL_INPUTS = {
    "lenet1": (1, 16, 16),
    "lenet5": (1, 32, 32),
    "lenet5-modern": (1, 32, 32),
    "alexnet": (3, 67, 67),  # the smallest that leaves a 1x1 map after pool5
    "alexnet-onetower": (3, 63, 63),
    "zfnet": (3, 63, 63),
    "vgg11": (3, 32, 32),  # five 2x2 poolings
    "vgg16": (3, 32, 32),
    "vgg19": (3, 32, 32),
    "googlenet": (3, 79, 79),  # the auxiliary 5x5 pools need 5x5 maps after 4a
    "resnet18": (3, 32, 32),
    "resnet34": (3, 32, 32),
    "resnet50": (3, 32, 32),
    "resnet50-v1.5": (3, 32, 32),
    # 64: layer4's maps are 2x2, so that BatchNorm's statistics over a batch of two are
    # not of two numbers; at 32 (1x1 maps) two SGD steps sent the deepest nets to
    # 3e9 (ResNet-101) and inf (ResNet-152) in eval mode.
    "resnet101": (3, 64, 64),
    "resnet152": (3, 64, 64),
    "alexnet-small": (1, 28, 28),
    "zfnet-small": (1, 28, 28),
    "vgg-small": (1, 28, 28),
    "googlenet-small": (1, 28, 28),
    "resnet20": (1, 28, 28),
    "resnet8": (1, 28, 28),
}
NUM_CLASSES = 7  # odd, and at most 10 for LeNet-5's RBF codes
SLOW = {"vgg16", "vgg19", "googlenet", "resnet101", "resnet152"}  # 5-10 s each on 2 cores


def test_every_model_has_a_small_input() -> None:
    assert sorted(SMALL_INPUTS) == model_names()


def losses(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss; GoogLeNet adds its auxiliary losses with weight 0.3 (Sec. 5)."""
    if hasattr(model, "forward_with_aux"):
        logits, aux1, aux2 = model.forward_with_aux(x)
        aux = F.cross_entropy(aux1, labels) + F.cross_entropy(aux2, labels)
        return F.cross_entropy(logits, labels) + model.aux_loss_weight * aux
    return F.cross_entropy(model(x), labels)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(SMALL_INPUTS)],
)
def test_model_trains_and_sums(name: str) -> None:
    torch.manual_seed(0)
    channels, height, width = SMALL_INPUTS[name]
    model = build_model(
        name, num_classes=NUM_CLASSES, in_channels=channels, image_size=(height, width)
    )
    assert model.input_size == (channels, height, width)
    x = torch.randn(2, channels, height, width)
    labels = torch.tensor([0, NUM_CLASSES - 1])
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    for step in range(2):
        loss = losses(model.train(), x, labels)
        optimizer.zero_grad()
        loss.backward()
        assert torch.isfinite(loss)
        if step == 0:
            missing = [n for n, p in model.named_parameters() if p.grad is None]
            assert not missing, f"no gradient for {missing}"
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
    assert logits.shape == (2, NUM_CLASSES) and torch.isfinite(logits).all()
    assert features.ndim == 2 and features.shape[0] == 2

    report = size_report(model, (channels, height, width), name)  # a real CPU forward pass
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert report.totals.weights + report.totals.biases == trainable
    assert report.totals.parameters == trainable
    assert report.totals.units == sum(layer.units for layer in report.layers)
    assert report.totals.connections == sum(layer.connections for layer in report.layers)


@pytest.mark.parametrize(
    ("name", "image_size"),
    [("alexnet", 66), ("alexnet-onetower", 62), ("googlenet", 78), ("vgg16", 31), ("lenet5", 28)],
)
def test_too_small_inputs_are_refused(name: str, image_size: int) -> None:
    with pytest.raises(InputSizeError, match=f"{image_size}x{image_size}"):
        build_model(name, image_size=image_size)
