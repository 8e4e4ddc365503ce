"""Explanations of a trained network's answer: what every layer computed for an image,
and where the evidence for a class lies. The one module every surface calls (the API's
``Run.explain``, ``cnnkit explain``, the server's ``/v1/explain``, the report).

For each image and a class (the top class unless one is asked for):

- ``input``: the image as the network received it (uint8, at the model's input size);
- ``layers``: the activations of every layer that has units, in forward order, with the
  shape and the unit count that ``cnnkit size`` prints (the same counting rules). An
  activation function, batch or response normalisation acts on the units of the layer
  before it and adds none (``analysis.counting``), so each layer shows its units after
  them: what the next layer reads;
- ``probabilities`` of every class;
- ``gradcam``: Grad-CAM (Selvaraju et al. 2017) on the last convolution whose output is
  larger than 1x1 (a 1x1 map would make it constant: LeNet-5's C5), or on the block a
  model names (``Classifier.gradcam_block``: GoogLeNet's last Inception block, whose last
  convolution is one branch of four; a ResNet's last stage, whose last convolution comes
  before the shortcut is added), placed in the input's frame;
- ``saliency``: the gradient of the class's score with respect to the input pixels
  (Simonyan et al. 2014), its largest magnitude over the channels;
- ``smoothgrad``: the same averaged over noisy copies of the image (Smilkov et al. 2017);
- ``novelty``: whether the image looks unlike the training data (``runs.novelty``).

The maps are scaled to [0, 1] by their largest value. Everything comes from one forward
and one backward pass of the batch (SmoothGrad: one more of its noisy copies), through
the ``Classifier`` interface; forward hooks on the leaf modules catch each layer's output
as the size analyzer walks them.
"""

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.analysis.counting import KINDS_WITH_UNITS, count_units, layer_kind
from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.models.interface import Classifier
from cnnkit.runs.novelty import Novelty
from cnnkit.runs.run import Run
from cnnkit.transforms import normalize

SMOOTHGRAD_SAMPLES = 16  # noisy copies per image; Smilkov et al. see little change past 50
SMOOTHGRAD_NOISE = 0.15  # the noise's standard deviation, of the input's range (their 10-20%)
SMOOTHGRAD_SEED = 0  # the same noise for the same image: an explanation is repeatable
CHUNK = 32  # images explained at once: LeNet-5 holds about 2.5 MB an image with SmoothGrad


@dataclass(frozen=True)
class LayerActivations:
    """One layer's output for one image."""

    name: str  # the module's name in the model ("c1")
    kind: str  # its counting rule ("conv", "subsampling", "linear", ...)
    shape: tuple[int, ...]  # of one example: (C, H, W) or (D,)
    units: int  # as ``cnnkit size`` counts them
    values: np.ndarray = field(repr=False)  # float32, ``shape``

    @property
    def has_maps(self) -> bool:
        """Whether its units form feature maps larger than one unit each."""
        return len(self.shape) == 3 and self.shape[1] * self.shape[2] > 1


