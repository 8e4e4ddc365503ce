"""The size report of a model: units, weights, biases and connections, layer by layer.

The report walks the real module: forward hooks on its leaf modules record each
layer's input and output shapes during one forward pass, and the counting rules
of ``cnnkit.analysis.counting`` turn them into sizes. Models from the registry
are walked on PyTorch's ``meta`` device, where a forward pass computes shapes
only, so even VGG-19 is counted in a moment.
"""

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnkit.analysis.counting import (
    FOLDED_KINDS,
    FULLY_CONNECTED_KINDS,
    Shape,
    count_connections,
    count_units,
    layer_kind,
)
from cnnkit.errors import InputSizeError, UncountedLayerError
from cnnkit.models import build_model

BYTES_PER_NUMBER = 4  # float32


@dataclass(frozen=True)
class LayerSize:
    name: str  # the module's name in the model, e.g. "c1" or "features.0"
    kind: str  # the counting rule: conv, table conv, linear, pool, subsampling, ...
    output_shape: Shape  # of one example
    units: int
    weights: int
    biases: int
    connections: int
    connections_with_biases: int


@dataclass(frozen=True)
class SizeTotals:
    units: int
    weights: int
    biases: int
    parameters: int
    connections: int
    connections_with_biases: int


@dataclass(frozen=True)
class PartShares:
    """Fractions of units (input excluded), weights and connections in one part of a net."""

    units: float
    weights: float
    connections: float


@dataclass(frozen=True)
class RuleOfThumb:
    """One of the lecture's rules of thumb, checked on one network."""

    rule: str  # as the lecture states it
    holds: bool
    why: str  # the share that decides it, and where the rest is when it does not hold

    def __str__(self) -> str:
        verdict = "holds" if self.holds else "does not hold"
        return f"{self.rule}: {verdict}; {self.why}"


@dataclass(frozen=True)
class SizeReport:
    model: str
    input: Shape  # (C, H, W)
    layers: list[LayerSize]
    totals: SizeTotals = field(init=False)

    def __post_init__(self) -> None:
        weights = sum(layer.weights for layer in self.layers)
        biases = sum(layer.biases for layer in self.layers)
        totals = SizeTotals(
            units=sum(layer.units for layer in self.layers),
            weights=weights,
            biases=biases,
            parameters=weights + biases,
            connections=sum(layer.connections for layer in self.layers),
            connections_with_biases=sum(layer.connections_with_biases for layer in self.layers),
        )
        object.__setattr__(self, "totals", totals)

    @property
    def parameter_bytes(self) -> int:
        """What test time must hold: every parameter as a float32."""
        return self.totals.parameters * BYTES_PER_NUMBER

    @property
    def activation_bytes(self) -> int:
        """What backprop must hold for one training example: every unit as a float32."""
        return self.totals.units * BYTES_PER_NUMBER

    def shares(self, fully_connected: bool) -> PartShares:
        """The share of the fully connected layers (linear, RBF output), or of the rest."""
        part = [
            layer
            for layer in self.layers
            if layer.kind != "input" and (layer.kind in FULLY_CONNECTED_KINDS) == fully_connected
        ]
        units = self.totals.units - sum(
            layer.units for layer in self.layers if layer.kind == "input"
        )
        return PartShares(
            units=_fraction(sum(layer.units for layer in part), units),
            weights=_fraction(sum(layer.weights for layer in part), self.totals.weights),
            connections=_fraction(
                sum(layer.connections for layer in part), self.totals.connections
            ),
        )

    def rules_of_thumb(self) -> tuple[RuleOfThumb, ...]:
        """The lecture's rules (most units and connections in the convolution layers,
        most weights in the fully connected ones), each checked with its reason. The
        convolution side counts every layer that is not fully connected (pooling and
        subsampling too), as the lecture splits a network in two."""
        conv, fc = self.shares(fully_connected=False), self.shares(fully_connected=True)
        weights_why = f"{_percent(fc.weights)} of the weights are in fully connected layers"
        others = [
            layer
            for layer in self.layers
            if layer.kind not in FULLY_CONNECTED_KINDS and layer.kind != "input"
        ]
        if fc.weights <= 0.5 and self.totals.weights and others:
            heaviest = max(others, key=lambda layer: layer.weights)
            share = _percent(_fraction(heaviest.weights, self.totals.weights))
            weights_why += f"; {heaviest.name}, a {heaviest.kind} layer, holds {share}"
        return (
            RuleOfThumb(
                "most of the units are in the convolution layers",
                conv.units > 0.5,
                f"{_percent(conv.units)} of the units (input excluded) are in "
                "convolution, pooling and subsampling layers",
            ),
            RuleOfThumb(
                "most of the connections are in the convolution layers",
                conv.connections > 0.5,
                f"{_percent(conv.connections)} of the connections are in convolution, "
                "pooling and subsampling layers",
            ),
            RuleOfThumb(
                "most of the weights are in the fully connected layers",
                fc.weights > 0.5,
                weights_why,
            ),
        )

    def to_dict(self) -> dict:
        """The JSON shape: model, input, layers, totals."""
        return {
            "model": self.model,
            "input": list(self.input),
            "layers": [
                {**asdict(layer), "output_shape": list(layer.output_shape)} for layer in self.layers
            ],
            "totals": asdict(self.totals),
        }


