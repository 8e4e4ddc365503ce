"""Training configuration, the recipes that set its defaults, and the valid values of
the choices that the command line offers (torch-free, so that ``cnnkit --help`` and
option parsing never import torch)."""

import math
import os
import types
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from cnnkit.errors import ConfigError, UnknownNameError

# The choices, each defined once; the modules that act on them check against these.
DEVICES = ("auto", "cpu", "cuda", "mps")  # runtime.device
PRECISIONS = ("fp32", "bf16", "fp16")  # autocast dtypes, runtime.device
TTA_MODES = ("none", "ten-crop")  # test-time augmentation, runtime.inference
EXPORT_FORMATS = ("onnx", "torchscript")  # export
QUANTIZATIONS = ("int8",)  # export --quantize
TABLE_FORMATS = ("table", "json", "csv", "markdown")  # analysis.render
VECTOR_DTYPES = ("float32", "float16")
RETRIEVAL_METHODS = ("pixels", "hog", "conv")  # search eval
# trainer.optimizers: SGD one-cycle; LeNet-5's own (trainer.sdlm); Adam one-cycle (speedrun)
OPTIMIZERS = ("sgd", "sdlm", "adam")

# The image formats cnnkit decodes, in Pillow's names, and the first bytes that identify
# each (their specifications): those a photo or a drawing comes in. The one image reader
# (data.image_files) and the server (serve.limits, which imports no torch) both check
# them; the bytes say what a file is, whatever its name.
IMAGE_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "GIF": (b"GIF87a", b"GIF89a"),
    "WEBP": (b"RIFF",),  # and "WEBP" at offset 8
}
IMAGE_FORMAT_NAMES = "PNG, JPEG, GIF or WebP"  # as messages and docs name them


def image_format_of(head: bytes) -> str | None:
    """The format (a key of ``IMAGE_SIGNATURES``) whose signature ``head``, a file's
    first 12 bytes or more, starts with; None for any other."""
    for fmt, signatures in IMAGE_SIGNATURES.items():
        if head.startswith(signatures) and (fmt != "WEBP" or head[8:12] == b"WEBP"):
            return fmt
    return None


MAX_DEFAULT_WORKERS = 8


