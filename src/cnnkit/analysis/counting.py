"""Counting rules: what one layer contributes to units and connections.

The conventions, used everywhere in cnnkit (code, JSON, docs, tests):

- ``units``: the activations a layer outputs for one example, which backprop
  must store. Convolution, pooling, subsampling and fully connected layers have
  units; an activation function, dropout, batch normalisation or response
  normalisation acts on the units of the layer before it and adds none (the
  lecture's table has no separate ReLU or tanh rows). The input image counts as
  units too, as LeCun et al. (1989) count it.
- ``weights``: the trainable parameters named ``weight`` (no biases);
  ``biases``: those named ``bias``; ``parameters`` = weights + biases. Both are
  read from the module itself, so they cannot drift from the model.
- ``connections``: the multiply-adds of one forward pass for one example,
  without biases (the lecture's table). A pooling or subsampling unit has one
  connection per input it sees; a grouped or connection-table convolution counts
  only the real connections; response normalisation one per neighbour summed;
  batch normalisation one per unit (its scale).
- ``connections_with_biases``: connections plus one per output of a layer that
  has a bias, as LeCun et al. (1989, 1998) count.

A layer the rules do not know supplies its own through the protocol below: a
``size_kind`` attribute, and for a counted kind a
``count_connections(input_shape, output_shape) -> int`` method.
"""

import math
from collections.abc import Callable
from typing import Any, Protocol, cast, runtime_checkable

from torch import nn

Shape = tuple[int, ...]  # of one example, without the batch dimension

# Kinds whose outputs are units; the other kinds act on units already counted.
KINDS_WITH_UNITS = frozenset({"conv", "table conv", "linear", "pool", "subsampling", "rbf output"})
# Kinds without a row in the report: no parameters, no connections, no units.
FOLDED_KINDS = frozenset({"activation", "passthrough", "identity pool"})
# Kinds counted as "fully connected" when the report splits conv from fc layers.
FULLY_CONNECTED_KINDS = frozenset({"linear", "rbf output"})


@runtime_checkable
class CountsItself(Protocol):
    """A custom layer that states its own kind and connections."""

    size_kind: str

    def count_connections(self, input_shape: Shape, output_shape: Shape) -> int: ...


STANDARD_KINDS: list[tuple[tuple[type[nn.Module], ...], str]] = [
    ((nn.Conv2d,), "conv"),
    ((nn.Linear,), "linear"),
    ((nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "pool"),
    ((nn.LocalResponseNorm,), "lrn"),
    ((nn.BatchNorm1d, nn.BatchNorm2d), "batchnorm"),
    ((nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.GELU, nn.Softmax), "activation"),
    ((nn.Dropout, nn.Identity, nn.Flatten), "passthrough"),
]


def layer_kind(module: nn.Module, input_shape: Shape, output_shape: Shape) -> str | None:
    """The counting kind of a leaf module, or None if no rule knows it."""
    kind = getattr(module, "size_kind", None)
    if kind is None:
        kind = next((k for types, k in STANDARD_KINDS if isinstance(module, types)), None)
    if kind == "pool" and input_shape == output_shape and window_sizes(module, input_shape)[0]:
        return "identity pool"  # an adaptive pool to the size it is given (VGG at 224x224)
    return kind


def window_sizes(module: nn.Module, input_shape: Shape) -> tuple[bool, int]:
    """(is an identity, inputs seen summed over one channel's outputs) of a pooling layer."""
    _, height, width = input_shape
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out_h, out_w = adaptive_output_size(module.output_size, height, width)
        rows = adaptive_windows(height, out_h)
        cols = adaptive_windows(width, out_w)
        return all(r == 1 for r in rows) and all(c == 1 for c in cols), sum(rows) * sum(cols)
    return False, 0


def adaptive_output_size(output_size: Any, height: int, width: int) -> tuple[int, int]:
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    return (size[0] or height, size[1] or width)


def adaptive_windows(length: int, outputs: int) -> list[int]:
    """PyTorch's adaptive pooling windows: [floor(i L / n), ceil((i + 1) L / n))."""
    return [-(-(i + 1) * length // outputs) - (i * length // outputs) for i in range(outputs)]


def kernel_area(kernel_size: int | tuple[int, ...]) -> int:
    return math.prod((kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size)


def conv_connections(module: nn.Conv2d, input_shape: Shape, output_shape: Shape) -> int:
    """Each output unit sees (in_channels / groups) x kh x kw inputs."""
    return (
        math.prod(output_shape)
        * module.in_channels
        // module.groups
        * kernel_area(module.kernel_size)
    )


def linear_connections(module: nn.Linear, input_shape: Shape, output_shape: Shape) -> int:
    return math.prod(output_shape) * module.in_features


def pool_connections(module: nn.Module, input_shape: Shape, output_shape: Shape) -> int:
    """One connection per input a pooling unit sees (the lecture's S2: 4 per unit)."""
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return output_shape[0] * window_sizes(module, input_shape)[1]
    return math.prod(output_shape) * kernel_area(cast(int | tuple[int, ...], module.kernel_size))


def lrn_connections(module: nn.LocalResponseNorm, input_shape: Shape, output_shape: Shape) -> int:
    """Each normalised unit sums the squares of ``size`` neighbouring maps."""
    return math.prod(output_shape) * module.size


def per_unit_connections(module: nn.Module, input_shape: Shape, output_shape: Shape) -> int:
    return math.prod(output_shape)


def no_connections(module: nn.Module, input_shape: Shape, output_shape: Shape) -> int:
    return 0


# Any: each rule takes the module type of its kind (nn.Conv2d for "conv", ...).
CONNECTION_RULES: dict[str, Callable[[Any, Shape, Shape], int]] = {
    "conv": conv_connections,
    "linear": linear_connections,
    "pool": pool_connections,
    "lrn": lrn_connections,
    "batchnorm": per_unit_connections,
    "activation": no_connections,
    "passthrough": no_connections,
    "identity pool": no_connections,
}


def count_connections(module: nn.Module, kind: str, input_shape: Shape, output_shape: Shape) -> int:
    """Connections (without biases) of one call of ``module`` on one example."""
    if isinstance(module, CountsItself):
        return int(module.count_connections(input_shape, output_shape))
    return CONNECTION_RULES[kind](module, input_shape, output_shape)


def count_units(kind: str, output_shape: Shape) -> int:
    return math.prod(output_shape) if kind in KINDS_WITH_UNITS else 0
