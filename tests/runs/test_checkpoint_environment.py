"""The environment record in a checkpoint: written by ``save_checkpoint`` itself, read back
through its schema, absent from older checkpoints, and one line when damaged."""

import platform

import pytest
import torch

import cnnkit
from cnnkit.errors import CheckpointError
from cnnkit.models import build_model
from cnnkit.runs import RunRecord, load_checkpoint, save_checkpoint
from cnnkit.runs.record import Environment


@pytest.fixture(scope="module")
def state() -> dict:
    """What a trainer saves, less what resuming needs: an untrained LeNet-5 and its record."""
    model = build_model("lenet5")
    record = RunRecord(
        model="lenet5",
        num_classes=10,
        in_channels=1,
        input_size=(32, 32),
        image_size=(28, 28),
        classes=tuple("0123456789"),
        mean=(0.13,),
        std=(0.31,),
        dataset="mnist",
        preparation="digit",
    )
    return {"record": record.to_dict(), "model_state": model.state_dict(), "epoch": 0}


def test_save_checkpoint_records_the_versions_that_wrote_it(state, tmp_path) -> None:
    save_checkpoint(state, tmp_path / "checkpoint.pt")
    environment = load_checkpoint(tmp_path / "checkpoint.pt").environment
    assert environment == Environment(
        cnnkit=cnnkit.__version__,
        torch=torch.__version__,
        python=platform.python_version(),
        gpu=torch.cuda.get_device_name() if torch.cuda.is_initialized() else None,
    )


def test_a_checkpoint_without_one_reads_as_not_recorded(state, tmp_path) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(state, path)
    saved = torch.load(path, weights_only=True)
    del saved["environment"]  # as cnnkit wrote checkpoints before it recorded one
    torch.save(saved, path)
    checkpoint = load_checkpoint(path)
    assert checkpoint.environment is None and checkpoint.record.model == "lenet5"


def test_a_newer_field_is_ignored_and_a_missing_gpu_is_none(state, tmp_path) -> None:
    path = tmp_path / "checkpoint.pt"
    versions = {"cnnkit": "9.0", "torch": "3.1", "python": "3.14.1", "compiler": "gcc 15"}
    save_checkpoint({**state, "environment": versions}, path)
    assert load_checkpoint(path).environment == Environment("9.0", "3.1", "3.14.1", None)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"cnnkit": "0.1.0", "torch": 2, "python": "3.11"}, "environment record: torch is 2"),
        ({"cnnkit": "0.1.0", "python": "3.11"}, "environment record: torch is missing"),
        ("torch 2.14", "environment record"),
    ],
)
def test_a_damaged_one_is_one_error_naming_the_file(state, tmp_path, environment, message):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({**state, "environment": environment}, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith(f"{path}: damaged environment record")
    assert message in str(caught.value) and "\n" not in str(caught.value)
