"""Export a trained checkpoint as a file that runs without cnnkit: ONNX or TorchScript.

The exported model takes the images as the data set stores them: uint8 (N, C, H, W)
at the training images' size (1x28x28 for MNIST), any batch size N. The graph itself
pads or centre-crops them to the model's input (``fit_to_input``: MNIST's 28x28 to
LeNet-5's 32x32) and normalises them with the training split's mean and std, so a
user needs no preprocessing code; it returns logits (N, K). The class names and these
facts travel inside the file (ONNX ``metadata_props``; TorchScript ``cnnkit.json``).

Every export is checked by running the written file in its own runtime (onnxruntime
or ``torch.jit.load``) on the checkpoint's real test images, against the PyTorch model
and the labels. ``quantize="int8"`` stores the weights of the fully connected layers
as int8 and quantizes their inputs on the fly (dynamic quantization), where AlexNet's
and VGG's weights mostly sit: the "memory at test time" story.
"""

import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnkit.config import EXPORT_FORMATS, QUANTIZATIONS
from cnnkit.errors import ExportError, UnknownNameError, WriteError, import_extra
from cnnkit.files import TEMPORARY_SUFFIX, atomic_write_bytes
from cnnkit.metrics import topk_correct
from cnnkit.runs import RunModule, RunRecord, load_run

FLOAT_NOTE = {"quantization": "none"}
INT8_NOTE = {"quantization": "int8 dynamic: fully connected weights int8, their inputs per batch"}
# torch.onnx's operator library is written for opset 18 (its default, 20, is a conversion
# of that); onnxruntime runs 18 since 1.14.
ONNX_OPSET = 18
EVAL_BATCH = 500  # images per call of the exported model while checking it
# Largest difference from PyTorch's logits an export may show, relative to the largest
# logit: float32 rounding gives 1e-7 to 1e-6 (measured on MNIST's test set: LeNet-5 2.3e-5 on
# logits up to 116, alexnet-small 1.5e-5 on 25, ResNet-18 2.4e-6 on 3.5); an exporter that
# gets an operation wrong gives ~1e-2 (avg_pool2d's divisor_override: 0.5 on 100).
TOLERANCE = 1e-4

Runner = Callable[[np.ndarray], np.ndarray]  # uint8 (N, C, H, W) -> float32 logits (N, K)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    quantize: str | None
    bytes: int  # size of the written file
    dataset: str
    images: int  # real test images the written file was run on
    top1_error: float  # of the written file, in its own runtime
    max_abs_difference: float  # float export's logits against PyTorch's, same images
    float_bytes: int | None = None  # with quantize: the float export's size
    float_top1_error: float | None = None  # with quantize: the float export's error


