"""The run layer: typed records in checkpoints, old checkpoints, the one file-to-pixels
path, logits and features, and the boundary that keeps consumers off the trainer."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.data.folder import decode_file
from cnnkit.errors import CheckpointError
from cnnkit.evaluate import evaluate_checkpoint
from cnnkit.models.fitting import build_for_images
from cnnkit.predict import predict_files
from cnnkit.runs import RunRecord, load_checkpoint, load_run, save_checkpoint
from tests.helpers import assert_one_line_error, python_output, run_cli


@pytest.fixture(scope="module")
def trained(digit_run):
    """A real LeNet-5 run on MNIST, the session's digit run."""
    return digit_run


def as_format_1(checkpoint, path):
    """The checkpoint as cnnkit wrote it before the run layer (format 1): the record's
    fields at the top level, under their old names."""
    state = torch.load(checkpoint, weights_only=True)
    record = state.pop("record")
    state.update(
        format_version=1,
        model=record["model"],
        num_classes=record["num_classes"],
        in_channels=record["in_channels"],
        image_size=record["input_size"],
        data_image_size=record["image_size"],
        classes=record["classes"],
        dataset=record["dataset"],
        mean=record["mean"],
        std=record["std"],
    )
    torch.save(state, path)
    return path


def test_every_checkpoint_holds_a_typed_record(trained):
    checkpoint = load_checkpoint(trained)
    assert checkpoint.record == RunRecord(
        model="lenet5",
        num_classes=10,
        in_channels=1,
        input_size=(32, 32),  # LeNet-5's input: MNIST padded by 2 pixels a side
        image_size=(28, 28),
        classes=tuple(str(d) for d in range(10)),
        mean=checkpoint.record.mean,
        std=checkpoint.record.std,
        dataset="mnist",
        preparation="digit",
    )
    assert checkpoint.record.mean[0] == pytest.approx(0.1307, abs=2e-3)  # MNIST's own
    assert checkpoint.epoch == 1 and checkpoint.config.model == "lenet5"


def test_format_1_checkpoints_load_and_give_the_same_outputs(trained, tmp_path, mnist):
    old = as_format_1(trained, tmp_path / "old.pt")
    assert load_checkpoint(old).record == load_checkpoint(trained).record
    _, test = mnist
    images = test.images[:200]
    assert torch.equal(load_run(old, "cpu").logits(images), load_run(trained, "cpu").logits(images))
    new_eval, old_eval = (evaluate_checkpoint(path, test_limit=300) for path in (trained, old))
    assert torch.equal(new_eval.plain.confusion, old_eval.plain.confusion)
    files = []
    for i in range(5):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(test.images[i, 0].numpy()).save(files[-1])
    assert predict_files(trained, files) == predict_files(old, files)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("num_classes", "ten", "num_classes is 'ten', expected an integer from 1 to 1,000,000"),
        ("classes", ["only one"], "classes is ['only one'], expected 10 names"),
        ("model", "lenet99", "unknown model 'lenet99'"),
        ("std", [0.0], "std[0] is 0.0, expected a finite number above 0"),
    ],
)
def test_damaged_metadata_is_one_line_naming_the_file(trained, tmp_path, field, value, fragment):
    state = torch.load(trained, weights_only=True)
    state["record"][field] = value
    path = tmp_path / "checkpoint.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        load_run(path, "cpu")
    assert str(path) in str(caught.value) and fragment in str(caught.value)
    assert_one_line_error(run_cli("predict", str(path), str(path)), str(path), fragment)


def test_weights_of_another_shape_name_the_mismatch(trained, tmp_path):
    state = torch.load(trained, weights_only=True)
    state["record"]["num_classes"] = 5
    state["record"]["classes"] = list("abcde")
    path = tmp_path / "checkpoint.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="weights do not fit model 'lenet5' .*size mismatch"):
        load_run(path, "cpu")


def test_features_are_the_penultimate_layer(trained, mnist):
    run = load_run(trained, "cpu")
    _, test = mnist
    features = run.features(test.images[:50])
    assert features.shape == (50, 84)  # F6: 84 units (LeCun et al. 1998, Sec. II-B)
    assert features.dtype == torch.float32 and features.std(dim=0).min() > 0
    # LeNet-5's output layer is the RBF on F6: logits are minus its squared distances.
    assert torch.allclose(run.model.output(features), run.logits(test.images[:50]), atol=1e-4)
    assert run.features(test.images[:0]).shape == (0, 84)