def is_count(value: object) -> bool:
    """A whole number, 1 or more, as a count of images, classes or results is (True is
    an int to Python, and no count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def default_workers() -> int:
    """Worker processes by default (streamed data, an index's embedding): one per core
    this process may run on, at most ``MAX_DEFAULT_WORKERS``."""
    return max(1, min(MAX_DEFAULT_WORKERS, len(os.sched_getaffinity(0))))


@dataclass(frozen=True)
class Recipe:
    """The optimisation settings a model trains with by default.

    SGD with momentum and weight decay (Krizhevsky et al. 2012, Sec. 5) under a
    one-cycle learning-rate schedule (Smith and Topin 2017): a linear warm-up to
    ``lr`` over the first ``warmup_fraction`` of the steps, then cosine decay.
    PyTorch's SGD applies weight decay and momentum as
    v <- m v + (g + wd w); w <- w - lr v, where the AlexNet paper puts lr inside
    v's update; with a fixed lr the two are the same. ``nesterov`` evaluates the
    gradient after the momentum step (Sutskever et al. 2013): cnnkit's short CPU
    schedules use it; the ImageNet papers used classical momentum.
    """

    epochs: int = 4
    batch_size: int = 128
    lr: float = 0.05  # peak learning rate of the one-cycle schedule
    momentum: float = 0.9  # Krizhevsky et al. 2012, Sec. 5
    nesterov: bool = True  # Sutskever et al. 2013; False: classical momentum
    weight_decay: float = 5e-4  # Krizhevsky et al. 2012, Sec. 5
    warmup_fraction: float = 0.25
    label_smoothing: float = 0.0
    augment: str = "none"  # a preset or steps of transforms.augment, e.g. "alexnet"
    source: str = ""  # where these settings come from
    # "sdlm": LeCun et al. 1998's method (trainer.sdlm); lr is then its first pass's eta,
    # and momentum, weight decay and warm-up do not apply. "adam": Adam (Kingma and Ba
    # 2015) under the one-cycle schedule, ``momentum`` its beta1 (trainer.optimizers).
    optimizer: str = "sgd"


@dataclass(frozen=True)
class RecipeRule:
    """A model's recipe on some data sets, with its name: ``datasets`` are names or
    prefixes ending in ``:`` (``imagenet:``); empty means every data set. A model's
    rules are part of its registration (``models.registry``)."""

    name: str
    recipe: Recipe
    datasets: tuple[str, ...] = ()

    def covers(self, dataset: str) -> bool:
        return not self.datasets or any(
            dataset == d or (d.endswith(":") and dataset.startswith(d)) for d in self.datasets
        )


# Every model's recipe where none of its own covers the data set. Recipes are chosen in
# advance on the training split alone, never by peeking at test error within a reported
# run; the figures they reach are in docs/performance.md.
SHORT_SCHEDULE = RecipeRule(
    "short schedule",
    Recipe(
        source="cnnkit: a short schedule to try a model on a CPU (4 epochs, one-cycle), with "
        "the momentum and weight decay of Krizhevsky et al. 2012, Sec. 5; no paper's full "
        "schedule"
    ),
)


# Named recipes, with their sources; each model's registration (models.registry) says
# which of them it trains with, before the short schedule.
# Chosen on MNIST's training split (docs/performance.md, "Choosing the LeNet-5 recipe"):
# the RBF output's squared distances make gradients ~10x those of a linear softmax
# layer, hence the lower rate; 15 epochs with shifts reach 99.2% where 20 without reach
# 98.98%.
LENET5_RECIPE = RecipeRule(
    "lenet5",
    Recipe(
        epochs=15,
        lr=0.01,
        augment="shift",
        source="cnnkit, chosen on MNIST (docs/performance.md, 'Choosing the LeNet-5 recipe'); "
        "the paper trained 20 passes with its second-order method (LeCun et al. 1998, Sec. III)",
    ),
)

# 8 epochs: Fashion-MNIST passes 90% (89.6% after 4); MNIST 99.1% after 2.
LENET5_MODERN_RECIPE = RecipeRule(
    "lenet5-modern", Recipe(epochs=8, lr=0.05, source="cnnkit, chosen on MNIST and Fashion-MNIST")
)

ALEXNET_IMAGENET = RecipeRule(
    "AlexNet on ImageNet",
    Recipe(
        epochs=90,
        batch_size=128,
        lr=0.01,
        nesterov=False,
        weight_decay=5e-4,
        augment="alexnet",
        source="Krizhevsky et al. 2012, Sec. 4.1 and 5 (about 90 passes, batch 128, lr "
        "0.01, momentum 0.9, weight decay 5e-4); one-cycle instead of their manual steps",
    ),
    ("imagenet:",),
)

ZFNET_IMAGENET = RecipeRule(
    "ZFNet on ImageNet",
    Recipe(
        epochs=70,
        batch_size=128,
        lr=0.01,
        nesterov=False,
        augment="crop,flip",
        source="Zeiler and Fergus 2014, Sec. 3 (70 epochs, batch 128, lr 0.01, momentum "
        "0.9); weight decay as AlexNet's",
    ),
    ("imagenet:",),
)

VGG_IMAGENET = RecipeRule(
    "VGG on ImageNet",
    Recipe(
        epochs=74,
        batch_size=256,
        lr=0.01,
        nesterov=False,
        augment="crop,flip",
        source="Simonyan and Zisserman 2015, Sec. 3.1 (74 epochs, batch 256, lr 0.01, "
        "momentum 0.9, weight decay 5e-4)",
    ),
    ("imagenet:",),
)

RESNET_IMAGENET = RecipeRule(
    "ResNet and GoogLeNet on ImageNet",
    Recipe(
        epochs=90,
        batch_size=256,
        lr=0.1,
        nesterov=False,
        weight_decay=1e-4,
        augment="alexnet",
        source="He et al. 2016, Sec. 3.4 (batch 256, lr 0.1, momentum 0.9, weight decay "
        "1e-4, 60e4 steps = about 90 epochs); GoogLeNet's paper gives no rate (Szegedy et "
        "al. 2015, Sec. 6), so it takes these",
    ),
    ("imagenet:",),
)


# The fastest 99% on MNIST on a CPU (models.speedrun, docs/speedrun.md): one epoch of Adam
# with train_mnist_fast's settings, chosen on a validation split.
SPEEDRUN_RECIPE = RecipeRule(
    "speedrun",
    Recipe(
        epochs=1,
        batch_size=256,
        lr=0.01,
        momentum=0.7,  # Adam's beta1
        nesterov=False,
        weight_decay=0.0,
        warmup_fraction=0.3,
        optimizer="adam",
        source="tuomaso/train_mnist_fast, final notebook (one epoch, batch 256, Adam lr "
        "0.01, betas (0.7, 0.9), one-cycle with 30% warm-up); chosen on MNIST's training "
        "split (benchmarks/recipe_search.py speedrun)",
    ),
    ("mnist",),
)

# LeNet-5 trained the paper's way: 20 passes of stochastic diagonal Levenberg-Marquardt
# with its eta schedule (trainer.sdlm), no distortions, no weight decay.
SDLM_RECIPE = Recipe(
    epochs=20,
    batch_size=16,  # the paper updates after every pattern; here every 16 (trainer.sdlm)
    lr=0.0005,  # eta of the first two passes; trainer.sdlm.PAPER_ETAS scales the rest
    momentum=0.0,
    nesterov=False,
    weight_decay=0.0,
    optimizer="sdlm",
    source="LeCun et al. 1998, Sec. III-A and Appendix C (20 passes, eta 0.0005 to "
    "0.00001, mu 0.02, curvature from 500 patterns per pass); batches of 16",
)


@dataclass(frozen=True)
class Limits:
    """The values an option admits: numbers in a range, or one of some names. The command
    line's ``IntRange``, ``FloatRange`` and ``Choice`` say the same (a test holds them to
    it), so that Python and the CLI refuse the same values."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the low end itself is refused
    high_open: bool = False
    choices: tuple[str, ...] = ()

    def admits(self, value: object) -> bool:
        if self.choices:
            return value in self.choices
        if not isinstance(value, int | float):
            return True
        if not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        ends = []
        if self.low is not None:
            ends.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            ends.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return "a value " + " and ".join(ends)


