"""``RunRecord``: what a trained model needs to be used, written into every checkpoint.

Everything a consumer needs besides the weights: how to rebuild the model (registry
name and build arguments), the image sizes as trained and as the model takes them,
the classes, the training split's normalisation, the data set, and how an image file
becomes the pixels the model saw in training (``preparation``). Read back by
``RunRecord.from_dict``, which checks every field, so that damaged or hostile
metadata is one clear error instead of a failure deep inside a consumer.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cnnkit.errors import CheckpointError

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
        """The record in ``values`` (as ``to_dict`` wrote it), every field checked;
        a ``CheckpointError`` naming ``source`` and the field otherwise."""
        if not isinstance(values, dict):
            raise CheckpointError(f"{source}: damaged run record (not a mapping)")
        check = FieldCheck(values, source)
        record = cls(
            model=check.text("model"),
            num_classes=check.count("num_classes"),
            in_channels=check.count("in_channels"),
            input_size=check.size("input_size"),
            image_size=check.size("image_size"),
            classes=check.names("classes"),
            mean=check.floats("mean"),
            std=check.floats("std", positive=True),
            dataset=check.text("dataset"),
            preparation=check.text("preparation", choices=PREPARATIONS),
        )
        check.agree(record)
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


@dataclass(frozen=True)
class FieldCheck:
    """Reads one field of a stored record at a time, with one error per bad field."""

    values: dict
    source: Path

    def _fail(self, key: str, expected: str) -> CheckpointError:
        shown = repr(self.values.get(key))[:60]
        return CheckpointError(
            f"{self.source}: damaged run record: {key} is {shown}, expected {expected}"
        )

    def text(self, key: str, choices: tuple[str, ...] = ()) -> str:
        value = self.values.get(key)
        if not isinstance(value, str) or not value or (choices and value not in choices):
            raise self._fail(key, "one of " + ", ".join(choices) if choices else "a name")
        return value

    def count(self, key: str) -> int:
        value = self.values.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1_000_000:
            raise self._fail(key, "a positive integer")
        return value

    def size(self, key: str) -> tuple[int, int]:
        value = self.values.get(key)
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int) and 1 <= v <= 65_536 for v in value)
        ):
            raise self._fail(key, "two positive integers (height, width)")
        return int(value[0]), int(value[1])

    def names(self, key: str) -> tuple[str, ...]:
        value = self.values.get(key)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of class names")
        return tuple(value)

    def floats(self, key: str, positive: bool = False) -> tuple[float, ...]:
        value = self.values.get(key)
        if (
            not isinstance(value, list | tuple)
            or not value
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or (positive and not all(v > 0 for v in value))
        ):
            raise self._fail(key, "a list of " + ("positive " if positive else "") + "numbers")
        return tuple(float(v) for v in value)

    def agree(self, record: RunRecord) -> None:
        """The fields that must agree with each other."""
        if len(record.classes) != record.num_classes:
            raise self._fail("classes", f"{record.num_classes} names, one per output")
        for key in ("mean", "std"):
            if len(getattr(record, key)) != record.in_channels:
                raise self._fail(key, f"{record.in_channels} values, one per channel")
