"""``cnnkit export``: the written files run without cnnkit and give PyTorch's logits on
real MNIST test digits; int8 shrinks an FC-heavy net and keeps its accuracy."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from cnnkit.config import TrainOptions
from cnnkit.errors import ExportError, MissingExtraError, UnknownNameError
from cnnkit.export import export_checkpoint
from cnnkit.runs import RunModule, load_run
from tests.helpers import assert_one_line_error, require_module, run_cli, trained_checkpoint

onnx = require_module("onnx", "export")
onnxruntime = require_module("onnxruntime", "export")

CHECKED = 300  # test images each export checks itself on (--test-limit)
TOLERANCE = 1e-4  # issue 6: ONNX logits within 1e-4 of PyTorch's
# (model, training images): LeNet-5 with its custom layers, ResNet-18 built for 28x28
# (a few steps, enough to move its batch-norm statistics) and the FC-heavy lenet5-modern
# (96% of its weights in f5, f6 and the output layer).
TRAINED = {"resnet18": 64, "lenet5-modern": 2000}  # LeNet-5: the session's digit run


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, digit_run) -> dict:
    """Checkpoints written by cnnkit's own training, one short epoch each."""
    paths = {"lenet5": digit_run}
    for model, images in TRAINED.items():
        options = TrainOptions(
            model=model,
            epochs=1,
            batch_size=32,
            out=tmp_path_factory.mktemp(model),
            train_limit=images,
            test_limit=100,
            report=False,
        )
        paths[model] = trained_checkpoint(options)
    return paths


@pytest.fixture(scope="module")
def export(checkpoints, tmp_path_factory):
    """export(model, fmt, quantize) -> (file, stdout) through the real CLI, once each."""
    folder, done = tmp_path_factory.mktemp("exports"), {}

    def run(model: str, fmt: str, quantize: str | None = None):
        if (model, fmt, quantize) not in done:
            path = folder / f"{model}-{quantize or 'float'}.{'onnx' if fmt == 'onnx' else 'pt'}"
            args = ["--format", fmt, "--out", str(path), "--test-limit", str(CHECKED)]
            result = run_cli("export", str(checkpoints[model]), *args, *quantize_args(quantize))
            assert result.returncode == 0, result.stderr
            assert result.stderr == ""  # no warnings either
            done[model, fmt, quantize] = path, result.stdout
        return done[model, fmt, quantize]

    return run


def quantize_args(quantize: str | None) -> list[str]:
    return ["--quantize", quantize] if quantize else []


def pytorch_logits(checkpoint, images: torch.Tensor) -> np.ndarray:
    """The reference: cnnkit's own test-time path on the checkpoint's model."""
    return load_run(checkpoint, device="cpu").logits(images).numpy()


@pytest.mark.parametrize("model", ["lenet5", "resnet18"])
def test_onnx_gives_pytorchs_logits_on_real_digits(checkpoints, export, mnist, model):
    path, stdout = export(model, "onnx")
    reported = float(re.search(r"max abs difference (\S+) in the logits on 300 ", stdout).group(1))
    assert reported < TOLERANCE
    _, test = mnist
    images = test.images[1000:1200]  # others than the export checked itself on
    expected = pytorch_logits(checkpoints[model], images)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 7, 200):  # the batch dimension is dynamic
        (logits,) = session.run(None, {"images": images[:batch].numpy()})
        assert logits.shape == (batch, 10)
        np.testing.assert_allclose(logits, expected[:batch], rtol=0, atol=TOLERANCE)
    assert len(set(expected.argmax(1).tolist())) > 1  # not a constant output


def test_onnx_file_says_what_it_takes(checkpoints, export):
    path, _ = export("lenet5", "onnx")
    proto = onnx.load(path)
    props = {p.key: p.value for p in proto.metadata_props}
    record = torch.load(checkpoints["lenet5"], weights_only=True)["record"]  # as written
    assert json.loads(props["classes"]) == record["classes"]
    assert json.loads(props["mean"]) == pytest.approx(record["mean"])
    assert json.loads(props["std"]) == pytest.approx(record["std"])
    assert "uint8" in props["input"] and props["quantization"] == "none"
    (graph_input,) = proto.graph.input
    tensor_type = graph_input.type.tensor_type
    assert tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1:] == [1, 28, 28]  # MNIST as stored
    assert not any(n.metadata_props for n in proto.graph.node)  # no torch.fx debug tags


# Runs exported files in a python that cannot import cnnkit; saves each one's logits.
RUN_WITHOUT_CNNKIT = """
import sys
sys.modules["cnnkit"] = None  # any import of cnnkit now fails
import numpy as np
images = np.load(sys.argv[1])
for path in sys.argv[2:]:
    if path.endswith(".onnx"):
        import onnxruntime
        logits = onnxruntime.InferenceSession(path).run(None, {"images": images})[0]
    else:
        import torch
        with torch.inference_mode():
            logits = torch.jit.load(path)(torch.from_numpy(images)).numpy()
    np.save(path + ".npy", logits)
"""


