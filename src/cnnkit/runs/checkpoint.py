"""Checkpoints: the one writer and the one reader of ``checkpoint.pt``.

A checkpoint is a dict saved with ``torch.save`` and read with ``weights_only=True``
(no pickled code runs): the run's ``RunRecord`` (what a consumer needs to use the
model), the model's weights, and for ``--resume`` the optimiser, schedule, random
generator states, epoch, history and the training config. It is written to a
temporary file and renamed into place, so that a run killed while writing leaves the
previous checkpoint intact.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnkit.errors import CheckpointError, CnnkitError
from cnnkit.files import Integer, Invalid, atomic_write, invalid_error
from cnnkit.models import Classifier, build_model
from cnnkit.runs.record import RunRecord

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
    """A checkpoint as read: its record, the epochs it holds, the training config
    (``TrainConfig.to_dict()``) and everything as saved (``state``, for resuming)."""

    path: Path
    record: RunRecord
    epoch: int
    config: dict | None
    state: dict[str, Any]


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` (with ``"record"``: a ``RunRecord.to_dict()``) to ``path``
    through a temporary file and a rename (``files.atomic_write``); a full disk is one
    ``WriteError`` and leaves the previous checkpoint as it was."""
    atomic_write(path, lambda file: torch.save({"format_version": FORMAT_VERSION, **state}, file))


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
    config = state.get("config") if isinstance(state.get("config"), dict) else None
    try:
        epoch = EPOCH.read(state["epoch"])
    except Invalid as invalid:
        raise invalid_error(invalid.inside("epoch"), path, CheckpointError, "checkpoint") from None
    return Checkpoint(path, record, epoch, config, state)


EPOCH = Integer(0, 1 << 31)  # epochs a checkpoint has finished


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
