"""The model registry: every model cnnkit can build, by name.

A builder takes ``num_classes`` and ``in_channels`` as keyword arguments and
returns a module whose ``forward`` gives logits, whose ``forward_features``
gives (N, D) features, and whose ``input_size`` is its (C, H, W).
"""

from collections.abc import Callable

from torch import nn

from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.models import lenet

MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "lenet5": lenet.lenet5,
    "lenet5-modern": lenet.lenet5_modern,
}


def model_names() -> list[str]:
    return sorted(MODEL_BUILDERS)


def build_model(name: str, num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    if name not in MODEL_BUILDERS:
        raise UnknownNameError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    try:
        return MODEL_BUILDERS[name](num_classes=num_classes, in_channels=in_channels)
    except ValueError as error:  # a constructor's refusal of these sizes
        raise ConfigError(f"model {name!r}: {error}") from None