def test_prepare_pads_stored_images_to_the_model_input(trained, mnist):
    run = load_run(trained, "cpu")
    _, test = mnist
    prepared = run.prepare(test.images[:3])
    assert prepared.shape == (3, 1, 32, 32)
    assert torch.equal(prepared[:, :, 2:30, 2:30], test.images[:3])
    assert torch.equal(run.prepare(prepared), prepared)  # already at the input: unchanged


def photo_run(tmp_path, image_shape: tuple[int, int, int], model: str = "resnet8"):
    """An untrained run of ``model`` as if trained on a folder of photos of ``image_shape``."""
    torch.manual_seed(0)
    network = build_for_images(model, image_shape, 10)
    record = RunRecord(
        model=model,
        num_classes=10,
        in_channels=image_shape[0],
        input_size=network.input_size[1:],
        image_size=image_shape[1:],
        classes=tuple("abcdefghij"),
        mean=(0.5,) * image_shape[0],
        std=(0.25,) * image_shape[0],
        dataset="folder:photos",
        preparation="photo",
    )
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(
        {"record": record.to_dict(), "model_state": network.state_dict(), "epoch": 0}, path
    )
    return load_run(path, "cpu")


def test_a_photo_is_prepared_as_the_folder_loader_stores_it(tmp_path, real_image_tree):
    run = photo_run(tmp_path, (3, 32, 32))
    photos = sorted((real_image_tree / "test").rglob("*.*"))[:8]
    expected = torch.stack([decode_file(path) for path in photos])  # as training decoded them
    assert torch.equal(run.prepare(run.read_images(photos).images), expected)
    assert run.logits(run.prepare(run.read_images(photos).images)).shape == (8, 10)


def test_read_files_reads_a_batch_as_read_file_reads_each(tmp_path, real_image_tree):
    """The batch path is the one path: the same pixels as ``read_file`` for photos at
    the stored size and for one to resize, and an unreadable file left out and named."""
    run = photo_run(tmp_path, (3, 32, 32))
    photos = sorted((real_image_tree / "test").rglob("*.*"))[:6]
    Image.new("RGB", (40, 24), (200, 30, 10)).save(tmp_path / "wide.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    paths = [*photos[:3], tmp_path / "broken.jpg", tmp_path / "wide.png", *photos[3:]]
    files = run.read_files(paths)
    assert files.read == [0, 1, 2, 4, 5, 6, 7]
    (problem,) = files.problems
    assert problem.startswith(f"{tmp_path / 'broken.jpg'}: not a readable image")
    expected = torch.stack([run.read_file(paths[i]) for i in files.read])
    assert files.images.dtype == torch.uint8 and torch.equal(files.images, expected)
    assert run.read_files([tmp_path / "broken.jpg"]).images.shape == (0, 3, 32, 32)


def test_a_large_photo_is_cropped_not_stretched(tmp_path):
    """A 2:1 photo for a model trained on 256x256 photos: the shorter side is scaled to
    256 and the centre kept, as in training; the red side bands fall outside."""
    run = photo_run(tmp_path, (3, 256, 256), "alexnet-onetower")
    pixels = np.zeros((300, 600, 3), np.uint8)
    pixels[:, :150] = pixels[:, 450:] = (255, 0, 0)  # red quarters left and right
    pixels[:, 150:450] = (0, 0, 255)  # a blue square in the middle
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    (prepared,) = run.prepare(run.read_images([tmp_path / "wide.png"]).images)
    assert prepared.shape == (3, 224, 224)  # AlexNet's 224 of the 256
    assert prepared[0].max() < 10 and prepared[2].min() > 245  # all blue, no red


def test_consumers_do_not_load_the_trainer():
    code = (
        "import sys, cnnkit.predict, cnnkit.evaluate, cnnkit.export, cnnkit.reports, "
        "cnnkit.reports.report, cnnkit.runs, cnnkit.serve.server, cnnkit.serve.model, "
        "cnnkit.serve.index, cnnkit.search\n"
        "print(sorted(m for m in sys.modules if m.startswith('cnnkit.trainer')))"
    )
    stdout = python_output(code)
    assert json.loads(stdout.replace("'", '"')) == []


def test_help_imports_no_torch():
    code = (
        "import sys\nfrom cnnkit.cli import cli\n"
        "try:\n    cli(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')"
    )
    stdout = python_output(code)
    assert "--precision [fp32|bf16|fp16]" in stdout
    assert stdout.strip().endswith("NO TORCH")
