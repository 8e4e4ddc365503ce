"""Checkpoints: everything a run needs to continue, written atomically.

A checkpoint is a dict saved with ``torch.save``: the model's registry name and
build arguments, its weights, the data set's classes and normalisation (so that
``evaluate`` and ``predict`` need nothing else), and the optimiser, schedule,
random generator states, epoch and config for ``--resume``.
"""

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnkit.errors import CheckpointError
from cnnkit.models import build_model

FORMAT_VERSION = 1
REQUIRED_KEYS = (
    "format_version",
    "model",
    "num_classes",
    "in_channels",
    "classes",
    "mean",
    "std",
    "dataset",
    "model_state",
    "epoch",
)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` through a temporary file and a rename, so that a
    run killed while writing leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save({"format_version": FORMAT_VERSION, **state}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint, with one clear error for a missing, corrupt or foreign file."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        EOFError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        ValueError,
    ) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: not a readable cnnkit checkpoint ({reason})") from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: not a cnnkit checkpoint (missing model or metadata)")
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state['format_version']} is not "
            f"supported (this cnnkit reads format {FORMAT_VERSION})"
        )
    return state


def load_model(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a checkpoint, in eval mode, and the checkpoint itself."""
    state = load_checkpoint(path)
    # At the size it was trained at: a net built for its data's size (ResNet-18 on 28x28
    # MNIST) would otherwise come back at its paper's input size.
    image_size = tuple(state["image_size"]) if "image_size" in state else None
    model = build_model(
        state["model"],
        num_classes=state["num_classes"],
        in_channels=state["in_channels"],
        image_size=image_size,
    )
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: weights do not fit model {state['model']!r} ({str(error).splitlines()[0]})"
        ) from None
    return model.eval(), state