def _fraction(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def model_size(
    name: str, input_shape: Shape | None = None, num_classes: int | None = None
) -> SizeReport:
    """The size report of registry model ``name`` for one input of ``input_shape`` (C, H, W),
    by default the model's own input size."""
    options: dict[str, Any] = {}
    if input_shape is not None:
        options = {"in_channels": input_shape[0], "image_size": tuple(input_shape[1:])}
    with FloatsOnMeta():  # AlexNet at 2000x2000 would allocate 16 GB of fc6 weights
        model = build_model(name, num_classes=num_classes, **options)
    return size_report(model.to("meta"), input_shape or model.input_size, name)


class FloatsOnMeta(TorchFunctionMode):
    """While active, new floating-point tensors (weights, biases) are made on the meta
    device, which records shapes and allocates nothing; integer and boolean ones (LeNet's
    connection tables, which the layers read while they are built) stay real."""

    FACTORIES = frozenset(
        {torch.empty, torch.empty_strided, torch.zeros, torch.ones, torch.full, torch.rand,
         torch.randn}
    )  # fmt: skip

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        if func in self.FACTORIES and kwargs.get("device") is None:
            dtype = kwargs.get("dtype") or torch.get_default_dtype()
            if dtype.is_floating_point:
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


def size_report(model: nn.Module, input_shape: Shape, name: str = "model") -> SizeReport:
    """Walk ``model`` on one input of ``input_shape`` and count every layer.

    Models with auxiliary heads are walked through ``forward_with_aux``, so that
    every parameter is counted. The model runs in eval mode without gradients and
    is put back in the mode it was in.
    """
    calls: list[tuple[str, nn.Module, Shape, Shape]] = []

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        calls.append((names[module], module, tuple(inputs[0].shape[1:]), tuple(output.shape[1:])))

    names = {module: module_name for module_name, module in model.named_modules()}
    leaves = [module for module in model.modules() if not list(module.children())]
    handles = [module.register_forward_hook(record) for module in leaves]
    was_training = model.training
    device = next(iter(model.parameters()), torch.empty(0)).device
    x = torch.zeros(1, *input_shape, device=device)
    try:
        model.eval()
        with torch.no_grad():
            getattr(model, "forward_with_aux", model)(x)  # through the auxiliary heads, if any
    except RuntimeError as error:
        shape = "x".join(str(size) for size in input_shape)
        raise InputSizeError(
            f"{name} cannot take a {shape} input ({str(error).splitlines()[0]})"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    layers = [LayerSize("input", "input", tuple(input_shape), math.prod(input_shape), 0, 0, 0, 0)]
    layers += count_calls(calls, name)
    check_all_parameters_counted(model, {id(module) for _, module, _, _ in calls}, name)
    return SizeReport(model=name, input=tuple(input_shape), layers=layers)


def count_calls(
    calls: list[tuple[str, nn.Module, Shape, Shape]], model_name: str
) -> list[LayerSize]:
    """One row per call of a counted layer; a layer's parameters count at its first call."""
    layers, seen = [], set()
    for name, module, input_shape, output_shape in calls:
        kind = layer_kind(module, input_shape, output_shape)
        if kind is None:
            raise UncountedLayerError(
                f"{model_name}: no counting rule for layer {name!r} ({type(module).__name__}); "
                f"give it a size_kind and a count_connections method"
            )
        if kind in FOLDED_KINDS:
            continue
        weights, biases = (0, 0) if id(module) in seen else own_parameters(module, name)
        seen.add(id(module))
        connections = count_connections(module, kind, input_shape, output_shape)
        has_bias = getattr(module, "bias", None) is not None
        layers.append(
            LayerSize(
                name=name,
                kind=kind,
                output_shape=output_shape,
                units=count_units(kind, output_shape),
                weights=weights,
                biases=biases,
                connections=connections,
                connections_with_biases=connections + (math.prod(output_shape) if has_bias else 0),
            )
        )
    return layers


def own_parameters(module: nn.Module, name: str) -> tuple[int, int]:
    """(weights, biases): the module's own trainable parameters named weight and bias."""
    counts = {"weight": 0, "bias": 0}
    for param_name, param in module.named_parameters(recurse=False):
        if param_name not in counts:
            raise UncountedLayerError(
                f"layer {name!r} has a parameter {param_name!r}; only weight and bias are counted"
            )
        counts[param_name] += param.numel() if param.requires_grad else 0
    return counts["weight"], counts["bias"]


def check_all_parameters_counted(model: nn.Module, called: set[int], name: str) -> None:
    """Every module that holds trainable parameters must have run in the walk."""
    missed = [
        module_name
        for module_name, module in model.named_modules()
        if id(module) not in called
        and any(p.requires_grad for p in module.parameters(recurse=False))
    ]
    if missed:
        raise UncountedLayerError(
            f"{name}: layers with parameters did not run in the forward pass: {', '.join(missed)}"
        )