def limited(default: Any, limits: Limits) -> Any:
    """A dataclass field with its ``Limits``."""
    return field(default=default, metadata={"limits": limits})


AT_LEAST_ONE = Limits(low=1)


@dataclass(frozen=True)
class TrainOptions:
    """What a user asks of training, declared once: ``cnnkit train``'s options are
    these fields (a test holds them to it, defaults included) and ``training.train``
    takes them. ``None`` leaves a setting to the model's recipe."""

    model: str = "lenet5"
    dataset: str = "mnist"
    # The recipe's settings that the command line overrides one by one.
    epochs: int | None = limited(None, AT_LEAST_ONE)
    batch_size: int | None = limited(None, AT_LEAST_ONE)
    lr: float | None = limited(None, Limits(low=0, low_open=True))
    weight_decay: float | None = limited(None, Limits(low=0))
    label_smoothing: float | None = limited(None, Limits(low=0, high=1, high_open=True))
    augment: str | None = None
    # "sdlm": LeNet-5's own method and the paper's recipe
    optimizer: str = limited("sgd", Limits(choices=OPTIMIZERS))
    seed: int = 0
    out: Path | None = None  # [runs/MODEL-DATASET, numbered]
    resume: bool = False
    data_dir: Path | None = None
    train_limit: int | None = limited(None, AT_LEAST_ONE)
    test_limit: int | None = limited(None, AT_LEAST_ONE)
    progress: bool | None = None  # [in a terminal or a notebook]
    tta: str = limited("none", Limits(choices=TTA_MODES))
    report: bool = True
    tensorboard: bool = False
    stream: bool = False
    workers: int | None = limited(None, Limits(low=0))
    device: str = limited("auto", Limits(choices=DEVICES))
    precision: str = limited("fp32", Limits(choices=PRECISIONS))
    compile: bool = False
    dist_timeout: float = limited(300.0, Limits(low=1))
    # From Python only: a whole recipe in place of the model's (the overrides above still
    # apply), and the last N training images held out as the test split.
    recipe: Recipe | None = None
    holdout: int = limited(0, Limits(low=0))

    @classmethod
    def checked(cls, **values: Any) -> "TrainOptions":
        """Options from keyword arguments (``cnnkit.train``'s), each checked for its
        name, type and limits as the command line checks them; the first that is wrong
        is one ``ConfigError`` naming it and what was expected."""
        known = {option.name: option for option in fields(cls)}
        hints = get_type_hints(cls)
        for name, value in values.items():
            if name not in known:
                raise UnknownNameError.of("training option", name, known)
            values[name] = checked_value(name, value, hints[name])
            limits = known[name].metadata.get("limits")
            if value is not None and limits is not None and not limits.admits(value):
                raise ConfigError(f"{name}={value!r}: expected {limits}")
        return cls(**values)


