"""The one way cnnkit reads a record it did not just write (``files.Schema``): a rule
for every field of every stored record type, so that a field cannot be read unchecked;
and the checkpoint and metrics fields that escaped their checks before."""

import dataclasses
import json

import pytest
import torch

from cnnkit.errors import CheckpointError, CnnkitError
from cnnkit.files import Schema
from cnnkit.runs import RunRecord, load_checkpoint, read_metrics
from cnnkit.runs.checkpoint import RECIPE, TRAIN_CONFIG
from cnnkit.runs.epochs import EPOCH_RECORD
from cnnkit.runs.folder import METRICS_NAME
from cnnkit.runs.record import RUN_RECORD
from cnnkit.search.collection import RECORD
from cnnkit.search.manifest import BACKEND, FILE_ENTRY, MANIFEST, SHARD


@pytest.mark.parametrize("schema", [RUN_RECORD, EPOCH_RECORD, MANIFEST, SHARD, FILE_ENTRY,
                                    BACKEND, RECORD, TRAIN_CONFIG, RECIPE],
                         ids=lambda s: s.cls.__name__)  # fmt: skip
def test_every_stored_record_has_a_rule_for_each_field(schema):
    assert set(schema.rules) == {field.name for field in dataclasses.fields(schema.cls)}


def test_a_field_without_a_rule_cannot_be_read():
    rules = dict(RUN_RECORD.rules)
    rules.pop("preparation")
    with pytest.raises(TypeError, match="one rule per field: \\['preparation'\\]"):
        Schema(RunRecord, rules)


def saved_with(digit_run, tmp_path, change):
    state = torch.load(digit_run, weights_only=True)
    change(state)
    path = tmp_path / "checkpoint.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda s: s.update(epoch="one"),
            "damaged checkpoint: epoch is 'one', expected an integer",
        ),
        (lambda s: s["record"].update(mean=[float("nan")]), "mean[0] is nan, expected a finite"),
        (
            lambda s: s["record"].update(num_classes=1 << 70),
            "num_classes is 1180591620717411303424",
        ),
        (lambda s: s["record"].update(owner="me"), "owner is 'me', expected no such field"),
        (lambda s: s["record"].update(input_size=[28, 28, 1]), "input_size is [28, 28, 1]"),
        (
            lambda s: s["config"]["recipe"].update(lr="fast"),
            "damaged training config: recipe.lr is 'fast', expected a finite number above 0",
        ),
        (lambda s: s["config"].update(device="tpu"), "device is 'tpu', expected one of auto"),
        (lambda s: s["config"].update(extra=1), "extra is 1, expected no such field"),
        (lambda s: s["history"][0].update(train_loss="low"), "history[0].train_loss is 'low'"),
        (lambda s: s.update(history={"epoch": 1}), "history is {'epoch': 1}, expected a list"),
    ],
)
def test_checkpoint_fields_are_read_by_their_rules(digit_run, tmp_path, change, fragment):
    path = saved_with(digit_run, tmp_path, change)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and fragment in message and "\n" not in message


def write_metrics_lines(folder, *lines):
    (folder / METRICS_NAME).write_text("".join(line + "\n" for line in lines))


GOOD = {"epoch": 1, "train_loss": 0.5, "test_top1_error": 0.1, "test_top5_error": 0.01}


def test_metrics_keep_older_and_newer_runs_readable(tmp_path):
    """A missing rate reads as NaN (older runs; json.dumps writes it as NaN), a field this
    cnnkit does not know is ignored (newer runs)."""
    write_metrics_lines(tmp_path, json.dumps(GOOD), json.dumps({**GOOD, "epoch": 2,
                        "lr": float("nan"), "gpu_memory": 3}))  # fmt: skip
    history = read_metrics(tmp_path)
    assert [record.epoch for record in history] == [1, 2]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"epoch": 1' + "0" * 4999 + "}", "integer too long"),
        ("[" * 5000 + "]" * 5000, "nested"),
        (json.dumps({**GOOD, "epoch": "1"}), "epoch is '1', expected an integer"),
        (json.dumps({**GOOD, "train_loss": True}), "train_loss is True, expected a number"),
    ],
)
def test_damaged_metrics_are_one_line_naming_the_line(tmp_path, line, fragment):
    write_metrics_lines(tmp_path, json.dumps(GOOD), line)
    with pytest.raises(CnnkitError) as caught:
        read_metrics(tmp_path)
    message = str(caught.value)
    assert f"{METRICS_NAME}:2" in message and fragment in message and "\n" not in message