@dataclass(frozen=True)
class Explanation:
    """What the network computed for one image, and the evidence for one class."""

    source: str  # the image's path, or its place in what was given
    classes: tuple[str, ...]
    input: np.ndarray = field(repr=False)  # uint8 (C, H, W), as the network received it
    probabilities: np.ndarray = field(repr=False)  # (K,)
    target: int  # the class explained
    layers: tuple[LayerActivations, ...] = field(repr=False)
    gradcam_layer: str | None  # None: no convolution's output is larger than 1x1
    gradcam: np.ndarray | None = field(repr=False)  # (H, W) in [0, 1], the input's frame
    saliency: np.ndarray = field(repr=False)  # (H, W) in [0, 1]
    smoothgrad: np.ndarray | None = field(repr=False)  # (H, W) in [0, 1]; None if not asked
    novelty: Novelty | None  # None: the run's training images were not at hand
    novelty_note: str = ""  # why there is no novelty verdict

    @property
    def predicted(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def label(self) -> str:
        """The top class's name."""
        return self.classes[self.predicted]

    @property
    def target_label(self) -> str:
        return self.classes[self.target]

    def top(self, count: int = 5) -> list[tuple[str, float]]:
        """The ``count`` most probable classes with their probabilities."""
        order = np.argsort(-self.probabilities, kind="stable")[:count]
        return [(self.classes[k], float(self.probabilities[k])) for k in order]

    def to_json(self) -> dict:
        """A JSON object: ``input`` (one 2-D list for grayscale, one per channel for
        colour), ``layers`` in forward order (``name``, ``kind``, ``shape``, ``units``,
        ``activations`` as nested lists of ``shape``), ``probabilities`` by class,
        ``target``, ``gradcam`` and ``saliency`` (2-D lists in the input's frame),
        ``smoothgrad`` and ``novelty``."""
        pixels = self.input[0] if self.input.shape[0] == 1 else self.input
        novelty = None
        if self.novelty is not None:
            novelty = {
                "score": round(self.novelty.score, 3),
                "threshold": round(self.novelty.threshold, 3),
                "unusual": self.novelty.unusual,
            }
        return {
            "source": self.source,
            "input": pixels.tolist(),
            "layers": [
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "shape": list(layer.shape),
                    "units": layer.units,
                    "activations": _rounded(layer.values),
                }
                for layer in self.layers
            ],
            "probabilities": dict(zip(self.classes, _rounded(self.probabilities), strict=True)),
            "predicted": self.label,
            "target": self.target_label,
            "gradcam_layer": self.gradcam_layer,
            "gradcam": None if self.gradcam is None else _rounded(self.gradcam),
            "saliency": _rounded(self.saliency),
            "smoothgrad": None if self.smoothgrad is None else _rounded(self.smoothgrad),
            "novelty": novelty,
            "novelty_note": self.novelty_note or None,
        }


def _rounded(values: np.ndarray) -> list:
    """Floats to 5 significant digits, as nested lists: what a figure or a reader needs."""
    return np.vectorize(lambda v: float(f"{v:.5g}"), otypes=[float])(values).tolist()


@dataclass
class _Layer:
    """A layer with units as the forward pass leaves it: its output after whatever acts
    on its units (activation, normalisation), the tensor that autograd knows."""

    name: str
    kind: str
    shape: tuple[int, ...]
    output: torch.Tensor
    values: torch.Tensor  # a detached copy, safe from later in-place operations
    stride: int  # input pixels between neighbouring units of its maps