TYPE_NAMES = {
    bool: "True or False",
    int: "a whole number",
    float: "a number",
    str: "a string",
    Path: "a path",
    type(None): "None",
}


def checked_value(name: str, value: Any, hint: Any) -> Any:
    """``value`` if it is of a type ``hint`` allows (a whole number for a float, a
    string for a path, converted), else a ``ConfigError``."""
    allowed = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    for kind in allowed:
        if kind is bool or kind is int:  # True is an int to Python, not to a user
            if isinstance(value, bool) == (kind is bool) and isinstance(value, int):
                return value
        elif kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        elif kind is Path and isinstance(value, str | os.PathLike):
            return Path(value)
        elif isinstance(value, kind):
            return value
    expected = " or ".join(TYPE_NAMES.get(kind, kind.__name__) for kind in allowed)
    raise ConfigError(f"{name}={value!r}: expected {expected}")


# The settings of ``TrainOptions`` that override the recipe's, one by one.
RECIPE_OVERRIDES = ("epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "augment")


@dataclass(frozen=True)
class TrainConfig:
    """The settings a run trains with, resolved from ``TrainOptions`` over the model's
    recipe (``training.train_config``) and saved in its checkpoint; no defaults for what
    only the options can decide (the model, its recipe, the folder)."""

    model: str
    dataset: str
    recipe: Recipe
    out: Path
    seed: int = 0
    resume: bool = False
    data_dir: Path | None = None
    train_limit: int | None = None  # use only the first N training images
    test_limit: int | None = None  # evaluate on the first N test images
    eval_batch_size: int = 256  # LeNet-5 tests 2.5x as fast in batches of 256 as of 1,000
    progress: bool = True
    tta: str = "none"  # "ten-crop": also evaluate the final model on ten crops
    stream: bool = False  # decode folder sets batch by batch (data.stream), not into memory
    workers: int | None = None  # DataLoader worker processes when streaming [one per core]
    # Where and how to compute (runtime.device); new fields keep their defaults when an
    # older checkpoint's config is loaded.
    device: str = "auto"  # auto: CUDA when PyTorch sees a GPU, else MPS, else the CPU
    precision: str = "fp32"  # autocast dtype of the forward pass: fp32, bf16 or fp16
    dist_timeout: float = 300.0  # seconds a rank waits for the others before giving up
    compile: bool = False  # train through torch.compile, eagerly if it fails (trainer.compiled)
    # > 0: the last N training images stand in for the test split, which goes unused
    # (recipes chosen on validation error: benchmarks/recipe_search.py).
    holdout: int = 0

    def to_dict(self) -> dict:
        """Plain types only, so checkpoints load with ``weights_only=True``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["recipe"] = {f.name: getattr(self.recipe, f.name) for f in fields(self.recipe)}
        values["out"] = str(self.out)
        values["data_dir"] = str(self.data_dir) if self.data_dir else None
        return values


def with_overrides(recipe: Recipe, **overrides: Any) -> Recipe:
    """``recipe`` with the given settings replaced; ``None`` leaves a setting as it is."""
    return replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
