"""The model registry: every model cnnkit can build, by name.

A builder takes ``num_classes``, ``in_channels`` and ``image_size`` as keyword
arguments (each defaulting to its paper's value; some take more, such as
ResNet's ``small_input``) and returns a module whose ``forward`` gives logits,
whose ``forward_features`` gives (N, D) features, and whose ``input_size`` is
its (C, H, W).
"""

from collections.abc import Callable
from typing import Any

from torch import nn

from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.models import alexnet, googlenet, lenet, lenet1989, resnet, small, vgg, zfnet

MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "lenet1": lenet1989.lenet1,
    "lenet5": lenet.lenet5,
    "lenet5-modern": lenet.lenet5_modern,
    "alexnet": alexnet.alexnet,
    "alexnet-onetower": alexnet.alexnet_onetower,
    "zfnet": zfnet.zfnet,
    "vgg11": vgg.vgg11,
    "vgg16": vgg.vgg16,
    "vgg19": vgg.vgg19,
    "googlenet": googlenet.googlenet,
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "resnet50-v1.5": resnet.resnet50_v1_5,
    "resnet101": resnet.resnet101,
    "resnet152": resnet.resnet152,
    # Small-image versions for "results over the years" on MNIST (see small.py).
    "alexnet-small": small.alexnet_small,
    "zfnet-small": small.zfnet_small,
    "vgg-small": small.vgg_small,
    "googlenet-small": small.googlenet_small,
    "resnet20": small.resnet20,
    "resnet8": small.resnet8,
}


def model_input_size(model: nn.Module) -> tuple[int, int, int]:
    """The (C, H, W) input that every registered model declares as ``input_size``."""
    channels, height, width = model.input_size  # type: ignore[misc]  # set by each model
    return int(channels), int(height), int(width)


def model_names() -> list[str]:
    return sorted(MODEL_BUILDERS)


def check_model_name(name: str) -> None:
    """An ``UnknownNameError`` listing the registry unless ``name`` is in it."""
    if name not in MODEL_BUILDERS:
        raise UnknownNameError.of("model", name, model_names())


def build_model(
    name: str, num_classes: int | None = None, in_channels: int | None = None, **options: Any
) -> nn.Module:
    """The model called ``name``; ``None`` leaves a setting at the paper's value."""
    check_model_name(name)
    given = {"num_classes": num_classes, "in_channels": in_channels, **options}
    try:
        return MODEL_BUILDERS[name](
            **{key: value for key, value in given.items() if value is not None}
        )
    except ValueError as error:  # a constructor's refusal of these sizes
        raise ConfigError(f"model {name!r}: {error}") from None