def test_exported_files_run_without_cnnkit(checkpoints, export, mnist, tmp_path):
    files = [
        ("lenet5", "torchscript", None),
        ("lenet5-modern", "torchscript", "int8"),
        ("lenet5-modern", "onnx", "int8"),
    ]
    paths = {key: export(*key)[0] for key in files}
    _, test = mnist
    images, labels = test.images[:200], test.labels[:200].numpy()
    np.save(tmp_path / "images.npy", images.numpy())
    ran = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_CNNKIT, str(tmp_path / "images.npy"),
         *map(str, paths.values())],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    for (model, _, quantize), path in paths.items():
        logits = np.load(f"{path}.npy")
        expected = pytorch_logits(checkpoints[model], images)
        if quantize is None:
            np.testing.assert_allclose(logits, expected, rtol=0, atol=TOLERANCE)
        else:  # int8 moves the logits a little and the decisions hardly at all
            assert 0 < np.abs(logits - expected).max() < 0.1 * np.abs(expected).max()
            assert (logits.argmax(1) == expected.argmax(1)).mean() >= 0.97
        assert (logits.argmax(1) == labels).mean() > 0.6


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_int8_shrinks_an_fc_heavy_net_and_keeps_its_accuracy(export, fmt):
    path, stdout = export("lenet5-modern", fmt, "int8")
    line = stdout.splitlines()[-1]
    sizes = re.search(r"int8: size ([\d,]+) KiB -> ([\d,]+) KiB", line)
    errors = re.search(r"top-1 error ([\d.]+)% -> ([\d.]+)% on 300 mnist test images", line)
    assert sizes and errors, stdout
    before, after = (float(g.replace(",", "")) for g in sizes.groups())
    assert after == pytest.approx(path.stat().st_size / 1024, abs=1)
    # f5, f6 and the output hold 59,000 of the 61,700 weights: int8 keeps them in a quarter.
    assert after < 0.45 * before
    float_error, int8_error = (float(g) for g in errors.groups())
    assert float_error < 40 and abs(int8_error - float_error) <= 2.0


def test_a_wrong_export_is_refused(checkpoints, tmp_path, monkeypatch):
    """Were an exporter to change the model (as torch.onnx did with LeNet-5's
    Subsampling), the check against PyTorch refuses the file."""
    forward = RunModule.forward
    monkeypatch.setattr(RunModule, "forward", lambda self, x: forward(self, x) * 1.01)
    out = tmp_path / "lenet5.pt"
    with pytest.raises(ExportError, match="differ from PyTorch's"):
        export_checkpoint(checkpoints["lenet5"], "torchscript", out, test_limit=100)
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "args", "fragments", "status"),
    [
        (None, ["--format", "tflite"], ["'tflite' is not one of 'onnx', 'torchscript'"], 2),
        (b"garbage", ["--format", "onnx"], ["not a readable cnnkit checkpoint"], 1),
    ],
)
def test_cli_errors_are_one_line(checkpoints, tmp_path, content, args, fragments, status):
    checkpoint = checkpoints["lenet5"]
    if content is not None:
        checkpoint = tmp_path / "checkpoint.pt"
        checkpoint.write_bytes(content)
    result = run_cli("export", str(checkpoint), *args, "--out", str(tmp_path / "m"))
    assert result.returncode == status
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "m").exists()


def test_unknown_quantization_is_refused(checkpoints, tmp_path):
    with pytest.raises(UnknownNameError, match="unknown quantization 'int4'; known: int8"):
        export_checkpoint(checkpoints["lenet5"], "onnx", tmp_path / "m.onnx", quantize="int4")


def test_missing_onnx_extra_names_the_extra(checkpoints, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"onnxscript: pip install 'cnnkit\[export\]'"):
        export_checkpoint(checkpoints["lenet5"], "onnx", tmp_path / "m.onnx")


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        ("{tmp}", "a folder"),
        ("{tmp}/a-file/model.pt", "is a file, not a folder"),
        ("/sys/cnnkit-model.pt", "permission denied"),
        ("/proc/cnnkit-model.pt", "no such file or directory"),
    ],
)
def test_an_unwritable_out_is_refused_before_the_checkpoint_is_read(tmp_path, out, reason):
    """The output path is checked first (it costs a stat and an empty file; reading a
    checkpoint and its test set costs seconds): the checkpoint here does not exist, and
    the error is still the path's, in its own words (/sys was "no space left")."""
    (tmp_path / "a-file").write_text("")
    out = out.format(tmp=tmp_path)
    result = run_cli("export", str(tmp_path / "no-checkpoint.pt"), "--format", "torchscript",
                     "--out", out)  # fmt: skip
    assert_one_line_error(result, f"{out}: cannot write", reason)
    assert not list(tmp_path.glob("**/*.tmp"))
