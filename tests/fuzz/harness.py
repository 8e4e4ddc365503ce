"""Property-based fuzzing of cnnkit's readers, run as ``python -m tests.fuzz.harness``
by ``test_fuzz.py`` in a subprocess whose address space is capped at 2 GiB above what
it holds once everything is imported: an input that makes a reader allocate more fails.

Real files are mutated (truncated, bit-flipped, a length field rewritten, chunks
shuffled): MNIST's IDX files, a CIFAR batch in the release's pickle format made of
real CIFAR-10 pixels, PNG, JPEG and GIF files of real digits and photos, and a
checkpoint written by cnnkit's own writer. Each reader must load the input or raise
a ``CnnkitError`` whose message is one line; anything else is a failure. Hypothesis
runs with a fixed seed; ``CNNKIT_FUZZ_EXAMPLES`` (default 250 per reader) sets the
budget, e.g. 5000 for a long run.
"""

import io
import os
import pickle
import resource
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnkit.data import load_dataset
from cnnkit.data.cifar import CIFAR10, read_batch
from cnnkit.data.idx import read_idx
from cnnkit.data.image_files import read_image
from cnnkit.errors import CnnkitError
from cnnkit.models import build_model
from cnnkit.runs import RunRecord, load_checkpoint, save_checkpoint
from cnnkit.runs.checkpoint import build_trained_model

EXAMPLES = int(os.environ.get("CNNKIT_FUZZ_EXAMPLES", "250"))


def run_harness(module: str) -> str:
    """What the harness ``module`` (``tests.fuzz.harness``, ``tests.fuzz.index_harness``)
    printed, run in a subprocess of one thread; the calling test fails with its output's
    end if it failed."""
    result = subprocess.run(
        [sys.executable, "-m", module],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


HEADROOM = 2 << 30  # bytes of address space a reader may take beyond the harness's own


def real_files(folder: Path) -> dict[str, tuple[bytes, Callable[[Path], object]]]:
    """name -> (the bytes of a real file, the reader to feed its mutants to)."""
    train, test = load_dataset("mnist")
    digits = test.images[:8, 0].numpy()
    files: dict[str, tuple[bytes, Callable[[Path], object]]] = {}
    idx = io.BytesIO()
    idx.write(struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">III", 8, 28, 28))
    idx.write(digits.tobytes())
    files["idx"] = (idx.getvalue(), read_idx)
    labels = (
        struct.pack(">BBBBI", 0, 0, 0x08, 1, 8) + test.labels[:8].numpy().astype(np.uint8).tobytes()
    )
    files["idx-labels"] = (labels, read_idx)
    photo = np.stack([digits[0], digits[1] // 2, 255 - digits[2]], axis=-1)
    for kind, image in (("png", Image.fromarray(photo)), ("jpeg", Image.fromarray(photo))):
        buffer = io.BytesIO()
        image.save(buffer, format=kind.upper())
        files[kind] = (buffer.getvalue(), lambda path: read_image(path, 3))
    gif = io.BytesIO()
    frames = [Image.fromarray(d).convert("P") for d in digits[:3]]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    files["gif"] = (gif.getvalue(), lambda path: read_image(path, 1))
    pixels = np.repeat(test.images[:8].numpy(), 3, axis=1)  # real pixels, CIFAR's layout
    pixels = np.pad(pixels, ((0, 0), (0, 0), (2, 2), (2, 2))).reshape(8, -1)
    batch = {b"data": pixels.astype(np.uint8), b"labels": test.labels[:8].tolist()}
    files["cifar"] = (pickle.dumps(batch, protocol=2), lambda path: read_batch(path, CIFAR10))
    files["checkpoint"] = (checkpoint_bytes(folder, train.mean, train.std), load_and_build)
    return files


def checkpoint_bytes(folder: Path, mean: tuple, std: tuple) -> bytes:
    model = build_model("lenet5-modern", num_classes=10, in_channels=1)
    record = RunRecord("lenet5-modern", 10, 1, (32, 32), (28, 28), tuple("0123456789"),
                       mean, std, "mnist", "digit")  # fmt: skip
    path = folder / "checkpoint.pt"
    save_checkpoint(
        {"record": record.to_dict(), "model_state": model.state_dict(), "epoch": 1}, path
    )
    return path.read_bytes()


def load_and_build(path: Path) -> object:
    return build_trained_model(load_checkpoint(path))


@st.composite
def mutants(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` truncated, bit-flipped, with a 4-byte length field rewritten, or cut
    into chunks that are shuffled; sometimes two of these in turn."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["truncate", "flip", "length", "shuffle"]))
        if kind == "truncate":
            out = out[: draw(st.integers(0, max(0, len(out) - 1)))]
        elif kind == "flip" and out:
            for _ in range(draw(st.integers(1, 8))):
                position = draw(st.integers(0, len(out) - 1))
                out[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "length" and len(out) >= 4:
            # Headers hold their lengths near the start: IDX dims, PNG IHDR, zip records.
            position = draw(st.integers(0, min(len(out) - 4, 64)))
            value = draw(st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])) | 0
            out[position : position + 4] = struct.pack(">I", value)
        elif kind == "shuffle" and len(out) > 8:
            cuts = sorted(draw(st.lists(st.integers(1, len(out) - 1), min_size=1, max_size=4)))
            pieces = [out[a:b] for a, b in zip([0, *cuts], [*cuts, len(out)], strict=True)]
            order = draw(st.permutations(range(len(pieces))))
            out = bytearray(b"".join(pieces[i] for i in order))
    return bytes(out)


def fuzz(name: str, data: bytes, reader: Callable[[Path], object], folder: Path) -> dict:
    counts = {"inputs": 0, "loaded": 0, "refused": 0}
    path = folder / f"mutant-{name}"

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(mutants(data))
    def reads_or_refuses(mutant: bytes) -> None:
        path.write_bytes(mutant)
        counts["inputs"] += 1
        try:
            reader(path)
        except CnnkitError as error:
            assert "\n" not in str(error), f"{name}: a message of several lines: {error!r}"
            counts["refused"] += 1
        else:
            counts["loaded"] += 1

    reads_or_refuses()
    return counts


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        files = real_files(Path(scratch))
        for name, (data, reader) in files.items():  # the originals load (and warm up imports)
            original = Path(scratch) / f"original-{name}"
            original.write_bytes(data)
            reader(original)
        held = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (held + HEADROOM, resource.RLIM_INFINITY))
        for name in sys.argv[1:] or list(files):
            data, reader = files[name]
            counts = fuzz(name, data, reader, Path(scratch))
            print(
                f"fuzz {name}: {counts['inputs']} inputs, {counts['loaded']} loaded, "
                f"{counts['refused']} refused with one line",
                flush=True,
            )


if __name__ == "__main__":
    main()
