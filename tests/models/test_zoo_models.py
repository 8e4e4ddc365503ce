"""Every registry model: odd num_classes, gradients everywhere, a few steps, the declared
interface, a size table that sums to its parameter count."""

import pytest
import torch
from torch.nn import functional as F

from cnnkit.analysis import size_report
from cnnkit.errors import InputSizeError
from cnnkit.models import Classifier, build_model, model_entry, model_names

NUM_CLASSES = 7  # odd, and at most 10 for LeNet-5's RBF codes
SLOW = {"vgg16", "vgg19", "googlenet", "resnet101", "resnet152"}  # 5-10 s each on 2 cores


def losses(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss; GoogLeNet adds its auxiliary losses with weight 0.3 (Sec. 5)."""
    if hasattr(model, "forward_with_aux"):
        logits, aux1, aux2 = model.forward_with_aux(x)
        aux = F.cross_entropy(aux1, labels) + F.cross_entropy(aux2, labels)
        return F.cross_entropy(logits, labels) + model.aux_loss_weight * aux
    return F.cross_entropy(model(x), labels)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in model_names()],
)
def test_model_trains_and_sums(name: str) -> None:
    torch.manual_seed(0)
    channels, height, width = model_entry(name).test_input  # small, to keep the suite fast
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
    # The declared interface (models.interface): the head turns the features into the
    # logits, and the convolutions are the model's own, named, in order of their maps.
    assert isinstance(model, Classifier)
    assert torch.allclose(model.classify(features), logits, rtol=1e-5, atol=1e-5)
    convolutions = model.convolutions()
    assert convolutions and all(model.get_submodule(n) is m for n, m in convolutions)

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
