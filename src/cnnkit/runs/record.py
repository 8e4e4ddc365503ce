"""``RunRecord``: what a trained model needs to be used, written into every checkpoint.

Everything a consumer needs besides the weights: how to rebuild the model (registry
name and build arguments), the image sizes as trained and as the model takes them,
the classes, the training split's normalisation, the data set, and how an image file
becomes the pixels the model saw in training (``preparation``). Read back by
``RunRecord.from_dict``, which reads every field by its rule, so that damaged or hostile
metadata is one clear error instead of a failure deep inside a consumer.
"""

import platform
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from cnnkit.errors import CheckpointError
from cnnkit.files import Integer, Invalid, Items, Number, Optional, Schema, Text, invalid_error

# How an image file is prepared for the model: "digit" as MNIST prepared its digits
# (transforms.digits), "photo" resized and cropped as the folder loader stores photos
# (transforms.resize).
PREPARATIONS = ("digit", "photo")
DIGIT_PREPARED_DATASETS = ("mnist",)  # data sets whose images are MNIST-style digits


def preparation_for(dataset: str) -> str:
    return "digit" if dataset in DIGIT_PREPARED_DATASETS else "photo"


@dataclass(frozen=True)
class RunRecord:
    model: str  # registry name
    num_classes: int
    in_channels: int
    input_size: tuple[int, int]  # (H, W) the model takes: its build argument image_size
    image_size: tuple[int, int]  # (H, W) of the training images as the data set stores them
    classes: tuple[str, ...]  # index = label
    mean: tuple[float, ...]  # per channel, on [0, 1], of the training split
    std: tuple[float, ...]
    dataset: str
    preparation: str  # one of PREPARATIONS

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the model's input."""
        return (self.in_channels, *self.input_size)

    def build_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``models.build_model`` that rebuild the model."""
        return {
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "image_size": self.input_size,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so that checkpoints load with ``weights_only=True``."""
        values = asdict(self)
        for key in ("input_size", "image_size", "classes", "mean", "std"):
            values[key] = list(values[key])
        return values

    @classmethod
    def from_dict(cls, values: object, source: Path) -> "RunRecord":
        """The record in ``values`` (as ``to_dict`` wrote it), every field read by its
        rule (``RUN_RECORD``) and the counts checked against each other; a
        ``CheckpointError`` naming ``source`` and the field otherwise."""
        record = RUN_RECORD.parse(values, source, CheckpointError, "run record")
        if len(record.classes) != record.num_classes:
            expected = f"{record.num_classes} names"
            raise record_error(source, "classes", list(record.classes), expected)
        for key in ("mean", "std"):
            if len(getattr(record, key)) != record.in_channels:
                expected = f"{record.in_channels} values, one per channel"
                raise record_error(source, key, list(getattr(record, key)), expected)
        return record

    @classmethod
    def from_legacy(cls, state: dict, input_size: tuple[int, int], source: Path) -> "RunRecord":
        """The record of a format-1 checkpoint (cnnkit before the run layer), whose
        fields lay at its top level; ``input_size`` where it did not store the model's."""
        image_size = state.get("image_size", input_size)
        values = {
            "model": state.get("model"),
            "num_classes": state.get("num_classes"),
            "in_channels": state.get("in_channels"),
            "input_size": image_size,
            "image_size": state.get("data_image_size", image_size),
            "classes": state.get("classes"),
            "mean": state.get("mean"),
            "std": state.get("std"),
            "dataset": state.get("dataset"),
            "preparation": preparation_for(str(state.get("dataset"))),
        }
        return cls.from_dict(values, source)


def record_error(source: Path, key: str, value: object, expected: str) -> CheckpointError:
    return invalid_error(Invalid(expected, value, key), source, CheckpointError, "run record")


SIZE = Items(Integer(1, 65_536), 2, 2)  # (height, width)
# Every field of the record with the rule it is read by; a key that is none of these is
# refused: the fields say how to rebuild the model and prepare its images, and a field
# this cnnkit does not know could change either.
RUN_RECORD = Schema(
    RunRecord,
    {
        "model": Text(max_length=256),
        "num_classes": Integer(1, 1_000_000),
        "in_channels": Integer(1, 1_000_000),
        "input_size": SIZE,
        "image_size": SIZE,
        "classes": Items(Text(max_length=1024), 1, 1_000_000),
        "mean": Items(Number(), 1, 1_000_000),
        "std": Items(Number(positive=True), 1, 1_000_000),
        "dataset": Text(),
        "preparation": Text(PREPARATIONS),
    },
)


@dataclass(frozen=True)
class Environment:
    """The software that wrote a checkpoint, for the report's recipe: a run is only
    repeatable with the versions it trained with."""

    cnnkit: str
    torch: str
    python: str
    gpu: str | None = None  # the CUDA GPU the writing process computed on; None: none

    @classmethod
    def current(cls) -> "Environment":
        """This process's versions; its GPU only if it has used CUDA (asking a process
        that has not would start CUDA in it)."""
        gpu = None
        if torch.cuda.is_initialized():
            gpu = torch.cuda.get_device_name(torch.cuda.current_device())
        # str(): torch.__version__ is a TorchVersion, which weights_only loading refuses
        return cls(version("cnnkit"), str(torch.__version__), platform.python_version(), gpu)

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


VERSION = Text(max_length=256)
# Figures to show, changing nothing this cnnkit does: a field a newer cnnkit adds is
# ignored, one an older one lacked takes its default.
ENVIRONMENT = Schema(
    Environment,
    {"cnnkit": VERSION, "torch": VERSION, "python": VERSION, "gpu": Optional(VERSION)},
    defaults=True,
    ignore_unknown=True,
)