def export_checkpoint(
    checkpoint: Path,
    fmt: str,
    out: Path,
    quantize: str | None = None,
    data_dir: Path | None = None,
    test_limit: int | None = None,
) -> ExportResult:
    """Write CHECKPOINT's model to ``out`` in format ``fmt`` and check the written file
    on the checkpoint's test set (its first ``test_limit`` images)."""
    if fmt not in EXPORT_FORMATS:
        raise UnknownNameError.of("export format", fmt, EXPORT_FORMATS)
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise UnknownNameError.of("quantization", quantize, QUANTIZATIONS)
    check_writable(out)  # before the checkpoint is read: nothing is loaded in vain
    if fmt == "onnx":
        require_export_extra()  # before the slow steps
    run = load_run(checkpoint, device="cpu")  # traced and checked on the CPU
    test_set = run.test_set(data_dir=data_dir, limit=test_limit)
    reference = run.logits(test_set.images)
    wrapped = RunModule(run.model, run.record).eval()
    metadata = export_metadata(run.record, run.checkpoint.epoch, test_set.image_shape)
    write = write_onnx if fmt == "onnx" else write_torchscript
    load = onnx_runner if fmt == "onnx" else torchscript_runner
    # Written and checked in a scratch folder; only a file that passed its checks is
    # copied to ``out``, atomically, so that a failure or a full disk leaves nothing there.
    with tempfile.TemporaryDirectory() as scratch:
        float_path = Path(scratch) / f"float{out.suffix}"
        int8_path = Path(scratch) / f"int8{out.suffix}" if quantize else None
        write(wrapped, test_set.images[:2], metadata, float_path, int8_path)
        float_logits = run_in_batches(load(float_path), test_set.images)
        float_bytes = float_path.stat().st_size
        difference = float((float_logits - reference).abs().max())
        if difference > TOLERANCE * max(1.0, float(reference.abs().max())):
            raise ExportError(
                f"{checkpoint}: the exported model's logits differ from PyTorch's by up to "
                f"{difference:.2g}; nothing written (please report this as a bug)"
            )
        final = int8_path or float_path
        logits = float_logits if int8_path is None else run_in_batches(load(final), test_set.images)
        atomic_write_bytes(out, final.read_bytes())
    return ExportResult(
        path=out,
        format=fmt,
        quantize=quantize,
        bytes=out.stat().st_size,
        dataset=run.record.dataset,
        images=len(test_set),
        top1_error=top1_error(logits, test_set.labels),
        max_abs_difference=difference,
        float_bytes=float_bytes if quantize else None,
        float_top1_error=top1_error(float_logits, test_set.labels) if quantize else None,
    )


def check_writable(out: Path) -> None:
    """A ``WriteError`` unless a file can be written at ``out``: a folder is refused, and
    a file is made beside it and removed (as the export's own write will make one), so
    that a read-only or virtual file system (/proc, /sys) says so now, in its own words."""
    if out.is_dir():
        raise WriteError(f"{out}: cannot write (a folder; give the file's name)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            dir=out.parent, prefix=out.name + ".", suffix=TEMPORARY_SUFFIX
        )
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        reason = (error.strerror or type(error).__name__).lower()
        if isinstance(error, FileExistsError):  # from mkdir: a file where a folder should be
            reason = f"{error.filename} is a file, not a folder"
        raise WriteError(f"{out}: cannot write ({reason})") from None


def export_metadata(
    record: RunRecord, epochs: int, image_shape: tuple[int, int, int]
) -> dict[str, str]:
    """What a user of the file needs to feed it and read its output, as strings."""
    channels, height, width = image_shape
    return {
        "classes": json.dumps(list(record.classes)),
        "input": f"uint8 images (N, {channels}, {height}, {width}), pixel values 0-255 "
        "as stored in the data set; the model pads or centre-crops and normalises them itself",
        "output": f"float32 logits (N, {record.num_classes}); softmax gives probabilities",
        "normalisation": "(pixel / 255 - mean) / std per channel, done inside the model",
        "mean": json.dumps(list(record.mean)),
        "std": json.dumps(list(record.std)),
        "model": record.model,
        "dataset": record.dataset,
        "epochs": str(epochs),
    }


def run_in_batches(run: Runner, images: torch.Tensor) -> torch.Tensor:
    """Logits of an exported model for uint8 images, ``EVAL_BATCH`` at a time."""
    chunks = [
        torch.from_numpy(run(images[i : i + EVAL_BATCH].numpy()))
        for i in range(0, len(images), EVAL_BATCH)
    ]
    return torch.cat(chunks).float()


def top1_error(logits: torch.Tensor, labels: torch.Tensor) -> float:
    (correct,) = topk_correct(logits, labels, (1,))
    return 1 - correct / len(labels)


def write_onnx(
    model: nn.Module,
    example: torch.Tensor,
    metadata: dict[str, str],
    float_path: Path,
    int8_path: Path | None = None,
) -> None:
    """The model as ONNX at ``float_path`` and, with ``int8_path``, its int8 dynamic
    quantization by onnxruntime there."""
    onnx = require_export_extra()
    export_onnx_graph(model, example, float_path)
    files = {float_path: FLOAT_NOTE}
    if int8_path is not None:
        quantize_onnx(float_path, int8_path)
        files[int8_path] = INT8_NOTE
    for path, note in files.items():
        proto = onnx.load(path)
        # The exporter tags every node with its torch.fx source (40 KB in LeNet-5's
        # file); the file keeps only the model-wide facts a user needs.
        for item in [*proto.graph.node, *proto.graph.input, *proto.graph.output]:
            del item.metadata_props[:]
        onnx.helper.set_model_props(proto, {**metadata, **note})
        atomic_write_bytes(path, proto.SerializeToString())