@dataclass
class _Walk:
    """Where the forward pass is on the main path: the maps' size, and how many input
    pixels apart their units are."""

    size: tuple[int, ...]
    stride: int = 1

    def step(self, module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> None:
        """Follow a module whose input is the main path's maps (a shortcut branch, which
        starts from an earlier size, is not followed)."""
        if inputs.dim() != 4 or output.dim() != 4 or tuple(inputs.shape[2:]) != self.size:
            return
        before, after = inputs.shape[2], output.shape[2]
        if after < before:
            stride = getattr(module, "stride", None)
            stride = stride[0] if isinstance(stride, tuple) else stride
            self.stride *= int(stride) if stride else max(1, round(before / after))
        self.size = tuple(output.shape[2:])


@contextmanager
def recording_layers(model: nn.Module) -> Iterator[list[_Layer]]:
    """Forward hooks on every leaf module that collect the layers with units, in the
    order they run, each with the output of the last module acting on its units."""
    layers: list[_Layer] = []
    names = {module: name for name, module in model.named_modules()}
    walk: _Walk | None = None

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal walk
        if not isinstance(output, torch.Tensor) or not inputs:
            return
        if walk is None:  # the first layer's input is the image
            walk = _Walk(tuple(inputs[0].shape[2:]))
        walk.step(module, inputs[0], output)
        input_shape = tuple(inputs[0].shape[1:])
        shape = tuple(output.shape[1:])
        kind = layer_kind(module, input_shape, shape)
        if kind in KINDS_WITH_UNITS:
            copy = output.detach().clone()
            layers.append(_Layer(names[module], kind, shape, output, copy, walk.stride))
        elif layers and inputs[0] is layers[-1].output:
            # It acts on the units of the layer before it, which it was given (ReLU,
            # BN, dropout, flatten); a sum with a shortcut is a new tensor, not folded.
            last = layers[-1]
            last.output = output
            last.values = output.detach().clone().reshape(-1, *last.shape)

    leaves = [module for module in model.modules() if not list(module.children())]
    handles = [module.register_forward_hook(record) for module in leaves]
    try:
        yield layers
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def block_output(model: Classifier) -> Iterator[list[torch.Tensor]]:
    """A forward hook that keeps the output of the model's ``gradcam_block``, if it
    declares one."""
    caught: list[torch.Tensor] = []
    if model.gradcam_block is None:
        yield caught
        return
    block = model.get_submodule(model.gradcam_block)
    handle = block.register_forward_hook(lambda module, inputs, output: caught.append(output))
    try:
        yield caught
    finally:
        handle.remove()


def gradcam_layer(
    model: Classifier, layers: Sequence[_Layer], block: Sequence[torch.Tensor] = ()
) -> _Layer | None:
    """The model's ``gradcam_block`` (its output, ``block``, placed as the last layer
    inside it is), or else the last convolution (``Classifier.convolutions``): the last
    of them whose maps are larger than 1x1."""
    block_name = model.gradcam_block
    inside = [
        layer for layer in layers if block_name is not None and is_within(layer.name, block_name)
    ]
    if block and inside and math.prod(block[-1].shape[2:]) > 1:
        output = block[-1]
        shape = tuple(output.shape[1:])
        return _Layer(str(block_name), "block", shape, output, output.detach(), inside[-1].stride)
    convolutions = {name for name, _ in model.convolutions()}
    candidates = [
        layer
        for layer in layers
        if layer.name in convolutions and len(layer.shape) == 3 and math.prod(layer.shape[1:]) > 1
    ]
    return candidates[-1] if candidates else None


def is_within(name: str, block: str) -> bool:
    """Whether the layer ``name`` is the module ``block`` or inside it."""
    return name == block or name.startswith(f"{block}.")


def in_input_frame(maps: torch.Tensor, stride: int, size: Sequence[int]) -> torch.Tensor:
    """(N, 1, h, w) maps resampled (bilinear) to the input's (H, W), each unit at the centre
    of the input pixels it sees. Its units are ``stride`` pixels apart and centred on the
    input: with "same" padding they tile it (what a plain resize assumes), while the valid
    convolutions of LeNet-5 leave a margin (C3's 10x10 units span pixels 6.5 to 24.5 of
    32), which a plain resize would stretch over the border."""
    axes = []
    for units, pixels in zip(maps.shape[-2:], size, strict=True):
        span = (units - 1) * stride
        offset = (pixels - 1 - span) / 2
        at = (torch.arange(pixels, dtype=maps.dtype, device=maps.device) - offset) / max(span, 1)
        axes.append(at * 2 - 1)  # grid_sample's [-1, 1] from the first unit to the last
    rows, columns = torch.meshgrid(axes[0], axes[1], indexing="ij")
    grid = torch.stack([columns, rows], dim=-1).expand(len(maps), -1, -1, -1)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _scaled(maps: torch.Tensor) -> np.ndarray:
    """(N, H, W) non-negative maps, each divided by its largest value (all zero stays)."""
    peak = maps.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return (maps / peak).detach().float().cpu().numpy()


def explain_batch(
    run: Run,
    images: torch.Tensor,
    sources: Sequence[str],
    targets: Sequence[int | None] | None = None,
    smoothgrad_samples: int = SMOOTHGRAD_SAMPLES,
    novelty: bool = True,
) -> list[Explanation]:
    """Explanations of uint8 images (N, C, H, W) at the stored or the model's input size,
    called ``sources``, each for its class in ``targets`` (None: its top class).

    ``smoothgrad_samples=0`` leaves SmoothGrad out; ``novelty=False`` the novelty verdict
    (whose first use per run reads some of its training images). The images go through
    the network ``CHUNK`` at a time: every layer's activations and their gradients are
    held for a chunk."""
    classes = tuple(run.record.classes)
    targets = list(targets) if targets is not None else [None] * len(images)
    for target in targets:
        if target is not None and not 0 <= target < len(classes):
            raise ConfigError(f"class {target} is not one of the run's {len(classes)} classes")
    return [
        explanation
        for start in range(0, len(images), CHUNK)
        for explanation in _explain_chunk(
            run,
            images[start : start + CHUNK],
            sources[start : start + CHUNK],
            targets[start : start + CHUNK],
            smoothgrad_samples,
            novelty,
        )
    ]


def _explain_chunk(
    run: Run,
    images: torch.Tensor,
    sources: Sequence[str],
    targets: list[int | None],
    smoothgrad_samples: int,
    novelty: bool,
) -> list[Explanation]:
    classes = tuple(run.record.classes)
    model, device = run.model, run.placement.device
    inputs = run.prepare(images)
    model.eval()
    with torch.enable_grad():
        x = normalize(inputs.to(device), run.record.mean, run.record.std).requires_grad_(True)
        with recording_layers(model) as layers, block_output(model) as block:
            features = model.forward_features(x)
            logits = model.classify(features)
        chosen = torch.tensor(
            [int(logits[k].argmax()) if t is None else t for k, t in enumerate(targets)],
            device=device,
        )
        score = logits.gather(1, chosen[:, None]).sum()
        cam_layer = gradcam_layer(model, layers, block)
        wanted = [x] + ([cam_layer.output] if cam_layer is not None else [])
        gradients = torch.autograd.grad(score, wanted)
        saliency = _scaled(gradients[0].abs().amax(dim=1))
        gradcam = None
        if cam_layer is not None:
            weights = gradients[1].mean(dim=(2, 3), keepdim=True)  # alpha_k: averaged gradients
            cam = F.relu((weights * cam_layer.output).sum(dim=1, keepdim=True))
            gradcam = _scaled(in_input_frame(cam, cam_layer.stride, x.shape[-2:])[:, 0])
        smooth = _smoothgrad(model, x.detach(), chosen, smoothgrad_samples)
    probabilities = logits.detach().float().softmax(dim=1).cpu().numpy()
    verdicts, note = _novelty(run, logits.detach()) if novelty else (None, "not asked for")
    return [
        Explanation(
            source=sources[k],
            classes=classes,
            input=inputs[k].cpu().numpy(),
            probabilities=probabilities[k],
            target=int(chosen[k]),
            layers=tuple(
                LayerActivations(
                    layer.name,
                    layer.kind,
                    layer.shape,
                    count_units(layer.kind, layer.shape),
                    layer.values[k].float().cpu().numpy(),
                )
                for layer in layers
            ),
            gradcam_layer=cam_layer.name if cam_layer is not None else None,
            gradcam=None if gradcam is None else gradcam[k],
            saliency=saliency[k],
            smoothgrad=None if smooth is None else smooth[k],
            novelty=None if verdicts is None else verdicts[k],
            novelty_note=note,
        )
        for k in range(len(inputs))
    ]


def _smoothgrad(
    model: Classifier, x: torch.Tensor, targets: torch.Tensor, samples: int
) -> np.ndarray | None:
    """SmoothGrad maps (N, H, W) of normalised inputs x, or None for no samples."""
    if samples <= 0:
        return None
    generator = torch.Generator(device=x.device).manual_seed(SMOOTHGRAD_SEED)
    spread = (x.flatten(1).amax(dim=1) - x.flatten(1).amin(dim=1)) * SMOOTHGRAD_NOISE
    copies = x.repeat_interleave(samples, dim=0)
    noise = torch.randn(copies.shape, generator=generator, device=x.device)
    spreads = spread.repeat_interleave(samples)[:, None, None, None]
    noisy = (copies + noise * spreads).requires_grad_(True)
    logits = model(noisy)
    score = logits.gather(1, targets.repeat_interleave(samples)[:, None]).sum()
    (gradient,) = torch.autograd.grad(score, [noisy])
    maps = gradient.abs().amax(dim=1).reshape(len(x), samples, *x.shape[-2:]).mean(dim=1)
    return _scaled(maps)


def _novelty(run: Run, logits: torch.Tensor) -> tuple[list[Novelty] | None, str]:
    """Each image's novelty verdict, or None and why there is none."""
    try:
        detector = run.novelty
    except CnnkitError as error:
        return None, f"no novelty score: {error}"
    return detector.judge(logits.float().cpu()), ""
