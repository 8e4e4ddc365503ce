"""Checkpoints: the one writer and the one reader of ``checkpoint.pt``.

A checkpoint is a dict saved with ``torch.save`` and read with ``weights_only=True``
(no pickled code runs): the run's ``RunRecord`` (what a consumer needs to use the
model), the software that wrote it (``Environment``), the model's weights, and for
``--resume`` the optimiser, schedule, random
generator states, epoch, history and the training config. It is written to a
temporary file and renamed into place, so that a run killed while writing leaves the
previous checkpoint intact.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnkit.config import DEVICES, OPTIMIZERS, PRECISIONS, TTA_MODES, Recipe, TrainConfig
from cnnkit.errors import CheckpointError, CnnkitError
from cnnkit.files import (
    FilePath,
    Flag,
    Integer,
    Invalid,
    Items,
    Note,
    Number,
    Optional,
    Rule,
    Schema,
    Text,
    atomic_write,
    invalid_error,
)
from cnnkit.models import Classifier, build_model
from cnnkit.runs.epochs import EPOCH_RECORD, EpochRecord
from cnnkit.runs.record import ENVIRONMENT, Environment, RunRecord

# 2: the run's record under "record"; 1 (cnnkit before the run layer): its fields at
# the top level, still read.
FORMAT_VERSION = 2
REQUIRED_KEYS = {
    1: ("model", "num_classes", "in_channels", "classes", "mean", "std", "dataset"),
    2: ("record",),
}
STATE_KEYS = ("model_state", "epoch")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read: its record, the epochs it holds, the training config (each
    field checked) and everything as saved (``state``, for resuming)."""

    path: Path
    record: RunRecord
    epoch: int
    config: TrainConfig | None  # None in a checkpoint saved without one
    history: tuple[EpochRecord, ...]  # the epochs trained, as the trainer recorded them
    state: dict[str, Any]
    environment: Environment | None = None  # None: written before cnnkit recorded it


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` (with ``"record"``: a ``RunRecord.to_dict()``) to ``path``, with
    this process's ``Environment`` unless ``state`` carries one, through a temporary
    file and a rename (``files.atomic_write``); a full disk is one ``WriteError`` and
    leaves the previous checkpoint as it was."""
    saved = {
        "format_version": FORMAT_VERSION,
        "environment": Environment.current().to_dict(),
        **state,
    }
    atomic_write(path, lambda file: torch.save(saved, file))


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint, with one clear error for a missing, corrupt or foreign file
    and for damaged metadata."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # damaged archives raise many types (seen: IndexError)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: not a readable cnnkit checkpoint ({reason})") from None
    version = state.get("format_version") if isinstance(state, dict) else None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path}: not a cnnkit checkpoint (missing model or metadata)")
    if version not in REQUIRED_KEYS:
        raise CheckpointError(
            f"{path}: checkpoint format {version!r} is not supported (this cnnkit reads "
            f"formats {', '.join(map(str, REQUIRED_KEYS))})"
        )
    if any(key not in state for key in REQUIRED_KEYS[version] + STATE_KEYS):
        raise CheckpointError(f"{path}: not a cnnkit checkpoint (missing model or metadata)")
    if version == 1:
        record = RunRecord.from_legacy(state, legacy_input_size(state, path), path)
    else:
        record = RunRecord.from_dict(state["record"], path)
    config = state.get("config")
    if config is not None:
        config = TRAIN_CONFIG.parse(config, path, CheckpointError, "training config")
    environment = state.get("environment")
    if environment is not None:
        environment = ENVIRONMENT.parse(environment, path, CheckpointError, "environment record")
    epoch = read_field(EPOCH, state, "epoch", path)
    history = read_field(HISTORY, state, "history", path)
    return Checkpoint(path, record, epoch, config, history, state, environment)


def read_field(rule: Rule, state: dict, key: str, path: Path) -> Any:
    """``state[key]`` read by ``rule`` (an absent history is empty), or one error
    naming the checkpoint and the field."""
    try:
        return rule.read(state.get(key, []))
    except Invalid as invalid:
        raise invalid_error(invalid.inside(key), path, CheckpointError, "checkpoint") from None


EPOCH = Integer(0, 1 << 31)  # epochs a checkpoint has finished
HISTORY = Items(EPOCH_RECORD, 0, 1 << 31)
# The recipe and the config a run trained with, read back for --resume; a field an older
# checkpoint lacks takes its default, as it did when it was written.
RECIPE = Schema(
    Recipe,
    {
        "epochs": Integer(1, 1_000_000),
        "batch_size": Integer(1, 1 << 24),
        "lr": Number(positive=True),
        "momentum": Number(0, 1),
        "nesterov": Flag(),
        "weight_decay": Number(0),
        "warmup_fraction": Number(0, 1),
        "label_smoothing": Number(0, 1),
        "augment": Text(max_length=1024),
        "source": Note(),
        "optimizer": Text(OPTIMIZERS),
    },
    defaults=True,
)
TRAIN_CONFIG = Schema(
    TrainConfig,
    {
        "model": Text(max_length=256),
        "dataset": Text(),
        "recipe": RECIPE,
        "out": FilePath(),
        "seed": Integer(),
        "resume": Flag(),
        "data_dir": Optional(FilePath()),
        "train_limit": Optional(Integer(1)),
        "test_limit": Optional(Integer(1)),
        "eval_batch_size": Integer(1, 1 << 24),
        "progress": Flag(),
        "tta": Text(TTA_MODES),
        "stream": Flag(),
        "workers": Optional(Integer()),
        "device": Text(DEVICES),
        "precision": Text(PRECISIONS),
        "dist_timeout": Number(positive=True),
        "compile": Flag(),
        "holdout": Integer(),
    },
    defaults=True,
)


def legacy_input_size(state: dict, path: Path) -> tuple[int, int]:
    """The model's (H, W) input for a format-1 checkpoint: stored since cnnkit built
    nets for their data's size; before that, the paper's size of the registry's model."""
    if "image_size" in state:
        return tuple(state["image_size"])
    try:
        return build_model(str(state["model"])).input_size[1:]
    except CnnkitError as error:
        raise CheckpointError(f"{path}: {error}") from None


def build_trained_model(checkpoint: Checkpoint) -> Classifier:
    """The checkpoint's model with its weights, in eval mode, on the CPU, rebuilt at
    the size it was trained at (a net built for its data's size, ResNet-18 on 28x28
    MNIST, would otherwise come back at its paper's input size)."""
    record, path = checkpoint.record, checkpoint.path
    try:
        model = build_model(record.model, **record.build_arguments())
    except CnnkitError as error:  # an unknown name or sizes the model cannot take
        raise CheckpointError(f"{path}: {error}") from None
    try:
        model.load_state_dict(checkpoint.state["model_state"])
    except Exception as error:  # wrong shapes, or weights that are not tensors
        reason = str(error).strip().splitlines()
        detail = next((line.strip() for line in reason if "size mismatch" in line), None)
        raise CheckpointError(
            f"{path}: weights do not fit model {record.model!r} "
            f"({detail or (reason[0] if reason else type(error).__name__)})"
        ) from None
    return model.eval()