def quantize_onnx(float_path: Path, int8_path: Path) -> None:
    """onnxruntime's dynamic quantization after its recommended pre-processing (shape
    inference and graph clean-up). Only MatMul and Gemm: the fully connected layers (and
    LeNet-5's RBF distances); convolutions stay float, since onnxruntime's CPU
    ConvInteger takes only uint8 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(float_path, prepared)
        quantize_dynamic(
            prepared,
            int8_path,
            op_types_to_quantize=["MatMul", "Gemm"],
            weight_type=QuantType.QInt8,
        )


def export_onnx_graph(model: nn.Module, example: torch.Tensor, out: Path) -> None:
    """torch.onnx's dynamo exporter (torch.export -> onnxscript), one self-contained file
    with a dynamic batch dimension."""
    batch = torch.export.Dim("batch", min=1)
    try:
        program = torch.onnx.export(
            model,
            (example,),
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes={"images": {0: batch}},
            opset_version=ONNX_OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,  # else it prints its progress on stdout
        )
    except Exception as error:  # the exporter raises many types; none is the user's fault
        raise ExportError(f"torch.onnx.export failed: {str(error).splitlines()[0]}") from error
    assert program is not None  # with dynamo=True torch.onnx.export returns the program
    program.save(str(out), external_data=False)


def require_export_extra():
    """The onnx module, or one error naming the extra to install."""
    for needed in ("onnxruntime", "onnxscript"):
        import_extra(needed, "export", "ONNX export")
    return import_extra("onnx", "export", "ONNX export")


def onnx_runner(path: Path) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as many as torch is allowed
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda images: session.run(["logits"], {"images": images})[0]


def write_torchscript(
    model: nn.Module,
    example: torch.Tensor,
    metadata: dict[str, str],
    float_path: Path,
    int8_path: Path | None = None,
) -> None:
    """The model traced to TorchScript at ``float_path`` and, with ``int8_path``, traced
    again there after ``torch.ao.quantization.quantize_dynamic`` made its Linear layers int8."""

    def extra(note: dict[str, str]) -> dict[str, str]:
        return {"cnnkit.json": json.dumps({**metadata, **note})}

    def save(traced: torch.jit.ScriptModule, path: Path, note: dict[str, str]) -> None:
        # Through memory: torch.jit.save's own file writer aborts the process on a full disk.
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files=extra(note))
        atomic_write_bytes(path, buffer.getvalue())

    # Traced without autograd, the path inference takes (ScaledTanh's in-place steps).
    with deprecations_silenced(), torch.no_grad():
        save(torch.jit.trace(model, example), float_path, FLOAT_NOTE)
        if int8_path is not None:
            from torch.ao.quantization import quantize_dynamic

            int8 = quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
            save(torch.jit.trace(int8, example), int8_path, INT8_NOTE)


def torchscript_runner(path: Path) -> Runner:
    with deprecations_silenced():
        module = torch.jit.load(str(path), map_location="cpu")

    def run(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), deprecations_silenced():
            return module(torch.from_numpy(images)).numpy()

    return run


@contextmanager
def deprecations_silenced() -> Iterator[None]:
    """torch.jit (trace, save, load), torch.ao.quantization and quantized tensors all
    warn that they are deprecated. All still work in torch 2.14 and are the only way to
    a file that torch alone runs with int8 Linear layers (docs/export.md), so their
    warnings tell a user of ``cnnkit export`` nothing to do. The tracer's warnings are
    about shapes, which are fixed here by design."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", ".*quantized tensor creation functions", UserWarning)
        yield
